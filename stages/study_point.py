"""DVC stages `point@<method>-<ratio>-<seed>-<variant>` and `control@<seed>`: one point of the study, pruned from the
base model, fine-tuned with the finetune recipe at the point's seed, and measured.

    python stages/study_point.py l2_unit --ratio 0.5 --seed 1 --variant gradual \
        --settings results/study/variants/gradual.json --data data/cifar10.npz \
        --base models/base/sgd.pt --model models/study/l2_unit-0.5-1-gradual.pt \
        --metrics results/study/points/l2_unit-0.5-1-gradual.json \
        --resume checkpoints/study/l2_unit-0.5-1-gradual.pt --scratch checkpoints/study/l2_unit-0.5-1-gradual.rz
    python stages/study_point.py none --seed 1 ...        # the control: the base, fine-tuned the same way

Reads prune.base, prune.options.<method> and the finetune recipe (all but finetune.seed: the point's seed replaces
it, and the method's own seed option too; cnn_pruning.study). The variant (study.VARIANTS) switches gradual
pruning and distillation on (it, not prune.schedule or finetune.distill, decides); their settings come from the
variant's file (stages/study_variant.py), which holds only what the variant uses. Writes the fine-tuned model and one
JSON row (cnn_pruning.study.point.run_point); logs one MLflow run, point-<method>@<ratio>-s<seed>[-<variant>], whose
params method, ratio, seed and variant let MLflow's Compare and chart views plot test_acc against them.
"""

import json
from pathlib import Path

from cnn_pruning import pruning, study, tracking
from cnn_pruning.core import files, params, schema
from cnn_pruning.core.cli import pruning_parser, run_stage
from cnn_pruning.datasets import dataset
from cnn_pruning.machine import device_tags, pick_device
from cnn_pruning.model import load_checkpoint, save_checkpoint
from cnn_pruning.pruning.gradual import Schedule
from cnn_pruning.study import point
from cnn_pruning.training import TrainConfig


def main(method: str, ratio: float | None, seed: int, variant: str, settings: str | None, data: str, base: str,
         model: str, metrics: str, resume: str, scratch: str) -> None:
    control = method == pruning.CONTROL
    if control != (ratio is None):
        raise ValueError(f"--ratio is {'not taken by the control' if control else 'required for ' + method!r}")
    if variant not in study.VARIANTS:
        raise ValueError(f"unknown study variant {variant!r}; allowed: {', '.join(study.VARIANTS)}")
    finetune, prune = params.section("finetune"), params.section("prune")
    recipe = TrainConfig.from_params(finetune)
    how = json.loads(Path(settings).read_text()) if settings else point.variant_settings(variant, {}, {})
    schedule = schema.build(Schedule, how["schedule"])
    distill = (how["distill"]["alpha"], how["distill"]["temperature"]) if how["distill"] else None
    runs, options = (pruning.CONTROL, {}) if control else pruning.resolve(method, prune["options"])
    if not control:
        options = study.seeded(runs, options, seed)
        pruning.validate(runs, ratio, options)  # before any expensive work
    own = {"method": method, "runs": runs, "variant": variant, "ratio": ratio, "seed": seed, "base": prune["base"],
           "options": options, "finetune": {k: v for k, v in {**finetune, "seed": seed}.items()
                                            if not k.startswith("distill")}}
    if not control:
        own.update(how)
    ds = dataset.load(data)
    base_model, _ = load_checkpoint(base)
    coords = tracking.coordinates(method=method, ratio=ratio or 0.0, base_optimizer=prune["base"], seed=seed,
                                  depth=base_model.depth, dataset=ds.name, variant=None if control else variant)
    name = study.point_name(method, ratio, seed, variant)
    with tracking.stage_run("study_point", tracking.run_name("point", method, ratio, seed, variant),
                            params={k: v for k, v in own.items() if k not in (*coords, "variant")}, coords=coords,
                            tags=device_tags(pick_device(recipe.device)), data=ds, splits=("train", "val", "test"),
                            system_metrics=True) as run:
        tuned, row = point.run_point(
            base_model, ds, runs, ratio, seed, options, recipe, finetune["optimizer"], finetune["optimizer_params"],
            scratch=scratch, resume_path=resume,
            resume_key=files.fingerprint(own, files.md5_of(data), files.md5_of(base)),
            on_epoch=lambda r: run.log_metrics({k: v for k, v in r.items() if k != "epoch"}, step=r["epoch"]),
            name=method, variant=variant, schedule=schedule, distill=distill)
        row = {**row, "base": prune["base"]}
        save_checkpoint(model, tuned, meta={"method": method, "ratio": ratio, "seed": seed, "base": prune["base"],
                                            "stage": "study_point", "test_acc": row["test_acc"]})
        files.write_json(metrics, row)
        run.when_finished.append(lambda: files.remove(resume))  # once the run is closed: a rerun starts afresh
        run.log_results(row, skip=("ratio", "seed"))  # params of the run
        run.log_model(model)
        run.log_artifacts(named={"metrics.json": metrics})
    print(f"point-{name}: test_acc {row['acc_after_prune']:.4f} after one-shot pruning -> {row['test_acc']:.4f} after "
          f"{row['epochs']} fine-tune epochs ({variant}); {row['nonzero_params']} nonzero params, MACs reduced "
          f"{row['macs_reduction']:.2f}x, {row['size_bytes']} B stored; {row['finetune_seconds']:.0f} s fine-tuning, "
          f"{row['teacher_seconds']:.0f} s of it the teacher")


parser = pruning_parser(__doc__, "a registered pruning method, a named variant in prune.options, or none (the control)")
parser.add_argument("--ratio", type=float, default=None, help="fraction removed (not for the control)")
parser.add_argument("--seed", type=int, required=True, help="the point's seed: fine-tuning, k-means, baselines")
parser.add_argument("--variant", default="oneshot", help="how it is pruned and tuned: one of study.VARIANTS")
parser.add_argument("--settings", help="the variant's settings (stages/study_variant.py); default: its defaults")
parser.add_argument("--model", required=True, help="the fine-tuned model written")
parser.add_argument("--metrics", required=True, help="the point's row (JSON)")
parser.add_argument("--resume", required=True, help="scratch state while fine-tuning; a crash resumes from it")
parser.add_argument("--scratch", required=True, help="the compact export while it is measured; removed after")

if __name__ == "__main__":
    run_stage(main, parser)
