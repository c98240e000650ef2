"""A data source as a tree of files: a folder, or a tar (plain, gz, bz2, xz) or zip archive read member by member,
and which layout sits where inside it. The format is judged by content, never by the file name.
"""

from __future__ import annotations

import lzma
import os
import tarfile
import zipfile
import zlib
from pathlib import Path

from .dataset import DataError

PYTHON_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CIFAR100_FILES = ("train", "test", "meta")
LAYOUTS = ("cifar10-python", "cifar100-python", "folder")  # what find_layout() recognises


class Tree:
    """The files of a folder or archive by relative posix path, read on demand, plus the folders they sit in.

    Archives are read member by member instead of being extracted: writing 60,000 small files costs far more
    system time than streaming them (measured when the reader was written).
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
        raise DataError(f"{path}: not a tar/zip archive (judged by its content); expected an official CIFAR-10/100 "
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
    """(layout, folder): 'cifar10-python' for cifar-10-batches-py content, 'cifar100-python' for cifar-100-python
    content (files train, test, meta), 'folder' for train/ + test/ image folders."""
    level = [""]
    for _ in range(3):  # the content itself, or wrapped in one or two folders, as archives often do
        for d in level:
            prefix = d + "/" if d else ""
            if prefix + "data_batch_1" in tree.readers and prefix + "test_batch" in tree.readers:
                return "cifar10-python", d
            if all(prefix + f in tree.readers for f in CIFAR100_FILES):
                return "cifar100-python", d
            if prefix + "train" in tree.dirs and prefix + "test" in tree.dirs:
                return "folder", d
        level = [(d + "/" if d else "") + c for d in level for c in tree.children(d)
                 if (d + "/" if d else "") + c in tree.dirs]
    raise DataError(f"{tree.name}: no dataset layout found; expected cifar-10-batches-py files "
                    f"({', '.join(PYTHON_BATCHES)}, batches.meta), cifar-100-python files "
                    f"({', '.join(CIFAR100_FILES)}) "
                    f"or image folders train/<class>/ and test/<class>/; "
                    f"found {tree.children('')[:10]}")

