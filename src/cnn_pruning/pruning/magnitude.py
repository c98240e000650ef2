"""Unstructured magnitude pruning: zero the weights with the smallest |w| and keep them at zero with masks.

    result = pruning.prune(model, "magnitude", 0.9)                    # global: 90% of all conv weights
    result = pruning.prune(model, "magnitude", 0.5, scope="layer", include_fc=True)

Options: pruning.options.MagnitudeOptions (default, allowed values and a line each; docs/settings.md).

Prunable weights are the conv weights (and fc.weight with include_fc). Exactly round(ratio * N) entries are zeroed:
N = all prunable entries (global) or each tensor's entries (layer). Positions come from a stable sort of |w|, not
a threshold, so tied values still give exactly that count. The weights stay plain tensors; model.masks[name] holds
each prunable tensor's keep-mask (all True where nothing was zeroed), and train.fit() holds the zeros in place for
any optimizer. The shapes, and so count_params(), do not change: the saving is in the number of non-zeros.

Continuing from an earlier magnitude result (gradual pruning): entries already masked rank below every other, so
the new zeros are a superset of the old ones and the count is again exactly round(ratio * N) of the original N.

info: scope, prunable (N), zeroed (total), layers = {param name: {numel, zeroed}}.
"""

from __future__ import annotations

import torch

from ..model import CifarResNet
from .common import conv_names, n_removed, pruned_first, set_mask, smallest


def prunable(model: CifarResNet, include_stem: bool, include_fc: bool) -> list[str]:
    names = [f"{name}.weight" for name in conv_names(model, include_stem)]
    return names + (["fc.weight"] if include_fc else [])


def prune(model: CifarResNet, ratio: float, scope: str, include_stem: bool, include_fc: bool,
          previous: dict | None = None) -> tuple[CifarResNet, dict]:
    names = prunable(model, include_stem, include_fc)
    scores = [model.get_parameter(n).detach().abs().flatten().cpu() for n in names]  # criterion: |w|
    return zero_lowest(model, names, scores, ratio, scope)


def zero_lowest(model: CifarResNet, names: list[str], scores: list[torch.Tensor], ratio: float,
                scope: str) -> tuple[CifarResNet, dict]:
    """The surgery for any unstructured criterion: zero exactly round(ratio * N) entries of the parameters `names`,
    those with the lowest `scores` (one flat tensor per parameter), over all of them ("global") or per tensor
    ("layer"), and hold them at zero with masks. Entries masked by an earlier step go first (common.pruned_first)."""
    scores = [pruned_first(model, name, s.float()) for name, s in zip(names, scores)]
    if scope == "global":
        flat = torch.cat(scores)
        keep = torch.ones(len(flat), dtype=torch.bool)
        keep[smallest(flat, n_removed(ratio, len(flat)))] = False
        keeps = list(keep.split([len(s) for s in scores]))
    else:
        keeps = []
        for s in scores:
            keep = torch.ones(len(s), dtype=torch.bool)
            keep[smallest(s, n_removed(ratio, len(s)))] = False
            keeps.append(keep)
    layers = {}
    for name, keep in zip(names, keeps):
        p = model.get_parameter(name)
        set_mask(model, name, keep.view_as(p).to(p.device))
        layers[name] = {"numel": p.numel(), "zeroed": int((~keep).sum())}
    info = {"scope": scope, "prunable": sum(s.numel() for s in scores),
            "zeroed": sum(layer["zeroed"] for layer in layers.values()), "layers": layers}
    return model, info
