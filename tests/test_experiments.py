"""How users work: `dvc exp run -S` reruns only what a knob touches, queued sweeps in parallel land in one MLflow
store, a teammate pulls trained models from a DVC remote instead of retraining, and reruns are reproducible."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import time

import pytest
import yaml
from mlflow.tracking import MlflowClient

from cnn_pruning.datasets.catalog import CIFAR100_NORMALIZATION
from cnn_pruning.model import load_checkpoint
from helpers import REPO, copy_finished, make_cifar100_python, ran_stages, run, set_params, tar_gz

pytestmark = [pytest.mark.dvc]

UPSTREAM = {"download", "train@adam", "train@sgd", "train@adamax", "evaluate_base@adam", "evaluate_base@sgd",
            "evaluate_base@adamax", "sweep@magnitude", "sweep@l2_unit", "sweep@kmeans_shared", "sweep@kmeans_channel"}


def mlflow_runs(repo):
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("resnet20-cifar10")
    return client.search_runs([exp.experiment_id], max_results=5000)


def exp_show(repo) -> list[dict]:
    out = run(["dvc", "exp", "show", "--csv"], repo).stdout
    return list(csv.DictReader(io.StringIO(out)))


def test_exp_run_ratio_reruns_only_what_depends_on_it(tiny_pipeline, tmp_path):
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    proc = run(["dvc", "exp", "run", "-n", "ratio-09", "-S", "prune.ratio=0.9"], repo)
    ran = set(ran_stages(proc.stdout))
    assert not ran & UPSTREAM, f"reran stages that do not read prune.ratio: {sorted(ran & UPSTREAM)}"
    study = {r for r in ran if r.split("@")[0] in ("control", "point", "study_speed", "study")}
    assert not study, f"the study has its own ratios, yet prune.ratio reran {sorted(study)}"
    for m in ("magnitude", "l2_unit", "kmeans_shared", "kmeans_channel"):
        assert {f"prune@{m}", f"finetune@{m}", f"evaluate@{m}"} <= ran, sorted(ran)
    # The control ignores the ratio: its prune stage reruns (it declares the param) but writes the same bytes,
    # so its fine-tune and evaluation stay cached.
    assert "finetune@none" not in ran and "evaluate@none" not in ran
    assert "report" in ran
    assert json.loads((repo / "metrics" / "prune" / "kmeans_channel.json").read_text())["ratio"] == 0.9

    rows = {r["Experiment"]: r for r in exp_show(repo)}
    assert rows["ratio-09"]["prune.ratio"] == "0.9"
    columns = rows["ratio-09"].keys()
    for name in ("kmeans_channel.speedup", "kmeans_channel.acc", "magnitude.size", "l2_unit.macs"):
        assert any(c.endswith(name) for c in columns), f"no {name} column in dvc exp show: {sorted(columns)[:40]}"
    # `make exp`: the headline of both rows, whole, in 160 columns.
    os.symlink(REPO / ".venv", repo / ".venv")  # `make setup` is then up to date: nothing is installed
    table = run(["make", "-s", "exp"], repo).stdout
    lines = table.splitlines()
    assert max(map(len, lines)) <= 160 and "…" not in table, table
    assert "ratio-09" in table and "prune.ratio" in table and "kmeans_channel.acc" in table and "none.acc" in table
    assert "base-sgd.acc" not in table and "test_per_class" not in table
    speed = run(["make", "-s", "exp", "SHOW=speedup"], repo).stdout
    assert "l2_unit.speedup" in speed and max(map(len, speed.splitlines())) <= 160 and "…" not in speed, speed
    # The charts of two experiments side by side, still offline.
    run(["dvc", "plots", "diff", "HEAD", "ratio-09", "-o", "diff-html"], repo)
    html = (repo / "diff-html" / "index.html").read_text()
    assert "ratio-09" in html and "Inference speed vs pruning ratio" in html
    assert not re.search(r"<script[^>]*\bsrc=", html) and not re.search(r"<link[^>]*\bhref=", html)

    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    tagged = [r for r in mlflow_runs(repo) if r.data.tags.get("dvc.exp_name") == "ratio-09"]
    assert {r.info.run_name for r in tagged} >= {"prune-kmeans_channel@0.9", "finetune-magnitude@0.9", "report"}
    assert all(r.data.tags["mlflow.source.git.commit"] == head for r in tagged)
    assert all(r.data.tags.get("git.dirty") != "true" for r in tagged)
    # One parent run for the experiment, named after it; every stage that ran nests under it.
    [parent] = [r for r in tagged if r.data.tags["stage"] == "pipeline"]
    assert parent.info.run_name == "ratio-09" and parent.info.status == "FINISHED"
    assert parent.data.params["prune.ratio"] == "0.9"
    assert {r.data.tags.get("mlflow.parentRunId") for r in tagged if r is not parent} == {parent.info.run_id}


def test_queued_sweep_runs_in_parallel_into_one_store(tiny_pipeline, tmp_path):
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    # One method keeps this test short; the mechanism is the same for all.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["prune"]["methods"] = ["kmeans_channel"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "one method"], repo)
    before = len(mlflow_runs(repo))

    run(["dvc", "exp", "run", "--queue", "-S", "prune.ratio=0.3,0.5,0.7,0.9"], repo)
    run(["dvc", "queue", "start", "-j", "2"], repo)
    deadline = time.time() + 900
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], repo).stdout
        if "Running" not in status and "Queued" not in status:
            break
        time.sleep(5)
    assert "Failed" not in status, status
    assert status.count("Success") == 4, status

    rows = [r for r in exp_show(repo) if r.get("prune.ratio") in ("0.3", "0.5", "0.7", "0.9") and r["Experiment"]]
    assert sorted(r["prune.ratio"] for r in rows) == ["0.3", "0.5", "0.7", "0.9"]
    names = {r["Experiment"] for r in rows}
    runs = mlflow_runs(repo)
    new = [r for r in runs if r.data.tags.get("dvc.exp_name") in names]
    assert len(runs) - before == len(new), "a queued run logged without its experiment name"
    assert all(r.info.status == "FINISHED" for r in new)
    for row in rows:  # every experiment's runs are in the one store, none lost to "database is locked"
        mine = [r for r in new if r.data.tags["dvc.exp_name"] == row["Experiment"]]
        got = sorted(r.info.run_name for r in mine)
        ratio = row["prune.ratio"]
        if ratio == "0.5":  # the baseline's own ratio: everything is cached, nothing runs or logs, not even a parent
            assert got == [], got
        else:  # one parent per queued experiment, named after it, holding exactly that experiment's stage runs
            assert got == sorted([row["Experiment"], f"evaluate-kmeans_channel@{ratio}",
                                  f"finetune-kmeans_channel@{ratio}", f"prune-kmeans_channel@{ratio}", "report"]), got
            [parent] = [r for r in mine if r.data.tags["stage"] == "pipeline"]
            assert {r.data.tags.get("mlflow.parentRunId") for r in mine if r is not parent} == {parent.info.run_id}
    # Two workers really ran side by side: two experiments were in flight at once (first run start to last end).
    spans = {}
    for r in new:
        start, end = spans.get(r.data.tags["dvc.exp_name"], (r.info.start_time, r.info.end_time))
        spans[r.data.tags["dvc.exp_name"]] = (min(start, r.info.start_time), max(end, r.info.end_time))
    assert any(a != b and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1] for a in spans for b in spans), \
        f"no two experiments overlapped in time: {spans}"
    # The timing files say they were taken next to other queue workers (not comparable with a quiet run).
    for row in rows:
        if row["prune.ratio"] != "0.5":
            ev = json.loads(run(["git", "show", f"{row['rev']}:metrics/evaluate/kmeans_channel.json"], repo).stdout)
            assert ev["dvc_queue_workers"] >= 1 and ev["ratio"] == float(row["prune.ratio"])
    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert {r.data.tags["mlflow.source.git.commit"] for r in new} == {head}
    assert not any(r.data.tags.get("mlflow.source.git.branch") == "HEAD" or r.data.tags.get("git.dirty") == "true"
                   for r in new)


def test_relative_data_source_is_found_from_a_temp_experiment_copy(tiny_pipeline, tiny_source, tmp_path):
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    shutil.copy2(tiny_source, tmp_path / "beside.tar.gz")  # next to the project, as ../shared/data/... is
    # --temp runs in .dvc/tmp/exps/..., where ../beside.tar.gz does not exist: only DVC_ROOT finds it.
    proc = run(["dvc", "exp", "run", "--temp", "-n", "rel-src", "-S", "data.source=../beside.tar.gz", "download"], repo)
    assert ran_stages(proc.stdout) == ["validate", "download"], proc.stdout
    rev = next(r["rev"] for r in exp_show(repo) if r["Experiment"] == "rel-src")
    summary = json.loads(run(["git", "show", f"{rev}:metrics/data.json"], repo).stdout)
    assert summary["source"] == "../beside.tar.gz" and summary["train_images"] + summary["val_images"] == 300


def test_a_teammate_pulls_models_from_a_remote_instead_of_retraining(tiny_pipeline, tmp_path):
    a = copy_finished(tiny_pipeline, tmp_path / "a")
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "shared", str(remote)], a)
    run(["git", "commit", "-qam", "add remote"], a)
    run(["dvc", "push"], a)
    b = tmp_path / "b"
    run(["git", "clone", "-q", str(a), str(b)], tmp_path)
    run(["dvc", "pull"], b)
    status = run(["dvc", "status"], b).stdout
    assert "up to date" in status.lower(), status
    assert ran_stages(run(["dvc", "repro"], b).stdout) == []
    for model in sorted((a / "models").rglob("*")):
        if model.is_file():
            assert (b / model.relative_to(a)).read_bytes() == model.read_bytes(), model


def test_same_params_and_seed_give_identical_metrics(tiny_pipeline, tmp_path):
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    # Retrain the base model and redo every method from scratch, in dependency order.
    methods = ("magnitude", "l2_unit", "kmeans_shared", "kmeans_channel")
    targets = ["train@sgd", *(f"{stage}@{m}" for m in methods for stage in ("prune", "finetune"))]
    proc = run(["dvc", "repro", "--force", "--single-item", *targets], repo)
    assert ran_stages(proc.stdout) == targets
    changed = run(["git", "status", "--porcelain", "--", "metrics/train", "metrics/prune", "metrics/finetune",
                   "plots/train", "plots/finetune"], repo).stdout.splitlines()
    changed = [line for line in changed if not line.endswith(".timing.json") and "plots/" not in line]
    assert changed == [], f"metrics differ after an identical rerun: {changed}"
    # The models are bit-identical too.
    for path in ["models/base/sgd.pt", *(f"models/{d}/{m}.pt" for d in ("pruned", "finetuned") for m in methods)]:
        assert (repo / path).read_bytes() == (tiny_pipeline / path).read_bytes(), path


def test_a_method_option_added_with_plus_reruns_only_that_method(tiny_pipeline, tmp_path):
    """params.yaml holds `magnitude: {}` (the defaults live in the method's code); `-S +key=value` adds an option,
    and only that method's stages rerun."""
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    proc = run(["dvc", "exp", "run", "-n", "mag-layer", "-S", "+prune.options.magnitude.scope=layer"], repo)
    ran = set(ran_stages(proc.stdout))
    assert ran == {"validate", "prune@magnitude", "finetune@magnitude", "evaluate@magnitude", "sweep@magnitude",
                   "report", "point@magnitude-0.5-0-oneshot", "point@magnitude-0.5-1-oneshot",
                   "study_speed@magnitude-0.5", "study"}, sorted(ran)
    info = json.loads((repo / "metrics" / "prune" / "magnitude.info.json").read_text())
    assert info["scope"] == "layer"
    assert info["options"] == {"scope": "layer", "include_stem": False, "include_fc": False}  # the rest: code


def test_gradual_pruning_and_distillation_rerun_only_fine_tuning_and_the_new_study_points(tiny_pipeline, tmp_path):
    """prune.steps, which one-shot pruning does not use, reruns no fine-tune and no point; prune.schedule=gradual
    moves pruning into the finetune stages (the prune stages rerun to record the schedule, and still report the
    one-shot model); finetune.distill reruns every fine-tune; a new study variant runs only its own points."""
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    methods = ("magnitude", "l2_unit", "kmeans_shared", "kmeans_channel")
    # prune.steps alone, with the one-shot schedule: the prune stages rerun (they declare it) and write the bytes
    # they wrote before, so no fine-tune, evaluation or study point runs.
    proc = run(["dvc", "exp", "run", "-n", "steps-7", "-S", "prune.steps=7"], repo)
    ran = set(ran_stages(proc.stdout))
    assert {f"prune@{m}" for m in methods} <= ran and "variant@oneshot" in ran, sorted(ran)
    assert not {s for s in ran if s.split("@")[0] in ("finetune", "evaluate", "point", "control")}, sorted(ran)
    proc = run(["dvc", "exp", "run", "-n", "gradual-kd", "-S", "prune.schedule=gradual", "-S", "prune.steps=3",
                "-S", "finetune.distill=true", "-S", "study.variants=[oneshot,gradual_distill]"], repo)
    ran = set(ran_stages(proc.stdout))
    assert {f"finetune@{m}" for m in (*methods, "none")} | {f"evaluate@{m}" for m in methods} <= ran, sorted(ran)
    assert {f"prune@{m}" for m in methods} <= ran and not ran & UPSTREAM, sorted(ran)
    study = study_stages(ran)
    assert study == {"point@magnitude-0.5-0-gradual_distill", "point@magnitude-0.5-1-gradual_distill",
                     "point@random-0.5-0-gradual_distill", "point@random-0.5-1-gradual_distill", "study"}, sorted(ran)
    assert {"variant@oneshot", "variant@gradual_distill"} <= ran  # oneshot's file: the same bytes, points cached
    assert json.loads((repo / "results" / "study" / "variants" / "gradual_distill.json").read_text()) == {
        "schedule": {"schedule": "gradual", "steps": 3, "prune_until": 0.5},
        "distill": {"alpha": 0.9, "temperature": 4.0}}
    for m in methods:  # the end of the schedule: the one-shot model's architecture and counts
        tuned, meta = load_checkpoint(repo / "models" / "finetuned" / f"{m}.pt")
        oneshot, _ = load_checkpoint(repo / "models" / "pruned" / f"{m}.pt")
        assert tuned.spec()["inner_widths"] == oneshot.spec()["inner_widths"], m
        assert tuned.spec()["shared"] == oneshot.spec()["shared"], m
        assert meta["schedule"] == "gradual" and meta["distill"] is True and meta["pruning"]["step"] == 3, m
        history = list(csv.DictReader(open(repo / "plots" / "finetune" / f"{m}.csv")))
        assert float(history[-1]["prune_ratio"]) == 0.5 and float(history[-1]["teacher_seconds"]) > 0
        timing = json.loads((repo / "metrics" / "finetune" / f"{m}.timing.json").read_text())
        assert 0 < timing["teacher_seconds_total"] < timing["seconds_total"]
    _, control = load_checkpoint(repo / "models" / "finetuned" / "none.pt")
    assert control["schedule"] == "oneshot" and control["distill"] is False  # the control is the teacher itself
    remedies = list(csv.DictReader(open(repo / "results" / "study" / "remedies.csv")))
    assert [(r["method"], r["variant"]) for r in remedies] == [("magnitude", "gradual_distill"),
                                                               ("random", "gradual_distill")]
    assert "Gradual pruning and distillation against one-shot" in (repo / "reports" / "study.md").read_text()
    assert (repo / "plots" / "study" / "variants.png").is_file()


def test_the_random_baselines_flow_through_every_stage(tiny_pipeline, tmp_path):
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    proc = run(["dvc", "exp", "run", "-n", "baselines", "-S", "prune.methods=[none,magnitude,random]",
                "-S", "sweep.methods=[magnitude,random_channel]"], repo)
    ran = set(ran_stages(proc.stdout))
    assert {"prune@random", "finetune@random", "evaluate@random", "sweep@random_channel", "report"} <= ran
    assert not ran & {"download", "train@sgd", "prune@magnitude", "sweep@magnitude"}, sorted(ran)
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    assert {"none", "magnitude", "random"} <= summary.keys()
    prune_metrics = {m: json.loads((repo / "metrics" / "prune" / f"{m}.json").read_text())
                     for m in ("magnitude", "random")}
    assert prune_metrics["random"]["nonzero_params"] == prune_metrics["magnitude"]["nonzero_params"]
    assert "random_channel" in (repo / "reports" / "summary.md").read_text()


# ---------------------------------------------------------------------------------------------- depth and dataset

def all_stages(repo) -> set[str]:
    """Every stage that reads the data or a model: all but variant@<name> (settings only, read from params)."""
    listed = {line.split()[0] for line in run(["dvc", "stage", "list"], repo).stdout.splitlines() if line.strip()}
    return {s for s in listed if not s.startswith("variant@")}


# Fewer models than the tiny pipeline (a rerun of everything costs ~4 min there, mostly stage start-ups), yet one
# of each kind of stage: a base model, the control and a channel method, a sweep, a study point and the reports.
ONE_OF_EACH = ["-S", "train.optimizers=[sgd]", "-S", "prune.methods=[none,l2_unit]", "-S", "sweep.methods=[l2_unit]",
               "-S", "study.methods=[magnitude]", "-S", "study.seeds=[0]"]


def test_exp_run_depth_56_reruns_train_and_everything_after_it(tiny_pipeline, tmp_path):
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    proc = run(["dvc", "exp", "run", "-n", "depth-56", "-S", "model.depth=56", *ONE_OF_EACH], repo)
    ran = set(ran_stages(proc.stdout))
    assert ran == all_stages(repo) - {"download"}, sorted(all_stages(repo) - {"download"} - ran)
    base, _ = load_checkpoint(repo / "models" / "base" / "sgd.pt")
    pruned, _ = load_checkpoint(repo / "models" / "finetuned" / "l2_unit.pt")
    assert (base.depth, len(base.blocks), pruned.depth) == (56, 27, 56)
    assert "ResNet56 on CIFAR-10" in (repo / "reports" / "summary.md").read_text()
    assert "ResNet56 on CIFAR-10" in (repo / "reports" / "study.md").read_text()
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("resnet56-cifar10").experiment_id])
    assert {r.data.tags.get("dvc.exp_name") for r in runs} == {"depth-56"}
    assert {"depth-56", "train-sgd", "finetune-l2_unit@0.5", "report"} <= {r.info.run_name for r in runs}
    assert {r.data.params["depth"] for r in runs if r.info.run_name.startswith(("train-", "finetune-"))} == {"56"}


