"""cnn_pruning.study.report and study_charts: the summary arithmetic, the tests, the answer per method, from rows
whose results are known."""

from __future__ import annotations

import math

import pytest

from cnn_pruning.core import files, schema
from cnn_pruning.study.charts import AXES, study_charts
from cnn_pruning.study.report import (
    StudyConfig,
    answers,
    collect,
    markdown,
    point_rows,
    remedies,
    spread,
    summary,
    ties,
    welch_p,
)

# test accuracy per (method, ratio) over seeds 0, 1, 2
ACCS = {("magnitude", 0.5): [0.80, 0.81, 0.82], ("magnitude", 0.9): [0.70, 0.72, 0.74],
        ("random", 0.5): [0.80, 0.815, 0.81], ("random", 0.9): [0.50, 0.52, 0.51]}
CONTROL = [0.81, 0.815, 0.82]
CFG = schema.build(StudyConfig, {"methods": ["magnitude", "random"], "ratios": [0.5, 0.9], "seeds": [0, 1, 2]})


def point(method, ratio, seed, acc):
    return {"method": method, "variant": "oneshot", "ratio": ratio, "seed": seed, "test_acc": acc,
            "acc_after_prune": acc / 2, "params": 1000, "nonzero_params": 500 if ratio == 0.5 else 100,
            "distinct_filters": 10, "macs": 100, "macs_nonzero_weights": 50, "base_macs": 100,
            "macs_reduction": 2.0 if ratio == 0.5 else 10.0, "size_bytes": 2048 if ratio == 0.5 else 1024,
            "epochs": 3, "test_images": 100, "base": "sgd"}


@pytest.fixture
def study():
    points = [point(m, r, s, a) for (m, r), accs in ACCS.items() for s, a in enumerate(accs)]
    control = [point("none", None, s, a) for s, a in enumerate(CONTROL)]
    speed = {(m, r): {"speedup": 1.5, "speedup_b1": 1.2, "base_size_bytes": 4096, "runtime": "pytorch",
                      "device": "cpu"} for (m, r) in ACCS}
    return points, control, speed


def test_spread_is_mean_and_sample_std():
    assert spread([0.5, 0.6, 0.7]) == {"n": 3, "mean": pytest.approx(0.6), "std": pytest.approx(0.1)}
    assert spread([0.5]) == {"n": 1, "mean": 0.5, "std": None}


def test_welch_p_values():
    # Welch's test by hand for (1, 2, 3) vs (4, 5, 6.5): t = -3.413 on 3.81 degrees of freedom, p = 0.0292
    assert welch_p([1, 2, 3], [4, 5, 6.5]) == pytest.approx(0.0292, abs=5e-4)
    assert welch_p([1, 2, 3], [4, 5, 6.5]) == welch_p([4, 5, 6.5], [1, 2, 3])
    assert welch_p([1, 2, 3], [1.1, 2.1, 2.9]) > 0.9
    assert welch_p([0.5, 0.5], [0.5, 0.5]) == 1.0 and welch_p([0.5, 0.5], [0.6, 0.6]) == 0.0  # no spread at all
    assert welch_p([0.5], [0.6, 0.7]) is None  # one seed: no test


def test_summary_rows_from_known_points(study):
    rows = summary(*study, CFG)
    ctrl, by = rows[0], {(r["method"], r["ratio"]): r for r in rows[1:]}
    assert ctrl["kind"] == "control" and ctrl["n"] == 3
    assert ctrl["acc_mean_pct"] == pytest.approx(81.5) and ctrl["acc_std_pct"] == pytest.approx(0.5)
    mag = by[("magnitude", 0.5)]
    assert mag["n"] == 3 and mag["acc_mean_pct"] == pytest.approx(81.0) and mag["acc_std_pct"] == pytest.approx(1.0)
    assert (mag["acc_lo_pct"], mag["acc_hi_pct"]) == (pytest.approx(80.0), pytest.approx(82.0))
    assert mag["vs_control_pct"] == pytest.approx(-0.5) and mag["within_tolerance"]
    assert mag["baseline"] == "random" and mag["vs_baseline"] == "not distinguishable"
    assert mag["size_kib"] == 2.0 and mag["size_ratio"] == 2.0 and mag["speedup"] == 1.5
    far = by[("magnitude", 0.9)]
    assert far["acc_mean_pct"] == pytest.approx(72.0) and not far["within_tolerance"]
    assert far["vs_baseline"] == "better" and far["p_vs_baseline"] < 0.05
    assert by[("random", 0.9)]["kind"] == "baseline" and by[("random", 0.9)]["baseline"] == ""
    assert [r["series"] for r in rows] == ["none", "magnitude", "magnitude", "random", "random"]


