"""How images become model inputs, the same for training, evaluation and timing: tensors on a device, normalised.

    x_u8, y = to_device(split, device)     # uint8 N×3×32×32 tensor + int64 labels, moved once
    x = normalize(x_u8, model.normalization)   # float32: the per-channel statistics the model was trained with

Kept apart from training so that a change to the training loop reruns only the stages that train.
"""

from __future__ import annotations

import numpy as np
import torch

from ..datasets.catalog import CIFAR10_NORMALIZATION
from ..datasets.dataset import Split


def to_device(split: Split, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 N×32×32×3 numpy → uint8 N×3×32×32 tensor on `device`, plus int64 labels."""
    x = torch.from_numpy(np.ascontiguousarray(split.images.transpose(0, 3, 1, 2))).to(device)
    return x, torch.from_numpy(split.labels).to(device)


def normalize(x_u8: torch.Tensor, stats: dict, channels_last: bool = False) -> torch.Tensor:
    """uint8 images → float32 (x - mean) / std per channel; `stats` = {"mean": 3 floats, "std": 3 floats} as
    fractions of 255 (a model's .normalization, a dataset's .normalization)."""
    mean = torch.tensor(stats["mean"], device=x_u8.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(stats["std"], device=x_u8.device).view(1, 3, 1, 1) * 255
    x = (x_u8.float() - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def random_batch(batch_size: int, seed: int = 0, stats: dict = CIFAR10_NORMALIZATION) -> torch.Tensor:
    """Random images in [0, 1], normalised with `stats`: inputs of the statistics a model expects (for timing)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch_size, 3, 32, 32, generator=g)
    return (x - torch.tensor(stats["mean"])[:, None, None]) / torch.tensor(stats["std"])[:, None, None]
