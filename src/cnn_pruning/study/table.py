"""The study's summary as a terminal table (`make study-table`): a row per method, a column per ratio.

    python -m cnn_pruning.study.table results/study/summary.csv

Each cell is the accuracy after fine-tuning, mean ± std over seeds (%), marked `*` where the mean is within the
study's tolerance of the control's; the last column is the largest such ratio. The control's accuracy heads the
table. Read from the study stage's summary.csv, so it needs only a finished `study` stage, no DVC or MLflow.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def _number(text: str) -> float | None:
    return float(text) if text not in ("", "None") else None


def _cell(mean: float, std: float | None) -> str:
    return f"{mean:.2f}" + ("" if std is None else f" ± {std:.2f}")


def table(rows: list[dict]) -> str:
    """rows: summary.csv's rows as read by csv.DictReader (strings)."""
    control = next((r for r in rows if r["kind"] == "control"), None)
    points = [r for r in rows if r["kind"] != "control"]
    if control is None or not points:
        raise ValueError("no study rows: run the study first (make run TARGETS=study)")
    ratios = sorted({float(r["ratio"]) for r in points})
    series = list(dict.fromkeys(r["series"] for r in points))
    cells = {(r["series"], float(r["ratio"])): r for r in points}
    header = ["method", *(f"ratio {x:g}" for x in ratios), "largest within"]
    body = []
    for name in series:
        line, best = [name], None
        for ratio in ratios:
            r = cells.get((name, ratio))
            if r is None:
                line.append("")
                continue
            within = r["within_tolerance"] == "True"
            line.append(_cell(float(r["acc_mean_pct"]), _number(r["acc_std_pct"])) + (" *" if within else "  "))
            if within:
                best = ratio
        line.append("-" if best is None else f"{best:g}")
        body.append(line)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def fmt(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    head = (f"Accuracy after fine-tuning, mean ± std over seeds (%); control (not pruned): "
            f"{_cell(float(control['acc_mean_pct']), _number(control['acc_std_pct']))} (n = {control['n']}); "
            f"* = within the study's tolerance of the control")
    return "\n".join([head, "", fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body)]) + "\n"


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "results/study/summary.csv")
    if not path.is_file():
        print(f"error: {path} does not exist: run the study first (make run TARGETS=study)", file=sys.stderr)
        return 1
    with open(path, newline="") as f:
        print(table(list(csv.DictReader(f))), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
