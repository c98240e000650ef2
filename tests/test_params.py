"""cnn_pruning.core.params: sections of params.yaml and the project root that relative paths in params start from."""

from __future__ import annotations

import pytest

from cnn_pruning.core import params


def test_section_reads_one_section_and_names_a_missing_one(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train: {epochs: 3}\nprune: {ratio: 0.5}\n")
    assert params.section("prune", path) == {"ratio": 0.5}
    with pytest.raises(ValueError, match="missing section 'sweep'"):
        params.section("sweep", path)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="expected a mapping of sections, got list"):
        params.load_params(path)
    path.write_text("")
    assert params.load_params(path) == {}


def test_relative_paths_resolve_against_dvc_root_not_the_working_directory(tmp_path, monkeypatch):
    root, elsewhere = tmp_path / "project", tmp_path / "exp-copy"
    root.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # what `dvc exp run --temp` does: the stage runs in a copy
    monkeypatch.setenv("DVC_ROOT", str(root))
    assert params.project_root() == root.resolve()
    assert params.resolve("../shared/x.tar.gz") == root.resolve() / "../shared/x.tar.gz"
    assert params.resolve("/abs/x") == params.resolve("/abs/x", root) and str(params.resolve("/abs/x")) == "/abs/x"
    monkeypatch.delenv("DVC_ROOT")
    assert params.project_root() == elsewhere.resolve()
