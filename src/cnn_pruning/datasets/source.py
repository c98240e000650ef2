"""Where the data comes from: a local path or file:// URL (checked to exist), or an http(s) URL downloaded with
torchvision's utilities into a cache; md5 checks; and free disk space asked for before any work.

torchvision is imported inside the functions that use it: importing it costs a second or more.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .dataset import DataError

OFFICIAL_TARBALL_BYTES = 170_498_071  # the larger official archive (CIFAR-10's); a download needs that much room first


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
            raise DataError(f"could not download {url}: {e}\n{offline_hint(cached, md5)}") from e
        os.replace(os.path.join(tmp, name), cached)
    return cached


def offline_hint(cached: Path, md5: str | None) -> str:
    """How to go on without the network: the file `fetch` would have written, or data.source at a local copy."""
    check = f" with md5 {md5}" if md5 else ""
    return (f"Offline? Put the file (named {cached.name}{check}) at {cached.resolve()} and run again: it is used "
            f"without downloading. Or point data.source at a local copy (that tarball, an image-folder archive or "
            f"folder), e.g. make run SET=\"data.source=/path/to/{cached.name}\" (data.md5 is then checked if set; "
            f"null for a folder).")


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

