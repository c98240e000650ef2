"""The canonical dataset file every stage after `download` loads: uint8 images and labels per split, one .npz.

    ds = load("data/cifar10.npz")      # ds.train.images: uint8 N×32×32×3 (HWC, RGB), ds.train.labels: int64 N
    save(ds, path)                     # atomically
    summary(ds)                        # counts per split and class, for metrics/data.json
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..files import atomic_path

# Sorted, so a class index is its position here, as in the official labels.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DataError(UserError, ValueError):
    """Bad data source or content; the message names the file and what was expected."""


@dataclass
class Split:
    images: np.ndarray  # uint8, N×32×32×3 (HWC, RGB)
    labels: np.ndarray  # int64, N


@dataclass
class CIFAR10:
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]
    source: str
    source_md5: str | None


def subset(split: Split, idx: np.ndarray) -> Split:
    return Split(split.images[idx], split.labels[idx])


def save(ds: CIFAR10, path: str | os.PathLike) -> None:
    arrays = {f"{name}_{part}": getattr(getattr(ds, name), field)
              for name in ("train", "val", "test") for part, field in (("x", "images"), ("y", "labels"))}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays, classes=np.array(ds.classes), source=np.array(ds.source),
                 source_md5=np.array(ds.source_md5 or ""))


def load(path: str | os.PathLike) -> CIFAR10:
    with np.load(path, allow_pickle=False) as z:
        splits = [Split(z[f"{name}_x"], z[f"{name}_y"]) for name in ("train", "val", "test")]
        return CIFAR10(*splits, tuple(str(c) for c in z["classes"]), str(z["source"]), str(z["source_md5"]) or None)


def summary(ds: CIFAR10) -> dict:
    """Counts per split and class, for metrics/data.json."""
    return {
        "source": ds.source, "source_md5": ds.source_md5, "classes": list(ds.classes),
        **{f"{name}_images": int(len(getattr(ds, name).labels)) for name in ("train", "val", "test")},
        **{f"{name}_per_class": np.bincount(getattr(ds, name).labels, minlength=len(ds.classes)).tolist()
           for name in ("train", "val", "test")},
    }
