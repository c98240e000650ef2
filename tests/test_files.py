"""cnn_pruning.core.files: outputs appear whole or not at all, and hashes match what DVC records."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from cnn_pruning.core import files


def test_atomic_path_renames_on_success_and_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    target.parent.mkdir()
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed midway")
    assert target.read_text() == "old" and os.listdir(target.parent) == ["out.txt"]  # no temporary left
    with files.atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and os.listdir(target.parent) == ["out.txt"]


def test_outputs_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    files.write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask


def test_json_is_sorted_and_stable_and_csv_has_the_columns(tmp_path):
    files.write_json(tmp_path / "m.json", {"b": 1, "a": [1, 2]})
    first = (tmp_path / "m.json").read_bytes()
    files.write_json(tmp_path / "m.json", {"a": [1, 2], "b": 1})
    assert (tmp_path / "m.json").read_bytes() == first and json.loads(first) == {"a": [1, 2], "b": 1}
    files.write_csv(tmp_path / "r.csv", [{"x": 1, "y": 2}], ["y", "x"])
    assert (tmp_path / "r.csv").read_text().splitlines() == ["y,x", "2,1"]


def test_md5_is_the_files_md5_and_fingerprint_depends_on_every_part(tmp_path):
    (tmp_path / "f").write_bytes(b"abc" * 1_000_000)
    assert files.md5_of(tmp_path / "f") == hashlib.md5(b"abc" * 1_000_000).hexdigest()
    assert files.fingerprint({"a": 1, "b": 2}, "x") == files.fingerprint({"b": 2, "a": 1}, "x")  # key order: no
    assert files.fingerprint({"a": 1}, "x") != files.fingerprint({"a": 1}, "y")


def test_remove_ignores_a_missing_file(tmp_path):
    files.remove(tmp_path / "nothing")
    (tmp_path / "f").write_text("x")
    files.remove(tmp_path / "f")
    assert not (tmp_path / "f").exists()
