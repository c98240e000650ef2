"""cnn_pruning.model: the CIFAR ResNets as He et al. define them, free widths and shortcut maps, and the one safe
checkpoint loader."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from cnn_pruning.datasets.catalog import CIFAR10_NORMALIZATION, CIFAR100_NORMALIZATION
from cnn_pruning.model import (
    DEPTHS,
    CheckpointError,
    CifarResNet,
    SharedConv2d,
    ShortcutA,
    apply_masks,
    count_params,
    load_checkpoint,
    materialize,
    save_checkpoint,
)
from cnn_pruning.model.measure import count_macs


def test_parameter_count_is_the_papers_0_27M():
    # He et al. 2016, Table 6: ResNet20 has 0.27M parameters; with option-A shortcuts exactly 269,722.
    assert count_params(CifarResNet()) == 269_722


def test_output_shape_and_layout():
    model = CifarResNet().eval()
    assert model(torch.randn(5, 3, 32, 32)).shape == (5, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 19 and sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 1  # 6n+2 = 20 layers
    assert [b.conv2.out_channels for b in model.blocks] == [16] * 3 + [32] * 3 + [64] * 3


def test_inner_widths_change_only_the_first_conv_of_each_block():
    widths = [4, 5, 6, 7, 8, 9, 10, 11, 12]
    model = CifarResNet(inner_widths=widths)
    assert [b.conv1.out_channels for b in model.blocks] == widths
    assert [b.conv2.in_channels for b in model.blocks] == widths
    full = CifarResNet()
    # Each block loses (16..64 - w) * (cin*9 + 2 (BN) + cout*9) parameters.
    lost = sum((fb.conv1.out_channels - w) * (fb.conv1.in_channels * 9 + 2 + fb.conv2.out_channels * 9)
               for fb, w in zip(full.blocks, widths))
    assert count_params(model) == count_params(full) - lost
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("bad", [[16] * 8, [0] + [16] * 8, [1.5] * 9])
def test_bad_widths_are_rejected(bad):
    with pytest.raises(ValueError, match="inner_widths must be 9 positive ints"):
        CifarResNet(inner_widths=bad)


def test_checkpoint_roundtrip_is_exact_and_weights_only(tmp_path):
    torch.manual_seed(0)
    model = CifarResNet(inner_widths=[3, 16, 16, 8, 32, 32, 64, 1, 64])
    layer = model.share("blocks.4.conv1", 5)
    layer.codebook.data.normal_()
    layer.assignment.copy_(torch.arange(32) % 5)
    model.masks["fc.weight"] = torch.rand(10, 64) > 0.5
    apply_masks(model)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model.eval(), meta={"optimizer": "sgd"})
    raw = torch.load(path, weights_only=True)  # would raise if anything but tensors and plain containers were in it
    assert set(raw) == {"spec", "state_dict", "masks", "meta"}
    back, meta = load_checkpoint(path)
    back.eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(model(x), back(x))
    assert meta == {"optimizer": "sgd"} and back.spec() == model.spec()
    assert torch.equal(back.masks["fc.weight"], model.masks["fc.weight"])
    assert isinstance(back.blocks[4].conv1, SharedConv2d)


def test_materialize_gives_plain_convs_with_the_same_outputs():
    model = CifarResNet()
    layer = model.share("conv1", 3)
    layer.codebook.data.normal_()
    layer.assignment.copy_(torch.arange(16) % 3)
    model.eval()
    dense = materialize(model)
    assert not any(isinstance(m, SharedConv2d) for m in dense.modules())
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(model(x), dense(x))
    assert len(torch.unique(dense.conv1.weight.flatten(1), dim=0)) == 3


class Evil:
    def __reduce__(self):
        return (print, ("this would have run code",))


def test_checkpoint_with_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    model = CifarResNet()
    torch.save({"spec": model.spec(), "state_dict": model.state_dict(), "meta": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused to load.*could run code"):
        load_checkpoint(path)
    with open(tmp_path / "plain.pt", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "plain.pt")


def test_spec_that_does_not_match_tensors_is_an_error(tmp_path):
    model = CifarResNet()
    spec = {**model.spec(), "inner_widths": [8] * 9}  # claims narrower blocks than the tensors have
    torch.save({"spec": spec, "state_dict": model.state_dict(), "meta": {}}, tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="do not match the architecture spec"):
        load_checkpoint(tmp_path / "a.pt")
    state = dict(model.state_dict())
    del state["fc.bias"]
    torch.save({"spec": model.spec(), "state_dict": state, "meta": {}}, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="Missing key.*fc.bias"):
        load_checkpoint(tmp_path / "b.pt")
    torch.save({"spec": {"arch": "vgg"}, "state_dict": state}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="unknown architecture 'vgg'"):
        load_checkpoint(tmp_path / "c.pt")
    torch.save({"spec": model.spec(), "state_dict": model.state_dict(), "masks": {"nope": torch.ones(1)}},
               tmp_path / "d.pt")
    with pytest.raises(CheckpointError, match="mask 'nope'"):
        load_checkpoint(tmp_path / "d.pt")


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "m.pt", CifarResNet())
    raw = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(CheckpointError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")


def test_training_a_shared_model_is_deterministic_on_cpu():
    # Same start, same batches: bit-identical weights after a few SGD steps (the reproducibility promise).
    shared = {f"blocks.{i}.conv{j}": 4 for i in range(9) for j in (1, 2)}
    torch.manual_seed(0)
    start = CifarResNet(shared=shared)
    with torch.no_grad():
        for m in start.modules():
            if isinstance(m, SharedConv2d):
                m.codebook.normal_(0, 0.1)
                m.assignment.copy_(torch.randint(0, m.k, m.assignment.shape))
    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
    states = []
    for _ in range(3):
        model = copy.deepcopy(start).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        states.append(model.state_dict())
    for other in states[1:]:
        assert all(torch.equal(states[0][k], other[k]) for k in other), "two identical fine-tunes differ"


# ---------------------------------------------------------------------------------------------- the family

# He et al. 2016 with option A and 10 classes, counted independently of this code (the published figures):
# parameters and multiply-accumulates per 32x32 image.
FAMILY = {20: (269_722, 40_551_040), 32: (464_154, 68_862_592), 44: (658_586, 97_174_144),
          56: (853_018, 125_485_696), 110: (1_727_962, 252_887_680)}


@pytest.mark.parametrize("depth", DEPTHS)
def test_every_depth_has_the_papers_parameters_and_macs(depth):
    model = CifarResNet(depth)
    assert (count_params(model), count_macs(model)) == FAMILY[depth]
    n = (depth - 2) // 6
    assert len(model.blocks) == 3 * n and model.inner_widths == [16] * n + [32] * n + [64] * n
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) + 1 == depth  # + the classifier
    assert model.name == f"ResNet{depth}" and model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("bad", [18, 21, 2, 0, -4, True, 56.0, "56", None])
def test_a_depth_outside_the_family_is_refused(bad):
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2 with n >= 1 .*20, 32, 44, 56, 110.*got"):
        CifarResNet(bad)


def test_classes_change_only_the_classifier():
    wide = CifarResNet(20, num_classes=100)
    assert wide.fc.out_features == 100 and count_params(wide) == FAMILY[20][0] + 90 * (64 + 1)


def test_the_option_a_map_is_the_papers_zero_padding_exactly():
    x = torch.randn(3, 16, 8, 8)
    shortcut = CifarResNet().blocks[3].shortcut
    assert isinstance(shortcut, ShortcutA) and shortcut.channel_map == [-1] * 8 + list(range(16)) + [-1] * 8
    assert torch.equal(shortcut(x), torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8)))


def test_stream_widths_and_explicit_maps_are_held_saved_and_rebuilt(tmp_path):
    """A model whose residual streams are narrower (what stream pruning will produce): the maps say which kept
    channel of a stage lands where in the next one; zeros elsewhere."""
    maps = {"blocks.3": [2, -1, 0, 1, -1, 5, 4, 3, -1, -1], "blocks.6": list(range(10)) + [-1] * 3}
    torch.manual_seed(0)
    model = CifarResNet(20, 7, stream_widths=[6, 10, 13], inner_widths=[5] * 9, shortcut_maps=maps).eval()
    x = torch.randn(2, 6, 8, 8)
    out = model.blocks[3].shortcut(x)
    assert out.shape == (2, 10, 4, 4)
    assert torch.equal(out[:, 0], x[:, 2, ::2, ::2]) and torch.equal(out[:, 7], x[:, 3, ::2, ::2])
    assert not out[:, [1, 4, 8, 9]].any()
    spec = model.spec()
    assert spec["stream_widths"] == [6, 10, 13] and spec["shortcut_maps"] == maps and spec["num_classes"] == 7
    save_checkpoint(tmp_path / "m.pt", model)
    back, _ = load_checkpoint(tmp_path / "m.pt")
    images = torch.randn(2, 3, 32, 32)
    assert back.spec() == spec and torch.equal(back.eval()(images), model(images))


@pytest.mark.parametrize("maps,match", [
    ({"blocks.3": [0] * 31}, r"one entry per output channel \(32\), got 31"),
    ({"blocks.3": [16] + [-1] * 31}, r"an input channel in 0\.\.15 or -1"),
    ({"blocks.9": list(range(16))}, r"blocks that do not exist: \['blocks.9'\]"),
])
def test_bad_shortcut_maps_are_refused(maps, match):
    with pytest.raises(ValueError, match=match):
        CifarResNet(shortcut_maps=maps)


def test_a_narrower_stage_needs_an_explicit_map():
    with pytest.raises(ValueError, match="needs an explicit shortcut map"):
        CifarResNet(stream_widths=[16, 8, 64])


def test_the_spec_records_everything_that_rebuilds_the_model(tmp_path):
    model = CifarResNet(56, 100, normalization=CIFAR100_NORMALIZATION)
    spec = model.spec()
    assert {k: spec[k] for k in ("arch", "depth", "num_classes", "stream_widths")} == \
        {"arch": "cifar_resnet", "depth": 56, "num_classes": 100, "stream_widths": [16, 32, 64]}
    assert len(spec["inner_widths"]) == 27 and set(spec["shortcut_maps"]) == {"blocks.9", "blocks.18"}
    assert spec["normalization"] == {k: list(v) for k, v in CIFAR100_NORMALIZATION.items()}
    save_checkpoint(tmp_path / "m.pt", model)
    back, _ = load_checkpoint(tmp_path / "m.pt")
    assert back.spec() == spec and back.normalization == model.normalization


def test_a_checkpoint_from_before_the_family_still_loads(tmp_path):
    """What save_checkpoint wrote when the model was ResNet20 only: arch "resnet20", inner widths and classes, no
    depth, streams, maps or statistics. It loads as ResNet20 with the CIFAR-10 statistics, same outputs."""
    torch.manual_seed(0)
    model = CifarResNet(inner_widths=[8, 16, 16, 16, 32, 32, 32, 64, 64]).eval()
    legacy = {"spec": {"arch": "resnet20", "inner_widths": model.inner_widths, "num_classes": 10, "shared": {}},
              "state_dict": model.state_dict(), "masks": {}, "meta": {"optimizer": "sgd"}}
    torch.save(legacy, tmp_path / "old.pt")
    back, meta = load_checkpoint(tmp_path / "old.pt")
    x = torch.randn(2, 3, 32, 32)
    assert meta == {"optimizer": "sgd"} and back.depth == 20 and torch.equal(back.eval()(x), model(x))
    assert back.normalization == CIFAR10_NORMALIZATION
