"""How images become model inputs, the same for training, evaluation and timing: tensors on a device, normalised.

    x_u8, y = to_device(split, device)     # uint8 N×3×32×32 tensor + int64 labels, moved once
    x = normalize(x_u8)                    # float32, per-channel mean/std of the CIFAR-10 training set

Kept apart from training so that a change to the training loop reruns only the stages that train.
"""

from __future__ import annotations

import numpy as np
import torch

from .datasets.dataset import Split

# Per-channel mean and standard deviation of the CIFAR-10 training images (RGB, fraction of 255).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def to_device(split: Split, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 N×32×32×3 numpy → uint8 N×3×32×32 tensor on `device`, plus int64 labels."""
    x = torch.from_numpy(np.ascontiguousarray(split.images.transpose(0, 3, 1, 2))).to(device)
    return x, torch.from_numpy(split.labels).to(device)


def normalize(x_u8: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    mean = torch.tensor(CIFAR_MEAN, device=x_u8.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(CIFAR_STD, device=x_u8.device).view(1, 3, 1, 1) * 255
    x = (x_u8.float() - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def random_batch(batch_size: int, seed: int = 0) -> torch.Tensor:
    """Random images in [0, 1], normalised with the CIFAR-10 mean/std: the input statistics a model expects."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch_size, 3, 32, 32, generator=g)
    return (x - torch.tensor(CIFAR_MEAN)[:, None, None]) / torch.tensor(CIFAR_STD)[:, None, None]
