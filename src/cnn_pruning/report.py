"""The results report: every metrics file of a pipeline run in one table, one JSON summary and the charts.

    from cnn_pruning import report
    results = report.collect(".")               # reads metrics/{train,prune,finetune,evaluate}/ and plots/sweep/
    rows = report.summary_rows(results)         # one row per base model and per method
    report.markdown(rows, results)              # the table as Markdown (reports/summary.md)
    report.draw_charts(results, rows, "plots/report")   # PNGs, one colour per method throughout

Pure functions over the files the earlier stages wrote; the report stage (stages/report.py) writes and logs them.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .files import atomic_path  # noqa: E402

# One colour per method in every chart (matplotlib's tab10 order); the base models are grey.
COLOURS = {"base": "#7f7f7f", "none": "#000000", "magnitude": "#1f77b4", "l2_unit": "#ff7f0e",
           "kmeans_shared": "#2ca02c", "kmeans_channel": "#d62728"}
TRADEOFF_COLUMNS = ("model", "method", "ratio", "test_acc", "speedup", "size_ratio", "params", "macs")


def _read_jsons(folder: Path) -> dict[str, dict]:
    if not folder.is_dir():
        return {}
    return {p.name[:-len(".json")]: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))
            if not p.name.endswith((".timing.json", ".info.json"))}


def _read_csv(path: Path) -> list[dict]:
    def value(v):
        try:
            return float(v) if any(c in v for c in ".eE") or v.lstrip("-").isdigit() else v
        except ValueError:
            return v
    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def collect(root: str | os.PathLike = ".") -> dict:
    """All the metrics a pipeline run left behind, by stage and name."""
    root = Path(root)
    sweep = {p.stem: _read_csv(p) for p in sorted((root / "plots" / "sweep").glob("*.csv"))}
    return {stage: _read_jsons(root / "metrics" / stage) for stage in ("train", "prune", "finetune", "evaluate")} \
        | {"sweep": sweep}


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
        })
    order = {m: i for i, m in enumerate(COLOURS)}
    return sorted(rows, key=lambda r: (order.get(r["method"], 99), r["model"]))


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.2f}"


def markdown(rows: list[dict], results: dict) -> str:
    """The summary as a Markdown page: the main table, then what each column means."""
    if not rows:
        return "# Results\n\nNo evaluated models yet.\n"
    r0 = rows[0]
    lines = ["# Results: what each pruning method costs and buys", "",
             f"ResNet20 on CIFAR-10; speed measured with {r0['runtime']} on {r0['device']} ({r0['threads']} threads), "
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
    if results.get("sweep"):
        lines += ["", "## Sweep (pruned, not fine-tuned)", "",
                  "| method | ratio | test acc (%) | params | MACs (M) | size ratio | speedup |", "|---|---|---|---|---|---|---|"]
        for method, points in results["sweep"].items():
            for p in points:
                lines.append(f"| {method} | {p['ratio']:g} | {_pct(p['test_acc'])} | {int(p['params']):,} | "
                             f"{p['macs'] / 1e6:.2f} | {p['size_ratio']:.2f}x | {p['speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


def tradeoff(rows: list[dict]) -> list[dict]:
    """Accuracy vs speedup at the chosen ratio, one point per model (the DVC plot's data)."""
    return [{k: r[k] for k in TRADEOFF_COLUMNS} for r in rows]


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def draw_charts(results: dict, rows: list[dict], folder: str | os.PathLike) -> list[Path]:
    """The seed studies' charts, regenerated: time, params, size and accuracy vs ratio, and accuracy vs speedup."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    sweep = results.get("sweep", {})
    per_ratio = [("images_per_s", "inference speed (images/s)", "Inference speed vs pruning ratio", "time_vs_ratio"),
                 ("params", "parameters stored", "Parameters vs pruning ratio", "params_vs_ratio"),
                 ("size_bytes", "compact export size (KiB)", "Stored size vs pruning ratio", "size_vs_ratio"),
                 ("test_acc", "test accuracy before fine-tuning (%)", "Accuracy vs pruning ratio (no fine-tune)",
                  "accuracy_vs_ratio")]
    for key, ylabel, title, name in per_ratio if sweep else []:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for method, points in sweep.items():
            scale = 1 / 1024 if key == "size_bytes" else 100 if key == "test_acc" else 1
            ax.plot([p["ratio"] for p in points], [p[key] * scale for p in points], marker="o",
                    color=COLOURS.get(method), label=method)
        first = next(iter(sweep.values()))
        if first and key in ("images_per_s", "params", "size_bytes"):
            base_key = {"images_per_s": "base_images_per_s", "params": None, "size_bytes": None}[key]
            if base_key:
                ax.axhline(sum(p[base_key] for p in first) / len(first), color=COLOURS["base"], ls="--",
                           label="dense base")
        unit = f", batch {int(first[0]['timed_batch_size'])}, {first[0]['runtime']}" if key == "images_per_s" else ""
        ax.set(xlabel="pruning ratio (fraction removed)", ylabel=ylabel, title=title + unit)
        ax.grid(alpha=0.3)
        ax.legend()
        _save(fig, folder / f"{name}.png")
        written.append(folder / f"{name}.png")
    if rows:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for r in rows:
            ax.scatter(r["speedup"], 100 * r["test_acc"], s=60, color=COLOURS.get(r["method"], "#17becf"),
                       label=r["model"], zorder=3)
            ax.annotate(r["model"], (r["speedup"], 100 * r["test_acc"]), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
        ratio = next((r["ratio"] for r in rows if r["ratio"]), None)
        ax.set(xlabel=f"speedup vs base (x, batch {rows[0]['batch_size']}, {rows[0]['runtime']})",
               ylabel="test accuracy after fine-tuning (%)",
               title=f"Accuracy vs speedup at ratio {ratio:g}" if ratio else "Accuracy vs speedup")
        ax.grid(alpha=0.3)
        _save(fig, folder / "accuracy_vs_speedup.png")
        written.append(folder / "accuracy_vs_speedup.png")
    return written
