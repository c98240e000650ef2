"""Training on a tensor-resident dataset: batched augmentation, any torch.optim optimizer, cosine/multistep schedules.

    history = fit(model, dataset, "sgd", {"lr": 0.1, "momentum": 0.9}, TrainConfig(epochs=200, batch_size=128))

The whole split lives on the training device as one uint8 tensor; random crop (zero pad 4) and horizontal flip are
done for a whole batch with tensor indexing, so there are no per-sample PIL transforms and no DataLoader workers.
benchmarks/train_throughput.py compares this path with the classic torchvision pipeline.
On CPU, the same params and seed give the same numbers. With `resume_path`, fit() saves its state after every
epoch and continues from it after a crash. A pruned model's masked entries (model.masks) stay exactly zero.

Two additions for fine-tuning a pruned model: `teacher` (Distillation: Hinton et al.'s loss against the unpruned
model's outputs, the teacher's time reported per epoch) and `changes` (an object that may replace the model before an
iteration, pruning.gradual.GradualPruner: the optimizer then carries on for every parameter whose name and shape are
unchanged and starts afresh for the others, as a newly built optimizer would; resume restores the changed model).
"""

from __future__ import annotations

import math
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ..core import schema
from ..core.errors import UserError
from ..core.files import atomic_path
from ..core.schema import BOOLEAN, FLAG, int_list, integer, number, of_type, one_of, setting
from ..datasets.dataset import Dataset
from ..machine import DEVICES, pick_device
from ..model import apply_masks
from ..model.inputs import normalize, to_device
from .recipe import SCHEDULES, augment, distillation_loss, lr_multiplier, make_optimizer, resolve_flag

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
OPTIONAL_COLUMNS = ("prune_ratio", "teacher_seconds")  # gradual pruning's ratio at the epoch's end; distillation


class TrainingDiverged(UserError, RuntimeError):
    """The loss became NaN or infinite; training stops instead of going on with garbage."""


@dataclass
class TrainConfig:
    """The recipe that training and fine-tuning share (params.yaml's train and finetune sections)."""
    epochs: int = setting(200, integer(1), "passes over the training split (200 with cosine is the common recipe)")
    batch_size: int = setting(128, integer(1), "images per step (He et al. use 128)")
    schedule: str = setting("cosine", one_of(*SCHEDULES), "learning-rate schedule, stepped every iteration")
    warmup_epochs: float = setting(0.0, number(0, 1e6), "linear warm-up from ~0 to the base lr, in epochs")
    milestones: list = setting([100, 150], int_list(0), "multistep only: epochs at which lr *= gamma")
    gamma: float = setting(0.1, number(0, 1), "multistep decay factor")
    label_smoothing: float = setting(0.0, number(0, 1, hi_open=True), "0 = plain cross-entropy, as in the paper")
    seed: int = setting(0, integer(0), "weight init, shuffling and augmentation")
    device: str = setting("auto", one_of(*DEVICES), "auto = cuda when available, else cpu")
    channels_last: str = setting("auto", FLAG, "auto = on (measured faster on CUDA and on the CPU)")
    amp: str = setting("auto", FLAG, "auto = bf16 autocast on cuda, off on cpu (measured slower there)")
    eval_batch_size: int = setting(1000, integer(1), "validation/test batch size; does not change results")

    @classmethod
    def from_params(cls, section: dict) -> "TrainConfig":
        """The recipe part of a train or finetune section (the optimizer keys are the caller's)."""
        names = {f.name for f in schema.fields(TrainConfig)}
        return schema.build(TrainConfig, {k: v for k, v in section.items() if k in names})


@dataclass
class BaseTrainingConfig(TrainConfig):
    """params.yaml's train section: the recipe plus the optimizers, one base model each."""
    optimizers: list = setting(["adam", "sgd", "adamax"], of_type(list, text="a list of optimizer names"),
                               "one base model per entry; any torch.optim class name works")
    optimizer_params: dict = setting(
        {"sgd": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0005},
         "adam": {"lr": 0.001, "weight_decay": 0.0001}, "adamax": {"lr": 0.002, "weight_decay": 0.0001}},
        of_type(dict, text="a mapping optimizer -> keyword arguments"), "keyword arguments of each torch.optim class")


