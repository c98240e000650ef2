"""cnn_pruning.pruning: argument checks, and each method's counts, criteria, surgery and behaviour in fine-tuning.

Every method runs on a random ResNet20 and on one briefly trained on class-coloured images (module fixture).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_pruning import pruning
from cnn_pruning.datasets.dataset import Dataset
from cnn_pruning.model import (
    DEPTHS,
    STREAM_WIDTHS,
    CifarResNet,
    SharedConv2d,
    count_params,
    load_checkpoint,
    materialize,
    save_checkpoint,
)
from cnn_pruning.model.inputs import normalize
from cnn_pruning.training import TrainConfig, fit
from helpers import synthetic_dataset

RATIOS = [0.0, 0.3, 0.5, 0.9]
OUTER = [w for w in STREAM_WIDTHS for _ in range(3)]
BLOCK_CIN = [16] + OUTER[:-1]


def dataset(per_class: int, seed: int) -> Dataset:
    return synthetic_dataset(per_class, seed, held_out=2)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models(one_thread) -> dict:
    torch.manual_seed(1)
    random = CifarResNet().eval()
    torch.manual_seed(0)
    trained = CifarResNet()
    # 3 epochs x 8 steps of SGD: the BN running stats and the filters move away from the init (train acc 0.83)
    fit(trained, dataset(24, 0), "sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        TrainConfig(epochs=3, batch_size=32, device="cpu"))
    return {"random": random, "trained": trained.eval()}


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    ds = dataset(4, 7)
    return normalize(torch.from_numpy(ds.train.images.transpose(0, 3, 1, 2).copy()), ds.normalization)


@pytest.fixture(scope="module")
def pruned(models):
    """prune() once per argument set; every caller gets its own copy, so tests may fine-tune it."""
    cache = {}

    def get(which: str, method: str, ratio: float, **options) -> pruning.PruneResult:
        key = (which, method, ratio, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = pruning.prune(models[which], method, ratio, **options)
        return pruning.PruneResult(copy.deepcopy(cache[key].model), copy.deepcopy(cache[key].info))
    return get


def finetune(model, optimizer="sgd", hparams=None):
    hparams = hparams or {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, dataset(4, 3), optimizer, hparams, TrainConfig(epochs=1, batch_size=20, device="cpu"))
    changed = [k for k, v in model.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert changed, "fine-tuning changed nothing: the test would prove nothing"
    return model.eval()


def expected_params(widths: list[int]) -> int:
    """ResNet20's parameter count for given inner widths: convs (no bias), BN weight+bias, fc."""
    total = 3 * 16 * 9 + 2 * 16 + 64 * 10 + 10
    for cin, w, cout in zip(BLOCK_CIN, widths, OUTER):
        total += cin * w * 9 + 2 * w + w * cout * 9 + 2 * cout
    return total


def distinct_rows(weight: torch.Tensor) -> int:
    return len(torch.unique(weight.detach().flatten(1), dim=0))


# ---------------------------------------------------------------------------------------------- all methods

@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, float("nan"), float("inf"), "0.5", True, None])
def test_bad_ratio_is_refused_before_any_work(ratio):
    for method in pruning.METHODS:
        for call in (lambda m=method: pruning.validate(m, ratio),
                     lambda m=method: pruning.prune(object(), m, ratio)):  # refused before the model is looked at
            with pytest.raises(ValueError) as error:
                call()
            assert "ratio must be a number in [0, 1)" in str(error.value) and f"got {ratio!r}" in str(error.value)