def test_exp_run_cifar100_reruns_everything_after_download_on_100_classes(tiny_pipeline, tmp_path):
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    source = tar_gz(make_cifar100_python(tmp_path / "c100", 3, 1), tmp_path / "cifar-100-python.tar.gz")
    proc = run(["dvc", "exp", "run", "-n", "c100", "-S", "data.name=cifar100", "-S", f"data.source={source}",
                *ONE_OF_EACH], repo)
    ran = set(ran_stages(proc.stdout))
    assert ran == all_stages(repo), sorted(all_stages(repo) - ran)
    data = json.loads((repo / "metrics" / "data.json").read_text())
    assert data["name"] == "cifar100" and len(data["classes"]) == 100 and data["test_images"] == 100
    assert (repo / "data" / "cifar100.npz").exists()
    model, _ = load_checkpoint(repo / "models" / "finetuned" / "l2_unit.pt")
    assert model.num_classes == 100 and model.normalization == CIFAR100_NORMALIZATION
    assert "ResNet20 on CIFAR-100" in (repo / "reports" / "summary.md").read_text()
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    assert client.get_experiment_by_name("resnet20-cifar100") is not None


# ---------------------------------------------------------------------------------------------- the study
# The tiny pipeline's study (conftest.TINY_OVERRIDES): magnitude and random at ratio 0.5, seeds 0 and 1.

