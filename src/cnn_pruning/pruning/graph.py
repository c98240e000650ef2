"""Coupled channels, found by tracing the model, and the surgery that removes channels from all of them at once.

    groups = channel_groups(model)           # [ChannelGroup(name="stream.0", kind="stream", size=16, ...), ...]
    pruned = remove_channels(model, {"stream.0": [0, 2, ...], "blocks.4.conv1": [...]}, merge=None)

A channel group is a set of channels that must go together: the output channels of every layer that writes them and
the matching input channels of every layer that reads them. They are found by Torch-Pruning's DependencyGraph
(VainF/Torch-Pruning), which traces one forward pass and follows each channel through BN, ReLU, residual sums and
shortcuts, so nothing here relies on layer names or on the ResNet's block layout: a new module layout brings its
own groups. In the CIFAR ResNets the trace finds two kinds:
  * "inner": a block's first conv, its BN and the second conv's input (one writer). Named after the writer conv.
  * "stream": a residual stream (one per stage): every layer that adds into it (the stem or the stage's first
    shortcut, and each block's second conv with its BN) and every layer that reads it (the next blocks' first
    convs, the next stage's shortcut, the classifier). Named "stream.0", "stream.1", ... in forward order.

The option-A shortcut (model.ShortcutA) is a parameter-free gather; the graph learns how to prune it from
ShortcutPruner below: dropping an output channel drops its map entry; dropping an input channel re-indexes the map,
and output channels that copied it become zero. Its input and output channels are thus separate groups, as a 1x1
conv's would be: each stage's stream is pruned on its own.

Surgery only takes kept indices (criteria live in the method modules) and returns a new model built from the
architecture spec, so what a method returns and what a checkpoint reloads are the same module layout.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch_pruning as tp

from ..model import CifarResNet, ShortcutA, blocks_per_stage
from .common import rebuild


@dataclass
class ChannelGroup:
    """Channels that are removed together. Layer names are the model's (model.get_submodule)."""
    name: str
    kind: str                      # "inner" (one writer) or "stream" (a residual sum: several writers)
    size: int                      # channels in the group
    writers: list[tuple[str, str | None]] = field(default_factory=list)  # (conv, the BN right after it) per writer
    readers: list[str] = field(default_factory=list)    # convs and linears whose input channels these are
    shortcuts_in: list[str] = field(default_factory=list)   # shortcuts that read these channels
    shortcuts_out: list[str] = field(default_factory=list)  # shortcuts that write into these channels


class ShortcutPruner(tp.pruner.function.BasePruningFunc):
    """How Torch-Pruning prunes a ShortcutA: output channels are map entries; an input channel's removal re-indexes
    the map (entries that copied it become -1, zero). Distinct in and out functions: no coupling across it."""

    def prune_out_channels(self, layer: ShortcutA, idxs):
        drop = {int(i) for i in idxs}
        _set_map(layer, [c for j, c in enumerate(layer.channel_map) if j not in drop], layer.in_channels)
        return layer

    def prune_in_channels(self, layer: ShortcutA, idxs):
        drop = {int(i) for i in idxs}
        renumber = {old: new for new, old in enumerate(c for c in range(layer.in_channels) if c not in drop)}
        _set_map(layer, [renumber.get(c, -1) for c in layer.channel_map], len(renumber))
        return layer

    def get_out_channels(self, layer: ShortcutA) -> int:
        return len(layer.channel_map)

    def get_in_channels(self, layer: ShortcutA) -> int:
        return layer.in_channels


def _set_map(layer: ShortcutA, channel_map: list[int], in_channels: int) -> None:
    layer.channel_map, layer.in_channels = channel_map, in_channels
    layer.index = torch.tensor([c if c >= 0 else in_channels for c in channel_map], device=layer.index.device)