def test_unknown_method_and_options_are_named_with_what_is_allowed():
    assert pruning.METHODS == ("magnitude", "l2_unit", "kmeans_shared", "kmeans_channel", "random", "random_channel")
    with pytest.raises(ValueError, match="unknown pruning method 'l1'; allowed: magnitude, l2_unit, kmeans_shared, "
                                         "kmeans_channel"):
        pruning.validate("l1", 0.5)
    with pytest.raises(ValueError, match=r"'magnitude': unknown option\(s\) 'seed'; allowed options: scope, "
                                         "include_stem, include_fc"):
        pruning.validate("magnitude", 0.5, {"seed": 0})
    with pytest.raises(ValueError, match=r"'kmeans_channel': unknown option\(s\) 'bits'; allowed options: scope, "
                                         "round_to, seed, n_init, merge"):
        pruning.prune(CifarResNet(), "kmeans_channel", 0.5, bits=4)
    bad = [("magnitude", {"scope": "local"}, r"scope='local'.*allowed: 'global' or 'layer'"),
           ("kmeans_channel", {"scope": "layer"}, r"scope='layer'.*allowed: 'inner' or 'all'"),
           ("l2_unit", {"round_to": 0}, r"round_to=0.*integer in \[1, 64\]"),
           ("random_channel", {"round_to": 8.0}, r"round_to=8.0"),
           ("magnitude", {"include_fc": 1}, r"include_fc=1.*allowed: False or True"),
           ("l2_unit", {"include_stem": "yes"}, r"include_stem='yes'"),
           ("kmeans_shared", {"seed": -1}, r"seed=-1.*integer in \[0, 4294967295\]"),
           ("kmeans_shared", {"seed": True}, r"seed=True"),
           ("kmeans_channel", {"n_init": 0}, r"n_init=0.*integer in \[1, 1000\]"),
           ("kmeans_channel", {"merge": None}, r"merge=None")]
    for method, options, message in bad:
        with pytest.raises(ValueError, match=message):
            pruning.validate(method, 0.5, options)


def test_validate_returns_the_resolved_options():
    assert pruning.validate("l2_unit", 0) == (0.0, {"scope": "inner", "round_to": 1, "include_stem": True})
    assert pruning.validate("kmeans_shared", 0.5, {"seed": np.int64(3)}) == (0.5, {"seed": 3, "n_init": 4,
                                                                                  "include_stem": True})
    assert pruning.defaults("magnitude") == {"scope": "global", "include_stem": False, "include_fc": False}


def test_already_pruned_models_are_refused(pruned):
    once = pruned("random", "magnitude", 0.5).model
    with pytest.raises(ValueError, match="already pruned"):
        pruning.prune(once, "l2_unit", 0.5)


@pytest.mark.parametrize("which", ["random", "trained"])
@pytest.mark.parametrize("method", pruning.METHODS)
def test_ratio_zero_keeps_the_outputs(models, pruned, batch, method, which):
    result = pruned(which, method, 0.0)
    with torch.no_grad():
        assert torch.allclose(result.model.eval()(batch), models[which](batch), atol=1e-5)
    assert result.info["params_after"] == result.info["params_before"] == 269_722
    assert result.info["masked_zeros"] == 0


