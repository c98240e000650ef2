"""CIFAR-10 from any supported source into one canonical file that later stages load in well under a second.

    from cnn_pruning import data
    ds = data.prepare(source, md5, "data/cifar10.npz", root=Path("."), val_size=5000)
    ds = data.load("data/cifar10.npz")      # ds.train.images: uint8 N×32×32×3, ds.train.labels: int64 N

`source` may be (the format is detected from the content, never from the file name):
  * an http(s) URL of the official python-format tarball, downloaded with torchvision's utilities (md5 checked);
  * a local path or file:// URL of the official tarball, of an image-folder archive (.tar/.tar.gz/.zip) or folder
    laid out train/<class>/*.{png,jpg} + test/<class>/*.{png,jpg}, or of an extracted cifar-10-batches-py/ folder.
Archives are read member by member (never extracted to disk); the official pickles go through a restricted
unpickler. Anything wrong (md5, truncated archive, layout, a missing class, a file that is not a 32×32 RGB image)
raises DataError naming the file and what was expected; nothing is written to `out` unless everything was read.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .files import atomic_path

# torchvision (download, md5, image decoding) is imported inside the functions that use it: importing it costs
# a second or more, and every later stage only calls load().

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
# Sorted, so a class index is its position here, as in the official labels.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PYTHON_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# The output holds every image uncompressed (3,072 bytes each); ask for that much free space before reading.
OUTPUT_BYTES_PER_IMAGE, CIFAR10_IMAGES = 3 * 32 * 32 + 8, 60_000
OFFICIAL_TARBALL_BYTES = 170_498_071  # the official archive's size; a download needs that much room first


class DataError(ValueError):
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


# ---------------------------------------------------------------------------------------------- locating the source

def locate(source: str, root: Path) -> str | Path:
    """An http(s) URL stays a URL; a file:// URL or path becomes an existing absolute path (relative to `root`)."""
    parsed = urllib.parse.urlparse(str(source))
    if parsed.scheme in ("http", "https"):
        return str(source)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
    elif parsed.scheme == "":
        path = Path(source).expanduser()
    else:
        raise DataError(f"data.source {source!r}: unsupported scheme {parsed.scheme!r}; "
                        "allowed: an http(s) URL, a file:// URL or a local path")
    if not path.is_absolute():
        path = root / path
    if not path.exists():
        raise DataError(f"data.source {source!r}: {path} does not exist")
    return path


def check_free_space(folder: Path, need: int, what: str) -> None:
    """Fail before the work, naming the folder and how much is needed, rather than midway with a full disk."""
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DataError(f"not enough free disk space in {Path(folder).resolve()} for {what}: "
                        f"need {need / 2**20:.0f} MiB, have {free / 2**20:.0f} MiB")


def calculate_md5(path: str | os.PathLike) -> str:
    from torchvision.datasets.utils import calculate_md5 as torchvision_md5

    return torchvision_md5(str(path))


def fetch(url: str, md5: str | None, cache_dir: Path) -> Path:
    """Download `url` into `cache_dir` (kept between runs) with torchvision; a half-finished download is removed."""
    from torchvision.datasets.utils import download_url

    cache_dir.mkdir(parents=True, exist_ok=True)
    check_free_space(cache_dir, OFFICIAL_TARBALL_BYTES, f"downloading {url}")
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    cached = cache_dir / name
    if cached.is_file() and (md5 is None or calculate_md5(str(cached)) == md5):
        return cached
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as tmp:
        try:
            download_url(url, tmp, filename=name, md5=md5)
        except RuntimeError:  # torchvision's "File not found or corrupted." after a failed md5 check
            got = calculate_md5(os.path.join(tmp, name)) if os.path.exists(os.path.join(tmp, name)) else "no file"
            raise DataError(f"{url}: md5 mismatch: got {got}, expected {md5} (data.md5)") from None
        except (urllib.error.URLError, OSError) as e:
            raise DataError(f"could not download {url}: {e}") from e
        os.replace(os.path.join(tmp, name), cached)
    return cached


def check_md5(path: Path, md5: str | None) -> str | None:
    """Check a local file's md5 against `md5` (None skips the check); returns the file's md5 (None for a folder)."""
    if path.is_dir():
        if md5 is not None:
            raise DataError(f"data.source {path} is a folder, which has no md5: set data.md5: null to use it")
        return None
    got = calculate_md5(str(path))
    if md5 is not None and got != md5:
        raise DataError(f"{path}: md5 mismatch: got {got}, expected {md5} (data.md5; null skips the check)")
    return got


# ---------------------------------------------------------------------------------------------- reading a source tree

