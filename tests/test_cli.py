"""cnn_pruning.core.cli: a stage's command line names its paths, and expected errors end it with one line and
status 1."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

from cnn_pruning.core.cli import add_paths, pruning_parser, run_stage
from cnn_pruning.datasets.dataset import DataError
from cnn_pruning.tracking import TrackingError
from cnn_pruning.training import TrainingDiverged


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


def test_a_stage_command_ends_its_process_with_everything_written(tmp_path):
    """From a command line (argv None) run_stage ends the process itself (os._exit, no interpreter teardown):
    what main wrote and printed is all there, and the status is 0, or 1 after an expected error's one line."""
    script = tmp_path / "stage.py"
    script.write_text(textwrap.dedent("""
        import argparse, logging, sys
        from cnn_pruning.core.cli import run_stage
        def main(out, fail):
            with open(out, "w") as f:
                f.write("x" * 100_000)
            print("printed", flush=False)
            logging.getLogger("stage").warning("logged")
            if fail:
                raise ValueError("bad ratio 2")
        parser = argparse.ArgumentParser()
        parser.add_argument("--out")
        parser.add_argument("--fail", action="store_true")
        run_stage(main, parser)
        sys.exit(99)  # never reached: run_stage ended the process
    """))
    ok = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, "printed\n") and "logged" in ok.stderr, ok.stderr
    assert (tmp_path / "o").read_text() == "x" * 100_000
    bad = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "o"), "--fail"], capture_output=True,
                         text=True)
    assert bad.returncode == 1 and bad.stderr.endswith("error: bad ratio 2\n") and bad.stdout == "printed\n"