@pytest.mark.parametrize("method", pruning.METHODS)
def test_prune_never_mutates_its_input_and_reloads_identically(models, batch, method, tmp_path):
    model = models["trained"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = pruning.prune(model, method, 0.5)
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.masks == {} and model.spec()["shared"] == {} and not model.training
    assert result.model is not model and result.info["method"] == method and result.info["ratio"] == 0.5
    assert result.model.training == model.training

    save_checkpoint(tmp_path / "m.pt", result.model, meta={"info": result.info})
    again, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta["info"] == result.info  # plain python types only: json-serialisable and weights_only-loadable
    assert again.spec() == result.model.spec()
    assert again.masks.keys() == result.model.masks.keys()
    assert all(torch.equal(again.masks[k], v) for k, v in result.model.masks.items())
    with torch.no_grad():
        assert torch.equal(again.eval()(batch), result.model.eval()(batch))


# ---------------------------------------------------------------------------------------------- magnitude

def prunable_weights(model, include_stem=False, include_fc=False) -> dict:
    names = [n + ".weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)
             and (include_stem or n != "conv1")] + (["fc.weight"] if include_fc else [])
    return {n: model.get_parameter(n).detach() for n in names}


@pytest.mark.parametrize("which", ["random", "trained"])
@pytest.mark.parametrize("ratio", RATIOS)
def test_magnitude_global_zeroes_exactly_the_smallest(models, pruned, which, ratio):
    original = prunable_weights(models[which])
    result = pruned(which, "magnitude", ratio)
    weights = prunable_weights(result.model)
    n = sum(w.numel() for w in weights.values())
    assert n == sum(9 * w * (cin + w) for cin, w in zip(BLOCK_CIN, OUTER)) == result.info["prunable"]
    assert result.model.masks.keys() == weights.keys()
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert zeros == round(ratio * n) == result.info["zeroed"] == result.info["masked_zeros"]
    assert all(torch.equal(w == 0, ~result.model.masks[k]) for k, w in weights.items())
    dropped = torch.cat([original[k][~result.model.masks[k]].abs() for k in weights])
    kept = torch.cat([original[k][result.model.masks[k]].abs() for k in weights])
    if len(dropped):
        assert dropped.max() <= kept.min()
    assert result.model.get_parameter("conv1.weight").ne(0).all()  # stem and fc left alone by default
    assert torch.equal(result.model.fc.weight, models[which].fc.weight)


def test_magnitude_gives_the_exact_count_with_tied_weights():
    model = CifarResNet()
    with torch.no_grad():
        for _, w in prunable_weights(model).items():
            w.copy_(torch.sign(w) * 0.5)  # every prunable |w| is the same: a threshold would take all or none
    result = pruning.prune(model, "magnitude", 0.3, scope="layer")
    for w in prunable_weights(result.model).values():
        assert int((w == 0).sum()) == round(0.3 * w.numel())


@pytest.mark.parametrize("which", ["random", "trained"])
@pytest.mark.parametrize("ratio", [0.5, 0.9])
def test_magnitude_layer_scope_counts_per_layer_with_stem_and_fc(models, pruned, which, ratio):
    result = pruned(which, "magnitude", ratio, scope="layer", include_stem=True, include_fc=True)
    weights = prunable_weights(result.model, include_stem=True, include_fc=True)
    assert len(weights) == 20 and result.model.masks.keys() == weights.keys()
    for name, w in weights.items():
        assert int((w == 0).sum()) == round(ratio * w.numel()) == result.info["layers"][name]["zeroed"]
        original = models[which].get_parameter(name).detach()
        assert original[w == 0].abs().max() <= original[w != 0].abs().min()


@pytest.mark.parametrize("optimizer,hparams", [("adam", {"lr": 1e-3}), ("adamax", {"lr": 2e-3}),
                                               ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4})])
def test_magnitude_zeros_survive_fine_tuning(pruned, optimizer, hparams):
    result = pruned("trained", "magnitude", 0.9)
    model = finetune(result.model, optimizer, hparams)
    weights = prunable_weights(model)
    n = sum(w.numel() for w in weights.values())
    assert sum(int((w == 0).sum()) for w in weights.values()) == round(0.9 * n)
    assert all(torch.equal(w == 0, ~model.masks[k]) for k, w in weights.items())


# ---------------------------------------------------------------------------------------------- l2_unit

def unit_norms(model, conv_name):
    return model.get_submodule(conv_name).weight.detach().flatten(1).norm(dim=1)


@pytest.mark.parametrize("which", ["random", "trained"])
@pytest.mark.parametrize("ratio", RATIOS)
def test_l2_unit_removes_and_zeroes_the_smallest_filters(models, pruned, which, ratio):
    original = models[which]
    result = pruned(which, "l2_unit", ratio)
    model, layers = result.model, result.info["layers"]
    widths = [n - min(round(ratio * n), n - 1) for n in OUTER]
    assert model.inner_widths == result.info["inner_widths"] == widths
    assert count_params(model) == expected_params(widths) == result.info["params_after"]
    assert len(layers) == 19
    for name, layer in layers.items():
        n, gone = layer["n_filters"], layer["removed"] + layer["zeroed"]
        assert len(gone) == min(round(ratio * n), n - 1) and not (layer["removed"] and layer["zeroed"])
        assert bool(layer["removed"]) == (ratio > 0 and name.endswith(".conv1") and name != "conv1")
        norms = unit_norms(original, name)
        kept = [j for j in range(n) if j not in gone]
        if gone:
            assert norms[gone].max() <= norms[kept].min()
        if layer["removed"]:  # the surviving filters are the original ones, in order, and conv2 matches
            block = name.rsplit(".", 1)[0]
            assert torch.equal(model.get_submodule(name).weight, original.get_submodule(name).weight[kept])
            assert torch.equal(model.get_submodule(block + ".bn1").running_var,
                               original.get_submodule(block + ".bn1").running_var[kept])
            w2 = original.get_submodule(block + ".conv2").weight[:, kept]
            rows = [j for j in range(w2.shape[0]) if j not in layers[block + ".conv2"]["zeroed"]]
            assert torch.equal(model.get_submodule(block + ".conv2").weight[rows], w2[rows])
    # a zeroed unit holds its filter, BN weight and BN bias at zero
    assert result.info["masked_zeros"] == sum(len(layer["zeroed"]) * (model.get_submodule(name).weight[0].numel() + 2)
                                              for name, layer in layers.items())


