"""What a stage costs beyond its own work: the tests' tiny pipeline, timed as a whole and stage by stage.

    python benchmarks/stage_overhead.py --out benchmarks/results/stage_overhead.json
    python benchmarks/stage_overhead.py --rev a26910a --out /tmp/before.json    # the code of another revision

Builds the tests' tiny pipeline (helpers.TINY_OVERRIDES on the tests' tiny image archive: 300 training images,
one epoch, 40 stages) in a temporary git+DVC copy of the revision, times one `dvc repro` of it, then runs every
stage's command from dvc.lock once more on its own, under `python -X importtime` and a harness that times its
phases: interpreter start and exit (the stage's own exit included), imports (every top-level import, wherever it
happens: at the script's top, or lazily inside a function), MLflow tracking (opening and closing the run, finding
the parent, logging; imports inside it counted as imports) and the rest, the stage's own work (loading data,
training, pruning, measuring, writing). Overhead = a stage's wall time minus its own work. DVC's own share is the
repro's wall time minus the stages' commands. The tiny stages do almost no work, so their time is what every stage
of a real run pays on top. Nothing else may run meanwhile (the machine's load is recorded).
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import importlib
import json
import os
import platform
import re
import runpy
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INNER_ENV = "STAGE_OVERHEAD_OUT"  # set for the harness run inside each stage's process: where it writes its phases


# ---------------------------------------------------------------------------------------------- inside a stage

def _recorder(intervals: list[tuple[float, float]]):
    """A decorator that appends (start, end) of each outermost call of the functions it wraps to `intervals`."""
    depth = [0]

    def wrap(fn):
        def wrapper(*args, **kwargs):
            if depth[0]:
                return fn(*args, **kwargs)
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                intervals.append((t0, time.perf_counter()))
        return wrapper
    return wrap


def _harness(argv: list[str]) -> None:
    """Run the stage script `argv[0]` with arguments `argv[1:]` as `python script ...` would, timing its phases."""
    start = time.perf_counter()
    imports: list[tuple[float, float]] = []
    timed = _recorder(imports)
    windows: list[tuple[float, float]] = []
    logged = _recorder(windows)

    def instrument(tracking) -> None:
        """Time the tracking module's run and logging calls (patched once the stage itself imports it)."""
        for name in dir(tracking.StageRun):
            if name.startswith(("log_", "set_")):
                setattr(tracking.StageRun, name, logged(getattr(tracking.StageRun, name)))
        original = tracking.stage_run

        @contextlib.contextmanager
        def stage_run(*args, **kwargs):
            t0 = time.perf_counter()
            with original(*args, **kwargs) as run:
                windows.append((t0, time.perf_counter()))
                try:
                    yield run
                finally:
                    closing = time.perf_counter()
            windows.append((closing, time.perf_counter()))
        tracking.stage_run = stage_run

    def importing(fn):
        def wrapper(*args, **kwargs):
            module = fn(*args, **kwargs)
            tracking = sys.modules.get("cnn_pruning.tracking")
            if hasattr(tracking, "stage_run") and not getattr(tracking, "_timed", False):  # whole, not mid-import
                tracking._timed = True
                instrument(tracking)
            return module
        return wrapper

    builtins.__import__ = importing(timed(builtins.__import__))
    importlib.import_module = importing(timed(importlib.import_module))

    def report(code) -> None:
        end = time.perf_counter()

        def inside(a, b):  # import time spent within the interval (a, b)
            return sum(min(b, y) - max(a, x) for x, y in imports if y > a and x < b)

        tracking_s = sum(b - a - inside(a, b) for a, b in windows)
        imports_s = sum(b - a for a, b in imports)
        Path(os.environ[INNER_ENV]).write_text(json.dumps({
            "in_process_s": end - start, "imports_s": imports_s, "tracking_s": tracking_s,
            "work_s": end - start - imports_s - tracking_s, "exit_code": code}))

    real_exit = os._exit

    def exit_now(code):  # a stage that ends its process itself (cnn_pruning.core.cli.run_stage) reports first
        report(code)
        real_exit(code)

    os._exit = exit_now
    sys.argv = list(argv)
    sys.path.insert(0, str(Path(argv[0]).resolve().parent))
    code = 0
    try:
        runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        code = e.code or 0
    report(code)


# ---------------------------------------------------------------------------------------------- outside

def _importtime(stderr: str, top: int = 6) -> list[tuple[str, float]]:
    """The largest top-level imports in `python -X importtime` output: (module, cumulative seconds)."""
    found = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            found.append((m.group(2).strip(), int(m.group(1)) / 1e6))
    return sorted(found, key=lambda x: -x[1])[:top]


def _helpers():
    """The tests' helpers (tiny archive, settings, environment), so that this is the tests' pipeline; imported by
    the outer process only, so that no stage pays for them."""
    sys.path.insert(0, str(REPO / "tests"))
    import helpers
    return helpers


