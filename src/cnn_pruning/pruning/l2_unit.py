"""Structured L2 pruning: in every conv, the output filters with the smallest L2 norm go.

    result = pruning.prune(model, "l2_unit", 0.5)                      # scope inner, stem included (the seeds')
    result = pruning.prune(model, "l2_unit", 0.5, scope="all")         # the residual streams shrink too
    result = pruning.prune(model, "l2_unit", 0.8, scope="all", round_to=8)

Options: pruning.options.L2UnitOptions (default, allowed values and a line each; docs/settings.md).

Counts: a group of n channels keeps common.n_kept(ratio, n, round_to): n - round(ratio * n), at least 1, then
rounded to a multiple of round_to. Scores come from the ORIGINAL model; a stable sort breaks ties to the lower index.

scope "inner" (the seeds' method 2, and the default):
  * blocks.i.conv1 feeds only its own block, so its smallest-norm filters are physically removed: conv1's rows,
    bn1's entries and conv2's matching input channels go (pruning.graph's surgery on the block's inner group).
  * the stem conv1 and every blocks.i.conv2 feed the residual sum, so there the round(ratio * n) smallest filters
    (at most n - 1) are zeroed instead: the filter AND its BN weight and bias (BN's bias would otherwise keep the
    unit emitting a constant), held at zero through model.masks while fine-tuning. Their outputs are exactly 0, but
    they are still computed: this is what keeps inner-only pruning from the speed its MACs promise.
scope "all": the inner groups as above, and each residual stream (one per stage, found by the dependency graph:
  the stem or shortcut and every second conv that add into it, every layer that reads it) loses the channels with
  the smallest group L2 norm: sqrt of the sum of squares of that channel's weights in every coupled conv and
  linear layer (writers' output filters, readers' input slices). Nothing is zeroed: the stream channels are gone.
  include_stem=false leaves stream.0 (the stem's output) whole.

Continuing from an earlier l2_unit result (gradual pruning): each group keeps n_kept(ratio, original width) of the
channels it still has, by the same criterion on the current weights; zeroed units score below every other filter,
so they stay zeroed and the count stays round(ratio * n).

info: stream_widths, inner_widths, layers = {conv name: {n_filters, removed: [indices], kept: [indices], zeroed:
[indices]}} for every inner group (and, with scope inner, the zeroed convs); with scope all also {"stream.s":
{n_channels, removed, kept, writers}}. Indices refer to the original model's channels.
"""

from __future__ import annotations

import torch

from ..model import CifarResNet
from .common import filter_norms, n_kept, n_removed, origins, pruned_first, smallest, zero_units
from .graph import ChannelGroup, channel_groups, remove_channels


def group_norms(model: CifarResNet, group: ChannelGroup) -> torch.Tensor:
    """Per channel of `group`, the L2 norm of its weights across every coupled conv and linear layer."""
    squares = torch.zeros(group.size, dtype=torch.float64)
    for conv, _ in group.writers:
        squares += model.get_submodule(conv).weight.detach().double().flatten(1).pow(2).sum(1).cpu()
    for reader in group.readers:
        w = model.get_submodule(reader).weight.detach().double()
        squares += w.transpose(0, 1).flatten(1).pow(2).sum(1).cpu()
    return squares.sqrt()


def prune(model: CifarResNet, ratio: float, include_stem: bool, scope: str, round_to: int,
          previous: dict | None = None) -> tuple[CifarResNet, dict]:
    groups = channel_groups(model)
    origin = origins(groups, previous)
    layers, keep, zero = {}, {}, []

    def weakest(name: str, scores: torch.Tensor) -> tuple[int, list[int]]:
        """(original width, the channels to keep now): n_kept of the original width, the strongest of those left."""
        n = origin[name][0]
        gone = smallest(scores, len(scores) - n_kept(ratio, n, round_to)).tolist()
        return n, sorted(set(range(len(scores))) - set(gone))

    # criterion, all on the weights as they are (the original model's at a first step)
    for g in groups:
        if g.kind == "inner":
            n, kept = weakest(g.name, filter_norms(model.get_submodule(g.writers[0][0]).weight))
            entry = {"n_filters": n, "zeroed": []}
        elif scope == "all" and (include_stem or "conv1" not in [c for c, _ in g.writers]):
            n, kept = weakest(g.name, group_norms(model, g))
            entry = {"n_channels": n, "writers": [c for c, _ in g.writers]}
        else:
            continue
        keep[g.name] = kept
        kept_originally = [origin[g.name][1][i] for i in kept]
        layers[g.name] = {**entry, "removed": sorted(set(range(n)) - set(kept_originally)), "kept": kept_originally}
    if scope == "inner":  # the residual-sum convs: zeroed, not removed (the seeds' method)
        for conv, bn in ([("conv1", "bn1")] if include_stem else []) + [
                (f"blocks.{i}.conv2", f"blocks.{i}.bn2") for i in range(len(model.blocks))]:
            norms = pruned_first(model, conv + ".weight", filter_norms(model.get_submodule(conv).weight), dims=1)
            n = len(norms)
            idx = sorted(smallest(norms, min(n_removed(ratio, n), n - 1)).tolist())
            layers[conv] = {"n_filters": n, "removed": [], "zeroed": idx}
            zero.append((conv, bn, idx))

    # surgery: remove the groups' channels, then zero the residual-sum units of the new model. A continuing step's
    # masks (earlier zeroed units) are dropped first, since their shapes change with the channels; `zero` already
    # holds every earlier zeroed unit (they ranked first), so they are masked again.
    model.masks = {}
    model = remove_channels(model, keep)
    for conv, bn, idx in zero:
        zero_units(model, conv, bn, idx)
    return model, {"stream_widths": list(model.stream_widths), "inner_widths": list(model.inner_widths),
                   "layers": layers}
