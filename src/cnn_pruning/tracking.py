"""MLflow tracking for the stages: one stage run = one MLflow run. The only module that imports mlflow.

    with tracking.stage_run("train", "train-sgd", params=section, tags={"optimizer": "sgd"}) as run:
        run.log_metrics({"val_acc": 0.9}, step=epoch)
        run.log_artifact("plots/train/sgd.csv")

Store: MLFLOW_TRACKING_URI if set (e.g. an `mlflow server` URL), else sqlite:///<project root>/mlflow.db, with the
experiment's artifacts in <project root>/mlartifacts. The root comes from DVC_ROOT, so workspace runs, `--temp`
runs and queue workers all log into the same store, and artifacts never land in a temporary copy DVC deletes.
Experiment name: MLFLOW_EXPERIMENT_NAME, else params.yaml `tracking.experiment`, else resnet<model.depth>-<data.name>.
Every run is tagged with the stage, git commit, DVC experiment name, package versions, the data source and its md5
(for the stages that load the dataset), and anything the stage adds.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib.metadata
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before mlflow is imported: nothing phones home

from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from . import files  # noqa: E402
from .errors import UserError  # noqa: E402
from .params import PARAMS_FILE, experiment_for, load_params, project_root  # noqa: E402

STORE_FILE, ARTIFACT_DIR = "mlflow.db", "mlartifacts"
VERSIONED_PACKAGES = ("torch", "torchvision", "dvc", "mlflow", "numpy", "scikit-learn")
# SQLite allows one writer at a time: parallel queue workers can meet "database is locked". Retry with jitter.
LOCK_RETRIES, LOCK_BACKOFF_S = 20, 0.25


class TrackingError(UserError, RuntimeError):
    """The tracking store cannot be used; raised before any expensive work starts."""


def tracking_uri(root: Path | None = None) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root or project_root()) / STORE_FILE}"


def experiment_name() -> str:
    if os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        return os.environ["MLFLOW_EXPERIMENT_NAME"]
    return experiment_for(load_params(PARAMS_FILE) if Path(PARAMS_FILE).exists() else {})


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """An http(s) tracking server must answer now: the MLflow client would otherwise retry for minutes."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).read()
    except (urllib.error.URLError, OSError) as e:
        raise TrackingError(f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) is not reachable: {e}. "
                            "Start it (make mlflow-server) or unset MLFLOW_TRACKING_URI to log to the local "
                            "store mlflow.db") from e


def _retry(call, *args, **kwargs):
    for attempt in range(LOCK_RETRIES):
        try:
            return call(*args, **kwargs)
        except Exception as e:  # sqlalchemy's OperationalError arrives wrapped in MlflowException or bare
            if "database is locked" not in str(e) or attempt == LOCK_RETRIES - 1:
                raise
            time.sleep(LOCK_BACKOFF_S * (1 + attempt) * (0.5 + random.random()))


