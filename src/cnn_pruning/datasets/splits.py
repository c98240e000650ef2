"""The validation split carved out of train, and stratified subsets for quick runs: deterministic for a seed."""

from __future__ import annotations

import numpy as np

from .dataset import DataError, Split, subset


def stratified_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` indices with class proportions as in `labels` (largest remainder), chosen by `seed`; sorted."""
    if not 0 <= size <= len(labels):
        raise DataError(f"asked for {size} images, but only {len(labels)} are available")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(labels)
    quota = np.floor(exact).astype(int)
    # Hand out what flooring left over to the classes with the largest fractional parts (ties: lower class first).
    for i in np.argsort(-(exact - quota), kind="stable")[: size - quota.sum()]:
        quota[i] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked))


def split_and_subset(train: Split, test: Split, *, val_size: int, train_size: int | None,
                     test_size: int | None, seed: int) -> tuple[Split, Split, Split]:
    """Carve a stratified validation set out of train, then optionally take stratified subsets for quick runs."""
    if val_size >= len(train.labels):
        raise DataError(f"data.val_size={val_size} leaves no training images (the source has {len(train.labels)})")
    val_idx = stratified_indices(train.labels, val_size, seed)
    rest = np.setdiff1d(np.arange(len(train.labels)), val_idx)
    if train_size is not None:
        rest = rest[stratified_indices(train.labels[rest], train_size, seed + 1)]
    test_idx = (np.arange(len(test.labels)) if test_size is None
                else stratified_indices(test.labels, test_size, seed + 2))
    return subset(train, rest), subset(train, val_idx), subset(test, test_idx)

