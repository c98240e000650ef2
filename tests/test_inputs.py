"""cnn_pruning.model.inputs: images to normalised tensors, the same for training, evaluation and timing."""

from __future__ import annotations

import numpy as np
import torch

from cnn_pruning.datasets.catalog import CIFAR10_NORMALIZATION, CIFAR100_NORMALIZATION
from cnn_pruning.datasets.dataset import Split
from cnn_pruning.model.inputs import normalize, random_batch, to_device

CIFAR_MEAN, CIFAR_STD = CIFAR10_NORMALIZATION["mean"], CIFAR10_NORMALIZATION["std"]


def test_normalize_uses_the_statistics_it_is_given():
    x = torch.full((1, 3, 2, 2), 128, dtype=torch.uint8)
    out = normalize(x, CIFAR10_NORMALIZATION)
    assert torch.allclose(out[0, 0, 0, 0], torch.tensor((128 / 255 - 0.4914) / 0.2470), atol=1e-5)
    other = normalize(x, CIFAR100_NORMALIZATION)
    assert torch.allclose(other[0, 2, 0, 0], torch.tensor((128 / 255 - 0.4409) / 0.2762), atol=1e-5)


def test_to_device_turns_hwc_uint8_into_nchw_with_labels():
    images = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)
    x, y = to_device(Split(images, np.array([3, 7], dtype=np.int64)), torch.device("cpu"))
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.uint8 and y.tolist() == [3, 7]
    assert torch.equal(x[1, 2], torch.from_numpy(images[1, :, :, 2]))


def test_channels_last_changes_layout_not_values():
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    a, b = normalize(x, CIFAR10_NORMALIZATION), normalize(x, CIFAR10_NORMALIZATION, channels_last=True)
    assert b.is_contiguous(memory_format=torch.channels_last) and torch.equal(a, b)


def test_random_batch_is_seeded_and_has_the_expected_statistics():
    a, b, c = random_batch(64, seed=0), random_batch(64, seed=0), random_batch(64, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # uniform [0, 1] images: channel means (0.5 - mean) / std
    expected = (0.5 - torch.tensor(CIFAR_MEAN)) / torch.tensor(CIFAR_STD)
    assert torch.allclose(a.mean((0, 2, 3)), expected, atol=0.05)
