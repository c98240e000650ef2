"""What produced a run and where it sits among the others: provenance tags, coordinates, names, dataset inputs."""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag

VERSIONED_PACKAGES = ("torch", "torchvision", "dvc", "mlflow", "numpy", "scikit-learn", "onnx", "onnxruntime")
SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "test"}


def git(*args: str) -> str | None:
    """A git command's output in the working directory, or None (no git, not a repo)."""
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
    tags = {"mlflow.source.git.commit": baseline or git("rev-parse", "HEAD") or "unknown",
            "dvc.exp_name": exp_name, "python": sys.version.split()[0], "mlflow.user": getpass.getuser()}
    branch = git("symbolic-ref", "--short", "-q", "HEAD")  # nothing for a detached HEAD
    if branch:
        tags["mlflow.source.git.branch"] = branch
    if not exp_name:
        tags["git.dirty"] = str(bool(git("status", "--porcelain", "--untracked-files=no"))).lower()
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


def project_id(root: Path) -> str:
    """Which checkout a run came from (host and project root): a shared server serves many."""
    return f"{socket.gethostname()}:{root}"