def test_l2_unit_zeroed_units_stay_zero_and_output_exactly_zero(pruned, batch):
    result = pruned("trained", "l2_unit", 0.5)
    model = finetune(result.model)
    zeroed = {name: layer["zeroed"] for name, layer in result.info["layers"].items() if layer["zeroed"]}
    assert len(zeroed) == 10  # the stem and the 9 conv2s
    outputs = {}
    bn_of = {name: ("bn1" if name == "conv1" else name.replace("conv2", "bn2")) for name in zeroed}
    hooks = [model.get_submodule(bn).register_forward_hook(lambda m, i, o, bn=bn: outputs.__setitem__(bn, o))
             for bn in bn_of.values()]
    for name, idx in zeroed.items():
        bn = model.get_submodule(bn_of[name])
        assert model.get_submodule(name).weight[idx].eq(0).all()
        assert bn.weight[idx].eq(0).all() and bn.bias[idx].eq(0).all()
        others = [j for j in range(bn.num_features) if j not in idx]
        assert bn.weight[others].ne(0).all()
    for mode in (True, False):  # batch statistics and running statistics
        model.train(mode)
        with torch.no_grad():
            model(batch)
        for name, idx in zeroed.items():
            out = outputs[bn_of[name]]
            assert out[:, idx].eq(0).all(), f"{name}: zeroed units emit something (train={mode})"
            assert out.abs().sum() > 0
    for h in hooks:
        h.remove()


def test_l2_unit_without_stem_leaves_the_stem_alone(models, pruned):
    result = pruned("random", "l2_unit", 0.5, include_stem=False)
    assert "conv1" not in result.info["layers"] and "conv1.weight" not in result.model.masks
    assert torch.equal(result.model.conv1.weight, models["random"].conv1.weight)


# ---------------------------------------------------------------------------------------------- kmeans_shared

@pytest.mark.parametrize("which", ["random", "trained"])
@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
def test_kmeans_shared_gives_exactly_k_distinct_filters(models, pruned, batch, which, ratio):
    result = pruned(which, "kmeans_shared", ratio)
    model, layers = result.model, result.info["layers"]
    assert len(layers) == 19
    for name, layer in layers.items():
        conv = model.get_submodule(name)
        k = max(1, layer["n_filters"] - round(ratio * layer["n_filters"]))
        assert isinstance(conv, SharedConv2d) and layer["k"] == layer["k_target"] == k == conv.k
        assert distinct_rows(conv.weight) == k and conv.assignment.tolist() == layer["assignment"]
    assert result.info["params_after"] == count_params(model)
    dense = materialize(model).eval()
    assert not any(isinstance(m, SharedConv2d) for m in dense.modules())
    with torch.no_grad():
        assert torch.allclose(model.eval()(batch), dense(batch), atol=1e-6)
    model = finetune(model, "adam", {"lr": 1e-3})
    for name, layer in layers.items():
        assert distinct_rows(model.get_submodule(name).weight) == layer["k"]


def test_kmeans_shared_caps_k_at_the_distinct_filters_and_is_deterministic(batch):
    model = CifarResNet().eval()
    with torch.no_grad():  # blocks.0.conv1 holds only 3 different filters
        w = model.blocks[0].conv1.weight
        w.copy_(w[torch.arange(16) % 3])
    for ratio, k in ((0.0, 3), (0.5, 3), (0.9, 2)):
        result = pruning.prune(model, "kmeans_shared", ratio)
        layer = result.info["layers"]["blocks.0.conv1"]
        assert layer["k"] == k == result.model.blocks[0].conv1.k == distinct_rows(result.model.blocks[0].conv1.weight)
        if ratio == 0.0:
            with torch.no_grad():
                assert torch.equal(result.model(batch), model(batch))
            assert layer["assignment"] == [j % 3 for j in range(16)]
    a, b = (pruning.prune(model, "kmeans_shared", 0.7, seed=5).info for _ in range(2))
    assert a == b


