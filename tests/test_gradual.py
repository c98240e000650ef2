"""cnn_pruning.pruning.gradual: the cubic schedule, every method continued step by step inside real fine-tuning
(invariants after every step, the end exactly one-shot's counts), refusals that protect earlier pruning, resume."""

from __future__ import annotations

import copy

import pytest
import torch

from cnn_pruning import pruning
from cnn_pruning.model import CifarResNet
from cnn_pruning.pruning import magnitude
from cnn_pruning.pruning.gradual import GradualPruner, Schedule, plan, step_ratio
from cnn_pruning.training import TrainConfig, fit, iterations
from helpers import synthetic_dataset

# every registered method, and the scope-all channel variants, with the options they run
CASES = [("magnitude", {}), ("random", {"seed": 3}), ("l2_unit", {}), ("l2_unit", {"scope": "all"}),
         ("kmeans_shared", {}), ("kmeans_channel", {}), ("kmeans_channel", {"scope": "all", "round_to": 2}),
         ("random_channel", {"scope": "all"})]
IDS = [m + ("_" + "_".join(f"{k}{v}" for k, v in o.items()) if o else "") for m, o in CASES]
HPARAMS = {"sgd": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}, "adam": {"lr": 0.002},
           "adamax": {"lr": 0.004}}
CFG = TrainConfig(epochs=2, batch_size=10, device="cpu")   # 20 images: 2 iterations per epoch, 4 in all


pytestmark = pytest.mark.usefixtures("one_thread")


def base_model() -> CifarResNet:
    torch.manual_seed(0)
    return CifarResNet()


# ---------------------------------------------------------------------------------------------- the schedule

def test_the_cubic_schedule_reaches_the_final_ratio_exactly_at_the_last_step():
    steps = plan(0.9, Schedule("gradual", 10, 0.5), total_iterations=400)
    assert [i for i, _ in steps] == [0, 20, 40, 60, 80, 100, 120, 140, 160, 180]  # by iteration, up to half of 400
    assert [r for _, r in steps] == [pytest.approx(0.9 * (1 - (1 - k / 10) ** 3)) for k in range(1, 11)]
    assert steps[-1][1] == 0.9 and steps[0][1] == pytest.approx(0.9 * 0.271)
    assert all(a[1] < b[1] for a, b in zip(steps, steps[1:]))  # the ratio only grows
    assert plan(0.5, Schedule("gradual", 1, 0.3), 100) == [(0, 0.5)]  # one step = one-shot, before iteration 0
    assert [i for i, _ in plan(0.8, Schedule("gradual", 4, 1.0), 10)] == [0, 2, 5, 7]  # floor((k - 1)/4 * 10)
    # more steps than iterations: several steps before one iteration, still in order, all within training
    assert [i for i, _ in plan(0.8, Schedule("gradual", 5, 0.5), 4)] == [0, 0, 0, 1, 1]
    assert step_ratio(0.7, 3, 3) == 0.7


def test_five_epochs_hold_ten_steps():
    """Steps are placed by iteration: 5 epochs of 10 iterations, prune_until 0.5 -> 10 steps in the first 25."""
    iterations_of = [i for i, _ in plan(0.9, Schedule("gradual", 10, 0.5), 5 * 10)]
    assert len(set(iterations_of)) == 10 and max(iterations_of) < 25


# ---------------------------------------------------------------------------------------------- every method


