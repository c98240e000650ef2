"""What the train and finetune stages do and write: train a model with the recipe, then save the model, its metrics,
timing, per-epoch history and chart, logging each epoch and each file to the stage's tracking run.

    outputs = FitOutputs(model="models/base/sgd.pt", metrics="metrics/train/sgd.json", ...)   # paths: dvc.yaml's
    fit_and_save(CifarResNet(), ds, stage="train", name="sgd", optimizer="sgd", hparams={...}, cfg=cfg, run=run,
                 outputs=outputs, resume_key=files.fingerprint(...), meta={"optimizer": "sgd"})

Nothing here imports mlflow: the stage passes in the run it got from cnn_pruning.tracking.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .. import charts
from ..core import files
from ..datasets.dataset import Dataset
from ..machine import device_tags, machine_load, pick_device
from ..model import CifarResNet, count_params, measure, save_checkpoint
from . import HISTORY_COLUMNS, OPTIONAL_COLUMNS, Distillation, TrainConfig, fit


@dataclass(frozen=True)
class FitOutputs:
    """Where a training run's files go (the stage's arguments, from dvc.yaml)."""
    model: str      # the checkpoint
    metrics: str    # accuracies, params, epochs: identical for identical inputs on CPU
    timing: str     # seconds and images/s, kept apart so the rest compares exactly
    history: str    # one CSV row per epoch
    chart: str      # loss and accuracy per epoch (PNG)
    resume: str     # scratch state after every epoch; a crash resumes from it, success removes it


def fit_and_save(model: CifarResNet, ds: Dataset, *, stage: str, name: str, optimizer: str, hparams: dict,
                 cfg: TrainConfig, run, outputs: FitOutputs, resume_key: str, meta: dict,
                 teacher: Distillation | None = None, changes=None) -> dict:
    """Train `model` with the recipe, write every file in `outputs` and log them; returns the metrics. `teacher`
    and `changes` (distillation, gradual pruning) are train.fit()'s; with changes the model saved is changes.model,
    and meta's "pruning" becomes the last step's info."""
    device = pick_device(cfg.device)
    history = fit(model, ds, optimizer, hparams, cfg, resume_path=outputs.resume, resume_key=resume_key,
                  on_epoch=lambda row: run.log_metrics({k: v for k, v in row.items() if k != "epoch"},
                                                       step=row["epoch"]),
                  desc=f"{stage}-{name}", teacher=teacher, changes=changes)
    if changes is not None:
        model, meta = changes.model, {**meta, "pruning": changes.info}
    # The same fp32 accuracy function as the prune and evaluate stages (fit's per-epoch validation may use bf16).
    test = measure.accuracy(model, ds.test, cfg.eval_batch_size, device)
    test_acc = test["accuracy"]
    best = max(history, key=lambda r: r["val_acc"])
    labels = {k: v for k, v in meta.items() if not isinstance(v, (dict, list))}  # method, ratio, ...: not the details
    metrics = {**labels, "test_acc": test_acc, "test_per_class_acc": test["per_class"], "best_val_acc": best["val_acc"],
               "best_val_epoch": best["epoch"], "last_val_acc": history[-1]["val_acc"],
               "params": count_params(model), "epochs": len(history), "train_images": len(ds.train.labels)}
    seconds = [r["seconds"] for r in history]
    timing = {"seconds_per_epoch_median": statistics.median(seconds), "seconds_total": sum(seconds),
              "images_per_second_median": len(ds.train.labels) / statistics.median(seconds), **device_tags(device),
              **machine_load()}  # two queue workers on two cores: not comparable with a quiet run
    if teacher is not None:  # the teacher's forward passes, part of seconds_total
        timing["teacher_seconds_total"] = sum(r["teacher_seconds"] for r in history)
    save_checkpoint(outputs.model, model, meta={**meta, "stage": stage, "test_acc": test_acc})
    files.write_json(outputs.metrics, metrics)
    files.write_json(outputs.timing, timing)
    files.write_csv(outputs.history, history, HISTORY_COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in history[0]))
    charts.plot_history(history, outputs.chart,
                        f"{model.name} on {ds.title}, {stage} {name}: loss and accuracy per epoch",
                        f"{len(ds.train.labels):,} training and {len(ds.val.labels):,} validation images, "
                        f"{len(history)} epochs of batches of {cfg.batch_size}")
    run.log_results({**metrics, **timing}, skip=("best_val_epoch", "ratio"))  # ratio: a param of the run
    run.log_model(outputs.model)
    run.log_artifacts(named={"metrics.json": outputs.metrics, "timing.json": outputs.timing,
                             "history.csv": outputs.history, "curves.png": outputs.chart})
    # Finished: the next run must start from scratch, not resume; but only once the run is closed, so a stage that
    # could not reach the tracking server at the end resumes (with nothing left to train) rather than retraining.
    run.when_finished.append(lambda: files.remove(outputs.resume))
    print(f"{stage}-{name}: test_acc {test_acc:.4f}, best val_acc {best['val_acc']:.4f} (epoch {best['epoch']})")
    return metrics
