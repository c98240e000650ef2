"""The official python-format files, read through a restricted unpickler.

    cifar-10-batches-py/   data_batch_1..5, test_batch (keys data, labels), batches.meta (label_names)
    cifar-100-python/      train, test (keys data, fine_labels, coarse_labels), meta (fine_label_names, ...)

Both readers return (train, test, class names); CIFAR-100 is read at its 100 fine labels.
"""

from __future__ import annotations

import io
import pickle

import numpy as np

from .archive import CIFAR100_FILES, PYTHON_BATCHES, Tree
from .catalog import CIFAR10_CLASSES
from .dataset import DataError, Split


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


def _read_pickle(tree: Tree, rel: str, fmt: tuple[str, str]) -> dict:
    where = f"{tree.name}: {rel}"
    if rel not in tree.readers:
        raise DataError(f"{where}: missing; {fmt[1]}")
    try:
        obj = _BatchUnpickler(io.BytesIO(tree.read(rel)), encoding="bytes").load()
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{where}: not a readable {fmt[0]} batch ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


# (what the files are called in messages, what the folder must hold)
CIFAR10_FORMAT = ("CIFAR-10", f"the cifar-10-batches-py folder needs {', '.join(PYTHON_BATCHES)}, batches.meta")
CIFAR100_FORMAT = ("CIFAR-100", f"the cifar-100-python folder needs {', '.join(CIFAR100_FILES)}")


def _read_batch(tree: Tree, rel: str, fmt: tuple[str, str], label_key: str, classes: int) -> Split:
    batch, where = _read_pickle(tree, rel, fmt), f"{tree.name}: {rel}"
    try:
        data, labels = np.asarray(batch["data"]), np.asarray(batch[label_key], dtype=np.int64)
    except KeyError as e:
        raise DataError(f"{where}: missing key {e.args[0]!r}; expected 'data' and {label_key!r}") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{where}: expected uint8 data of shape (N, 3072) and N labels, "
                        f"got {data.dtype} {data.shape} and {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(f"{where}: labels must be in 0..{classes - 1}, got {labels.min()}..{labels.max()}")
    return Split(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels)


def _names(meta: dict, key: str) -> tuple[str, ...]:
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(key, []))


def read_cifar10(tree: Tree, folder: str) -> tuple[Split, Split, tuple[str, ...]]:
    prefix = folder + "/" if folder else ""
    names = _names(_read_pickle(tree, prefix + "batches.meta", CIFAR10_FORMAT), "label_names")
    if names != CIFAR10_CLASSES:
        raise DataError(f"{tree.name}: {prefix}batches.meta: label_names {names} are not the CIFAR-10 classes "
                        f"{CIFAR10_CLASSES}")
    parts = [_read_batch(tree, prefix + name, CIFAR10_FORMAT, "labels", len(names)) for name in PYTHON_BATCHES[:5]]
    train = Split(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
    return train, _read_batch(tree, prefix + "test_batch", CIFAR10_FORMAT, "labels", len(names)), names


def read_cifar100(tree: Tree, folder: str) -> tuple[Split, Split, tuple[str, ...]]:
    """The fine labels; the class names are the meta file's fine_label_names, in label order."""
    prefix = folder + "/" if folder else ""
    names = _names(_read_pickle(tree, prefix + "meta", CIFAR100_FORMAT), "fine_label_names")
    if len(names) < 2 or len(set(names)) != len(names):
        raise DataError(f"{tree.name}: {prefix}meta: expected distinct fine_label_names (100 for CIFAR-100), "
                        f"got {len(names)}: {names[:5]}")
    train, test = (_read_batch(tree, prefix + split, CIFAR100_FORMAT, "fine_labels", len(names))
                   for split in ("train", "test"))
    return train, test, names

