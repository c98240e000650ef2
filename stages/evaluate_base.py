"""DVC stage `evaluate_base@<optimizer>`: accuracy, size and measured speed of a base model, the reference.

    python stages/evaluate_base.py sgd --data data/cifar10.npz --model models/base/sgd.pt \
        --export models/compact/base-sgd.rz --onnx models/onnx/base-sgd.onnx \
        --metrics metrics/evaluate/base-sgd.json \
        --timing metrics/evaluate/base-sgd.timing.json --scratch checkpoints/evaluate/base-sgd-base.rz

The same measurement as evaluate@<method> (reads params.yaml's evaluate section), with the base model as its own
reference: speedup and size ratio are 1 by construction; what matters here are its accuracy, images/s and bytes.
Its ONNX export is logged to the run as an MLflow model, as evaluate@<method>'s are.
"""

import argparse

from cnn_pruning import tracking
from cnn_pruning.core import params, schema
from cnn_pruning.core.cli import add_paths, run_stage
from cnn_pruning.datasets import dataset
from cnn_pruning.evaluation import EvaluateConfig, EvaluateOutputs, deploy, evaluate_and_save
from cnn_pruning.model import load_checkpoint


def main(optimizer: str, data: str, model: str, onnx: str, **outputs: str) -> None:
    section = params.section("evaluate")
    cfg = schema.build(EvaluateConfig, section)
    ds = dataset.load(data)
    net, _ = load_checkpoint(model)
    coords = tracking.coordinates(method="base", ratio=0.0, base_optimizer=optimizer, depth=net.depth,
                                  dataset=ds.name)
    with tracking.stage_run("evaluate", tracking.run_name("evaluate_base", optimizer), params=section,
                            coords=coords, data=ds, splits=("test",)) as run:
        metrics = evaluate_and_save(f"base-{optimizer}", model, model, cfg, ds, run,
                                    {"method": "base", "ratio": 0.0, "base": optimizer}, EvaluateOutputs(**outputs))
        deploy.export_and_log(net, onnx, ds.test, run, metrics)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("optimizer", help="the optimizer whose base model is measured")
parser.add_argument("--data", required=True, help="the dataset file (.npz)")
parser.add_argument("--model", required=True, help="the base model")
parser.add_argument("--onnx", required=True, help="the model to deploy, as ONNX (uint8 images in, logits out)")
add_paths(parser, EvaluateOutputs)

if __name__ == "__main__":
    run_stage(main, parser)
