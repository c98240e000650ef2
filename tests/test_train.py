"""cnn_pruning.training: optimizers, schedules, batched augmentation, determinism, resume and divergence."""

from __future__ import annotations

import math
import re

import pytest
import torch

from cnn_pruning.core import schema
from cnn_pruning.datasets.dataset import Dataset
from cnn_pruning.model import CifarResNet
from cnn_pruning.training import (
    Distillation,
    FinetuneConfig,
    TrainConfig,
    TrainingDiverged,
    augment,
    distillation_loss,
    fit,
    lr_multiplier,
    make_optimizer,
)
from helpers import synthetic_dataset


def tiny_dataset(per_class: int = 12) -> Dataset:
    return synthetic_dataset(per_class, 0, held_out=4)


CFG = TrainConfig(epochs=2, batch_size=32, eval_batch_size=64, seed=0)


@pytest.mark.parametrize("name,cls", [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD),
                                      ("Adamax", torch.optim.Adamax), ("adamw", torch.optim.AdamW)])
def test_optimizer_factory_takes_any_torch_optim_name(name, cls):
    opt = make_optimizer(name, CifarResNet().parameters(), {"lr": 0.01, "weight_decay": 1e-4})
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.01


def test_optimizer_factory_rejects_unknown_names_and_hyperparameters():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'; allowed: .*adam, adamax"):
        make_optimizer("adamm", CifarResNet().parameters(), {"lr": 0.1})
    with pytest.raises(ValueError, match=r"optimizer 'sgd': unknown hyperparameter\(s\) \['betas'\]"):
        make_optimizer("sgd", CifarResNet().parameters(), {"lr": 0.1, "betas": (0.9, 0.99)})


def test_augment_keeps_shape_dtype_and_content_up_to_crop_and_flip():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    # Every output is a shifted (and maybe mirrored) window of its own input padded with zeros.
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(8):
        found = any(torch.equal(out[i], w)
                    for dy in range(9) for dx in range(9)
                    for w in (padded[i, :, dy:dy + 32, dx:dx + 32], padded[i, :, dy:dy + 32, dx:dx + 32].flip(-1)))
        assert found, f"image {i} is not a crop/flip of its input"
    assert not torch.equal(out, x)  # something moved
    again = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_lr_schedules():
    cfg = TrainConfig(epochs=10, schedule="cosine", warmup_epochs=1)
    assert lr_multiplier(0, 100, cfg, 10) == pytest.approx(0.1)
    assert lr_multiplier(9, 100, cfg, 10) == pytest.approx(1.0)
    assert lr_multiplier(55, 100, cfg, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    step = TrainConfig(epochs=10, schedule="multistep", milestones=[5, 8], gamma=0.1)
    assert [lr_multiplier(s, 100, step, 10) for s in (49, 50, 80)] == pytest.approx([1, 0.1, 0.01])
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        lr_multiplier(0, 10, TrainConfig(schedule="linear"), 1)


def test_training_learns_and_is_deterministic_on_cpu():
    ds = tiny_dataset()
    histories, states = [], []
    for _ in range(2):
        torch.manual_seed(0)
        model = CifarResNet()
        histories.append(fit(model, ds, "adam", {"lr": 0.01}, CFG, desc="t"))
        states.append(model.state_dict())

    def strip(h):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in h]

    assert strip(histories[0]) == strip(histories[1])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert set(histories[0][0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert histories[0][-1]["train_loss"] < histories[0][0]["train_loss"], histories[0]  # it learns


def test_resume_after_a_crash_gives_the_uninterrupted_result(tmp_path):
    ds, cfg = tiny_dataset(), TrainConfig(epochs=3, batch_size=32, eval_batch_size=64, seed=1)
    torch.manual_seed(1)
    straight = CifarResNet()
    want = fit(straight, ds, "sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}, cfg, desc="t")

    class Crash(Exception):
        pass

    def crash_after_2(row):
        if row["epoch"] == 2:
            raise Crash

    torch.manual_seed(1)
    with pytest.raises(Crash):
        fit(CifarResNet(), ds, "sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}, cfg,
            resume_path=tmp_path / "state.pt", resume_key="k", on_epoch=crash_after_2, desc="t")
    seen = []
    resumed = CifarResNet()  # a fresh init: everything must come from the saved state
    got = fit(resumed, ds, "sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}, cfg,
              resume_path=tmp_path / "state.pt", resume_key="k", on_epoch=seen.append, desc="t")
    assert [r["epoch"] for r in seen] == [1, 2, 3]  # the finished epochs are replayed to the tracker
    assert [r["val_acc"] for r in got] == [r["val_acc"] for r in want]
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(),
                                                 resumed.state_dict().values(), strict=True))
    # A state saved for other inputs is ignored, not resumed.
    other = fit(CifarResNet(), ds, "sgd", {"lr": 0.05}, TrainConfig(epochs=1, batch_size=32, seed=1),
                resume_path=tmp_path / "state.pt", resume_key="other", desc="t")
    assert len(other) == 1
    # A resume file cut short (e.g. a full disk) is ignored and training starts over, rather than crashing.
    (tmp_path / "state.pt").write_bytes((tmp_path / "state.pt").read_bytes()[:100])
    torch.manual_seed(1)
    restarted = fit(CifarResNet(), ds, "sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}, cfg,
                    resume_path=tmp_path / "state.pt", resume_key="k", desc="t")
    assert [r["val_acc"] for r in restarted] == [r["val_acc"] for r in want]


def test_divergence_stops_with_the_optimizer_and_lr_named():
    with pytest.raises(TrainingDiverged, match=r"optimizer 'sgd' \(lr=1e\+20\)"):
        fit(CifarResNet(), tiny_dataset(4), "sgd", {"lr": 1e20}, TrainConfig(epochs=3, batch_size=20), desc="t")


def test_a_model_for_other_classes_is_refused_before_training():
    with pytest.raises(ValueError, match=r"the model has 100 outputs, the data 10 classes \(cifar10\)"):
        fit(CifarResNet(num_classes=100), tiny_dataset(2), "sgd", {"lr": 0.1}, TrainConfig(epochs=1, device="cpu"))


# ---------------------------------------------------------------------------------------------- distillation

def test_the_distillation_loss_against_a_hand_computed_value():
    student, teacher, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.5, 1.5, 0.0]]), torch.tensor([0])
    alpha, t = 0.75, 2.0
    p_s = [math.exp(v / t) for v in (2.0, 0.0, -1.0)]
    p_t = [math.exp(v / t) for v in (0.5, 1.5, 0.0)]
    p_s, p_t = [v / sum(p_s) for v in p_s], [v / sum(p_t) for v in p_t]
    kl = sum(q * math.log(q / p) for q, p in zip(p_t, p_s))  # KL(teacher || student): the teacher's first
    ce = -math.log(math.exp(2.0) / (math.exp(2.0) + 1.0 + math.exp(-1.0)))
    want = (1 - alpha) * ce + alpha * t * t * kl
    assert distillation_loss(student, teacher, y, alpha, t).item() == pytest.approx(want, rel=1e-6)
    reverse = sum(p * math.log(p / q) for q, p in zip(p_t, p_s))  # the other order differs here
    assert abs((1 - alpha) * ce + alpha * t * t * reverse - want) > 1e-3
    # batchmean: two rows, the mean of their losses
    two = distillation_loss(student.repeat(2, 1), teacher.repeat(2, 1), y.repeat(2), alpha, t)
    assert two.item() == pytest.approx(want, rel=1e-6)
    assert distillation_loss(student, teacher, y, 0.0, t).item() == pytest.approx(ce, rel=1e-6)


