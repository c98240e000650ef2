"""The study's results: per-point rows summarised per (method, ratio) with their spread over seeds, compared with
the control and with each method's random baseline, and the one-line answer per method.

    cfg = schema.build(StudyConfig, params["study"])         # cnn_pruning.study: which points, tolerance, level
    points, control, speed = collect("results/study/points", "results/study/speed", cfg)   # what params list
    rows = summary(points, control, speed, cfg)      # one row per (method, variant, ratio), plus the control's
    answers(rows)                                    # {series: the largest ratio within study.tolerance, or None}
    ties(points, cfg)                                # {ratio: [(a, b, p)]}: pairs the Welch test cannot tell apart
    remedies(rows, points, cfg)                      # per (method, ratio): how much of one-shot's gap
                                                     # each variant closes
    markdown(rows, ties(...), cfg)                   # the report (reports/study.md)

Accuracies in the points are fractions; the summary and the report give percent (columns named *_pct). The spread
is the sample standard deviation over seeds (n - 1); with one seed it is unknown (empty) and no test is made.
Two groups differ significantly when Welch's t-test (unequal variances, scipy) gives p < study.significance.
Pure functions over the files the point, control and speed stages wrote; stages/study_report.py writes them out.
"""

from __future__ import annotations

import itertools
import math
import statistics
from pathlib import Path

from scipy import stats

from ..core.files import read_result
from ..pruning import BASELINES, CONTROL, baseline_of, resolve
from . import DEFAULT_VARIANT, StudyConfig, point_name, series_name

POINT_COLUMNS = ("method", "variant", "ratio", "seed", "test_acc", "acc_after_prune", "params", "nonzero_params",
                 "distinct_filters", "macs", "macs_nonzero_weights", "macs_reduction", "size_bytes", "epochs")
SUMMARY_COLUMNS = ("series", "method", "variant", "kind", "ratio", "n", "acc_mean_pct", "acc_std_pct", "acc_lo_pct",
                   "acc_hi_pct", "acc_after_prune_pct", "vs_control_pct", "p_vs_control", "within_tolerance",
                   "baseline", "p_vs_baseline", "vs_baseline", "macs_reduction", "speedup", "speedup_b1",
                   "size_kib", "size_ratio", "nonzero_params")


def collect(points_dir, speed_dir, cfg: StudyConfig) -> tuple[list[dict], list[dict], dict]:
    """The rows of the points, the control's rows and the speed per (method, ratio) that `cfg` lists; files of
    points no longer listed (DVC leaves them behind) are not read."""
    points_dir, speed_dir = Path(points_dir), Path(speed_dir)
    points = [read_result(points_dir / f"{point_name(m, r, s, v)}.json")
              for m in cfg.methods for r in cfg.ratios for s in cfg.seeds for v in cfg.variants]
    control = [read_result(points_dir / f"{point_name(CONTROL, None, s)}.json") for s in cfg.seeds]
    speed = {(m, r): read_result(speed_dir / f"{m}-{r}.json") for m in cfg.methods for r in cfg.ratios}
    return points, control, speed


