"""The MLflow UI, for real: a headless Chromium renders the runs page of a run that tracking.stage_run logged.

The UI is a single-page app: the runs exist in the page only after its JavaScript has fetched them from the
server's REST API and rendered the table, so finding the run name in the rendered DOM means the server, the API
and the front end all work on a store this project wrote. Skipped where Debian's chromium is not installed
(`apt-get install -y chromium`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cnn_pruning import tracking
from conftest import free_port, tool_env

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")

EXPERIMENT = "ui-check"


def wait_for_health(uri: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer /health in {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def logged_run(tmp_path, monkeypatch):
    """One run logged by tracking.stage_run into a fresh SQLite store: (store URI, experiment id, run name)."""
    store = f"sqlite:///{tmp_path / 'ui.db'}"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    monkeypatch.chdir(tmp_path)
    run_name = f"train-ui-{uuid.uuid4().hex[:8]}"  # unique: it can only be in the page if the UI rendered it
    with tracking.stage_run("train", run_name, params={"epochs": 1}, tags={"optimizer": "sgd"}) as run:
        run.log_metrics({"val_acc": 0.5}, step=1)
    exp = MlflowClient(tracking_uri=store).get_experiment_by_name(EXPERIMENT)
    return store, exp.experiment_id, run_name


@pytest.fixture
def ui_server(tmp_path, logged_run):
    """`mlflow server` on a free port over that store; its process group is killed at teardown."""
    store = logged_run[0]
    port = free_port()
    log = tmp_path / "server.log"
    mlflow = Path(sys.executable).parent / "mlflow"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(mlflow), "server", "--backend-store-uri", store, "--artifacts-destination", str(tmp_path / "art"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=tool_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)  # own process group: the uvicorn worker goes too
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(uri, proc, log)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def render(url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran, from headless Chromium (nothing leaves the machine)."""
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_ui_lists_a_run_logged_by_stage_run(tmp_path, logged_run, ui_server):
    _, exp_id, run_name = logged_run
    url = f"{ui_server}/#/experiments/{exp_id}/runs"
    dom = render(url, tmp_path / "profile-1")
    if run_name not in dom:  # a slow first API answer on a busy machine: one more try with a fresh profile
        dom = render(url, tmp_path / "profile-2")
    assert run_name in dom, f"{run_name} not rendered; page text starts:\n{dom[:3000]}"
    assert EXPERIMENT in dom  # the breadcrumb names the experiment
    assert re.search(r"<strong>1</strong>\s*matching run", dom), "the footer should count exactly one run"
