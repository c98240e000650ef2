"""DVC stage `finetune@<method>`: fine-tune a pruned model with the shared recipe in finetune.*, or, with
prune.schedule gradual, prune the base model in steps while fine-tuning it.

    python stages/finetune.py magnitude --data data/cifar10.npz --pruned models/pruned/magnitude.pt \
        --base models/base/sgd.pt --model models/finetuned/magnitude.pt --metrics metrics/finetune/magnitude.json \
        --timing metrics/finetune/magnitude.timing.json --history plots/finetune/magnitude.csv \
        --chart plots/finetune/magnitude.png --resume checkpoints/finetune/magnitude.pt

Reads params.yaml's finetune section; how to prune (method, ratio, options, and the schedule: prune.schedule,
steps, prune_until) comes from the prune stage's model's meta. Writes the same kinds of files as training. What a
method pruned stays pruned: masked weights and zeroed units stay exactly zero, shared filters stay tied, removed
channels stay gone.
  * oneshot: starts from the prune stage's model.
  * gradual: starts from the base model and reaches the ratio in prune.steps steps during the first
    prune.prune_until of the iterations (cnn_pruning.pruning.gradual). The method, ratio, options and schedule are
    the ones the prune stage recorded in its model's meta: that file is a dependency, and it changes exactly when
    they do (declaring prune.ratio or prune.steps here would rerun the control's fine-tune, whose file stays the
    same). The prune stage still reports the accuracy of the one-shot model right after pruning.
  * finetune.distill: the loss also follows the base model's outputs (train.Distillation); the control, being the
    base itself, is fine-tuned without a teacher.
"""

import argparse
import copy

from cnn_pruning import pruning, tracking
from cnn_pruning.core import files, params, schema
from cnn_pruning.core.cli import add_paths, run_stage
from cnn_pruning.datasets import dataset
from cnn_pruning.machine import device_tags, pick_device
from cnn_pruning.model import load_checkpoint
from cnn_pruning.pruning.gradual import GradualPruner, Schedule
from cnn_pruning.training import Distillation, TrainConfig, iterations
from cnn_pruning.training.fitting import FitOutputs, fit_and_save


def main(method: str, data: str, pruned: str, base: str, **outputs: str) -> None:
    section = params.section("finetune")
    cfg = TrainConfig.from_params(section)
    control = method == pruning.CONTROL
    model, meta = load_checkpoint(pruned)
    schedule = schema.build(Schedule, meta.get("schedule", {}))  # checkpoints from before schedules: one-shot
    base_model, _ = load_checkpoint(base)
    ds = dataset.load(data)
    how = meta.get("pruning", {})
    pruner = None
    if schedule.schedule == "gradual" and not control:
        pruner = GradualPruner(base_model, how["method"], how["ratio"], how["options"], schedule, iterations(ds, cfg))
        model = copy.deepcopy(base_model)
    teacher = None if control else Distillation.from_params(section, base_model)
    tags = {**device_tags(pick_device(cfg.device)), "schedule": "oneshot" if pruner is None else "gradual",
            "distill": teacher is not None}
    own = {**section, **schedule.record()}
    coords = tracking.coordinates(method=method, ratio=meta.get("ratio") or 0.0, base_optimizer=meta.get("base"),
                                  seed=cfg.seed, depth=base_model.depth, dataset=ds.name)
    with tracking.stage_run("finetune", tracking.run_name("finetune", method, meta.get("ratio")), params=own,
                            tags=tags, coords=coords, data=ds, splits=("train", "val", "test"),
                            system_metrics=True) as run:
        fit_and_save(model, ds, stage="finetune", name=method, optimizer=section["optimizer"],
                     hparams=section["optimizer_params"], cfg=cfg, run=run, outputs=FitOutputs(**outputs),
                     resume_key=files.fingerprint(own, files.md5_of(data), files.md5_of(pruned), files.md5_of(base)),
                     meta={"method": method, "ratio": meta.get("ratio"), "base": meta.get("base"),
                           "schedule": tags["schedule"], "distill": tags["distill"], "pruning": how},
                     teacher=teacher, changes=pruner)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("method", help="the pruning method whose model is fine-tuned (none = the control)")
parser.add_argument("--data", required=True, help="the dataset file (.npz)")
parser.add_argument("--pruned", required=True, help="the prune stage's model: the start (oneshot), and the method, "
                    "ratio and options (gradual)")
parser.add_argument("--base", required=True, help="the base model: the start of gradual pruning, the teacher")
add_paths(parser, FitOutputs)

if __name__ == "__main__":
    run_stage(main, parser)
