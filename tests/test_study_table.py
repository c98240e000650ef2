"""cnn_pruning.study.table: the study's summary.csv as a terminal table (`make study-table`)."""

from __future__ import annotations

import sys

import pytest

from cnn_pruning.study import table as study_table
from helpers import run, tool_env


@pytest.mark.dvc
def test_the_table_has_a_row_per_method_a_column_per_ratio_and_the_answer(tiny_pipeline):
    proc = run([sys.executable, "-m", "cnn_pruning.study.table", "results/study/summary.csv"], tiny_pipeline,
               env=tool_env())
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Accuracy after fine-tuning, mean ± std over seeds (%); control (not pruned): ")
    assert "(n = 2)" in lines[0]  # the tiny study's two seeds
    header = lines[2].split()
    assert header[0] == "method" and "0.5" in header and header[-2:] == ["largest", "within"]
    methods = [line.split()[0] for line in lines[4:]]
    assert methods == ["magnitude", "random"]
    assert all("±" in line for line in lines[4:]) and max(map(len, lines)) <= 160


def test_cells_marked_within_tolerance_and_the_largest_such_ratio():
    def row(series, kind, ratio, mean, within):
        return {"series": series, "kind": kind, "ratio": str(ratio), "n": "3", "acc_mean_pct": str(mean),
                "acc_std_pct": "0.5", "within_tolerance": str(within)}
    rows = [row("none", "control", 0.0, 91.0, ""), row("magnitude", "method", 0.5, 90.8, True),
            row("magnitude", "method", 0.9, 85.0, False), row("l2_unit", "method", 0.5, 88.0, False)]
    text = study_table.table(rows)
    magnitude = next(line for line in text.splitlines() if line.startswith("magnitude"))
    l2 = next(line for line in text.splitlines() if line.startswith("l2_unit"))
    assert "90.80 ± 0.50 *" in magnitude and "85.00 ± 0.50" in magnitude and magnitude.rstrip().endswith("0.5")
    assert l2.rstrip().endswith("-") and "88.00 ± 0.50" in l2


def test_no_study_yet_says_what_to_run(tmp_path, capsys):
    assert study_table.main([str(tmp_path / "summary.csv")]) == 1
    assert "run the study first (make run TARGETS=study)" in capsys.readouterr().err
