"""DVC stage `finetune@<method>`: fine-tune a pruned model with the shared recipe in finetune.*.

    python stages/finetune.py magnitude --data data/cifar10.npz --pruned models/pruned/magnitude.pt \
        --model models/finetuned/magnitude.pt --metrics metrics/finetune/magnitude.json \
        --timing metrics/finetune/magnitude.timing.json --history plots/finetune/magnitude.csv \
        --chart plots/finetune/magnitude.png --resume checkpoints/finetune/magnitude.pt

Reads params.yaml's finetune section. Writes the same kinds of files as training. What a method pruned stays
pruned: masked weights and zeroed units stay exactly zero, shared filters stay tied, removed channels stay gone.
"""

import argparse

from cnn_pruning import files, params, tracking
from cnn_pruning.datasets import dataset
from cnn_pruning.cli import add_paths, run_stage
from cnn_pruning.fitting import FitOutputs, fit_and_save
from cnn_pruning.machine import device_tags, pick_device
from cnn_pruning.model import load_checkpoint
from cnn_pruning.train import TrainConfig


def main(method: str, data: str, pruned: str, **outputs: str) -> None:
    section = params.section("finetune")
    cfg = TrainConfig.from_params(section)
    model, meta = load_checkpoint(pruned)
    ds = dataset.load(data)
    tags = {**tracking.model_tags(method, meta.get("ratio"), meta.get("base")), **device_tags(pick_device(cfg.device))}
    with tracking.stage_run("finetune", f"finetune-{method}", params=section, tags=tags, data=ds) as run:
        fit_and_save(model, ds, stage="finetune", name=method, optimizer=section["optimizer"],
                     hparams=section["optimizer_params"], cfg=cfg, run=run, outputs=FitOutputs(**outputs),
                     resume_key=files.fingerprint(section, files.md5_of(data), files.md5_of(pruned)),
                     meta={"method": method, "ratio": meta.get("ratio"), "base": meta.get("base"),
                           "pruning": meta.get("pruning", {})})


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("method", help="the pruning method whose model is fine-tuned (none = the control)")
parser.add_argument("--data", required=True, help="the dataset file (.npz)")
parser.add_argument("--pruned", required=True, help="the pruned model to start from")
add_paths(parser, FitOutputs)

if __name__ == "__main__":
    run_stage(main, parser)