def flatten(d: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; the stage's params section as MLflow params."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def provenance_tags() -> dict:
    """What produced a run: git commit, DVC experiment, package versions, interpreter, user.

    In `dvc exp run` (workspace, --temp or a queue worker) DVC names the experiment in DVC_EXP_NAME and its
    baseline commit in DVC_EXP_BASELINE_REV; the params it changed are the experiment, not uncommitted work, so
    such runs are never tagged dirty, and a temp copy's detached HEAD is not reported as a branch called "HEAD".
    """
    exp_name, baseline = os.environ.get("DVC_EXP_NAME", ""), os.environ.get("DVC_EXP_BASELINE_REV", "")
    tags = {"mlflow.source.git.commit": baseline or _git("rev-parse", "HEAD") or "unknown",
            "dvc.exp_name": exp_name, "python": sys.version.split()[0], "mlflow.user": getpass.getuser()}
    branch = _git("symbolic-ref", "--short", "-q", "HEAD")  # nothing for a detached HEAD
    if branch:
        tags["mlflow.source.git.branch"] = branch
    if not exp_name:
        tags["git.dirty"] = str(bool(_git("status", "--porcelain", "--untracked-files=no"))).lower()
    for pkg in VERSIONED_PACKAGES:
        try:
            tags[f"version.{pkg}"] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return tags


def data_tags(data) -> dict:
    """The data a run used (a cnn_pruning.datasets.dataset.Dataset): its name, classes, the source it was read from
    and that file's md5."""
    return {"data.name": data.name, "data.classes": str(len(data.classes)), "data.source": data.source,
            "data.source_md5": data.source_md5 or ""}


def get_or_create_experiment(client: MlflowClient, name: str, root: Path) -> str:
    exp = _retry(client.get_experiment_by_name, name)
    if exp is not None:
        return exp.experiment_id
    # Local store: artifacts beside the database, not under the working directory (a temp copy DVC deletes).
    location = None if tracking_uri(root).startswith("http") else (root / ARTIFACT_DIR / name).as_uri()
    try:
        return _retry(client.create_experiment, name, artifact_location=location)
    except MlflowException as e:  # another worker created it first
        if "already exists" not in str(e).lower() and "unique constraint" not in str(e).lower():
            raise
        return _retry(client.get_experiment_by_name, name).experiment_id


class StageRun:
    """A live MLflow run; every write goes through the lock-retry policy."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if isinstance(v, (int, float))]
        _retry(self.client.log_batch, self.run_id, metrics=batch)

    def set_tags(self, tags: dict) -> None:
        _retry(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        _retry(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def log_artifacts(self, *paths: str | os.PathLike) -> None:
        for path in paths:
            self.log_artifact(path)

    def log_model(self, path: str | os.PathLike) -> None:
        """Tag the model file DVC tracks (its md5 is DVC's hash of it): models stay in DVC, not in MLflow."""
        self.set_tags({"model_md5": files.md5_of(path), "model_path": str(path)})


def model_tags(method: str, ratio: float | None, base: str | None) -> dict:
    """The tags that say which model a run is about: method, ratio ("" for the control) and base optimizer."""
    return {"method": method, "ratio": "" if ratio is None else ratio, "base_optimizer": base or ""}


def project_id(root: Path) -> str:
    """Which checkout a run came from (host and project root): a shared server serves many."""
    return f"{socket.gethostname()}:{root}"


def close_killed_runs(client: MlflowClient, exp_id: str, run_name: str, project: str, exp_name: str) -> None:
    """Mark KILLED what a killed process left RUNNING: the same stage of the same checkout and DVC experiment.

    A stage killed with SIGKILL cannot end its run; when the stage runs again (and resumes), its old run would
    show as running for ever. DVC lets one stage of one checkout and experiment run at a time, so any such run
    still RUNNING is dead; runs of other checkouts or parallel queued experiments differ in `project` or name.
    """
    # Run names are ours (no quotes); the project path may hold any character, so it is compared here, not quoted
    # into the filter. Housekeeping only: a failure here must not stop the stage.
    query = f"attributes.run_name = '{run_name}' AND attributes.status = 'RUNNING'"
    try:
        for stale in _retry(client.search_runs, [exp_id], query, max_results=100):
            tags = stale.data.tags
            if tags.get("project") == project and tags.get("dvc.exp_name", "") == exp_name:
                _retry(client.set_terminated, stale.info.run_id, "KILLED")
    except MlflowException as e:
        print(f"tracking: could not close runs a killed stage left RUNNING ({e})", file=sys.stderr)


@contextlib.contextmanager
def stage_run(stage: str, run_name: str, params: dict, tags: dict | None = None, data=None) -> Iterator[StageRun]:
    """Open one MLflow run for a stage; FINISHED on success, FAILED (and re-raised) on any error. `data`: the
    dataset the stage loaded, whose source and md5 become tags."""
    root = project_root()
    uri = tracking_uri(root)
    check_reachable(uri)
    client = MlflowClient(tracking_uri=uri)
    exp_id = get_or_create_experiment(client, experiment_name(), root)
    all_tags = {**provenance_tags(), **(data_tags(data) if data is not None else {}), "stage": stage, "mlflow.runName": run_name,
                "mlflow.source.name": Path(sys.argv[0]).name or f"{stage}.py", "project": project_id(root),
                **(tags or {})}
    close_killed_runs(client, exp_id, run_name, all_tags["project"], all_tags["dvc.exp_name"])
    run = _retry(client.create_run, exp_id, run_name=run_name, tags={k: str(v) for k, v in all_tags.items()})
    run_id = run.info.run_id
    flat = flatten(params)
    for i in range(0, len(flat), 100):  # MLflow takes at most 100 params per batch
        chunk = list(flat.items())[i:i + 100]
        _retry(client.log_batch, run_id, params=[Param(k, str(v)[:6000]) for k, v in chunk])
    try:
        yield StageRun(client, run_id)
    except BaseException:
        _retry(client.set_terminated, run_id, "FAILED")
        raise
    _retry(client.set_terminated, run_id, "FINISHED")
