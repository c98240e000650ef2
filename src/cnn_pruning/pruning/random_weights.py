"""The unstructured random baseline: as many weights as magnitude zeroes, at random positions.

    result = pruning.prune(model, "random", 0.9, seed=1)      # 90% of the conv weights, positions by the seed

A pruning criterion is worth its name only where it beats this (Blalock et al. 2020, ShrinkBench). It takes
magnitude's options (scope, include_stem, include_fc) and uses magnitude's surgery, so the same entries are prunable
and exactly the same count is zeroed per layer (scope "layer") or in total ("global"); only the criterion differs:
uniform random scores from a torch.Generator seeded with `seed`. Same seed, same positions.

Continuing (gradual pruning): the same seed draws the same scores, so each step's zeros contain the last's; entries
already masked go first anyway (magnitude's surgery).

info: as magnitude's (scope, prunable, zeroed, layers = {param name: {numel, zeroed}}), plus seed.
"""

from __future__ import annotations

import torch

from ..model import CifarResNet
from . import magnitude


def prune(model: CifarResNet, ratio: float, seed: int, scope: str, include_stem: bool, include_fc: bool,
          previous: dict | None = None) -> tuple[CifarResNet, dict]:
    names = magnitude.prunable(model, include_stem, include_fc)
    generator = torch.Generator().manual_seed(seed)
    scores = [torch.rand(model.get_parameter(n).numel(), generator=generator) for n in names]  # criterion: chance
    model, info = magnitude.zero_lowest(model, names, scores, ratio, scope)
    return model, {**info, "seed": seed}
