"""speed.py: BN folding keeps the outputs, every runtime computes the same logits, compare_speed is fair."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn as nn

from cnn_pruning.evaluation import speed
from cnn_pruning.model import CifarResNet, SharedConv2d
from cnn_pruning.model.inputs import random_batch

PACKAGE = {"pytorch": "torch", "torch_compile": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino"}


def need(runtime: str) -> None:
    if importlib.util.find_spec(PACKAGE[runtime]) is None:
        pytest.skip(f"{runtime}: package {PACKAGE[runtime]!r} is not installed")


@torch.no_grad()
def random_resnet(inner_widths=None, seed: int = 0, shared: bool = True) -> CifarResNet:
    """A ResNet20 whose BatchNorms have non-trivial statistics and affine parameters, plus one shared conv."""
    torch.manual_seed(seed)
    model = CifarResNet(inner_widths=inner_widths)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.3, 3.0)
            m.weight.uniform_(0.3, 1.5)
            m.bias.uniform_(-0.5, 0.5)
    if shared:
        layer = model.share("blocks.4.conv1", 5)
        layer.codebook.normal_(0, 0.1)
        layer.assignment.copy_(torch.randint(0, 5, layer.assignment.shape))
    return model


def test_deployable_folds_bn_and_keeps_outputs():
    model = random_resnet().train()  # the original must come back untouched, still in training mode
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = random_batch(16, seed=3)
    dep = speed.deployable(model)
    kinds = {type(m) for m in dep.modules()}
    assert not any(issubclass(k, (nn.BatchNorm2d, SharedConv2d)) for k in kinds), kinds
    assert not dep.training
    assert all(m.bias is not None for m in dep.modules() if isinstance(m, nn.Conv2d))  # every conv got its BN
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        ref, got = model.eval()(x), dep(x)
    assert ref.abs().max() > 1  # non-trivial logits, so atol 1e-4 is a real check
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-5)


def test_deployable_refuses_bn_without_conv():
    model = random_resnet(shared=False)
    model.blocks[0].bn3 = nn.BatchNorm2d(16)
    with pytest.raises(ValueError, match="bn3"):
        speed.deployable(model)


@pytest.mark.parametrize("runtime", speed.RUNTIMES)
def test_runtime_matches_pytorch(runtime):
    need(runtime)
    model = random_resnet(seed=1)
    run = speed.compile_for(model, runtime, batch_size=8, threads=2)
    assert run.info["max_abs_diff"] <= speed.F32_ATOL
    x = random_batch(8, seed=7)  # not the batch compile_for checked on
    with torch.no_grad():
        ref = model.eval()(x)
    got = run(x)
    assert got.shape == (8, 10) and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-5)
    if runtime == "openvino":  # f32 pinned, although this CPU would default to bf16
        assert "f32" in run.info["ov_precision"] or "float32" in run.info["ov_precision"]


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_wrong_export_is_refused(runtime, monkeypatch):
    need(runtime)
    real_export = speed.write_onnx

    def export_other_weights(net, example, path, **kw):  # a silently wrong export: one conv's weights changed
        net.blocks[2].conv2.weight.data.mul_(1.5)
        real_export(net, example, path, **kw)
    monkeypatch.setattr(speed, "write_onnx", export_other_weights)
    with pytest.raises(RuntimeError, match="refusing to time"):
        speed.compile_for(random_resnet(shared=False), runtime, batch_size=4)


def test_unknown_runtime():
    with pytest.raises(ValueError, match="unknown runtime"):
        speed.compile_for(CifarResNet(), "tensorrt", batch_size=4)


def test_compare_speed_runs_both_alike(monkeypatch):
    base, cand = CifarResNet(), CifarResNet(inner_widths=[2] * 9)
    calls, real_compile = [], speed.compile_for

    def counting_compile(model, *args, **kwargs):
        run, who = real_compile(model, *args, **kwargs), "base" if model is base else "cand"

        def counted(x):
            calls.append((who, x.shape[0]))
            return run(x)
        return counted
    monkeypatch.setattr(speed, "compile_for", counting_compile)
    res = speed.compare_speed(base, cand, "pytorch", batch_sizes=(4, 1), rounds=4, warmup=2, min_sample_ms=0.0)

    for key in ("runtime", "device", "device_name", "threads", "batch_sizes", "rounds", "base", "candidate",
                "speedup", "speedup_rounds", "speedup_min", "calls_per_sample"):
        assert key in res, key
    assert res["runtime"] == "pytorch" and res["device"] == "cpu" and res["threads"] >= 1
    assert res["batch_sizes"] == [4, 1] and res["rounds"] == 4
    for bs in ("4", "1"):
        assert res["calls_per_sample"][bs] == 1  # min_sample_ms=0: one call per sample
        assert res["rounds_done"][bs] == 4
        for who in ("base", "candidate"):
            s = res[who][bs]
            assert len(s["ms"]) == 4 and s["min_ms"] <= s["q1_ms"] <= s["median_ms"] <= s["q3_ms"] <= s["max_ms"]
            assert s["images_per_s"] == pytest.approx(int(bs) * 1000 / s["median_ms"])
        assert res["speedup"][bs] == pytest.approx(res["base"][bs]["median_ms"] / res["candidate"][bs]["median_ms"])
        assert res["speedup_rounds"][bs] > 0
    for bs in (4, 1):
        n = {who: sum(1 for w, b in calls if w == who and b == bs) for who in ("base", "cand")}
        assert n["base"] == n["cand"] == 2 + 4, n  # warm-up + rounds, the same for both models
    # interleaved, order alternating each round: after warm-up (2+2 calls) the timed calls go AB BA AB BA
    timed = [w for w, b in calls if b == 4][4:]
    assert timed == ["base", "cand", "cand", "base", "base", "cand", "cand", "base"]
    assert set(speed.headline(res, 4)) == {f"{m}{sfx}" for sfx in ("", "_b1") for m in (
        "speedup", "images_per_s", "base_images_per_s", "ms_per_batch", "base_ms_per_batch", "ms_iqr")}
    assert speed.headline(res, 4)["speedup_b1"] == res["speedup"]["1"]


def test_compare_speed_budget_stops_after_whole_rounds():
    res = speed.compare_speed(CifarResNet(inner_widths=[1] * 9), CifarResNet(inner_widths=[1] * 9), "pytorch",
                              batch_sizes=(1,), rounds=50, warmup=1, min_sample_ms=0.0, max_seconds=1e-9)
    assert res["rounds_done"]["1"] == 3 and len(res["base"]["1"]["ms"]) == len(res["candidate"]["1"]["ms"]) == 3


@pytest.mark.parametrize("runtime", ["pytorch", "onnxruntime", "openvino"])
def test_cheaper_candidate_is_faster(runtime):
    """Behaviour, not a timing assertion: a model with ~8x fewer conv FLOPs must come out faster."""
    need(runtime)
    res = speed.compare_speed(CifarResNet(), CifarResNet(inner_widths=[2] * 9), runtime, batch_sizes=(64,),
                              rounds=3, warmup=1, min_sample_ms=0.0)
    assert res["speedup"]["64"] > 1, res["speedup"]
