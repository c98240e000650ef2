"""Shared fixtures: tiny CIFAR-10-shaped sources the tests build, and one tiny pipeline run the read-only tests share."""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before anything imports mlflow, also outside `make test`

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml
from PIL import Image

from cnn_pruning.datasets.catalog import CIFAR10_CLASSES, CIFAR100_CLASSES

REPO = Path(__file__).resolve().parents[1]
SHARED_JPG = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
SHARED_JPG_MD5 = "34ec1c07be108afe1a3754f7105b69d6"


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of small-model tests (pytestmark = pytest.mark.usefixtures("one_thread")): on a
    busy 2-core machine a second thread made them ~5x slower (threads spin waiting for each other), and one thread
    fixes the fixture models' numbers across machines."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def class_images(label: int, n: int, seed: int) -> np.ndarray:
    """n 32×32×3 uint8 images whose colour depends on the class, so a model can learn something quickly."""
    rng = np.random.default_rng(seed * 100 + label)
    base = np.array([(label * 25) % 256, (label * 70) % 256, (255 - label * 25) % 256], dtype=np.float64)
    noise = rng.normal(0, 40, size=(n, 32, 32, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


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
        imgs = np.stack([class_images(l, 1, seed=b * 1000 + i)[0] for i, l in enumerate(labels)])
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


# ---------------------------------------------------------------------------------------------- pipeline copies

def tool_env(**extra: str) -> dict:
    """Environment for running dvc/python stages from the tests: this venv first on PATH, nothing phones home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               MLFLOW_DISABLE_TELEMETRY="true", DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t", PYTHONWARNINGS="ignore")
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True, timeout: int = 900):
    proc = subprocess.run(cmd, cwd=cwd, env=env or tool_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


TINY_OVERRIDES = {
    "data": {"md5": None, "val_size": 50, "seed": 0},
    "train": {"epochs": 1, "batch_size": 64},
    "finetune": {"epochs": 1, "batch_size": 64},
    "evaluate": {"batch_size": 32, "rounds": 2, "warmup": 1},
    "sweep": {"ratios": [0.5, 0.9], "batch_size": 32, "rounds": 2, "eval_images": 50},
    "study": {"methods": ["magnitude", "random"], "ratios": [0.5], "seeds": [0, 1]},  # 4 points, 2 controls
}


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


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory) -> Path:
    """An image-folder .tar.gz: 10 classes x (30 train + 10 test) PNGs."""
    root = tmp_path_factory.mktemp("tiny-source")
    folder = make_image_folder(root / "cifar-tiny", train_per_class=30, test_per_class=10)
    return tar_gz(folder, root / "cifar-tiny.tar.gz")


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory, tiny_source) -> Path:
    """One `dvc repro` of the whole pipeline on the tiny source, shared by the tests that only read its outputs."""
    repo = copy_repo(tmp_path_factory.mktemp("pipeline"),
                     {**TINY_OVERRIDES, "data": {**TINY_OVERRIDES["data"], "source": str(tiny_source)}})
    # System metrics sampled every second (MLflow's default is 10 s), so the tiny stages record some.
    proc = run(["dvc", "repro"], repo, env=tool_env(MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1"))
    (repo / "repro.log").write_text(proc.stdout + proc.stderr)
    return repo


def copy_finished(tiny_pipeline: Path, dest: Path) -> Path:
    """A copy of the finished tiny pipeline (workspace, DVC cache, MLflow store) with its results committed to git,
    as a user's repo looks after `dvc repro` + `git commit`: the baseline for experiments."""
    shutil.copytree(tiny_pipeline, dest, symlinks=True)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "results of dvc repro"], dest)
    return dest


def output_hashes(repo: Path) -> dict:
    """md5 of every file under the pipeline's output folders: to prove that a failed run changed nothing."""
    import hashlib
    hashes = {}
    for folder in ("data", "models", "metrics", "plots", "reports"):
        for p in sorted((repo / folder).rglob("*")):
            if p.is_file():
                hashes[str(p.relative_to(repo))] = hashlib.md5(p.read_bytes()).hexdigest()
    return hashes


def ran_stages(output: str) -> list[str]:
    """Stage names from `dvc repro` / `dvc exp run` output ("Running stage 'prune@magnitude':")."""
    import re
    return re.findall(r"Running stage '([^']+)'", output)
