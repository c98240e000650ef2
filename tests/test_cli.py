"""cnn_pruning.cli: a stage's command line names its paths, and expected errors end it with one line and status 1."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from cnn_pruning.cli import add_paths, pruning_parser, run_stage
from cnn_pruning.datasets.dataset import DataError
from cnn_pruning.tracking import TrackingError
from cnn_pruning.train import TrainingDiverged


@dataclass(frozen=True)
class Paths:
    model: str
    metrics: str


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    add_paths(p, Paths)
    return p


def test_every_path_is_a_required_flag_and_reaches_main():
    got = {}
    run_stage(lambda **kw: got.update(kw), parser(), ["sgd", "--model", "m.pt", "--metrics", "m.json"])
    assert got == {"name": "sgd", "model": "m.pt", "metrics": "m.json"}
    with pytest.raises(SystemExit) as exit_:
        run_stage(lambda **kw: None, parser(), ["sgd", "--model", "m.pt"])  # --metrics missing
    assert exit_.value.code == 2


@pytest.mark.parametrize("error", [DataError("bad.tar: truncated"), TrackingError("server down"),
                                   TrainingDiverged("loss became nan"), ValueError("ratio 2"),
                                   FileNotFoundError("models/base/sgd.pt")])
def test_expected_errors_print_one_line_and_exit_1(error, capsys):
    def main(**kw):
        raise error
    with pytest.raises(SystemExit) as exit_:
        run_stage(main, parser(), ["x", "--model", "a", "--metrics", "b"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: {error}\n"


def test_a_bug_keeps_its_traceback():
    def main(**kw):
        raise KeyError("a bug, not input")
    with pytest.raises(KeyError):
        run_stage(main, parser(), ["x", "--model", "a", "--metrics", "b"])


def test_the_pruning_stages_share_method_data_and_base():
    parser = pruning_parser("Prune it.\nmore", "a method")
    parser.add_argument("--out", required=True)
    got = {}
    run_stage(lambda **kw: got.update(kw), parser, ["l2_unit", "--data", "d.npz", "--base", "b.pt", "--out", "o"])
    assert got == {"method": "l2_unit", "data": "d.npz", "base": "b.pt", "out": "o"}
    assert parser.description == "Prune it."
