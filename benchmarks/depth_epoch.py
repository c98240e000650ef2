"""What a training epoch costs at each depth of the CIFAR ResNet family, on this machine, with the project's loop.

    python benchmarks/depth_epoch.py                       # depths 20 32 44 56 110, 12 steps x 3 rounds each
    python benchmarks/depth_epoch.py --depths 20 56 --steps 20 --rounds 5 --batch-size 128

Each step is what cnn_pruning.training.fit does per batch: index the tensor-resident uint8 split, augment the batch
(cnn_pruning.training.augment), normalise, forward, cross-entropy, backward, an SGD step (the train recipe's
momentum 0.9, nesterov, weight decay 5e-4), channels_last as `channels_last: auto` picks on a CPU. The depths take
turns round by round (20, 32, ..., 110, 20, ...), so machine drift hits all of them; after one untimed warm-up
step per depth and round, the script prints the median seconds per step and what that makes per epoch of 45,000
images (full CIFAR-10 training split less the 5,000 validation images) and of 10,000 (the quick
profile), plus the MACs per image. Images are random: the cost of a step does not depend on their content.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from cnn_pruning.datasets.catalog import CIFAR10_NORMALIZATION
from cnn_pruning.model import DEPTHS, CifarResNet
from cnn_pruning.model.inputs import normalize
from cnn_pruning.model.measure import count_macs
from cnn_pruning.training import augment, make_optimizer

SGD = {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}  # the default train recipe's


def step(model, optimizer, x_u8, y, generator) -> None:
    x = normalize(augment(x_u8, generator), CIFAR10_NORMALIZATION, channels_last=True)
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS))
    ap.add_argument("--steps", type=int, default=12, help="timed steps per depth and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()

    generator = torch.Generator().manual_seed(0)
    x_u8 = torch.randint(0, 256, (args.batch_size, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 10, (args.batch_size,), generator=generator)
    models = {}
    for depth in args.depths:
        torch.manual_seed(0)
        model = CifarResNet(depth).to(memory_format=torch.channels_last).train()
        models[depth] = (model, make_optimizer("sgd", model.parameters(), SGD))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{args.steps} steps x {args.rounds} rounds per depth, interleaved")
    seconds = {d: [] for d in args.depths}
    for _ in range(args.rounds):
        for depth, (model, optimizer) in models.items():
            step(model, optimizer, x_u8, y, generator)  # warm-up: allocator and kernel choice
            for _ in range(args.steps):
                start = time.perf_counter()
                step(model, optimizer, x_u8, y, generator)
                seconds[depth].append(time.perf_counter() - start)
    base = statistics.median(seconds[args.depths[0]])
    print(f"{'depth':>5} {'MACs/image':>12} {'s/step':>7} {'images/s':>9} {'s/epoch 45k':>12} {'s/epoch 10k':>12} "
          f"{'vs first':>9}")
    for depth in args.depths:
        median = statistics.median(seconds[depth])
        per_image = median / args.batch_size
        print(f"{depth:>5} {count_macs(models[depth][0]):>12,} {median:>7.3f} {1 / per_image:>9.0f} "
              f"{45_000 * per_image:>12.0f} {10_000 * per_image:>12.1f} {median / base:>8.2f}x")


if __name__ == "__main__":
    main()
