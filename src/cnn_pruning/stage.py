"""What every stage script shares: a clean exit on expected errors, and the device facts runs are tagged with."""

from __future__ import annotations

import sys
from typing import Callable

import torch

from .data import DataError
from .model import CheckpointError
from .train import TrainingDiverged

# Errors that are the user's input or environment, not a bug: one clear line, exit status 1, no traceback.
EXPECTED_ERRORS = (DataError, CheckpointError, TrainingDiverged, ValueError, KeyError, FileNotFoundError)


def run_stage(main: Callable[..., None], *args: str, expected: tuple[type[BaseException], ...] = ()) -> None:
    """Call main(*args); an expected error (plus `expected`, e.g. tracking.TrackingError) exits 1 with its message."""
    try:
        main(*args)
    except EXPECTED_ERRORS + expected as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def device_tags(device: torch.device) -> dict:
    tags = {"device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        tags["device_name"] = torch.cuda.get_device_name(device)
    return tags
