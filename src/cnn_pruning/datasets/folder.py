"""Image folders: train/<class>/*.{png,jpg} and test/<class>/*, 32×32 8-bit RGB only.

Any number of classes (at least two); the class names are the folder names, sorted, so a class's label is its
position in that order (for CIFAR-10 the official order). train and test must name the same classes; with
`expected` (a dataset known by name) they must be exactly those.
"""

from __future__ import annotations

import numpy as np
import torch

from .archive import Tree
from .dataset import DataError, Split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def decode(raw: bytes, where: str) -> np.ndarray:
    """One PNG/JPEG file's bytes → uint8 32×32×3, or DataError naming the file."""
    from torchvision.io import decode_image  # cached by Python after the first call

    if not where.lower().endswith(IMAGE_SUFFIXES):
        raise DataError(f"{where}: not an image file; class folders may hold only {'/'.join(IMAGE_SUFFIXES)} images")
    try:
        # torchvision's decoder: several times faster than PIL (no per-image Python object churn).
        chw = decode_image(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
    except RuntimeError as e:
        raise DataError(f"{where}: cannot be read as an image ({str(e).splitlines()[-1]})") from e
    if chw.dtype != torch.uint8:  # e.g. a 16-bit PNG: CIFAR-10 is 8 bits per channel
        raise DataError(f"{where}: expected an 8-bit RGB image, got {chw.dtype} samples")
    if tuple(chw.shape) != (3, 32, 32):
        raise DataError(f"{where}: expected a 32x32 RGB image, got {chw.shape[2]}x{chw.shape[1]} "
                        f"with {chw.shape[0]} channel(s)")
    return chw.permute(1, 2, 0).numpy()


def class_folders(tree: Tree, folder: str, expected: tuple[str, ...] | None, title: str) -> tuple[str, ...]:
    """The class names train/ and test/ both hold, sorted; DataError if they differ, or differ from `expected`."""
    found = {}
    for split in ("train", "test"):
        d = (folder + "/" if folder else "") + split
        found[split] = {c for c in tree.children(d) if f"{d}/{c}" in tree.dirs}
        if expected is not None and found[split] != set(expected):
            missing, extra = sorted(set(expected) - found[split]), sorted(found[split] - set(expected))
            raise DataError(f"{tree.name}: {d}: class folders must be the {len(expected)} {title} classes "
                            f"{list(expected)}; missing {missing}, unexpected {extra}")
    if found["train"] != found["test"]:
        raise DataError(f"{tree.name}: train and test must hold the same class folders; only in train: "
                        f"{sorted(found['train'] - found['test'])}, only in test: "
                        f"{sorted(found['test'] - found['train'])}")
    if len(found["train"]) < 2:
        raise DataError(f"{tree.name}: train/ holds {len(found['train'])} class folder(s) "
                        f"{sorted(found['train'])}; a classifier needs at least 2")
    return tuple(expected or sorted(found["train"]))


def read_image_folder(tree: Tree, folder: str, expected: tuple[str, ...] | None = None,
                      title: str = "") -> tuple[Split, Split, tuple[str, ...]]:
    classes, splits = class_folders(tree, folder, expected, title), []
    for split in ("train", "test"):
        d = (folder + "/" if folder else "") + split
        files, labels = [], []
        for label, name in enumerate(classes):
            members = [f"{d}/{name}/{m}" for m in tree.children(f"{d}/{name}")]
            if not members:
                raise DataError(f"{tree.name}: {d}/{name}: class folder has no images")
            nested = [m for m in members if m in tree.dirs]
            if nested:
                raise DataError(f"{tree.name}: {nested[0]}: a folder inside a class folder; class folders may hold "
                                f"only {'/'.join(IMAGE_SUFFIXES)} images")
            files += members
            labels += [label] * len(members)
        images = np.stack([decode(tree.read(rel), f"{tree.name}: {rel}") for rel in files])
        splits.append(Split(images, np.asarray(labels, dtype=np.int64)))
    return splits[0], splits[1], classes

