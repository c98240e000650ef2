"""What the tests share besides fixtures: tiny CIFAR-shaped sources and datasets, running the real tools (dvc, the
MLflow server script) in copies of the repo, and reading a server back over its REST API."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pickle
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from cnn_pruning.datasets.catalog import CIFAR10_CLASSES, CIFAR100_CLASSES
from cnn_pruning.datasets.dataset import Dataset, Split

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before anything imports mlflow, also outside `make test`

REPO = Path(__file__).resolve().parents[1]
SHARED_JPG = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
SHARED_JPG_MD5 = "34ec1c07be108afe1a3754f7105b69d6"


def class_images(label: int, n: int, seed: int) -> np.ndarray:
    """n 32×32×3 uint8 images whose colour depends on the class, so a model can learn something quickly."""
    rng = np.random.default_rng(seed * 100 + label)
    base = np.array([(label * 25) % 256, (label * 70) % 256, (255 - label * 25) % 256], dtype=np.float64)
    noise = rng.normal(0, 40, size=(n, 32, 32, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def synthetic_dataset(per_class: int, seed: int = 0, held_out: int = 2) -> Dataset:
    """A Dataset of class_images: `per_class` training images per class (seed `seed`), `held_out` validation and
    test images per class (seeds seed + 1 and seed + 2)."""
    def split(n, s):
        images = np.concatenate([class_images(c, n, s) for c in range(10)])
        return Split(images, np.repeat(np.arange(10), n).astype(np.int64))
    return Dataset(split(per_class, seed), split(held_out, seed + 1), split(held_out, seed + 2), CIFAR10_CLASSES,
                   "synthetic", None)


def make_image_folder(root: Path, train_per_class: int = 6, test_per_class: int = 3, suffix: str = ".png",
                      classes: tuple[str, ...] = CIFAR10_CLASSES) -> Path:
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for label, name in enumerate(classes):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(class_images(label, n, seed=0 if split == "train" else 1)):
                Image.fromarray(img).save(d / f"{i:04d}{suffix}")
    return root


def make_python_batches(root: Path, per_batch: int = 20) -> Path:
    """The official cifar-10-batches-py layout: pickled dicts with bytes keys, uint8 (N, 3072) rows."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        labels = [i % 10 for i in range(per_batch)]
        imgs = np.stack([class_images(label, 1, seed=b * 1000 + i)[0] for i, label in enumerate(labels)])
        rows = imgs.transpose(0, 3, 1, 2).reshape(per_batch, -1)
        with open(root / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": rows,
                         b"filenames": [f"{i}.png".encode() for i in range(per_batch)]}, f, protocol=2)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}, f, protocol=2)
    return root


def make_cifar100_python(root: Path, train_per_class: int = 2, test_per_class: int = 1) -> Path:
    """The official cifar-100-python layout, small: pickled dicts `train` and `test` (bytes keys; data, fine_labels,
    coarse_labels, filenames) and `meta` (fine_label_names, coarse_label_names), as the official tarball holds."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        labels = [c for c in range(100) for _ in range(n)]
        imgs = np.stack([class_images(c % 10, 1, seed=(c * 10 + i) * 2 + (split == "test"))[0]
                         for i, c in enumerate(labels)])
        with open(folder / split, "wb") as f:
            pickle.dump({b"filenames": [f"{i}.png".encode() for i in range(len(labels))],
                         b"batch_label": f"{split} batch".encode(), b"fine_labels": labels,
                         b"coarse_labels": [c // 5 for c in labels],
                         b"data": imgs.transpose(0, 3, 1, 2).reshape(len(labels), -1)}, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [c.encode() for c in CIFAR100_CLASSES],
                     b"coarse_label_names": [f"super{i}".encode() for i in range(20)]}, f, protocol=2)
    return folder


def tar_gz(folder: Path, out: Path, arcname: str | None = None) -> Path:
    with tarfile.open(out, "w:gz") as tf:
        tf.add(folder, arcname=arcname if arcname is not None else folder.name)
    return out


def zip_dir(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder.parent))
    return out


def free_port() -> int:
    """A port nothing listens on right now on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------- shared work

