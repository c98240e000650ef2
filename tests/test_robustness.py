"""Bad settings, crashes and bad numbers, done for real through `dvc`: a clear error before any work, nothing
half-written, and a crashed training run that resumes to the result an uninterrupted one gets."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
import yaml
from mlflow.tracking import MlflowClient

from helpers import TRAINED_TRAIN, copy_finished, copy_repo, output_hashes, ran_stages, run, tiny_overrides, tool_env

pytestmark = [pytest.mark.dvc]


@pytest.fixture(scope="module")
def finished(tiny_pipeline, tmp_path_factory):
    return copy_finished(tiny_pipeline, tmp_path_factory.mktemp("robust") / "repo")


def logged_runs(repo) -> int:
    """How many MLflow runs the repo's local store holds."""
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    return len(client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=10_000))


def edit_params(repo, change):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    change(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.parametrize("change,message", [
    (lambda p: p["prune"].update(ration=0.9), r"prune.ration: unknown key; allowed: methods, ratio, base, options"),
    (lambda p: p["prune"].update(ratio=1.5), r"prune.ratio = 1.5 is not allowed; expected a number in \[0, 1\)"),
    (lambda p: p["prune"].update(methods=["magnitude", "prunier"]),
     r"prune.methods: unknown method 'prunier'; allowed: magnitude, l2_unit, kmeans_shared, kmeans_channel, none"),
    (lambda p: p["train"].update(epochs=0), r"train.epochs = 0 is not allowed; expected an integer >= 1"),
    (lambda p: p["prune"].update(base="rmsprop"), r"prune.base = 'rmsprop' is not among the trained optimizers"),
    (lambda p: p["train"].update(batch_size="big"),
     r"train.batch_size = 'big' is not allowed; expected an integer >= 1"),
    (lambda p: p["train"].update(optimizers=["sgd", "adamm"]),
     r"train.optimizers: unknown optimizer 'adamm'; allowed: .*adamax.*sgd"),
    (lambda p: p["train"].update(optimizers=[]), r"train.optimizers is empty"),
    (lambda p: p["prune"].update(methods=[]), r"prune.methods is empty; list at least one of"),
    (lambda p: p["sweep"].update(ratios=[0.5, 1.0]), r"sweep.ratios = \[0.5, 1.0\] is not allowed"),
    (lambda p: p["data"].update(source="no/such/cifar.tar.gz"),
     r"data.source 'no/such/cifar.tar.gz': .* does not exist"),
])
def test_bad_params_stop_dvc_repro_before_any_output_is_touched(finished, change, message):
    before, runs_before = output_hashes(finished), logged_runs(finished)
    original = (finished / "params.yaml").read_text()
    edit_params(finished, change)
    try:
        proc = run(["dvc", "repro"], finished, check=False)
    finally:
        (finished / "params.yaml").write_text(original)
    assert proc.returncode != 0
    assert re.search(message, proc.stderr + proc.stdout), proc.stderr + proc.stdout
    # Stopped before any work: only the check ran, no stage opened a run, no output changed.
    assert ran_stages(proc.stdout) == ["validate"], ran_stages(proc.stdout)
    assert logged_runs(finished) == runs_before
    assert output_hashes(finished) == before


def test_bad_exp_run_override_fails_before_any_work(finished):
    before, runs_before = output_hashes(finished), logged_runs(finished)
    try:
        proc = run(["dvc", "exp", "run", "-S", "+prune.ration=0.9"], finished, check=False)
    finally:
        run(["git", "checkout", "params.yaml"], finished)  # whatever fails below, the module's copy stays valid
    assert proc.returncode != 0 and "prune.ration: unknown key" in proc.stderr + proc.stdout
    assert ran_stages(proc.stdout) == ["validate"], ran_stages(proc.stdout)
    assert logged_runs(finished) == runs_before
    assert output_hashes(finished) == before
    assert "Running stage" not in run(["dvc", "repro"], finished).stdout  # the pipeline is intact and cached


def test_a_loss_that_blows_up_stops_within_one_epoch_naming_optimizer_and_lr(finished):
    before = output_hashes(finished)
    edit_params(finished, lambda p: p["train"]["optimizer_params"]["sgd"].update(lr=1e30))
    try:
        proc = run(["dvc", "repro", "train@sgd"], finished, check=False)
        after = output_hashes(finished)
    finally:  # the module's copy as it was, whatever fails below
        run(["git", "checkout", "params.yaml"], finished)
        run(["git", "checkout", "--", "metrics", "plots"], finished)
        run(["dvc", "checkout", "models/base/sgd.pt"], finished)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "in epoch 1 with optimizer 'sgd' (lr=1e+30)" in out, out[-2000:]
    # Only the failed stage's own outputs are gone (DVC removes them before running a stage); nothing else changed.
    own = ("models/base/sgd.pt", "metrics/train/sgd.json", "metrics/train/sgd.timing.json", "plots/train/sgd.csv",
           "plots/train/sgd.png")
    assert not set(own) & set(after)
    assert {k: v for k, v in before.items() if k not in own} == after
    assert output_hashes(finished) == before


def test_training_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path, tiny_source, trained_sgd):
    straight = trained_sgd  # the same settings, trained without interruption
    killed = copy_repo(tmp_path / "killed", tiny_overrides(tiny_source, train=TRAINED_TRAIN))
    run(["dvc", "repro", "download"], killed)
    proc = subprocess.Popen(["dvc", "repro", "train@sgd"], cwd=killed, env=tool_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    state = killed / "checkpoints" / "train" / "sgd.pt"
    deadline = time.time() + 300
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # the state appears when epoch 1 ends; the kill lands early in epoch 2
    assert state.exists(), proc.communicate()[0][-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "models" / "base" / "sgd.pt").exists()
    leftovers = [p for p in killed.rglob("*.tmp") if ".dvc" not in p.parts]
    assert leftovers == [], f"half-written files after the kill: {leftovers}"

    resumed = run(["dvc", "repro", "train@sgd"], killed)
    assert "resuming after epoch" in resumed.stdout + resumed.stderr
    got = json.loads((killed / "metrics" / "train" / "sgd.json").read_text())
    want = json.loads((straight / "metrics" / "train" / "sgd.json").read_text())
    assert got == want
    assert not state.exists()
    with open(killed / "plots" / "train" / "sgd.csv") as f:
        # header + every epoch, the replayed ones included
        assert len(f.read().strip().splitlines()) == 1 + TRAINED_TRAIN["epochs"]
    # The killed process could not end its MLflow run: the rerun marks it KILLED instead of leaving it RUNNING.
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=f"sqlite:///{killed / 'mlflow.db'}")
    exp = client.get_experiment_by_name("resnet20-cifar10")
    runs = client.search_runs([exp.experiment_id], "attributes.run_name = 'train-sgd'")
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"], [r.info.status for r in runs]