# ---------------------------------------------------------------------------------------------- kmeans_channel

@pytest.mark.parametrize("which", ["random", "trained"])
@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("merge", [True, False])
def test_kmeans_channel_shrinks_blocks_and_merges(models, pruned, which, ratio, merge):
    original = models[which]
    result = pruned(which, "kmeans_channel", ratio, merge=merge)
    model, layers = result.model, result.info["layers"]
    widths = [max(1, n - round(ratio * n)) for n in OUTER]
    assert model.inner_widths == result.info["inner_widths"] == widths
    assert count_params(model) == expected_params(widths) == result.info["params_after"]
    for i in range(9):
        layer = layers[f"blocks.{i}.conv1"]
        kept, clusters = layer["kept"], layer["clusters"]
        assert layer["k"] == len(kept) == widths[i] and kept == sorted(kept)
        assert sorted(j for c in clusters for j in c) == list(range(OUTER[i]))  # a partition of the channels
        new, old = model.blocks[i], original.blocks[i]
        # each representative is the member nearest its cluster's centroid (BN folded in, as the method clusters)
        scale = old.bn1.weight / torch.sqrt(old.bn1.running_var + old.bn1.eps)
        points = torch.cat([old.conv1.weight.flatten(1) * scale[:, None],
                            (old.bn1.bias - old.bn1.running_mean * scale)[:, None]], 1).detach().double()
        for rep, members in zip(kept, clusters):
            distance = (points[members] - points[members].mean(0)).square().sum(1)
            assert rep in members and distance[members.index(rep)] <= distance.min() * (1 + 1e-6) + 1e-12
        assert torch.equal(new.conv1.weight, old.conv1.weight[kept])
        assert torch.equal(new.bn1.running_mean, old.bn1.running_mean[kept])
        expected = torch.stack([old.conv2.weight[:, c].sum(1) for c in clusters], 1) if merge else \
            old.conv2.weight[:, kept]
        assert torch.allclose(new.conv2.weight, expected, atol=1e-6)
    x = torch.randn(4, 3, 32, 32)
    loss = model.train()(x).square().mean()
    loss.backward()
    assert math.isfinite(loss.item()) and all(p.grad is not None for p in model.parameters())


