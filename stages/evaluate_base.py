"""DVC stage `evaluate_base@<optimizer>`: accuracy, size and measured speed of a base model, the reference.

    python stages/evaluate_base.py sgd --data data/cifar10.npz --model models/base/sgd.pt \
        --export models/compact/base-sgd.rz --metrics metrics/evaluate/base-sgd.json \
        --timing metrics/evaluate/base-sgd.timing.json --scratch checkpoints/evaluate/base-sgd-base.rz

The same measurement as evaluate@<method> (reads params.yaml's evaluate section), with the base model as its own
reference: speedup and size ratio are 1 by construction; what matters here are its accuracy, images/s and bytes.
"""

import argparse

from cnn_pruning import params, schema, tracking
from cnn_pruning.datasets import dataset
from cnn_pruning.cli import add_paths, run_stage
from cnn_pruning.evaluation import EvaluateConfig, EvaluateOutputs, evaluate_and_save


def main(optimizer: str, data: str, model: str, **outputs: str) -> None:
    section = params.section("evaluate")
    cfg = schema.build(EvaluateConfig, section)
    ds = dataset.load(data)
    with tracking.stage_run("evaluate", f"evaluate_base-{optimizer}", params=section,
                            tags={"method": "base", "base_optimizer": optimizer}, data=ds) as run:
        evaluate_and_save(f"base-{optimizer}", model, model, cfg, ds, run,
                          {"method": "base", "ratio": 0.0, "base": optimizer}, EvaluateOutputs(**outputs))


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("optimizer", help="the optimizer whose base model is measured")
parser.add_argument("--data", required=True, help="the dataset file (.npz)")
parser.add_argument("--model", required=True, help="the base model")
add_paths(parser, EvaluateOutputs)

if __name__ == "__main__":
    run_stage(main, parser)
