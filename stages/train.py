"""DVC stage `train@<optimizer>`: train the base ResNet20 with one optimizer.

    python stages/train.py sgd         # reads params.yaml: train (shared settings + optimizer_params.sgd)

Writes models/base/<opt>.pt (state_dict + spec), metrics/train/<opt>.json (accuracies, params, epochs),
metrics/train/<opt>.timing.json (seconds, images/s, device: kept apart so runs compare exactly on the rest) and
plots/train/<opt>.csv (one row per epoch). A crash resumes from checkpoints/train/<opt>.pt on the next run.
"""

import sys

import torch

from cnn_pruning import data, files, params, tracking
from cnn_pruning.model import ResNet20
from cnn_pruning.stage import device_tags, fingerprint, fit_and_save, run_stage
from cnn_pruning.train import TrainConfig, pick_device

DATA = "data/cifar10.npz"


def main(optimizer: str) -> None:
    section = params.section("train")
    hparams = section["optimizer_params"][optimizer]
    cfg = TrainConfig.from_params(section)
    # This run's own settings: the shared ones plus this optimizer's, not the other optimizers'.
    own = {k: v for k, v in section.items() if k not in ("optimizers", "optimizer_params")}
    own.update(optimizer=optimizer, optimizer_params=hparams)
    ds = data.load(DATA)
    tags = {"optimizer": optimizer, **device_tags(pick_device(cfg.device))}  # data source: tracking adds it
    with tracking.stage_run("train", f"train-{optimizer}", params=own, tags=tags) as run:
        torch.manual_seed(cfg.seed)
        fit_and_save(ResNet20(), ds, stage="train", name=optimizer, optimizer=optimizer, hparams=hparams, cfg=cfg,
                     run=run, model_path=f"models/base/{optimizer}.pt",
                     resume_key=fingerprint(own, files.md5_of(DATA)), meta={"optimizer": optimizer})


if __name__ == "__main__":
    run_stage(main, *sys.argv[1:], expected=(tracking.TrackingError,))
