"""The MLflow tracking server dies under a running pipeline, for real: killed by its PID in the middle of training,
and again while an evaluation is finishing. MLflow's client retries lowered so that the outage outlasts them.

What must hold: the stage stops within seconds naming the server; nothing trained is lost (the resume checkpoint
survives, DVC's outputs of earlier stages are untouched); with the server started again, the rerun resumes after
the last completed epoch and its final metrics equal those of an uninterrupted run; no MLflow run stays RUNNING.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (
    TRAINED_TRAIN,
    api,
    copy_of,
    copy_repo,
    free_port,
    group_members,
    kv,
    run,
    server_script,
    set_params,
    tiny_overrides,
    tool_env,
)

pytestmark = [pytest.mark.dvc, pytest.mark.server, pytest.mark.xdist_group("server_faults")]

EPOCHS = TRAINED_TRAIN["epochs"]
# The client gives up after about a second instead of MLflow's ~4 minutes (7 retries, backoff factor 2).
FAST_GIVE_UP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def tiny_repo(dest: Path, source: Path) -> Path:
    """The settings of conftest.trained_sgd, not run yet."""
    return copy_repo(dest, tiny_overrides(source, train=TRAINED_TRAIN))


@contextlib.contextmanager
def frozen(stage: subprocess.Popen):
    """The stage's whole process group stopped (SIGSTOP) inside the block and continued after it: what happens to
    the server meanwhile happens between two of the stage's steps, however fast or slow the machine is."""
    os.killpg(stage.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(stage.pid, signal.SIGCONT)


def start(store: Path, port: int) -> str:
    proc = server_script("start", "--port", str(port), "--dir", str(store), "--workers", "1", "--timeout", "150",
                         timeout=240)
    assert proc.returncode == 0, proc.stderr
    return f"http://127.0.0.1:{port}"


def kill_server(store: Path) -> float:
    """SIGKILL the server's whole process group by the PID its script recorded; returns the time it was done."""
    pid = int((store / "mlflow-server.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    deadline = time.time() + 20
    while group_members(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not group_members(pid)
    return time.time()


def runs_named(uri: str, name: str) -> list[dict]:
    exp = api(uri, "experiments/get-by-name", experiment_name="resnet20-cifar10")["experiment"]
    found = api(uri, "runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 1000}).get("runs", [])
    return [r for r in found if name is None or r["info"]["run_name"] == name]


def epochs_logged(uri: str) -> int:
    """The most epochs (val_acc steps) any train-sgd run holds on the server."""
    return max([len(api(uri, "metrics/get-history", run_id=r["info"]["run_id"], metric_key="val_acc")
                    .get("metrics", [])) for r in runs_named(uri, "train-sgd")] or [0])


def wait_for(condition, timeout: float, what: str, stage: subprocess.Popen, poll: float = 0.1):
    """Poll `condition` until it holds; fail at once, with its output, if `stage` ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stage.poll() is not None:
            raise AssertionError(f"the stage ended before {what}:\n{stage.stdout.read()[-4000:]}")
        try:
            value = condition()
        except (OSError, KeyError, ValueError):
            value = None
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def history_without_seconds(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def server_store(tmp_path_factory):
    store, port = tmp_path_factory.mktemp("mlflow-faults"), free_port()
    yield store, port
    pid_file = store / "mlflow-server.pid"
    if pid_file.exists():
        server_script("stop", "--dir", str(store))


def test_a_server_killed_mid_training_loses_no_epoch(tmp_path, tiny_source, server_store, trained_sgd):
    store, port = server_store
    uri = start(store, port)
    # The same stage, uninterrupted, logging to a local store: the numbers the interrupted one must reach.
    reference = trained_sgd

    repo = tiny_repo(tmp_path / "repo", tiny_source)
    env = tool_env(MLFLOW_TRACKING_URI=uri, **FAST_GIVE_UP)
    stage = subprocess.Popen(["dvc", "repro", "train@sgd"], cwd=repo, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        # Three epochs logged on the server; the stage is frozen, the server killed, the stage let go.
        wait_for(lambda: epochs_logged(uri) >= 3, 180, "three epochs of train-sgd on the server", stage)
        with frozen(stage):
            logged = epochs_logged(uri)
            killed_at = kill_server(store)
        out, _ = stage.communicate(timeout=120)
    finally:
        if stage.poll() is None:
            os.killpg(stage.pid, signal.SIGKILL)
    stopped_after = time.time() - killed_at
    assert stage.returncode != 0, out
    assert f"MLflow tracking server {uri} stopped answering" in out and "resumes after its last completed" in out, out
    assert "Traceback" not in out, out
    checkpoint = repo / "checkpoints" / "train" / "sgd.pt"
    assert checkpoint.exists(), "the resume checkpoint must survive the failed stage"
    assert (repo / "data" / "cifar10.npz").exists()  # an earlier stage's output: untouched

    start(store, port)  # the same store, the same port: the server is back
    again = run(["dvc", "repro", "train@sgd"], repo, env=env)
    [resumed] = [int(line.split("resuming after epoch ")[1].split()[0]) for line in again.stdout.splitlines()
                 if "resuming after epoch" in line]
    # It stopped at its first logging call without the server: the epoch it was in when the server died is the
    # last one it may have finished (its checkpoint is written before the epoch is logged).
    assert 3 <= logged <= resumed <= logged + 1 < EPOCHS, (logged, again.stdout)
    print(f"\nserver SIGKILLed with {logged} epochs of {EPOCHS} logged; the stage exited {stopped_after:.1f} s later "
          f"(code {stage.returncode}); server restarted; the rerun resumed after epoch {resumed}")
    assert not checkpoint.exists()  # finished and logged: the next run starts afresh

    ours = json.loads((repo / "metrics" / "train" / "sgd.json").read_text())
    theirs = json.loads((reference / "metrics" / "train" / "sgd.json").read_text())
    assert ours == theirs
    assert history_without_seconds(repo / "plots" / "train" / "sgd.csv") == \
        history_without_seconds(reference / "plots" / "train" / "sgd.csv")

    statuses = {r["info"]["run_name"]: [] for r in runs_named(uri, None)}
    for r in runs_named(uri, None):
        statuses[r["info"]["run_name"]].append(r["info"]["status"])
    assert "RUNNING" not in sum(statuses.values(), []), statuses
    assert sorted(statuses["train-sgd"]) == ["FINISHED", "KILLED"], statuses
    [finished] = [r for r in runs_named(uri, "train-sgd") if r["info"]["status"] == "FINISHED"]
    steps = [m["step"] for m in api(uri, "metrics/get-history", run_id=finished["info"]["run_id"],
                                    metric_key="val_acc")["metrics"]]
    assert sorted(steps) == list(range(1, EPOCHS + 1))  # every epoch on the run that finished, none twice
    assert kv(finished["data"]["metrics"])["test_acc"] == pytest.approx(theirs["test_acc"])


def test_a_server_gone_when_a_stage_finishes_keeps_its_outputs_and_the_rerun_logs_it(tmp_path, server_store,
                                                                                     trained_sgd):
    """evaluate_base logs only at its end: the server dies while it measures, its files are written, the stage
    fails, the rerun (server back) logs the run; the model it measured, an earlier stage's output, is untouched."""
    store, port = server_store
    uri = start(store, port)
    repo = copy_of(trained_sgd, tmp_path / "repo")  # trained already (logged locally): only evaluate_base runs
    set_params(repo, {"evaluate": {"rounds": 30}})  # seconds of timing after its inputs are logged: time to freeze it
    env = tool_env(MLFLOW_TRACKING_URI=uri, **FAST_GIVE_UP)
    model = repo / "models" / "base" / "sgd.pt"
    before = model.read_bytes()
    stage = subprocess.Popen(["dvc", "repro", "evaluate_base@sgd"], cwd=repo, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        # Once its run holds its dataset input, everything left is measuring, writing and the final logging; it is
        # frozen there while the server is killed.
        wait_for(lambda: any(r.get("inputs", {}).get("dataset_inputs") for r in runs_named(uri, "evaluate_base-sgd")),
                 180, "the evaluate_base-sgd run with its inputs", stage, poll=0.05)
        with frozen(stage):
            killed_at = kill_server(store)
        out, _ = stage.communicate(timeout=120)
    finally:
        if stage.poll() is None:
            os.killpg(stage.pid, signal.SIGKILL)
    assert stage.returncode != 0 and "stopped answering" in out, out
    print(f"\nserver SIGKILLed while evaluate_base measured; the stage exited {time.time() - killed_at:.1f} s later "
          f"(code {stage.returncode}) with its results written")
    assert (repo / "metrics" / "evaluate" / "base-sgd.json").exists(), "its results are written before logging"
    assert model.read_bytes() == before

    start(store, port)
    run(["dvc", "repro", "evaluate_base@sgd"], repo, env=env)
    statuses = sorted(r["info"]["status"] for r in runs_named(uri, "evaluate_base-sgd"))
    assert statuses == ["FINISHED", "KILLED"], statuses
    assert all(r["info"]["status"] != "RUNNING" for r in runs_named(uri, None))
    assert "up to date" in run(["dvc", "status", "evaluate_base@sgd"], repo, env=env).stdout
