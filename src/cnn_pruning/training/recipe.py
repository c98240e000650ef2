"""The pieces of a training recipe: batched augmentation, optimizers by name, the learning-rate schedule and the
distillation loss. cnn_pruning.training's fit() puts them together.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from . import TrainConfig

SCHEDULES = ("cosine", "multistep", "constant")


def resolve_flag(value, device: torch.device, auto_on_cpu: bool = False) -> bool:
    """A true/false/"auto" setting: auto = on for CUDA, and on CPU only where measured faster."""
    return (device.type == "cuda" or auto_on_cpu) if value == "auto" else bool(value)


def augment(x_u8: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with `pad` zero padding and random horizontal flip, for a whole batch at once."""
    b, c, h, w = x_u8.shape
    dev = x_u8.device
    padded = F.pad(x_u8, (pad, pad, pad, pad))
    # Random numbers come from a CPU generator so the stream is the same on every device.
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(dev)
    flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=dev))
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]  # flipping = reading columns backwards
    return padded[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                  rows, cols]


# ---------------------------------------------------------------------------------------------- optimizers and lr

def optimizer_classes() -> dict[str, type]:
    return {name.lower(): cls for name, cls in vars(torch.optim).items()
            if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer}


def optimizer_class(name: str, hparams: dict) -> type:
    """The torch.optim class called `name` (any case), checked against `hparams`; ValueError naming what is wrong."""
    classes = optimizer_classes()
    cls = classes.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(sorted(classes))}")
    if not isinstance(hparams, dict):
        raise ValueError(f"optimizer {name!r}: settings must be a mapping of keyword arguments, got {hparams!r}")
    accepted = [p for p in inspect.signature(cls).parameters if p != "params"]
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ValueError(f"optimizer {name!r}: unknown hyperparameter(s) {unknown}; {cls.__name__} accepts {accepted}")
    lr = hparams.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0):
        raise ValueError(f"optimizer {name!r}: lr = {lr!r} is not allowed; expected a number > 0")
    return cls


def make_optimizer(name: str, params, hparams: dict) -> torch.optim.Optimizer:
    """Any torch.optim class by case-insensitive name ("sgd", "adam", "adamax", "adamw", ...)."""
    return optimizer_class(name, hparams)(params, **hparams)


def lr_multiplier(step: int, total_steps: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Factor on the base lr at iteration `step` (0-based)."""
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "cosine":
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if cfg.schedule == "multistep":
        return cfg.gamma ** sum(step >= m * steps_per_epoch for m in cfg.milestones)
    if cfg.schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {cfg.schedule!r}; allowed: {', '.join(SCHEDULES)}")



def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor, alpha: float,
                      temperature: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """(1 - alpha) * CE(student, targets) + alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)), the KL
    averaged over the batch: the teacher's distribution first. T^2 keeps the soft term's gradients on the scale of
    the hard term's as T changes (Hinton et al. 2015, sec. 2)."""
    hard = F.cross_entropy(student, targets, label_smoothing=label_smoothing)
    soft = F.kl_div(F.log_softmax(student / temperature, 1), F.log_softmax(teacher / temperature, 1),
                    reduction="batchmean", log_target=True)
    return (1.0 - alpha) * hard + alpha * temperature ** 2 * soft
