"""DVC stage `train@<optimizer>`: train the base CIFAR ResNet (model.depth) with one optimizer.

    python stages/train.py sgd --data data/cifar10.npz --model models/base/sgd.pt --metrics metrics/train/sgd.json \
        --timing metrics/train/sgd.timing.json --history plots/train/sgd.csv --chart plots/train/sgd.png \
        --resume checkpoints/train/sgd.pt

Reads params.yaml's model section (depth) and train section (the recipe + optimizer_params.<optimizer>); the
number of classes and the normalisation statistics come from the dataset file. Writes the model (state_dict + spec),
metrics (accuracies, params, epochs), timing (seconds, images/s, device: kept apart so runs compare exactly on the
rest), the per-epoch history and its chart. A crash resumes from --resume on the next run.
"""

import argparse

import torch

from cnn_pruning import tracking
from cnn_pruning.core import files, params, schema
from cnn_pruning.core.cli import add_paths, run_stage
from cnn_pruning.datasets import dataset
from cnn_pruning.machine import device_tags, pick_device
from cnn_pruning.model import CifarResNet, ModelConfig
from cnn_pruning.training import TrainConfig
from cnn_pruning.training.fitting import FitOutputs, fit_and_save


def main(optimizer: str, data: str, **outputs: str) -> None:
    section = params.section("train")
    hparams = section["optimizer_params"][optimizer]
    cfg = TrainConfig.from_params(section)
    # This run's own settings: the shared ones plus this optimizer's, not the other optimizers'.
    own = {k: v for k, v in section.items() if k not in ("optimizers", "optimizer_params")}
    arch = schema.build(ModelConfig, params.section("model"))
    own.update(optimizer=optimizer, optimizer_params=hparams, depth=arch.depth)
    ds = dataset.load(data)
    tags = {"optimizer": optimizer, **device_tags(pick_device(cfg.device))}
    coords = tracking.coordinates(base_optimizer=optimizer, seed=cfg.seed, depth=arch.depth, dataset=ds.name)
    with tracking.stage_run("train", tracking.run_name("train", optimizer), params=own, tags=tags, coords=coords,
                            data=ds, splits=("train", "val", "test"), system_metrics=True) as run:
        torch.manual_seed(cfg.seed)
        model = CifarResNet(arch.depth, len(ds.classes), normalization=ds.normalization)
        fit_and_save(model, ds, stage="train", name=optimizer, optimizer=optimizer, hparams=hparams, cfg=cfg,
                     run=run, outputs=FitOutputs(**outputs), resume_key=files.fingerprint(own, files.md5_of(data)),
                     meta={"optimizer": optimizer})


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("optimizer", help="a key of train.optimizer_params (any torch.optim class name)")
parser.add_argument("--data", required=True, help="the dataset file (.npz)")
add_paths(parser, FitOutputs)

if __name__ == "__main__":
    run_stage(main, parser)
