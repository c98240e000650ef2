"""DVC stage `evaluate@<method>`: accuracy, size and measured speed of a fine-tuned model against its base.

    python stages/evaluate.py kmeans_channel --data data/cifar10.npz --model models/finetuned/kmeans_channel.pt \
        --base models/base/sgd.pt --export models/compact/kmeans_channel.rz \
        --onnx models/onnx/kmeans_channel.onnx --metrics metrics/evaluate/kmeans_channel.json \
        --timing metrics/evaluate/kmeans_channel.timing.json --scratch checkpoints/evaluate/kmeans_channel-base.rz

Reads params.yaml's evaluate section. Both models are timed interleaved in this process on `evaluate.runtime`.
Writes the metrics (method, ratio, base optimizer, accuracy and per-class accuracy, params, MACs, stored size,
speed, speedup and size ratio vs the base), the timing (every timed sample), the model's compact export and its
ONNX export for deployment (uint8 images in, logits out; cnn_pruning.evaluation.deploy), which is also logged to the
run as an
MLflow model.
"""

import argparse

from cnn_pruning import tracking
from cnn_pruning.core import params, schema
from cnn_pruning.core.cli import add_paths, run_stage
from cnn_pruning.datasets import dataset
from cnn_pruning.evaluation import EvaluateConfig, EvaluateOutputs, deploy, evaluate_and_save
from cnn_pruning.model import load_checkpoint


def main(name: str, data: str, model: str, base: str, onnx: str, **outputs: str) -> None:
    section = params.section("evaluate")
    cfg = schema.build(EvaluateConfig, section)
    tuned, meta = load_checkpoint(model)
    ds = dataset.load(data)
    labels = {"method": name, "ratio": meta.get("ratio"), "base": meta.get("base")}
    coords = tracking.coordinates(method=name, ratio=meta.get("ratio") or 0.0, base_optimizer=meta.get("base"),
                                  depth=tuned.depth, dataset=ds.name)
    with tracking.stage_run("evaluate", tracking.run_name("evaluate", name, meta.get("ratio")), params=section,
                            coords=coords, data=ds, splits=("test",)) as run:
        metrics = evaluate_and_save(name, model, base, cfg, ds, run, labels, EvaluateOutputs(**outputs))
        deploy.export_and_log(tuned, onnx, ds.test, run, metrics)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("name", help="the method whose fine-tuned model is measured")
parser.add_argument("--data", required=True, help="the dataset file (.npz)")
parser.add_argument("--model", required=True, help="the fine-tuned model")
parser.add_argument("--base", required=True, help="the base model it was pruned from (the reference)")
parser.add_argument("--onnx", required=True, help="the model to deploy, as ONNX (uint8 images in, logits out)")
add_paths(parser, EvaluateOutputs)

if __name__ == "__main__":
    run_stage(main, parser)