def spread(values: list[float]) -> dict:
    """n, mean and sample standard deviation (None for n < 2)."""
    n = len(values)
    return {"n": n, "mean": statistics.fmean(values) if n else math.nan,
            "std": statistics.stdev(values) if n > 1 else None}


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test; None when either side has fewer than two values. Two groups without
    any spread are the same (p = 1) when their values agree and certainly different (p = 0) when not."""
    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _accs(points: list[dict], **where) -> list[float]:
    return [p["test_acc"] for p in points if all(p[k] == v for k, v in where.items())]


def _verdict(mean_a: float, mean_b: float, p: float | None, alpha: float) -> str:
    if p is None:
        return "n/a (one seed)"
    if p >= alpha:
        return "not distinguishable"
    return "better" if mean_a > mean_b else "worse"


def summary(points: list[dict], control: list[dict], speed: dict, cfg: StudyConfig,
            options: dict | None = None) -> list[dict]:
    """One row per (method, variant, ratio) in `cfg` order, after the control's row (ratio 0: nothing removed).
    Each row: the accuracy's mean, std and mean ± std in percent, its difference from the control's mean and
    Welch p-value, whether it is within the tolerance, the matched random baseline and the verdict against it,
    and the architecture's MACs reduction, measured speedup and stored size. `options` is prune.options, where named
    variants (l2_unit_all: {method: l2_unit, scope: all}) say what they run: their baseline is the variant of the
    baseline with the same scope (pruning.baseline_of)."""
    ctrl_accs = [c["test_acc"] for c in control]
    ctrl = spread(ctrl_accs)
    base_kib = next(iter(speed.values()))["base_size_bytes"] / 1024 if speed else math.nan
    rows = [{"series": CONTROL, "method": CONTROL, "variant": DEFAULT_VARIANT, "kind": "control", "ratio": 0.0,
             **_acc_columns(ctrl), "acc_after_prune_pct": 100 * statistics.fmean(c["acc_after_prune"] for c in control),
             "macs_reduction": 1.0, "speedup": 1.0, "speedup_b1": 1.0, "size_kib": base_kib, "size_ratio": 1.0,
             "nonzero_params": control[0]["nonzero_params"]}]
    variants = sorted({(p["method"], p["variant"]) for p in points}, key=_order(cfg))
    for method, variant in variants:
        for ratio in cfg.ratios:
            group = [p for p in points if p["method"] == method and p["variant"] == variant and p["ratio"] == ratio]
            if not group:  # collect() reads every listed point; rows made elsewhere may leave gaps
                continue
            accs = [p["test_acc"] for p in group]
            acc = spread(accs)
            baseline = baseline_of(method, options, cfg.methods)
            base_accs = _accs(points, method=baseline, variant=variant, ratio=ratio) if baseline else []
            p_base = welch_p(accs, base_accs) if base_accs else None
            p_ctrl = welch_p(accs, ctrl_accs)
            timed = speed[(method, ratio)]
            rows.append({
                "series": series_name(method, variant), "method": method, "variant": variant,
                "kind": "baseline" if resolve(method, options)[0] in BASELINES else "method", "ratio": ratio,
                **_acc_columns(acc),
                "acc_after_prune_pct": 100 * statistics.fmean(p["acc_after_prune"] for p in group),
                "vs_control_pct": 100 * (acc["mean"] - ctrl["mean"]), "p_vs_control": p_ctrl,
                "within_tolerance": 100 * (ctrl["mean"] - acc["mean"]) <= cfg.tolerance,
                "baseline": baseline if base_accs else "",
                "p_vs_baseline": p_base,
                "vs_baseline": _verdict(acc["mean"], statistics.fmean(base_accs), p_base, cfg.significance)
                if base_accs else "",
                "macs_reduction": statistics.fmean(p["macs_reduction"] for p in group),
                "speedup": timed["speedup"], "speedup_b1": timed["speedup_b1"],
                "size_kib": statistics.fmean(p["size_bytes"] for p in group) / 1024,
                "size_ratio": timed["base_size_bytes"] / statistics.fmean(p["size_bytes"] for p in group),
                "nonzero_params": round(statistics.fmean(p["nonzero_params"] for p in group)),
            })
    return rows


def _order(cfg: StudyConfig):
    """Sort key of (method, variant): study.methods' order, then study.variants'."""
    return lambda mv: (cfg.methods.index(mv[0]), cfg.variants.index(mv[1]) if mv[1] in cfg.variants else 0)


REMEDY_COLUMNS = ("method", "ratio", "variant", "n", "acc_mean_pct", "acc_std_pct", "oneshot_pct", "control_pct",
                  "gap_pts", "gain_pts", "gap_closed", "p_vs_oneshot", "beyond_spread", "best", "goal_met",
                  "finetune_seconds", "oneshot_finetune_seconds", "teacher_share")


def remedies(rows: list[dict], points: list[dict], cfg: StudyConfig) -> list[dict]:
    """What gradual pruning and distillation buy, per (method, ratio) and variant other than one-shot: the gap
    between one-shot and the control (control - one-shot, points), the variant's gain over one-shot, the fraction of
    the gap it closes, and whether the gain is beyond the seeds' spread (Welch's test against one-shot's accuracies,
    p < study.significance, and a gain > 0). `best` marks each (method, ratio)'s variant with the highest mean;
    goal_met: that best variant closes at least half the gap beyond the spread (the goal set for the remedies). The
    cost: mean fine-tune seconds of the variant and of one-shot, and the teacher's share of the variant's (teacher
    seconds / fine-tune seconds, both timed in the same epochs, so the share holds better than the seconds on a busy
    machine). Empty when the study has no one-shot points or no other variant."""
    if DEFAULT_VARIANT not in cfg.variants or len(cfg.variants) < 2:
        return []
    ctrl = rows[0]["acc_mean_pct"]
    by = {(r["method"], r["variant"], r["ratio"]): r for r in rows[1:]}
    out = []
    for method in cfg.methods:
        for ratio in cfg.ratios:
            one = by.get((method, DEFAULT_VARIANT, ratio))
            if one is None:
                continue
            gap = ctrl - one["acc_mean_pct"]
            found = []
            for variant in cfg.variants:
                r = by.get((method, variant, ratio))
                if variant == DEFAULT_VARIANT or r is None:
                    continue
                gain = r["acc_mean_pct"] - one["acc_mean_pct"]
                p = welch_p(_accs(points, method=method, variant=variant, ratio=ratio),
                            _accs(points, method=method, variant=DEFAULT_VARIANT, ratio=ratio))
                seconds = _mean_of(points, "finetune_seconds", method=method, variant=variant, ratio=ratio)
                teacher = _mean_of(points, "teacher_seconds", method=method, variant=variant, ratio=ratio)
                found.append({"method": method, "ratio": ratio, "variant": variant, "n": r["n"],
                              "acc_mean_pct": r["acc_mean_pct"], "acc_std_pct": r["acc_std_pct"],
                              "oneshot_pct": one["acc_mean_pct"], "control_pct": ctrl, "gap_pts": gap,
                              "gain_pts": gain, "gap_closed": gain / gap if gap > 0 else None, "p_vs_oneshot": p,
                              "beyond_spread": p is not None and p < cfg.significance and gain > 0, "best": False,
                              "goal_met": False, "finetune_seconds": seconds,
                              "oneshot_finetune_seconds": _mean_of(points, "finetune_seconds", method=method,
                                                                   variant=DEFAULT_VARIANT, ratio=ratio),
                              "teacher_share": teacher / seconds if seconds and teacher is not None else None})
            if found:
                best = max(found, key=lambda f: f["acc_mean_pct"])
                best["best"] = True
                best["goal_met"] = bool(best["beyond_spread"] and best["gap_closed"] is not None
                                        and best["gap_closed"] >= 0.5)
            out += found
    return out


def _mean_of(points: list[dict], key: str, **where) -> float | None:
    """Mean of `key` over the points that match `where` and have it (points from before a key existed lack it)."""
    values = [p[key] for p in points if key in p and all(p[k] == v for k, v in where.items())]
    return statistics.fmean(values) if values else None


def _acc_columns(acc: dict) -> dict:
    mean, std = 100 * acc["mean"], None if acc["std"] is None else 100 * acc["std"]
    return {"n": acc["n"], "acc_mean_pct": mean, "acc_std_pct": std, "acc_lo_pct": mean - (std or 0.0),
            "acc_hi_pct": mean + (std or 0.0)}


def answers(rows: list[dict]) -> dict:
    """Per series, the largest ratio whose mean accuracy is within the tolerance of the control's (None if none)."""
    out = {}
    for r in rows:
        if r["kind"] != "control":
            out.setdefault(r["series"], None)
            if r["within_tolerance"] and (out[r["series"]] is None or r["ratio"] > out[r["series"]]):
                out[r["series"]] = r["ratio"]
    return out