def test_distillation_trains_against_a_frozen_teacher_and_reports_its_time():
    ds = tiny_dataset(4)
    torch.manual_seed(0)
    teacher = CifarResNet()
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    torch.manual_seed(1)
    plain, taught, alpha0 = CifarResNet(), CifarResNet(), CifarResNet()
    taught.load_state_dict(plain.state_dict())
    alpha0.load_state_dict(plain.state_dict())
    cfg = TrainConfig(epochs=1, batch_size=20, device="cpu")
    fit(plain, ds, "sgd", {"lr": 0.05, "momentum": 0.9}, cfg, desc="t")
    rows = fit(taught, ds, "sgd", {"lr": 0.05, "momentum": 0.9}, cfg, desc="t",
               teacher=Distillation(teacher, 0.9, 4.0))
    zero = fit(alpha0, ds, "sgd", {"lr": 0.05, "momentum": 0.9}, cfg, desc="t",
               teacher=Distillation(teacher, 0.0, 4.0))
    assert all(torch.equal(v, frozen[k]) for k, v in teacher.state_dict().items())  # BN statistics too (eval)
    assert 0 < rows[0]["teacher_seconds"] < rows[0]["seconds"] and "teacher_seconds" in zero[0]
    assert not all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                     taught.state_dict().values(), strict=True))
    # alpha 0 is plain cross-entropy: the teacher's forward pass changes nothing else (no random numbers drawn)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                 alpha0.state_dict().values(), strict=True))


@pytest.mark.parametrize("key, value, allowed", [
    ("distill_alpha", 1.5, "a number in [0, 1]"), ("distill_alpha", -0.1, "a number in [0, 1]"),
    ("distill_temperature", 0, "a number in (0, 1000]"), ("distill_temperature", -2.0, "a number in (0, 1000]"),
    ("distill", "yes", "False or True")])
def test_distillation_settings_are_validated(key, value, allowed):
    with pytest.raises(ValueError, match=rf"{key}.*{re.escape(allowed)}"):
        schema.build(FinetuneConfig, {key: value})
    assert Distillation.from_params({}, CifarResNet()) is None  # off by default
    assert Distillation.from_params({"distill": True}, CifarResNet()).alpha == 0.9
