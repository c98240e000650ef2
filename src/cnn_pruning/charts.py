"""Matplotlib charts written as PNG files (headless: the Agg backend, no display needed).

    plot_history(history, "plots/train/sgd.png", title)        # loss and accuracy per epoch
    report_charts(results, rows, "plots/report")               # the report's charts (cnn_pruning.report)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .files import atomic_path  # noqa: E402

# One colour per method in every chart (matplotlib's tab10 order); the base models are grey, the control black.
COLOURS = {"base": "#7f7f7f", "none": "#000000", "magnitude": "#1f77b4", "l2_unit": "#ff7f0e",
           "kmeans_shared": "#2ca02c", "kmeans_channel": "#d62728", "random": "#8c564b", "random_channel": "#e377c2",
           "l2_unit_all": "#9467bd", "kmeans_channel_all": "#17becf", "random_channel_all": "#bcbd22"}
# Names of one's own (named variants) take one of tab20's lighter colours, chosen from the name's bytes so a name
# keeps its colour from chart to chart and run to run (Python's hash() of a str changes between processes).
_MORE = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")


def colour(name: str) -> str:
    """The colour of a method, variant, model or series in every chart."""
    return COLOURS.get(name) or _MORE[sum(name.encode()) % len(_MORE)]


def save_figure(fig, path: str | os.PathLike) -> None:
    """Write a figure as PNG through a temporary file (never a truncated chart) and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_history(history: Sequence[dict], path: str | os.PathLike, title: str) -> None:
    """Loss and accuracy per epoch, train vs validation, side by side."""
    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "--"), ("val", "-")):
        loss_ax.plot(epochs, [r[f"{split}_loss"] for r in history], style, marker=".", label=split)
        acc_ax.plot(epochs, [100 * r[f"{split}_acc"] for r in history], style, marker=".", label=split)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def report_charts(results: dict, rows: list[dict], folder: str | os.PathLike, about: str = "") -> list[Path]:
    """The seed studies' charts, regenerated: time, params, size and accuracy vs ratio, and accuracy vs speedup.
    `about` (e.g. "ResNet56 on CIFAR-100") heads every title."""
    head = f"{about}: " if about else ""
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
                    color=colour(method), label=method)
        first = next(iter(sweep.values()))
        if first and key == "images_per_s":
            ax.axhline(sum(p["base_images_per_s"] for p in first) / len(first), color=COLOURS["base"], ls="--",
                       label="dense base")
        unit = f", batch {int(first[0]['timed_batch_size'])}, {first[0]['runtime']}" if key == "images_per_s" else ""
        ax.set(xlabel="pruning ratio (fraction removed)", ylabel=ylabel, title=head + title + unit)
        ax.grid(alpha=0.3)
        ax.legend()
        save_figure(fig, folder / f"{name}.png")
        written.append(folder / f"{name}.png")
    if rows:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for r in rows:
            ax.scatter(r["speedup"], 100 * r["test_acc"], s=60, color=colour(r["method"]),
                       label=r["model"], zorder=3)
            ax.annotate(r["model"], (r["speedup"], 100 * r["test_acc"]), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
        ratio = next((r["ratio"] for r in rows if r["ratio"]), None)
        ax.set(xlabel=f"speedup vs base (x, batch {rows[0]['batch_size']}, {rows[0]['runtime']})",
               ylabel="test accuracy after fine-tuning (%)",
               title=head + (f"Accuracy vs speedup at ratio {ratio:g}" if ratio else "Accuracy vs speedup"))
        ax.grid(alpha=0.3)
        save_figure(fig, folder / "accuracy_vs_speedup.png")
        written.append(folder / "accuracy_vs_speedup.png")
    return written
