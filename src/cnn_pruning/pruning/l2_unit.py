"""Structured L2 pruning: in every conv, the output filters with the smallest L2 norm go.

    result = pruning.prune(model, "l2_unit", 0.5)                      # stem included
    result = pruning.prune(model, "l2_unit", 0.5, include_stem=False)

Options: the `Options` dataclass below (default, allowed values and a line each; the README's settings table).

Every prunable conv of n filters loses min(round(ratio * n), n - 1) of them (one filter always stays), chosen by the
L2 norm of the filters of the ORIGINAL model (stable sort: ties go to the lower index). What "lose" means depends on
where the conv's output goes:
  * blocks.i.conv1 feeds only its own block, so its filters are physically removed: conv1's rows, bn1's entries and
    conv2's matching input channels are sliced away and the block's inner width shrinks (fewer params and FLOPs).
  * the stem conv1 and every blocks.i.conv2 feed the residual sum, whose width the identity shortcuts fix, so their
    units are zeroed instead: the filter AND its BN weight and bias (BN's bias would otherwise keep the unit emitting
    a constant), held at zero through model.masks while fine-tuning. Their outputs are then exactly 0.

info: inner_widths, layers = {conv name: {n_filters, removed: [indices], zeroed: [indices]}}; indices refer to the
original model's filters.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import CifarResNet
from ..schema import BOOLEAN, setting
from .common import filter_norms, n_removed, remove_inner_channels, smallest, zero_units


@dataclass
class Options:
    """L2 filter pruning's options."""
    include_stem: bool = setting(True, BOOLEAN, "also prune the stem conv's filters (zeroed: they feed the residual sum)")


def prune(model: CifarResNet, ratio: float, include_stem: bool) -> tuple[CifarResNet, dict]:
    # criterion, all on the original weights: per conv, the smallest-norm filters
    def weakest(conv_name: str) -> tuple[int, list[int]]:
        norms = filter_norms(model.get_submodule(conv_name).weight)
        n = len(norms)
        return n, sorted(smallest(norms, min(n_removed(ratio, n), n - 1)).tolist())

    layers, keep, zero = {}, {}, []
    if include_stem:
        n, idx = weakest("conv1")
        layers["conv1"] = {"n_filters": n, "removed": [], "zeroed": idx}
        zero.append(("conv1", "bn1", idx))
    for i in range(len(model.blocks)):
        n, idx = weakest(f"blocks.{i}.conv1")
        layers[f"blocks.{i}.conv1"] = {"n_filters": n, "removed": idx, "zeroed": []}
        keep[i] = sorted(set(range(n)) - set(idx))
        n, idx = weakest(f"blocks.{i}.conv2")
        layers[f"blocks.{i}.conv2"] = {"n_filters": n, "removed": [], "zeroed": idx}
        zero.append((f"blocks.{i}.conv2", f"blocks.{i}.bn2", idx))

    # surgery: shrink the blocks, then zero the residual-stream units of the new model
    model = remove_inner_channels(model, keep)
    for conv_name, bn_name, idx in zero:
        zero_units(model, conv_name, bn_name, idx)
    return model, {"inner_widths": list(model.inner_widths), "layers": layers}