def pair_up(model: CifarResNet, noise: float) -> CifarResNet:
    """A copy whose blocks' inner channels come in pairs: channel 2j+1 = channel 2j (filter and BN entries),
    plus `noise` times a random perturbation of the filter."""
    model = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for block in model.blocks:
            for t in (block.conv1.weight, block.bn1.weight, block.bn1.bias, block.bn1.running_mean,
                      block.bn1.running_var):
                t.copy_(t[torch.arange(t.shape[0]) // 2 * 2])
            w = block.conv1.weight
            w.add_(noise * w.std() * torch.randn(w.shape, generator=gen))
    return model


def test_kmeans_channel_merge_is_exact_for_duplicate_channels(models, batch):
    model = pair_up(models["trained"], noise=0.0)
    merged = pruning.prune(model, "kmeans_channel", 0.5)
    assert merged.model.inner_widths == [n // 2 for n in OUTER]
    assert all(sorted(c) == [c[0], c[0] + 1] and c[0] % 2 == 0 for layer in merged.info["layers"].values()
               for c in layer["clusters"])
    with torch.no_grad():
        assert torch.allclose(merged.model.eval()(batch), model(batch), atol=1e-5)
        assert not torch.allclose(pruning.prune(model, "kmeans_channel", 0.5, merge=False).model.eval()(batch),
                                  model(batch), atol=1e-1)


def logit_error(model, result, batch) -> float:
    with torch.no_grad():
        return F.mse_loss(result.model.eval()(batch), model(batch)).item()


def test_kmeans_channel_merge_brings_the_logits_closer_than_dropping(models, pruned, batch):
    # near-duplicate channels: merging is close to exact, dropping loses half of every block's conv2 input
    model = pair_up(models["trained"], noise=0.05)
    error = {merge: logit_error(model, pruning.prune(model, "kmeans_channel", 0.5, merge=merge), batch)
             for merge in (True, False)}
    assert error[True] < 0.1 * error[False], error
    # the trained model as it is: channels are only loosely alike, but merging keeps each cluster's summed
    # contribution (so conv2's output keeps its mean, which the fixed BN statistics rely on)
    model = models["trained"]
    error = {merge: logit_error(model, pruned("trained", "kmeans_channel", 0.5, merge=merge), batch)
             for merge in (True, False)}
    assert error[True] < error[False], error


# ---------------------------------------------------------------------------------------------- random baselines

@pytest.mark.parametrize("which", ["random", "trained"])
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_random_zeroes_as_many_weights_as_magnitude_per_layer_at_other_positions(models, pruned, which, scope):
    chance, by_size = pruned(which, "random", 0.7, scope=scope), pruned(which, "magnitude", 0.7, scope=scope)
    if scope == "layer":
        assert chance.info["layers"] == by_size.info["layers"]  # the same count in every tensor
    else:
        assert chance.info["zeroed"] == round(0.7 * by_size.info["prunable"])
    assert chance.info["zeroed"] == by_size.info["zeroed"]
    assert set(chance.model.masks) == set(by_size.model.masks)
    same = [torch.equal(chance.model.masks[n], by_size.model.masks[n]) for n in by_size.model.masks]
    assert not any(same), "random chose magnitude's positions"
    weights = torch.cat([chance.model.get_parameter(n).detach().flatten() for n in chance.model.masks])
    assert int((weights == 0).sum()) == chance.info["zeroed"]


def test_random_baselines_are_fixed_by_their_seed(models, pruned):
    for method, what in (("random", lambda r: [m.clone() for m in r.model.masks.values()]),
                         ("random_channel", lambda r: [layer["kept"] for layer in r.info["layers"].values()])):
        a, b, c = (what(pruned("trained", method, 0.5, seed=s)) for s in (1, 1, 2))
        same = all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(a, b))
        differ = any(not torch.equal(x, y) if isinstance(x, torch.Tensor) else x != y for x, y in zip(a, c))
        assert same and differ, method


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.9])
def test_random_channel_keeps_the_widths_of_the_channel_methods(models, pruned, batch, ratio):
    chance = pruned("trained", "random_channel", ratio)
    assert chance.model.inner_widths == pruned("trained", "kmeans_channel", ratio).model.inner_widths \
        == pruned("trained", "l2_unit", ratio).model.inner_widths
    assert count_params(chance.model) == expected_params(chance.model.inner_widths) and not chance.model.masks
    for i, layer in enumerate(chance.info["layers"].values()):  # the kept channels are the original ones, sliced
        block, original = chance.model.blocks[i], models["trained"].blocks[i]
        assert layer["kept"] == sorted(layer["kept"]) and len(layer["kept"]) == block.conv1.out_channels
        assert torch.equal(block.conv1.weight, original.conv1.weight[layer["kept"]])
        assert torch.equal(block.conv2.weight, original.conv2.weight[:, layer["kept"]])


def test_each_criterion_is_matched_to_the_baseline_that_reproduces_its_counts():
    assert {m: pruning.baseline_of(m) for m in (pruning.CONTROL, *pruning.METHODS)} == {
        "none": None, "magnitude": "random", "l2_unit": "random_channel", "kmeans_shared": None,
        "kmeans_channel": "random_channel", "random": None, "random_channel": None}


VARIANTS = {"l2_unit_all": {"method": "l2_unit", "scope": "all"},
            "kmeans_channel_all8": {"method": "kmeans_channel", "scope": "all", "round_to": 8},
            "random_channel_all": {"method": "random_channel", "scope": "all"},
            "random_channel_all8": {"method": "random_channel", "scope": "all", "round_to": 8},
            "magnitude_layer": {"method": "magnitude", "scope": "layer"}}


