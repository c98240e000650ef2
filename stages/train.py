"""DVC stage `train@<optimizer>`: train the base ResNet20 with one optimizer.

    python stages/train.py sgd         # reads params.yaml: train (shared settings + optimizer_params.sgd)

Writes models/base/<opt>.pt (state_dict + spec), metrics/train/<opt>.json (accuracies, params, epochs),
metrics/train/<opt>.timing.json (seconds, images/s, device: kept apart so runs compare exactly on the rest) and
plots/train/<opt>.csv (one row per epoch). A crash resumes from checkpoints/train/<opt>.pt on the next run.
"""

import hashlib
import json
import statistics
import sys

import torch

from cnn_pruning import charts, data, files, params, tracking
from cnn_pruning.model import ResNet20, count_params, save_checkpoint
from cnn_pruning.stage import device_tags, run_stage
from cnn_pruning.train import HISTORY_COLUMNS, TrainConfig, evaluate_split, fit, pick_device

DATA = "data/cifar10.npz"


def main(optimizer: str) -> None:
    section = params.section("train")
    hparams = (section.get("optimizer_params") or {}).get(optimizer)
    if not isinstance(hparams, dict):
        raise ValueError(f"train.optimizer_params has no entry for {optimizer!r}: add one (at least lr)")
    cfg = TrainConfig.from_params(section)
    # This run's own settings: the shared ones plus this optimizer's, not the other optimizers'.
    own = {k: v for k, v in section.items() if k not in ("optimizers", "optimizer_params")}
    own.update(optimizer=optimizer, optimizer_params=hparams)
    model_path, state_path = f"models/base/{optimizer}.pt", f"checkpoints/train/{optimizer}.pt"
    metrics_path, timing_path = f"metrics/train/{optimizer}.json", f"metrics/train/{optimizer}.timing.json"
    history_path, chart_path = f"plots/train/{optimizer}.csv", f"plots/train/{optimizer}.png"

    ds = data.load(DATA)
    device = pick_device(cfg.device)
    resume_key = hashlib.md5((json.dumps(own, sort_keys=True) + files.md5_of(DATA)).encode()).hexdigest()
    tags = {"optimizer": optimizer, "data.source": ds.source, "data.source_md5": ds.source_md5 or "",
            **device_tags(device)}
    with tracking.stage_run("train", f"train-{optimizer}", params=own, tags=tags) as run:
        torch.manual_seed(cfg.seed)
        model = ResNet20()
        history = fit(model, ds, optimizer, hparams, cfg, resume_path=state_path, resume_key=resume_key,
                      on_epoch=lambda row: run.log_metrics({k: v for k, v in row.items() if k != "epoch"},
                                                           step=row["epoch"]),
                      desc=f"train-{optimizer}")
        test_loss, test_acc = evaluate_split(model, ds.test, cfg)
        best = max(history, key=lambda r: r["val_acc"])
        metrics = {"optimizer": optimizer, "test_acc": test_acc, "test_loss": test_loss,
                   "best_val_acc": best["val_acc"], "best_val_epoch": best["epoch"],
                   "last_val_acc": history[-1]["val_acc"], "params": count_params(model), "epochs": len(history),
                   "train_images": len(ds.train.labels)}
        seconds = [r["seconds"] for r in history]
        timing = {"seconds_per_epoch_median": statistics.median(seconds), "seconds_total": sum(seconds),
                  "images_per_second_median": len(ds.train.labels) / statistics.median(seconds),
                  **device_tags(device)}
        save_checkpoint(model_path, model, meta={"stage": "train", "optimizer": optimizer, "test_acc": test_acc})
        files.write_json(metrics_path, metrics)
        files.write_json(timing_path, timing)
        files.write_csv(history_path, history, HISTORY_COLUMNS)
        charts.plot_history(history, chart_path, f"ResNet20, {optimizer}: loss and accuracy per epoch")
        run.log_metrics({k: v for k, v in {**metrics, **timing}.items() if k not in ("params", "epochs")})
        run.set_tags({"model_md5": files.md5_of(model_path), "model_path": model_path})
        for path in (metrics_path, timing_path, history_path, chart_path):
            run.log_artifact(path)
    files.remove(state_path)  # finished: the next run must start from scratch, not resume
    print(f"train-{optimizer}: test_acc {test_acc:.4f}, best val_acc {best['val_acc']:.4f} (epoch {best['epoch']})")


if __name__ == "__main__":
    run_stage(main, *sys.argv[1:], expected=(tracking.TrackingError,))
