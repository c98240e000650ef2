"""Image folders: train/<class>/*.{png,jpg} and test/<class>/*, the ten CIFAR-10 classes, 32×32 8-bit RGB only."""

from __future__ import annotations

import numpy as np
import torch

from .archive import Tree
from .dataset import CIFAR10_CLASSES, DataError, Split

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


def read_image_folder(tree: Tree, folder: str) -> tuple[Split, Split]:
    splits = []
    for split in ("train", "test"):
        d = (folder + "/" if folder else "") + split
        present = {c for c in tree.children(d) if f"{d}/{c}" in tree.dirs}
        missing, extra = sorted(set(CIFAR10_CLASSES) - present), sorted(present - set(CIFAR10_CLASSES))
        if missing or extra:
            raise DataError(f"{tree.name}: {d}: class folders must be the ten CIFAR-10 classes "
                            f"{list(CIFAR10_CLASSES)}; missing {missing}, unexpected {extra}")
        files, labels = [], []
        for label, name in enumerate(CIFAR10_CLASSES):
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
    return splits[0], splits[1]

