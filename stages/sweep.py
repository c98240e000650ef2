"""DVC stage `sweep@<method>`: prune the base model at every ratio in sweep.ratios (no fine-tune) and measure it.

    python stages/sweep.py l2_unit --data data/cifar10.npz --base models/base/sgd.pt --out plots/sweep/l2_unit.csv \
        --scratch checkpoints/sweep/l2_unit

Reads sweep, prune.base and prune.options.<method> (a method's options or a named variant's; pruning.resolve).
One row per ratio: params, nonzeros, distinct filters, MACs,
stored size, accuracy before fine-tuning, and speed against the base timed interleaved in this process. To keep the
sweep to minutes on a CPU, speed is a fixed small number of timed batches per point (the `timed_rounds` and
`timed_batch_size` columns say how many) and accuracy uses `sweep.eval_images` test images (the `eval_images`
column). It does not read prune.ratio, so `dvc exp run -S prune.ratio=...` leaves it cached.
"""

import shutil

import torch

from cnn_pruning import evaluation, pruning, tracking
from cnn_pruning.core import files, params, schema
from cnn_pruning.core.cli import pruning_parser, run_stage
from cnn_pruning.datasets import dataset, splits
from cnn_pruning.evaluation import speed
from cnn_pruning.machine import device_tags, pick_device
from cnn_pruning.model import load_checkpoint

COLUMNS = ("method", "ratio", "test_acc", "base_test_acc", "params", "nonzero_params", "distinct_filters", "macs",
           "size_bytes", "size_kib", "size_ratio", "params_ratio", "macs_ratio", "images_per_s", "base_images_per_s",
           "ms_per_batch", "base_ms_per_batch", "speedup", "speedup_b1", "runtime", "device", "threads",
           "timed_batch_size", "timed_rounds", "eval_images", "dvc_queue_workers", "load_avg_1m")


def main(method: str, data: str, base: str, out: str, scratch: str) -> None:
    section, prune_cfg = params.section("sweep"), params.section("prune")
    cfg = schema.build(evaluation.SweepConfig, section)
    optimizer, (runs, options) = prune_cfg["base"], pruning.resolve(method, prune_cfg["options"])
    for ratio in cfg.ratios:
        pruning.validate(runs, ratio, options)
    base_model, _ = load_checkpoint(base)
    ds = dataset.load(data)
    test = ds.test
    if cfg.eval_images is not None and cfg.eval_images < len(test.labels):
        test = dataset.subset(test, splits.stratified_indices(test.labels, cfg.eval_images, seed=0))
    own = {**section, "runs": runs, "options": pruning.defaults(runs) | options}
    device = pick_device(cfg.device)
    tags = {"runtime": cfg.runtime, **device_tags(device), "threads": cfg.threads or torch.get_num_threads()}
    coords = tracking.coordinates(method=method, base_optimizer=optimizer, depth=base_model.depth, dataset=ds.name)
    with tracking.stage_run("sweep", tracking.run_name("sweep", method), params=own, tags=tags, coords=coords,
                            data=ds, splits=("test",)) as run:
        rows = evaluation.sweep(base_model, runs, cfg.ratios, options, test, scratch, name=method, runtime=cfg.runtime,
                                batch_size=cfg.batch_size, rounds=cfg.rounds, warmup=speed.CHEAP["warmup"],
                                device=str(device), threads=cfg.threads)
        rows = [{**{k: r.get(k) for k in COLUMNS}, "size_kib": r["size_bytes"] / 1024,
                 "timed_batch_size": cfg.batch_size, "timed_rounds": cfg.rounds, "eval_images": len(test.labels)}
                for r in rows]
        for row in rows:
            run.log_metrics({k: v for k, v in row.items() if k not in ("ratio", *tracking.RUN_CONSTANTS)},
                            step=round(row["ratio"] * 100))  # MLflow steps are integers: the ratio in percent
            print(f"sweep-{method} ratio {row['ratio']}: acc {row['test_acc']:.4f}, params {row['params']}, "
                  f"size {row['size_ratio']:.2f}x smaller, speedup {row['speedup']:.2f}x")
        files.write_csv(out, rows, COLUMNS)
        shutil.rmtree(scratch, ignore_errors=True)
        run.log_artifacts(named={"sweep.csv": out})


parser = pruning_parser(__doc__, "a registered pruning method or a named variant in prune.options")
parser.add_argument("--out", required=True, help="one CSV row per ratio")
parser.add_argument("--scratch", required=True, help="a folder for the exports while they are measured")

if __name__ == "__main__":
    run_stage(main, parser)
