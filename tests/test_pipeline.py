"""End to end: the real `dvc repro` on a tiny dataset, in a temporary git+DVC copy of the repo.

The session-scoped `tiny_pipeline` fixture (conftest.py) runs the whole pipeline once; the tests here only read
its outputs. Tests that must change something make their own copy.
"""

from __future__ import annotations

import csv
import json
import re

import pytest
import torch
from mlflow.tracking import MlflowClient

from cnn_pruning.model import load_checkpoint
from cnn_pruning.model.measure import count_parameters
from helpers import copy_of, output_hashes, run

pytestmark = [pytest.mark.dvc]

OPTIMIZERS = ("adam", "sgd", "adamax")
METHODS = ("none", "magnitude", "l2_unit", "kmeans_shared", "kmeans_channel")


def read_json(path):
    return json.loads(path.read_text())


def test_download_writes_the_canonical_data_and_counts(tiny_pipeline):
    summary = read_json(tiny_pipeline / "metrics" / "data.json")
    assert summary["train_images"] + summary["val_images"] == 300 and summary["test_images"] == 100
    assert summary["val_per_class"] == [5] * 10


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_train_outputs_per_optimizer(tiny_pipeline, opt):
    metrics = read_json(tiny_pipeline / "metrics" / "train" / f"{opt}.json")
    assert {"test_acc", "best_val_acc", "last_val_acc", "params", "epochs", "optimizer"} <= metrics.keys()
    assert metrics["params"] == 269_722 and metrics["epochs"] == 1 and 0 <= metrics["test_acc"] <= 1
    timing = read_json(tiny_pipeline / "metrics" / "train" / f"{opt}.timing.json")
    assert timing["seconds_per_epoch_median"] > 0 and timing["device"] == "cpu"
    with open(tiny_pipeline / "plots" / "train" / f"{opt}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1"]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    model, meta = load_checkpoint(tiny_pipeline / "models" / "base" / f"{opt}.pt")
    assert meta["optimizer"] == opt
    assert not (tiny_pipeline / "checkpoints" / "train" / f"{opt}.pt").exists()  # resume state removed when done


def test_mlflow_holds_one_run_per_stage_with_tags_and_epoch_metrics(tiny_pipeline):
    client = MlflowClient(tracking_uri=f"sqlite:///{tiny_pipeline / 'mlflow.db'}")
    exp = client.get_experiment_by_name("resnet20-cifar10")
    assert exp is not None and exp.artifact_location.startswith((tiny_pipeline / "mlartifacts").as_uri())
    everything = client.search_runs([exp.experiment_id], max_results=1000)
    commit = run(["git", "rev-parse", "HEAD"], tiny_pipeline).stdout.strip()
    # One `dvc repro`: one parent run, named after the commit, every stage run nested under it.
    [parent] = [r for r in everything if r.data.tags["stage"] == "pipeline"]
    assert parent.info.run_name == f"repro-{commit[:7]}" and parent.info.status == "FINISHED"
    assert parent.data.params["prune.ratio"] == "0.5" and parent.data.params["train.epochs"] == "1"
    runs = [r for r in everything if r is not parent]
    assert {r.data.tags.get("mlflow.parentRunId") for r in runs} == {parent.info.run_id}
    names = sorted(r.info.run_name for r in runs)
    assert {"download", "train-adam", "train-sgd", "train-adamax", "report"} <= set(names)
    for m in METHODS[1:]:
        assert {f"prune-{m}@0.5", f"finetune-{m}@0.5", f"evaluate-{m}@0.5"} <= set(names)
    assert {"prune-none", "finetune-none", "evaluate-none"} <= set(names)  # the control has no ratio
    assert {f"sweep-{m}" for m in METHODS[1:]} <= set(names)
    assert len(names) == len(set(names)), f"a stage logged twice: {names}"
    for r in runs:
        assert r.info.status == "FINISHED"
        tags = r.data.tags
        assert tags["mlflow.source.git.commit"] == commit
        assert {"stage", "version.torch", "version.dvc", "version.mlflow", "dvc.exp_name"} <= tags.keys()
        if r.info.run_name not in ("report", "study"):  # every stage that loads the dataset says where it came from
            source_md5 = json.loads((tiny_pipeline / "metrics" / "data.json").read_text())["source_md5"]
            assert tags["data.source"].endswith("cifar-tiny.tar.gz") and tags["data.source_md5"] == source_md5
    by_name = {r.info.run_name: r for r in runs}
    magnitude = by_name["prune-magnitude@0.5"]
    assert magnitude.data.params["options.scope"] == "global"  # the options in effect, defaults from the code
    sgd = by_name["train-sgd"]
    assert sgd.data.tags["optimizer"] == "sgd" and sgd.data.tags["device"] == "cpu"
    assert sgd.data.tags["model_md5"] == _dvc_md5(tiny_pipeline, "models/base/sgd.pt")
    assert sgd.data.params["optimizer_params.lr"] == "0.1" and sgd.data.params["epochs"] == "1"
    assert "optimizer_params.betas" not in sgd.data.params  # only this optimizer's own settings
    history = client.get_metric_history(sgd.info.run_id, "val_acc")
    assert [m.step for m in history] == [1]
    assert {"history.csv", "curves.png", "metrics.json", "timing.json"} <= {
        a.path for a in client.list_artifacts(sgd.info.run_id)}


