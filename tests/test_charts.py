"""cnn_pruning.charts: the report's figures and the training curves are real PNG files, one per chart."""

from __future__ import annotations

from PIL import Image

from cnn_pruning import charts, report
from test_report import write_results


def test_charts_are_real_pngs_one_per_chart(tmp_path):
    results = report.collect(write_results(tmp_path), ["sgd"], ["none", "l2_unit"], ["l2_unit"])
    drawn = charts.report_charts(results, report.summary_rows(results), tmp_path / "charts")
    assert sorted(p.name for p in drawn) == ["accuracy_vs_ratio.png", "accuracy_vs_speedup.png",
                                             "params_vs_ratio.png", "size_vs_ratio.png", "time_vs_ratio.png"]
    for path in drawn:
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width > 300
    history = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.1 / e, "train_acc": 0.1 * e, "val_acc": 0.09 * e}
               for e in (1, 2, 3)]
    charts.plot_history(history, tmp_path / "h.png", "title")
    assert Image.open(tmp_path / "h.png").format == "PNG"


def test_every_shipped_method_and_variant_has_its_own_colour():
    from cnn_pruning import pruning
    from cnn_pruning.charts import colour

    names = [pruning.CONTROL, *pruning.METHODS, *pruning.SCOPE_ALL_VARIANTS]
    assert len({colour(n) for n in names}) == len(names)
    assert colour("my_variant") == colour("my_variant") and colour("my_variant").startswith("#")
