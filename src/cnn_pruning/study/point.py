"""One point of the study: the base model pruned with one method at one ratio, fine-tuned at one seed, measured.

    model, row = run_point(base, ds, "kmeans_channel", 0.5, 2, study.seeded("kmeans_channel", {}, 2), recipe,
                           "sgd", {"lr": 0.01}, scratch="checkpoints/study/x.rz")
    model, row = run_point(base, ds, CONTROL, None, 2, {}, recipe, ...)   # the control: unpruned, same training
    model, row = run_point(..., variant="gradual_distill", schedule=Schedule("gradual", 10, 0.5),
                           distill=(0.9, 4.0))                    # pruned while fine-tuned, taught by the base
    variant_settings("gradual", params["prune"], params["finetune"])   # what a variant runs with: its stage's file

What a seed decides, and why the base is shared: cnn_pruning.study. The stage is stages/study_point.py.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Callable

import torch.nn as nn

from .. import pruning
from ..core import files, schema
from ..datasets.dataset import Dataset
from ..machine import pick_device
from ..model import export
from ..model.measure import accuracy, model_summary
from ..pruning.gradual import GradualPruner, Schedule
from ..training import Distillation, FinetuneConfig, TrainConfig, fit, iterations
from . import DEFAULT_VARIANT, VARIANTS, point_name


def variant_settings(name: str, prune: dict, finetune: dict) -> dict:
    """What the variant `name` runs with, from params.yaml's prune and finetune sections: {"schedule": the gradual
    schedule's record (pruning.gradual.Schedule.record(); {"schedule": "oneshot"} for one-shot), "distill":
    {"alpha", "temperature"} or None}. Only the settings the variant uses; validated, ValueError naming a bad one."""
    if name not in VARIANTS:
        raise ValueError(f"unknown study variant {name!r}; allowed: {', '.join(VARIANTS)}")
    how = VARIANTS[name]
    schedule = schema.build(Schedule, {"schedule": how.schedule, "steps": prune.get("steps", 10),
                                "prune_until": prune.get("prune_until", 0.5)})
    tuning = schema.build(FinetuneConfig, {k: v for k, v in finetune.items() if k.startswith("distill_")})
    distill = {"alpha": tuning.distill_alpha, "temperature": tuning.distill_temperature} if how.distill else None
    return {"schedule": schedule.record(), "distill": distill}


def run_point(base: nn.Module, ds: Dataset, method: str, ratio: float | None, seed: int, options: dict,
              recipe: TrainConfig, optimizer: str, hparams: dict, *, scratch: str, resume_path: str | None = None,
              resume_key: str = "", on_epoch: Callable[[dict], None] | None = None,
              name: str | None = None, variant: str = DEFAULT_VARIANT, schedule: Schedule | None = None,
              distill: tuple[float, float] | None = None) -> tuple[nn.Module, dict]:
    """Prune `base` (a copy; CONTROL: unpruned), fine-tune it with `recipe` at `seed` and measure it on the whole
    test split; the row is labelled `name` (a named variant's; default: the method). `options` are passed as
    given (see seeded()). `variant` (study.VARIANTS) says whether pruning is one-shot or gradual (with `schedule`'s
    steps and prune_until) and whether the base teaches ((alpha, temperature) in `distill`). Returns the model and
    one flat row: the point, test accuracy right after one-shot pruning and after fine-tuning, params, nonzeros,
    MACs, bytes stored, epochs, and the fine-tune's seconds with the teacher's share of them (zero without
    distillation): the only entries that differ between two runs of the same inputs, kept for the cost of a variant.

    `scratch`: where the compact export is written to be measured; removed afterwards."""
    control, device = method == pruning.CONTROL, pick_device(recipe.device)
    how = VARIANTS[variant]
    oneshot = copy.deepcopy(base) if control else pruning.prune(base, method, ratio, **options).model
    after_prune = accuracy(oneshot, ds.test, recipe.eval_batch_size, device)["accuracy"]
    label = name or method
    recipe = dataclasses.replace(recipe, seed=seed)
    pruner, model = None, oneshot
    if how.schedule == "gradual" and not control:
        schedule = dataclasses.replace(schedule or Schedule(), schedule="gradual")
        pruner = GradualPruner(base, method, ratio, options, schedule, iterations(ds, recipe))
        model = copy.deepcopy(base)
    teacher = Distillation(copy.deepcopy(base), *distill) if how.distill and not control else None
    history = fit(model, ds, optimizer, hparams, recipe, on_epoch=on_epoch, resume_path=resume_path,
                  resume_key=resume_key, desc=f"point-{point_name(label, ratio, seed, variant)}", teacher=teacher,
                  changes=pruner)
    model = pruner.model if pruner is not None else model
    test = accuracy(model, ds.test, recipe.eval_batch_size, device)
    counts, base_counts = model_summary(model), model_summary(base)
    size = export.export_compact(model.cpu(), scratch)
    files.remove(scratch)
    row = {"method": label, "variant": variant, "ratio": ratio, "seed": seed,
           "test_acc": test["accuracy"], "acc_after_prune": after_prune, "test_images": test["n"],
           "params": counts["params"], "nonzero_params": counts["nonzero_params"],
           "distinct_filters": counts["distinct_filters"], "macs": counts["macs"],
           "macs_nonzero_weights": counts["macs_nonzero_weights"], "base_macs": base_counts["macs"],
           "macs_reduction": base_counts["macs"] / max(1, counts["macs_nonzero_weights"]), "size_bytes": size,
           "epochs": len(history), "finetune_seconds": sum(h["seconds"] for h in history),
           "teacher_seconds": sum(h.get("teacher_seconds", 0.0) for h in history),
           "architecture": getattr(base, "name", type(base).__name__), "dataset": ds.title}
    return model, row
