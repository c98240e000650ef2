"""Atomic output files: every artefact is written to a temporary file beside its target and renamed into place.

A crash (or SIGKILL) mid-write therefore never leaves a truncated model, metrics or plots file that DVC would
happily cache; the target either keeps its old content or gets the complete new one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto `target`, on error delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def read_result(path: str | os.PathLike) -> dict:
    """A JSON file another stage wrote; a missing one says which stage has not run, not a bare FileNotFoundError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the stage that writes it has not run")
    return json.loads(path.read_text())


def write_json(path: str | os.PathLike, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | os.PathLike, rows: Sequence[dict], columns: Sequence[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def md5_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """md5 of a file's bytes: the same hash DVC records for a file output."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(*parts) -> str:
    """md5 of everything that determines a result (JSON-encoded): a resume state saved for other inputs is never
    reused."""
    return hashlib.md5(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def remove(path: str | os.PathLike) -> None:
    Path(path).unlink(missing_ok=True)


def replace_block(text: str, begin: str, end: str, content: str) -> str | None:
    """`text` with what stands between the markers `begin` and `end` replaced by `content` (the markers kept);
    None when either marker is missing, so the caller says what the block is for."""
    if begin not in text or end not in text:
        return None
    head, rest = text.split(begin, 1)
    return head + begin + content + end + rest.split(end, 1)[1]


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