def study_stages(ran) -> set[str]:
    return {r for r in ran if r.split("@")[0] in ("control", "point", "study_speed", "study")}


def test_the_study_caches_per_point_new_ratios_and_seeds_run_only_new_points(tiny_pipeline, tmp_path):
    repo = copy_finished(tiny_pipeline, tmp_path / "repo")
    proc = run(["dvc", "exp", "run", "-n", "ratio", "-S", "study.ratios=[0.5,0.9]"], repo)
    ran = set(ran_stages(proc.stdout))
    assert ran == {"validate", "point@magnitude-0.9-0-oneshot", "point@magnitude-0.9-1-oneshot",
                   "point@random-0.9-0-oneshot", "point@random-0.9-1-oneshot", "study_speed@magnitude-0.9",
                   "study_speed@random-0.9", "study"}, sorted(ran)
    proc = run(["dvc", "exp", "run", "-n", "seed", "-S", "study.ratios=[0.5,0.9]", "-S", "study.seeds=[0,1,2]"],
               repo)
    ran = set(ran_stages(proc.stdout))
    assert ran == {"validate", "control@2", "point@magnitude-0.5-2-oneshot", "point@magnitude-0.9-2-oneshot",
                   "point@random-0.5-2-oneshot", "point@random-0.9-2-oneshot", "study"}, sorted(ran)
    summary = list(csv.DictReader(open(repo / "results" / "study" / "summary.csv")))
    assert [(r["series"], r["ratio"], r["n"]) for r in summary] == [
        ("none", "0.0", "3"), ("magnitude", "0.5", "3"), ("magnitude", "0.9", "3"), ("random", "0.5", "3"),
        ("random", "0.9", "3")]
    per_method = list(csv.DictReader(open(repo / "results" / "study" / "methods" / "random.csv")))
    assert sorted((r["ratio"], r["seed"]) for r in per_method) == [(r, s) for r in ("0.5", "0.9") for s in "012"]
    # The random baseline zeroes exactly magnitude's count at each ratio.
    points = {p.stem: json.loads(p.read_text()) for p in (repo / "results" / "study" / "points").glob("*.json")}
    for ratio in (0.5, 0.9):
        assert points[f"random-{ratio}-0-oneshot"]["nonzero_params"] == \
            points[f"magnitude-{ratio}-0-oneshot"]["nonzero_params"]
    # A fine-tune knob reruns every point and the control, never download or training: what `dvc status` says
    # is out of date is what `dvc repro` would run.
    set_params(repo, {"finetune": {"epochs": 2}})
    would = set(json.loads(run(["dvc", "status", "--json"], repo).stdout))
    assert not would & UPSTREAM, sorted(would & UPSTREAM)
    assert {"control@0", "control@2", "point@random-0.9-2-oneshot", "finetune@magnitude"} <= would
    assert not {s for s in would if s.startswith("study_speed@")}  # speed depends on the architecture alone