class Tree:
    """The files of a folder or archive by relative posix path, read on demand, plus the folders they sit in.

    Archives are read member by member instead of being extracted: writing the image folder's 60,000 small files
    took 30 s of system time on this project's 2-core CI machine, streaming them from the .tar.gz 1.8 s.
    """

    def __init__(self, name: str):
        self.name, self.readers, self.dirs = name, {}, set()

    def add_file(self, rel: str, read) -> None:
        parts = rel.strip("/").split("/")
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):  # OS clutter such as .DS_Store
            return
        self.readers["/".join(parts)] = read
        self.dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))

    def add_dir(self, rel: str) -> None:
        parts = rel.strip("/").split("/")
        if parts != [""] and not any(p.startswith(".") or p == "__MACOSX" for p in parts):
            self.dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))

    def read(self, rel: str) -> bytes:
        try:
            return self.readers[rel]()
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError) as e:
            raise DataError(f"{self.name}: cannot read {rel}: archive is truncated or corrupt ({e})") from e

    def children(self, folder: str) -> list[str]:
        """Names of the files and folders directly inside `folder`."""
        prefix = folder + "/" if folder else ""
        names = {p[len(prefix):].split("/")[0] for p in [*self.readers, *self.dirs] if p.startswith(prefix)}
        return sorted(n for n in names if n)


def archive_kind(path: Path) -> str | None:
    """'tar' or 'zip' from the file's first bytes (a compressed file counts as tar: tarfile opens gz/bz2/xz)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or head[257:262] == b"ustar":
        return "tar"
    return None


def open_tree(path: Path) -> Tree:
    """A Tree over a folder, a tar (plain or gz/bz2/xz) or a zip archive; every member's bytes are read now."""
    tree = Tree(str(path))
    if path.is_dir():
        for folder, dirs, files in os.walk(path):
            rel = Path(folder).relative_to(path).as_posix()
            rel = "" if rel == "." else rel + "/"
            for d in dirs:
                tree.add_dir(rel + d)
            for f in files:
                tree.add_file(rel + f, lambda p=Path(folder) / f: p.read_bytes())
        return tree
    kind = archive_kind(path)
    if kind is None:
        raise DataError(f"{path}: not a tar/zip archive (judged by its content); expected the official CIFAR-10 "
                        "python tarball, an image-folder archive (.tar/.tar.gz/.zip) or a folder")
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        tree.add_dir(info.filename)
                    else:
                        data = zf.read(info)
                        tree.add_file(info.filename, lambda d=data: d)
        else:
            with tarfile.open(path, "r:*") as tf:
                for member in tf:
                    if member.isdir():
                        tree.add_dir(member.name)
                    elif member.isfile():
                        data = tf.extractfile(member).read()
                        tree.add_file(member.name, lambda d=data: d)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError) as e:
        raise DataError(f"{path}: archive is truncated or corrupt ({type(e).__name__}: {e})") from e
    return tree


def find_layout(tree: Tree) -> tuple[str, str]:
    """('python', folder) for cifar-10-batches-py content, ('folder', folder) for train/ + test/ image folders."""
    level = [""]
    for _ in range(3):  # the content itself, or wrapped in one or two folders, as archives often do
        for d in level:
            prefix = d + "/" if d else ""
            if prefix + "data_batch_1" in tree.readers and prefix + "test_batch" in tree.readers:
                return "python", d
            if prefix + "train" in tree.dirs and prefix + "test" in tree.dirs:
                return "folder", d
        level = [(d + "/" if d else "") + c for d in level for c in tree.children(d)
                 if (d + "/" if d else "") + c in tree.dirs]
    raise DataError(f"{tree.name}: no CIFAR-10 layout found; expected cifar-10-batches-py files "
                    f"({', '.join(PYTHON_BATCHES)}, batches.meta) or image folders train/<class>/ and test/<class>/; "
                    f"found {tree.children('')[:10]}")


# ---------------------------------------------------------------------------------------------- official python format

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


# ---------------------------------------------------------------------------------------------- image folders

def decode(raw: bytes, where: str) -> np.ndarray:
    """One PNG/JPEG file's bytes → uint8 32×32×3, or DataError naming the file."""
    from torchvision.io import decode_image  # cached by Python after the first call

    if not where.lower().endswith(IMAGE_SUFFIXES):
        raise DataError(f"{where}: not an image file; class folders may hold only {'/'.join(IMAGE_SUFFIXES)} images")
    try:
        # torchvision's decoder: 24 µs an image here, 5x faster than PIL (no per-image Python object churn).
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


# ---------------------------------------------------------------------------------------------- subsets and splits

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


def subset(split: Split, idx: np.ndarray) -> Split:
    return Split(split.images[idx], split.labels[idx])


def split_and_subset(train: Split, test: Split, *, val_size: int, train_size: int | None,
                     test_size: int | None, seed: int) -> tuple[Split, Split, Split]:
    """Carve a stratified validation set out of train, then optionally take stratified subsets for quick runs."""
    if val_size >= len(train.labels):
        raise DataError(f"data.val_size={val_size} leaves no training images (the source has {len(train.labels)})")
    val_idx = stratified_indices(train.labels, val_size, seed)
    rest = np.setdiff1d(np.arange(len(train.labels)), val_idx)
    if train_size is not None:
        rest = rest[stratified_indices(train.labels[rest], train_size, seed + 1)]
    test_idx = np.arange(len(test.labels)) if test_size is None else stratified_indices(test.labels, test_size, seed + 2)
    return subset(train, rest), subset(train, val_idx), subset(test, test_idx)


# ---------------------------------------------------------------------------------------------- the stage's work

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