class Checked(GradualPruner):
    """The real pruner, checking the invariants before and after every step it takes."""

    def __init__(self, base, method, options, *args):
        super().__init__(base, method, 0.9, options, *args)
        self.base, self.seen = base, []

    def at(self, iteration, model):
        before_steps = self.done
        if self.done:  # trained since the last step: what was pruned is still pruned
            for name, keep in model.masks.items():
                assert not model.get_parameter(name).detach()[~keep.to(model.get_parameter(name).device)].any()
        earlier = (copy.deepcopy(model.masks), self.info)
        new = super().at(iteration, model)
        if new is None:
            return None
        for k in range(before_steps, self.done):
            self.seen.append(self.steps[k][1])
        ratio = self.steps[self.done - 1][1]
        # the counts of one-shot pruning at this step's ratio: widths, shared k, masked zeros
        oneshot = pruning.prune(self.base, self.method, ratio, **self.options).model
        assert pruning.structure(new) == pruning.structure(oneshot)
        masks, info = earlier
        for name, keep in masks.items():  # masked entries stay masked where shapes are unchanged
            if name in new.masks and new.masks[name].shape == keep.shape:
                assert not (new.masks[name].cpu() & ~keep.cpu()).any()
        if info is not None:  # removed channels stay removed (kept only shrinks), zeroed units stay zeroed
            for group, layer in self.info["layers"].items():
                earlier_layer = info["layers"].get(group, {})
                if "kept" in layer and "kept" in earlier_layer:
                    assert set(layer["kept"]) <= set(earlier_layer["kept"])
                if isinstance(earlier_layer.get("zeroed"), list) and earlier_layer["zeroed"]:  # l2_unit inner
                    assert set(earlier_layer["zeroed"]) <= set(layer["zeroed"]), group
        return new


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamax"])
@pytest.mark.parametrize("method, options", CASES, ids=IDS)
def test_every_step_keeps_the_invariants_and_the_end_has_one_shots_counts(method, options, optimizer):
    base, ds = base_model(), synthetic_dataset(2, 5)
    pruner = Checked(base, method, options, Schedule("gradual", 3, 0.75), iterations(ds, CFG))
    history = fit(copy.deepcopy(base), ds, optimizer, HPARAMS[optimizer], CFG, changes=pruner, desc="t")
    assert pruner.done == 3 and pruner.seen == [r for _, r in pruner.steps]  # steps before iterations 0, 1, 2
    assert [row["prune_ratio"] for row in history] == [step_ratio(0.9, 2, 3), 0.9]  # iteration 2 opens epoch 2
    end, oneshot = pruner.model, pruning.prune(base, method, 0.9, **options)
    assert pruning.structure(end) == pruning.structure(oneshot.model)
    assert pruner.info["step"] == 3 and pruner.info["params_after"] == oneshot.info["params_after"]
    assert pruner.info["params_before"] == oneshot.info["params_before"]
    for name, keep in end.masks.items():  # held through the last iterations
        assert not end.get_parameter(name).detach()[~keep].any()


def test_one_step_is_one_shot_pruning_then_fine_tuning():
    base, ds = base_model(), synthetic_dataset(2, 5)
    oneshot = pruning.prune(base, "l2_unit", 0.6).model
    fit(oneshot, ds, "sgd", HPARAMS["sgd"], CFG, desc="t")
    pruner = GradualPruner(base, "l2_unit", 0.6, {}, Schedule("gradual", 1, 0.5), iterations(ds, CFG))
    fit(copy.deepcopy(base), ds, "sgd", HPARAMS["sgd"], CFG, changes=pruner, desc="t")
    assert all(torch.equal(a, b) for a, b in zip(oneshot.state_dict().values(),
                                                 pruner.model.state_dict().values(), strict=True))


def test_magnitude_zeros_exactly_round_ratio_n_after_every_step():
    base = base_model()
    n = sum(base.get_parameter(p).numel() for p in magnitude.prunable(base, False, False))
    model, info = base, None
    for ratio in (0.2, 0.5, 0.5, 0.83):
        result = pruning.prune(model, "magnitude", ratio, previous=info)
        model, info = result.model, result.info
        assert pruning.masked_zeros(model) == round(ratio * n)


def test_kmeans_shared_ends_with_exactly_k_distinct_filters_per_layer():
    base = base_model()
    model, info = base, None
    for ratio in (0.3, 0.6, 0.75):
        result = pruning.prune(model, "kmeans_shared", ratio, previous=info)
        model, info = result.model, result.info
        for name, layer in info["layers"].items():
            weight = model.get_submodule(name).weight.detach()
            assert len(torch.unique(weight.flatten(1), dim=0)) == layer["k"] == layer["k_target"] \
                == weight.shape[0] - round(ratio * weight.shape[0])


def test_kmeans_channel_clusters_list_the_original_members():
    base = base_model()
    first = pruning.prune(base, "kmeans_channel", 0.5)
    second = pruning.prune(first.model, "kmeans_channel", 0.75, previous=first.info)
    layer = second.info["layers"]["blocks.0.conv1"]
    assert layer["n_filters"] == 16 and layer["k"] == 4 and len(layer["kept"]) == 4
    assert sorted(i for c in layer["clusters"] for i in c) == list(range(16))  # every original channel, once
    assert all(k in c for k, c in zip(layer["kept"], layer["clusters"]))


