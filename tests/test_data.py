"""cnn_pruning.datasets: every source format, the checks that reject bad sources, and the deterministic splits."""

from __future__ import annotations

import contextlib
import functools
import http.server
import pickle
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_pruning.datasets import dataset, source, splits
from cnn_pruning.datasets import prepare as preparing
from cnn_pruning.datasets.catalog import (
    CIFAR10_CLASSES,
    CIFAR10_NORMALIZATION,
    CIFAR100_CLASSES,
    CIFAR100_NORMALIZATION,
)
from cnn_pruning.datasets.dataset import DataError
from helpers import (
    SHARED_JPG,
    SHARED_JPG_MD5,
    class_images,
    free_port,
    make_cifar100_python,
    make_image_folder,
    make_python_batches,
    tar_gz,
    zip_dir,
)


def prepare(source, tmp_path, md5=None, name="cifar10", **kw):
    kw.setdefault("val_size", 10)
    return preparing.prepare(name, str(source), md5, tmp_path / "out" / f"{name}.npz", root=tmp_path, **kw)


@contextlib.contextmanager
def serving(handler):
    """A local HTTP server for the duration; yields the URL of the official tarball's name on it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz"
    finally:
        server.shutdown()


def assert_no_output(tmp_path):
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), f"partial output left behind: {list(out.iterdir())}"


# ---------------------------------------------------------------------------------------------- formats

def test_image_folder_directory_reads_every_image_with_its_label(tmp_path):
    folder = make_image_folder(tmp_path / "imgs", train_per_class=4, test_per_class=2)
    ds = prepare(folder, tmp_path, val_size=10)
    assert len(ds.train.labels) + len(ds.val.labels) == 40 and len(ds.test.labels) == 20
    assert ds.train.images.dtype == np.uint8 and ds.train.images.shape[1:] == (32, 32, 3)
    # PNG is lossless: test image i of class c is exactly what the fixture drew.
    want = class_images(3, 2, seed=1)
    got = ds.test.images[ds.test.labels == 3]
    assert np.array_equal(got, want)
    assert ds.classes == CIFAR10_CLASSES


@pytest.mark.parametrize("pack", ["tar.gz", "zip", "tar"])
def test_image_folder_archives_match_the_directory(tmp_path, pack):
    folder = make_image_folder(tmp_path / "cifar", train_per_class=3, test_per_class=2)
    if pack == "zip":
        archive = zip_dir(folder, tmp_path / "a.zip")
    elif pack == "tar.gz":
        archive = tar_gz(folder, tmp_path / "a.tar.gz")
    else:
        import tarfile
        archive = tmp_path / "a.tar"
        with tarfile.open(archive, "w") as tf:
            tf.add(folder, arcname="cifar")
    from_dir = prepare(folder, tmp_path / "d", val_size=0)
    from_archive = prepare(archive, tmp_path / "a", val_size=0)
    assert np.array_equal(from_dir.train.images, from_archive.train.images)
    assert np.array_equal(from_dir.test.labels, from_archive.test.labels)


def test_format_is_detected_from_content_not_name(tmp_path):
    folder = make_image_folder(tmp_path / "cifar", train_per_class=2, test_per_class=1)
    misleading = zip_dir(folder, tmp_path / "images.tar.gz")  # a zip called .tar.gz
    ds = prepare(misleading, tmp_path, val_size=0)
    assert len(ds.train.labels) == 20


def test_official_python_format_tarball_and_extracted_folder(tmp_path):
    batches = make_python_batches(tmp_path / "cifar-10-batches-py", per_batch=20)
    tarball = tar_gz(batches, tmp_path / "cifar-10-python.tar.gz")
    a = prepare(tarball, tmp_path / "t", val_size=0)
    b = prepare(batches, tmp_path / "f", val_size=0)
    assert len(a.train.labels) == 100 and len(a.test.labels) == 20
    assert np.array_equal(a.train.images, b.train.images)
    # Rows are stored channel-planar (R plane, G plane, B plane); the canonical form is HWC.
    assert np.array_equal(a.train.images[0], class_images(0, 1, seed=0)[0])


def test_file_url_and_relative_path_resolve_against_root(tmp_path):
    batches = make_python_batches(tmp_path / "cifar-10-batches-py", per_batch=10)
    tarball = tar_gz(batches, tmp_path / "src.tar.gz")
    assert len(prepare(tarball.as_uri(), tmp_path / "u", val_size=0).train.labels) == 50
    ds = preparing.prepare("cifar10", "src.tar.gz", None, tmp_path / "r" / "c.npz", root=tmp_path, val_size=0)
    assert len(ds.train.labels) == 50


def test_http_download_checks_md5_and_caches(tmp_path):
    batches = make_python_batches(tmp_path / "srv" / "cifar-10-batches-py", per_batch=10)
    tarball = tar_gz(batches, tmp_path / "srv" / "cifar-10-python.tar.gz")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "srv"))
    handler.log_message = lambda *a: None
    with serving(handler) as url:
        md5 = source.calculate_md5(str(tarball))
        cache = tmp_path / "cache"
        ds = preparing.prepare("cifar10", url, md5, tmp_path / "out" / "c.npz", root=tmp_path, val_size=0,
                               cache_dir=cache)
        assert len(ds.train.labels) == 50 and ds.source_md5 == md5
        assert (cache / "cifar-10-python.tar.gz").is_file()
        with pytest.raises(DataError, match="md5 mismatch.*expected 0{32}"):
            preparing.prepare("cifar10", url, "0" * 32, tmp_path / "bad" / "c.npz", root=tmp_path, val_size=0,
                         cache_dir=tmp_path / "cache2")
        # The failed download is removed: nothing half-written stays in the cache.
        assert not any(p.is_file() for p in (tmp_path / "cache2").rglob("*"))
        assert not (tmp_path / "bad" / "c.npz").exists()


# ---------------------------------------------------------------------------------------------- bad sources

def test_missing_source_names_the_path(tmp_path):
    with pytest.raises(DataError, match="does-not-exist.tar.gz.*does not exist"):
        prepare(tmp_path / "does-not-exist.tar.gz", tmp_path)
    assert_no_output(tmp_path)


def test_an_unreachable_download_says_how_to_go_on_offline(tmp_path):
    """No network: the message names the file to put where (the cache the next run reads first, with the md5 it is
    checked against) and data.source for a local copy; a file put there is then used without downloading."""
    url = f"http://127.0.0.1:{free_port()}/cifar-10-python.tar.gz"  # nothing listens: the connection is refused
    md5 = "c58f30108f718f92721af3b95e74349a"  # CIFAR-10's official md5
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as failed:
        preparing.prepare("cifar10", url, md5, tmp_path / "out" / "c.npz", root=tmp_path, val_size=0, cache_dir=cache)
    message = str(failed.value)
    assert f"could not download {url}" in message
    assert f"{cache.resolve() / 'cifar-10-python.tar.gz'}" in message and md5 in message
    assert "data.source" in message and "make run SET=" in message
    assert_no_output(tmp_path)
    # Doing what it says: the official-format tarball put at that path is read with no connection at all.
    tarball = tar_gz(make_python_batches(tmp_path / "b" / "cifar-10-batches-py", per_batch=10),
                     cache / "cifar-10-python.tar.gz")
    ds = preparing.prepare("cifar10", url, source.calculate_md5(tarball), tmp_path / "out" / "c.npz", root=tmp_path,
                           val_size=0, cache_dir=cache)
    assert len(ds.train.labels) == 50


def test_md5_mismatch_names_file_and_both_hashes(tmp_path):
    archive = tar_gz(make_image_folder(tmp_path / "c", 2, 1), tmp_path / "c.tar.gz")
    with pytest.raises(DataError, match=r"c\.tar\.gz: md5 mismatch: got [0-9a-f]{32}, expected f{32}"):
        prepare(archive, tmp_path, md5="f" * 32)
    assert_no_output(tmp_path)


def test_truncated_archive_is_a_clear_error(tmp_path):
    archive = tar_gz(make_image_folder(tmp_path / "c", 4, 2), tmp_path / "c.tar.gz")
    raw = archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="cut.tar.gz.*truncated or corrupt"):
        prepare(cut, tmp_path)
    assert_no_output(tmp_path)


def test_not_an_archive(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"hello, not an archive" * 50)
    with pytest.raises(DataError, match="junk.tar.gz: not a tar/zip archive"):
        prepare(junk, tmp_path)


def test_wrong_layout_lists_what_was_expected(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    Image.fromarray(class_images(0, 1, 0)[0]).save(folder / "img.png")
    with pytest.raises(DataError, match="no dataset layout found.*train/<class>"):
        prepare(folder, tmp_path)


def _remove_class(folder: Path, split: str, name: str, keep_folder: bool) -> None:
    for p in (folder / split / name).iterdir():
        p.unlink()
    if not keep_folder:
        (folder / split / name).rmdir()


def _nested_folder(folder: Path) -> None:
    (folder / "train" / "deer" / "more").mkdir()
    Image.fromarray(class_images(4, 1, 0)[0]).save(folder / "train" / "deer" / "more" / "0000.png")


# (what breaks the folder, the error that must name it)
BROKEN_FOLDERS = {
    "missing class": (lambda f: _remove_class(f, "test", "horse", keep_folder=False),
                      r"test: class folders.*missing \['horse'\]"),
    "empty class": (lambda f: _remove_class(f, "train", "cat", keep_folder=True),
                    "train/cat: class folder has no images"),
    "wrong size": (lambda f: Image.new("RGB", (31, 32)).save(f / "train" / "dog" / "0001.png"),
                   r"train/dog/0001.png: expected a 32x32 RGB image, got 31x32"),
    "grayscale": (lambda f: Image.new("L", (32, 32)).save(f / "test" / "ship" / "0000.png"),
                  r"test/ship/0000.png: expected a 32x32 RGB image.*1 channel"),
    "non-image file": (lambda f: (f / "train" / "frog" / "notes.txt").write_text("hi"),
                       "train/frog/notes.txt: not an image file"),  # an error, not skipped
    "unreadable image": (lambda f: (f / "train" / "frog" / "broken.png").write_bytes(b"not really a png"),
                         "train/frog/broken.png: cannot be read as an image"),
    "folder in a class folder": (_nested_folder, "train/deer/more: a folder inside a class folder"),
}


@pytest.mark.parametrize("case", BROKEN_FOLDERS)
def test_a_broken_image_folder_is_named_and_leaves_no_output(tmp_path, case):
    folder = make_image_folder(tmp_path / "c", 2, 1)
    breaks, message = BROKEN_FOLDERS[case]
    breaks(folder)
    with pytest.raises(DataError, match=message):
        prepare(folder, tmp_path)
    assert_no_output(tmp_path)


def test_16_bit_image_is_rejected(tmp_path):
    folder = make_image_folder(tmp_path / "c", 2, 1)
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    # A valid 32x32 RGB PNG with 16 bits a sample (PIL writes no such file): IHDR bit depth 16, colour type 2.
    rows = np.random.default_rng(0).integers(0, 65535, (32, 32 * 3)).astype(">u2")
    raw = b"".join(b"\0" + row.tobytes() for row in rows)  # filter type 0 per row
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    (folder / "train" / "bird" / "0000.png").write_bytes(png)
    with pytest.raises(DataError, match=r"train/bird/0000.png: expected an 8-bit RGB image, got torch.uint16"):
        prepare(folder, tmp_path)


def test_folder_source_with_md5_set_is_refused(tmp_path):
    folder = make_image_folder(tmp_path / "c", 2, 1)
    with pytest.raises(DataError, match="is a folder.*data.md5: null"):
        prepare(folder, tmp_path, md5="a" * 32)


def test_existing_output_survives_a_failed_prepare(tmp_path):
    good = make_image_folder(tmp_path / "good", 2, 1)
    prepare(good, tmp_path, val_size=0)
    out = tmp_path / "out" / "cifar10.npz"
    before = out.read_bytes()
    with pytest.raises(DataError):
        prepare(tmp_path / "nope", tmp_path)
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["cifar10.npz"]


# ---------------------------------------------------------------------------------------------- splits and subsets

def test_stratified_indices_are_deterministic_and_proportional():
    labels = np.repeat(np.arange(10), 50)
    a = splits.stratified_indices(labels, 100, seed=3)
    assert np.array_equal(a, splits.stratified_indices(labels, 100, seed=3))
    assert not np.array_equal(a, splits.stratified_indices(labels, 100, seed=4))
    assert np.bincount(labels[a], minlength=10).tolist() == [10] * 10
    assert len(set(a.tolist())) == 100


def test_stratified_indices_largest_remainder_gives_exact_size():
    labels = np.array([0] * 7 + [1] * 3)
    idx = splits.stratified_indices(labels, 5, seed=0)
    assert len(idx) == 5 and np.bincount(labels[idx]).tolist() == [4, 1]


def test_validation_is_carved_out_of_train_disjoint_and_stratified():
    train = dataset.Split(np.arange(200, dtype=np.uint8).reshape(200, 1, 1, 1).repeat(32, 1).repeat(32, 2).repeat(3, 3),
                       np.repeat(np.arange(10), 20))
    test = dataset.Split(train.images[:50], train.labels[:50])
    tr, val, te = splits.split_and_subset(train, test, val_size=40, train_size=60, test_size=20, seed=0)
    tr_ids, val_ids = set(tr.images[:, 0, 0, 0].tolist()), set(val.images[:, 0, 0, 0].tolist())
    assert not tr_ids & val_ids
    assert np.bincount(val.labels, minlength=10).tolist() == [4] * 10
    assert np.bincount(tr.labels, minlength=10).tolist() == [6] * 10
    assert len(te.labels) == 20
    again = splits.split_and_subset(train, test, val_size=40, train_size=60, test_size=20, seed=0)
    assert np.array_equal(again[1].images, val.images)


def test_too_large_subset_is_a_clear_error(tmp_path):
    folder = make_image_folder(tmp_path / "c", 2, 1)
    with pytest.raises(DataError, match="val_size=20 leaves no training images"):
        prepare(folder, tmp_path, val_size=20)
    with pytest.raises(DataError, match="asked for 99 images, but only 10"):
        prepare(folder, tmp_path, val_size=0, test_size=99)


def test_canonical_file_roundtrip_and_loads_fast(tmp_path):
    folder = make_image_folder(tmp_path / "c", 6, 3)
    ds = prepare(folder, tmp_path, val_size=10, seed=1)
    back = dataset.load(tmp_path / "out" / "cifar10.npz")
    # Loads fast because it is plain arrays: stored uncompressed (reading is a copy), nothing pickled.
    with zipfile.ZipFile(tmp_path / "out" / "cifar10.npz") as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    with np.load(tmp_path / "out" / "cifar10.npz", allow_pickle=False) as raw:
        assert raw["train_x"].dtype == np.uint8 and raw["train_x"].shape[1:] == (32, 32, 3)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(ds, name).images, getattr(back, name).images)
        assert np.array_equal(getattr(ds, name).labels, getattr(back, name).labels)
    assert back.classes == CIFAR10_CLASSES and back.source == str(folder)
    summary = dataset.summary(back)
    assert summary["val_images"] == 10 and sum(summary["train_per_class"]) == 50


# ---------------------------------------------------------------------------------------------- other datasets

def test_cifar100_python_tarball_reads_fine_labels_classes_and_statistics(tmp_path):
    tarball = tar_gz(make_cifar100_python(tmp_path / "src", 2, 1), tmp_path / "cifar-100-python.tar.gz")
    ds = prepare(tarball, tmp_path, name="cifar100", val_size=100)
    assert ds.name == "cifar100" and ds.title == "CIFAR-100" and ds.classes == CIFAR100_CLASSES
    assert len(ds.train.labels) == 100 and len(ds.val.labels) == 100 and len(ds.test.labels) == 100
    assert np.bincount(ds.test.labels).tolist() == [1] * 100  # the fine labels, not the 20 coarse ones
    assert ds.normalization == CIFAR100_NORMALIZATION
    back = dataset.load(tmp_path / "out" / "cifar100.npz")
    assert (back.name, back.classes, back.normalization) == ("cifar100", CIFAR100_CLASSES, CIFAR100_NORMALIZATION)


def test_an_official_tarball_must_match_the_dataset_name(tmp_path):
    tarball = tar_gz(make_cifar100_python(tmp_path / "src", 1, 1), tmp_path / "c100.tar.gz")
    with pytest.raises(DataError, match=r"holds the official CIFAR-100 python files, but data.name is 'cifar10'; "
                                        r"set data.name: cifar100"):
        prepare(tarball, tmp_path, val_size=0)
    assert_no_output(tmp_path)


def test_a_crafted_cifar100_file_cannot_run_code(tmp_path):
    folder = make_cifar100_python(tmp_path / "src", 1, 1)
    marker = tmp_path / "pwned"
    with open(folder / "train", "wb") as f:
        pickle.dump({b"data": RunsCode(marker), b"fine_labels": [0]}, f, protocol=2)
    with pytest.raises(DataError, match=r"train: not a readable CIFAR-100 batch.*posix.system is not allowed"):
        prepare(folder, tmp_path, name="cifar100", val_size=0)
    assert not marker.exists()


@pytest.mark.parametrize("n", [3, 20])
def test_an_image_folder_of_ones_own_has_its_folders_classes_and_computed_statistics(tmp_path, n):
    classes = tuple(f"kind_{c:02d}" for c in reversed(range(n)))  # made in reverse: the labels follow sorted names
    folder = make_image_folder(tmp_path / "mine", 4, 2, classes=classes)
    ds = prepare(folder, tmp_path, name="mine", val_size=n)
    assert ds.classes == tuple(sorted(classes)) and ds.title == "mine"
    assert np.bincount(ds.test.labels).tolist() == [2] * n and len(ds.train.labels) == 3 * n
    # the first sorted name was made last (label n - 1 in class_images' colours): its images carry its colour
    assert np.allclose(ds.test.images[ds.test.labels == 0].mean((0, 1, 2)),
                       class_images(n - 1, 2, seed=1).mean((0, 1, 2)), atol=1e-9)
    pixels = ds.train.images.reshape(-1, 3) / 255
    assert np.allclose(ds.normalization["mean"], pixels.mean(0)) and np.allclose(ds.normalization["std"], pixels.std(0))
    back = dataset.load(tmp_path / "out" / "mine.npz")
    assert back.name == "mine" and np.allclose(back.normalization["std"], ds.normalization["std"])


def test_train_and_test_of_ones_own_must_name_the_same_classes(tmp_path):
    folder = make_image_folder(tmp_path / "mine", 2, 1, classes=("cat", "dog", "emu"))
    (folder / "test" / "emu").rename(folder / "test" / "elk")
    with pytest.raises(DataError, match=r"train and test must hold the same class folders; only in train: \['emu'\], "
                                        r"only in test: \['elk'\]"):
        prepare(folder, tmp_path, name="mine")
    assert_no_output(tmp_path)


def test_one_class_is_not_a_dataset(tmp_path):
    folder = make_image_folder(tmp_path / "mine", 2, 1, classes=("cat",))
    with pytest.raises(DataError, match=r"holds 1 class folder\(s\) \['cat'\]; a classifier needs at least 2"):
        prepare(folder, tmp_path, name="mine")


def test_a_known_name_keeps_its_classes_for_image_folders(tmp_path):
    folder = make_image_folder(tmp_path / "mine", 2, 1, classes=("cat", "dog", "emu"))
    with pytest.raises(DataError, match=r"class folders must be the 10 CIFAR-10 classes"):
        prepare(folder, tmp_path, name="cifar10")


def test_the_official_source_follows_the_name(tmp_path):
    assert preparing.official_source("cifar100", None, None) == \
        ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")
    assert preparing.official_source("cifar10", None, None)[1] == "c58f30108f718f92721af3b95e74349a"
    assert preparing.official_source("mine", "x.tar", None) == ("x.tar", None)
    with pytest.raises(DataError, match=r"data.name 'mine' has no official download \(known: cifar10, cifar100\); "
                                        r"set data.source"):
        preparing.official_source("mine", None, None)
    with pytest.raises(DataError, match=r"data.md5 '0{32}' is not the md5 of the official CIFAR-100 tarball"):
        preparing.official_source("cifar100", None, "0" * 32)


def test_a_file_written_before_names_and_statistics_loads_as_cifar10(tmp_path):
    split = {f"{s}_{p}": a for s in ("train", "val", "test")
             for p, a in (("x", np.zeros((2, 32, 32, 3), np.uint8)), ("y", np.array([0, 1])))}
    np.savez(tmp_path / "old.npz", **split, classes=np.array(CIFAR10_CLASSES), source=np.array("x"),
             source_md5=np.array(""))
    ds = dataset.load(tmp_path / "old.npz")
    assert ds.name == "cifar10" and ds.normalization == CIFAR10_NORMALIZATION


# ---------------------------------------------------------------------------------------------- the real images

@pytest.mark.skipif(not SHARED_JPG.exists(), reason=f"{SHARED_JPG} is absent (only on the project's dev machines)")
def test_shared_jpeg_archive_reads_as_cifar10(tmp_path):
    ds = preparing.prepare("cifar10", str(SHARED_JPG), SHARED_JPG_MD5, tmp_path / "c.npz", root=tmp_path, val_size=5000,
                      train_size=1000, test_size=500)
    assert len(ds.train.labels) == 1000 and len(ds.val.labels) == 5000 and len(ds.test.labels) == 500
    assert np.bincount(ds.test.labels).tolist() == [50] * 10
    assert ds.train.images.shape[1:] == (32, 32, 3) and ds.train.images.std() > 30
    # One epoch on the real images learns something: better than chance (10%) on held-out validation images.
    import torch

    from cnn_pruning.model import CifarResNet
    from cnn_pruning.training import TrainConfig, fit
    torch.manual_seed(0)
    history = fit(CifarResNet(), ds, "sgd", {"lr": 0.05, "momentum": 0.9}, TrainConfig(epochs=1, batch_size=64),
                  desc="t")
    assert history[0]["val_acc"] > 0.15, history


# ---------------------------------------------------------------------------------------------- robustness

class RunsCode:
    """A pickle that would call os.system when loaded by a plain unpickler."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_crafted_batch_file_cannot_run_code(tmp_path):
    import pickle
    batches = make_python_batches(tmp_path / "cifar-10-batches-py", per_batch=10)
    marker = tmp_path / "pwned"
    with open(batches / "data_batch_3", "wb") as f:
        pickle.dump({b"data": RunsCode(marker), b"labels": [0]}, f, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_3: not a readable CIFAR-10 batch.*posix.system is not allowed"):
        prepare(batches, tmp_path, val_size=0)
    assert not marker.exists(), "the crafted pickle ran code"
    assert_no_output(tmp_path)


def test_not_enough_disk_space_is_reported_before_reading(tmp_path):
    import subprocess
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill up ({mounted.stderr.decode().strip()})")
    try:
        folder = make_image_folder(tmp_path / "c", 2, 1)
        with pytest.raises(DataError, match=r"not enough free disk space in .*small/out for writing cifar10.npz: "
                                            r"need 176 MiB, have 4 MiB"):
            preparing.prepare("cifar10", str(folder), None, small / "out" / "cifar10.npz", root=tmp_path, val_size=0)
        assert list((small / "out").iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_free_space_is_checked_before_download_and_before_reading(tmp_path, monkeypatch):
    # Where mounting a small disk is not allowed, shrink what the disk reports instead: the check is the same.
    Usage = type("Usage", (), {"total": 1 << 30, "used": (1 << 30) - (5 << 20), "free": 5 << 20})
    monkeypatch.setattr(source.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(DataError, match=r"not enough free disk space in .*dl for downloading http://127.0.0.1:9/"
                                        r"cifar-10-python.tar.gz: need 163 MiB, have 5 MiB"):
        preparing.prepare("cifar10", "http://127.0.0.1:9/cifar-10-python.tar.gz", None, tmp_path / "out" / "c.npz",
                          root=tmp_path,
                     val_size=0, cache_dir=tmp_path / "dl")
    folder = make_image_folder(tmp_path / "c", 2, 1)
    with pytest.raises(DataError, match=r"for writing c.npz: need 176 MiB, have 5 MiB"):
        preparing.prepare("cifar10", str(folder), None, tmp_path / "out" / "c.npz", root=tmp_path, val_size=0)
    assert_no_output(tmp_path)


def test_a_download_cut_off_midway_leaves_nothing_behind(tmp_path):
    class HalfBody(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # promise 1 MB, send 1000 bytes, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.connection.close()

        def log_message(self, *a):
            pass

    with serving(HalfBody) as url:
        with pytest.raises(DataError, match=r"cifar-10-python.tar.gz"):
            preparing.prepare("cifar10", url, None, tmp_path / "out" / "c.npz", root=tmp_path, val_size=0,
                              cache_dir=tmp_path / "dl")
        assert not any(p.is_file() for p in (tmp_path / "dl").rglob("*")), list((tmp_path / "dl").rglob("*"))
        assert_no_output(tmp_path)
