"""What the stage scripts share: a clean exit on expected errors, device tags, and the train/fine-tune recipe.

Stages stay thin: parse the matrix coordinate, call the library, write outputs, log. Anything two stages do alike
lives here. Nothing here imports mlflow: a stage passes in the run object it got from cnn_pruning.tracking.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
from typing import Callable

import torch

from . import charts, files, measure, speed
from .config import ConfigError
from .data import CIFAR10, DataError
from .model import CheckpointError, ResNet20, count_params, load_checkpoint, save_checkpoint
from .train import HISTORY_COLUMNS, TrainConfig, TrainingDiverged, fit, pick_device

# Errors that are the user's input or environment, not a bug: one clear line, exit status 1, no traceback.
# (A KeyError is a bug, not input: params are validated first, so it keeps its traceback.)
EXPECTED_ERRORS = (DataError, CheckpointError, TrainingDiverged, ConfigError, ValueError, FileNotFoundError)


def run_stage(main: Callable[..., None], *args: str, expected: tuple[type[BaseException], ...] = ()) -> None:
    """Call main(*args); an expected error (plus `expected`, e.g. tracking.TrackingError) exits 1 with its message."""
    try:
        main(*args)
    except EXPECTED_ERRORS + expected as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def device_tags(device: torch.device) -> dict:
    tags = {"device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        tags["device_name"] = torch.cuda.get_device_name(device)
    return tags


def fingerprint(*parts) -> str:
    """md5 of everything that determines a result: a resume state saved for other inputs is never reused."""
    return hashlib.md5(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def fit_and_save(model: ResNet20, ds: CIFAR10, *, stage: str, name: str, optimizer: str, hparams: dict,
                 cfg: TrainConfig, run, model_path: str, resume_key: str, meta: dict) -> dict:
    """Train `model` with the recipe, then write the model, metrics, timing, per-epoch history and its chart.

    Outputs: `model_path`, metrics/<stage>/<name>.json (accuracies, params, epochs: identical for identical
    inputs on CPU), metrics/<stage>/<name>.timing.json (seconds and images/s, kept apart so the rest compares
    exactly), plots/<stage>/<name>.csv and .png. A crash resumes from checkpoints/<stage>/<name>.pt.
    """
    state_path = f"checkpoints/{stage}/{name}.pt"
    metrics_path, timing_path = f"metrics/{stage}/{name}.json", f"metrics/{stage}/{name}.timing.json"
    history_path, chart_path = f"plots/{stage}/{name}.csv", f"plots/{stage}/{name}.png"
    device = pick_device(cfg.device)
    history = fit(model, ds, optimizer, hparams, cfg, resume_path=state_path, resume_key=resume_key,
                  on_epoch=lambda row: run.log_metrics({k: v for k, v in row.items() if k != "epoch"},
                                                       step=row["epoch"]),
                  desc=f"{stage}-{name}")
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
              **speed.machine_load()}  # two queue workers on two cores: not comparable with a quiet run
    save_checkpoint(model_path, model, meta={**meta, "stage": stage, "test_acc": test_acc})
    files.write_json(metrics_path, metrics)
    files.write_json(timing_path, timing)
    files.write_csv(history_path, history, HISTORY_COLUMNS)
    charts.plot_history(history, chart_path, f"ResNet20, {stage} {name}: loss and accuracy per epoch")
    run.log_metrics({k: v for k, v in {**metrics, **timing}.items() if k not in ("epochs", "best_val_epoch")})
    run.set_tags({"model_md5": files.md5_of(model_path), "model_path": model_path})
    for path in (metrics_path, timing_path, history_path, chart_path):
        run.log_artifact(path)
    files.remove(state_path)  # finished: the next run must start from scratch, not resume
    print(f"{stage}-{name}: test_acc {test_acc:.4f}, best val_acc {best['val_acc']:.4f} (epoch {best['epoch']})")
    return metrics


def evaluate_and_save(name: str, model_path: str, base_path: str, cfg: dict, ds: CIFAR10, run, labels: dict) -> dict:
    """Measure the model at `model_path` against the base at `base_path` (measure.compare) and write
    metrics/evaluate/<name>.json (+ .timing.json with every timed sample) and its compact export
    models/compact/<name>.rz, logging the scalars and files to `run`."""
    model, _ = load_checkpoint(model_path)
    base, _ = load_checkpoint(base_path)
    base_export = f"checkpoints/evaluate/{name}-base.rz"
    metrics, timing = measure.compare(
        model, base, ds.test, export_path=f"models/compact/{name}.rz", base_export_path=base_export,
        runtime=cfg["runtime"], batch_size=cfg["batch_size"], rounds=cfg["rounds"], warmup=cfg["warmup"],
        device=str(pick_device(cfg["device"])), threads=cfg["threads"], precision=cfg["precision"])
    files.remove(base_export)
    metrics = {**labels, **metrics}
    metrics_path, timing_path = f"metrics/evaluate/{name}.json", f"metrics/evaluate/{name}.timing.json"
    files.write_json(metrics_path, metrics)
    files.write_json(timing_path, timing)
    run.log_metrics({k: v for k, v in metrics.items() if k not in ("ratio", "threads", "timed_rounds")})
    run.set_tags({"device": metrics["device"], "threads": metrics["threads"], "runtime": metrics["runtime"]})
    run.log_artifact(metrics_path)
    run.log_artifact(timing_path)
    print(f"evaluate-{name}: test_acc {metrics['test_acc']:.4f} (base {metrics['base_test_acc']:.4f}), "
          f"params {metrics['params']}, MACs {metrics['macs']}, size {metrics['size_bytes']} B "
          f"({metrics['size_ratio']:.2f}x smaller), speedup {metrics['speedup']:.2f}x at batch {cfg['batch_size']} "
          f"and {metrics['speedup_b1']:.2f}x at batch 1 on {metrics['runtime']}")
    return metrics
