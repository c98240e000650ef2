"""DVC stage `study_speed@<method>-<ratio>`: the measured speed of one method at one ratio, against the base.

    python stages/study_speed.py l2_unit --ratio 0.5 --data data/cifar10.npz --base models/base/sgd.pt \
        --out results/study/speed/l2_unit-0.5.json --scratch checkpoints/study_speed/l2_unit-0.5

Speed depends on the architecture a method leaves (widths, sparsity, shared filters), not on the seed or the
fine-tuned values: each (method, ratio) is timed once, on the base pruned with the method's options as given (not
fine-tuned), interleaved with the base in this process, exactly as the evaluate stage times a model
(evaluation.compare, params.yaml's evaluate section). Writes one JSON: speedup at evaluate.batch_size and at batch 1,
images/s of both, MACs and size ratios, runtime, device, threads and the machine's load while timing.
"""

import shutil
from pathlib import Path

from cnn_pruning import evaluation, pruning, tracking
from cnn_pruning.core import files, params, schema
from cnn_pruning.core.cli import pruning_parser, run_stage
from cnn_pruning.datasets import dataset
from cnn_pruning.machine import pick_device
from cnn_pruning.model import load_checkpoint


def main(method: str, ratio: float, data: str, base: str, out: str, scratch: str) -> None:
    section, prune = params.section("evaluate"), params.section("prune")
    cfg = schema.build(evaluation.EvaluateConfig, section)
    runs, options = pruning.resolve(method, prune["options"])
    _, options = pruning.validate(runs, ratio, options)
    ds = dataset.load(data)
    base_model, _ = load_checkpoint(base)
    own = {**section, "runs": runs, "options": options}
    coords = tracking.coordinates(method=method, ratio=ratio, base_optimizer=prune["base"], depth=base_model.depth,
                                  dataset=ds.name)
    with tracking.stage_run("study_speed", tracking.run_name("speed", method, ratio), params=own, coords=coords,
                            data=ds, splits=("test",)) as run:
        model = pruning.prune(base_model, runs, ratio, **options).model
        metrics, _ = evaluation.compare(
            model, base_model, ds.test, export_path=Path(scratch) / "model.rz",
            base_export_path=Path(scratch) / "base.rz",
            runtime=cfg.runtime, batch_size=cfg.batch_size, rounds=cfg.rounds, warmup=cfg.warmup,
            device=str(pick_device(cfg.device)), threads=cfg.threads, precision=cfg.precision)
        shutil.rmtree(scratch, ignore_errors=True)
        row = {"method": method, "ratio": ratio, "base": prune["base"],
               **{k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}}
        files.write_json(out, row)
        run.log_results(row, skip=("ratio",))  # ratio: a param of the run
        run.log_artifacts(named={"speed.json": out})
    print(f"study_speed-{method}-{ratio}: speedup {row['speedup']:.2f}x at batch {cfg.batch_size}, "
          f"{row['speedup_b1']:.2f}x at batch 1 on {row['runtime']} ({row['device']})")


parser = pruning_parser(__doc__, "a registered pruning method or a named variant in prune.options")
parser.add_argument("--ratio", type=float, required=True, help="fraction removed")
parser.add_argument("--out", required=True, help="the speed measurement (JSON)")
parser.add_argument("--scratch", required=True, help="folder for the two exports while they are measured")

if __name__ == "__main__":
    run_stage(main, parser)
