"""MLflow tracking for the stages: one stage run = one MLflow run. The only module that imports mlflow.

    with tracking.stage_run("finetune", "finetune-magnitude@0.9", params=section,
                            coords=tracking.coordinates(method="magnitude", ratio=0.9, base_optimizer="sgd"),
                            data=ds, splits=("train", "val", "test"), system_metrics=True) as run:
        run.log_metrics({"val_acc": 0.9}, step=epoch)           # per-epoch series
        run.log_results({"test_acc": 0.91, "threads": 2})        # results -> metrics, run constants -> tags
        run.log_artifact("metrics/finetune/magnitude.json", "metrics.json")   # the same name in every run

Store: MLFLOW_TRACKING_URI if set (e.g. an `mlflow server` URL), else sqlite:///<project root>/mlflow.db, with the
experiment's artifacts in <project root>/mlartifacts. The root comes from DVC_ROOT, so workspace runs, `--temp`
runs and queue workers all log into the same store, and artifacts never land in a temporary copy DVC deletes.
Experiment name: MLFLOW_EXPERIMENT_NAME, else params.yaml `tracking.experiment`, else resnet<model.depth>-<data.name>.

What a run holds, so that MLflow's table and Compare view line runs up:
  * params: the run's coordinates (method, ratio, base optimizer, seed, depth, dataset: `coordinates()`) beside the
    stage's own params section;
  * metrics: results and per-epoch series; one-off constants of the machine or run (threads, load average, queue
    workers, batch size, image counts) are tags instead (RUN_CONSTANTS);
  * tags: stage, git commit, DVC experiment, package versions, data source and md5, device;
  * inputs: one MLflow dataset per split the stage reads (`cifar10-train`, `cifar10-val`, `cifar10-test`), each with
    its own digest, source, sizes and context (training / validation / test);
  * artifacts under the same names in every run of a stage, and for evaluated models an ONNX MLflow model.

One parent run per pipeline invocation (`invocation()`): every stage run of one `dvc repro`, `dvc exp run` (in the
workspace, --temp or a queue worker) or `make run` nests under it (tag mlflow.parentRunId). The parent is named after
the DVC experiment (`repro-<commit>` for a plain repro), holds the whole params.yaml as params, and shows RUNNING
while one of its stages runs, FINISHED or FAILED after the last one.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import importlib.metadata
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before mlflow is imported: nothing phones home
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a stage's log is not the place for them

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from . import files
from .errors import UserError
from .params import PARAMS_FILE, experiment_for, load_params, project_root

STORE_FILE, ARTIFACT_DIR = "mlflow.db", "mlartifacts"
VERSIONED_PACKAGES = ("torch", "torchvision", "dvc", "mlflow", "numpy", "scikit-learn", "onnx", "onnxruntime")
# SQLite allows one writer at a time: parallel queue workers can meet "database is locked". Retry with jitter.
LOCK_RETRIES, LOCK_BACKOFF_S = 20, 0.25
# Values a stage reports beside its results that describe the machine or the run, not the model: tags, so they do
# not crowd the run page's metric charts with one-point bars.
RUN_CONSTANTS = ("threads", "load_avg_1m", "dvc_queue_workers", "batch_size", "timed_rounds", "test_images",
                 "train_images", "val_images", "eval_images", "epochs", "device", "device_name", "runtime")
# Set it to group the stage runs of several DVC commands (a script's) under one parent run.
INVOCATION_ENV = "CNN_PRUNING_INVOCATION"
SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "test"}
SYSTEM_METRICS_INTERVAL_S = 10  # MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL overrides


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


def _retry(call, *args, **kwargs):
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


def coordinates(*, method: str | None = None, ratio: float | None = None, base_optimizer: str | None = None,
                seed: int | None = None, depth: int | None = None, dataset: str | None = None,
                variant: str | None = None) -> dict:
    """Where a run sits among the others: the params MLflow's Compare view plots runs over. Only what is given;
    ratio 0.0 for the control (nothing removed), so a parallel-coordinates axis stays numeric."""
    coords = {"method": method, "ratio": ratio, "base_optimizer": base_optimizer, "seed": seed, "depth": depth,
              "dataset": dataset, "variant": variant}
    return {k: v for k, v in coords.items() if v is not None}


def run_name(stage: str, name: str, ratio: float | None = None, seed: int | None = None,
             variant: str | None = None) -> str:
    """What tells a stage's runs apart in MLflow's table: finetune-magnitude@0.9, point-kmeans_channel@0.5-s1,
    point-l2_unit@0.9-s0-gradual (the default one-shot variant unnamed), finetune-none (the control)."""
    label = f"{stage}-{name}" + ("" if ratio is None else f"@{ratio:g}") + ("" if seed is None else f"-s{seed}")
    return label + ("" if variant in (None, "oneshot") else f"-{variant}")


def dataset_inputs(data, splits) -> list[DatasetInput]:
    """One MLflow dataset per split of `data` (a Dataset): its own name (`cifar10-train`), a digest of its images and
    labels, the source the data came from, its size and the context it is used in."""
    source_type = "http" if data.source.startswith(("http://", "https://")) else "local"
    source = json.dumps({"url": data.source} if source_type == "http" else {"uri": data.source})
    inputs = []
    for split in splits:
        part = getattr(data, split)
        digest = hashlib.md5(part.images.tobytes())
        digest.update(part.labels.tobytes())
        schema = {"mlflow_tensorspec": {
            "features": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": str(part.images.dtype),
                                                                        "shape": [-1, *part.images.shape[1:]]}}]),
            "targets": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": str(part.labels.dtype),
                                                                       "shape": [-1]}}])}}
        profile = {"num_rows": int(len(part.labels)), "num_classes": len(data.classes),
                   "features_shape": list(part.images.shape), "targets_shape": list(part.labels.shape)}
        ds = Dataset(name=f"{data.name}-{split}", digest=digest.hexdigest()[:8], source_type=source_type,
                     source=source, schema=json.dumps(schema), profile=json.dumps(profile))
        inputs.append(DatasetInput(ds, tags=[InputTag("mlflow.data.context", SPLIT_CONTEXTS[split])]))
    return inputs


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


# ---------------------------------------------------------------------------------------------- the parent run

def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time in clock ticks since boot) of a process, from /proc; None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[19]


def _dvc_process() -> str | None:
    """'<pid>-<start ticks>' of the nearest ancestor process that is `dvc` (`dvc repro`, `dvc exp run`, a queue
    worker's `dvc exp exec-run`; run as `dvc ...`, `python .../bin/dvc ...` or `python -m dvc ...`); pid and start
    time together name it uniquely while the machine is up."""
    pid = os.getppid()
    while pid > 1:
        stat = _proc_stat(pid)
        if stat is None:
            return None
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:3]
        except OSError:
            return None
        if any(os.path.basename(a) == b"dvc" for a in args[:2]) or args[1:3] == [b"-m", b"dvc"]:
            return f"{pid}-{stat[1]}"
        pid = stat[0]
    return None


def invocation() -> tuple[str, str] | None:
    """(id, name) of the pipeline invocation this stage runs in, or None for a stage run by hand.

    The stages of one invocation are processes of one DVC command: the nearest `dvc` ancestor (pid + start time)
    identifies it, on this host and project, together with DVC_EXP_NAME (set by `dvc exp run`, not by plain
    `dvc repro`), which also names the parent (`repro-<commit>` without it). CNN_PRUNING_INVOCATION, when set,
    replaces both: every DVC command run with the same value groups under one parent of that name.
    """
    chosen = os.environ.get(INVOCATION_ENV)
    process = None if chosen else _dvc_process()
    if not chosen and process is None:
        return None
    exp_name = os.environ.get("DVC_EXP_NAME", "")
    key = "\0".join((socket.gethostname(), str(project_root()), chosen or f"{process}\0{exp_name}"))
    commit = (os.environ.get("DVC_EXP_BASELINE_REV") or _git("rev-parse", "HEAD") or "unknown")[:7]
    return hashlib.sha1(key.encode()).hexdigest()[:16], chosen or exp_name or f"repro-{commit}"


def parent_run(client: MlflowClient, exp_id: str, tags: dict) -> str | None:
    """The run id of this invocation's parent run, created by its first stage (DVC runs one invocation's stages one
    after another, so two never race to create it); None outside an invocation."""
    found = invocation()
    if found is None:
        return None
    inv_id, name = found
    query = f"tags.`pipeline.invocation` = '{inv_id}'"
    existing = _retry(client.search_runs, [exp_id], query, max_results=1, order_by=["attributes.start_time ASC"])
    if existing:
        return existing[0].info.run_id
    keep = ("mlflow.source.git.commit", "mlflow.source.git.branch", "git.dirty", "dvc.exp_name", "project",
            "mlflow.user", "python", *(f"version.{p}" for p in VERSIONED_PACKAGES))
    run = _retry(client.create_run, exp_id, run_name=name, tags={
        **{k: str(v) for k, v in tags.items() if k in keep}, "pipeline.invocation": inv_id, "stage": "pipeline",
        "mlflow.runName": name, "mlflow.note.content": f"Every stage run of one pipeline invocation ({name})."})
    if Path(PARAMS_FILE).exists():  # the whole params.yaml: parents compare over any setting
        _log_params(client, run.info.run_id, flatten(load_params(PARAMS_FILE)))
    return run.info.run_id


def _log_params(client: MlflowClient, run_id: str, flat: dict) -> None:
    items = list(flat.items())
    for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        _retry(client.log_batch, run_id, params=[Param(k, str(v)[:6000]) for k, v in items[i:i + 100]])


# ---------------------------------------------------------------------------------------------- the stage run

class StageRun:
    """A live MLflow run; every write goes through the lock-retry policy."""

    def __init__(self, client: MlflowClient, run_id: str, uri: str, experiment_id: str):
        self.client, self.run_id, self.uri, self.experiment_id = client, run_id, uri, experiment_id
        # Done only once the run is marked FINISHED: e.g. removing a resume checkpoint, which a stage that could
        # not close its run (the server gone) must keep for its rerun.
        self.when_finished: list[Callable[[], None]] = []

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)]
        _retry(self.client.log_batch, self.run_id, metrics=batch)

    def log_results(self, results: dict, skip: tuple = ()) -> None:
        """A stage's final numbers: results as metrics, RUN_CONSTANTS as tags, the rest (names, lists) left out."""
        results = {k: v for k, v in results.items() if k not in skip and v is not None}
        self.set_tags({k: v for k, v in results.items() if k in RUN_CONSTANTS})
        self.log_metrics({k: v for k, v in results.items() if k not in RUN_CONSTANTS})

    def set_tags(self, tags: dict) -> None:
        if tags:
            _retry(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | os.PathLike, name: str | None = None) -> None:
        """Log the file at `path` as artifact `name` (default: its own name); the same name in every run of a stage
        lets Compare line the runs' artifacts up."""
        path = Path(path)
        if name is None or name == path.name:
            _retry(self.client.log_artifact, self.run_id, str(path))
            return
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(path, Path(tmp) / name)
            _retry(self.client.log_artifact, self.run_id, str(Path(tmp) / name))

    def log_artifacts(self, *paths: str | os.PathLike, named: dict | None = None) -> None:
        """Each of `paths` under its own name, each of `named` ({artifact name: path}) under its name."""
        for path in paths:
            self.log_artifact(path)
        for name, path in (named or {}).items():
            self.log_artifact(path, name)

    def log_inputs(self, data, splits) -> None:
        """Each of `splits` of `data` (a Dataset) as an MLflow dataset input of this run (dataset_inputs)."""
        _retry(self.client.log_inputs, self.run_id, datasets=dataset_inputs(data, splits))

    def log_table(self, rows: list[dict], name: str) -> None:
        """Rows as an MLflow table (artifact tables/`name`.json), which the UI shows as a table; apart from the
        stage's files, because log_table appends to an artifact of the same name."""
        import pandas as pd
        _retry(self.client.log_table, self.run_id, pd.DataFrame(rows), f"tables/{name}.json")

    def log_model(self, path: str | os.PathLike) -> None:
        """Tag the model file DVC tracks (its md5 is DVC's hash of it): checkpoints stay in DVC, not in MLflow."""
        self.set_tags({"model_md5": files.md5_of(path), "model_path": str(path)})

    def log_onnx_model(self, path: str | os.PathLike, example, name: str, metrics: dict | None = None) -> str:
        """Log the ONNX file at `path` as an MLflow model of this run (ONNX flavour, signature inferred from
        `example` (a numpy batch) and the model's outputs on it, the example itself); MLflow 3 stores it as a logged
        model linked to the run. `metrics` are also logged against the model. Returns its models:/ URI."""
        import mlflow
        import mlflow.onnx
        import onnx
        import onnxruntime as ort
        from mlflow.models import infer_signature

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs = session.run(None, {session.get_inputs()[0].name: example})[0]
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_experiment(experiment_id=self.experiment_id)  # the logged model's experiment is the active one
        info = _retry(mlflow.onnx.log_model, onnx.load(str(path)), name=name, run_id=self.run_id,
                      signature=infer_signature(example, outputs), input_example=example,
                      onnx_execution_providers=["CPUExecutionProvider"], save_as_external_data=False,
                      # Stated, not inferred: inferring starts a Python subprocess that imports the flavour to see
                      # what it loads (seconds per stage); serving an ONNX model needs exactly onnx + onnxruntime.
                      pip_requirements=mlflow.onnx.get_default_pip_requirements())
        if metrics:
            now = int(time.time() * 1000)
            _retry(self.client.log_batch, self.run_id, metrics=[
                Metric(k, float(v), now, 0, model_id=info.model_id) for k, v in metrics.items()])
        return info.model_uri


