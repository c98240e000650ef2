"""DVC stage `report`: every metrics file in one summary JSON, one Markdown table and the charts.

    python stages/report.py --train metrics/train --prune metrics/prune --finetune metrics/finetune \
        --evaluate metrics/evaluate --sweep plots/sweep --summary metrics/summary.json --table reports/summary.md \
        --tradeoff plots/summary/tradeoff.csv --charts plots/report

Reads train.optimizers, prune.methods and sweep.methods: which models to report. Writes the summary (per model:
accuracy before/after pruning and after fine-tuning, params, MACs, stored size, speedup), the table, the
accuracy-vs-speedup points for `dvc plots show` and the matplotlib charts.
"""

import argparse

from cnn_pruning import charts, report, tracking
from cnn_pruning.core import files, params
from cnn_pruning.core.cli import run_stage


def main(train: str, prune: str, finetune: str, evaluate: str, sweep: str, summary: str, table: str, tradeoff: str,
         charts_dir: str) -> None:
    models = {"optimizers": params.section("train")["optimizers"], "methods": params.section("prune")["methods"],
              "sweep_methods": params.section("sweep")["methods"]}
    results = report.collect(report.Folders(train, prune, finetune, evaluate, sweep), **models)
    rows = report.summary_rows(results)
    pruned = next((r for r in rows if r["ratio"]), {})
    # Where the report sits for MLflow's Compare: the ratio and base its models were pruned at, the depth and data
    # (read for tracking only, like tracking.experiment: they decide no output, so the stage does not declare them).
    everything = params.load_params()
    coords = tracking.coordinates(ratio=pruned.get("ratio"), base_optimizer=pruned.get("base"),
                                  depth=everything["model"]["depth"], dataset=everything["data"]["name"])
    with tracking.stage_run("report", "report", params=models, coords=coords) as run:
        headline = {r["model"]: report.headline(r) for r in rows}
        files.write_json(summary, headline)
        files.write_text(table, report.markdown(rows, results))
        files.write_csv(tradeoff, report.tradeoff(rows), report.TRADEOFF_COLUMNS)
        about = f"{rows[0]['architecture']} on {rows[0]['dataset']}" if rows else ""
        drawn = charts.report_charts(results, rows, charts_dir, about, report.produced_by(results))
        run.log_metrics({f"{model}.{k}": v for model, m in headline.items() for k, v in m.items() if v is not None})
        run.log_artifacts(summary, table, tradeoff, *drawn)
        run.log_table(rows, "summary")
        run.log_table(report.deploy_choices(rows), "deploy")
    print(f"report: {len(rows)} models -> {table}")


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
for stage in ("train", "prune", "finetune", "evaluate"):
    parser.add_argument(f"--{stage}", required=True, help=f"the {stage} stages' metrics folder")
parser.add_argument("--sweep", required=True, help="the sweep stages' CSV folder")
parser.add_argument("--summary", required=True, help="headline metrics per model (JSON, a DVC metric)")
parser.add_argument("--table", required=True, help="the Markdown table")
parser.add_argument("--tradeoff", required=True, help="accuracy vs speedup per model (CSV, a DVC plot)")
parser.add_argument("--charts", dest="charts_dir", required=True, help="folder of the PNG charts")

if __name__ == "__main__":
    run_stage(main, parser)
