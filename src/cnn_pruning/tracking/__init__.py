"""MLflow tracking for the stages: one stage run = one MLflow run. The only package that imports mlflow.

    with tracking.stage_run("finetune", "finetune-magnitude@0.9", params=section,
                            coords=tracking.coordinates(method="magnitude", ratio=0.9, base_optimizer="sgd"),
                            data=ds, splits=("train", "val", "test"), system_metrics=True) as run:
        run.log_metrics({"val_acc": 0.9}, step=epoch)           # per-epoch series
        run.log_results({"test_acc": 0.91, "threads": 2})        # results -> metrics, run constants -> tags
        run.log_artifact("metrics/finetune/magnitude.json", "metrics.json")   # the same name in every run

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

Modules: `store` (where runs go, reachability, retries), `provenance` (tags, coordinates, names, dataset inputs),
`invocation` (the parent run, runs a killed stage left open), `runs` (the stage run); `python -m
cnn_pruning.tracking url` prints the experiment's page.
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before mlflow is imported: nothing phones home
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a stage's log is not the place for them

from .invocation import INVOCATION_ENV, invocation
from .provenance import coordinates, data_tags, run_name
from .runs import RUN_CONSTANTS, StageRun, stage_run
from .store import TrackingError, check_reachable, experiment_name, server_lost, tracking_uri, ui_url

__all__ = ["INVOCATION_ENV", "RUN_CONSTANTS", "StageRun", "TrackingError", "check_reachable", "coordinates",
           "data_tags", "experiment_name", "invocation", "run_name", "server_lost", "stage_run", "tracking_uri",
           "ui_url"]
