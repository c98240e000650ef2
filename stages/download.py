"""DVC stage `download`: the dataset `data.name` from `data.source` into the canonical file later stages load.

    python stages/download.py --out data/cifar10.npz --summary metrics/data.json --cache .cache/downloads

Reads params.yaml's data section. Writes the dataset file (uint8 images, labels, class names, normalisation
statistics; train/val/test) and
a summary (counts per split and class). Downloads are kept in --cache, relative to the project root (DVC_ROOT), so
temporary experiment copies share them.
"""

import argparse

from cnn_pruning import tracking
from cnn_pruning.core import files, params, schema
from cnn_pruning.core.cli import run_stage
from cnn_pruning.datasets import dataset, prepare


def main(out: str, summary: str, cache: str) -> None:
    cfg = schema.build(prepare.DataConfig, params.section("data"))
    root = params.project_root()
    source, md5 = prepare.official_source(cfg.name, cfg.source, cfg.md5)
    with tracking.stage_run("download", "download", params=vars(cfg), tags={"data.source": source}) as run:
        ds = prepare.prepare(cfg.name, source, md5, out, root=root, val_size=cfg.val_size, train_size=cfg.train_size,
                             test_size=cfg.test_size, seed=cfg.seed, cache_dir=params.resolve(cache, root))
        counts = dataset.summary(ds)
        files.write_json(summary, counts)
        run.set_tags({**tracking.data_tags(ds), "data_md5": files.md5_of(out)})
        run.log_inputs(ds, ("train", "val", "test"))
        run.log_results({k: v for k, v in counts.items() if k.endswith("_images")})
        run.log_artifacts(summary)
    print(f"download: {ds.title}, {len(ds.classes)} classes, {counts['train_images']} train / "
          f"{counts['val_images']} val / {counts['test_images']} test "
          f"images from {ds.source} -> {out}")


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", required=True, help="the dataset file (.npz)")
parser.add_argument("--summary", required=True, help="counts per split and class (JSON)")
parser.add_argument("--cache", required=True, help="download cache folder, relative to the project root")

if __name__ == "__main__":
    run_stage(main, parser)
