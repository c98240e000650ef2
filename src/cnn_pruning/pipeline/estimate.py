"""How long the whole pipeline will take here, from a short measured probe: printed before training starts on a CPU.

    line = estimate.report(params)     # "This CPU: ~61 h for the whole pipeline (...)" or None on CUDA

Training and fine-tuning are most of a full run's time, and each costs a number of training steps known from
params.yaml alone (images x epochs, per model), so one measurement suffices: the seconds per training image of this
model on this machine, taken from two epochs of the real training loop over three batches of random images. Pruned
models are counted as dense (they are no slower). Every stage also pays a start-up (the interpreter, torch, MLflow)
whatever its size, which is most of a small run's time: the number of stages times the start-up the calling stage
measured in its own process (`startup_s`: its CPU seconds until then) plus importing MLflow's tracking client here.
Evaluation, timing, the sweep's pruning and DVC's own bookkeeping are left out, and the dataset's size is the
official one when data.train_size is null. The estimate ignores DVC's cache: stages that are up to date take no time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import sys
import time

import numpy as np
import torch

from ..core import schema
from ..datasets.catalog import KNOWN
from ..datasets.dataset import Dataset, Split
from ..machine import pick_device
from ..model import CifarResNet
from ..training import BaseTrainingConfig, fit

OFFICIAL_TEST_IMAGES = 10_000   # CIFAR-10 and CIFAR-100: 50,000 train + 10,000 test
QUICK_HINT_SECONDS = 3600       # longer than this: also print the quick profile's command


def training_images(params: dict) -> int | None:
    """Images per epoch: data.train_size, else the official training split less the validation images."""
    data = params["data"]
    if data.get("train_size"):
        return int(data["train_size"])
    if data.get("source") is None and data["name"] in KNOWN:
        return KNOWN[data["name"]].images - OFFICIAL_TEST_IMAGES - int(data["val_size"])
    return None  # an image folder of one's own: its size is known only once it is read


def epochs_of_work(params: dict) -> dict[str, int]:
    """Training epochs per part of the pipeline (each epoch = one pass over the training images)."""
    study = params["study"]
    points = len(study["methods"]) * len(study["ratios"]) * len(study["seeds"]) * len(study["variants"])
    return {"base models": len(params["train"]["optimizers"]) * params["train"]["epochs"],
            "fine-tunes": len(params["prune"]["methods"]) * params["finetune"]["epochs"],
            "study": (points + len(study["seeds"])) * params["finetune"]["epochs"]}


def stages(params: dict) -> int:
    """How many stages a run from scratch runs: dvc.yaml's stages, each matrix expanded over params.yaml's lists."""
    train, prune, study = params["train"], params["prune"], params["study"]
    points = len(study["methods"]) * len(study["ratios"]) * len(study["seeds"]) * len(study["variants"])
    return (2                                        # validate, download
            + 2 * len(train["optimizers"])           # train, evaluate_base
            + 3 * len(prune["methods"])              # prune, finetune, evaluate
            + len(params["sweep"]["methods"]) + 1    # sweep, report
            + len(study["seeds"]) + len(study["variants"]) + points   # control, variant, point
            + len(study["methods"]) * len(study["ratios"]) + 1)       # study_speed, study


def tracking_import_seconds() -> float:
    """Seconds to import MLflow's tracking client and SQL store here: what every stage but validate pays beside the
    start-up validate itself measures (nothing, where this process imported them already)."""
    t0 = time.perf_counter()
    for name in ("mlflow.tracking", "mlflow.store.tracking.sqlalchemy_store"):
        if name not in sys.modules:
            importlib.import_module(name)
    return time.perf_counter() - t0


def seconds_per_image(params: dict, classes: int, images: int, batches: int = 3) -> float:
    """Measured seconds per training image of one epoch of the real training loop (augmentation, steps, the
    validation pass in proportion), on `batches` batches of random images at train.batch_size: the second of two
    epochs, so one-off start-up costs are left out."""
    cfg = dataclasses.replace(schema.build(BaseTrainingConfig, params["train"]), epochs=2)
    n = batches * cfg.batch_size
    val = max(1, round(n * int(params["data"]["val_size"]) / images))
    rng = np.random.default_rng(0)

    def split(size: int) -> Split:
        return Split(rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8), rng.integers(0, classes, size))

    data = Dataset(split(n), split(val), split(1), tuple(str(c) for c in range(classes)), "probe", None)
    optimizer = cfg.optimizers[0]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        history = fit(CifarResNet(int(params["model"]["depth"]), classes), data, optimizer,
                      cfg.optimizer_params[optimizer], cfg, desc="estimate")
    return history[-1]["seconds"] / n


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{max(seconds / 60, 1):.0f} min"


def report(params: dict, startup_s: float = 0.0) -> str | None:
    """What to print before training on a machine without CUDA; None where training would run on CUDA.
    `startup_s`: what the calling stage's process took to start (module docstring)."""
    device = pick_device(params["train"]["device"])
    if device.type == "cuda":
        return None
    images = training_images(params)
    if images is None:
        return None
    classes = len(KNOWN[params["data"]["name"]].classes) if params["data"]["name"] in KNOWN else 10
    per_image = seconds_per_image(params, classes, images)
    parts = {name: epochs * images * per_image for name, epochs in epochs_of_work(params).items()}
    per_stage = startup_s + tracking_import_seconds()
    parts[f"start-ups ({stages(params)} stages x {per_stage:.1f} s)"] = stages(params) * per_stage
    total = sum(parts.values())
    line = (f"Estimate for this CPU ({torch.get_num_threads()} threads, {per_image * 1e3:.1f} ms per training image "
            f"measured on ResNet{params['model']['depth']}): ~{hours(total)} for the whole pipeline from scratch ("
            + ", ".join(f"{name} {hours(s)}" for name, s in parts.items())
            + f"; {images:,} training images an epoch). Stages DVC has cached take no time.")
    if total > QUICK_HINT_SECONDS:
        line += ("\nFor a first look in about an hour: make run PROFILE=quick  (profiles/quick.yaml; "
                 "`git checkout params.yaml` undoes it)")
    return line
