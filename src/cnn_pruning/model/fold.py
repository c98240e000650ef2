"""BatchNorm folding, written once: which BatchNorm follows which conv, and the conv that replaces the pair.

    folded_weight, folded_bias = fold(conv, bn)    # float64: conv followed by bn (eval mode) as one conv
    pairs = conv_bn_pairs(model)                    # {bn name: conv name}, found by tracing the forward graph
    model = fold_batchnorms(model)                  # an eval-mode copy where each such pair is one conv with bias

In eval mode y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta is again a conv, with weight
w * gamma / sqrt(var + eps) and bias beta + (b - mean) * gamma / sqrt(var + eps). The pairs come from the traced
graph (torch.fx), as Torch-Pruning finds coupled layers: a BatchNorm whose only input is a conv's output, which no
other node reads. Layer names play no part, so any architecture built from these modules folds the same way.
"""

from __future__ import annotations

import copy

import torch
import torch.fx
import torch.nn as nn

from . import SharedConv2d

CONVS = (nn.Conv2d, SharedConv2d)


class _Tracer(torch.fx.Tracer):
    """Keeps weight-shared convs as single nodes (by default fx would trace through their forward)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, SharedConv2d) or super().is_leaf_module(m, qualname)


def conv_bn_pairs(model: nn.Module) -> dict[str, str]:
    """{BatchNorm2d name: conv name} for every BatchNorm fed only by a conv whose output nothing else reads."""
    graph = _Tracer().trace(model)
    modules = dict(model.named_modules())
    pairs = {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        src = node.args[0] if node.args else None
        if (isinstance(src, torch.fx.Node) and src.op == "call_module" and isinstance(modules[src.target], CONVS)
                and len(src.users) == 1):
            pairs[node.target] = src.target
    return pairs


@torch.no_grad()
def fold(conv: nn.Module, bn: nn.BatchNorm2d, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of the single conv equal to `conv` followed by `bn` in eval mode, computed in `dtype`."""
    scale = bn.weight.to(dtype) / torch.sqrt(bn.running_var.to(dtype) + bn.eps)
    bias = getattr(conv, "bias", None)
    bias = bias.to(dtype) if bias is not None else torch.zeros_like(scale)
    weight = conv.weight.to(dtype) * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
    return weight, (bias - bn.running_mean.to(dtype)) * scale + bn.bias.to(dtype)


@torch.no_grad()
def fold_batchnorms(model: nn.Module) -> nn.Module:
    """An eval-mode copy in which every traced conv→BatchNorm pair is one plain conv with a bias (and the BatchNorm
    an Identity). Weight-shared convs are folded into plain convs: folding gives each filter its own scale."""
    model = copy.deepcopy(model).eval()
    pairs = conv_bn_pairs(model)
    alone = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and n not in pairs]
    if alone:  # the promise is conv+relu+add only: a BatchNorm left over would break it silently
        raise ValueError(f"cannot fold BatchNorm {alone[0]!r}: it does not directly follow a conv whose output only "
                         "it reads")
    for bn_name, conv_name in pairs.items():
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        weight, bias = fold(conv, bn)
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, weight.shape[2:], conv.stride, conv.padding,
                           getattr(conv, "dilation", 1), getattr(conv, "groups", 1), bias=True).to(conv.weight.device)
        folded.weight.copy_(weight.float())
        folded.bias.copy_(bias.float())
        for name, module in ((conv_name, folded), (bn_name, nn.Identity())):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, module)
    return model
