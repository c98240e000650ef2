"""cnn_pruning.pruning.graph and scope "all": the traced channel groups, the surgery on the residual streams, and
the channel methods' scope, round_to and merge over the streams.

Expected groups, widths, params and MACs are derived here from the CIFAR ResNet's structure (He et al.), not from
the graph, so a wrong trace or a wrong surgery cannot agree with them by construction.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_pruning import pruning
from cnn_pruning.datasets.catalog import CIFAR10_CLASSES
from cnn_pruning.datasets.dataset import Dataset, Split
from cnn_pruning.evaluation import speed
from cnn_pruning.model import DEPTHS, STREAM_WIDTHS, CifarResNet, count_params, load_checkpoint, save_checkpoint
from cnn_pruning.model.export import export_compact, load_compact
from cnn_pruning.model.inputs import normalize
from cnn_pruning.model.measure import model_summary
from cnn_pruning.pruning.graph import channel_groups, remove_channels
from cnn_pruning.training import TrainConfig, fit
from helpers import class_images

CHANNEL_METHODS = ("l2_unit", "kmeans_channel", "random_channel")


pytestmark = pytest.mark.usefixtures("one_thread")


def synthetic(per_class: int, seed: int) -> Dataset:
    def split(n, s):
        return Split(np.concatenate([class_images(c, n, s) for c in range(10)]), np.repeat(np.arange(10), n))
    return Dataset(split(per_class, seed), split(2, seed + 1), split(2, seed + 2), CIFAR10_CLASSES, "synthetic", None)


def with_bn_statistics(model: CifarResNet, seed: int) -> CifarResNet:
    """BN statistics and affine parameters that are not the init's, so folding and merging are really tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
    return model.eval()


@pytest.fixture(scope="module")
def trained(one_thread) -> CifarResNet:
    torch.manual_seed(0)
    model = CifarResNet()
    fit(model, synthetic(24, 0), "sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
        TrainConfig(epochs=3, batch_size=32, device="cpu"))
    return model.eval()


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    ds = synthetic(4, 7)
    return normalize(torch.from_numpy(ds.train.images.transpose(0, 3, 1, 2).copy()), ds.normalization)


@pytest.fixture(scope="module")
def deep() -> dict:
    out = {}
    for depth in DEPTHS:
        torch.manual_seed(depth)
        out[depth] = with_bn_statistics(CifarResNet(depth), depth)
    return out


def kept_count(ratio: float, n: int, round_to: int = 1) -> int:
    """The stated rule, written out again: round(ratio * n) removed, at least one kept, then to a multiple."""
    kept = max(1, n - int(round(ratio * n)))
    if round_to > 1:
        kept = min(n, max(round_to, round_to * round(kept / round_to)))
    return kept


def params_and_macs(depth: int, stream: list[int], inner: list[int], classes: int = 10) -> tuple[int, int]:
    """Parameters (convs without bias, BN weight and bias, fc) and multiply-accumulates (convs and fc) of a CIFAR
    ResNet with these widths, from the architecture's definition."""
    n = (depth - 2) // 6
    params = 3 * stream[0] * 9 + 2 * stream[0] + stream[2] * classes + classes
    macs = 3 * stream[0] * 9 * 32 * 32 + stream[2] * classes
    cin = stream[0]
    for i, w in enumerate(inner):
        s = i // n
        cout, side = stream[s], 32 >> s
        params += cin * w * 9 + 2 * w + w * cout * 9 + 2 * cout
        macs += (cin * w * 9 + w * cout * 9) * side * side
        cin = cout
    return params, macs


# ---------------------------------------------------------------------------------------------- the trace

