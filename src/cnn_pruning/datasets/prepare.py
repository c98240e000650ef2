"""The download stage's work: fetch, check, read and split CIFAR-10 from `data.source` into the canonical file.

    ds = prepare(source, md5, "data/cifar10.npz", root=Path("."), val_size=5000)

`source` may be (the format is detected from the content, never from the file name):
  * an http(s) URL of the official python-format tarball, downloaded with torchvision's utilities (md5 checked);
  * a local path or file:// URL of the official tarball, of an image-folder archive (.tar/.tar.gz/.zip) or folder
    laid out train/<class>/*.{png,jpg} + test/<class>/*.{png,jpg}, or of an extracted cifar-10-batches-py/ folder.
Anything wrong (md5, truncated archive, layout, a missing class, a file that is not a 32×32 RGB image) raises
DataError naming the file and what was expected; nothing is written to `out` unless everything was read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..schema import MD5, integer, of_type, setting
from .archive import find_layout, open_tree
from .dataset import CIFAR10, CIFAR10_CLASSES, DataError, save
from .folder import read_image_folder
from .pickles import read_python_batches
from .source import OFFICIAL_MD5, OFFICIAL_URL, calculate_md5, check_free_space, check_md5, fetch, locate
from .splits import split_and_subset

# The output holds every image uncompressed (3,072 bytes each); ask for that much free space before reading.
OUTPUT_BYTES_PER_IMAGE, CIFAR10_IMAGES = 3 * 32 * 32 + 8, 60_000


@dataclass
class DataConfig:
    """params.yaml's data section: where CIFAR-10 comes from and how it is split."""
    source: str = setting(OFFICIAL_URL, of_type(str, text="a URL, file:// URL or path"),
                          "the official tarball's URL, or a local archive/folder (relative to the project root)")
    md5: str | None = setting(OFFICIAL_MD5, MD5, "md5 of the source file; null skips the check (needed for a folder)")
    val_size: int = setting(5000, integer(0), "validation images carved out of train, stratified (never test)")
    train_size: int | None = setting(None, integer(1, optional=True), "null = all the rest; a number = subset")
    test_size: int | None = setting(None, integer(1, optional=True), "null = the full test split; a number = subset")
    seed: int = setting(0, integer(0), "which images go to validation and to the subsets")


def prepare(source: str, md5: str | None, out: str | os.PathLike, *, root: Path, val_size: int,
            train_size: int | None = None, test_size: int | None = None, seed: int = 0,
            cache_dir: Path | None = None) -> CIFAR10:
    """Fetch, check, read and split CIFAR-10 from `source`; write it to `out` (atomically) and return it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    where = locate(source, root)
    downloaded = isinstance(where, str)
    if downloaded:
        where = fetch(where, md5, cache_dir or out.parent / "downloads")
        got_md5 = calculate_md5(str(where))
    else:
        got_md5 = check_md5(where, md5)
    check_free_space(out.parent, CIFAR10_IMAGES * OUTPUT_BYTES_PER_IMAGE, f"writing {out.name}")
    try:
        tree = open_tree(where)
        kind, folder = find_layout(tree)
        train, test = read_python_batches(tree, folder) if kind == "python" else read_image_folder(tree, folder)
    except DataError as e:
        if downloaded:  # without an md5 a cut-off download looks complete; never keep one that does not read
            where.unlink(missing_ok=True)
            raise DataError(f"{e} (downloaded from {source}; the download was removed, run again to retry)") from e
        raise
    del tree
    train, val, test = split_and_subset(train, test, val_size=val_size, train_size=train_size,
                                        test_size=test_size, seed=seed)
    ds = CIFAR10(train, val, test, CIFAR10_CLASSES, str(source), got_md5)
    save(ds, out)
    return ds