def build_once(tmp_path_factory, name: str, build) -> Path:
    """The folder `name`, built by `build(folder)` once per test run: with pytest-xdist, whichever worker asks first
    builds it while the others wait on a lock, then all reuse it (a failed build is tried again by the next)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder, done = root / name, root / f"{name}.built"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def tree_hashes(root: Path) -> dict:
    """md5 of every file under `root`, the DVC cache, .dvc/tmp and the MLflow store included: what a read-only user
    of a shared folder must leave as it found it."""
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


# ---------------------------------------------------------------------------------------------- pipeline copies

def tool_env(**extra: str) -> dict:
    """Environment for running dvc/python stages from the tests: this venv first on PATH, nothing phones home."""
    # Nothing of the caller's terminal either: COLUMNS and LINES would size the tables `dvc exp show` prints.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "DVC_")) and k not in ("COLUMNS", "LINES")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               MLFLOW_DISABLE_TELEMETRY="true", DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t", PYTHONWARNINGS="ignore",
               # The tests' stages are tiny and run beside other tests (pytest-xdist): one thread each, so that
               # threads never spin waiting for a core another process holds.
               OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True, timeout: int = 900):
    proc = subprocess.run(cmd, cwd=cwd, env=env or tool_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


TINY_OVERRIDES = {
    "data": {"md5": None, "val_size": 50, "seed": 0},
    "train": {"epochs": 1, "batch_size": 64},
    "finetune": {"epochs": 1, "batch_size": 64},
    "evaluate": {"batch_size": 32, "rounds": 2, "warmup": 1},
    "sweep": {"ratios": [0.5, 0.9], "batch_size": 32, "rounds": 2, "eval_images": 50},
    "study": {"methods": ["magnitude", "random"], "ratios": [0.5], "seeds": [0, 1]},  # 4 points, 2 controls
}


# The one trained base model that the crash, resume and server-fault tests start from or compare with
# (conftest.trained_sgd): sgd only, enough epochs for a kill to land mid-training, batches of 16 (16 steps an epoch).
TRAINED_TRAIN = {**TINY_OVERRIDES["train"], "optimizers": ["sgd"], "epochs": 12, "batch_size": 16}


def tiny_overrides(source: Path, **sections) -> dict:
    """TINY_OVERRIDES with the data read from `source`, and `sections` ({section: values}) replacing theirs."""
    return {**TINY_OVERRIDES, "data": {**TINY_OVERRIDES["data"], "source": str(source)}, **sections}


def copy_of(folder: Path, dest: Path) -> Path:
    """A copy of a shared fixture's folder to change freely (git history, DVC cache and MLflow store with it). The
    store names its artifact folder by absolute path (mlartifacts/ beside it): the copy's store is pointed at the
    copy's own, or its new runs would write their artifacts into the original."""
    shutil.copytree(folder, dest, symlinks=True)
    store = dest / "mlflow.db"
    if store.exists():
        old, new = (folder / "mlartifacts").as_uri(), (dest / "mlartifacts").as_uri()
        with contextlib.closing(sqlite3.connect(store)) as db, db:
            for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                                  ("logged_models", "artifact_location")):
                db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
    return dest


def copy_repo(dest: Path, overrides: dict | None = None) -> Path:
    """A fresh git+DVC repo holding the project's committed and new files (no venv, data or stores)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if overrides:
        set_params(dest, overrides)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "copy"], dest)
    return dest


def set_params(repo: Path, overrides: dict) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in overrides.items():
        params.setdefault(section, {}).update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def copy_finished(tiny_pipeline: Path, dest: Path) -> Path:
    """A copy of the finished tiny pipeline (workspace, DVC cache, MLflow store) with its results committed to git,
    as a user's repo looks after `dvc repro` + `git commit`: the baseline for experiments."""
    copy_of(tiny_pipeline, dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "results of dvc repro"], dest)
    return dest