def test_the_study_answers_per_method_and_logs_each_point(tiny_pipeline):
    headline = json.loads((tiny_pipeline / "metrics" / "study.json").read_text())
    assert set(headline) == {"control", "magnitude", "random"} and headline["control"]["n"] == 2
    assert {"largest_ratio_within_tolerance"} == set(headline["magnitude"])
    report = (tiny_pipeline / "reports" / "study.md").read_text()
    assert "| magnitude | 0.5 | 2 |" in report and "Not distinguishable" in report
    assert sorted(p.name for p in (tiny_pipeline / "plots" / "study").iterdir()) == [
        "accuracy_vs_macs.png", "accuracy_vs_ratio.png", "accuracy_vs_size.png", "accuracy_vs_speedup.png"]
    runs = {r.info.run_name: r for r in mlflow_runs(tiny_pipeline)}
    point = runs["point-random@0.5-s1"]
    assert point.data.tags["stage"] == "study_point" and "test_acc" in point.data.metrics
    assert {k: point.data.params[k] for k in ("method", "ratio", "seed", "variant", "base_optimizer")} == {
        "method": "random", "ratio": "0.5", "seed": "1", "variant": "oneshot", "base_optimizer": "sgd"}
    assert point.data.params["options.seed"] == "1" and point.data.params["finetune.seed"] == "1"
    control = runs["point-none-s0"].data.params
    assert control["ratio"] == "0.0" and control["seed"] == "0" and "variant" not in control
    assert "study_speed" == runs["speed-random@0.5"].data.tags["stage"]
