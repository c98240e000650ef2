"""The canonical dataset file every stage after `download` loads: uint8 images and labels per split, one .npz.

    ds = load("data/cifar10.npz")      # ds.train.images: uint8 N×32×32×3 (HWC, RGB), ds.train.labels: int64 N
    ds.name, ds.classes, ds.normalization   # "cifar10", the class names, {"mean": (r, g, b), "std": (r, g, b)}
    save(ds, path)                     # atomically
    summary(ds)                        # counts per split and class, for metrics/data.json

The file carries what every later stage needs to know about the data: its name, class names (their number is the
model's output width) and the normalisation statistics the model is trained with. A file written before those
were stored is CIFAR-10 with its published statistics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import UserError
from ..core.files import atomic_path
from .catalog import CIFAR10_NORMALIZATION, title


class DataError(UserError, ValueError):
    """Bad data source or content; the message names the file and what was expected."""


@dataclass
class Split:
    images: np.ndarray  # uint8, N×32×32×3 (HWC, RGB)
    labels: np.ndarray  # int64, N


@dataclass
class Dataset:
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]
    source: str
    source_md5: str | None
    name: str = "cifar10"                              # data.name: a catalog name or one of the user's own
    normalization: dict = field(default_factory=lambda: dict(CIFAR10_NORMALIZATION))

    @property
    def title(self) -> str:
        return title(self.name)


def subset(split: Split, idx: np.ndarray) -> Split:
    return Split(split.images[idx], split.labels[idx])


def save(ds: Dataset, path: str | os.PathLike) -> None:
    arrays = {f"{name}_{part}": getattr(getattr(ds, name), attr)
              for name in ("train", "val", "test") for part, attr in (("x", "images"), ("y", "labels"))}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays, classes=np.array(ds.classes), source=np.array(ds.source),
                 source_md5=np.array(ds.source_md5 or ""), name=np.array(ds.name),
                 mean=np.array(ds.normalization["mean"], dtype=np.float64),
                 std=np.array(ds.normalization["std"], dtype=np.float64))


def load(path: str | os.PathLike) -> Dataset:
    with np.load(path, allow_pickle=False) as z:
        splits = [Split(z[f"{name}_x"], z[f"{name}_y"]) for name in ("train", "val", "test")]
        ds = Dataset(*splits, tuple(str(c) for c in z["classes"]), str(z["source"]), str(z["source_md5"]) or None)
        if "name" in z:  # absent from files written before datasets other than CIFAR-10: the defaults hold
            ds.name = str(z["name"])
            ds.normalization = {"mean": tuple(z["mean"].tolist()), "std": tuple(z["std"].tolist())}
        return ds


def summary(ds: Dataset) -> dict:
    """Counts per split and class, for metrics/data.json."""
    return {
        "name": ds.name, "source": ds.source, "source_md5": ds.source_md5, "classes": list(ds.classes),
        "normalization": {k: list(v) for k, v in ds.normalization.items()},
        **{f"{name}_images": int(len(getattr(ds, name).labels)) for name in ("train", "val", "test")},
        **{f"{name}_per_class": np.bincount(getattr(ds, name).labels, minlength=len(ds.classes)).tolist()
           for name in ("train", "val", "test")},
    }
