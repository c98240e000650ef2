"""ResNet20 for CIFAR-10 exactly as He et al. 2016 (sec. 4.2) define it, with per-block inner widths, and checkpoints.

    model = ResNet20()                               # 3 stages x 3 BasicBlocks, 16/32/64 channels: 269,722 params
    model = ResNet20(inner_widths=[8] * 9)           # a pruned model: each block's first conv has 8 filters
    save_checkpoint("m.pt", model, meta={...})      # state_dict + architecture spec + masks, nothing pickled
    model, meta = load_checkpoint("m.pt")            # torch.load(weights_only=True), strict shape/key check

The shortcut is option A (parameter-free): stride-2 subsampling plus zero channels, as in the paper's CIFAR runs.
The inner width of a block (output channels of its first conv) is free; the residual stream's widths are fixed,
so a pruned model is rebuilt from its widths and loads its state_dict strictly.

Two more things a pruned model may carry, both part of the spec/checkpoint so they survive save and load:
  * SharedConv2d layers (weight sharing): a codebook of k filters plus each output filter's assignment;
    `materialize(model)` turns them back into plain convs holding the shared weights (for inference and export).
  * `model.masks`: {parameter name: bool tensor}, entries that must stay zero (unstructured and zeroed-unit
    pruning). Kept outside the state_dict, so the weights stay plain tensors; `apply_masks` re-zeroes them.
"""

from __future__ import annotations

import copy
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


class SharedConv2d(nn.Module):
    """A 3x3 conv whose output filters are tied to k shared ones: weight[i] = codebook[assignment[i]].

    One parameter per centroid, so the gradients of all member filters flow into it and fine-tuning keeps the
    filters tied. Training gathers the weight each forward (cheap next to the conv); inference and export use
    `materialize()`, which turns the layer into a plain nn.Conv2d and so runs exactly as fast as the dense model.
    """

    def __init__(self, in_channels: int, out_channels: int, k: int, stride: int = 1):
        super().__init__()
        if not 1 <= k <= out_channels:
            raise ValueError(f"SharedConv2d: k must be in 1..{out_channels}, got {k}")
        self.in_channels, self.out_channels, self.stride, self.padding = in_channels, out_channels, stride, 1
        self.codebook = nn.Parameter(torch.zeros(k, in_channels, 3, 3))
        self.register_buffer("assignment", torch.zeros(out_channels, dtype=torch.long))

    @property
    def k(self) -> int:
        return self.codebook.shape[0]

    @property
    def weight(self) -> torch.Tensor:
        # index_select, not codebook[assignment]: the backward of advanced indexing (index_put_ with accumulate)
        # summed member gradients in a varying order on the CPU, so two identical fine-tunes differed in the last
        # bits and then in accuracy; index_select's backward (index_add_) gave identical runs here.
        return torch.index_select(self.codebook, 0, self.assignment)

    def forward(self, x):
        return F.conv2d(x, self.weight, None, self.stride, self.padding)

    def to_dense(self) -> nn.Conv2d:
        conv = conv3x3(self.in_channels, self.out_channels, self.stride).to(self.codebook.device)
        conv.weight.data.copy_(self.weight.detach())
        return conv

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, k={self.k}, stride={self.stride}"


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
    def __init__(self, inner_widths: list[int] | None = None, num_classes: int = 10, shared: dict | None = None):
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
        self.masks: dict[str, torch.Tensor] = {}  # parameter name -> bool "keep" mask; not part of state_dict
        for name, k in (shared or {}).items():
            self.share(name, k)

    def share(self, name: str, k: int) -> SharedConv2d:
        """Replace the conv called `name` (e.g. "blocks.0.conv1") by a SharedConv2d with k filters; returns it."""
        conv = self.get_submodule(name)
        if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (3, 3):
            raise ValueError(f"{name!r} is not a 3x3 conv of this ResNet20")
        layer = SharedConv2d(conv.in_channels, conv.out_channels, int(k), conv.stride[0])
        parent, _, attr = name.rpartition(".")
        setattr(self.get_submodule(parent) if parent else self, attr, layer)
        return layer

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)

    def spec(self) -> dict:
        """Everything needed to rebuild this architecture; plain types only, so it loads with weights_only=True."""
        shared = {n: m.k for n, m in self.named_modules() if isinstance(m, SharedConv2d)}
        return {"arch": "resnet20", "inner_widths": list(self.inner_widths), "num_classes": self.num_classes,
                "shared": shared}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def apply_masks(model: ResNet20) -> None:
    """Zero every masked-out entry again (after an optimizer step, say): pruned weights stay pruned."""
    params = dict(model.named_parameters())
    for name, keep in model.masks.items():
        p = params[name]
        if keep.device != p.device:
            keep = model.masks[name] = keep.to(p.device)
        p.mul_(keep)


def materialize(model: ResNet20) -> ResNet20:
    """A copy with every SharedConv2d turned into a plain conv holding the shared weights (same outputs)."""
    dense = copy.deepcopy(model)
    for name, m in list(dense.named_modules()):
        if isinstance(m, SharedConv2d):
            parent, _, attr = name.rpartition(".")
            setattr(dense.get_submodule(parent) if parent else dense, attr, m.to_dense())
    return dense


def build(spec: dict) -> ResNet20:
    if not isinstance(spec, dict) or spec.get("arch") != "resnet20":
        got = spec.get("arch") if isinstance(spec, dict) else spec
        raise CheckpointError(f"unknown architecture {got!r}; allowed: 'resnet20'")
    try:
        return ResNet20(inner_widths=spec["inner_widths"], num_classes=spec["num_classes"],
                        shared=spec.get("shared") or {})
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"bad architecture spec {spec}: {e}") from e


def save_checkpoint(path: str | os.PathLike, model: ResNet20, meta: dict | None = None) -> None:
    """Save state_dict + spec + masks (+ meta) atomically. Tensors and plain containers only, never a module."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    masks = {k: v.detach().cpu().bool() for k, v in getattr(model, "masks", {}).items()}
    # Saved through a file object: torch.save names the archive inside after a *path's* file name (here a random
    # temporary one), and the same model must give the same bytes so DVC sees an unchanged output.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save({"spec": model.spec(), "state_dict": state, "masks": masks, "meta": meta or {}}, f)


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
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: tensors do not match the architecture spec {ckpt['spec']}: {e}") from e
    params = dict(model.named_parameters())
    for name, keep in (ckpt.get("masks") or {}).items():
        if name not in params or not isinstance(keep, torch.Tensor) or keep.shape != params[name].shape:
            raise CheckpointError(f"{path}: mask {name!r} does not match a parameter of the architecture")
        model.masks[name] = keep.bool()
    return model, ckpt.get("meta", {})
