"""The CIFAR ResNet family exactly as He et al. 2016 (sec. 4.2) define it, with free widths.

    model = CifarResNet()                             # ResNet20: 3 stages x 3 BasicBlocks, 16/32/64: 269,722 params
    model = CifarResNet(depth=56, num_classes=100)    # depth = 6n + 2: n BasicBlocks per stage
    model = CifarResNet(inner_widths=[8] * 9)         # a pruned model: each block's first conv has 8 filters

Everything that shapes the network is in its spec (model.spec(), saved in every checkpoint): depth, classes, the
width of each stage's residual stream, each block's inner width, the option-A shortcut's channel maps, shared
layers, and the normalisation statistics its inputs must be given (cnn_pruning.model.inputs.normalize). So any
checkpoint rebuilds itself; checkpoints written before the family existed (spec arch "resnet20") still load.

The shortcut is option A (parameter-free), as in the paper's CIFAR runs: where a block changes the stream's width
or resolution, the input is subsampled by the stride and each output channel copies one input channel or is zero.
Which channel lands where is an explicit map stored in the spec (by default the paper's: the input's channels in
the middle, zeros half before and half after), so a pruned stream, or merged stream channels, can be expressed.

Two more things a pruned model may carry, both part of the spec/checkpoint so they survive save and load:
  * SharedConv2d layers (weight sharing): a codebook of k filters plus each output filter's assignment;
    `materialize(model)` turns them back into plain convs holding the shared weights (for inference and export).
  * `model.masks`: {parameter name: bool tensor}, entries that must stay zero (unstructured and zeroed-unit
    pruning). Kept outside the state_dict, so the weights stay plain tensors; `apply_masks` re-zeroes them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.schema import Rule, setting
from ..datasets.catalog import CIFAR10_NORMALIZATION

DEPTHS = (20, 32, 44, 56, 110)  # the depths of He et al.'s CIFAR table (6n + 2 for n = 3, 5, 7, 9, 18)
STREAM_WIDTHS = (16, 32, 64)    # the residual stream's width in each of the three stages
ARCH = "cifar_resnet"
LEGACY_ARCH = "resnet20"        # the spec's arch before depth, stream widths and normalisation were recorded


def blocks_per_stage(depth) -> int:
    """n of depth = 6n + 2 (two convs per block, three stages, plus the stem and the classifier)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (He et al.'s CIFAR ResNets: "
                         f"{', '.join(map(str, DEPTHS))}), got {depth!r}")
    return (depth - 2) // 6


def _is_depth(value) -> bool:
    try:
        blocks_per_stage(value)
    except ValueError:
        return False
    return True


@dataclass
class ModelConfig:
    """params.yaml's model section: which CIFAR ResNet is trained (its number of classes comes from the data)."""
    depth: int = setting(20, Rule(_is_depth, "6n + 2 with n >= 1: 20, 32, 44, 56, 110 (He et al.'s table)"),
                         "layers with weights: 20 = ResNet20 (3 blocks per stage), 56 = ResNet56 (9), 110 (18)")


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def padding_map(cin: int, cout: int) -> list[int]:
    """The paper's option A as a channel map: the cin input channels in the middle, zeros half before, half after
    (output j copies input j - pad, or is zero: -1)."""
    if cout < cin:
        raise ValueError(f"option A pads {cin} channels to {cout}: a narrower output needs an explicit shortcut map")
    pad = (cout - cin) // 2
    return [j - pad if pad <= j < pad + cin else -1 for j in range(cout)]


class ShortcutA(nn.Module):
    """Option A with an explicit channel map: subsample by the stride, then output channel j is input channel
    channel_map[j], or zero where channel_map[j] = -1. No parameters; the map is architecture (in the spec)."""

    def __init__(self, cin: int, channel_map: list[int], stride: int):
        super().__init__()
        if not all(isinstance(c, int) and -1 <= c < cin for c in channel_map) or not channel_map:
            raise ValueError(f"a shortcut map lists, per output channel, an input channel in 0..{cin - 1} or -1 "
                             f"(zero); got {channel_map}")
        self.stride, self.in_channels, self.channel_map = stride, cin, list(channel_map)
        # gather from the input plus one zero channel (index cin): exact copies, and ONNX-exportable (Concat+Gather)
        self.register_buffer("index", torch.tensor([c if c >= 0 else cin for c in channel_map]), persistent=False)

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        zero = x.new_zeros(x.shape[0], 1, x.shape[2], x.shape[3])
        return torch.cat([x, zero], 1).index_select(1, self.index)

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {len(self.channel_map)}, stride={self.stride}"


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
    def __init__(self, cin: int, inner: int, cout: int, stride: int, shortcut_map: list[int] | None = None):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, inner, stride), nn.BatchNorm2d(inner)
        self.conv2, self.bn2 = conv3x3(inner, cout), nn.BatchNorm2d(cout)
        if shortcut_map is None and (stride != 1 or cin != cout):
            shortcut_map = padding_map(cin, cout)
        if shortcut_map is not None and len(shortcut_map) != cout:
            raise ValueError(f"a shortcut map needs one entry per output channel ({cout}), got {len(shortcut_map)}")
        self.shortcut = nn.Identity() if shortcut_map is None else ShortcutA(cin, shortcut_map, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _positive_ints(values, count: int, what: str, per: str) -> list[int]:
    values = list(values)
    if len(values) != count or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in values):
        raise ValueError(f"{what} must be {count} positive ints (one per {per}), got {values}")
    return values


