"""cnn_pruning.model: ResNet20 as He et al. define it, per-block widths, and the one safe checkpoint loader."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from cnn_pruning.model import (CheckpointError, ResNet20, SharedConv2d, apply_masks, count_params, load_checkpoint,
                               materialize, save_checkpoint)


def test_parameter_count_is_the_papers_0_27M():
    # He et al. 2016, Table 6: ResNet20 has 0.27M parameters; with option-A shortcuts exactly 269,722.
    assert count_params(ResNet20()) == 269_722


def test_output_shape_and_layout():
    model = ResNet20().eval()
    assert model(torch.randn(5, 3, 32, 32)).shape == (5, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 19 and sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 1  # 6n+2 = 20 layers
    assert [b.conv2.out_channels for b in model.blocks] == [16] * 3 + [32] * 3 + [64] * 3


def test_inner_widths_change_only_the_first_conv_of_each_block():
    widths = [4, 5, 6, 7, 8, 9, 10, 11, 12]
    model = ResNet20(inner_widths=widths)
    assert [b.conv1.out_channels for b in model.blocks] == widths
    assert [b.conv2.in_channels for b in model.blocks] == widths
    full = ResNet20()
    # Each block loses (16..64 - w) * (cin*9 + 2 (BN) + cout*9) parameters.
    lost = sum((fb.conv1.out_channels - w) * (fb.conv1.in_channels * 9 + 2 + fb.conv2.out_channels * 9)
               for fb, w in zip(full.blocks, widths))
    assert count_params(model) == count_params(full) - lost
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("bad", [[16] * 8, [0] + [16] * 8, [1.5] * 9])
def test_bad_widths_are_rejected(bad):
    with pytest.raises(ValueError, match="inner_widths must be 9 positive ints"):
        ResNet20(inner_widths=bad)


def test_checkpoint_roundtrip_is_exact_and_weights_only(tmp_path):
    torch.manual_seed(0)
    model = ResNet20(inner_widths=[3, 16, 16, 8, 32, 32, 64, 1, 64])
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
    model = ResNet20()
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
    model = ResNet20()
    torch.save({"spec": model.spec(), "state_dict": model.state_dict(), "meta": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused to load.*could run code"):
        load_checkpoint(path)
    with open(tmp_path / "plain.pt", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "plain.pt")


def test_spec_that_does_not_match_tensors_is_an_error(tmp_path):
    model = ResNet20()
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
    save_checkpoint(tmp_path / "m.pt", ResNet20())
    raw = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(CheckpointError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")


def test_training_a_shared_model_is_deterministic_on_cpu():
    # Same start, same batches: bit-identical weights after a few SGD steps (the reproducibility promise).
    shared = {f"blocks.{i}.conv{j}": 4 for i in range(9) for j in (1, 2)}
    torch.manual_seed(0)
    start = ResNet20(shared=shared)
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