def test_mlflow_runs_compare_by_params_and_name_their_datasets(tiny_pipeline):
    client = MlflowClient(tracking_uri=f"sqlite:///{tiny_pipeline / 'mlflow.db'}")
    exp = client.get_experiment_by_name("resnet20-cifar10")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id], max_results=1000)}
    # The coordinates of a run are params (Compare plots over them), the same on every stage that has them.
    coords = {"method": "magnitude", "ratio": "0.5", "base_optimizer": "sgd", "depth": "20", "dataset": "cifar10"}
    for name in ("prune-magnitude@0.5", "finetune-magnitude@0.5", "evaluate-magnitude@0.5"):
        assert coords.items() <= runs[name].data.params.items(), name
    assert runs["finetune-magnitude@0.5"].data.params["seed"] == "0"
    assert runs["finetune-none"].data.params["ratio"] == "0.0" and runs["finetune-none"].data.params["method"] == "none"
    assert runs["report"].data.params["ratio"] == "0.5"
    # Constants of the machine or run are tags, not one-point metrics; results are metrics.
    for r in runs.values():
        assert not {"threads", "load_avg_1m", "dvc_queue_workers", "batch_size", "ratio"} & r.data.metrics.keys(), \
            r.info.run_name
    evaluate = runs["evaluate-magnitude@0.5"]
    assert {"test_acc", "speedup", "size_ratio", "macs"} <= evaluate.data.metrics.keys()
    assert evaluate.data.tags["threads"] and evaluate.data.tags["runtime"] == "pytorch"
    # Artifacts have the same names in every run of a stage, so Compare lines them up.
    finetuned = [r for n, r in runs.items() if n.startswith("finetune-")]
    listed = [sorted(a.path for a in client.list_artifacts(r.info.run_id)) for r in finetuned]
    assert all(names == listed[0] for names in listed) and "metrics.json" in listed[0]
    # One dataset per split, each with its own digest and context; the stage logs the splits it reads.
    train = runs["train-sgd"].inputs.dataset_inputs
    contexts = {d.dataset.name: {t.key: t.value for t in d.tags}["mlflow.data.context"] for d in train}
    assert contexts == {"cifar10-train": "training", "cifar10-val": "validation", "cifar10-test": "test"}
    assert len({d.dataset.digest for d in train}) == 3
    sizes = {d.dataset.name: json.loads(d.dataset.profile)["num_rows"] for d in train}
    assert sizes == {"cifar10-train": 250, "cifar10-val": 50, "cifar10-test": 100}
    assert all(d.dataset.source_type == "local" and "cifar-tiny.tar.gz" in d.dataset.source for d in train)
    assert [d.dataset.name for d in runs["evaluate-magnitude@0.5"].inputs.dataset_inputs] == ["cifar10-test"]
    # System metrics (sampled every second in this fixture) on the runs that train.
    trained = [r for n, r in runs.items() if n.startswith(("train-", "finetune-"))]
    assert any("system/cpu_utilization_percentage" in r.data.metrics for r in trained)
    assert not any(k.startswith("system/") for k in runs["evaluate-magnitude@0.5"].data.metrics)
    # The report's table is an MLflow table.
    tables = [a.path for a in client.list_artifacts(runs["report"].info.run_id, "tables")]
    assert sorted(tables) == ["tables/deploy.json", "tables/summary.json"]


def test_every_evaluated_model_is_an_onnx_file_and_an_mlflow_model(tiny_pipeline):
    client = MlflowClient(tracking_uri=f"sqlite:///{tiny_pipeline / 'mlflow.db'}")
    exp = client.get_experiment_by_name("resnet20-cifar10")
    runs = {r.info.run_id: r.info.run_name for r in client.search_runs([exp.experiment_id], max_results=1000)}
    logged = client.search_logged_models([exp.experiment_id])
    expected = {f"evaluate-{m}@0.5" for m in METHODS[1:]} | {"evaluate-none"} | {
        f"evaluate_base-{o}" for o in OPTIMIZERS}
    assert sorted(runs[m.source_run_id] for m in logged) == sorted(expected)
    for m in logged:
        assert str(m.status).endswith("READY")
        assert {"test_acc", "speedup", "size_ratio"} <= {x.key for x in m.metrics}
    for name in (*METHODS, *(f"base-{o}" for o in OPTIMIZERS)):
        assert (tiny_pipeline / "models" / "onnx" / f"{name}.onnx").stat().st_size > 10_000


