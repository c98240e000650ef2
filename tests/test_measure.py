"""measure.py: MACs against the conv formula, exact parameter/filter counts on hand-built models, accuracy by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnn_pruning.datasets.dataset import Split
from cnn_pruning.model import CifarResNet, materialize, measure
from cnn_pruning.model.inputs import normalize, to_device
from cnn_pruning.training import evaluate

OUTER = [16] * 3 + [32] * 3 + [64] * 3


def formula_macs(inner_widths: list[int]) -> int:
    """Hout*Wout*Cout*Cin*9 over every conv, plus 64*10 for the fc, from the architecture alone."""
    total, cin, size = 32 * 32 * 16 * 3 * 9, 16, 32  # stem
    for i, (inner, cout) in enumerate(zip(inner_widths, OUTER)):
        if i in (3, 6):
            size //= 2  # the first block of stages 2 and 3 has stride 2
        total += size * size * inner * cin * 9 + size * size * cout * inner * 9
        cin = cout
    return total + 64 * 10


def fill_nonzero(model: CifarResNet, seed: int = 0) -> CifarResNet:
    """Random values everywhere (BN biases start at exactly 0), so the only zeros are the ones a test makes."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g) + 0.1)
    return model


def test_dense_resnet20_macs_match_formula_and_published_figure():
    macs = measure.count_macs(CifarResNet())
    assert macs == formula_macs(OUTER) == 40_551_040
    assert abs(macs - 40.6e6) / 40.6e6 < 0.02