def test_named_variants_resolve_to_their_method_and_options():
    assert pruning.resolve("l2_unit", {"l2_unit": {"include_stem": False}}) == ("l2_unit", {"include_stem": False})
    assert pruning.resolve("kmeans_channel", {}) == ("kmeans_channel", {})
    assert pruning.resolve("kmeans_channel_all8", VARIANTS) == ("kmeans_channel", {"scope": "all", "round_to": 8})
    assert VARIANTS["kmeans_channel_all8"]["method"] == "kmeans_channel", "resolve() must not edit the table"
    with pytest.raises(ValueError, match=r"unknown pruning method 'l2_all'; allowed: magnitude, .*, or a variant "
                                         r"defined in prune.options as `l2_all: \{method: <one of them>"):
        pruning.resolve("l2_all", VARIANTS)
    with pytest.raises(ValueError, match=r"prune.options.x.method = 'l3' is not a pruning method; allowed: magnitude"):
        pruning.resolve("x", {"x": {"method": "l3"}})
    with pytest.raises(ValueError, match=r"prune.options.l2_unit: 'method' names the method of a variant"):
        pruning.resolve("l2_unit", {"l2_unit": {"method": "l2_unit"}})


def test_a_variant_is_compared_with_the_baseline_variant_that_removes_the_same_widths():
    listed = ["l2_unit", "l2_unit_all", "kmeans_channel_all8", "random_channel", "random_channel_all",
              "random_channel_all8", "magnitude_layer", "random"]
    assert {m: pruning.baseline_of(m, VARIANTS, listed) for m in listed} == {
        "l2_unit": "random_channel", "l2_unit_all": "random_channel_all", "kmeans_channel_all8": "random_channel_all8",
        "random_channel": None, "random_channel_all": None, "random_channel_all8": None,
        "magnitude_layer": None, "random": None}  # random has scope "global": not magnitude_layer's counts
    assert pruning.baseline_of("l2_unit_all", VARIANTS, ["l2_unit_all", "random_channel"]) is None
    # and the baseline variant really removes the widths its method variant removes
    model = CifarResNet()
    for name in ("l2_unit_all", "kmeans_channel_all8"):
        method, options = pruning.resolve(name, VARIANTS)
        chance, chance_options = pruning.resolve(pruning.baseline_of(name, VARIANTS, listed), VARIANTS)
        a, b = (pruning.prune(model, method, 0.7, **options).model,
                pruning.prune(model, chance, 0.7, **chance_options).model)
        assert (a.stream_widths, a.inner_widths) == (b.stream_widths, b.inner_widths)


# ---------------------------------------------------------------------------------------------- every depth

@pytest.fixture(scope="module")
def deep_models(one_thread) -> dict:
    """One random model per depth of the family, with BN statistics that are not the init's (so ratio 0 and the
    merges are tested on something other than identity BNs)."""
    out = {}
    for depth in DEPTHS:
        torch.manual_seed(depth)
        model = CifarResNet(depth)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)
        out[depth] = model.eval()
    return out


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("method", pruning.METHODS)
def test_every_method_prunes_every_depth(deep_models, method, depth, tmp_path):
    """The registry over the family, as timm's tests run over its model registry: each method prunes each depth
    at 0.5 into a model that is smaller where it should be, runs, and reloads with the same outputs; at ratio 0 the
    outputs are the base's."""
    base, x = deep_models[depth], torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = base(x)
        kept = pruning.prune(base, method, 0.0).model.eval()
        assert torch.allclose(kept(x), expected, atol=1e-4, rtol=1e-4)
    result = pruning.prune(base, method, 0.5)
    model = result.model.eval()
    n = (depth - 2) // 6
    assert model.depth == depth and len(model.blocks) == 3 * n
    if method in ("l2_unit", "kmeans_channel", "random_channel"):
        assert model.inner_widths == [w - round(0.5 * w) for w in STREAM_WIDTHS for _ in range(n)]
        assert count_params(model) < count_params(base)
    elif method == "kmeans_shared":
        assert sum(isinstance(m, SharedConv2d) for m in model.modules()) == 6 * n + 1  # every 3x3 conv
    else:  # magnitude, random: half of the conv weights (stem excluded by default) held at zero
        conv = sum(m.weight.numel() for name, m in model.named_modules()
                   if isinstance(m, torch.nn.Conv2d) and name != "conv1")
        assert pruning.masked_zeros(model) == round(0.5 * conv)
    save_checkpoint(tmp_path / "m.pt", model)
    back, _ = load_checkpoint(tmp_path / "m.pt")
    with torch.no_grad():
        assert torch.equal(back.eval()(x), model(x))
    assert back.spec() == model.spec()
