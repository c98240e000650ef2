"""The results report: every metrics file of a pipeline run in one table, one JSON summary and the charts.

    from cnn_pruning import report
    results = report.collect(report.Folders("metrics/train", "metrics/prune", "metrics/finetune",
                                            "metrics/evaluate", "plots/sweep"), ["sgd"], ["none", "magnitude"],
                             ["magnitude"])             # the models params.yaml lists
    rows = report.summary_rows(results)         # one row per base model and per method
    report.markdown(rows, results)              # the table as Markdown (reports/summary.md)
    charts.report_charts(results, rows, "plots/report")  # the PNGs (cnn_pruning.charts)

Pure functions over the files the earlier stages wrote; the report stage (stages/report.py) writes and logs them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .charts import COLOURS
from .core.files import read_result

TRADEOFF_COLUMNS = ("model", "method", "ratio", "test_acc", "speedup", "size_ratio", "params", "macs")


def _read_csv(path: Path) -> list[dict]:
    def value(v):
        try:
            return float(v) if any(c in v for c in ".eE") or v.lstrip("-").isdigit() else v
        except ValueError:
            return v
    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


@dataclass(frozen=True)
class Folders:
    """Where the earlier stages wrote their files (the report stage's arguments, from dvc.yaml)."""
    train: str      # <optimizer>.json
    prune: str      # <method>.json
    finetune: str   # <method>.json
    evaluate: str   # base-<optimizer>.json and <method>.json
    sweep: str      # <method>.csv


def collect(folders: Folders, optimizers: list[str], methods: list[str], sweep_methods: list[str]) -> dict:
    """The metrics of the models the params list, by stage and name. Files of models no longer listed (DVC leaves
    a dropped matrix item's outputs behind) are not read, so the report never mixes in stale results."""
    train, prune, finetune, evaluate_dir, sweep = (Path(f) for f in (folders.train, folders.prune, folders.finetune,
                                                                      folders.evaluate, folders.sweep))
    evaluate = {f"base-{o}": read_result(evaluate_dir / f"base-{o}.json") for o in optimizers}
    evaluate |= {m: read_result(evaluate_dir / f"{m}.json") for m in methods}
    return {"train": {o: read_result(train / f"{o}.json") for o in optimizers},
            "prune": {m: read_result(prune / f"{m}.json") for m in methods},
            "finetune": {m: read_result(finetune / f"{m}.json") for m in methods},
            "evaluate": evaluate,
            "sweep": {m: _read_csv(sweep / f"{m}.csv") for m in sweep_methods}}


def summary_rows(results: dict) -> list[dict]:
    """One row per evaluated model: base models first, then the control and the methods."""
    rows = []
    for name, ev in results["evaluate"].items():
        method = ev.get("method", name)
        pruned = results["prune"].get(method, {}) if method != "base" else {}
        tuned = results["finetune"].get(method, {}) if method != "base" else {}
        rows.append({
            "model": name, "method": method, "ratio": ev.get("ratio"), "base": ev.get("base"),
            "acc_before_prune": pruned.get("base_test_acc", ev.get("base_test_acc")),
            "acc_after_prune": pruned.get("test_acc", ev.get("test_acc") if method == "base" else None),
            "acc_after_finetune": ev["test_acc"] if method != "base" else None,
            "test_acc": ev["test_acc"], "best_val_acc": tuned.get("best_val_acc"),
            "params": ev["params"], "nonzero_params": ev["nonzero_params"], "distinct_filters": ev["distinct_filters"],
            "macs": ev["macs"], "size_bytes": ev["size_bytes"], "size_ratio": ev["size_ratio"],
            "speedup": ev["speedup"], "speedup_b1": ev.get("speedup_b1"),
            "images_per_s": ev["images_per_s"], "batch_size": ev["batch_size"], "runtime": ev["runtime"],
            "device": ev["device"], "threads": ev["threads"],
            # what was pruned: files written before the model family existed are ResNet20 on CIFAR-10
            "architecture": ev.get("architecture", "ResNet20"), "dataset": ev.get("dataset", "CIFAR-10"),
        })
    order = {m: i for i, m in enumerate(COLOURS)}
    return sorted(rows, key=lambda r: (order.get(r["method"], 99), r["model"]))


def headline(row: dict) -> dict:
    """A model's DVC metrics: what users compare across experiments, under short names, so `dvc exp show` columns
    (kmeans_channel.acc) stay narrow (`make exp`). acc: test accuracy after fine-tuning (%); speedup: measured, vs
    the base (x); size: how many times smaller its compact export is; macs: multiply-accumulates per image
    (millions)."""
    return {"acc": round(100 * row["test_acc"], 2), "speedup": round(row["speedup"], 3),
            "size": round(row["size_ratio"], 3), "macs": round(row["macs"] / 1e6, 2)}


def produced_by(results: dict) -> str:
    """What produced the report's numbers, for its charts' subtitles: images and epochs (so a quick run's accuracies
    are not taken for the full recipe's)."""
    train = next(iter(results["train"].values()), {})
    tuned = next(iter(results["finetune"].values()), {})
    tested = next(iter(results["evaluate"].values()), {})
    parts = []
    if train.get("train_images"):
        parts.append(f"base models: {train['train_images']:,} training images x {train['epochs']} epochs")
    if tuned.get("epochs"):
        parts.append(f"fine-tuned {tuned['epochs']} epochs")
    if tested.get("test_images"):
        parts.append(f"tested on {tested['test_images']:,} images")
    return "; ".join(parts)


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.2f}"


