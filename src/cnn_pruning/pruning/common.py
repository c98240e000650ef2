"""What the pruning methods share: argument checks, criteria (which units go) and surgery (taking them out).

Criteria only read weights and return indices or clusters; surgery only takes indices and edits a model. Keeping
the two apart, as VainF/Torch-Pruning does, lets every method read as "score, pick, cut", and lets one surgery
serve several criteria (l2_unit, kmeans_channel and random_channel all remove channels with pruning.graph's).

Counting rule, the same everywhere: a layer or channel group of n units loses n_removed = round(ratio * n) of them
(Python's round(), half to even: round(0.5 * 9) = 4) and keeps n - n_removed, at least 1 where a layer must keep
something; with round_to > 1 the kept count is then rounded to a multiple (n_kept).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn as nn

from ..core import schema
from ..model import CifarResNet, SharedConv2d, apply_masks, build
from ..model.fold import fold

# ---------------------------------------------------------------------------------------------- checks and counts


def check_ratio(ratio) -> float:
    """The fraction removed, as a float in [0, 1); anything else (bool, str, NaN, inf, 1.0) is a ValueError."""
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0.0 <= float(ratio) < 1.0:
        raise ValueError(f"pruning ratio must be a number in [0, 1) (the fraction removed), got {ratio!r}")
    return float(ratio)


def check_options(method: str, options: dict, options_class: type) -> dict:
    """The method's defaults overlaid with `options`; an unknown name, or a value its rule refuses (of another type
    than the default's too: seed=True is refused), raises a ValueError naming it and what is allowed."""
    found = schema.problems(options_class, options, require_all=False)
    unknown = [p.key for p in found if p.kind == "unknown"]
    if unknown:
        raise ValueError(f"pruning method {method!r}: unknown option(s) {', '.join(map(repr, unknown))}; "
                         f"allowed options: {', '.join(f.name for f in schema.fields(options_class)) or 'none'}")
    for p in found:
        raise ValueError(f"pruning method {method!r}: option {p.key}={p.value!r} is not allowed; allowed: {p.allowed}")
    return schema.resolve(options_class, options)


def check_model(model) -> None:
    """Methods start from a dense CifarResNet: pruning an already pruned model (masks, shared layers) is refused,
    because silently dropping its masks or sharing would undo the earlier pruning."""
    if not isinstance(model, CifarResNet):
        raise TypeError(f"prune() expects a cnn_pruning.model.CifarResNet, got {type(model).__name__}")
    shared = [n for n, m in model.named_modules() if isinstance(m, SharedConv2d)]
    if shared or model.masks:
        raise ValueError(f"prune() expects a dense model; this one is already pruned (shared layers: {shared}, "
                         f"masks: {sorted(model.masks)})")


def n_removed(ratio: float, n: int) -> int:
    return int(round(ratio * n))


def n_kept(ratio: float, n: int, round_to: int = 1) -> int:
    """n - round(ratio * n), at least 1; with round_to > 1, then rounded to the nearest multiple of round_to (half
    to even), at least round_to and at most n (a group narrower than round_to stays whole)."""
    kept = max(1, n - n_removed(ratio, n))
    if round_to > 1:
        kept = min(n, max(round_to, round_to * round(kept / round_to)))
    return kept


def origins(groups, previous: dict | None) -> dict[str, tuple[int, list[int]]]:
    """Per channel group: (its width in the original model, the original index of each channel it has now). A
    continuing step (pruning.prune's `previous`) reads both from the earlier step's info (layers[group]: n_filters or
    n_channels, and kept); groups it did not prune, and every group of a first step, are still whole."""
    layers = (previous or {}).get("layers", {})
    found = {}
    for g in groups:
        earlier = layers.get(g.name)
        if earlier is None or "kept" not in earlier:
            found[g.name] = (g.size, list(range(g.size)))
        else:
            found[g.name] = (earlier.get("n_filters", earlier.get("n_channels")), list(earlier["kept"]))
            if len(earlier["kept"]) != g.size:
                raise ValueError(f"{g.name} has {g.size} channels, the earlier step kept {len(earlier['kept'])}")
    return found


