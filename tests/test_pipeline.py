"""End to end: the real `dvc repro` on a tiny dataset, in a temporary git+DVC copy of the repo.

The session-scoped `tiny_pipeline` fixture (conftest.py) runs the whole pipeline once; the tests here only read
its outputs. Tests that must change something make their own copy.
"""

from __future__ import annotations

import csv
import json

import pytest
from mlflow.tracking import MlflowClient

from cnn_pruning.model import load_checkpoint
from conftest import run

OPTIMIZERS = ("adam", "sgd", "adamax")


def read_json(path):
    return json.loads(path.read_text())


def test_download_writes_the_canonical_data_and_counts(tiny_pipeline):
    summary = read_json(tiny_pipeline / "metrics" / "data.json")
    assert summary["train_images"] + summary["val_images"] == 300 and summary["test_images"] == 100
    assert summary["val_per_class"] == [5] * 10


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_train_outputs_per_optimizer(tiny_pipeline, opt):
    metrics = read_json(tiny_pipeline / "metrics" / "train" / f"{opt}.json")
    assert {"test_acc", "best_val_acc", "last_val_acc", "params", "epochs", "optimizer"} <= metrics.keys()
    assert metrics["params"] == 269_722 and metrics["epochs"] == 1 and 0 <= metrics["test_acc"] <= 1
    timing = read_json(tiny_pipeline / "metrics" / "train" / f"{opt}.timing.json")
    assert timing["seconds_per_epoch_median"] > 0 and timing["device"] == "cpu"
    with open(tiny_pipeline / "plots" / "train" / f"{opt}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1"]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    model, meta = load_checkpoint(tiny_pipeline / "models" / "base" / f"{opt}.pt")
    assert meta["optimizer"] == opt
    assert not (tiny_pipeline / "checkpoints" / "train" / f"{opt}.pt").exists()  # resume state removed when done


def test_mlflow_holds_one_run_per_stage_with_tags_and_epoch_metrics(tiny_pipeline):
    client = MlflowClient(tracking_uri=f"sqlite:///{tiny_pipeline / 'mlflow.db'}")
    exp = client.get_experiment_by_name("resnet20-pruning")
    assert exp is not None and exp.artifact_location.startswith((tiny_pipeline / "mlartifacts").as_uri())
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    names = sorted(r.info.run_name for r in runs)
    assert {"download", "train-adam", "train-sgd", "train-adamax"} <= set(names)
    assert len(names) == len(set(names)), f"a stage logged twice: {names}"
    commit = run(["git", "rev-parse", "HEAD"], tiny_pipeline).stdout.strip()
    for r in runs:
        assert r.info.status == "FINISHED"
        tags = r.data.tags
        assert tags["mlflow.source.git.commit"] == commit
        assert {"stage", "version.torch", "version.dvc", "version.mlflow", "dvc.exp_name"} <= tags.keys()
    sgd = next(r for r in runs if r.info.run_name == "train-sgd")
    assert sgd.data.tags["optimizer"] == "sgd" and sgd.data.tags["device"] == "cpu"
    assert sgd.data.tags["model_md5"] == _dvc_md5(tiny_pipeline, "models/base/sgd.pt")
    assert sgd.data.params["optimizer_params.lr"] == "0.1" and sgd.data.params["epochs"] == "1"
    assert "optimizer_params.betas" not in sgd.data.params  # only this optimizer's own settings
    history = client.get_metric_history(sgd.info.run_id, "val_acc")
    assert [m.step for m in history] == [1]
    artifacts = {a.path for a in client.list_artifacts(sgd.info.run_id)}
    assert {"sgd.csv", "sgd.png"} <= artifacts


def _dvc_md5(repo, out):
    lock = (repo / "dvc.lock").read_text()
    import yaml
    for stage in yaml.safe_load(lock)["stages"].values():
        for o in stage.get("outs", []):
            if o["path"] == out:
                return o["md5"]
    raise KeyError(out)


def test_second_repro_runs_nothing(tiny_pipeline):
    proc = run(["dvc", "repro"], tiny_pipeline)
    assert "Running stage" not in proc.stdout, proc.stdout
    status = run(["dvc", "status"], tiny_pipeline).stdout
    assert "up to date" in status.lower() or status.strip() == "", status


def test_plots_show_draws_the_optimizer_chart(tiny_pipeline):
    run(["dvc", "plots", "show", "-o", "plots-html"], tiny_pipeline)
    html = (tiny_pipeline / "plots-html" / "index.html").read_text()
    assert "validation accuracy per epoch, by optimizer" in html
