"""What every stage script's command line shares: paths as arguments, and a clean exit on expected errors.

    parser = argparse.ArgumentParser(...)
    add_paths(parser, FitOutputs)      # --model, --metrics, ...: one required flag per field of a paths dataclass
    run_stage(main, parser)            # main(**parsed arguments); an expected error: one line on stderr, exit 1

Paths live in dvc.yaml and reach the stages as arguments, so each is written once, beside the deps and outs DVC
tracks.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import Callable

from .errors import EXPECTED


def add_paths(parser: argparse.ArgumentParser, paths: type) -> None:
    """A required --<field> flag for every field of the dataclass `paths` (field comments say what each holds)."""
    for f in dataclasses.fields(paths):
        parser.add_argument(f"--{f.name}", required=True, help=f"path of the {f.name} file")


def pruning_parser(doc: str, method_help: str) -> argparse.ArgumentParser:
    """The command line the stages that prune the base model share: the method, --data and --base."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("method", help=method_help)
    parser.add_argument("--data", required=True, help="the dataset file (.npz)")
    parser.add_argument("--base", required=True, help="the base model (models/base/<prune.base>.pt)")
    return parser


def run_stage(main: Callable[..., None], parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    """Call main(**parsed arguments); an expected error prints `error: <message>` and exits with status 1.

    From a stage's own command line (argv None) it then ends the process itself, skipping the interpreter's
    teardown (finalising torch's, MLflow's and their dependencies' modules: most of a second per stage, for
    nothing): by then every output is written through an atomic rename and closed, and the MLflow run is closed;
    the standard streams and logging are flushed first. An unexpected error leaves the normal way, with its
    traceback. With argv given (a caller's own list) it returns, or raises SystemExit(1)."""
    args = parser.parse_args(argv)
    try:
        main(**vars(args))
        status = 0
    except EXPECTED as e:
        print(f"error: {e}", file=sys.stderr)
        status = 1
    if argv is None:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    if status:
        sys.exit(status)
