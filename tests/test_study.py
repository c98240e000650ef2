"""cnn_pruning.study and cnn_pruning.study.point: what a point's seed decides, and one point run for real (in
process)."""

from __future__ import annotations

import pytest
import torch

from cnn_pruning import pruning
from cnn_pruning.model import CifarResNet
from cnn_pruning.model.measure import accuracy
from cnn_pruning.pruning.gradual import Schedule
from cnn_pruning.study import DEFAULT_VARIANT, point_name, seeded, series_name
from cnn_pruning.study.point import run_point, variant_settings
from cnn_pruning.training import TrainConfig
from helpers import synthetic_dataset

RECIPE = TrainConfig(epochs=1, batch_size=32, eval_batch_size=64, seed=0)
SGD = {"lr": 0.01, "momentum": 0.9}


def test_the_seed_replaces_a_methods_own_seed_and_fills_in_the_defaults():
    assert seeded("magnitude", {}, 3) == pruning.defaults("magnitude")  # nothing random: nothing to seed
    assert seeded("l2_unit", {"include_stem": True}, 3) == {**pruning.defaults("l2_unit"), "include_stem": True}
    for method in ("kmeans_shared", "kmeans_channel", "random", "random_channel"):
        assert seeded(method, {"seed": 99}, 3) == {**pruning.defaults(method), "seed": 3}, method
    with pytest.raises(ValueError, match="unknown pruning method 'magnitdue'"):
        seeded("magnitdue", {}, 0)


def test_names_of_points_and_series():
    assert point_name("l2_unit", 0.5, 1) == "l2_unit-0.5-1-oneshot" == point_name("l2_unit", 0.5, 1, DEFAULT_VARIANT)
    assert point_name("l2_unit", 0.5, 1, "gradual_distill") == "l2_unit-0.5-1-gradual_distill"
    assert point_name(pruning.CONTROL, None, 2) == "none-2"  # the control has no ratio and no variant
    assert series_name("magnitude", DEFAULT_VARIANT) == "magnitude"
    assert series_name("magnitude", "gradual") == "magnitude-gradual"


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    """A few points on a tiny dataset: the same base, methods with and without randomness, two seeds."""
    torch.manual_seed(0)
    base, ds, scratch = CifarResNet(), synthetic_dataset(12, 0, held_out=4), tmp_path_factory.mktemp("points") / "x.rz"
    out = {}
    for method, ratio, seed in (("magnitude", 0.5, 0), ("magnitude", 0.5, 1), ("random", 0.5, 0),
                                ("random", 0.5, 1), ("random", 0.5, 0), ("none", None, 0)):
        options = {} if method == "none" else seeded(method, {}, seed)
        model, row = run_point(base, ds, method, ratio, seed, options, RECIPE, "sgd", SGD, scratch=str(scratch))
        out.setdefault((method, seed), []).append((model, row))
    return base, out


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_a_point_row_holds_the_point_and_its_measurements(points):
    base, out = points
    (model, row), = out[("magnitude", 1)]
    assert {k: row[k] for k in ("method", "variant", "ratio", "seed", "epochs")} == {
        "method": "magnitude", "variant": DEFAULT_VARIANT, "ratio": 0.5, "seed": 1, "epochs": 1}
    assert row["test_images"] == 40 and 0 <= row["test_acc"] <= 1 and row["size_bytes"] > 0
    assert row["params"] == sum(p.numel() for p in base.parameters()) > row["nonzero_params"]
    assert row["macs_reduction"] > 1 and row["base_macs"] == row["macs"]  # same shapes, half the weights zero