def output_hashes(repo: Path) -> dict:
    """md5 of every file under the pipeline's output folders: to prove that a failed run changed nothing."""
    hashes = {}
    for folder in ("data", "models", "metrics", "plots", "reports"):
        for p in sorted((repo / folder).rglob("*")):
            if p.is_file():
                hashes[str(p.relative_to(repo))] = hashlib.md5(p.read_bytes()).hexdigest()
    return hashes


def ran_stages(output: str) -> list[str]:
    """Stage names from `dvc repro` / `dvc exp run` output ("Running stage 'prune@magnitude':")."""
    return re.findall(r"Running stage '([^']+)'", output)


# ---------------------------------------------------------------------------------------------- an MLflow server

SERVER_SCRIPT = REPO / "tools" / "mlflow_server.sh"


def api(uri: str, endpoint: str, body: dict | None = None, **query) -> dict:
    """Call the MLflow REST API: POST with a JSON body when `body` is given, else GET with `query`."""
    url = f"{uri}/api/2.0/mlflow/{endpoint}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def kv(entries: list[dict] | None) -> dict:
    """The REST API's [{"key": k, "value": v}, ...] as a dict."""
    return {e["key"]: e["value"] for e in entries or []}


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(comm)": state ppid pgrp ...
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def server_script(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SERVER_SCRIPT), *args], cwd=REPO, env=tool_env(), capture_output=True,
                          text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------- report inputs

EVALUATED = dict(nonzero_params=100, distinct_filters=10, macs=2_000_000, size_bytes=2048, speedup_b1=1.0,
                 images_per_s=500.0, batch_size=256, runtime="pytorch", device="cpu", threads=2)
SWEEP_COLUMNS = ("method", "ratio", "test_acc", "params", "nonzero_params", "macs", "size_bytes", "size_ratio",
                 "speedup", "images_per_s", "base_images_per_s", "timed_batch_size", "runtime")


def write_results(root, stale_method: str | None = None):
    """The files the earlier stages write, for one base model (sgd) and two methods (none, l2_unit): the report's
    input (a cnn_pruning.report.Folders of them is returned)."""
    from cnn_pruning import report
    from cnn_pruning.core import files
    folders = report.Folders(*(str(root / d) for d in ("train", "prune", "finetune", "evaluate", "sweep")))
    files.write_json(root / "train" / "sgd.json", {"test_acc": 0.9})
    files.write_json(root / "evaluate" / "base-sgd.json", {"method": "base", "ratio": 0.0, "base": "sgd",
                                                            "test_acc": 0.9, "params": 1000, "size_ratio": 1.0,
                                                            "speedup": 1.0, **EVALUATED})
    for method, ratio, after_prune, tuned, speedup in (("none", None, 0.9, 0.91, 1.0),
                                                       ("l2_unit", 0.5, 0.3, 0.85, 1.6)):
        files.write_json(root / "prune" / f"{method}.json", {"base_test_acc": 0.9, "test_acc": after_prune})
        files.write_json(root / "finetune" / f"{method}.json", {"best_val_acc": tuned - 0.01})
        files.write_json(root / "evaluate" / f"{method}.json", {"method": method, "ratio": ratio, "base": "sgd",
                                                                 "test_acc": tuned, "params": 500, "size_ratio": 2.0,
                                                                 "speedup": speedup, **EVALUATED})
    points = [{"method": "l2_unit", "ratio": r, "test_acc": 0.5, "params": 700, "nonzero_params": 650, "macs": 3e6,
               "size_bytes": 4096, "size_ratio": 1.5, "speedup": 1.2, "images_per_s": 600, "base_images_per_s": 500,
               "timed_batch_size": 256, "runtime": "pytorch"} for r in (0.5, 0.9)]
    files.write_csv(root / "sweep" / "l2_unit.csv", points, SWEEP_COLUMNS)
    if stale_method:  # what DVC leaves behind when a method is dropped from the matrix
        files.write_json(root / "evaluate" / f"{stale_method}.json", {"test_acc": 0.0})
    return folders