@pytest.mark.parametrize("depth", DEPTHS)
def test_the_trace_finds_each_stream_and_each_blocks_inner_width(deep, depth):
    n = (depth - 2) // 6
    groups = channel_groups(deep[depth])
    streams = [g for g in groups if g.kind == "stream"]
    inner = [g for g in groups if g.kind == "inner"]
    assert [g.name for g in streams] == ["stream.0", "stream.1", "stream.2"]
    assert [g.size for g in streams] == list(STREAM_WIDTHS)
    for s, g in enumerate(streams):
        first, blocks = s * n, range(s * n, (s + 1) * n)
        assert g.writers == ([("conv1", "bn1")] if s == 0 else []) + [(f"blocks.{i}.conv2", f"blocks.{i}.bn2")
                                                                      for i in blocks]
        assert g.shortcuts_out == ([] if s == 0 else [f"blocks.{first}.shortcut"])
        # read by the stage's blocks (the first block of a later stage reads the stream before it) and then by
        # the next stage's first block, or by the classifier
        next_first = (s + 1) * n
        assert g.readers == [f"blocks.{i}.conv1" for i in range(first + (s > 0), next_first)] \
            + ([f"blocks.{next_first}.conv1"] if s < 2 else ["fc"])
        assert g.shortcuts_in == ([f"blocks.{next_first}.shortcut"] if s < 2 else [])
    assert [g.name for g in inner] == [f"blocks.{i}.conv1" for i in range(3 * n)]
    assert all(g.writers == [(g.name, g.name.replace("conv1", "bn1"))]
               and g.readers == [g.name.replace("conv1", "conv2")] for g in inner)
    assert [g.size for g in inner] == [w for w in STREAM_WIDTHS for _ in range(n)]


def test_a_pruned_layout_is_traced_again_with_its_own_widths(deep):
    pruned = pruning.prune(deep[20], "random_channel", 0.5, scope="all").model
    groups = channel_groups(pruned)
    assert [g.size for g in groups if g.kind == "stream"] == pruned.stream_widths == [8, 16, 32]
    assert [g.size for g in groups if g.kind == "inner"] == pruned.inner_widths
    again = pruning.prune(pruned, "random_channel", 0.5, scope="all").model  # a second pass works on the first's
    assert again.stream_widths == [4, 8, 16]


def test_bad_surgery_requests_are_refused(deep):
    model = deep[20]
    with pytest.raises(ValueError, match=r"no channel group called \['stream.7'\]"):
        remove_channels(model, {"stream.7": [0]})
    with pytest.raises(ValueError, match="distinct sorted indices in 0..15"):
        remove_channels(model, {"stream.0": [3, 1]})
    with pytest.raises(ValueError, match="at least one"):
        remove_channels(model, {"blocks.0.conv1": []})
    with pytest.raises(ValueError, match="distinct sorted indices in 0..63"):
        remove_channels(model, {"stream.2": [64]})


# ---------------------------------------------------------------------------------------------- ratio 0

@pytest.mark.parametrize("scope", ["inner", "all"])
@pytest.mark.parametrize("method", CHANNEL_METHODS)
@pytest.mark.parametrize("depth", [20, 56])
def test_ratio_zero_gives_exactly_the_base_outputs(deep, method, scope, depth):
    base, x = deep[depth], torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    result = pruning.prune(base, method, 0.0, scope=scope)
    with torch.no_grad():
        assert torch.equal(result.model.eval()(x), base(x))
    assert result.model.spec() == base.spec() or method == "l2_unit"  # l2_unit only adds (empty) masks
    assert result.model.stream_widths == base.stream_widths and result.model.inner_widths == base.inner_widths


# ---------------------------------------------------------------------------------------------- widths and counts

@pytest.mark.parametrize("round_to", [1, 8, 16])
@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.8, 0.97])
def test_scope_all_widths_params_and_macs_follow_the_stated_rule(deep, ratio, round_to):
    for depth in (20, 32):
        n = (depth - 2) // 6
        stream = [kept_count(ratio, w, round_to) for w in STREAM_WIDTHS]
        inner = [kept_count(ratio, w, round_to) for w in STREAM_WIDTHS for _ in range(n)]
        for method in CHANNEL_METHODS:
            result = pruning.prune(deep[depth], method, ratio, scope="all", round_to=round_to)
            model = result.model
            assert (model.stream_widths, model.inner_widths) == (stream, inner), method
            assert (result.info["stream_widths"], result.info["inner_widths"]) == (stream, inner)
            params, macs = params_and_macs(depth, stream, inner)
            summary = model_summary(model)
            assert (count_params(model), summary["params"], summary["macs"]) == (params, params, macs), method
            assert not model.masks, "scope all removes channels; nothing is left zeroed"
            if round_to > 1:
                assert all(w % round_to == 0 or w == full for w, full in
                           zip(stream + inner, list(STREAM_WIDTHS) + [w for w in STREAM_WIDTHS for _ in range(n)]))