def test_the_seed_changes_fine_tuning_and_random_choices_and_nothing_else(points):
    base, out = points
    (mag0, row0), = out[("magnitude", 0)]
    (mag1, row1), = out[("magnitude", 1)]
    # magnitude draws nothing: the same weights are pruned at every seed ...
    assert all(torch.equal(mag0.masks[n], mag1.masks[n]) for n in mag0.masks)
    assert row0["acc_after_prune"] == row1["acc_after_prune"] and row0["nonzero_params"] == row1["nonzero_params"]
    # ... and fine-tuning, which shuffles and augments by the seed, ends elsewhere
    assert not _same_weights(mag0, mag1)
    (rnd0, r0), (rnd0_again, r0_again) = out[("random", 0)]
    (rnd1, r1), = out[("random", 1)]
    assert not all(torch.equal(rnd0.masks[n], rnd1.masks[n]) for n in rnd0.masks)  # the baseline's draw: seeded
    assert r0["nonzero_params"] == r1["nonzero_params"] == row0["nonzero_params"]  # the count is magnitude's
    timings = ("finetune_seconds", "teacher_seconds")  # the row's only entries that vary between identical runs
    assert {k: v for k, v in r0.items() if k not in timings} == {k: v for k, v in r0_again.items() if k not in timings}
    assert _same_weights(rnd0, rnd0_again)  # the same point twice: the same result


def test_the_control_is_the_unpruned_base_fine_tuned(points):
    base, out = points
    (model, row), = out[("none", 0)]
    assert row["ratio"] is None and row["nonzero_params"] == row["params"] and row["macs_reduction"] == 1.0
    assert (row["acc_after_prune"]
            == accuracy(base, synthetic_dataset(12, 0, held_out=4).test)["accuracy"])  # nothing was pruned
    assert not model.masks and not _same_weights(model, base)  # trained further, base untouched


@pytest.mark.parametrize("variant", ["gradual", "oneshot_distill", "gradual_distill"])
def test_a_variant_prunes_and_tunes_its_way_to_one_shots_architecture(variant, tmp_path):
    torch.manual_seed(0)
    base, ds = CifarResNet(), synthetic_dataset(12, 0, held_out=4)
    oneshot = pruning.prune(base, "l2_unit", 0.5).model
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model, row = run_point(base, ds, "l2_unit", 0.5, 0, {}, RECIPE, "sgd", SGD, scratch=str(tmp_path / "x.rz"),
                           variant=variant, schedule=Schedule("gradual", 4, 0.5), distill=(0.9, 4.0))
    assert row["variant"] == variant and row["epochs"] == RECIPE.epochs
    assert pruning.structure(model) == pruning.structure(oneshot)  # gradual ends where one-shot starts
    assert row["acc_after_prune"] == accuracy(oneshot, ds.test)["accuracy"]  # the one-shot model's, always
    assert (row["teacher_seconds"] > 0) == variant.endswith("distill") and row["finetune_seconds"] > 0
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items())  # the base (and teacher) untouched


def test_a_variants_settings_hold_only_what_it_uses():
    prune, finetune = {"steps": 4, "prune_until": 0.25}, {"distill_alpha": 0.5, "distill_temperature": 2.0}
    assert variant_settings("oneshot", prune, finetune) == {"schedule": {"schedule": "oneshot"}, "distill": None}
    assert variant_settings("oneshot", {"steps": 9}, {}) == variant_settings("oneshot", prune, finetune)  # same bytes
    assert variant_settings("gradual", prune, finetune) == {
        "schedule": {"schedule": "gradual", "steps": 4, "prune_until": 0.25}, "distill": None}
    assert variant_settings("gradual_distill", prune, finetune)["distill"] == {"alpha": 0.5, "temperature": 2.0}
    assert variant_settings("oneshot_distill", {}, {})["distill"] == {"alpha": 0.9, "temperature": 4.0}  # defaults
    with pytest.raises(ValueError, match="unknown study variant 'gradual_kd'; allowed: oneshot, gradual"):
        variant_settings("gradual_kd", prune, finetune)
    with pytest.raises(ValueError, match=r"steps.*an integer in \[1, 10000\]"):
        variant_settings("gradual", {"steps": 0}, finetune)
    with pytest.raises(ValueError, match=r"distill_temperature.*\(0, 1000\]"):
        variant_settings("oneshot_distill", prune, {"distill_temperature": -1})