def ties(points: list[dict], cfg: StudyConfig) -> dict:
    """Per ratio, the pairs of series whose accuracies Welch's test cannot tell apart (p >= study.significance),
    with the p-value. Pairs with fewer than two seeds on a side are not tested, so not listed."""
    out = {}
    names = sorted({(p["method"], p["variant"]) for p in points}, key=_order(cfg))
    for ratio in cfg.ratios:
        pairs = []
        for (ma, va), (mb, vb) in itertools.combinations(names, 2):
            p = welch_p(_accs(points, method=ma, variant=va, ratio=ratio), _accs(points, method=mb, variant=vb,
                                                                                   ratio=ratio))
            if p is not None and p >= cfg.significance:
                pairs.append((series_name(ma, va), series_name(mb, vb), p))
        out[ratio] = pairs
    return out


def point_rows(points: list[dict], series: str) -> list[dict]:
    """One series' points, one row per (ratio, seed): its CSV (results/study/methods/<series>.csv)."""
    return [{k: p.get(k) for k in POINT_COLUMNS} for p in points if series_name(p["method"], p["variant"]) == series]


def _num(v, fmt: str) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _mean_std(mean: float, std: float | None) -> str:
    """"69.40 ± 0.22", or "69.40 (one seed)" where the spread is unknown."""
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f} (one seed)"