def test_round_to_rounds_inner_widths_too_and_the_ratio_becomes_approximate(deep):
    model = pruning.prune(deep[20], "kmeans_channel", 0.8, round_to=8).model
    assert model.inner_widths == [8, 8, 8, 8, 8, 8, 16, 16, 16]  # exact counts would be 3, 6 and 13
    assert model.stream_widths == list(STREAM_WIDTHS)


def test_l2_unit_scope_all_include_stem_false_keeps_the_first_stream(deep):
    model = pruning.prune(deep[20], "l2_unit", 0.5, scope="all", include_stem=False).model
    assert model.stream_widths == [16, 16, 32]


# ---------------------------------------------------------------------------------------------- consistency

def zeroed_reference(base: CifarResNet, result: pruning.PruneResult) -> CifarResNet:
    """The base at full width with every removed channel silenced where it is produced: its writers' BN weight and
    bias set to zero (inner: bn1; stream: the stem's or the blocks' bn2) and the shortcut entries that write it set
    to zero. Written from the architecture, not from the graph. If the surgery removed each channel from every
    layer that reads it, the pruned model computes exactly this model's function."""
    ref = copy.deepcopy(base)
    n = (base.depth - 2) // 6
    layers = result.info["layers"]
    maps = {}
    with torch.no_grad():
        for i, block in enumerate(ref.blocks):
            kept = layers[f"blocks.{i}.conv1"].get("kept")
            if kept is None:  # l2_unit reports what it removed
                kept = sorted(set(range(block.conv1.out_channels)) - set(layers[f"blocks.{i}.conv1"]["removed"]))
            gone = sorted(set(range(block.conv1.out_channels)) - set(kept))
            block.bn1.weight[gone], block.bn1.bias[gone] = 0, 0
        for s in range(3):
            layer = layers[f"stream.{s}"]
            kept = layer.get("kept") or sorted(set(range(STREAM_WIDTHS[s])) - set(layer["removed"]))
            gone = sorted(set(range(STREAM_WIDTHS[s])) - set(kept))
            bns = ([ref.bn1] if s == 0 else []) + [ref.blocks[i].bn2 for i in range(s * n, (s + 1) * n)]
            for bn in bns:
                bn.weight[gone], bn.bias[gone] = 0, 0
            if s > 0:
                shortcut = ref.blocks[s * n].shortcut
                maps[f"blocks.{s * n}"] = [-1 if j in gone else c for j, c in enumerate(shortcut.channel_map)]
    rebuilt = CifarResNet(base.depth, base.num_classes, shortcut_maps=maps, normalization=base.normalization)
    rebuilt.load_state_dict(ref.state_dict())
    return rebuilt.eval()


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("method", ["l2_unit", "random_channel"])
def test_removed_channels_are_gone_from_every_layer_that_reads_them(deep, method, depth, tmp_path):
    base, x = deep[depth], torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    result = pruning.prune(base, method, 0.5, scope="all", seed=3) if method == "random_channel" else \
        pruning.prune(base, method, 0.5, scope="all")
    pruned = result.model.eval()
    with torch.no_grad():
        expected = zeroed_reference(base, result)(x)
        # float32 sums in another order (fewer terms): a tolerance on the logits' scale, which grows with depth
        torch.testing.assert_close(pruned(x), expected, atol=1e-5 * expected.abs().max().item(), rtol=1e-4)
        save_checkpoint(tmp_path / "m.pt", pruned)
        back, _ = load_checkpoint(tmp_path / "m.pt")
        assert back.spec() == pruned.spec() and torch.equal(back.eval()(x), pruned(x))
        export_compact(pruned, tmp_path / "m.rz")
        assert torch.equal(load_compact(tmp_path / "m.rz").eval()(x), pruned(x))


