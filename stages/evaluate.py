"""DVC stage `evaluate@<method>`: accuracy, size and measured speed of a fine-tuned model against its base.

    python stages/evaluate.py kmeans_channel    # reads params.yaml: evaluate

Compares models/finetuned/<method>.pt with the base model it was pruned from (models/base/<base>.pt, named in the
checkpoint), both timed interleaved in this process on `evaluate.runtime`. Writes metrics/evaluate/<method>.json
(method, ratio, base optimizer, accuracy and per-class accuracy, params, MACs, stored size, speed, speedup and size
ratio vs the base), metrics/evaluate/<method>.timing.json (every timed sample) and models/compact/<method>.rz.
"""

import sys

from cnn_pruning import data, params, tracking
from cnn_pruning.model import load_checkpoint
from cnn_pruning.stage import evaluate_and_save, run_stage


def main(method: str) -> None:
    cfg = params.section("evaluate")
    model_path = f"models/finetuned/{method}.pt"
    _, meta = load_checkpoint(model_path)
    labels = {"method": method, "ratio": meta.get("ratio"), "base": meta.get("base")}
    tags = {"method": method, "ratio": "" if meta.get("ratio") is None else meta["ratio"],
            "base_optimizer": meta.get("base", "")}
    with tracking.stage_run("evaluate", f"evaluate-{method}", params=cfg, tags=tags) as run:
        evaluate_and_save(method, model_path, f"models/base/{meta['base']}.pt", cfg, data.load("data/cifar10.npz"),
                          run, labels)


if __name__ == "__main__":
    run_stage(main, *sys.argv[1:], expected=(tracking.TrackingError,))
