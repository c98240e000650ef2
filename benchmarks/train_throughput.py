"""Training throughput: our tensor-resident data path vs the classic torchvision pipeline, side by side.

    python benchmarks/train_throughput.py                 # real images when ../shared is there, else synthetic
    python benchmarks/train_throughput.py --steps 30 --rounds 3 --batch-size 128 --workers 2

Both sides train the same ResNet20 with the same SGD settings, batch size and torch threads; only the way
batches are made differs:
  ours     the split is one uint8 tensor; each batch is indexed, randomly cropped (pad 4) and flipped with tensor
           ops for the whole batch, then normalised (cnn_pruning.training.augment,
           cnn_pruning.model.inputs.normalize); model
           and batches in channels_last, as cnn_pruning.training does (--no-channels-last: NCHW, to see the data path
           alone)
  classic  torchvision.datasets-style per-sample PIL images through RandomCrop(32, padding=4),
           RandomHorizontalFlip, ToTensor, Normalize in a DataLoader (shuffle, `--workers` worker processes)
The two alternate round by round (ours, classic, ours, ...), so machine drift hits both; the script prints each
round's images/s, the medians and the ratio, then the two data paths alone (no model) to show where the time goes.
Figures quoted in the docs come from this script.

What it printed, with the machine, goes in benchmarks/results/ when it is kept. Why the gap is smaller than the
data paths alone suggest: the model's forward and backward pass is most of a step on a CPU, so a faster data path
can win back only the classic pipeline's share (the per-image PIL work of its workers, which compete with training
for the same cores). On a GPU, where the model step is fast, the data path decides the epoch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from cnn_pruning.datasets import prepare
from cnn_pruning.datasets.catalog import CIFAR10_NORMALIZATION
from cnn_pruning.model import CifarResNet
from cnn_pruning.model.inputs import normalize
from cnn_pruning.training import augment

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpg.tar.gz"


class PILDataset(Dataset):
    """What torchvision.datasets.CIFAR10 does per sample: a PIL image through the transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def train_steps(model, optimizer, batches, steps: int) -> float:
    """Run `steps` SGD steps on batches from the iterator; returns images/s."""
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    n, start = 0, time.perf_counter()
    for _ in range(steps):
        x, y = next(batches)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n += len(y)
    return n / (time.perf_counter() - start)


def batches_only(batches, steps: int) -> float:
    """Draw `steps` batches and nothing else; returns images/s of the data path alone."""
    n, start = 0, time.perf_counter()
    for _ in range(steps):
        n += len(next(batches)[1])
    return n / (time.perf_counter() - start)


def ours(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, channels_last: bool):
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(labels)
    g = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(y), generator=g)
        for i in range(0, len(y) - batch_size + 1, batch_size):
            idx = order[i:i + batch_size]
            yield normalize(augment(x[idx], g), CIFAR10_NORMALIZATION, channels_last), y[idx]


def classic(images: np.ndarray, labels: np.ndarray, batch_size: int, workers: int, seed: int):
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(),
                             transforms.Normalize(CIFAR10_NORMALIZATION["mean"], CIFAR10_NORMALIZATION["std"])])
    loader = DataLoader(PILDataset(images, labels, tf), batch_size=batch_size, shuffle=True, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(seed))
    while True:
        yield from loader


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="training steps per round and side")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers for the classic side")
    ap.add_argument("--images", type=int, default=10_000, help="training images to load")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                    help="our side in channels_last, as the project trains (default)")
    args = ap.parse_args()

    if SHARED.exists():
        ds = prepare.prepare("cifar10", str(SHARED), None, Path("/tmp/cnn-pruning-bench/cifar10.npz"), root=Path("."),
                          val_size=0, train_size=args.images)
        images, labels, what = ds.train.images, ds.train.labels, f"{args.images} CIFAR-10 (JPEG copy) images"
    else:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
        labels, what = rng.integers(0, 10, args.images), f"{args.images} random images"
    print(f"{what}, batch {args.batch_size}, {args.steps} steps per round, torch threads "
          f"{torch.get_num_threads()}, classic DataLoader workers {args.workers}, ours channels_last "
          f"{args.channels_last}")
    fmt = {"ours": torch.channels_last if args.channels_last else torch.contiguous_format,
           "classic": torch.contiguous_format}

    sides = {"ours": ours(images, labels, args.batch_size, 0, args.channels_last),
             "classic": classic(images, labels, args.batch_size, args.workers, 0)}
    results = {name: [] for name in sides}
    for name, it in sides.items():  # warm-up: first batches, worker start-up, allocator
        torch.manual_seed(0)
        model = CifarResNet().to(memory_format=fmt[name])
        train_steps(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), it, 3)
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for name in order:
            torch.manual_seed(0)
            model = CifarResNet().to(memory_format=fmt[name])
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
            results[name].append(train_steps(model, opt, sides[name], args.steps))
            print(f"round {r + 1} {name:8s} {results[name][-1]:7.0f} images/s")
    med = {name: statistics.median(v) for name, v in results.items()}
    print(f"median: ours {med['ours']:.0f} images/s, classic {med['classic']:.0f} images/s, "
          f"ratio {med['ours'] / med['classic']:.2f}x")
    # Where the time goes: the data paths alone, no model (the classic workers prefetch in parallel).
    alone = {name: statistics.median(batches_only(sides[name], args.steps) for _ in range(args.rounds))
             for name in sides}
    print(f"data path alone (no model): ours {alone['ours']:.0f} images/s, classic {alone['classic']:.0f} images/s, "
          f"ratio {alone['ours'] / alone['classic']:.1f}x")


if __name__ == "__main__":
    main()