class CifarResNet(nn.Module):
    def __init__(self, depth: int = 20, num_classes: int = 10, stream_widths: list[int] | None = None,
                 inner_widths: list[int] | None = None, shortcut_maps: dict[str, list[int]] | None = None,
                 shared: dict | None = None, normalization: dict | None = None):
        super().__init__()
        n = blocks_per_stage(depth)
        stream = _positive_ints(STREAM_WIDTHS if stream_widths is None else stream_widths, len(STREAM_WIDTHS),
                                "stream_widths", "stage")
        outer = [w for w in stream for _ in range(n)]
        inner = _positive_ints(outer if inner_widths is None else inner_widths, len(outer),
                               "inner_widths", "block")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        maps = dict(shortcut_maps or {})
        unknown = sorted(set(maps) - {f"blocks.{i}" for i in range(len(outer))})
        if unknown:
            raise ValueError(f"shortcut maps for blocks that do not exist: {unknown} (blocks.0..{len(outer) - 1})")
        self.depth, self.num_classes, self.stream_widths, self.inner_widths = depth, num_classes, stream, inner
        self.normalization = _normalization(normalization)
        self.conv1, self.bn1 = conv3x3(3, stream[0]), nn.BatchNorm2d(stream[0])
        blocks, cin = [], stream[0]
        for i, (width, cout) in enumerate(zip(inner, outer)):
            stride = 2 if (i % n == 0 and i > 0) else 1
            blocks.append(BasicBlock(cin, width, cout, stride, maps.get(f"blocks.{i}")))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(stream[-1], num_classes)
        for m in self.modules():  # He init, as the reference CIFAR ResNets use
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
        self.masks: dict[str, torch.Tensor] = {}  # parameter name -> bool "keep" mask; not part of state_dict
        for name, k in (shared or {}).items():
            self.share(name, k)

    @property
    def name(self) -> str:
        return f"ResNet{self.depth}"

    def share(self, name: str, k: int) -> SharedConv2d:
        """Replace the conv called `name` (e.g. "blocks.0.conv1") by a SharedConv2d with k filters; returns it."""
        conv = self.get_submodule(name)
        if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (3, 3):
            raise ValueError(f"{name!r} is not a 3x3 conv of this {self.name}")
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
        maps = {f"blocks.{i}": list(b.shortcut.channel_map) for i, b in enumerate(self.blocks)
                if isinstance(b.shortcut, ShortcutA)}
        return {"arch": ARCH, "depth": self.depth, "num_classes": self.num_classes,
                "stream_widths": list(self.stream_widths), "inner_widths": list(self.inner_widths),
                "shortcut_maps": maps, "shared": shared,
                "normalization": {k: list(v) for k, v in self.normalization.items()}}


def _normalization(stats: dict | None) -> dict:
    """{"mean": 3 floats, "std": 3 floats > 0} per RGB channel, as fractions of 255; None means CIFAR-10's."""
    stats = CIFAR10_NORMALIZATION if stats is None else stats
    try:
        mean, std = [float(v) for v in stats["mean"]], [float(v) for v in stats["std"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"normalization must be {{'mean': [r, g, b], 'std': [r, g, b]}}, got {stats!r}") from e
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"normalization needs 3 means and 3 positive stds (RGB), got {stats!r}")
    return {"mean": tuple(mean), "std": tuple(std)}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def apply_masks(model: CifarResNet) -> None:
    """Zero every masked-out entry again (after an optimizer step, say): pruned weights stay pruned."""
    params = dict(model.named_parameters())
    for name, keep in model.masks.items():
        p = params[name]
        if keep.device != p.device:
            keep = model.masks[name] = keep.to(p.device)
        p.mul_(keep)


def materialize(model: CifarResNet) -> CifarResNet:
    """A copy with every SharedConv2d turned into a plain conv holding the shared weights (same outputs)."""
    dense = copy.deepcopy(model)
    for name, m in list(dense.named_modules()):
        if isinstance(m, SharedConv2d):
            parent, _, attr = name.rpartition(".")
            setattr(dense.get_submodule(parent) if parent else dense, attr, m.to_dense())
    return dense
