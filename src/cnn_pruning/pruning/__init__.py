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
                    zeroed with their BN weight and bias (convs feeding the residual sum); scope all: the
                    residual streams' smallest-L2 channels are removed too
    kmeans_shared   weight sharing: each conv's filters are clustered and replaced by their k centroids
    kmeans_channel  structured: each block's inner channels (scope all: and each residual stream's) are
                    clustered (BN folded in), one per cluster is kept, the readers' weights are merged into it
    random          baseline: as many weights as magnitude zeroes, at random positions (seeded)
    random_channel  baseline: the widths l2_unit and kmeans_channel keep, channels chosen at random (seeded)
The channel methods' groups of coupled channels and their surgery are pruning.graph's (Torch-Pruning's
DependencyGraph traces the model).

Named variants: a list entry (prune.methods, sweep.methods, study.methods) may be a name of one's own, defined in
prune.options with the method it runs and its options, e.g. `l2_unit_all: {method: l2_unit, scope: all}`.
resolve(name, prune_options) turns any entry into (method, options); files, stages and study rows carry the name.

`ratio` is the fraction removed, a number in [0, 1); ratio 0 gives a model with the same outputs. Every count in
the package rounds the same way: a layer of n units loses round(ratio * n) (Python's round(), half to even) and
keeps the rest, at least 1 where a layer must keep something. The result saves and reloads with
model.save_checkpoint / load_checkpoint. Counting distinct filters, non-zeros and MACs of the result is
cnn_pruning.model.measure's job.

Continuing (gradual pruning, pruning.gradual): a method starts from a dense CifarResNet (no masks, no shared
layers, the widths it was built with) or from its own earlier result, given as `previous` (that result's info, with
the model fine-tuned since):
    step2 = pruning.prune(tuned_step1_model, "l2_unit", 0.7, previous=step1.info)
Counts always refer to the ORIGINAL model (the end of a schedule has exactly the counts one-shot gives) and what
was pruned stays pruned: masked weights rank below every other (magnitude, random), removed channels stay removed
and the next step keeps n_kept(ratio, original width) of those left (l2_unit, kmeans_channel, random_channel; info
indices keep referring to the original channels), shared filters are re-clustered into fewer (kmeans_shared).
Refused, because they would silently undo earlier pruning: a pruned model without `previous`, another method or
other options than the earlier result's, a lower ratio, a model whose structure is not the earlier result's.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass

from ..core import schema
from ..core.schema import number, of_type, setting
from ..model import CifarResNet, count_params
from .common import check_model, check_options, check_ratio
from .gradual import GradualPruner, Schedule
from .options import REGISTRY

METHODS = tuple(REGISTRY)
VARIANT_KEY = "method"  # in prune.options.<name>: the registered method a named variant runs
BASELINES = ("random", "random_channel")  # what a criterion must beat: the same counts, chosen by chance
# The variants params.yaml ships: each channel method and its baseline with the residual streams pruned too.
SCOPE_ALL_VARIANTS = {f"{m}_all": {VARIANT_KEY: m, "scope": "all"}
                      for m in ("l2_unit", "kmeans_channel", "random_channel")}
CONTROL = "none"  # the unpruned base, fine-tuned like the methods: the fair reference


@dataclass
class PruneConfig:
    """params.yaml's prune section: which methods, how much, from which base model, one-shot or gradual."""
    methods: list = setting([CONTROL, *(m for m in METHODS if m not in BASELINES)],
                            of_type(list, text="a list of method names"),
                            f"one prune/finetune/evaluate chain per entry; {CONTROL} = the unpruned control")
    ratio: float = setting(0.5, number(0, 1, hi_open=True),
                           "fraction removed: weights (magnitude), filters (l2_unit), clusters (k-means)")
    base: str = setting("sgd", of_type(str, text="an optimizer name from train.optimizers"),
                        "which optimizer's base model is pruned")
    options: dict = setting({**{m: {} for m in (CONTROL, *METHODS)}, **SCOPE_ALL_VARIANTS},
                            of_type(dict, text="a mapping method -> options"),
                            "per method, only what differs from its defaults (below), one entry per method; "
                            "plus named variants (below)")
    schedule: str = schema.override(Schedule, "schedule", "oneshot")  # defined once, in pruning.gradual
    steps: int = schema.override(Schedule, "steps", 10)
    prune_until: float = schema.override(Schedule, "prune_until", 0.5)


@dataclass
class PruneResult:
    model: CifarResNet
    info: dict


def options_class(method: str) -> type:
    """The `Options` dataclass of `method`: its options' defaults, allowed values and docs."""
    validate(method, 0.0)
    return REGISTRY[method].options


def defaults(method: str) -> dict:
    """The options of `method` with their default values."""
    return schema.resolve(options_class(method), {})


def validate(method: str, ratio, options: dict | None = None) -> tuple[float, dict]:
    """Check a method name, a ratio and options without a model; returns (ratio as float, options with defaults).

    Raises ValueError naming the bad value and what is allowed.
    """
    if not isinstance(method, str) or method not in REGISTRY:
        raise ValueError(f"unknown pruning method {method!r}; allowed: {', '.join(METHODS)}")
    ratio = check_ratio(ratio)
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"pruning options must be a dict of option names to values, got {options!r}")
    return ratio, check_options(method, dict(options or {}), REGISTRY[method].options)