def markdown(rows: list[dict], results: dict) -> str:
    """The summary as a Markdown page: the main table, then what each column means."""
    if not rows:
        return "# Results\n\nNo evaluated models yet.\n"
    r0 = rows[0]
    lines = ["# Results: what each pruning method costs and buys", "",
             f"{r0['architecture']} on {r0['dataset']}; speed measured with {r0['runtime']} on {r0['device']} "
             f"({r0['threads']} threads), "
             f"each model timed interleaved with its base in one process; speedup at batch {r0['batch_size']} "
             "and at batch 1.", "",
             "| model | ratio | test acc before prune (%) | after prune (%) | after fine-tune (%) | params | nonzero "
             "| MACs (M) | stored (KiB) | size ratio | speedup | speedup b1 | images/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:g}"
        lines.append(
            f"| {r['model']} | {ratio} | {_pct(r['acc_before_prune'])} | {_pct(r['acc_after_prune'])} | "
            f"{_pct(r['acc_after_finetune'])} | {r['params']:,} | {r['nonzero_params']:,} | {r['macs'] / 1e6:.2f} | "
            f"{r['size_bytes'] / 1024:.1f} | {r['size_ratio']:.2f}x | {r['speedup']:.2f}x | "
            f"{r['speedup_b1']:.2f}x | {r['images_per_s']:.0f} |")
    lines += ["", "- *none* is the unpruned base fine-tuned with the same recipe: the fair reference for the methods.",
              "- *stored*: bytes of the compact lossless export (sparse values + bitmask, codebook + packed "
              "assignments, or plain smaller tensors; xz on top). *size ratio*: the base's export / this one.",
              "- *speedup*: median base time / median model time, timed in the same process (base = 1.00x by "
              "construction, its row shows its own images/s)."]
    choices = deploy_choices(rows)
    if choices:
        lines += ["", "## Which model to deploy", "",
                  "Each is an ONNX file (uint8 images N×32×32×3 in, logits out) and an MLflow model logged to its "
                  "evaluate run.", "", "| goal | model | test acc (%) | size ratio | speedup | ONNX file |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {c['goal']} | {c['model']} | {_pct(c['test_acc'])} | {c['size_ratio']:.2f}x | "
                  f"{c['speedup']:.2f}x | models/onnx/{c['model']}.onnx |" for c in choices]
    if results.get("sweep"):
        lines += ["", "## Sweep (pruned, not fine-tuned)", "",
                  "| method | ratio | test acc (%) | params | MACs (M) | size ratio | speedup |",
                  "|---|---|---|---|---|---|---|"]
        for method, points in results["sweep"].items():
            for p in points:
                lines.append(f"| {method} | {p['ratio']:g} | {_pct(p['test_acc'])} | {int(p['params']):,} | "
                             f"{p['macs'] / 1e6:.2f} | {p['size_ratio']:.2f}x | {p['speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


DEPLOY_TOLERANCE = 0.01  # "as accurate as the control": within 1 point of its test accuracy


def deploy_choices(rows: list[dict], tolerance: float = DEPLOY_TOLERANCE) -> list[dict]:
    """Which fine-tuned model to deploy for which goal: the smallest and the fastest of those within `tolerance` of
    the control's test accuracy, and the most accurate of all. Without a control (or nothing within reach of it),
    the smallest and fastest are not chosen: a model that loses more than the tolerance is not a like-for-like
    replacement. Each: goal, model, test_acc, size_ratio, speedup."""
    tuned = [r for r in rows if r["method"] != "base"]
    control = next((r for r in tuned if r["method"] == "none"), None)
    choices = []
    if control is not None:
        close = [r for r in tuned if r["test_acc"] >= control["test_acc"] - tolerance]
        choices += [("smallest within 1 point of the control", max(close, key=lambda r: r["size_ratio"])),
                    ("fastest within 1 point of the control", max(close, key=lambda r: r["speedup"]))]
    if tuned:
        choices.append(("most accurate", max(tuned, key=lambda r: r["test_acc"])))
    return [{"goal": goal, **{k: r[k] for k in ("model", "test_acc", "size_ratio", "speedup")}} for goal, r in choices]


def tradeoff(rows: list[dict]) -> list[dict]:
    """Accuracy vs speedup at the chosen ratio, one point per model (the DVC plot's data)."""
    return [{k: r[k] for k in TRADEOFF_COLUMNS} for r in rows]
