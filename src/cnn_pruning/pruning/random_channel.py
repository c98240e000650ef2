"""The structured random baseline: each block keeps as many inner channels as l2_unit and kmeans_channel keep,
chosen at random, and the others are removed physically (the same surgery as theirs, without merging).

    result = pruning.prune(model, "random_channel", 0.5, seed=1)

For a block of inner width n, n - round(ratio * n) channels stay (at least 1): the widths, and so the params, MACs
and speed, equal kmeans_channel's and l2_unit's inner widths at the same ratio, so an accuracy difference is the
criterion's alone. The channels come from a torch.Generator seeded with `seed` and keep their original order.
(l2_unit also zeroes units that feed the residual sum; this baseline, like kmeans_channel, does not.)

info: inner_widths, seed, layers = {"blocks.i.conv1": {n_filters, kept: [indices]}}.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model import CifarResNet
from ..schema import integer, setting
from .common import n_kept, remove_inner_channels

MATCHES = ("l2_unit", "kmeans_channel")  # the criteria whose widths this baseline reproduces


@dataclass
class Options:
    """The random channel baseline's options."""
    seed: int = setting(0, integer(0, 2**63 - 1), "which channels: torch.Generator seed")


def prune(model: CifarResNet, ratio: float, seed: int) -> tuple[CifarResNet, dict]:
    generator = torch.Generator().manual_seed(seed)
    keep, layers = {}, {}
    for i, block in enumerate(model.blocks):
        n = block.conv1.out_channels
        keep[i] = sorted(torch.randperm(n, generator=generator)[:n_kept(ratio, n)].tolist())  # criterion: chance
        layers[f"blocks.{i}.conv1"] = {"n_filters": n, "kept": keep[i]}
    model = remove_inner_channels(model, keep)  # surgery: the one l2_unit and kmeans_channel use
    return model, {"inner_widths": list(model.inner_widths), "seed": seed, "layers": layers}
