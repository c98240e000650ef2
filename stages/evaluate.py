"""DVC stage `evaluate@<method>`: accuracy, size and measured speed of a fine-tuned model against its base.

    python stages/evaluate.py kmeans_channel --data data/cifar10.npz --model models/finetuned/kmeans_channel.pt \
        --base models/base/sgd.pt --export models/compact/kmeans_channel.rz \
        --metrics metrics/evaluate/kmeans_channel.json --timing metrics/evaluate/kmeans_channel.timing.json \
        --scratch checkpoints/evaluate/kmeans_channel-base.rz

Reads params.yaml's evaluate section. Both models are timed interleaved in this process on `evaluate.runtime`.
Writes the metrics (method, ratio, base optimizer, accuracy and per-class accuracy, params, MACs, stored size,
speed, speedup and size ratio vs the base), the timing (every timed sample) and the model's compact export.
"""

import argparse

from cnn_pruning import params, schema, tracking
from cnn_pruning.datasets import dataset
from cnn_pruning.cli import add_paths, run_stage
from cnn_pruning.evaluation import EvaluateConfig, EvaluateOutputs, evaluate_and_save
from cnn_pruning.model import load_checkpoint


def main(name: str, data: str, model: str, base: str, **outputs: str) -> None:
    section = params.section("evaluate")
    cfg = schema.build(EvaluateConfig, section)
    _, meta = load_checkpoint(model)
    ds = dataset.load(data)
    labels = {"method": name, "ratio": meta.get("ratio"), "base": meta.get("base")}
    with tracking.stage_run("evaluate", f"evaluate-{name}", params=section,
                            tags=tracking.model_tags(name, meta.get("ratio"), meta.get("base")), data=ds) as run:
        evaluate_and_save(name, model, base, cfg, ds, run, labels, EvaluateOutputs(**outputs))


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("name", help="the method whose fine-tuned model is measured")
parser.add_argument("--data", required=True, help="the dataset file (.npz)")
parser.add_argument("--model", required=True, help="the fine-tuned model")
parser.add_argument("--base", required=True, help="the base model it was pruned from (the reference)")
add_paths(parser, EvaluateOutputs)

if __name__ == "__main__":
    run_stage(main, parser)
