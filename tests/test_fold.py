"""cnn_pruning.model.fold: conv→BatchNorm pairs found by tracing the graph, and the folded conv equals the pair."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnn_pruning.model import CifarResNet, SharedConv2d
from cnn_pruning.model.fold import conv_bn_pairs, fold, fold_batchnorms


def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters, so folding is not the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def test_resnet20_pairs_every_bn_with_the_conv_before_it():
    pairs = conv_bn_pairs(CifarResNet())
    assert len(pairs) == 1 + 2 * 9
    assert pairs["bn1"] == "conv1" and pairs["blocks.4.bn2"] == "blocks.4.conv2"
    shared = CifarResNet(shared={"blocks.0.conv1": 4})  # a weight-shared conv is one node too
    assert conv_bn_pairs(shared)["blocks.0.bn1"] == "blocks.0.conv1"


class Renamed(nn.Module):
    """Names that say nothing about which BN belongs to which conv, and a BN whose conv output is read twice."""

    def __init__(self):
        super().__init__()
        self.a, self.z = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.b, self.y = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        x = F.relu(self.z(self.a(x)))
        t = self.b(x)
        return self.y(t) + t  # `b`'s output is also used unnormalised: folding y into b would change the sum


def test_pairs_come_from_the_graph_not_from_names():
    assert conv_bn_pairs(Renamed()) == {"z": "a"}


def test_fold_equals_conv_then_bn_in_eval_mode():
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=True)
    bn = trained_like(nn.Sequential(nn.BatchNorm2d(5)))[0]
    weight, bias = fold(conv, bn)
    assert weight.dtype == torch.float64 and bias.shape == (5,)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        ref = bn.double()(conv.double()(x))
    torch.testing.assert_close(F.conv2d(x, weight, bias, padding=1), ref)


def test_fold_batchnorms_keeps_outputs_and_leaves_no_bn():
    model = trained_like(CifarResNet(shared={"blocks.2.conv2": 5}))
    folded = fold_batchnorms(model)
    assert not any(isinstance(m, (nn.BatchNorm2d, SharedConv2d)) for m in folded.modules())
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-4, rtol=1e-4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched


def test_a_bn_that_cannot_be_folded_is_named():
    with pytest.raises(ValueError, match="cannot fold BatchNorm 'y'"):
        fold_batchnorms(Renamed())