def implementation(method: str):
    """The module that prunes with `method` (its prune(model, ratio, previous, **options)), imported on first use:
    a stage that prunes with magnitude never imports Torch-Pruning, one that only names methods imports no method.
    Every module of this package is a code dependency of whatever imports the package (tests/test_dependencies.py)."""
    return importlib.import_module(f"{__name__}.{REGISTRY[method].module}")


def prune(model: CifarResNet, method: str, ratio: float, previous: dict | None = None, **options) -> PruneResult:
    """Prune a copy of `model` with `method`, removing the fraction `ratio`; `model` itself is never changed.
    `previous`: the info of the earlier result `model` continues from (module docstring, "Continuing")."""
    ratio, options = validate(method, ratio, options)
    if previous is None:
        check_model(model)
    else:
        check_continuation(model, method, ratio, options, previous)
    work = copy.deepcopy(model)  # methods may edit what they get in place; the caller's model stays as it was
    pruned, details = implementation(method).prune(work, ratio, previous=previous, **options)
    info = {"method": method, "ratio": ratio, "options": options,
            "params_before": previous["params_before"] if previous else count_params(model),
            "params_after": count_params(pruned), "masked_zeros": masked_zeros(pruned),
            "step": previous["step"] + 1 if previous else 1, "structure": structure(pruned), **details}
    return PruneResult(pruned, info)


def structure(model: CifarResNet) -> dict:
    """What a pruning step leaves behind and fine-tuning keeps: widths, shared layers' k, masked zeros."""
    spec = model.spec()
    return {"stream_widths": spec["stream_widths"], "inner_widths": spec["inner_widths"], "shared": spec["shared"],
            "masked_zeros": masked_zeros(model)}


