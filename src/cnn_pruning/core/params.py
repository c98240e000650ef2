"""params.yaml sections and the project root, as the stages see them.

A stage runs with the working directory set to its copy of the repo (the workspace, or a temporary copy under
.dvc/tmp/exps/ for `dvc exp run --temp` and queued runs), so params.yaml and outputs are read and written relative
to the working directory. Paths *given in* params (e.g. data.source: ../shared/...) and the MLflow store are
resolved against the project root DVC names in DVC_ROOT, which is the original repo also for temp copies, so every
kind of run finds the same source file and logs into the same store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from .schema import of_type, setting

PARAMS_FILE = "params.yaml"


@dataclass
class TrackingConfig:
    """params.yaml's tracking section: where runs are logged (no stage declares it, so a rename reruns nothing).
    Defined here rather than in cnn_pruning.tracking, so that validating params.yaml does not import MLflow."""
    experiment: str | None = setting(None, of_type(str, text="an MLflow experiment name", optional=True),
                                     "MLflow experiment every stage logs into; null = resnet<model.depth>-<data.name>, "
                                     "e.g. resnet20-cifar10 (MLFLOW_EXPERIMENT_NAME overrides)")


def experiment_for(params: dict) -> str:
    """tracking.experiment, or by default one experiment per model and dataset: resnet<depth>-<data name>."""
    named = (params.get("tracking") or {}).get("experiment")
    if named:
        return named
    return f"resnet{(params.get('model') or {}).get('depth', 20)}-{(params.get('data') or {}).get('name', 'cifar10')}"


def load_params(path: str | os.PathLike = PARAMS_FILE) -> dict:
    with open(path) as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    return params


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"train": {"epochs": 15}} -> {"train.epochs": 15}; an empty mapping is a value ({"l2_unit": {}} stays), so
    an overlay can set one and a logged run shows the key."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def section(name: str, path: str | os.PathLike = PARAMS_FILE) -> dict:
    """One stage's own section of params.yaml."""
    params = load_params(path)
    if not isinstance(params.get(name), dict):
        raise ValueError(f"{path}: missing section {name!r}")
    return params[name]


def project_root() -> Path:
    """The original project root: DVC_ROOT when run by DVC, else the working directory."""
    return Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()


def resolve(path: str | os.PathLike, root: Path | None = None) -> Path:
    """A path from params, relative to the project root unless absolute."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (root or project_root()) / path
