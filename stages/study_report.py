"""DVC stage `study`: the study's points summarised, compared and drawn.

    python stages/study_report.py --points results/study/points --speed results/study/speed \
        --methods results/study/methods --summary results/study/summary.csv --remedies results/study/remedies.csv \
        --metrics metrics/study.json --report reports/study.md --charts plots/study

Reads params.yaml's study section (which points, the tolerance and the significance level) and prune.options
(what a named variant runs, so its random baseline is found). Writes per method a
CSV with one row per (ratio, seed), the summary per (method, ratio) with mean, std and n (the data of the study's
DVC plots), what gradual pruning and distillation buy over one-shot per (method, ratio) (study_report.remedies;
a header only with one variant), the headline (the control's mean ± std and, per method, the largest ratio within
the tolerance: a DVC metric), the Markdown report and the PNG charts.
"""

import argparse
import shutil
from pathlib import Path

from cnn_pruning import tracking
from cnn_pruning.core import files, params, schema
from cnn_pruning.core.cli import run_stage
from cnn_pruning.pruning import CONTROL
from cnn_pruning.study import StudyConfig
from cnn_pruning.study import report as study_report
from cnn_pruning.study.charts import study_charts


def main(points: str, speed: str, methods: str, summary: str, remedies: str, metrics: str, report: str,
         charts_dir: str) -> None:
    section = params.section("study")
    cfg = schema.build(StudyConfig, section)
    prune = params.section("prune")
    everything = params.load_params()  # depth and data: for MLflow's Compare only, they decide no output
    coords = tracking.coordinates(base_optimizer=prune["base"], depth=everything["model"]["depth"],
                                  dataset=everything["data"]["name"])
    with tracking.stage_run("study", "study", params=section, coords=coords) as run:
        rows_of_points, control, timed = study_report.collect(points, speed, cfg)
        rows = study_report.summary(rows_of_points, control, timed, cfg, prune["options"])
        tied = study_report.ties(rows_of_points, cfg)
        found = study_report.answers(rows)
        ctrl = rows[0]
        headline = {"control": {"acc_mean_pct": ctrl["acc_mean_pct"], "acc_std_pct": ctrl["acc_std_pct"],
                                "n": ctrl["n"]},
                    **{s: {"largest_ratio_within_tolerance": r} for s, r in found.items()}}
        shutil.rmtree(methods, ignore_errors=True)  # only the series studied now
        tables = [Path(methods) / f"{series}.csv" for series in (CONTROL, *found)]
        for table in tables:
            files.write_csv(table, study_report.point_rows(rows_of_points + control, table.stem),
                            study_report.POINT_COLUMNS)
        files.write_csv(summary, rows, study_report.SUMMARY_COLUMNS)
        cures = study_report.remedies(rows, rows_of_points, cfg)
        files.write_csv(remedies, cures, study_report.REMEDY_COLUMNS)
        files.write_json(metrics, headline)
        first = rows_of_points[0]
        context = {"model": f"{first['architecture']} on {first['dataset']}", "base": first.get("base", ""),
                   "epochs": first["epochs"], "test_images": first["test_images"]}
        files.write_text(report, study_report.markdown(rows, tied, cfg, context, rows_of_points))
        timing = timed[(first["method"], first["ratio"])]
        drawn = study_charts(rows, charts_dir, cfg.tolerance,
                             f"{context['model']}, {len(cfg.seeds)} seeds, {first['epochs']} fine-tune epochs, "
                             f"{first['test_images']} test images; speed: {timing['runtime']} on {timing['device']}")
        run.log_metrics({f"{s}.largest_ratio_within_tolerance": r for s, r in found.items() if r is not None})
        run.log_metrics({"control.acc_mean_pct": ctrl["acc_mean_pct"]})
        run.log_metrics({f"{c['method']}.{c['ratio']}.{c['variant']}.gap_closed": c["gap_closed"] for c in cures
                         if c["gap_closed"] is not None})
        run.log_artifacts(summary, remedies, metrics, report, *tables, *drawn)
        run.log_table(rows, "summary")
    for series, ratio in found.items():
        print(f"study: {series}: largest ratio within {cfg.tolerance:g} pt of the control: {ratio}")


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--points", required=True, help="the point and control stages' JSON folder")
parser.add_argument("--speed", required=True, help="the study_speed stages' JSON folder")
parser.add_argument("--methods", required=True, help="folder of the per-method CSVs (rewritten)")
parser.add_argument("--summary", required=True, help="per (method, ratio): n, mean, std, ... (CSV, DVC plots' data)")
parser.add_argument("--remedies", required=True, help="per (method, ratio, variant): the gap to one-shot closed (CSV)")
parser.add_argument("--metrics", required=True, help="the headline (JSON, a DVC metric)")
parser.add_argument("--report", required=True, help="the Markdown report")
parser.add_argument("--charts", dest="charts_dir", required=True, help="folder of the PNG charts")

if __name__ == "__main__":
    run_stage(main, parser)