def dependency_graph(model: nn.Module) -> tp.DependencyGraph:
    """Torch-Pruning's graph of `model`, traced with one 32x32 RGB image on the model's device (eval mode, so the
    trace leaves BN's running statistics alone)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():  # the trace follows autograd's graph
            return tp.DependencyGraph().build_dependency(
                model, example_inputs=torch.zeros(1, 3, 32, 32, device=device),
                customized_pruners={ShortcutA: ShortcutPruner()})
    finally:
        model.train(was_training)


def channel_groups(model: nn.Module, graph: tp.DependencyGraph | None = None) -> list[ChannelGroup]:
    """Every group of coupled channels that a conv writes, in forward order (of each group's first writer). The
    classifier's outputs (the classes) are never a group."""
    graph = graph or dependency_graph(model)
    names = {m: n for n, m in model.named_modules()}
    order = {n: i for i, n in enumerate(names.values())}
    found = []
    for group in graph.get_all_groups(root_module_types=(nn.Conv2d,)):
        g = ChannelGroup("", "", 0)
        convs_out, bns = [], []
        for item in group:
            module, fn = item.dep.target.module, item.dep.handler
            out = graph.is_out_channel_pruning_fn(fn)
            if isinstance(module, nn.Conv2d) and out:
                convs_out.append(module)
                g.size = len(item.idxs)
            elif isinstance(module, (nn.Conv2d, nn.Linear)) and not out:
                g.readers.append(names[module])
            elif isinstance(module, nn.BatchNorm2d):
                bns.append(module)
            elif isinstance(module, ShortcutA):
                (g.shortcuts_out if out else g.shortcuts_in).append(names[module])
        for conv in convs_out:
            bn = next((node.module for node in graph.module2node[conv].outputs if node.module in bns), None)
            g.writers.append((names[conv], names[bn] if bn is not None else None))
        g.writers.sort(key=lambda w: order[w[0]])
        g.readers.sort(key=order.get)
        g.kind = "inner" if len(g.writers) == 1 and not g.shortcuts_out else "stream"
        found.append(g)
    found.sort(key=lambda g: order[g.writers[0][0]])
    streams = 0
    for g in found:
        if g.kind == "stream":
            g.name, streams = f"stream.{streams}", streams + 1
        else:
            g.name = g.writers[0][0]
    return found


def remove_channels(model: CifarResNet, keep: dict[str, list[int]],
                    merge: dict[str, list[list[int]]] | None = None) -> CifarResNet:
    """A new model in which each named group keeps only the channels keep[name] (sorted indices); other groups
    are untouched. With merge[name] (one member list per kept channel, in the kept order), every layer that reads
    the group first gets, in the kept channel's input slice, the SUM of its members' slices, and shortcuts that
    copied a member copy the kept channel: had the members' activations been equal, every reader's output would be
    unchanged (C-SGD's merge). `model` itself is never changed; it must carry no masks (methods start dense)."""
    if model.masks:
        raise ValueError("remove_channels() needs a model without masks: masked entries would lose their place")
    work = copy.deepcopy(model)
    graph = dependency_graph(work)
    groups = {g.name: g for g in channel_groups(work, graph)}
    unknown = sorted(set(keep) - set(groups))
    if unknown:
        raise ValueError(f"no channel group called {unknown}; this model has {', '.join(groups)}")
    for name, kept in keep.items():
        g, kept = groups[name], [int(c) for c in kept]
        if not kept or kept != sorted(set(kept)) or kept[-1] >= g.size or kept[0] < 0:
            raise ValueError(f"group {name}: kept channels must be distinct sorted indices in 0..{g.size - 1}, "
                             f"at least one; got {kept}")
        if merge is not None and name in merge:
            _merge(work, g, kept, merge[name])
        drop = sorted(set(range(g.size)) - set(kept))
        if drop:
            root = work.get_submodule(g.writers[0][0])
            graph.get_pruning_group(root, tp.prune_conv_out_channels, drop).prune()
    return _as_spec_model(model, work)


@torch.no_grad()
def _merge(model: nn.Module, g: ChannelGroup, kept: list[int], members: list[list[int]]) -> None:
    if len(members) != len(kept) or any(k not in m for k, m in zip(kept, members)):
        raise ValueError(f"group {g.name}: one member list per kept channel, each containing it; got {members}")
    for reader in g.readers:
        w = model.get_submodule(reader).weight
        sums = [w[:, list(m)].sum(1) for m in members]  # all sums from the unmerged weights first
        for k, s in zip(kept, sums):
            w[:, k] = s
    rep = {c: k for k, m in zip(kept, members) for c in m}
    for name in g.shortcuts_in:
        layer = model.get_submodule(name)
        _set_map(layer, [rep.get(c, c) for c in layer.channel_map], layer.in_channels)


def _as_spec_model(original: CifarResNet, pruned: CifarResNet) -> CifarResNet:
    """The pruned module tree re-expressed as the architecture spec describes it (widths and shortcut maps read
    from the pruned layers), holding the pruned weights."""
    n = blocks_per_stage(original.depth)
    blocks = list(pruned.blocks)
    stream = [pruned.conv1.out_channels] + [blocks[s * n].conv2.out_channels
                                            for s in range(1, len(original.stream_widths))]
    maps = {f"blocks.{i}": list(b.shortcut.channel_map) for i, b in enumerate(blocks)
            if isinstance(b.shortcut, ShortcutA)}
    return rebuild(original, pruned.state_dict(), inner_widths=[b.conv1.out_channels for b in blocks],
                   stream_widths=stream, shortcut_maps=maps)
