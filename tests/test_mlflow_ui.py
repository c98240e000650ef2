"""The MLflow UI, for real: a headless Chromium renders the pages a user lands on, over runs tracking.stage_run logged.

The UI is a single-page app: the runs exist in the page only after its JavaScript has fetched them from the
server's REST API and rendered them, so finding a run's name in the rendered DOM means the server, the API and the
front end all work on a store this project wrote. `.ci/run` installs Debian's chromium, so CI runs these; elsewhere
they are skipped without it (`apt-get install -y chromium`).
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

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from cnn_pruning import tracking
from cnn_pruning.datasets.dataset import Dataset, Split
from helpers import free_port, tool_env

CHROMIUM = Path("/usr/bin/chromium")
# .ci/run installs chromium and sets CNN_PRUNING_REQUIRE_BROWSER: there a missing browser fails instead of skipping.
pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.xdist_group("mlflow_ui"),
              pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CNN_PRUNING_REQUIRE_BROWSER"),
                                 reason="needs /usr/bin/chromium (apt-get install -y chromium)")]

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


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """Two stage runs of one pipeline invocation (as `dvc exp run -n <name>` logs them), with the data they read, in a
    fresh SQLite store: (store URI, experiment id, parent name, {stage run name: run id}). The tests only read it."""
    tmp_path = tmp_path_factory.mktemp("ui-store")
    store = f"sqlite:///{tmp_path / 'ui.db'}"
    parent = f"ratio-{uuid.uuid4().hex[:8]}"  # unique: it can only be in the page if the UI rendered it
    with pytest.MonkeyPatch.context() as env:
        for key, value in {"DVC_ROOT": str(tmp_path), "MLFLOW_TRACKING_URI": store, "DVC_EXP_NAME": parent,
                           "MLFLOW_EXPERIMENT_NAME": EXPERIMENT, tracking.INVOCATION_ENV: parent}.items():
            env.setenv(key, value)
        env.chdir(tmp_path)
        rng = np.random.default_rng(0)

        def split(n):
            return Split(rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))

        data = Dataset(split(20), split(5), split(8), tuple("abcdefghij"), str(tmp_path / "cifar10.tar.gz"), None)
        children = {}
        for method in ("magnitude", "l2_unit"):
            name = tracking.run_name("finetune", method, 0.9)
            with tracking.stage_run("finetune", name, params={"epochs": 1}, data=data, splits=("train", "val", "test"),
                                    coords=tracking.coordinates(method=method, ratio=0.9)) as run:
                run.log_metrics({"val_acc": 0.5}, step=1)
            children[name] = run.run_id
    exp = MlflowClient(tracking_uri=store).get_experiment_by_name(EXPERIMENT)
    return store, exp.experiment_id, parent, children


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory, logged_run):
    """`mlflow server` on a free port over that store, one for the module's tests; its process group is killed at
    teardown."""
    tmp_path = tmp_path_factory.mktemp("ui-server")
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


def rendered(url: str, expected: str, profile: Path) -> str:
    dom = render(url, profile / "1")
    if expected not in dom:  # a slow first API answer on a busy machine: one more try with a fresh profile
        dom = render(url, profile / "2")
    assert expected in dom, f"{expected} not rendered at {url}; page text starts:\n{dom[:3000]}"
    return dom


def test_the_experiment_page_shows_the_parent_run_with_its_data(tmp_path, logged_run, ui_server, monkeypatch):
    store, exp_id, parent, children = logged_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    url = tracking.ui_url(ui_server)  # what `make mlflow-ui` prints: the Model-training view of the experiment
    assert url == f"{ui_server}/#/experiments/{exp_id}/runs?workflowType=machine_learning"
    dom = rendered(url, parent, tmp_path / "profile")
    assert EXPERIMENT in dom  # the breadcrumb names the experiment
    assert "Run Name" in dom and "Dataset" in dom  # the runs table, not the GenAI overview
    assert "cifar10-train" in dom  # the Dataset column of the parent's row: the data its stages read
    assert re.search(r"<strong>3</strong>\s*matching runs", dom), "the parent and its two stage runs"
    for name in children:  # nested: folded under the parent's expander until it is opened
        assert name not in dom


def test_a_stage_run_page_shows_its_parent_and_its_three_datasets(tmp_path, logged_run, ui_server):
    _, exp_id, parent, children = logged_run
    name, run_id = next(iter(children.items()))
    dom = rendered(f"{ui_server}/#/experiments/{exp_id}/runs/{run_id}?workflowType=machine_learning", name,
                   tmp_path / "profile")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", " ", dom, flags=re.S)))
    assert re.search(rf"Parent run {re.escape(parent)}", text), text[:3000]
    assert re.search(r"Datasets cifar10-train \([0-9a-f]{8}\) training \+2", text), text[:3000]
    assert re.search(r"Parameters \(3\) Parameter Value epochs 1 method magnitude ratio 0.9", text), text[:3000]
