"""The tracking store: where runs go, whether it answers, and every call through the lock-retry policy.

Store: MLFLOW_TRACKING_URI if set (e.g. an `mlflow server` URL), else sqlite:///<project root>/mlflow.db, with the
experiment's artifacts in <project root>/mlartifacts. The root comes from DVC_ROOT, so workspace runs, `--temp`
runs and queue workers all log into the same store, and artifacts never land in a temporary copy DVC deletes.
Experiment name: MLFLOW_EXPERIMENT_NAME, else params.yaml `tracking.experiment`, else resnet<model.depth>-<data.name>.
"""

from __future__ import annotations

import os
import random
import time
import urllib.error
import urllib.request
from pathlib import Path

from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..core.errors import UserError
from ..core.params import PARAMS_FILE, experiment_for, load_params, project_root

STORE_FILE, ARTIFACT_DIR = "mlflow.db", "mlartifacts"
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


def server_lost(error: Exception) -> TrackingError | None:
    """The error to raise when a call failed because the tracking server stopped answering (None otherwise): it
    names the server and how to go on. The MLflow client has retried by then (MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    about four minutes by default), so a short outage never gets here."""
    uri = tracking_uri()
    try:
        check_reachable(uri)
    except TrackingError:
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        return TrackingError(
            f"MLflow tracking server {uri} stopped answering ({first}). Nothing is lost: what this stage wrote and "
            "its resume checkpoint are kept. Start the server again (make mlflow-server) and rerun the same command: "
            "a training stage resumes after its last completed epoch, logs every epoch again, and the run left open "
            "is closed as KILLED.")
    return None


def retry(call, *args, **kwargs):
    """call(*args, **kwargs), retried while SQLite says "database is locked"; a lost server becomes server_lost()."""
    for attempt in range(LOCK_RETRIES):
        try:
            return call(*args, **kwargs)
        except Exception as e:  # sqlalchemy's OperationalError arrives wrapped in MlflowException or bare
            if "database is locked" in str(e) and attempt < LOCK_RETRIES - 1:
                time.sleep(LOCK_BACKOFF_S * (1 + attempt) * (0.5 + random.random()))
                continue
            lost = server_lost(e)
            if lost is not None:
                raise lost from e
            raise


def get_or_create_experiment(client: MlflowClient, name: str, root: Path) -> str:
    exp = retry(client.get_experiment_by_name, name)
    if exp is not None:
        return exp.experiment_id
    # Local store: artifacts beside the database, not under the working directory (a temp copy DVC deletes).
    location = None if tracking_uri(root).startswith("http") else (root / ARTIFACT_DIR / name).as_uri()
    try:
        return retry(client.create_experiment, name, artifact_location=location)
    except MlflowException as e:  # another worker created it first
        if "already exists" not in str(e).lower() and "unique constraint" not in str(e).lower():
            raise
        return retry(client.get_experiment_by_name, name).experiment_id


def log_params(client: MlflowClient, run_id: str, flat: dict) -> None:
    """Flat params in batches MLflow accepts, each value cut to the length it stores."""
    items = list(flat.items())
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        retry(client.log_batch, run_id, params=[Param(k, str(v)[:6000]) for k, v in items[i:i + 100]])


def ui_url(base: str = "http://127.0.0.1:5000") -> str:
    """The experiment's page in MLflow's Model-training view (it opens in the GenAI view otherwise)."""
    client = MlflowClient(tracking_uri=tracking_uri())
    exp = client.get_experiment_by_name(experiment_name())
    where = f"#/experiments/{exp.experiment_id}/runs" if exp else "#/experiments"
    return f"{base.rstrip('/')}/{where}?workflowType=machine_learning"
