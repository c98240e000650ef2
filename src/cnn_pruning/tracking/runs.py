"""One stage run = one MLflow run: its params, tags, dataset inputs, system metrics, artifacts and models."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from ..core import files
from ..core.params import flatten, project_root
from .invocation import close_killed_runs, parent_run
from .provenance import data_tags, dataset_inputs, project_id, provenance_tags
from .store import (
    TrackingError,
    check_reachable,
    experiment_name,
    get_or_create_experiment,
    log_params,
    retry,
    tracking_uri,
)

# Values a stage reports beside its results that describe the machine or the run, not the model: tags, so they do
# not crowd the run page's metric charts with one-point bars.
RUN_CONSTANTS = ("threads", "load_avg_1m", "dvc_queue_workers", "batch_size", "timed_rounds", "test_images",
                 "train_images", "val_images", "eval_images", "epochs", "device", "device_name", "runtime")
# Set it to group the stage runs of several DVC commands (a script's) under one parent run.
SYSTEM_METRICS_INTERVAL_S = 10  # MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL overrides


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
        retry(self.client.log_batch, self.run_id, metrics=batch)

    def log_results(self, results: dict, skip: tuple = ()) -> None:
        """A stage's final numbers: results as metrics, RUN_CONSTANTS as tags, the rest (names, lists) left out."""
        results = {k: v for k, v in results.items() if k not in skip and v is not None}
        self.set_tags({k: v for k, v in results.items() if k in RUN_CONSTANTS})
        self.log_metrics({k: v for k, v in results.items() if k not in RUN_CONSTANTS})

    def set_tags(self, tags: dict) -> None:
        if tags:
            retry(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: str | os.PathLike, name: str | None = None) -> None:
        """Log the file at `path` as artifact `name` (default: its own name); the same name in every run of a stage
        lets Compare line the runs' artifacts up."""
        path = Path(path)
        if name is None or name == path.name:
            retry(self.client.log_artifact, self.run_id, str(path))
            return
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(path, Path(tmp) / name)
            retry(self.client.log_artifact, self.run_id, str(Path(tmp) / name))

    def log_artifacts(self, *paths: str | os.PathLike, named: dict | None = None) -> None:
        """Each of `paths` under its own name, each of `named` ({artifact name: path}) under its name."""
        for path in paths:
            self.log_artifact(path)
        for name, path in (named or {}).items():
            self.log_artifact(path, name)

    def log_inputs(self, data, splits) -> None:
        """Each of `splits` of `data` (a Dataset) as an MLflow dataset input of this run (dataset_inputs)."""
        retry(self.client.log_inputs, self.run_id, datasets=dataset_inputs(data, splits))

    def log_table(self, rows: list[dict], name: str) -> None:
        """Rows as an MLflow table (artifact tables/`name`.json), which the UI shows as a table; apart from the
        stage's files, because log_table appends to an artifact of the same name."""
        import pandas as pd
        retry(self.client.log_table, self.run_id, pd.DataFrame(rows), f"tables/{name}.json")

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
        info = retry(mlflow.onnx.log_model, onnx.load(str(path)), name=name, run_id=self.run_id,
                      signature=infer_signature(example, outputs), input_example=example,
                      onnx_execution_providers=["CPUExecutionProvider"], save_as_external_data=False,
                      # Stated, not inferred: inferring starts a Python subprocess that imports the flavour to see
                      # what it loads (seconds per stage); serving an ONNX model needs exactly onnx + onnxruntime.
                      pip_requirements=mlflow.onnx.get_default_pip_requirements())
        if metrics:
            now = int(time.time() * 1000)
            retry(self.client.log_batch, self.run_id, metrics=[
                Metric(k, float(v), now, 0, model_id=info.model_id) for k, v in metrics.items()])
        return info.model_uri


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
        retry(client.update_run, parent, status="RUNNING")
    run = retry(client.create_run, exp_id, run_name=run_name, tags={k: str(v) for k, v in all_tags.items()})
    run_id = run.info.run_id
    log_params(client, run_id, {**flatten(params), **(coords or {})})
    run = StageRun(client, run_id, uri, exp_id)
    if data is not None and splits:
        inputs = dataset_inputs(data, splits)  # digests hash every image: computed once for both runs
        # The parent's row in the runs table shows the data of its stages (MLflow keeps each input once).
        for target in (run_id, parent) if parent else (run_id,):
            retry(client.log_inputs, target, datasets=inputs)
    status = "FAILED"
    try:
        with _system_metrics(run_id, uri, system_metrics):
            yield run
        status = "FINISHED"
    finally:
        try:
            retry(client.set_terminated, run_id, status)
            if parent:
                retry(client.set_terminated, parent, status)
        except TrackingError:
            if status == "FINISHED":  # the stage fails: its outputs are written, its run is not closed
                raise
            # The stage's own error follows; the rerun closes this run as KILLED (close_killed_runs).
            print(f"tracking: run {run_id} stays RUNNING on {uri} until the stage runs again", file=sys.stderr)
    for action in run.when_finished:
        action()
