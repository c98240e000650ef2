"""DVC stage `report`: every metrics file in one summary JSON, one Markdown table and the charts.

    python stages/report.py     # reads train.optimizers, prune.methods, sweep.methods: which models to report

Writes metrics/summary.json (per model: accuracy before/after pruning and after fine-tuning, params, MACs, stored
size, speedup), reports/summary.md (the table, linked from the README), plots/summary/tradeoff.csv (accuracy vs
speedup, one point per model, for `dvc plots show`) and the matplotlib charts in plots/report/.
"""

import sys

from cnn_pruning import charts, files, params, report, tracking
from cnn_pruning.stage import run_stage

SUMMARY = "metrics/summary.json"
TABLE = "reports/summary.md"
TRADEOFF = "plots/summary/tradeoff.csv"
CHARTS = "plots/report"


def main() -> None:
    models = {"optimizers": params.section("train")["optimizers"], "methods": params.section("prune")["methods"],
              "sweep_methods": params.section("sweep")["methods"]}
    with tracking.stage_run("report", "report", params=models) as run:
        results = report.collect(".", **models)
        rows = report.summary_rows(results)
        # Headline metrics keyed by model, so `dvc exp show` gets readable columns like kmeans_channel.speedup.
        summary = {r["model"]: {k: r[k] for k in ("test_acc", "acc_after_prune", "speedup", "size_ratio")}
                   for r in rows}
        files.write_json(SUMMARY, summary)
        files.write_text(TABLE, report.markdown(rows, results))
        files.write_csv(TRADEOFF, report.tradeoff(rows), report.TRADEOFF_COLUMNS)
        drawn = charts.report_charts(results, rows, CHARTS)
        run.log_metrics({f"{model}.{k}": v for model, m in summary.items() for k, v in m.items() if v is not None})
        for path in (SUMMARY, TABLE, TRADEOFF, *drawn):
            run.log_artifact(path)
    print(f"report: {len(rows)} models -> {TABLE}")


if __name__ == "__main__":
    run_stage(main, *sys.argv[1:], expected=(tracking.TrackingError,))