def project_id(root: Path) -> str:
    """Which checkout a run came from (host and project root): a shared server serves many."""
    return f"{socket.gethostname()}:{root}"


def close_killed_runs(client: MlflowClient, exp_id: str, run_name: str, project: str, exp_name: str) -> None:
    """Mark KILLED what a killed process left RUNNING: the same stage of the same checkout and DVC experiment, and
    the parent run of its invocation (a killed stage ends its DVC command too).

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
                parent = tags.get("mlflow.parentRunId")
                if parent and _retry(client.get_run, parent).info.status == "RUNNING":
                    _retry(client.set_terminated, parent, "KILLED")
    except MlflowException as e:
        print(f"tracking: could not close runs a killed stage left RUNNING ({e})", file=sys.stderr)


@contextlib.contextmanager
def _system_metrics(run_id: str, uri: str, enabled: bool):
    """MLflow's own system metrics (CPU, memory, disk, network; GPU through nvidia-ml-py where present), sampled
    every SYSTEM_METRICS_INTERVAL_S seconds while the stage runs."""
    if not enabled:
        yield
        return
    import logging
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # not a start/stop line per stage
    monitor = SystemMetricsMonitor(run_id, sampling_interval=SYSTEM_METRICS_INTERVAL_S, tracking_uri=uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()


@contextlib.contextmanager
def stage_run(stage: str, run_name: str, params: dict, tags: dict | None = None, data=None,
              splits: tuple = (), coords: dict | None = None, system_metrics: bool = False) -> Iterator[StageRun]:
    """Open one MLflow run for a stage, nested under its invocation's parent run; FINISHED on success, FAILED (and
    re-raised) on any error. `data`: the dataset the stage loaded (source and md5 become tags, and each split in
    `splits` a dataset input); `coords`: coordinates(), logged as params beside `params`."""
    root = project_root()
    uri = tracking_uri(root)
    check_reachable(uri)
    client = MlflowClient(tracking_uri=uri)
    exp_id = get_or_create_experiment(client, experiment_name(), root)
    all_tags = {**provenance_tags(), **(data_tags(data) if data is not None else {}), "stage": stage,
                "mlflow.runName": run_name, "mlflow.source.name": Path(sys.argv[0]).name or f"{stage}.py",
                "project": project_id(root), **(tags or {})}
    close_killed_runs(client, exp_id, run_name, all_tags["project"], all_tags["dvc.exp_name"])
    parent = parent_run(client, exp_id, all_tags)
    if parent:
        all_tags["mlflow.parentRunId"] = parent
        _retry(client.update_run, parent, status="RUNNING")
    run = _retry(client.create_run, exp_id, run_name=run_name, tags={k: str(v) for k, v in all_tags.items()})
    run_id = run.info.run_id
    _log_params(client, run_id, {**flatten(params), **(coords or {})})
    run = StageRun(client, run_id, uri, exp_id)
    if data is not None and splits:
        inputs = dataset_inputs(data, splits)  # digests hash every image: computed once for both runs
        # The parent's row in the runs table shows the data of its stages (MLflow keeps each input once).
        for target in (run_id, parent) if parent else (run_id,):
            _retry(client.log_inputs, target, datasets=inputs)
    status = "FAILED"
    try:
        with _system_metrics(run_id, uri, system_metrics):
            yield run
        status = "FINISHED"
    finally:
        try:
            _retry(client.set_terminated, run_id, status)
            if parent:
                _retry(client.set_terminated, parent, status)
        except TrackingError:
            if status == "FINISHED":  # the stage fails: its outputs are written, its run is not closed
                raise
            # The stage's own error follows; the rerun closes this run as KILLED (close_killed_runs).
            print(f"tracking: run {run_id} stays RUNNING on {uri} until the stage runs again", file=sys.stderr)
    for action in run.when_finished:
        action()


def ui_url(base: str = "http://127.0.0.1:5000") -> str:
    """The experiment's page in MLflow's Model-training view (it opens in the GenAI view otherwise)."""
    client = MlflowClient(tracking_uri=tracking_uri())
    exp = client.get_experiment_by_name(experiment_name())
    where = f"#/experiments/{exp.experiment_id}/runs" if exp else "#/experiments"
    return f"{base.rstrip('/')}/{where}?workflowType=machine_learning"


if __name__ == "__main__":  # python -m cnn_pruning.tracking url [BASE]: the page `make mlflow-ui` opens
    if sys.argv[1:2] != ["url"]:
        sys.exit("usage: python -m cnn_pruning.tracking url [http://HOST:PORT]")
    print(ui_url(*sys.argv[2:3]))