def _dvc_md5(repo, out):
    lock = (repo / "dvc.lock").read_text()
    import yaml
    for stage in yaml.safe_load(lock)["stages"].values():
        for o in stage.get("outs", []):
            if o["path"] == out:
                return o["md5"]
    raise KeyError(out)


def test_second_repro_runs_nothing(tiny_pipeline, tmp_path):
    repo = copy_of(tiny_pipeline, tmp_path / "repo")  # even `dvc status` writes .dvc/tmp
    before = output_hashes(repo)
    proc = run(["dvc", "repro"], repo)
    assert "Running stage" not in proc.stdout, proc.stdout
    status = run(["dvc", "status"], repo).stdout
    assert "up to date" in status.lower() or status.strip() == "", status
    assert output_hashes(repo) == before


def test_plain_plots_show_renders_every_chart_offline_in_a_fresh_clone(tiny_pipeline, tmp_path):
    """tiny_pipeline holds only git's files (no `make setup` ran in it): plain `dvc plots show` finds the committed
    page template and writes dvc_plots/index.html with the libraries inline, every chart titled in words."""
    repo = copy_of(tiny_pipeline, tmp_path / "repo")
    assert not (repo / "tools" / "vega" / "node_modules").exists()
    proc = run(["dvc", "plots", "show"], repo)
    assert "dvc_plots/index.html" in proc.stdout
    html = (repo / "dvc_plots" / "index.html").read_text()
    for title in ("validation accuracy per epoch, by optimizer", "Fine-tuning after pruning at ratio 0.5",
                  "Inference speed vs pruning ratio (pytorch, batches of 32 images)",
                  "Nonzero parameters vs pruning ratio", "Compact export size vs pruning ratio",
                  "Test accuracy vs pruning ratio",
                  "Test accuracy vs measured speedup", "The study: accuracy after fine-tuning vs pruning ratio",
                  "The study: accuracy after fine-tuning vs MACs reduction", "vs measured speedup", "vs stored size"):
        assert title in html, title
    assert "sweep.batch_size" not in html and "(fraction)" not in html  # titles in words, accuracy in percent
    assert '"field": "series"' in html and '"name": "smooth"' not in html  # a colour per line, no smoothing slider
    # No CDN: every script is inline (the Vega "$schema" URL string inside a spec is fine).
    assert not re.search(r"<script[^>]*\bsrc=", html) and not re.search(r"<link[^>]*\bhref=", html)
    assert "vegaEmbed" in html and "vega@5" in html
    assert "static/accuracy_vs_speedup.png" in html or "accuracy_vs_speedup.png" in html


