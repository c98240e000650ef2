"""cnn_pruning.tracking against a real MLflow SQLite store in a temporary project root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from cnn_pruning import tracking
from cnn_pruning.core import params
from helpers import free_port

SRC = Path(__file__).resolve().parents[1] / "src"


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
    assert params.flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}
    assert params.flatten({"prune": {"options": {"l2_unit": {}}}}) == {"prune.options.l2_unit": {}}


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
    with pytest.raises(tracking.TrackingError,
                       match=rf"127.0.0.1:{port}.*not reachable.*unset MLFLOW_TRACKING_URI") as refused:
        with tracking.stage_run("train", "train-sgd", params={}):
            pytest.fail("the stage body must not run")
    # Refused by the first request itself (a refused connection), not after the MLflow client's minutes of retries.
    assert isinstance(refused.value.__cause__, urllib.error.URLError), repr(refused.value.__cause__)


def test_lock_retry_gives_up_only_on_other_errors(monkeypatch):
    monkeypatch.setattr(tracking.store, "LOCK_BACKOFF_S", 0.001)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert tracking.store.retry(flaky) == "ok" and len(calls) == 3
    with pytest.raises(ValueError):
        tracking.store.retry(lambda: (_ for _ in ()).throw(ValueError("other")))


def test_run_names_carry_what_tells_runs_apart():
    assert tracking.run_name("finetune", "magnitude", 0.9) == "finetune-magnitude@0.9"
    assert tracking.run_name("finetune", "none") == "finetune-none"
    assert tracking.run_name("point", "kmeans_channel", 0.5, seed=1) == "point-kmeans_channel@0.5-s1"
    assert tracking.run_name("point", "l2_unit", 0.9, 0, "gradual") == "point-l2_unit@0.9-s0-gradual"
    assert tracking.run_name("point", "l2_unit", 0.9, 0, "oneshot") == "point-l2_unit@0.9-s0"


def parents_and_children(root):
    client = client_for(root)
    runs = client.search_runs([client.get_experiment_by_name("unit-tests").experiment_id])
    parents = [r for r in runs if r.data.tags["stage"] == "pipeline"]
    return parents, [r for r in runs if r.data.tags["stage"] != "pipeline"]


def test_stage_runs_of_one_invocation_nest_under_one_parent(project, monkeypatch):
    monkeypatch.setenv(tracking.INVOCATION_ENV, "first")
    for name in ("train-sgd", "finetune-magnitude@0.5"):
        with tracking.stage_run("train", name, params={"epochs": 1},
                                coords=tracking.coordinates(method="magnitude", ratio=0.5, seed=0)):
            pass
    monkeypatch.setenv(tracking.INVOCATION_ENV, "second")
    with pytest.raises(RuntimeError):
        with tracking.stage_run("train", "train-adam", params={}):
            raise RuntimeError("boom")
    parents, children = parents_and_children(project)
    assert len(parents) == 2
    first, second = sorted(parents, key=lambda p: p.info.start_time)
    assert (first.info.run_name, second.info.run_name) == ("first", "second")  # named after the chosen id
    assert first.info.status == "FINISHED" and second.info.status == "FAILED"  # its last stage's outcome
    assert first.data.params == {"tracking.experiment": "unit-tests"}  # the whole params.yaml
    nested = {c.info.run_name: c.data.tags["mlflow.parentRunId"] for c in children}
    assert nested == {"train-sgd": first.info.run_id, "finetune-magnitude@0.5": first.info.run_id,
                      "train-adam": second.info.run_id}
    tuned = next(c for c in children if c.info.run_name == "finetune-magnitude@0.5")
    assert tuned.data.params == {"epochs": "1", "method": "magnitude", "ratio": "0.5", "seed": "0"}


def test_a_stage_in_another_process_nests_under_the_finished_parent(project):
    """What a DVC command does: each stage is a process of its own; the parent already FINISHED takes them all."""
    script = project / "dvc"  # its process is what invocation() looks for: a `dvc` ancestor
    code = "import sys; from cnn_pruning import tracking\nwith tracking.stage_run('s', sys.argv[1], params={}): pass"
    script.write_text("#!/bin/sh\n" + "".join(f"{sys.executable} -c \"{code}\" {n} || exit 1\n"
                                                for n in ("one", "two")))
    script.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop(tracking.INVOCATION_ENV, None)
    for _ in range(2):  # two invocations: two parents
        subprocess.run([str(script)], cwd=project, env=env, check=True, capture_output=True, timeout=300)
    parents, children = parents_and_children(project)
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    assert {p.info.run_name for p in parents} == {"lucky-lynx"}  # named after the DVC experiment
    groups = {}
    for c in children:
        groups.setdefault(c.data.tags["mlflow.parentRunId"], []).append(c.info.run_name)
    assert sorted(groups) == sorted(p.info.run_id for p in parents)
    assert all(sorted(names) == ["one", "two"] for names in groups.values())


def test_a_stage_run_by_hand_has_no_parent(project, monkeypatch):
    monkeypatch.delenv(tracking.INVOCATION_ENV, raising=False)
    with tracking.stage_run("train", "train-sgd", params={}):
        pass
    parents, [child] = parents_and_children(project)
    assert parents == [] and "mlflow.parentRunId" not in child.data.tags


def test_each_split_is_a_dataset_of_its_own(project):
    from cnn_pruning.datasets.dataset import Dataset, Split
    rng = np.random.default_rng(0)

    def split(n):
        return Split(rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))

    data = Dataset(split(20), split(5), split(8), tuple("abcdefghij"), "https://example.org/c.tar.gz", "ab" * 16)
    with tracking.stage_run("train", "train-sgd", params={}, data=data, splits=("train", "val", "test")) as run:
        run.log_results({"test_acc": 0.5, "threads": 2, "batch_size": 256, "device": "cpu", "method": "x"})
    [r] = parents_and_children(project)[1]
    got = {d.dataset.name: (d.dataset.digest, d.dataset.source_type, json.loads(d.dataset.profile)["num_rows"],
                            {t.key: t.value for t in d.tags}["mlflow.data.context"]) for d in r.inputs.dataset_inputs}
    assert {k: v[1:] for k, v in got.items()} == {"cifar10-train": ("http", 20, "training"),
                                                  "cifar10-val": ("http", 5, "validation"),
                                                  "cifar10-test": ("http", 8, "test")}
    assert len({v[0] for v in got.values()}) == 3  # one digest each: one shared digest would collapse them
    assert r.data.metrics == {"test_acc": 0.5}
    assert {k: r.data.tags[k] for k in ("threads", "batch_size", "device")} == {
        "threads": "2", "batch_size": "256", "device": "cpu"}


def test_system_metrics_are_sampled_while_the_stage_runs(project, monkeypatch):
    monkeypatch.setattr(tracking.runs, "SYSTEM_METRICS_INTERVAL_S", 0.2)
    with tracking.stage_run("train", "train-sgd", params={}, system_metrics=True):
        time.sleep(1.5)
    [r] = parents_and_children(project)[1]
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= r.data.metrics.keys()


def test_artifacts_keep_the_name_they_are_given_and_tables_are_tables(project):
    (project / "magnitude.json").write_text('{"a": 1}')
    with tracking.stage_run("evaluate", "evaluate-magnitude@0.5", params={}) as run:
        run.log_artifacts(named={"metrics.json": project / "magnitude.json"})
        run.log_table([{"model": "none", "test_acc": 0.9}], "summary")
    [r] = parents_and_children(project)[1]
    client = client_for(project)
    assert [a.path for a in client.list_artifacts(r.info.run_id)] == ["metrics.json", "tables"]
    table = json.loads(Path(client.download_artifacts(r.info.run_id, "tables/summary.json", str(project / "dl")))
                       .read_text())
    assert table["columns"] == ["model", "test_acc"] and table["data"] == [["none", 0.9]]


def test_ui_url_opens_the_model_training_view_of_the_experiment(project):
    with tracking.stage_run("train", "train-sgd", params={}):
        pass
    exp_id = client_for(project).get_experiment_by_name("unit-tests").experiment_id
    assert tracking.ui_url("http://127.0.0.1:5000") == (
        f"http://127.0.0.1:5000/#/experiments/{exp_id}/runs?workflowType=machine_learning")