def test_the_answer_is_the_largest_ratio_within_the_tolerance(study):
    rows = summary(*study, CFG)
    assert answers(rows) == {"magnitude": 0.5, "random": 0.5}
    strict = schema.build(StudyConfig, {**CFG.__dict__, "tolerance": 0.1})
    assert answers(summary(*study, strict)) == {"magnitude": None, "random": None}
    loose = schema.build(StudyConfig, {**CFG.__dict__, "tolerance": 15.0})
    assert answers(summary(*study, loose)) == {"magnitude": 0.9, "random": 0.5}


def test_ties_list_the_pairs_the_test_cannot_separate(study):
    tied = ties(study[0], CFG)
    assert [(a, b) for a, b, _ in tied[0.5]] == [("magnitude", "random")] and tied[0.9] == []
    report = markdown(summary(*study, CFG), tied, CFG, {"model": "ResNet20", "base": "sgd", "epochs": 3,
                                                        "test_images": 100})
    assert "**81.50 ± 0.50 %** (n = 3)" in report
    assert "| magnitude | 0.5 |" in report and "ratio 0.5: magnitude vs random" in report
    assert "ratio 0.9: every pair differs" in report
    assert "| magnitude | 0.9 | 3 | 72.00 ± 2.00 | -9.50 ✗ |" in report


def test_collect_reads_only_the_listed_points(tmp_path, study):
    points, control, speed = study
    for p in points + control:
        name = f"none-{p['seed']}" if p["ratio"] is None else f"{p['method']}-{p['ratio']}-{p['seed']}-{p['variant']}"
        files.write_json(tmp_path / "points" / f"{name}.json", p)
    for (m, r), s in speed.items():
        files.write_json(tmp_path / "speed" / f"{m}-{r}.json", s)
    files.write_json(tmp_path / "points" / "magnitude-0.7-0-oneshot.json", point("magnitude", 0.7, 0, 0.1))  # stale
    got = collect(tmp_path / "points", tmp_path / "speed", CFG)
    assert got == (points, control, speed)
    assert len(point_rows(points, "magnitude")) == 6
    fewer = schema.build(StudyConfig, {**CFG.__dict__, "seeds": [0, 1, 2, 3]})
    with pytest.raises(FileNotFoundError, match="magnitude-0.5-3-oneshot.json is missing"):
        collect(tmp_path / "points", tmp_path / "speed", fewer)


def test_the_charts_are_written(tmp_path, study):
    drawn = study_charts(summary(*study, CFG), tmp_path, 1.0, "test")
    assert [p.name for p in drawn] == [f"{name}.png" for *_, name in AXES]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in drawn)
    assert not math.isnan(summary(*study, CFG)[0]["size_kib"])


def test_one_seed_gives_means_without_spread_or_tests(study):
    points, control, speed = study
    one = schema.build(StudyConfig, {**CFG.__dict__, "seeds": [0]})
    rows = summary([p for p in points if p["seed"] == 0], control[:1], speed, one)
    assert all(r["n"] == 1 and r["acc_std_pct"] is None for r in rows)
    mag = next(r for r in rows if r["method"] == "magnitude")
    assert mag["p_vs_control"] is None and mag["vs_baseline"] == "n/a (one seed)"
    assert ties([p for p in points if p["seed"] == 0], one) == {0.5: [], 0.9: []}
    report = markdown(rows, ties([p for p in points if p["seed"] == 0], one), one,
                      {"model": "ResNet56 on CIFAR-10", "base": "sgd", "epochs": 3, "test_images": 100})
    assert "ResNet56 on CIFAR-10, base model `sgd`" in report and "(one seed) %** (n = 1)" in report
    assert "±" not in report.split("## Not distinguishable")[0].split("mean ± sample std")[1]
    assert "| random | n/a (one seed) |" in report and "ratio 0.5: not tested: one seed gives no spread" in report
    assert "every pair differs" not in report


