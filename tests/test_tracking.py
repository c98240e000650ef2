"""cnn_pruning.tracking against a real MLflow SQLite store in a temporary project root."""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient

from cnn_pruning import tracking
from conftest import free_port


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_EXP_NAME", "lucky-lynx")
    (tmp_path / "params.yaml").write_text("tracking:\n  experiment: unit-tests\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def client_for(root):
    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def test_flatten_nested_sections():
    assert tracking.flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}


def test_stage_run_logs_params_tags_metrics_and_artifacts(project):
    (project / "h.csv").write_text("epoch,val_acc\n1,0.5\n")
    with tracking.stage_run("train", "train-sgd", params={"epochs": 2, "optimizer_params": {"lr": 0.1}},
                            tags={"optimizer": "sgd"}) as run:
        run.log_metrics({"val_acc": 0.5, "name": "not a number"}, step=1)
        run.log_metrics({"val_acc": 0.6}, step=2)
        run.log_artifact(project / "h.csv")
    client = client_for(project)
    exp = client.get_experiment_by_name("unit-tests")
    assert exp.artifact_location == (project / "mlartifacts" / "unit-tests").as_uri()
    [r] = client.search_runs([exp.experiment_id])
    assert r.info.status == "FINISHED" and r.info.run_name == "train-sgd"
    assert r.data.params == {"epochs": "2", "optimizer_params.lr": "0.1"}
    assert r.data.tags["stage"] == "train" and r.data.tags["optimizer"] == "sgd"
    assert r.data.tags["dvc.exp_name"] == "lucky-lynx"
    assert [m.value for m in client.get_metric_history(r.info.run_id, "val_acc")] == [0.5, 0.6]
    assert [a.path for a in client.list_artifacts(r.info.run_id)] == ["h.csv"]
    assert (project / "mlartifacts").is_dir()


def test_a_failing_stage_marks_its_run_failed(project):
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.stage_run("train", "train-adam", params={}):
            raise RuntimeError("boom")
    client = client_for(project)
    [r] = client.search_runs([client.get_experiment_by_name("unit-tests").experiment_id])
    assert r.info.status == "FAILED"


def test_unreachable_server_is_a_clear_error_within_seconds(project, monkeypatch):
    port = free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    with pytest.raises(tracking.TrackingError, match=rf"127.0.0.1:{port}.*not reachable.*unset MLFLOW_TRACKING_URI"):
        with tracking.stage_run("train", "train-sgd", params={}):
            pytest.fail("the stage body must not run")
    assert time.perf_counter() - start < 60


def test_lock_retry_gives_up_only_on_other_errors(monkeypatch):
    monkeypatch.setattr(tracking, "LOCK_BACKOFF_S", 0.001)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert tracking._retry(flaky) == "ok" and len(calls) == 3
    with pytest.raises(ValueError):
        tracking._retry(lambda: (_ for _ in ()).throw(ValueError("other")))
