"""export.py: lossless round trips for the four model forms, sizes against dense, clear errors on damaged files."""

from __future__ import annotations

import json
import lzma
import struct

import pytest
import torch

from cnn_pruning import pruning
from cnn_pruning.model import CifarResNet, SharedConv2d
from cnn_pruning.model.export import MAGIC, ExportError, export_compact, load_compact

CONVS = ["conv1"] + [f"blocks.{i}.conv{j}" for i in range(9) for j in (1, 2)]


def randomize(model: CifarResNet, seed: int) -> CifarResNet:
    """Non-trivial BN parameters and running stats (a fresh BN is all 0/1), weights as initialised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.normal_(0, 0.1, generator=g)
                m.running_mean.normal_(0, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.num_batches_tracked.fill_(78_000)
            if isinstance(m, SharedConv2d):
                m.codebook.normal_(0, 0.1, generator=g)
                m.assignment.copy_(torch.randint(0, m.k, m.assignment.shape, generator=g))
    return model


def dense_model() -> CifarResNet:
    torch.manual_seed(0)
    return randomize(CifarResNet(), 0)


def magnitude_model(ratio: float = 0.9) -> CifarResNet:
    """Global magnitude pruning of every conv, masks applied by multiplying (so pruned negatives become -0.0)."""
    model = dense_model()
    convs = {f"{n}.weight": model.get_submodule(n).weight for n in CONVS}
    flat = torch.cat([p.detach().abs().ravel() for p in convs.values()])
    cut = flat.kthvalue(int(ratio * flat.numel())).values
    with torch.no_grad():
        for name, p in convs.items():
            model.masks[name] = p.abs() > cut
            p.mul_(model.masks[name])
        # extremes for the position encodings: one layer kept at 50% (bitmask), one with 2 far-apart nonzeros
        w = model.blocks[8].conv1.weight
        w.view(-1)[:] = 0
        w.view(-1)[[7, 30_000]] = 1.5
        model.masks["blocks.8.conv1.weight"] = w != 0
        w = model.blocks[0].conv2.weight
        keep = torch.rand(w.shape, generator=torch.Generator().manual_seed(1)) < 0.5
        w.copy_(torch.randn(w.shape) * keep)
        model.masks["blocks.0.conv2.weight"] = keep
    return model


def unit_model() -> CifarResNet:
    """l2_unit-like: narrower inner widths, whole output filters zeroed in residual-stream convs (+ their BN)."""
    torch.manual_seed(2)
    model = randomize(CifarResNet(inner_widths=[10, 12, 16, 20, 24, 32, 40, 48, 64]), 2)
    with torch.no_grad():
        for conv, bn, rows in (("conv1", "bn1", [0, 5]), ("blocks.2.conv2", "blocks.2.bn2", [1, 2, 3]),
                               ("blocks.5.conv2", "blocks.5.bn2", [4]), ("blocks.8.conv2", "blocks.8.bn2", [9, 60])):
            for name in (f"{conv}.weight", f"{bn}.weight", f"{bn}.bias"):
                p = model.get_parameter(name)
                keep = torch.ones_like(p, dtype=torch.bool)
                keep[rows] = False
                p.mul_(keep)
                model.masks[name] = keep
        # a kept entry that happens to be exactly zero: the mask is not the nonzero pattern and must survive
        model.blocks[2].bn2.bias[7] = 0.0
    return model


def shared_model() -> CifarResNet:
    """Every conv weight-shared with k = round(0.1 * Cout) filters (k = 2, 3, 6), one layer with k = 1."""
    shared = {n: max(1, round(0.1 * (16 if n == "conv1" else [16, 32, 64][int(n.split(".")[1]) // 3])))
              for n in CONVS}
    shared["blocks.4.conv1"] = 1
    torch.manual_seed(3)
    return randomize(CifarResNet(shared=shared), 3)


FORMS = {"dense": dense_model, "magnitude": magnitude_model, "units": unit_model, "shared": shared_model}
# and what the pruning methods themselves produce, at a high ratio
FORMS.update({f"pruned-{m}": (lambda m=m: pruning.prune(dense_model(), m, 0.9).model) for m in pruning.METHODS})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("exports")
    out = {}
    for name, make in FORMS.items():
        model = make()
        out[name] = (model, d / f"{name}.rnz", export_compact(model, d / f"{name}.rnz"))
    return out


@pytest.mark.parametrize("form", list(FORMS))
def test_round_trip_is_bit_identical(exported, form):
    model, path, size = exported[form]
    assert size == path.stat().st_size
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files left behind
    loaded = load_compact(path)
    assert type(loaded) is CifarResNet and loaded.spec() == model.spec()
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k  # -0.0 == +0.0 here, see export docstring
    assert loaded.masks.keys() == model.masks.keys()
    for k, keep in model.masks.items():
        assert loaded.masks[k].dtype == torch.bool and torch.equal(loaded.masks[k], keep), k
    shared = {n: (m.k, m.assignment) for n, m in model.named_modules() if isinstance(m, SharedConv2d)}
    shared_loaded = {n: (m.k, m.assignment) for n, m in loaded.named_modules() if isinstance(m, SharedConv2d)}
    assert shared.keys() == shared_loaded.keys()
    assert all(shared[n][0] == shared_loaded[n][0] and torch.equal(shared[n][1], shared_loaded[n][1]) for n in shared)
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded.eval()(x))


def test_units_form_keeps_a_mask_that_differs_from_the_nonzero_pattern(exported):
    model, path, _ = exported["units"]
    keep = load_compact(path).masks["blocks.2.bn2.bias"]
    assert bool(keep[7]) and model.blocks[2].bn2.bias[7] == 0 and not keep[[1, 2, 3]].any()


def test_sparse_and_shared_exports_are_much_smaller_than_dense(exported):
    dense = exported["dense"][2]
    assert dense > 0.8 * 269_722 * 4  # random float32 barely compresses: the baseline is honest
    assert dense / exported["magnitude"][2] > 4
    assert dense / exported["shared"][2] > 4
    assert exported["units"][2] < dense


def test_exactly_90_percent_zeros_gives_at_least_6x(tmp_path):
    torch.manual_seed(0)
    model = randomize(CifarResNet(), 0)
    convs = [model.get_submodule(n).weight for n in CONVS]
    cut = torch.cat([p.detach().abs().ravel() for p in convs]).kthvalue(int(0.9 * sum(p.numel() for p in convs)))
    dense = export_compact(model, tmp_path / "dense")
    with torch.no_grad():
        for p in convs:
            p.mul_(p.abs() > cut.values)
    assert dense / export_compact(model, tmp_path / "sparse") > 6


def damaged(path, tmp_path, how):
    data = path.read_bytes()
    bad = tmp_path / f"{how}.rnz"
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "flipped":
        data = data[:200] + bytes([data[200] ^ 0x40]) + data[201:]
    elif how == "magic":
        data = b"PK\x03\x04" + data[4:]
    elif how == "empty":
        data = b""
    bad.write_bytes(data)
    return bad


@pytest.mark.parametrize("how", ["truncated", "flipped", "magic", "empty"])
def test_damaged_file_raises_an_error_naming_it(exported, tmp_path, how):
    bad = damaged(exported["magnitude"][1], tmp_path, how)
    with pytest.raises(ExportError, match=str(bad.name)):
        load_compact(bad)


def rewrite(path, tmp_path, edit):
    """Decode the container, let `edit` change the header, re-encode: a well-formed file with wrong content."""
    body = lzma.decompress(path.read_bytes()[len(MAGIC):])
    (n,) = struct.unpack_from("<I", body)
    header = json.loads(body[4:4 + n])
    edit(header)
    h = json.dumps(header).encode()
    out = tmp_path / "edited.rnz"
    out.write_bytes(MAGIC + lzma.compress(struct.pack("<I", len(h)) + h + body[4 + n:]))
    return out


def test_header_that_does_not_match_the_payload_or_spec_is_refused(exported, tmp_path):
    path = exported["shared"][1]
    assert load_compact(rewrite(path, tmp_path, lambda h: None)).spec() == exported["shared"][0].spec()
    edits = {
        "wider spec": lambda h: h["spec"].update(inner_widths=[16] * 9 if h["spec"]["inner_widths"][0] != 16
                                                  else [8] * 9),
        "unknown arch": lambda h: h["spec"].update(arch="vgg"),
        "float count": lambda h: h.update(floats=h["floats"] + 1),
        "span": lambda h: h["tensors"][-1].update(f=h["floats"]),
        "k too small": lambda h: h["spec"]["shared"].update({"blocks.8.conv2": 1}),
        "lost tensor": lambda h: h["tensors"].pop(),
    }
    for edit in edits.values():
        with pytest.raises(ExportError, match="edited.rnz"):
            load_compact(rewrite(path, tmp_path, edit))
    with pytest.raises(ExportError, match="missing.rnz"):
        load_compact(tmp_path / "missing.rnz")