def conv_names(model: nn.Module, include_stem: bool = True) -> list[str]:
    """Every plain conv in forward order; the stem is the one called "conv1" at the top level."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and (include_stem or n != "conv1")]


# ---------------------------------------------------------------------------------------------- criteria


def pruned_first(model: CifarResNet, param_name: str, scores: torch.Tensor, dims: int = 0) -> torch.Tensor:
    """`scores` (float) with every unit already masked out of `param_name` set to -1, below any norm or |w|: a
    continuing step removes the earlier step's units first, so what was pruned stays pruned and counts stay exact.
    dims=0: one score per entry (flat); dims=1: one per output unit (masked = its whole row masked)."""
    keep = model.masks.get(param_name)
    if keep is None:
        return scores
    gone = ~keep.flatten().cpu() if dims == 0 else ~keep.flatten(1).any(1).cpu()
    return torch.where(gone, torch.full_like(scores, -1.0), scores)


def smallest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the `count` smallest entries of a 1-D tensor. A stable sort, not a threshold: with ties the
    lower index goes first, so exactly `count` come back."""
    return torch.argsort(scores.detach().cpu(), stable=True)[:count]


def filter_norms(weight: torch.Tensor) -> torch.Tensor:
    """L2 norm of each output filter."""
    return weight.detach().flatten(1).norm(dim=1)


def folded_filters(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> np.ndarray:
    """Each filter with its BatchNorm (running statistics, i.e. eval mode) folded in, plus the folded bias, as
    float64 rows (cnn_pruning.model.fold): two rows are equal exactly when the two channels give the same output
    after BN.
    Folded in float32, as kmeans_channel always has: float64 arithmetic moves near-ties between clusters of a barely
    trained model, and with them which channels are kept, so results would change for no gain."""
    weight, bias = fold(conv, bn, dtype=torch.float32)
    return torch.cat([weight.flatten(1), bias[:, None]], 1).double().cpu().numpy()


def kmeans(points: np.ndarray, k: int, seed: int, n_init: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centroids) of k-means (k-means++ init, random_state=seed) over the rows of `points` (float64).

    k is first capped at the number of distinct rows, so no cluster is a duplicate of another. When every row is
    its own cluster, k-means is skipped: labels = arange, centroids = the rows, exactly (ratio 0 changes nothing).
    Callers read the real cluster count from the labels.
    """
    k = min(k, len(np.unique(points, axis=0)))
    if k == len(points):
        return np.arange(len(points)), points.copy()
    # One thread: the problems are tiny (at most 64 rows), and OpenMP threads only wait on each other, badly so on
    # a busy machine (seconds instead of milliseconds per layer).
    from sklearn.cluster import KMeans  # imported here: scikit-learn takes seconds to import, most stages never cluster
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        km = KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=seed).fit(points)
    return km.labels_.astype(np.int64), km.cluster_centers_


# ---------------------------------------------------------------------------------------------- surgery


def rebuild(model: CifarResNet, state: dict, **changes) -> CifarResNet:
    """A new model holding `state`, built from model.spec() with `changes` (inner_widths=..., stream_widths=...,
    shortcut_maps=...) the way load_checkpoint() builds one, so what we return and what a checkpoint reloads are the
    same architecture. Masks are copied over."""
    with torch.random.fork_rng(devices=[]):  # the constructor's init must not move the caller's random stream
        new = build({**model.spec(), **changes})
    new.load_state_dict(state, strict=True)
    new.masks = {name: keep.clone() for name, keep in model.masks.items()}
    device = next(model.parameters()).device
    return new.to(device).train(model.training)


def set_mask(model: CifarResNet, param_name: str, keep: torch.Tensor) -> None:
    """Record a keep-mask (combined with any earlier one) and zero the dropped entries now."""
    old = model.masks.get(param_name)
    model.masks[param_name] = keep.bool() if old is None else (old & keep.bool())
    apply_masks(model)


def zero_units(model: CifarResNet, conv_name: str, bn_name: str, idx: list[int]) -> None:
    """Zero output units `idx` of a conv and hold them at zero through masks: the filter AND its BN weight and
    bias. Zeroing the filter alone is not enough: BN would still add its bias (beta - gamma*mean/std) and the
    unit would keep emitting a constant; with gamma = beta = 0 it emits exactly 0 in train and eval mode."""
    for name in (conv_name + ".weight", bn_name + ".weight", bn_name + ".bias"):
        p = model.get_parameter(name)
        keep = torch.ones_like(p, dtype=torch.bool)
        keep[torch.as_tensor(idx, dtype=torch.long)] = False
        set_mask(model, name, keep)