def _env(src: Path) -> dict:
    """The environment the tests run their stages in, with the package under test taken from `src`."""
    return _helpers().tool_env(PYTHONPATH=str(src), MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1")  # as the fixture


def _tiny_repo(tree: Path, dest: Path) -> Path:
    """The tests' tiny pipeline settings in a git+DVC copy of the files of `tree`."""
    helpers = _helpers()
    source_dir = Path(tempfile.gettempdir()) / "cnn-pruning-tiny-source"
    source = source_dir / "cifar-tiny.tar.gz"
    if not source.exists():
        source_dir.mkdir(parents=True, exist_ok=True)
        helpers.tar_gz(helpers.make_image_folder(source_dir / "cifar-tiny", 30, 10), source)
    helpers.REPO = tree  # copy the revision's files, not this checkout's
    helpers.copy_repo(dest, helpers.tiny_overrides(source))
    return dest


def measure(tree: Path, work: Path) -> dict:
    import yaml
    repo = _tiny_repo(tree, work / "repo")
    env = _env(tree / "src")
    t0 = time.perf_counter()
    proc = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True)
    repro_s = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"dvc repro failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    order = re.findall(r"Running stage '([^']+)'", proc.stdout)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    rows = []
    for stage in order:
        argv = shlex.split(lock[stage]["cmd"])
        assert argv[0] == "python", argv
        out = work / "phases.json"
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-X", "importtime", __file__, "--inner", *argv[1:]], cwd=repo,
                             env={**env, INNER_ENV: str(out), "CNN_PRUNING_INVOCATION": "stage-overhead"},
                             capture_output=True, text=True)
        wall = time.perf_counter() - t0
        phases = json.loads(out.read_text())
        if run.returncode != 0 or phases["exit_code"] != 0:
            sys.exit(f"{stage} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
        rows.append({"stage": stage, "wall_s": wall, "start_exit_s": wall - phases["in_process_s"],
                     "imports_s": phases["imports_s"], "tracking_s": phases["tracking_s"],
                     "work_s": phases["work_s"], "overhead_s": wall - phases["work_s"],
                     "largest_imports": _importtime(run.stderr)})
    stage_sum = sum(r["wall_s"] for r in rows)
    median = {k: statistics.median(r[k] for r in rows)
              for k in ("wall_s", "start_exit_s", "imports_s", "tracking_s", "work_s", "overhead_s")}
    return {"stages": len(rows), "repro_s": repro_s, "stage_commands_s": stage_sum,
            "dvc_per_stage_s": (repro_s - stage_sum) / len(rows), "median": median, "rows": rows}


def render(result: dict) -> str:
    m = result["median"]
    lines = [f"# Stage overhead: {result['label']}",
             f"<!-- provenance: commit {result['revision']}; machine: {result['machine']}; profile: the tests' tiny "
             f"pipeline; date: {result['when'][:10]} -->",  # what tools/results_page.py heads its block with
             f"machine: {result['machine']}; {result['when']}; revision {result['revision']}; load average before "
             f"{result['load_before']}", "",
             f"dvc repro of the tiny pipeline: {result['repro_s']:.1f} s for {result['stages']} stages "
             f"({result['repro_s'] / result['stages']:.2f} s a stage); the stages' commands run alone: "
             f"{result['stage_commands_s']:.1f} s; DVC's own share: {result['dvc_per_stage_s']:.2f} s a stage", "",
             f"median over stages: wall {m['wall_s']:.2f} s = start/exit {m['start_exit_s']:.2f} + imports "
             f"{m['imports_s']:.2f} + tracking {m['tracking_s']:.2f} + own work {m['work_s']:.2f}; "
             f"overhead (wall - own work) {m['overhead_s']:.2f} s", "",
             "| stage | wall s | start/exit | imports | tracking | own work | overhead "
             "| largest imports (-X importtime, s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        top = ", ".join(f"{name} {s:.2f}" for name, s in r["largest_imports"][:4])
        lines.append(f"| {r['stage']} | {r['wall_s']:.2f} | {r['start_exit_s']:.2f} | {r['imports_s']:.2f} | "
                     f"{r['tracking_s']:.2f} | {r['work_s']:.2f} | {r['overhead_s']:.2f} | {top} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="measure this git revision's code (default: the working tree)")
    parser.add_argument("--label", help="what the result is called in its heading (default: the revision)")
    parser.add_argument("--out", required=True, help="results JSON; a Markdown table is written beside it (.md)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.rev:
            tree = work / "tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), args.rev],
                           check=True)
        else:
            tree = REPO
        try:
            result = measure(tree, work)
        finally:
            if args.rev:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.rev or "HEAD"],
                              capture_output=True, text=True).stdout.strip() + ("" if args.rev else " (+ work tree)")
    result.update(label=args.label or revision, revision=revision, load_before=round(load, 2),
                  when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                          f"{_cpu_model()}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(result))
    print(render(result))


def _cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inner"]:
        _harness(sys.argv[2:])
    else:
        main()
