"""One parent run per pipeline invocation, found through the process tree, and the runs a killed stage left open.

Every stage run of one `dvc repro`, `dvc exp run` (in the workspace, --temp or a queue worker) or `make run` nests
under one parent (tag mlflow.parentRunId). The parent is named after the DVC experiment (`repro-<commit>` for a
plain repro), holds the whole params.yaml as params, and shows RUNNING while one of its stages runs, FINISHED or
FAILED after the last one.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..core.params import PARAMS_FILE, flatten, load_params, project_root
from .provenance import VERSIONED_PACKAGES, git
from .store import log_params, retry

# Set it to group the stage runs of several DVC commands (a script's) under one parent run.
INVOCATION_ENV = "CNN_PRUNING_INVOCATION"


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time in clock ticks since boot) of a process, from /proc; None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[19]


def _dvc_process() -> str | None:
    """'<pid>-<start ticks>' of the nearest ancestor process that is `dvc` (`dvc repro`, `dvc exp run`, a queue
    worker's `dvc exp exec-run`; run as `dvc ...`, `python .../bin/dvc ...` or `python -m dvc ...`); pid and start
    time together name it uniquely while the machine is up."""
    pid = os.getppid()
    while pid > 1:
        stat = _proc_stat(pid)
        if stat is None:
            return None
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:3]
        except OSError:
            return None
        if any(os.path.basename(a) == b"dvc" for a in args[:2]) or args[1:3] == [b"-m", b"dvc"]:
            return f"{pid}-{stat[1]}"
        pid = stat[0]
    return None


def invocation() -> tuple[str, str] | None:
    """(id, name) of the pipeline invocation this stage runs in, or None for a stage run by hand.

    The stages of one invocation are processes of one DVC command: the nearest `dvc` ancestor (pid + start time)
    identifies it, on this host and project, together with DVC_EXP_NAME (set by `dvc exp run`, not by plain
    `dvc repro`), which also names the parent (`repro-<commit>` without it). CNN_PRUNING_INVOCATION, when set,
    replaces both: every DVC command run with the same value groups under one parent of that name.
    """
    chosen = os.environ.get(INVOCATION_ENV)
    process = None if chosen else _dvc_process()
    if not chosen and process is None:
        return None
    exp_name = os.environ.get("DVC_EXP_NAME", "")
    key = "\0".join((socket.gethostname(), str(project_root()), chosen or f"{process}\0{exp_name}"))
    commit = (os.environ.get("DVC_EXP_BASELINE_REV") or git("rev-parse", "HEAD") or "unknown")[:7]
    return hashlib.sha1(key.encode()).hexdigest()[:16], chosen or exp_name or f"repro-{commit}"


def parent_run(client: MlflowClient, exp_id: str, tags: dict) -> str | None:
    """The run id of this invocation's parent run, created by its first stage (DVC runs one invocation's stages one
    after another, so two never race to create it); None outside an invocation."""
    found = invocation()
    if found is None:
        return None
    inv_id, name = found
    query = f"tags.`pipeline.invocation` = '{inv_id}'"
    existing = retry(client.search_runs, [exp_id], query, max_results=1, order_by=["attributes.start_time ASC"])
    if existing:
        return existing[0].info.run_id
    keep = ("mlflow.source.git.commit", "mlflow.source.git.branch", "git.dirty", "dvc.exp_name", "project",
            "mlflow.user", "python", *(f"version.{p}" for p in VERSIONED_PACKAGES))
    run = retry(client.create_run, exp_id, run_name=name, tags={
        **{k: str(v) for k, v in tags.items() if k in keep}, "pipeline.invocation": inv_id, "stage": "pipeline",
        "mlflow.runName": name, "mlflow.note.content": f"Every stage run of one pipeline invocation ({name})."})
    if Path(PARAMS_FILE).exists():  # the whole params.yaml: parents compare over any setting
        log_params(client, run.info.run_id, flatten(load_params(PARAMS_FILE)))
    return run.info.run_id


def close_killed_runs(client: MlflowClient, exp_id: str, run_name: str, project: str, exp_name: str) -> None:
    """Mark KILLED what a killed process left RUNNING: the same stage of the same checkout and DVC experiment, and
    the parent run of its invocation (a killed stage ends its DVC command too).

    A stage killed with SIGKILL cannot end its run; when the stage runs again (and resumes), its old run would
    show as running for ever. DVC lets one stage of one checkout and experiment run at a time, so any such run
    still RUNNING is dead; runs of other checkouts or parallel queued experiments differ in `project` or name.
    """
    # Run names are ours (no quotes); the project path may hold any character, so it is compared here, not quoted
    # into the filter. Housekeeping only: a failure here must not stop the stage.
    query = f"attributes.run_name = '{run_name}' AND attributes.status = 'RUNNING'"
    try:
        for stale in retry(client.search_runs, [exp_id], query, max_results=100):
            tags = stale.data.tags
            if tags.get("project") == project and tags.get("dvc.exp_name", "") == exp_name:
                retry(client.set_terminated, stale.info.run_id, "KILLED")
                parent = tags.get("mlflow.parentRunId")
                if parent and retry(client.get_run, parent).info.status == "RUNNING":
                    retry(client.set_terminated, parent, "KILLED")
    except MlflowException as e:
        print(f"tracking: could not close runs a killed stage left RUNNING ({e})", file=sys.stderr)