# gradual pruning and distillation against one-shot: magnitude at 0.9 (one-shot 72 %, control 81.5 %)
VARIANT_ACCS = {"gradual": [0.79, 0.80, 0.78], "oneshot_distill": [0.73, 0.71, 0.75]}


@pytest.fixture
def variants(study):
    points, control, speed = study
    more = [{**point("magnitude", 0.9, s, a), "variant": v, "finetune_seconds": 100.0,
             "teacher_seconds": 25.0 if v.endswith("distill") else 0.0} for v, accs in VARIANT_ACCS.items()
            for s, a in enumerate(accs)]
    points = [{**p, "finetune_seconds": 80.0, "teacher_seconds": 0.0} for p in points]
    cfg = schema.build(StudyConfig, {**CFG.__dict__, "variants": ["oneshot", "gradual", "oneshot_distill"]})
    return points + more, control, speed, cfg


def test_remedies_measure_the_gap_to_one_shot_each_variant_closes(variants):
    points, control, speed, cfg = variants
    rows = summary(points, control, speed, cfg)
    cures = remedies(rows, points, cfg)
    assert [(c["method"], c["ratio"], c["variant"]) for c in cures] == [
        ("magnitude", 0.9, "gradual"), ("magnitude", 0.9, "oneshot_distill")]  # only where variants ran
    gradual, distill = cures
    assert gradual["gap_pts"] == pytest.approx(81.5 - 72.0) and gradual["gain_pts"] == pytest.approx(79.0 - 72.0)
    assert gradual["gap_closed"] == pytest.approx(7.0 / 9.5)
    assert gradual["p_vs_oneshot"] == pytest.approx(welch_p([0.79, 0.80, 0.78], [0.70, 0.72, 0.74]))
    assert gradual["beyond_spread"] and gradual["best"] and gradual["goal_met"]
    assert distill["gain_pts"] == pytest.approx(1.0) and not distill["beyond_spread"]  # within the seeds' noise
    assert not distill["best"] and not distill["goal_met"]
    assert distill["teacher_share"] == 0.25 and gradual["teacher_share"] == 0.0  # the cost, per variant
    assert distill["finetune_seconds"] == 100.0 and distill["oneshot_finetune_seconds"] == 80.0
    report = markdown(rows, ties(points, cfg), cfg, {"model": "m", "base": "sgd", "epochs": 3, "test_images": 100},
                      points)
    assert "| magnitude | 0.9 | **gradual** | 79.00 ± 1.00 | 72.00 | +9.50 | +7.00 | 74 % |" in report
    assert "| oneshot_distill | 73.00 ± 2.00 |" in report and "| 100 (80) | 25% |" in report
    assert "| met |" in report and "| magnitude-gradual | 0.9 | 3 |" in report
    one = schema.build(StudyConfig, {**CFG.__dict__})
    assert remedies(summary(*[p for p in variants[:3]], one), points, one) == []  # one variant: nothing to compare


def test_a_missed_goal_is_reported_as_missed(variants):
    points, control, speed, cfg = variants
    tight = {("gradual", 0): 0.75, ("gradual", 1): 0.755, ("gradual", 2): 0.745,  # mean 75 and 72, little spread
             ("oneshot", 0): 0.719, ("oneshot", 1): 0.72, ("oneshot", 2): 0.721}
    small = [{**p, "test_acc": tight[(p["variant"], p["seed"])]}
             if p["method"] == "magnitude" and p["ratio"] == 0.9 and p["variant"] != "oneshot_distill" else p
             for p in points]
    cures = remedies(summary(small, control, speed, cfg), small, cfg)
    best = next(c for c in cures if c["best"])
    assert best["variant"] == "gradual" and best["gap_closed"] == pytest.approx(3.0 / 9.5)
    assert best["beyond_spread"] and not best["goal_met"]  # real, but less than half the gap


def test_the_variants_chart_is_drawn_with_more_than_one_variant(tmp_path, variants):
    points, control, speed, cfg = variants
    drawn = study_charts(summary(points, control, speed, cfg), tmp_path, 1.0, "test")
    assert [p.name for p in drawn] == [f"{name}.png" for *_, name in AXES] + ["variants.png"]
    assert (tmp_path / "variants.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
