"""The machine a stage runs on: which device to use, what to call it, and what else was running meanwhile.

Recorded with every timing so that a reader can tell a quiet measurement from one taken beside other work: two
`dvc queue` workers on a small machine share its cores, and their speed figures are not comparable with a quiet run.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

DEVICES = ("auto", "cpu", "cuda")


def pick_device(name: str = "auto") -> torch.device:
    """auto = CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_tags(device: torch.device) -> dict:
    tags = {"device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        tags["device_name"] = torch.cuda.get_device_name(device)
    return tags


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model with its core count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{os.cpu_count()}-core {line.split(':', 1)[1].strip()}"
    return f"{os.cpu_count()}-core {platform.machine()} {platform.processor()}".strip()


def machine_load() -> dict:
    """What else ran while we timed: the 1-minute load average and how many `dvc queue` workers are alive."""
    workers = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        workers += any(a == b"queue-worker" for a in args)  # `dvc exp queue-worker <name>`
    return {"load_avg_1m": os.getloadavg()[0], "dvc_queue_workers": workers}
