"""cnn_pruning.report: the summary from the stages' files, its table and its points."""

from __future__ import annotations

import json

import pytest

from cnn_pruning import report
from helpers import write_results


def test_rows_join_prune_finetune_and_evaluate_per_model_and_ignore_stale_files(tmp_path):
    folders = write_results(tmp_path, stale_method="magnitude")
    results = report.collect(folders, ["sgd"], ["none", "l2_unit"], ["l2_unit"])
    rows = report.summary_rows(results)
    assert [r["model"] for r in rows] == ["base-sgd", "none", "l2_unit"]  # base, control, methods
    base, control, l2 = rows
    assert base["acc_after_prune"] == 0.9 and base["acc_after_finetune"] is None
    assert l2["acc_before_prune"] == 0.9 and l2["acc_after_prune"] == 0.3 and l2["acc_after_finetune"] == 0.85
    assert l2["best_val_acc"] == pytest.approx(0.84) and control["ratio"] is None
    assert results["sweep"]["l2_unit"][1]["ratio"] == 0.9  # CSV numbers come back as numbers


def test_a_missing_file_names_the_stage_that_has_not_run(tmp_path):
    folders = write_results(tmp_path)
    with pytest.raises(FileNotFoundError,
                       match=r"evaluate/kmeans_channel.json is missing: the stage that writes it has not run"):
        report.collect(folders, ["sgd"], ["none", "kmeans_channel"], [])


def test_markdown_and_tradeoff(tmp_path):
    results = report.collect(write_results(tmp_path), ["sgd"], ["none", "l2_unit"], ["l2_unit"])
    rows = report.summary_rows(results)
    page = report.markdown(rows, results)
    assert "| l2_unit | 0.5 | 90.00 | 30.00 | 85.00 | 500 | 100 | 2.00 | 2.0 | 2.00x | 1.60x | 1.00x | 500 |" in page
    assert "| l2_unit | 0.9 | 50.00 | 700 | 3.00 | 1.50x | 1.20x |" in page  # the sweep table
    assert report.markdown([], {}) == "# Results\n\nNo evaluated models yet.\n"
    points = report.tradeoff(rows)
    assert list(points[0]) == list(report.TRADEOFF_COLUMNS) and json.dumps(points)


def test_deploy_choices_pick_within_one_point_of_the_control():
    def row(model, method, acc, size, speed):
        return {"model": model, "method": method, "test_acc": acc, "size_ratio": size, "speedup": speed}

    rows = [row("base-sgd", "base", 0.95, 1.0, 1.0), row("none", "none", 0.90, 1.0, 1.0),
            row("magnitude", "magnitude", 0.895, 8.0, 1.0),       # within 1 point: the smallest
            row("l2_unit", "l2_unit", 0.892, 2.0, 1.8),           # within 1 point: the fastest
            row("kmeans_channel", "kmeans_channel", 0.85, 20.0, 5.0)]   # smaller and faster, but 5 points down
    assert [(c["goal"], c["model"]) for c in report.deploy_choices(rows)] == [
        ("smallest within 1 point of the control", "magnitude"), ("fastest within 1 point of the control", "l2_unit"),
        ("most accurate", "none")]  # the base is not a fine-tuned candidate
    no_control = [r for r in rows if r["method"] != "none"]
    assert [c["goal"] for c in report.deploy_choices(no_control)] == ["most accurate"]
    assert report.deploy_choices([]) == []
    md = report.markdown([{**r, "ratio": None, "base": "sgd", "acc_before_prune": None, "acc_after_prune": None,
                           "acc_after_finetune": r["test_acc"], "params": 1, "nonzero_params": 1, "macs": 1e6,
                           "size_bytes": 1024, "speedup_b1": 1.0, "images_per_s": 1.0, "batch_size": 256,
                           "runtime": "pytorch", "device": "cpu", "threads": 2, "architecture": "ResNet20",
                           "dataset": "CIFAR-10"} for r in rows], {})
    assert ("| smallest within 1 point of the control | magnitude | 89.50 | 8.00x | 1.00x | "
            "models/onnx/magnitude.onnx |") in md