def markdown(rows: list[dict], tied: dict, cfg: StudyConfig, context: dict, points: list[dict] = ()) -> str:
    """The study as a Markdown page: the answer per method, the table, where methods are not distinguishable."""
    ctrl = rows[0]
    found = answers(rows)
    lines = ["# The study: accuracy after fine-tuning, by method, ratio and seed", "",
             f"{context['model']}, base model `{context['base']}` pruned and fine-tuned (recipe `finetune`, epochs: "
             f"{context['epochs']}), seeds {cfg.seeds}; test accuracy on {context['test_images']} images; "
             f"mean ± sample std over seeds. Control (the base fine-tuned the same way, no pruning): "
             f"**{_mean_std(ctrl['acc_mean_pct'], ctrl['acc_std_pct'])} %** (n = {ctrl['n']}).", "",
             f"## How much can be removed within {cfg.tolerance:g} point(s) of the control", "",
             "| method | largest ratio within tolerance |", "|---|---|"]
    for series, ratio in found.items():
        lines.append(f"| {series} | {'none of ' + str(cfg.ratios) if ratio is None else f'{ratio:g}'} |")
    lines += ["", "## Every (method, ratio)", "",
              "| method | ratio | n | accuracy (%) | vs control (pts) | p vs control | baseline | vs baseline (p) | "
              "MACs reduction | measured speedup | speedup b1 | stored (KiB) | after prune, no fine-tune (%) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows[1:]:
        vs_base = r["vs_baseline"] if r["baseline"] else ""
        if r["baseline"] and r["p_vs_baseline"] is not None:
            vs_base += f" ({r['p_vs_baseline']:.3f})"
        lines.append(
            f"| {r['series']} | {r['ratio']:g} | {r['n']} | {_mean_std(r['acc_mean_pct'], r['acc_std_pct'])} "
            f"| {r['vs_control_pct']:+.2f}{'' if r['within_tolerance'] else ' ✗'} | {_num(r['p_vs_control'], '.3f')} "
            f"| {r['baseline']} | {vs_base} | {r['macs_reduction']:.2f}x | {r['speedup']:.2f}x | "
            f"{r['speedup_b1']:.2f}x | {r['size_kib']:.1f} | {r['acc_after_prune_pct']:.2f} |")
    cures = remedies(rows, points, cfg)
    if cures:
        lines += ["", "## Gradual pruning and distillation against one-shot", "",
                  "Gap = control - one-shot (points); gain = variant - one-shot; closed = gain / gap; *beyond spread*: "
                  f"Welch's test against one-shot's seeds, p < {cfg.significance:g}. **best**: the (method, ratio)'s "
                  "highest mean; goal: the best closes at least half the gap beyond the spread.", "",
                  "| method | ratio | variant | accuracy (%) | one-shot (%) | gap (pts) | gain (pts) | closed | "
                  "p vs one-shot | goal | fine-tune s (one-shot s) | teacher's share |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in cures:
            closed = "" if c["gap_closed"] is None else f"{100 * c['gap_closed']:.0f} %"
            goal = ("met" if c["goal_met"] else "missed") if c["best"] else ""
            name = f"**{c['variant']}**" if c["best"] else c["variant"]
            share = format(c["teacher_share"], ".0%") if c["teacher_share"] else ""
            lines.append(f"| {c['method']} | {c['ratio']:g} | {name} | "
                         f"{_mean_std(c['acc_mean_pct'], c['acc_std_pct'])} "
                         f"| {c['oneshot_pct']:.2f} | {c['gap_pts']:+.2f} | {c['gain_pts']:+.2f} | {closed} | "
                         f"{_num(c['p_vs_oneshot'], '.3f')} | {goal} | {_num(c['finetune_seconds'], '.0f')} "
                         f"({_num(c['oneshot_finetune_seconds'], '.0f')}) | {share} |")
    lines += ["", f"## Not distinguishable (Welch's t-test, p ≥ {cfg.significance:g})", ""]
    for ratio, pairs in tied.items():
        text = "; ".join(f"{a} vs {b} (p = {p:.2f})" for a, b, p in pairs) or \
            ("every pair differs" if len(cfg.seeds) > 1 else "not tested: one seed gives no spread")
        lines.append(f"- ratio {ratio:g}: {text}")
    lines += ["", "- ✗: the mean is more than the tolerance below the control's.",
              "- *baseline*: the random baseline that removes the same counts (pruning.baseline_of); *better* / "
              "*worse* only where Welch's test says so, else *not distinguishable*.",
              "- *MACs reduction*: the base's MACs / the MACs of the nonzero weights (theoretical); *measured "
              "speedup*: timed against the base, interleaved, once per (method, ratio) on the pruned architecture.",
              f"- With {len(cfg.seeds)} seeds a test has little power: *not distinguishable* means the data cannot "
              "separate them, not that they are equal."]
    return "\n".join(lines) + "\n"