@pytest.mark.parametrize("method", METHODS)
def test_prune_and_finetune_metrics_per_method(tiny_pipeline, method):
    pruned = read_json(tiny_pipeline / "metrics" / "prune" / f"{method}.json")
    assert {"base_val_acc", "base_test_acc", "val_acc", "test_acc", "params", "nonzero_params", "distinct_filters",
            "macs", "ratio", "method", "base"} <= pruned.keys()
    assert pruned["ratio"] == (None if method == "none" else 0.5) and pruned["base"] == "sgd"
    # The counts are the pruned model's own, and the base's accuracy is the one its evaluation measured.
    model, _ = load_checkpoint(tiny_pipeline / "models" / "pruned" / f"{method}.pt")
    counts = count_parameters(model)
    assert (pruned["params"], pruned["nonzero_params"]) == (counts["params"], counts["nonzero_params"])
    if method in ("magnitude", "l2_unit"):  # zeroed weights stay stored: fewer nonzeros than params
        assert pruned["nonzero_params"] < pruned["params"]
    assert 0 < pruned["macs"] <= read_json(tiny_pipeline / "metrics" / "prune" / "none.json")["macs"]
    assert pruned["base_test_acc"] == read_json(tiny_pipeline / "metrics" / "evaluate" / "base-sgd.json")["test_acc"]
    if method == "none":
        assert (pruned["val_acc"], pruned["test_acc"]) == (pruned["base_val_acc"], pruned["base_test_acc"])
    tuned = read_json(tiny_pipeline / "metrics" / "finetune" / f"{method}.json")
    assert tuned["epochs"] == 1 and tuned["method"] == method
    with open(tiny_pipeline / "plots" / "finetune" / f"{method}.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]


def test_what_each_method_promised_is_true_of_the_fine_tuned_models(tiny_pipeline):
    models = {m: load_checkpoint(tiny_pipeline / "models" / "finetuned" / f"{m}.pt")[0] for m in METHODS}
    base = load_checkpoint(tiny_pipeline / "models" / "base" / "sgd.pt")[0]
    assert count_parameters(models["none"])["params"] == count_parameters(base)["params"] == 269_722
    # magnitude: exactly round(0.5 x prunable) zeros survived fine-tuning
    mag = models["magnitude"]
    prunable = [p for n, p in mag.named_parameters() if n in mag.masks]
    n = sum(p.numel() for p in prunable)
    assert sum(int((p == 0).sum()) for p in prunable) == round(0.5 * n)
    # l2_unit and kmeans_channel: physically narrower blocks
    assert models["l2_unit"].inner_widths == [8] * 3 + [16] * 3 + [32] * 3
    assert models["kmeans_channel"].inner_widths == [8] * 3 + [16] * 3 + [32] * 3
    # kmeans_shared: every conv holds exactly k distinct filters after fine-tuning
    shared = models["kmeans_shared"]
    for name, k in shared.spec()["shared"].items():
        w = shared.get_submodule(name).weight.detach().flatten(1)
        assert len(torch.unique(w, dim=0)) == k


@pytest.mark.parametrize("name", ["base-adam", "base-sgd", "base-adamax", *METHODS])
def test_evaluate_metrics(tiny_pipeline, name):
    ev = read_json(tiny_pipeline / "metrics" / "evaluate" / f"{name}.json")
    assert {"test_acc", "per_class_acc", "params", "nonzero_params", "distinct_filters", "macs", "size_bytes",
            "size_ratio", "speedup", "speedup_b1", "images_per_s", "ms_per_batch", "runtime", "threads", "device",
            "method", "ratio", "base", "base_test_acc"} <= ev.keys()
    assert len(ev["per_class_acc"]) == 10 and ev["runtime"] == "pytorch" and ev["batch_size"] == 32
    assert (tiny_pipeline / "models" / "compact" / f"{name}.rz").stat().st_size == ev["size_bytes"]
    # The ratios are of the numbers beside them; the test split is balanced (10 a class), so the mean per-class
    # accuracy is the accuracy; a base model is its own reference.
    assert ev["size_ratio"] == pytest.approx(ev["base_size_bytes"] / ev["size_bytes"])
    assert ev["speedup"] == pytest.approx(ev["base_ms_per_batch"] / ev["ms_per_batch"])
    assert ev["acc_drop"] == pytest.approx(ev["base_test_acc"] - ev["test_acc"])
    assert sum(ev["per_class_acc"]) / 10 == pytest.approx(ev["test_acc"]) and ev["test_images"] == 100
    if name.startswith("base-"):
        assert ev["test_acc"] == ev["base_test_acc"] and ev["params"] == ev["base_params"] == 269_722
    timing = read_json(tiny_pipeline / "metrics" / "evaluate" / f"{name}.timing.json")
    assert len(timing["base"]["32"]["ms"]) == len(timing["candidate"]["32"]["ms"]) == 2


@pytest.mark.parametrize("method", METHODS[1:])
def test_sweep_has_a_row_per_ratio(tiny_pipeline, method):
    with open(tiny_pipeline / "plots" / "sweep" / f"{method}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["ratio"]) for r in rows] == [0.5, 0.9]
    assert all(r["timed_rounds"] == "2" and r["eval_images"] == "50" for r in rows)
    if method in ("l2_unit", "kmeans_channel"):
        assert int(rows[1]["params"]) < int(rows[0]["params"]) < 269_722
        assert int(rows[1]["macs"]) < int(rows[0]["macs"])


def test_report_lists_every_model(tiny_pipeline):
    table = (tiny_pipeline / "reports" / "summary.md").read_text()
    summary = read_json(tiny_pipeline / "metrics" / "summary.json")
    for name in ("base-adam", "base-sgd", "base-adamax", *METHODS):
        assert f"| {name} |" in table
        assert set(summary[name]) == {"acc", "speedup", "size", "macs"} and 0 <= summary[name]["acc"] <= 100
    charts = {p.name for p in (tiny_pipeline / "plots" / "report").iterdir()}
    assert {"time_vs_ratio.png", "params_vs_ratio.png", "size_vs_ratio.png", "accuracy_vs_ratio.png",
            "accuracy_vs_speedup.png"} <= charts
