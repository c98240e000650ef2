"""ResNet20 for CIFAR-10 exactly as He et al. 2016 (sec. 4.2) define it, with per-block inner widths, and checkpoints.

    model = ResNet20()                               # 3 stages x 3 BasicBlocks, 16/32/64 channels: 269,722 params
    model = ResNet20(inner_widths=[8] * 9)           # a pruned model: each block's first conv has 8 filters
    save_checkpoint("m.pt", model, meta={...})      # state_dict + architecture spec, nothing pickled
    model, meta = load_checkpoint("m.pt")            # torch.load(weights_only=True), strict shape/key check

The shortcut is option A (parameter-free): stride-2 subsampling plus zero channels, as in the paper's CIFAR runs.
The inner width of a block (output channels of its first conv) is free; the residual stream's widths are fixed,
so a pruned model is rebuilt from its widths and loads its state_dict strictly.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .files import atomic_path

STAGE_WIDTHS = (16, 32, 64)
BLOCKS_PER_STAGE = 3
NUM_BLOCKS = len(STAGE_WIDTHS) * BLOCKS_PER_STAGE


class CheckpointError(ValueError):
    """A checkpoint that is unsafe, malformed, or does not match its architecture spec."""


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class ShortcutA(nn.Module):
    """Option A: subsample by the stride and pad the new channels with zeros (half before, half after)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride, self.pad = stride, (cout - cin) // 2

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad, self.pad)) if self.pad else x


class BasicBlock(nn.Module):
    def __init__(self, cin: int, inner: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, inner, stride), nn.BatchNorm2d(inner)
        self.conv2, self.bn2 = conv3x3(inner, cout), nn.BatchNorm2d(cout)
        self.shortcut = ShortcutA(cin, cout, stride) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, inner_widths: list[int] | None = None, num_classes: int = 10):
        super().__init__()
        outer = [w for w in STAGE_WIDTHS for _ in range(BLOCKS_PER_STAGE)]
        inner_widths = list(outer if inner_widths is None else inner_widths)
        if len(inner_widths) != NUM_BLOCKS or not all(isinstance(w, int) and w >= 1 for w in inner_widths):
            raise ValueError(f"inner_widths must be {NUM_BLOCKS} positive ints (one per block), got {inner_widths}")
        self.inner_widths, self.num_classes = inner_widths, num_classes
        self.conv1, self.bn1 = conv3x3(3, STAGE_WIDTHS[0]), nn.BatchNorm2d(STAGE_WIDTHS[0])
        blocks, cin = [], STAGE_WIDTHS[0]
        for i, (inner, cout) in enumerate(zip(inner_widths, outer)):
            stride = 2 if (i % BLOCKS_PER_STAGE == 0 and i > 0) else 1
            blocks.append(BasicBlock(cin, inner, cout, stride))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(STAGE_WIDTHS[-1], num_classes)
        for m in self.modules():  # He init, as the reference CIFAR ResNets use
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)

    def spec(self) -> dict:
        """Everything needed to rebuild this architecture; plain types only, so it loads with weights_only=True."""
        return {"arch": "resnet20", "inner_widths": list(self.inner_widths), "num_classes": self.num_classes}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(spec: dict) -> ResNet20:
    if spec.get("arch") != "resnet20":
        raise CheckpointError(f"unknown architecture {spec.get('arch')!r}; allowed: 'resnet20'")
    try:
        return ResNet20(inner_widths=spec["inner_widths"], num_classes=spec["num_classes"])
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"bad architecture spec {spec}: {e}") from e


def save_checkpoint(path: str | os.PathLike, model: ResNet20, meta: dict | None = None, spec: dict | None = None) -> None:
    """Save state_dict + spec (+ meta) atomically. Tensors and plain containers only: never a pickled module."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"spec": spec or model.spec(), "state_dict": state, "meta": meta or {}}, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[ResNet20, dict]:
    """The one loader: weights_only=True, then a strict match of the tensors against the spec's architecture."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: refused to load: it holds objects other than tensors and plain "
                              f"containers, which could run code ({str(e).splitlines()[0]})") from e
    except (RuntimeError, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from e
    if not isinstance(ckpt, dict) or not {"spec", "state_dict"} <= ckpt.keys():
        raise CheckpointError(f"{path}: expected a dict with 'spec' and 'state_dict'")
    model = build(ckpt["spec"])
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: tensors do not match the architecture spec {ckpt['spec']}: {e}") from e
    return model, ckpt.get("meta", {})
