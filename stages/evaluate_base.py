"""DVC stage `evaluate_base@<optimizer>`: accuracy, size and measured speed of a base model, the reference.

    python stages/evaluate_base.py sgd       # reads params.yaml: evaluate

The same measurement as evaluate@<method>, with the base model as its own reference (speedup and size ratio 1 by
construction; what matters here are its accuracy, images/s and bytes). Writes metrics/evaluate/base-<opt>.json,
metrics/evaluate/base-<opt>.timing.json and models/compact/base-<opt>.rz.
"""

import sys

from cnn_pruning import data, params, tracking
from cnn_pruning.stage import evaluate_and_save, run_stage


def main(optimizer: str) -> None:
    cfg = params.section("evaluate")
    path = f"models/base/{optimizer}.pt"
    with tracking.stage_run("evaluate", f"evaluate_base-{optimizer}", params=cfg,
                            tags={"method": "base", "base_optimizer": optimizer}) as run:
        evaluate_and_save(f"base-{optimizer}", path, path, cfg, data.load("data/cifar10.npz"), run,
                          {"method": "base", "ratio": 0.0, "base": optimizer})


if __name__ == "__main__":
    run_stage(main, *sys.argv[1:], expected=(tracking.TrackingError,))
