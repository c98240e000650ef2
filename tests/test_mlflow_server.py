"""A shared MLflow tracking server (tools/mlflow_server.sh) and the real pipeline logging into it.

One module-scoped copy of the repo, reused in this order (the fixtures chain enforces it):
  1. `dvc repro` with MLFLOW_TRACKING_URI at a port where nothing listens: fails fast, before any training;
  2. the script starts a real `mlflow server` (SQLite store + proxied artifacts) in a temporary directory
     (launched before step 1, so that it boots meanwhile);
  3. `dvc repro` of a small pipeline (sgd; magnitude; sweep magnitude at 0.5) logs into that server;
  4. the runs are read back over the server's REST API with plain urllib, as any other client would;
  5. the script stops the server by its PID file, and the process group is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from helpers import (
    REPO,
    SERVER_SCRIPT,
    TINY_OVERRIDES,
    api,
    copy_repo,
    free_port,
    group_members,
    kv,
    ran_stages,
    run,
    server_script,
    tool_env,
)

pytestmark = [pytest.mark.dvc, pytest.mark.server, pytest.mark.xdist_group("mlflow_server")]

EXPERIMENT = "resnet20-cifar10"
# One MLflow run per DVC stage instance of the small pipeline below (validate logs nothing).
EXPECTED_RUNS = {
    "download": "download",
    "train-sgd": "train",
    "prune-magnitude@0.5": "prune",
    "finetune-magnitude@0.5": "finetune",
    "evaluate_base-sgd": "evaluate", "evaluate-magnitude@0.5": "evaluate",
    "sweep-magnitude": "sweep",
    "report": "report",
    "point-none-s0": "study_point", "point-magnitude@0.5-s0": "study_point",
    "speed-magnitude@0.5": "study_speed",
    "study": "study",
}


# ------------------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def repo(tmp_path_factory, tiny_source) -> Path:
    """A small pipeline: one optimizer, the control and one pruning method, a one-point sweep and study."""
    return copy_repo(tmp_path_factory.mktemp("served-pipeline"), {
        **TINY_OVERRIDES,
        "data": {**TINY_OVERRIDES["data"], "source": str(tiny_source)},
        "train": {**TINY_OVERRIDES["train"], "optimizers": ["sgd"]},
        "prune": {"methods": ["magnitude"]},
        "sweep": {**TINY_OVERRIDES["sweep"], "methods": ["magnitude"], "ratios": [0.5]},
        "study": {"methods": ["magnitude"], "ratios": [0.5], "seeds": [0]},  # one seed: no spread, no tests
    })


@pytest.fixture(scope="module")
def server_launch(tmp_path_factory):
    """`mlflow_server.sh start` on a free port, launched without waiting: it boots while the dead-port repro runs.

    Teardown: the last test stops the server itself; if a test failed first, stop it here (then SIGKILL leftovers).
    """
    store = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    # One uvicorn worker: plenty for one client, and the lightest start on a small machine.
    launch = subprocess.Popen(["bash", str(SERVER_SCRIPT), "start", "--port", str(port), "--dir", str(store),
                               "--workers", "1", "--timeout", "150"],
                              cwd=REPO, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield launch, store, port
    if launch.poll() is None:
        launch.kill()
        launch.wait()
    pid_file = store / "mlflow-server.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if group_members(pid):
            server_script("stop", "--dir", str(store))
        for member in group_members(pid):
            os.kill(member, signal.SIGKILL)


@pytest.fixture(scope="module")
def unreachable_repro(repo, server_launch):
    """`dvc repro` of the fresh copy with the tracking URI at a dead port: (process, port)."""
    port = free_port()
    while port == server_launch[2]:  # not the port the server is about to take
        port = free_port()
    proc = run(["dvc", "repro"], repo, env=tool_env(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}"), check=False,
               timeout=300)
    return proc, port


@pytest.fixture(scope="module")
def server(server_launch):
    """The started server: {"uri", "pid", "dir", "port"}."""
    launch, store, port = server_launch
    stdout, stderr = launch.communicate(timeout=240)
    assert launch.returncode == 0, f"start failed:\n{stdout}\n{stderr}"
    uri = f"http://127.0.0.1:{port}"
    # stdout is exactly the line to eval; the chatter goes to stderr.
    assert stdout.strip() == f"export MLFLOW_TRACKING_URI={uri}", stdout
    return {"uri": uri, "pid": int((store / "mlflow-server.pid").read_text()), "dir": store, "port": port}


@pytest.fixture(scope="module")
def served_repro(repo, server, unreachable_repro):
    """The real `dvc repro` of the copy, logging into the server (after the dead-port attempt on the same copy)."""
    proc = run(["dvc", "repro"], repo, env=tool_env(MLFLOW_TRACKING_URI=server["uri"]), timeout=600)
    (repo / "repro.log").write_text(proc.stdout + proc.stderr)
    exp = api(server["uri"], "experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
    runs = api(server["uri"], "runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 1000})
    return exp, runs.get("runs", [])


# --------------------------------------------------------------------------------------------------------- tests

def test_unreachable_server_fails_the_pipeline_before_any_training(repo, unreachable_repro):
    proc, port = unreachable_repro
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    # The first stage that tracks stopped before its work; no stage after it started.
    assert ran_stages(proc.stdout) == ["validate", "download"], ran_stages(proc.stdout)
    # tracking.TrackingError's message, printed by the first stage that tracks (download) before it does anything
    assert f"127.0.0.1:{port}" in out and "not reachable" in out and "unset MLFLOW_TRACKING_URI" in out, out
    assert "Traceback" not in out, out
    assert "train@sgd" not in proc.stdout, proc.stdout
    assert not (repo / "data" / "cifar10.npz").exists()
    assert not (repo / "models" / "base" / "sgd.pt").exists()


def test_every_stage_logs_one_finished_run_into_the_server(repo, server, served_repro):
    exp, runs = served_repro
    # Artifacts are proxied: the experiment's root is the server's mlflow-artifacts:/ scheme, not a local path.
    assert exp["artifact_location"].startswith("mlflow-artifacts:"), exp
    commit = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    [parent] = [r for r in runs if kv(r["data"].get("tags"))["stage"] == "pipeline"]  # the one `dvc repro`
    assert parent["info"]["run_name"] == f"repro-{commit[:7]}" and parent["info"]["status"] == "FINISHED"
    runs = [r for r in runs if r is not parent]
    names = sorted(r["info"]["run_name"] for r in runs)
    assert names == sorted(EXPECTED_RUNS), names  # exactly one run per stage, none twice
    assert {kv(r["data"].get("tags"))["mlflow.parentRunId"] for r in runs} == {parent["info"]["run_id"]}
    for r in runs:
        info, tags = r["info"], kv(r["data"].get("tags"))
        assert info["status"] == "FINISHED", info
        assert tags["stage"] == EXPECTED_RUNS[info["run_name"]]
        assert tags["mlflow.source.git.commit"] == commit
        assert {"dvc.exp_name", "version.torch", "version.dvc", "version.mlflow", "python"} <= tags.keys()
    # Nothing fell back to the local store in the pipeline copy.
    assert not (repo / "mlflow.db").exists() and not (repo / "mlartifacts").exists()


def test_train_run_has_epoch_metrics_params_and_artifacts_on_the_server(repo, server, served_repro):
    exp, runs = served_repro
    uri = server["uri"]
    sgd = next(r for r in runs if r["info"]["run_name"] == "train-sgd")
    run_id = sgd["info"]["run_id"]
    assert kv(sgd["data"].get("tags"))["optimizer"] == "sgd"
    params = kv(sgd["data"].get("params"))
    assert params["optimizer_params.lr"] == "0.1" and params["epochs"] == "1"
    history = api(uri, "metrics/get-history", run_id=run_id, metric_key="val_acc")["metrics"]
    assert [m["step"] for m in history] == [1] and 0 <= history[0]["value"] <= 1
    listed = api(uri, "artifacts/list", run_id=run_id)
    files = {f["path"]: f for f in listed.get("files", [])}
    assert {"history.csv", "curves.png"} <= files.keys(), listed
    # The bytes went through the server into its artifact directory, and come back identical over HTTP.
    local = (repo / "plots" / "train" / "sgd.csv").read_bytes()
    stored = server["dir"] / "artifacts" / exp["experiment_id"] / run_id / "artifacts" / "history.csv"
    assert stored.read_bytes() == local
    query = urllib.parse.urlencode({"path": "history.csv", "run_uuid": run_id})
    with urllib.request.urlopen(f"{uri}/get-artifact?{query}", timeout=30) as resp:
        assert resp.read() == local


def test_evaluated_models_are_logged_models_on_the_server(repo, server, served_repro):
    """The ONNX models go through the server's artifact proxy like any artifact, and come back as files."""
    from mlflow.tracking import MlflowClient
    exp, runs = served_repro
    client = MlflowClient(tracking_uri=server["uri"])
    logged = client.search_logged_models([exp["experiment_id"]])
    names = {r["info"]["run_id"]: r["info"]["run_name"] for r in runs}
    assert sorted(names[m.source_run_id] for m in logged) == ["evaluate-magnitude@0.5", "evaluate_base-sgd"]
    listed = {a.path for a in client.list_logged_model_artifacts(logged[0].model_id)}
    assert {"MLmodel", "model.onnx"} <= listed, listed


def test_start_again_reuses_the_running_server_and_stop_kills_it(server, served_repro):
    uri, pid, store = server["uri"], server["pid"], server["dir"]
    again = server_script("start", "--port", str(server["port"]), "--dir", str(store))
    assert again.returncode == 0 and again.stdout.strip() == f"export MLFLOW_TRACKING_URI={uri}", again.stderr
    assert int((store / "mlflow-server.pid").read_text()) == pid  # no second server
    assert group_members(pid), "the server's process group should be alive before stop"

    stop = server_script("stop", "--dir", str(store), timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert not (store / "mlflow-server.pid").exists()
    assert group_members(pid) == [], "the mlflow CLI or a uvicorn worker survived stop"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(f"{uri}/health", timeout=5)

