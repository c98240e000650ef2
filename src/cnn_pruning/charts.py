"""Matplotlib charts written as PNG files (headless: the Agg backend, no display needed).

    plot_history(history, "plots/train/sgd.png", title, subtitle)   # loss and accuracy per epoch
    report_charts(results, rows, "plots/report", about, subtitle)   # the report's charts (cnn_pruning.report)

Read at a glance: 150 dpi, accuracy in percent, integer epoch ticks, no offset notation on the axes, a subtitle
saying what produced the chart (images, epochs), point labels placed where they overlap nothing, and hollow
markers of a different shape per method, so lines that coincide (e.g. two methods keeping the same widths) both
stay visible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from .core.files import atomic_path

# One colour per method in every chart (matplotlib's tab10 order); the base models are grey, the control black.
COLOURS = {"base": "#7f7f7f", "none": "#000000", "magnitude": "#1f77b4", "l2_unit": "#ff7f0e",
           "kmeans_shared": "#2ca02c", "kmeans_channel": "#d62728", "random": "#8c564b", "random_channel": "#e377c2",
           "l2_unit_all": "#9467bd", "kmeans_channel_all": "#17becf", "random_channel_all": "#bcbd22"}
# Names of one's own (named variants) take one of tab20's lighter colours, chosen from the name's bytes so a name
# keeps its colour from chart to chart and run to run (Python's hash() of a str changes between processes).
_MORE = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")
# A marker per line, in the order lines are drawn: hollow and of different shapes, so coinciding lines show both.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")
DPI = 150
SUBTITLE = {"fontsize": 8, "color": "#555555"}


def colour(name: str) -> str:
    """The colour of a method, variant, model or series in every chart."""
    return COLOURS.get(name) or _MORE[sum(name.encode()) % len(_MORE)]


def save_figure(fig, path: str | os.PathLike) -> None:
    """Write a figure as PNG through a temporary file (never a truncated chart) and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)


def plain_numbers(ax) -> None:
    """Tick labels as the numbers themselves: no "+1e5" offset or scientific factor on a linear axis."""
    for axis in (ax.xaxis, ax.yaxis):
        if isinstance(axis.get_major_formatter(), ScalarFormatter):
            formatter = ScalarFormatter(useOffset=False)
            formatter.set_scientific(False)
            axis.set_major_formatter(formatter)


