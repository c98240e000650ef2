"""Shared fixtures: a tiny image archive, one tiny pipeline run and one trained base model, each built once per test
run (with pytest-xdist, by whichever worker asks first: helpers.build_once) and only read by the tests that take
them; tests that change something work in a copy (helpers.copy_finished). The helpers are in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import (
    TRAINED_TRAIN,
    build_once,
    copy_repo,
    make_image_folder,
    run,
    tar_gz,
    tiny_overrides,
    tool_env,
    tree_hashes,
)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before anything imports mlflow, also outside `make test`

# Modules whose tests take minutes each and share only session fixtures: handed out test by test. Every other
# module is one unit of work for pytest-xdist (its module-scoped fixtures are built once, on one worker).
SPREAD = {"test_experiments.py"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks added here
def pytest_collection_modifyitems(config, items):
    """How pytest-xdist hands the tests out (--dist loadgroup --no-loadscope-reorder keeps this order). The first
    worker that needs the shared tiny pipeline builds it while any other that needs it waits, so: one unit that
    needs it first (its worker starts the build at once), then every unit that does not, then the rest."""
    def unit(item):
        marks = [m.args[0] for m in item.iter_markers("xdist_group")]
        if marks:
            return marks[0]
        if item.path.name in SPREAD:
            return item.nodeid
        item.add_marker(pytest.mark.xdist_group(item.path.name))
        return item.path.name

    units: dict[str, list] = {}
    for item in items:
        units.setdefault(unit(item), []).append(item)
    needs = [u for u in units.values() if any("tiny_pipeline" in i.fixturenames for i in u)]
    rest = [u for u in units.values() if not any("tiny_pipeline" in i.fixturenames for i in u)]
    items[:] = [i for u in needs[:1] + rest + needs[1:] for i in u]


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") != "1":
        import torch
        torch.set_num_threads(1)  # workers share the cores: in-process tests would otherwise oversubscribe them


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of small-model tests (pytestmark = pytest.mark.usefixtures("one_thread")): on a
    busy 2-core machine a second thread made them ~5x slower (threads spin waiting for each other), and one thread
    fixes the fixture models' numbers across machines."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory) -> Path:
    """An image-folder .tar.gz: 10 classes x (30 train + 10 test) PNGs."""
    def build(root):
        tar_gz(make_image_folder(root / "cifar-tiny", train_per_class=30, test_per_class=10),
               root / "cifar-tiny.tar.gz")
    return build_once(tmp_path_factory, "tiny-source", build) / "cifar-tiny.tar.gz"


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory, tiny_source) -> Path:
    """One `dvc repro` of the whole pipeline on the tiny source, shared by the tests that only read its outputs.
    Read-only means every file: at the end of the run, anything a test changed in it (a file, the DVC cache,
    .dvc/tmp, mlflow.db) fails here. A test that runs `dvc` in it, even `dvc status`, takes a copy."""
    def build(repo):
        copy_repo(repo, tiny_overrides(tiny_source))
        # System metrics sampled every second (MLflow's default is 10 s), so the tiny stages record some.
        proc = run(["dvc", "repro"], repo, env=tool_env(MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1"))
        (repo / "repro.log").write_text(proc.stdout + proc.stderr)
    repo = build_once(tmp_path_factory, "pipeline", build)
    before = tree_hashes(repo)
    yield repo
    after = tree_hashes(repo)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a test wrote into the shared tiny pipeline: {changed[:20]}"


@pytest.fixture(scope="session")
def trained_sgd(tmp_path_factory, tiny_source) -> Path:
    """A tiny repo where `dvc repro train@sgd` ran with TRAINED_OVERRIDES (local MLflow store): the uninterrupted
    result that crashed and resumed runs must reach, and a trained base for the stages after it. Read-only; copy it."""
    def build(repo):
        copy_repo(repo, tiny_overrides(tiny_source, train=TRAINED_TRAIN))
        run(["dvc", "repro", "train@sgd"], repo)
    return build_once(tmp_path_factory, "trained-sgd", build)