def test_halving_inner_widths_removes_exactly_the_conv1_conv2_share():
    half = [w // 2 for w in OUTER]
    dense, pruned = measure.count_macs(CifarResNet()), measure.count_macs(CifarResNet(inner_widths=half))
    # Each block loses (w/2) * 9 * Hout*Wout * (Cin of conv1 + Cout of conv2); computed from shapes, not the counter.
    drop, cin, size = 0, 16, 32
    for i, w in enumerate(OUTER):
        size //= 2 if i in (3, 6) else 1
        drop += size * size * 9 * (w - w // 2) * (cin + w)
        cin = w
    assert dense - pruned == drop == formula_macs(OUTER) - formula_macs(half)
    assert pruned == formula_macs(half)


def test_macs_are_per_image_and_shared_layers_count_as_dense_convs():
    model = CifarResNet(shared={"blocks.0.conv1": 2, "blocks.8.conv2": 5})
    assert measure.count_macs(model, batch=3) == measure.count_macs(model) == formula_macs(OUTER)


def test_skip_zero_weights_counts_nonzeros_only():
    model = fill_nonzero(CifarResNet())
    assert measure.count_macs(model, skip_zero_weights=True) == measure.count_macs(model)
    with torch.no_grad():
        model.blocks[7].conv1.weight.zero_()          # stage 3 (8x8 outputs): loses 8*8*64*64*9
        model.conv1.weight[:, :, 0, 0] = 0            # stem (32x32 outputs): loses 32*32*16*3 multiply-adds
        model.fc.weight[0, :10] = 0                    # fc: loses 10
    expected = formula_macs(OUTER) - 8 * 8 * 64 * 64 * 9 - 32 * 32 * 16 * 3 - 10
    assert measure.count_macs(model, skip_zero_weights=True) == expected
    assert measure.count_macs(model) == formula_macs(OUTER)  # a dense conv still runs its zeros


def test_parameter_counts_exact_on_a_dense_model_with_known_zeros():
    model = fill_nonzero(CifarResNet())
    c = measure.count_parameters(model)
    assert c["params"] == c["nonzero_params"] == 269_722
    assert c["conv_filters"] == c["distinct_filters"] == 16 + 2 * (3 * 16 + 3 * 32 + 3 * 64)
    assert c["index_entries"] == c["zero_filters"] == 0
    g = torch.Generator().manual_seed(1)
    w = model.blocks[4].conv2.weight
    with torch.no_grad():
        w.view(-1)[torch.randperm(w.numel(), generator=g)[:1000]] = 0
        model.blocks[1].conv1.weight[[2, 5, 9]] = 0          # three whole filters zero, in another layer
        model.blocks[1].bn1.bias[:4] = 0
    c = measure.count_parameters(model)
    assert c["params"] == 269_722
    assert c["nonzero_params"] == 269_722 - 1000 - 3 * 16 * 9 - 4
    assert c["zero_filters"] == 3
    assert c["layers"]["blocks.1.conv1"] == {"filters": 16, "distinct": 14, "zero": 3, "params": 16 * 16 * 9,
                                             "nonzero": 13 * 16 * 9}  # three zero rows are one distinct filter
    assert c["distinct_filters"] == 688 - 2


def test_shared_model_counts_codebook_params_and_k_distinct_filters():
    shared = {"conv1": 2, "blocks.0.conv1": 3, "blocks.3.conv1": 4, "blocks.8.conv2": 7}
    model = fill_nonzero(CifarResNet(shared=shared))
    c = measure.count_parameters(model)
    cin_cout = {"conv1": (3, 16), "blocks.0.conv1": (16, 16), "blocks.3.conv1": (16, 32), "blocks.8.conv2": (64, 64)}
    saved = sum((cout - shared[n]) * cin * 9 for n, (cin, cout) in cin_cout.items())
    assert c["params"] == c["nonzero_params"] == 269_722 - saved
    assert c["index_entries"] == sum(cout for _, cout in cin_cout.values())
    assert c["distinct_filters"] == 688 - sum(cout - shared[n] for n, (_, cout) in cin_cout.items())
    assert c["conv_filters"] == 688
    # every conv shared: the distinct filters are exactly the sum of the k
    names = ["conv1"] + [f"blocks.{i}.conv{j}" for i in range(9) for j in (1, 2)]
    ks = {n: 1 + i % 5 for i, n in enumerate(names)}
    c = measure.count_parameters(CifarResNet(shared=ks))
    assert c["distinct_filters"] == sum(ks.values()) and c["index_entries"] == 688


def tiny_split(labels: list[int], seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    return Split(rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8), np.array(labels, dtype=np.int64))


def test_accuracy_of_a_model_that_always_says_class_3():
    model = CifarResNet()
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.arange(10) == 3)
    labels = [3, 3, 3, 0, 1, 1, 5, 9, 3, 0, 2]  # classes 4, 6, 7, 8 absent
    model.train()
    r = measure.accuracy(model, tiny_split(labels), batch_size=4)
    assert r["correct"] == 4 and r["n"] == 11 and r["accuracy"] == 4 / 11
    assert r["per_class"] == [0.0, 0.0, 0.0, 1.0, None, 0.0, None, None, None, 0.0]
    assert model.training  # mode restored
    json.dumps(r)


def test_accuracy_matches_a_hand_computation_and_train_evaluate():
    torch.manual_seed(0)
    model = CifarResNet().eval()
    labels = [i % 10 for i in range(37)]
    split = tiny_split(labels, seed=5)
    x, y = to_device(split, torch.device("cpu"))
    with torch.no_grad():  # random images give near-identical logits; centring them per class spreads the argmax
        model.fc.bias.sub_(model(normalize(x, model.normalization)).mean(0))
    r = measure.accuracy(model, split, batch_size=10)
    with torch.no_grad():
        pred = model(normalize(x, model.normalization)).argmax(1).numpy()
    assert len(set(pred.tolist())) > 1, "test model should not predict a constant class"
    y = np.array(labels)
    assert r["correct"] == int((pred == y).sum())
    assert r["per_class"] == [float((pred[y == c] == c).mean()) for c in range(10)]
    assert r["accuracy"] == pytest.approx(evaluate(model, x, torch.from_numpy(y), batch_size=7)[1])


def test_model_summary_is_json_and_consistent():
    model = CifarResNet(inner_widths=[8] * 9, shared={"blocks.2.conv2": 3})
    s = measure.model_summary(model)
    assert json.loads(json.dumps(s)) == s
    assert s["macs"] == formula_macs([8] * 9) == measure.count_macs(materialize(model))
    assert s["params"] == measure.count_parameters(model)["params"]
    assert s["inner_widths"] == [8] * 9 and s["shared_k"] == {"blocks.2.conv2": 3}
    assert s["stream_widths"] == [16, 32, 64]
    assert 0.0 <= s["sparsity"] < 1.0


def test_mac_counter_agrees_with_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    for model in (CifarResNet(), CifarResNet(inner_widths=[3, 5, 7, 9, 11, 13, 15, 17, 19])):
        model.eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(2, 3, 32, 32))
        assert measure.count_macs(model) == counter.get_total_flops() // (2 * 2)
