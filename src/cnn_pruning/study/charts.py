"""The study's charts (PNG): accuracy after fine-tuning, mean ± std over seeds, against what a method removes.

    study_charts(rows, "plots/study", tolerance=1.0, subtitle="...")   # rows: cnn_pruning.study.report.summary()

Four charts, one per x axis: the pruning ratio, the MACs reduction (log), the measured speedup and the stored size
(log). In each, every method is a line with error bars (its colour everywhere in the project), the random
baselines are dashed, the control is a grey band (mean ± std) with its mean in black, and a dotted line marks the
tolerance below the control's mean: a point above it lost no more than the tolerance. Variants of a method (one-shot,
gradual, with distillation) share its colour and differ in line style and marker. With more than one variant, a
fifth chart (variants.png) sets them side by side per (method, ratio): points with error bars.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..charts import COLOURS, colour, plt, save_figure

# per study variant: (line style, marker); the random baselines are dashed with squares whatever their variant
VARIANT_STYLE = {"oneshot": ("-", "o"), "gradual": ("-.", "^"), "oneshot_distill": (":", "D"),
                 "gradual_distill": ((0, (5, 1, 1, 1, 1, 1)), "v")}

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
            ls, marker = ("--", "s") if baseline else VARIANT_STYLE.get(points[0]["variant"], ("-", "o"))
            ax.errorbar([r[x] for r in points], [r["acc_mean_pct"] for r in points],
                        yerr=[r["acc_std_pct"] or 0.0 for r in points], color=colour(points[0]["method"]),
                        ls=ls, marker=marker, ms=4, capsize=3, label=f"{s} (baseline)" if baseline else s)
        if log:
            ax.set_xscale("log")
        ax.set(xlabel=label, ylabel="test accuracy after fine-tuning (%)",
               title=f"Accuracy after fine-tuning vs {label.split(' (')[0]}")
        ax.text(0.01, 0.01, subtitle, transform=ax.transAxes, fontsize=7, color="#555555")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
        save_figure(fig, folder / f"{name}.png")
        written.append(folder / f"{name}.png")
    variants = list(dict.fromkeys(r["variant"] for r in rows if r["kind"] != "control"))
    if len(variants) > 1:
        written.append(variants_chart(rows, variants, folder / "variants.png", subtitle))
    return written


def variants_chart(rows: list[dict], variants: list[str], path: Path, subtitle: str) -> Path:
    """Per (method, ratio) a group of points, one per variant (mean ± std over seeds; the method's colour, the
    variant's marker), over the control's band. Points, not bars: the axis starts far above zero, where bars would
    exaggerate the differences."""
    control = next(r for r in rows if r["kind"] == "control")
    groups = list(dict.fromkeys((r["method"], r["ratio"]) for r in rows if r["kind"] != "control"))
    by = {(r["method"], r["ratio"], r["variant"]): r for r in rows if r["kind"] != "control"}
    width = 0.7 / len(variants)
    fig, ax = plt.subplots(figsize=(max(7.5, 1.3 * len(groups)), 4.8))
    ax.axhspan(control["acc_lo_pct"], control["acc_hi_pct"], color=COLOURS["base"], alpha=0.25, lw=0,
               label="control: mean ± std")
    ax.axhline(control["acc_mean_pct"], color=COLOURS["none"], lw=1)
    for j, variant in enumerate(variants):
        marker = VARIANT_STYLE.get(variant, ("-", "o"))[1]
        for i, (method, ratio) in enumerate(groups):
            r = by.get((method, ratio, variant))
            if r is not None:
                ax.errorbar(i + (j - (len(variants) - 1) / 2) * width, r["acc_mean_pct"],
                            yerr=r["acc_std_pct"] or 0.0, color=colour(method), marker=marker, ms=6, capsize=2,
                            mec="black", mew=0.5, lw=1)
        ax.plot([], [], ls="none", marker=marker, color="#999999", mec="black", mew=0.5, label=variant)
    for i in range(1, len(groups)):
        ax.axvline(i - 0.5, color="#dddddd", lw=0.8)
    ax.set_xticks(range(len(groups)), [f"{m}\n{r:g}" for m, r in groups], fontsize=7)
    ax.set_xlim(-0.5, len(groups) - 0.5)
    low = min(r["acc_mean_pct"] - (r["acc_std_pct"] or 0.0) for r in rows)
    ax.set_ylim(max(0.0, low - 3), control["acc_hi_pct"] + 2)
    ax.set_ylabel("test accuracy after fine-tuning (%)")
    ax.set_title("One-shot vs gradual pruning, with and without distillation\n(the same fine-tune epochs)",
                 fontsize=10)
    ax.set_xlabel(subtitle, fontsize=7, color="#555555")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()   # makes room for the legend beside the axes
    save_figure(fig, path)
    return path
