"""The study: every method at every ratio and seed, pruned from the same base model, fine-tuned and measured.

    options = seeded("kmeans_channel", {}, seed=2)           # the method's options with the point's seed in them
    point_name("kmeans_channel", 0.5, 2, "gradual")          # "kmeans_channel-0.5-2-gradual": its files' stem
    VARIANTS["gradual_distill"]                              # Variant(schedule="gradual", distill=True)

One point = (method, ratio, seed, variant). The seed reaches everything random about it: the fine-tuning order and
augmentation (the recipe's seed), k-means initialisation and the random baselines' choices (the method's `seed`
option); methods without randomness prune the same way at every seed. The base model is shared: the study measures
the spread of pruning and fine-tuning, not of training the base (one base per optimizer, trained once).
The control is the base fine-tuned with the same recipe and seed, once per seed (it has no ratio).
The study section of params.yaml (which points, the tolerance) is StudyConfig, here beside the names it checks, so
that validating params.yaml imports none of the statistics: changing how results are read reruns no point. A point
is run by cnn_pruning.study.point, summarised by cnn_pruning.study.report; the stages are stages/study_point.py,
study_speed.py and study_report.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .. import pruning
from ..core.schema import Rule, int_list, number, of_type, ratio_list, setting
from ..pruning import METHODS, SCOPE_ALL_VARIANTS


class Variant(NamedTuple):
    """How a point's model is pruned and fine-tuned, beyond its method and options: the same total fine-tune epochs
    in every variant. The schedule's steps and prune_until are prune's, the distillation's alpha and temperature
    finetune's; the variant only switches them on."""
    schedule: str   # pruning.gradual.SCHEDULES: oneshot (pruned, then fine-tuned) or gradual (pruned while tuned)
    distill: bool   # fine-tuned against the unpruned base's outputs (train.Distillation)


VARIANTS = {"oneshot": Variant("oneshot", False), "gradual": Variant("gradual", False),
            "oneshot_distill": Variant("oneshot", True), "gradual_distill": Variant("gradual", True)}
DEFAULT_VARIANT = "oneshot"  # what the study ran before variants: one-shot pruning, plain fine-tuning


def seeded(method: str, options: dict, seed: int) -> dict:
    """`options` of `method` with its defaults filled in and, where the method draws random numbers (k-means, the
    baselines), `seed` in place of their seed: a point's seed decides every random choice."""
    _, resolved = pruning.validate(method, 0.0, options)
    return {**resolved, "seed": seed} if "seed" in resolved else resolved


def point_name(method: str, ratio: float | None, seed: int, variant: str = DEFAULT_VARIANT) -> str:
    """The file stem of a point's outputs, as dvc.yaml writes it (the control has no ratio and no variant)."""
    return f"{method}-{seed}" if ratio is None else f"{method}-{ratio}-{seed}-{variant}"


def series_name(method: str, variant: str) -> str:
    """How a (method, variant) is labelled, in tables, charts and file names (results/study/methods/<series>.csv):
    the method alone for the default variant (one-shot, no distillation), else method-variant: "-" is allowed in
    file names on every OS and in MLflow metric names, and no method or variant name has one."""
    return method if variant == DEFAULT_VARIANT else f"{method}-{variant}"


@dataclass
class StudyConfig:
    """params.yaml's study section: accuracy after fine-tuning over methods x ratios x seeds, against the control."""
    methods: list = setting([*METHODS, *SCOPE_ALL_VARIANTS],
                            of_type(list, text="a list of method names or named variants"),
                            "methods studied, baselines included (the control is always there)")
    ratios: list = setting([0.3, 0.5, 0.7, 0.9], ratio_list(), "fractions removed; one point per ratio and seed")
    seeds: list = setting([0, 1, 2], int_list(0), "one point per seed: fine-tuning order, k-means init, baselines")
    variants: list = setting([DEFAULT_VARIANT], Rule(
        lambda v: isinstance(v, list) and len(v) > 0 and len(set(v)) == len(v) and all(x in VARIANTS for x in v),
        f"a non-empty list of distinct names from {', '.join(VARIANTS)}"),
        "how each point is pruned and fine-tuned: one-shot or gradual (prune.steps, prune.prune_until), with or "
        "without distillation (finetune.distill_*); the same fine-tune epochs in all")
    tolerance: float = setting(1.0, number(0, 100),
                               "accuracy points (%) below the control's mean that still count as 'no loss'")
    significance: float = setting(0.05, number(0, 1),
                                  "Welch t-test level: a p-value at or above it = not distinguishable")
