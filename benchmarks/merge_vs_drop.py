"""kmeans_channel's merge against plain dropping, before any fine-tuning, on a trained base: per scope and ratio,
the test accuracy right after pruning and the mean squared error of the logits against the base's.

    python benchmarks/merge_vs_drop.py models/base/sgd.pt data/cifar10.npz
    python benchmarks/merge_vs_drop.py models/base/sgd.pt data/cifar10.npz --ratios 0.2 0.5 --images 1000

Merging sums, in every layer that reads a group, the input slices of a cluster's members into the channel kept for
it (C-SGD): exact when the members' activations are equal, and better than dropping them when they are close
(tests/test_graph.py). This measures how close k-means' clusters are on a real model: inner groups are one conv's
outputs; stream clusters are chosen on the filters of every layer that adds into the stream, which a trained
model's channels rarely share. Prints one row per (scope, ratio, merge).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from cnn_pruning import pruning
from cnn_pruning.datasets import dataset, splits
from cnn_pruning.model import load_checkpoint
from cnn_pruning.model.inputs import normalize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="a trained checkpoint (models/base/sgd.pt)")
    ap.add_argument("data", help="the dataset file (data/cifar10.npz)")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.2, 0.3, 0.5, 0.8])
    ap.add_argument("--images", type=int, default=2000, help="test images used (stratified)")
    args = ap.parse_args()
    base, _ = load_checkpoint(args.base)
    base.eval()
    test = dataset.load(args.data).test
    if args.images < len(test.labels):
        test = dataset.subset(test, splits.stratified_indices(test.labels, args.images, seed=0))
    x = normalize(torch.from_numpy(test.images.transpose(0, 3, 1, 2).copy()), base.normalization)
    y = torch.from_numpy(test.labels)
    with torch.no_grad():
        ref = base(x)
    print(f"{args.base}: base accuracy {100 * (ref.argmax(1) == y).float().mean():.2f}% on {len(y)} test images")
    print(f"{'scope':6s} {'ratio':>5s} {'merge':>6s} {'acc %':>7s} {'logit MSE':>10s}")
    for scope in ("inner", "all"):
        for ratio in args.ratios:
            for merge in (True, False):
                model = pruning.prune(base, "kmeans_channel", ratio, scope=scope, merge=merge).model.eval()
                with torch.no_grad():
                    out = model(x)
                acc = 100 * (out.argmax(1) == y).float().mean().item()
                print(f"{scope:6s} {ratio:5.2f} {str(merge):>6s} {acc:7.2f} {F.mse_loss(out, ref).item():10.3f}",
                      flush=True)


if __name__ == "__main__":
    main()
