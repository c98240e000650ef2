"""cnn_pruning.charts: the report's figures and the training curves are real PNG files, one per chart, readable at a
glance: 150 dpi or more, labels that do not overlap, integer epochs, plain tick labels, a subtitle."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from cnn_pruning import charts, report
from cnn_pruning.charts import plt
from helpers import REPO, write_results


def test_charts_are_real_pngs_one_per_chart_at_150_dpi(tmp_path):
    results = report.collect(write_results(tmp_path), ["sgd"], ["none", "l2_unit"], ["l2_unit"])
    drawn = charts.report_charts(results, report.summary_rows(results), tmp_path / "charts", "ResNet20 on CIFAR-10",
                                 "base models: 10,000 training images x 15 epochs")
    assert sorted(p.name for p in drawn) == ["accuracy_vs_ratio.png", "accuracy_vs_speedup.png",
                                             "params_vs_ratio.png", "size_vs_ratio.png", "time_vs_ratio.png"]
    for path in drawn:
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width >= 1000
            assert round(img.info["dpi"][0]) >= 150
    history = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.1 / e, "train_acc": 0.1 * e, "val_acc": 0.09 * e}
               for e in (1, 2, 3)]
    charts.plot_history(history, tmp_path / "h.png", "title", "3 epochs")
    assert Image.open(tmp_path / "h.png").format == "PNG"


def test_labels_of_points_that_coincide_do_not_overlap():
    """base-sgd and none sit at the same speedup and nearly the same accuracy in every quick run."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    points = [(1.0, 68.6), (1.0, 68.7), (1.0, 68.65), (1.67, 64.4), (1.07, 67.5), (1.09, 65.5)]
    labels = ["base-sgd", "none", "base-adam", "l2_unit", "kmeans_channel", "kmeans_shared"]
    ax.scatter(*zip(*points))
    texts = charts.place_labels(ax, points, labels)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), "two labels overlap"
    plt.close(fig)


def test_epochs_are_integer_ticks_and_numbers_have_no_offset(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(charts, "save_figure", lambda fig, path: seen.append(fig))
    history = [{"epoch": e, "train_loss": 1e5 + e, "val_loss": 1e5 + 2 * e, "train_acc": 0.5, "val_acc": 0.5}
               for e in (1, 2, 3)]
    charts.plot_history(history, tmp_path / "h.png", "title", "subtitle")
    fig = seen[0]
    fig.canvas.draw()
    loss_ax = fig.axes[0]
    ticks = [t for t in loss_ax.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert loss_ax.yaxis.get_offset_text().get_text() == ""
    assert any(t.get_text() == "subtitle" for t in fig.texts)
    plt.close(fig)


def test_every_shipped_method_and_variant_has_its_own_colour():
    from cnn_pruning import pruning
    from cnn_pruning.charts import colour

    names = [pruning.CONTROL, *pruning.METHODS, *pruning.SCOPE_ALL_VARIANTS]
    assert len({colour(n) for n in names}) == len(names)
    # A name of one's own gets a colour of the extra palette, the same in every process: not Python's hash(),
    # which differs per interpreter (PYTHONHASHSEED), so a chart redrawn later keeps its colours.
    assert colour("my_variant") in charts._MORE
    code = "from cnn_pruning.charts import colour; print(colour('my_variant'), colour('another_one'))"
    seen = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                           capture_output=True, text=True, check=True).stdout for seed in ("1", "2")}
    assert seen == {f"{colour('my_variant')} {colour('another_one')}\n"}


def locked_versions() -> dict[str, str]:
    lock = json.loads((REPO / "tools" / "vega" / "package-lock.json").read_text())
    return {name: lock["packages"][f"node_modules/{name}"]["version"] for name in ("vega", "vega-lite", "vega-embed")}


def test_the_committed_plots_page_inlines_the_locked_libraries():
    page = (REPO / "tools" / "vega" / "offline.html").read_text()
    assert "{plot_divs}" in page and "<script src" not in page and "cdn." not in page
    for name, version in locked_versions().items():
        assert f"<script>/* {name}@{version} */" in page, f"rebuild the page: make plots-page ({name}@{version})"
    assert "html_template = ../tools/vega/offline.html" in (REPO / ".dvc" / "config").read_text()


@pytest.mark.parametrize("template", ["lines.json", "lines_percent.json", "labeled_scatter.json",
                                      "study_curve.json", "study_curve_logx.json"])
def test_templates_colour_by_series_and_tell_revisions_apart_without_a_smooth_slider(template):
    spec = json.loads((REPO / "tools" / template).read_text())
    text = json.dumps(spec)
    assert "<DVC_METRIC_DATA>" in text and "params" not in spec  # DVC's linear template binds a slider there
    assert '"field": "rev"' in text  # dvc plots diff: one dash or shape per revision
    assert any(f'"color": {{"field": "{f}"' in text for f in ("series", "model"))