def test_l2_unit_scope_all_removes_the_smallest_group_norms(deep):
    base = deep[20]
    result = pruning.prune(base, "l2_unit", 0.5, scope="all")
    # stage 1's stream, from the architecture: writers are blocks 3-5's conv2, readers blocks 4-6's conv1
    squares = sum(base.blocks[i].conv2.weight.detach().double().flatten(1).pow(2).sum(1) for i in (3, 4, 5)) \
        + sum(base.blocks[i].conv1.weight.detach().double().transpose(0, 1).flatten(1).pow(2).sum(1)
              for i in (4, 5, 6))
    expected = sorted(torch.argsort(squares, stable=True)[:16].tolist())
    assert result.info["layers"]["stream.1"]["removed"] == expected


def paired(model: CifarResNet, noise: float) -> CifarResNet:
    """A copy in which every channel group comes in pairs: channel 2j+1 is written exactly as channel 2j (the stem's
    and every block's conv and BN rows, and the stage shortcuts' map entries), plus `noise` times a random
    perturbation of each conv's filters. Written from the architecture, not from the graph."""
    model = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    maps = {}
    with torch.no_grad():
        layers = [(model.conv1, model.bn1)] + [(c, b) for blk in model.blocks
                                               for c, b in ((blk.conv1, blk.bn1), (blk.conv2, blk.bn2))]
        for conv, bn in layers:
            for t in (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var):
                t.copy_(t[torch.arange(t.shape[0]) // 2 * 2])
            conv.weight.add_(noise * conv.weight.std() * torch.randn(conv.weight.shape, generator=gen))
        for i, blk in enumerate(model.blocks):
            if hasattr(blk.shortcut, "channel_map"):
                old = blk.shortcut.channel_map
                maps[f"blocks.{i}"] = [old[j // 2 * 2] for j in range(len(old))]
    twin = CifarResNet(model.depth, shortcut_maps=maps, normalization=model.normalization)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def test_merging_duplicate_channels_in_every_group_is_exact(trained, batch):
    """Pairs everywhere, streams included: k-means finds them, and merging (the readers' input slices summed, the
    next stage's shortcut pointed at the kept channel) changes no output, while dropping does."""
    model = paired(trained, noise=0.0)
    merged = pruning.prune(model, "kmeans_channel", 0.5, scope="all")
    assert merged.model.stream_widths == [8, 16, 32]
    assert merged.model.inner_widths == [8, 8, 8, 16, 16, 16, 32, 32, 32]
    assert all(sorted(c) == [c[0], c[0] + 1] and c[0] % 2 == 0 for layer in merged.info["layers"].values()
               for c in layer["clusters"])
    dropped = pruning.prune(model, "kmeans_channel", 0.5, scope="all", merge=False)
    with torch.no_grad():
        expected = model(batch)
        torch.testing.assert_close(merged.model.eval()(batch), expected, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(dropped.model.eval()(batch), expected, atol=1e-1)


def test_merging_near_duplicate_channels_beats_dropping_with_streams_too(trained, batch):
    model = paired(trained, noise=0.05)
    with torch.no_grad():
        expected = model(batch)
        error = {merge: F.mse_loss(pruning.prune(model, "kmeans_channel", 0.5, scope="all", merge=merge)
                                   .model.eval()(batch), expected).item() for merge in (True, False)}
    assert error[True] < 0.1 * error[False], error


# ---------------------------------------------------------------------------------------------- deployed

@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("scope,round_to", [("inner", 1), ("all", 1), ("all", 8)])
def test_onnx_runtime_and_openvino_match_pytorch_for_every_scope(deep, runtime, scope, round_to):
    pytest.importorskip(runtime)
    model = pruning.prune(deep[20], "kmeans_channel", 0.6, scope=scope, round_to=round_to).model
    run = speed.compile_for(model, runtime, batch_size=4, threads=1)  # checks against float64 eager itself
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        torch.testing.assert_close(run(x), model.eval()(x), atol=1e-4, rtol=1e-4)
