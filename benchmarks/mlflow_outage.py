"""What an MLflow tracking-server outage does to logged metrics: MLflow's asynchronous logging against the
project's own answer (stop the stage, resume, relog every epoch).

    python benchmarks/mlflow_outage.py                 # 5 steps, outage, 5 steps, server back, 5 steps
    python benchmarks/mlflow_outage.py --steps 10

Starts the project's server (tools/mlflow_server.sh, SQLite store in a temporary folder), logs one metric per step
with `MlflowClient.log_batch(..., synchronous=False)` (waiting on each step's operation), SIGKILLs the server by its
PID, logs more steps, starts the server again on the same store and port, logs the rest, and prints which steps the
server holds: the outage's steps are dropped, not kept for later. MLflow's client retries are lowered
(MLFLOW_HTTP_REQUEST_MAX_RETRIES=1, backoff factor 1) so the outage outlasts them, as a real outage outlasts the
default ~4 minutes. No timing is measured: it counts steps.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_DISABLE_TELEMETRY": "true"})
from mlflow import MlflowClient  # after the retry settings, read at import
from mlflow.entities import Metric

SERVER = Path(__file__).resolve().parents[1] / "tools" / "mlflow_server.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server(*args: str) -> None:
    proc = subprocess.run(["bash", str(SERVER), *args], capture_output=True, text=True, timeout=240)
    if proc.returncode != 0:
        sys.exit(f"mlflow_server.sh {' '.join(args)} failed:\n{proc.stderr}")


class Count(logging.Handler):
    """Counts the errors MLflow's async queue logs (it drops a batch it cannot send, saying so only in its log)."""
    errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        Count.errors += record.levelno >= logging.ERROR


def log_steps(client: MlflowClient, run_id: str, steps: range) -> list[str]:
    """Log `metric` = step asynchronously, then wait for each call's operation (MLflow's RunOperations.wait, the
    only place a failed asynchronous write shows); returns what each wait raised ("" when it was written)."""
    operations = [client.log_batch(run_id, metrics=[Metric("metric", float(step), int(time.time() * 1000), step)],
                                   synchronous=False) for step in steps]
    raised = []
    for operation in operations:
        try:
            operation.wait()
            raised.append("")
        except Exception as e:  # what the caller would see is the point
            raised.append(type(e).__name__)
    return raised


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="steps logged before, during and after the outage")
    n = parser.parse_args().steps
    queue_log = logging.getLogger("mlflow.utils.async_logging.async_logging_queue")
    queue_log.addHandler(Count())
    queue_log.propagate = False  # one line per dropped batch otherwise; counted instead
    store, port = Path(tempfile.mkdtemp(prefix="mlflow-outage-")), free_port()
    server("start", "--port", str(port), "--dir", str(store), "--workers", "1", "--timeout", "150")
    uri = f"http://127.0.0.1:{port}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("outage")).info.run_id
    try:
        before = log_steps(client, run_id, range(1, n + 1))
        pid = int((store / "mlflow-server.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        time.sleep(1)
        during = log_steps(client, run_id, range(n + 1, 2 * n + 1))
        server("start", "--port", str(port), "--dir", str(store), "--workers", "1", "--timeout", "150")
        after = log_steps(client, run_id, range(2 * n + 1, 3 * n + 1))
        # A synchronous call after the async ones: proof that the server takes writes again.
        client.log_batch(run_id, metrics=[Metric("metric", 0.0, int(time.time() * 1000), 0)])
        held = sorted(int(m.step) for m in client.get_metric_history(run_id, "metric"))
    finally:
        server("stop", "--dir", str(store))
        shutil.rmtree(store, ignore_errors=True)
    for name, steps, raised in (("before", range(1, n + 1), before), ("during", range(n + 1, 2 * n + 1), during),
                                ("after", range(2 * n + 1, 3 * n + 1), after)):
        kept = [s for s in steps if s in held]
        errors = sorted({r for r in raised if r}) or ["none"]
        print(f"{name:>6} the outage: steps {steps.start}-{steps.stop - 1}: {len(kept)} of {len(steps)} on the "
              f"server; what waiting on them raised: {', '.join(errors)}")
    print(f"steps the server holds: {held} (step 0: a synchronous write after the outage)")
    print(f"errors MLflow's async queue wrote to its log: {Count.errors}")


if __name__ == "__main__":
    main()
