"""cnn_pruning.pipeline.estimate: the work counted from params.yaml, and a probe of the real training loop."""

from __future__ import annotations

import copy
import math

import pytest

from cnn_pruning.core.params import load_params
from cnn_pruning.pipeline import estimate
from helpers import REPO, TINY_OVERRIDES, ran_stages

SHIPPED = load_params(REPO / "params.yaml")


def with_(**sections) -> dict:
    params = copy.deepcopy(SHIPPED)
    for name, values in sections.items():
        params[name].update(values)
    return params


def test_training_images_come_from_train_size_or_the_official_split():
    assert estimate.training_images(SHIPPED) == 50_000 - SHIPPED["data"]["val_size"]
    assert estimate.training_images(with_(data={"train_size": 10_000})) == 10_000
    assert estimate.training_images(with_(data={"source": "mine.tar.gz", "name": "mine"})) is None


def test_epochs_of_work_count_every_model_trained():
    params = with_(train={"optimizers": ["sgd", "adam"], "epochs": 7}, finetune={"epochs": 3},
                   prune={"methods": ["none", "magnitude", "l2_unit"]},
                   study={"methods": ["magnitude"], "ratios": [0.5, 0.9], "seeds": [0, 1], "variants": ["oneshot"]})
    assert estimate.epochs_of_work(params) == {"base models": 14, "fine-tunes": 9, "study": (4 + 2) * 3}


def test_the_probe_times_the_real_training_loop(monkeypatch):
    params = with_(model={"depth": 8}, train={"batch_size": 16})
    calls, real_fit = [], estimate.fit
    monkeypatch.setattr(estimate, "fit", lambda *args, **kw: calls.append(args) or real_fit(*args, **kw))
    seconds = estimate.seconds_per_image(params, classes=10, images=1000, batches=2)
    assert math.isfinite(seconds) and seconds > 0
    # One run of the real loop: the model of model.depth, 2 batches of train.batch_size, two epochs (the first,
    # with its one-off start-up, is not the one timed).
    [(model, data, optimizer, hparams, cfg)] = calls
    assert model.depth == 8 and len(data.train.labels) == 2 * 16 and cfg.epochs == 2 and cfg.batch_size == 16
    assert optimizer == params["train"]["optimizers"][0]


def tiny(**sections) -> dict:
    params = copy.deepcopy(SHIPPED)
    for name, values in TINY_OVERRIDES.items():
        params[name].update(values)
    for name, values in sections.items():
        params[name].update(values)
    return params


@pytest.mark.dvc
def test_the_stages_counted_are_the_stages_dvc_runs(tiny_pipeline):
    ran = ran_stages((tiny_pipeline / "repro.log").read_text())
    assert estimate.stages(tiny(data={"source": "x.tar.gz"})) == len(ran) == len(set(ran)) == 40


def test_every_stage_start_up_is_in_the_total(monkeypatch):
    """A run of tiny stages costs their start-ups, not their training: 40 stages x 3 s is 2 minutes."""
    monkeypatch.setattr(estimate, "seconds_per_image", lambda *args, **kw: 0.0)
    monkeypatch.setattr(estimate, "tracking_import_seconds", lambda: 1.0)
    line = estimate.report(tiny(model={"depth": 8}, data={"train_size": 300}, train={"device": "cpu"}), startup_s=2.0)
    assert "~2 min for the whole pipeline from scratch" in line and "start-ups (40 stages x 3.0 s) 2 min" in line


@pytest.mark.parametrize("train_size, epochs, quick_hint", [(None, 200, True), (100, 1, False)])
def test_the_report_states_the_total_and_the_quick_command_when_long(train_size, epochs, quick_hint):
    # 50 validation images: the probe validates in proportion, and the message is what is tested here
    params = with_(model={"depth": 8}, data={"train_size": train_size, "val_size": 50},
                   train={"device": "cpu", "epochs": epochs},
                   finetune={"epochs": 1}, study={"ratios": [0.5], "seeds": [0]})
    line = estimate.report(params)
    assert "for the whole pipeline from scratch" in line and "base models" in line and "study" in line
    assert ("make run PROFILE=quick" in line) is quick_hint


def test_no_estimate_where_the_training_images_are_unknown_until_read():
    assert estimate.report(with_(data={"source": "mine.tar.gz", "name": "mine"}, train={"device": "cpu"})) is None
