"""The official python-format batches (cifar-10-batches-py), read through a restricted unpickler."""

from __future__ import annotations

import io
import pickle

import numpy as np

from .archive import PYTHON_BATCHES, Tree
from .dataset import CIFAR10_CLASSES, DataError, Split


class _BatchUnpickler(pickle.Unpickler):
    """The official batches are pickles; admit only what they contain, so a crafted file cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how protocol-2 pickles spell bytes
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed (only dicts, lists, bytes/str, numpy arrays)")


def _read_pickle(tree: Tree, rel: str) -> dict:
    where = f"{tree.name}: {rel}"
    if rel not in tree.readers:
        raise DataError(f"{where}: missing; the cifar-10-batches-py folder needs {', '.join(PYTHON_BATCHES)}, "
                        "batches.meta")
    try:
        obj = _BatchUnpickler(io.BytesIO(tree.read(rel)), encoding="bytes").load()
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{where}: not a readable CIFAR-10 batch ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_batch(tree: Tree, rel: str) -> Split:
    batch, where = _read_pickle(tree, rel), f"{tree.name}: {rel}"
    try:
        data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"], dtype=np.int64)
    except KeyError as e:
        raise DataError(f"{where}: missing key {e.args[0]!r}; expected 'data' and 'labels'") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{where}: expected uint8 data of shape (N, 3072) and N labels, "
                        f"got {data.dtype} {data.shape} and {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise DataError(f"{where}: labels must be in 0..9, got {labels.min()}..{labels.max()}")
    return Split(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels)


def read_python_batches(tree: Tree, folder: str) -> tuple[Split, Split]:
    prefix = folder + "/" if folder else ""
    meta = _read_pickle(tree, prefix + "batches.meta")
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", []))
    if names != CIFAR10_CLASSES:
        raise DataError(f"{tree.name}: {prefix}batches.meta: label_names {names} are not the CIFAR-10 classes "
                        f"{CIFAR10_CLASSES}")
    parts = [_read_batch(tree, prefix + name) for name in PYTHON_BATCHES[:5]]
    train = Split(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
    return train, _read_batch(tree, prefix + "test_batch")

