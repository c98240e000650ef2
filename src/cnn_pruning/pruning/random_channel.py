"""The structured random baseline: each channel group keeps as many channels as l2_unit and kmeans_channel keep
with the same scope and round_to, chosen at random, and the others are removed physically (the same surgery as
theirs, without merging).

    result = pruning.prune(model, "random_channel", 0.5, seed=1)
    result = pruning.prune(model, "random_channel", 0.5, seed=1, scope="all")   # l2_unit/kmeans_channel scope all

For a group of n channels (pruning.graph: block inner widths; with scope all the residual streams too),
common.n_kept(ratio, n, round_to) stay: the widths, and so the params, MACs and speed, equal kmeans_channel's and
l2_unit's at the same ratio and options, so an accuracy difference is the criterion's alone. The channels come
from a torch.Generator seeded with `seed`, groups in forward order, and keep their original order. (l2_unit's
scope inner also zeroes units that feed the residual sum; this baseline, like kmeans_channel, does not.)

Continuing (gradual pruning): each group keeps n_kept(ratio, original width) of the channels it still has, at
random.

info: stream_widths, inner_widths, seed, layers = {group name: {n_filters, kept: [indices]}}.
"""

from __future__ import annotations

import torch

from ..model import CifarResNet
from .common import n_kept, origins
from .graph import channel_groups, remove_channels


def prune(model: CifarResNet, ratio: float, seed: int, scope: str, round_to: int,
          previous: dict | None = None) -> tuple[CifarResNet, dict]:
    generator = torch.Generator().manual_seed(seed)
    keep, layers = {}, {}
    groups = channel_groups(model)
    origin = origins(groups, previous)
    for g in groups:
        if g.kind != "inner" and scope != "all":
            continue
        n, originally = origin[g.name]
        kept = torch.randperm(g.size, generator=generator)[:n_kept(ratio, n, round_to)]  # criterion: chance
        keep[g.name] = sorted(kept.tolist())
        layers[g.name] = {"n_filters": n, "kept": [originally[i] for i in keep[g.name]]}
    model = remove_channels(model, keep)  # surgery: the one l2_unit and kmeans_channel use
    return model, {"stream_widths": list(model.stream_widths), "inner_widths": list(model.inner_widths),
                   "seed": seed, "layers": layers}