def place_labels(ax, points: Sequence[tuple[float, float]], labels: Sequence[str], fontsize: int = 8) -> list:
    """Label each point beside it, at the first of eight positions around it whose text overlaps no label placed
    before and no point; where every position overlaps, the least overlapping one. Returns the text artists."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    centres = [ax.transData.transform(p) for p in points]
    pad = 4  # pixels kept around each point
    dots = [(x - pad, y - pad, x + pad, y + pad) for x, y in centres]
    offsets = [(6, 4), (6, -12), (-6, 4), (-6, -12), (0, 9), (0, -16), (12, -4), (-12, -4)]
    placed, texts = [], []

    def overlap(a, b) -> float:
        return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))

    for point, label in zip(points, labels):
        best = None
        for dx, dy in offsets:
            text = ax.annotate(label, point, textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                               ha="left" if dx > 0 else "right" if dx < 0 else "center")
            box = text.get_window_extent(renderer)
            box = (box.x0, box.y0, box.x1, box.y1)
            cost = sum(overlap(box, other) for other in placed + dots)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        placed.append(best[2])
        texts.append(best[1])
    return texts


def plot_history(history: Sequence[dict], path: str | os.PathLike, title: str, subtitle: str = "") -> None:
    """Loss and accuracy per epoch, train vs validation, side by side; `subtitle` says what produced them."""
    epochs = [r["epoch"] for r in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    for split, style in (("train", "--"), ("val", "-")):
        loss_ax.plot(epochs, [r[f"{split}_loss"] for r in history], style, marker=".", label=split)
        acc_ax.plot(epochs, [100 * r[f"{split}_acc"] for r in history], style, marker=".", label=split)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        plain_numbers(ax)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    _subtitle(fig, subtitle)
    save_figure(fig, path)


def report_charts(results: dict, rows: list[dict], folder: str | os.PathLike, about: str = "",
                  subtitle: str = "") -> list[Path]:
    """The seed studies' charts, regenerated: time, nonzero params, size and accuracy vs ratio, and accuracy vs
    speedup. `about` (e.g. "ResNet56 on CIFAR-100") heads every title; `subtitle` (what produced them: images,
    epochs) goes under every chart."""
    head = f"{about}: " if about else ""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    sweep = results.get("sweep", {})
    # The same quantities, units and names as the DVC plots of dvc.yaml.
    per_ratio = [("images_per_s", "images per second", "Inference speed vs pruning ratio", "time_vs_ratio"),
                 ("nonzero_params", "nonzero parameters (weights not zero)", "Nonzero parameters vs pruning ratio",
                  "params_vs_ratio"),
                 ("size_bytes", "compact export size (KiB)", "Compact export size vs pruning ratio", "size_vs_ratio"),
                 ("test_acc", "test accuracy before fine-tuning (%)", "Test accuracy vs pruning ratio, before "
                  "fine-tuning", "accuracy_vs_ratio")]
    tested = next(iter(sweep.values()), [{}])[0].get("eval_images")
    sweep_note = "sweep: pruned, not fine-tuned" + (f", tested on {int(tested):,} images" if tested else "")
    for key, ylabel, title, name in per_ratio if sweep else []:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        for (method, points), marker in zip(sweep.items(), MARKERS * 3):
            scale = 1 / 1024 if key == "size_bytes" else 100 if key == "test_acc" else 1
            ax.plot([p["ratio"] for p in points], [p[key] * scale for p in points], marker=marker, markersize=7,
                    markerfacecolor="none", color=colour(method), label=method)
        first = next(iter(sweep.values()))
        if first and key == "images_per_s":
            ax.axhline(sum(p["base_images_per_s"] for p in first) / len(first), color=COLOURS["base"], ls="--",
                       label="dense base")
        unit = (f" ({first[0]['runtime']}, batches of {int(first[0]['timed_batch_size'])} images)"
                if key == "images_per_s" else "")
        ax.set(xlabel="pruning ratio (fraction removed)", ylabel=ylabel)
        ax.set_title(head + title + unit, fontsize=10)
        plain_numbers(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        _subtitle(fig, f"{subtitle}; {sweep_note}" if subtitle else sweep_note)
        save_figure(fig, folder / f"{name}.png")
        written.append(folder / f"{name}.png")
    if rows:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        points = [(r["speedup"], 100 * r["test_acc"]) for r in rows]
        for r, (x, y) in zip(rows, points):
            ax.scatter(x, y, s=60, color=colour(r["method"]), label=r["model"], zorder=3)
        ax.margins(0.15)  # room for the labels at the edges
        place_labels(ax, points, [r["model"] for r in rows])
        ratio = next((r["ratio"] for r in rows if r["ratio"]), None)
        ax.set(xlabel=f"measured speedup vs the base (x, {rows[0]['runtime']}, batches of {rows[0]['batch_size']} "
                      "images)", ylabel="test accuracy after fine-tuning (%)")
        ax.set_title(head + (f"Test accuracy vs measured speedup at ratio {ratio:g}, after fine-tuning" if ratio
                             else "Test accuracy vs measured speedup"), fontsize=10)
        plain_numbers(ax)
        ax.grid(alpha=0.3)
        _subtitle(fig, subtitle)
        save_figure(fig, folder / "accuracy_vs_speedup.png")
        written.append(folder / "accuracy_vs_speedup.png")
    return written


def _subtitle(fig, text: str) -> None:
    """`text` under the chart, small and grey; the layout leaves room for it."""
    if text:
        fig.text(0.5, 0.01, text, ha="center", va="bottom", **SUBTITLE)
    fig.tight_layout(rect=(0, 0.04 if text else 0, 1, 1))
