"""DVC stage `download`: CIFAR-10 from `data.source` into data/cifar10.npz, the one form later stages load.

    python stages/download.py          # reads params.yaml: data

Writes data/cifar10.npz (uint8 images, labels, class names; train/val/test) and metrics/data.json (counts).
"""

import sys

from cnn_pruning import data, files, params, tracking
from cnn_pruning.stage import run_stage

OUT, METRICS = "data/cifar10.npz", "metrics/data.json"


def main() -> None:
    cfg = params.section("data")
    root = params.project_root()
    with tracking.stage_run("download", "download", params=cfg, tags={"data.source": cfg["source"]}) as run:
        ds = data.prepare(cfg["source"], cfg.get("md5"), OUT, root=root, val_size=cfg["val_size"],
                          train_size=cfg.get("train_size"), test_size=cfg.get("test_size"), seed=cfg.get("seed", 0),
                          cache_dir=root / ".cache" / "downloads")
        summary = data.summary(ds)
        files.write_json(METRICS, summary)
        run.set_tags({"data.source_md5": ds.source_md5 or "", "data_md5": files.md5_of(OUT)})
        run.log_metrics({k: v for k, v in summary.items() if k.endswith("_images")})
        run.log_artifact(METRICS)
        print(f"download: {summary['train_images']} train / {summary['val_images']} val / "
              f"{summary['test_images']} test images from {ds.source} -> {OUT}")


if __name__ == "__main__":
    run_stage(main, *sys.argv[1:], expected=(tracking.TrackingError,))