def check_continuation(model, method: str, ratio: float, options: dict, previous: dict) -> None:
    """Refuse a continuation that would silently undo the earlier pruning (ValueError naming what differs)."""
    if not isinstance(model, CifarResNet):
        raise TypeError(f"prune() expects a cnn_pruning.model.CifarResNet, got {type(model).__name__}")
    if not isinstance(previous, dict) or not {"method", "ratio", "options", "structure", "step"} <= previous.keys():
        raise ValueError("previous must be the info of an earlier pruning.prune() result")
    if previous["method"] != method:
        raise ValueError(f"cannot continue {previous['method']!r} pruning with {method!r}: another method would "
                         f"undo or ignore what {previous['method']!r} pruned; prune the dense model instead")
    if previous["options"] != options:
        differ = sorted(k for k in options if options[k] != previous["options"].get(k))
        raise ValueError(f"cannot continue {method!r} pruning with other options ({', '.join(differ)}: "
                         f"{ {k: previous['options'].get(k) for k in differ} } before, "
                         f"{ {k: options[k] for k in differ} } now)")
    if ratio < previous["ratio"]:
        raise ValueError(f"cannot continue {method!r} pruning at ratio {ratio} after {previous['ratio']}: pruned "
                         f"units do not come back; the ratio must not decrease")
    if structure(model) != previous["structure"]:
        raise ValueError(f"this model is not the earlier {method!r} result it should continue from: its structure "
                         f"{structure(model)} differs from {previous['structure']}")


def resolve(name: str, table: dict | None = None) -> tuple[str, dict]:
    """(method, options) that the list entry `name` stands for, given prune.options as `table`: a registered method
    with table[name] as its options (missing: the defaults), or a named variant, table[name] = {method: <a
    registered method>, <its options>...}. The options are returned as written (validate() fills in defaults).
    Raises ValueError naming the entry and what is allowed."""
    entry = (table or {}).get(name)
    if entry is not None and not isinstance(entry, dict):
        raise ValueError(f"prune.options.{name} = {entry!r} is not allowed; expected a mapping of options")
    entry = dict(entry or {})
    if name in REGISTRY:
        if VARIANT_KEY in entry:
            raise ValueError(f"prune.options.{name}: {VARIANT_KEY!r} names the method of a variant of your own; "
                             f"{name!r} is a registered method itself (call the variant something else)")
        return name, entry
    method = entry.pop(VARIANT_KEY, None)
    if method not in REGISTRY:
        if method is None:
            raise ValueError(f"unknown pruning method {name!r}; allowed: {', '.join(METHODS)}, or a variant defined "
                             f"in prune.options as `{name}: {{{VARIANT_KEY}: <one of them>, <options>}}`")
        raise ValueError(f"prune.options.{name}.{VARIANT_KEY} = {method!r} is not a pruning method; allowed: "
                         f"{', '.join(METHODS)}")
    return method, entry


def baseline_of(name: str, table: dict | None = None, among=None) -> str | None:
    """The random baseline that removes what the entry `name` removes, chosen by chance: the chance level it must
    beat. That is the entry of `among` (default: the baseline's own name) that runs the method's baseline (each
    baseline's `matches` in pruning.options.REGISTRY) with the same values of the options that decide what is removed
    (its `matched_options`: scope and round_to for random_channel), e.g. l2_unit_all -> random_channel_all. None for the
    baselines themselves, the control, kmeans_shared (it removes no weights or channels: no random choice matches
    its shared filters), or when `among` has no matching entry."""
    if name == CONTROL:
        return None
    method, options = resolve(name, table)
    baseline = next((b for b in BASELINES if method in REGISTRY[b].matches), None)
    if baseline is None:
        return None
    keys = REGISTRY[baseline].matched_options
    want = {k: validate(method, 0.0, options)[1][k] for k in keys}
    for candidate in (baseline,) if among is None else among:
        if candidate == CONTROL:
            continue
        m, o = resolve(candidate, table)
        if m == baseline and {k: validate(m, 0.0, o)[1][k] for k in keys} == want:
            return candidate
    return None


def masked_zeros(model: CifarResNet) -> int:
    """How many parameter entries model.masks holds at zero."""
    return sum(int((~keep).sum()) for keep in model.masks.values())


__all__ = ["BASELINES", "CONTROL", "METHODS", "REGISTRY", "VARIANT_KEY", "GradualPruner", "PruneConfig", "PruneResult",
           "Schedule", "baseline_of", "check_continuation", "defaults", "implementation", "masked_zeros",
           "options_class", "prune", "resolve", "structure", "validate"]
