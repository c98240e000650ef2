"""The study's charts (PNG): accuracy after fine-tuning, mean ± std over seeds, against what a method removes.

    study_charts(rows, "plots/study", tolerance=1.0, subtitle="...")   # rows: cnn_pruning.study_report.summary()

Four charts, one per x axis: the pruning ratio, the MACs reduction (log), the measured speedup and the stored size
(log). In each, every method is a line with error bars (its colour everywhere in the project), the random
baselines are dashed, the control is a grey band (mean ± std) with its mean in black, and a dotted line marks the
tolerance below the control's mean: a point above it lost no more than the tolerance.
"""

from __future__ import annotations

import os
from pathlib import Path

from .charts import COLOURS, colour, plt, save_figure

# (x column, axis label, log scale, file name)
AXES = (("ratio", "pruning ratio (fraction removed)", False, "accuracy_vs_ratio"),
        ("macs_reduction", "MACs reduction vs the base (x, nonzero weights; log)", True, "accuracy_vs_macs"),
        ("speedup", "measured speedup vs the base (x)", False, "accuracy_vs_speedup"),
        ("size_kib", "stored size (KiB, compact export; log)", True, "accuracy_vs_size"))


def study_charts(rows: list[dict], folder: str | os.PathLike, tolerance: float, subtitle: str) -> list[Path]:
    """Write the four charts into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    control = next(r for r in rows if r["kind"] == "control")
    series = list(dict.fromkeys(r["series"] for r in rows if r["kind"] != "control"))
    written = []
    for x, label, log, name in AXES:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        lo, hi = control["acc_lo_pct"], control["acc_hi_pct"]
        ax.axhspan(lo, hi, color=COLOURS["base"], alpha=0.25, lw=0, label="control: mean ± std")
        ax.axhline(control["acc_mean_pct"], color=COLOURS["none"], lw=1)
        ax.axhline(control["acc_mean_pct"] - tolerance, color=COLOURS["none"], lw=1, ls=":",
                   label=f"control − {tolerance:g} pt")
        for s in series:
            points = sorted((r for r in rows if r["series"] == s), key=lambda r: r[x])
            baseline = points[0]["kind"] == "baseline"
            ax.errorbar([r[x] for r in points], [r["acc_mean_pct"] for r in points],
                        yerr=[r["acc_std_pct"] or 0.0 for r in points], color=colour(points[0]["method"]),
                        ls="--" if baseline else "-", marker="s" if baseline else "o", ms=4, capsize=3,
                        label=f"{s} (baseline)" if baseline else s)
        if log:
            ax.set_xscale("log")
        ax.set(xlabel=label, ylabel="test accuracy after fine-tuning (%)",
               title=f"Accuracy after fine-tuning vs {label.split(' (')[0]}")
        ax.text(0.01, 0.01, subtitle, transform=ax.transAxes, fontsize=7, color="#555555")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
        save_figure(fig, folder / f"{name}.png")
        written.append(folder / f"{name}.png")
    return written