# ---------------------------------------------------------------------------------------------- refusals

def test_continuations_that_would_undo_earlier_pruning_are_refused():
    base = base_model()
    step = pruning.prune(base, "l2_unit", 0.5)
    with pytest.raises(ValueError, match="expects a dense model; this one is already pruned"):
        pruning.prune(step.model, "l2_unit", 0.7)  # no `previous`: the old refusal
    with pytest.raises(ValueError, match="cannot continue 'l2_unit' pruning with 'kmeans_shared'"):
        pruning.prune(step.model, "kmeans_shared", 0.7, previous=step.info)
    with pytest.raises(ValueError, match=r"with other options \(scope: \{'scope': 'inner'\} before"):
        pruning.prune(step.model, "l2_unit", 0.7, previous=step.info, scope="all")
    with pytest.raises(ValueError, match="at ratio 0.3 after 0.5: pruned units do not come back"):
        pruning.prune(step.model, "l2_unit", 0.3, previous=step.info)
    with pytest.raises(ValueError, match="is not the earlier 'l2_unit' result"):
        pruning.prune(base, "l2_unit", 0.7, previous=step.info)  # the dense model, not the step's result
    with pytest.raises(ValueError, match="must be the info of an earlier"):
        pruning.prune(step.model, "l2_unit", 0.7, previous={"method": "l2_unit"})
    again = pruning.prune(step.model, "l2_unit", 0.5, previous=step.info)  # the same ratio: nothing more goes
    assert pruning.structure(again.model) == pruning.structure(step.model) and again.info["step"] == 2


def test_the_schedule_settings_are_validated():
    with pytest.raises(ValueError, match="unknown pruning method 'l2'"):
        GradualPruner(base_model(), "l2", 0.5, {}, Schedule("gradual", 2, 0.5), 10)
    with pytest.raises(ValueError, match=r"pruning ratio must be a number in \[0, 1\)"):
        GradualPruner(base_model(), "l2_unit", 1.0, {}, Schedule("gradual", 2, 0.5), 10)


# ---------------------------------------------------------------------------------------------- resume

@pytest.mark.parametrize("method", ["l2_unit", "kmeans_shared", "magnitude"])
def test_resume_after_a_kill_mid_schedule_gives_the_same_final_model(tmp_path, method):
    base, ds = base_model(), synthetic_dataset(2, 5)
    cfg = TrainConfig(epochs=3, batch_size=10, device="cpu")   # 6 iterations; steps before 0, 1, 3, 4
    schedule = Schedule("gradual", 4, 1.0)
    straight = GradualPruner(base, method, 0.8, {}, schedule, iterations(ds, cfg))
    want = fit(copy.deepcopy(base), ds, "adam", HPARAMS["adam"], cfg, changes=straight, desc="t")

    def kill_after_1(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt
    killed = GradualPruner(base, method, 0.8, {}, schedule, iterations(ds, cfg))
    with pytest.raises(KeyboardInterrupt):
        fit(copy.deepcopy(base), ds, "adam", HPARAMS["adam"], cfg, changes=killed, desc="t",
            resume_path=tmp_path / "state.pt", resume_key="k", on_epoch=kill_after_1)
    assert killed.done == 2  # killed between steps 2 and 3
    resumed = GradualPruner(base, method, 0.8, {}, schedule, iterations(ds, cfg))
    got = fit(copy.deepcopy(base), ds, "adam", HPARAMS["adam"], cfg, changes=resumed, desc="t",
              resume_path=tmp_path / "state.pt", resume_key="k")
    assert [r["train_loss"] for r in got] == [r["train_loss"] for r in want]
    assert resumed.info == straight.info and resumed.model.spec() == straight.model.spec()
    assert all(torch.equal(a, b) for a, b in zip(straight.model.state_dict().values(),
                                                 resumed.model.state_dict().values(), strict=True))
    assert {k: v.tolist() for k, v in resumed.model.masks.items()} == \
        {k: v.tolist() for k, v in straight.model.masks.items()}
