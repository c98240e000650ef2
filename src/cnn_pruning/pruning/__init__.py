"""Pruning methods for the CIFAR ResNets (cnn_pruning.model.CifarResNet, any depth): one entry point, four methods
and two random baselines, a new model ready to fine-tune with train.fit().

    from cnn_pruning import pruning
    pruning.validate("l2_unit", 0.5, {"include_stem": False})   # cheap check of a stage's params, no model needed
    result = pruning.prune(model, "kmeans_shared", 0.5, seed=0)  # `model` is left untouched
    result.model    # a CifarResNet: maybe narrower inner widths, SharedConv2d layers, model.masks
    result.info     # plain types (json): method, ratio, options, params_before/after, per-layer details

The methods (each module's docstring says exactly what it does, its options and its info keys):
    magnitude       unstructured: zero the round(ratio * N) smallest |w|, held at zero by model.masks
    l2_unit         structured: the smallest-L2 filters of every conv are removed (block-internal convs) or
                    zeroed with their BN weight and bias (convs feeding the residual sum)
    kmeans_shared   weight sharing: each conv's filters are clustered and replaced by their k centroids
    kmeans_channel  structured: each block's inner channels are clustered (BN folded in), one per cluster is kept,
                    the others' conv2 weights are merged into it
    random          baseline: as many weights as magnitude zeroes, at random positions (seeded)
    random_channel  baseline: the inner widths l2_unit and kmeans_channel keep, channels chosen at random (seeded)

`ratio` is the fraction removed, a number in [0, 1); ratio 0 gives a model with the same outputs. Every count in
the package rounds the same way: a layer of n units loses round(ratio * n) (Python's round(), half to even) and
keeps the rest, at least 1 where a layer must keep something. Methods start from a dense CifarResNet (no masks, no
shared layers); the result saves and reloads with model.save_checkpoint / load_checkpoint. Counting distinct
filters, non-zeros and MACs of the result is cnn_pruning.measure's job.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from .. import schema
from ..model import CifarResNet, count_params
from ..schema import number, of_type, setting
from . import kmeans_channel, kmeans_shared, l2_unit, magnitude, random_channel, random_weights
from .common import check_model, check_options, check_ratio

# name -> module with an `Options` dataclass (defaults, allowed values, docs) and prune(model, ratio, **options)
_REGISTRY = {"magnitude": magnitude, "l2_unit": l2_unit, "kmeans_shared": kmeans_shared,
             "kmeans_channel": kmeans_channel, "random": random_weights, "random_channel": random_channel}
METHODS = tuple(_REGISTRY)
BASELINES = ("random", "random_channel")  # what a criterion must beat: the same counts, chosen by chance
CONTROL = "none"  # the unpruned base, fine-tuned like the methods: the fair reference


@dataclass
class PruneConfig:
    """params.yaml's prune section: which methods, how much, from which base model."""
    methods: list = setting([CONTROL, *(m for m in METHODS if m not in BASELINES)],
                            of_type(list, text="a list of method names"),
                            f"one prune/finetune/evaluate chain per entry; {CONTROL} = the unpruned control")
    ratio: float = setting(0.5, number(0, 1, hi_open=True),
                           "fraction removed: weights (magnitude), filters (l2_unit), clusters (k-means)")
    base: str = setting("sgd", of_type(str, text="an optimizer name from train.optimizers"),
                        "which optimizer's base model is pruned")
    options: dict = setting({m: {} for m in (CONTROL, *METHODS)}, of_type(dict, text="a mapping method -> options"),
                            "per method, only what differs from its defaults (below); one entry per method")


@dataclass
class PruneResult:
    model: CifarResNet
    info: dict


def options_class(method: str) -> type:
    """The `Options` dataclass of `method`: its options' defaults, allowed values and docs."""
    validate(method, 0.0)
    return _REGISTRY[method].Options


def defaults(method: str) -> dict:
    """The options of `method` with their default values."""
    return schema.resolve(options_class(method), {})


def validate(method: str, ratio, options: dict | None = None) -> tuple[float, dict]:
    """Check a method name, a ratio and options without a model; returns (ratio as float, options with defaults).

    Raises ValueError naming the bad value and what is allowed.
    """
    if not isinstance(method, str) or method not in _REGISTRY:
        raise ValueError(f"unknown pruning method {method!r}; allowed: {', '.join(METHODS)}")
    ratio = check_ratio(ratio)
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"pruning options must be a dict of option names to values, got {options!r}")
    return ratio, check_options(method, dict(options or {}), _REGISTRY[method].Options)


def prune(model: CifarResNet, method: str, ratio: float, **options) -> PruneResult:
    """Prune a copy of `model` with `method`, removing the fraction `ratio`; `model` itself is never changed."""
    ratio, options = validate(method, ratio, options)
    check_model(model)
    work = copy.deepcopy(model)  # methods may edit what they get in place; the caller's model stays as it was
    pruned, details = _REGISTRY[method].prune(work, ratio, **options)
    info = {"method": method, "ratio": ratio, "options": options, "params_before": count_params(model),
            "params_after": count_params(pruned), "masked_zeros": masked_zeros(pruned), **details}
    return PruneResult(pruned, info)


def baseline_of(method: str) -> str | None:
    """The random baseline that removes what `method` removes, chosen by chance: the chance level `method` must
    beat (each baseline module's MATCHES). None for the baselines themselves, the control and kmeans_shared (it
    removes no weights or channels: no random choice matches its shared filters)."""
    return next((b for b in BASELINES if method in _REGISTRY[b].MATCHES), None)


def masked_zeros(model: CifarResNet) -> int:
    """How many parameter entries model.masks holds at zero."""
    return sum(int((~keep).sum()) for keep in model.masks.values())


__all__ = ["BASELINES", "CONTROL", "METHODS", "PruneConfig", "PruneResult", "baseline_of", "defaults", "masked_zeros", "options_class", "prune",
           "validate"]
