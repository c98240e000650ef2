"""DVC stage `finetune@<method>`: fine-tune a pruned model with the shared recipe in finetune.*.

    python stages/finetune.py magnitude     # reads params.yaml: finetune

Writes models/finetuned/<method>.pt, metrics/finetune/<method>.json, metrics/finetune/<method>.timing.json and
plots/finetune/<method>.csv (one row per epoch, the same columns as training). What a method pruned stays
pruned: masked weights and zeroed units stay exactly zero, shared filters stay tied, removed channels stay gone.
"""

import sys

from cnn_pruning import data, files, params, tracking
from cnn_pruning.model import load_checkpoint
from cnn_pruning.stage import device_tags, fingerprint, fit_and_save, run_stage
from cnn_pruning.train import TrainConfig, pick_device

DATA = "data/cifar10.npz"


def main(method: str) -> None:
    section = params.section("finetune")
    cfg = TrainConfig.from_params(section)
    source = f"models/pruned/{method}.pt"
    model, meta = load_checkpoint(source)
    ds = data.load(DATA)
    tags = {"method": method, "ratio": "" if meta.get("ratio") is None else meta["ratio"],
            "base_optimizer": meta.get("base", ""), **device_tags(pick_device(cfg.device))}
    with tracking.stage_run("finetune", f"finetune-{method}", params=section, tags=tags) as run:
        fit_and_save(model, ds, stage="finetune", name=method, optimizer=section["optimizer"],
                     hparams=section["optimizer_params"], cfg=cfg, run=run, model_path=f"models/finetuned/{method}.pt",
                     resume_key=fingerprint(section, files.md5_of(DATA), files.md5_of(source)),
                     meta={"method": method, "ratio": meta.get("ratio"), "base": meta.get("base"),
                           "pruning": meta.get("pruning", {})})


if __name__ == "__main__":
    run_stage(main, *sys.argv[1:], expected=(tracking.TrackingError,))
