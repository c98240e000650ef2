"""The download stage's work: fetch, check, read and split a dataset from `data.source` into the canonical file.

    ds = prepare("cifar10", None, None, "data/cifar10.npz", root=Path("."), val_size=5000)   # the official tarball
    ds = prepare("flowers32", "flowers32.tar.gz", None, "data/flowers32.npz", root=Path("."), val_size=500)

`name` is a dataset known by name (cifar10, cifar100: cnn_pruning.datasets.catalog) or one of the user's own.
`source` may be (the format is detected from the content, never from the file name):
  * null: the official python-format tarball of a known `name`, downloaded and checked against its md5;
  * an http(s) URL of an official tarball, downloaded with torchvision's utilities (md5 checked);
  * a local path or file:// URL of an official tarball, of an image-folder archive (.tar/.tar.gz/.zip) or folder
    laid out train/<class>/*.{png,jpg} + test/<class>/*.{png,jpg}, or of an extracted cifar-10-batches-py/ or
    cifar-100-python/ folder.
A known name fixes the classes (an image folder must hold exactly them) and the normalisation statistics (the
published ones); for a dataset of one's own the classes are its folders (at least two, the same in train and test)
and the statistics are computed from the training split. Anything wrong (md5, truncated archive, layout, a missing
class, a file that is not a 32×32 RGB image) raises DataError naming the file and what was expected; nothing is
written to `out` unless everything was read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.schema import MD5, Rule, integer, of_type, setting
from .archive import find_layout, open_tree
from .catalog import KNOWN
from .dataset import DataError, Dataset, Split, save
from .folder import read_image_folder
from .pickles import read_cifar10, read_cifar100
from .source import calculate_md5, check_free_space, check_md5, fetch, locate
from .splits import split_and_subset

# The output holds every image uncompressed (3,072 bytes each); ask for that much free space before reading.
OUTPUT_BYTES_PER_IMAGE = 3 * 32 * 32 + 8
NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")  # a data.name is also the canonical file's name: data/<name>.npz
PYTHON_LAYOUTS = {"cifar10-python": ("cifar10", read_cifar10), "cifar100-python": ("cifar100", read_cifar100)}


@dataclass
class DataConfig:
    """params.yaml's data section: which dataset, where it comes from and how it is split."""
    name: str = setting("cifar10", Rule(lambda v: isinstance(v, str) and NAME.fullmatch(v) is not None,
                                        "cifar10, cifar100, or a name of your own: lowercase letters, digits, _ -"),
                        "cifar10/cifar100 (official tarball unless data.source says otherwise), or your own "
                        "dataset's name (an image folder in data.source); names the file data/<name>.npz")
    source: str | None = setting(None, of_type(str, text="a URL, file:// URL or path", optional=True),
                                 "null = the official tarball of data.name; else a URL, or a local archive/folder "
                                 "(relative to the project root)")
    md5: str | None = setting(None, MD5, "md5 of data.source; null skips the check (needed for a folder); "
                              "with source null the official md5 is checked")
    val_size: int = setting(5000, integer(0), "validation images carved out of train, stratified (never test)")
    train_size: int | None = setting(None, integer(1, optional=True), "null = all the rest; a number = subset")
    test_size: int | None = setting(None, integer(1, optional=True), "null = the full test split; a number = subset")
    seed: int = setting(0, integer(0), "which images go to validation and to the subsets")


def official_source(name: str, source: str | None, md5: str | None) -> tuple[str, str | None]:
    """(source, md5) to read: the official tarball and md5 of a known `name` when `source` is null."""
    if source is not None:
        return source, md5
    if name not in KNOWN:
        raise DataError(f"data.name {name!r} has no official download (known: {', '.join(KNOWN)}); set "
                        f"data.source to your image folder or archive (train/<class>/, test/<class>/)")
    if md5 is not None and md5 != KNOWN[name].md5:
        raise DataError(f"data.md5 {md5!r} is not the md5 of the official {KNOWN[name].title} tarball "
                        f"({KNOWN[name].md5}); set data.md5: null, or data.source to your own copy")
    return KNOWN[name].url, KNOWN[name].md5


def channel_statistics(images: np.ndarray, chunk: int = 4096) -> dict:
    """Per-channel mean and standard deviation (population) of uint8 N×32×32×3 images, as fractions of 255."""
    n = images.shape[0] * images.shape[1] * images.shape[2]
    total, squares = np.zeros(3), np.zeros(3)
    for i in range(0, len(images), chunk):  # float64 in chunks: a whole 50,000-image split would take 1.2 GB
        x = images[i:i + chunk].reshape(-1, 3).astype(np.float64) / 255
        total += x.sum(0)
        squares += (x * x).sum(0)
    mean = total / n
    return {"mean": tuple(mean.tolist()), "std": tuple(np.sqrt(np.maximum(squares / n - mean**2, 0)).tolist())}


def read(name: str, where: Path, out: Path) -> tuple[Split, Split, tuple[str, ...]]:
    """(train, test, class names) from a folder or archive, checked against what `name` requires; first, room
    for the dataset file `out` (a known dataset's full size, else one image per file found)."""
    tree = open_tree(where)
    layout, folder = find_layout(tree)
    images = KNOWN[name].images if name in KNOWN else len(tree.readers)
    check_free_space(out.parent, images * OUTPUT_BYTES_PER_IMAGE, f"writing {out.name}")
    if layout in PYTHON_LAYOUTS:
        holds, reader = PYTHON_LAYOUTS[layout]
        if holds != name:
            raise DataError(f"{where}: holds the official {KNOWN[holds].title} python files, but data.name is "
                            f"{name!r}; set data.name: {holds}")
        train, test, classes = reader(tree, folder)
        if classes != KNOWN[name].classes:
            raise DataError(f"{where}: its class names {list(classes)[:5]}... are not the {KNOWN[name].title} "
                            f"classes {list(KNOWN[name].classes)[:5]}...")
        return train, test, classes
    known = KNOWN.get(name)
    return read_image_folder(tree, folder, known.classes if known else None, known.title if known else name)


def prepare(name: str, source: str | None, md5: str | None, out: str | os.PathLike, *, root: Path, val_size: int,
            train_size: int | None = None, test_size: int | None = None, seed: int = 0,
            cache_dir: Path | None = None) -> Dataset:
    """Fetch, check, read and split dataset `name` from `source`; write it to `out` (atomically) and return it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    source, md5 = official_source(name, source, md5)
    where = locate(source, root)
    downloaded = isinstance(where, str)
    if downloaded:
        where = fetch(where, md5, cache_dir or out.parent / "downloads")
        got_md5 = calculate_md5(str(where))
    else:
        got_md5 = check_md5(where, md5)
    try:
        train, test, classes = read(name, where, out)
    except DataError as e:
        if downloaded:  # without an md5 a cut-off download looks complete; never keep one that does not read
            where.unlink(missing_ok=True)
            raise DataError(f"{e} (downloaded from {source}; the download was removed, run again to retry)") from e
        raise
    train, val, test = split_and_subset(train, test, val_size=val_size, train_size=train_size,
                                        test_size=test_size, seed=seed)
    stats = KNOWN[name].normalization if name in KNOWN else channel_statistics(train.images)
    ds = Dataset(train, val, test, classes, str(source), got_md5, name, dict(stats))
    save(ds, out)
    return ds