@dataclass
class FinetuneConfig(TrainConfig):
    """params.yaml's finetune section: the recipe plus one optimizer, the same for every method and the control."""
    epochs: int = schema.override(TrainConfig, "epochs", 30)
    milestones: list = schema.override(TrainConfig, "milestones", [15, 25])
    optimizer: str = setting("sgd", of_type(str, text="a torch.optim class name"), "torch.optim class, any case")
    optimizer_params: dict = setting({"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0005},
                                     of_type(dict, text="keyword arguments of the optimizer"),
                                     "keyword arguments of the optimizer")
    distill: bool = setting(False, BOOLEAN, "knowledge distillation from the unpruned base model (the teacher)")
    distill_alpha: float = setting(0.9, number(0, 1), "distill: weight of the teacher term; (1 - alpha) on the labels")
    distill_temperature: float = setting(4.0, number(0, 1000, lo_open=True),
                                         "distill: softmax temperature T of both teacher and student (> 0)")


@dataclass
class Distillation:
    """Fine-tuning against a teacher's outputs (Hinton et al. 2015)."""
    teacher: nn.Module
    alpha: float        # weight of the teacher term, in [0, 1]
    temperature: float  # T > 0

    @classmethod
    def from_params(cls, section: dict, teacher: nn.Module) -> "Distillation | None":
        """The finetune section's distillation (None when finetune.distill is off)."""
        cfg = schema.build(FinetuneConfig, section)
        return cls(teacher, cfg.distill_alpha, cfg.distill_temperature) if cfg.distill else None


def iterations(dataset: Dataset, cfg: TrainConfig) -> int:
    """How many optimizer steps fit() takes: epochs x ceil(training images / batch size)."""
    return cfg.epochs * math.ceil(len(dataset.train.labels) / cfg.batch_size)


# ---------------------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model: nn.Module, x_u8: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             channels_last: bool = False, amp: bool = False) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy) over a tensor-resident split."""
    was_training = model.training
    model.eval()
    loss_sum, correct = torch.zeros((), device=x_u8.device), torch.zeros((), device=x_u8.device)
    for i in range(0, len(y), batch_size):
        with torch.autocast(x_u8.device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(normalize(x_u8[i:i + batch_size], model.normalization, channels_last)).float()
        loss_sum += F.cross_entropy(out, y[i:i + batch_size], reduction="sum")
        correct += (out.argmax(1) == y[i:i + batch_size]).sum()
    model.train(was_training)
    n = max(1, len(y))
    return loss_sum.item() / n, correct.item() / n


# ---------------------------------------------------------------------------------------------- the training loop

def _save_state(path: Path, key: str, model, optimizer, generator, history, changes) -> None:
    state = {"key": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "generator": generator.get_state(), "history": history,
             "changes": changes.state_dict() if changes is not None else None}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _optimizer_for(model: nn.Module, optimizer_name: str, hparams: dict, carry_from=None):
    """A new optimizer over `model`; with carry_from = (old optimizer, old {name: parameter}), the state of every
    parameter whose name and shape are unchanged carries over (momentum, Adam's moments and step count)."""
    optimizer = make_optimizer(optimizer_name, model.parameters(), hparams)
    if carry_from is not None:
        old_optimizer, old_named = carry_from
        for name, p in model.named_parameters():
            old = old_named.get(name)
            if old is not None and old.shape == p.shape and old in old_optimizer.state:
                optimizer.state[p] = old_optimizer.state[old]
    return optimizer


def fit(model: nn.Module, dataset: Dataset, optimizer_name: str, hparams: dict, cfg: TrainConfig,
        on_epoch: Callable[[dict], None] | None = None, resume_path: str | os.PathLike | None = None,
        resume_key: str = "", desc: str = "train", teacher: Distillation | None = None,
        changes=None) -> list[dict]:
    """Train `model` in place; returns one row per epoch (epoch, train/val loss and acc, lr, seconds; with a teacher
    also teacher_seconds, with changes also prune_ratio).

    With `resume_path`, the full state is saved there after every epoch; a later call with the same `resume_key`
    (a fingerprint of everything that determines the result) continues after the last completed epoch, and
    gives the same final model as an uninterrupted run. A state with another key is ignored.
    With `changes` (pruning.gradual.GradualPruner), the model may be replaced before an iteration: the model trained
    to the end is then changes.model, not `model`.
    """
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {cfg.epochs} and {cfg.batch_size}")
    if getattr(model, "num_classes", len(dataset.classes)) != len(dataset.classes):
        raise ValueError(f"the model has {model.num_classes} outputs, the data {len(dataset.classes)} classes "
                         f"({dataset.name}): train a model for this dataset")
    stats = model.normalization  # the statistics the model is trained, evaluated and deployed with
    device = pick_device(cfg.device)
    # channels_last on everywhere and bf16 only on CUDA: what measured fastest (docs/design.md, "Training").
    channels_last, amp = resolve_flag(cfg.channels_last, device, auto_on_cpu=True), resolve_flag(cfg.amp, device)
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model.to(device, memory_format=memory_format)
    train_x, train_y = to_device(dataset.train, device)
    val_x, val_y = to_device(dataset.val, device)
    optimizer = _optimizer_for(model, optimizer_name, hparams)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    if teacher is not None:
        teacher.teacher.to(device, memory_format=memory_format).eval()
    n = len(train_y)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch

    def held_at_zero(model) -> list:
        """Entries a pruning method removed (model.masks) must stay zero whatever the optimizer does."""
        named = dict(model.named_parameters())
        masks = [(named[n], keep.to(device)) for n, keep in getattr(model, "masks", {}).items()]
        if masks:
            apply_masks(model)
        return masks

    history: list[dict] = []
    state = None
    if resume_path is not None and Path(resume_path).exists():
        try:  # the RNG state must stay on the CPU
            state = torch.load(resume_path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as e:  # our own scratch file: start over
            tqdm.write(f"{desc}: ignoring {resume_path}: unreadable ({type(e).__name__}: {str(e).splitlines()[0]})")
            state = None
        if state is not None and state.get("key") != resume_key:
            tqdm.write(f"{desc}: ignoring {resume_path}: it was saved for other inputs")
            state = None
    if state is not None:
        if changes is not None and state.get("changes") is not None:  # the architecture the model had by then
            model = changes.load_state_dict(state["changes"]).to(device, memory_format=memory_format)
            optimizer = _optimizer_for(model, optimizer_name, hparams)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history = state["history"]
        tqdm.write(f"{desc}: resuming after epoch {len(history)} from {resume_path}")
        for row in history:  # replay, so a tracker sees every epoch of the finished model
            if on_epoch is not None:
                on_epoch(row)
    masks = held_at_zero(model)

    for epoch in range(len(history) + 1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device)
        start, teacher_seconds = time.perf_counter(), 0.0
        for i in tqdm(range(steps_per_epoch), desc=f"{desc} epoch {epoch}/{cfg.epochs}", leave=False,
                      mininterval=1.0):
            step = (epoch - 1) * steps_per_epoch + i
            changed = changes.at(step, model) if changes is not None else None
            if changed is not None:  # a new model object: new parameters for the optimizer and the masks
                old = (optimizer, dict(model.named_parameters()))
                model = changed.to(device, memory_format=memory_format).train()
                optimizer = _optimizer_for(model, optimizer_name, hparams, carry_from=old)
                masks = held_at_zero(model)
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * lr_multiplier(step, total_steps, cfg, steps_per_epoch)
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            x, y = normalize(augment(train_x[idx], generator), stats, channels_last), train_y[idx]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(x)
                if teacher is None:
                    loss = loss_fn(out.float(), y)
                else:
                    teacher_seconds -= _now(device)
                    with torch.no_grad():
                        soft = teacher.teacher(x).float()
                    teacher_seconds += _now(device)
                    loss = distillation_loss(out.float(), soft, y, teacher.alpha, teacher.temperature,
                                             cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if masks:  # pruned entries get no gradient (so no optimizer state) and are re-zeroed after the step
                for p, keep in masks:
                    p.grad.mul_(keep)
            optimizer.step()
            if masks:
                apply_masks(model)
            loss_sum += loss.detach() * len(y)  # summed on the device: no host sync per step
            correct += (out.argmax(1) == y).sum()
        train_loss = loss_sum.item() / n  # .item() synchronises, so the timing below is complete on CUDA too
        seconds = time.perf_counter() - start
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"{desc}: loss became {train_loss} in epoch {epoch} with optimizer "
                                   f"{optimizer_name!r} (lr={hparams.get('lr')}); lower the learning rate")
        val_loss, val_acc = evaluate(model, val_x, val_y, cfg.eval_batch_size, channels_last, amp)
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": correct.item() / n, "val_loss": val_loss,
               "val_acc": val_acc, "lr": optimizer.param_groups[0]["lr"], "seconds": seconds}
        if changes is not None:
            row["prune_ratio"] = changes.ratio_now
        if teacher is not None:
            row["teacher_seconds"] = teacher_seconds
        history.append(row)
        tqdm.write(f"{desc} epoch {epoch}/{cfg.epochs}: loss {train_loss:.4f} train_acc {row['train_acc']:.4f} "
                   f"val_loss {val_loss:.4f} val_acc {val_acc:.4f} lr {row['lr']:.3g} ({seconds:.1f}s, "
                   f"{n / seconds:.0f} img/s)" + (f", pruned {row['prune_ratio']:.3f}" if changes is not None else "")
                   + (f", teacher {teacher_seconds:.1f}s" if teacher is not None else ""))
        if resume_path is not None:
            _save_state(Path(resume_path), resume_key, model, optimizer, generator, history, changes)
        if on_epoch is not None:
            on_epoch(row)
    model.to("cpu", memory_format=torch.contiguous_format)
    if teacher is not None:
        teacher.teacher.to("cpu", memory_format=torch.contiguous_format)
    return history


def _now(device: torch.device) -> float:
    """A clock reading after the device's queued work is done (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
