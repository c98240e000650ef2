"""Measured inference speed of a pruned model against its base, through the same deployed path for every model.

    run = compile_for(model, "openvino", batch_size=256)        # a callable: float32 NCHW batch -> logits
    res = compare_speed(base, pruned, runtime="pytorch")        # cheap setting (the pipeline's sweep)
    res = compare_speed(base, pruned, "onnxruntime", **THOROUGH)  # the benchmark's setting
    res["speedup"]["256"]                                       # median(base ms) / median(candidate ms)

Every model is first made `deployable()`: shared convs materialized, every BatchNorm folded into the conv before
it, so what gets timed is conv+relu+add only, the graph a deployment would run. A pruned model only gets faster
if its smaller convs are faster in that graph, which FLOP counts do not predict (see benchmarks/speed.py).

Runtimes: "pytorch" (eager, inference_mode), "torch_compile" (inductor), "onnxruntime" and "openvino" (both
fed the same ONNX export). compile_for() checks every compiled model's logits against eager PyTorch on one
batch and raises if they differ, so a silently wrong export is never timed.

compare_speed() times base and candidate in the same process, interleaved round by round with the order
alternating (AB, BA, AB, ...), so drift of a loaded machine hits both alike; the speedup is never computed from
two separate runs. Inputs are random normalised float32 images (timing does not depend on the pixel values).

Settings chosen by measurement (figures in docs/results.md and benchmarks/speed.py's output, not here): OpenVINO's
LATENCY hint (THROUGHPUT with one synchronous request ran slower), channels_last off (no gain on an idle CPU), the
legacy ONNX exporter (the dynamo one needs onnxscript, not installed).
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn as nn

from ..machine import device_name, machine_load
from ..model import materialize
from ..model.fold import fold_batchnorms
from ..model.inputs import random_batch

RUNTIMES = ("pytorch", "torch_compile", "onnxruntime", "openvino")
PRECISIONS = ("f32", "bf16", "f16")  # OpenVINO's INFERENCE_PRECISION_HINT
# rounds: timed rounds per batch size; max_seconds: timing budget per batch size (stops early, after >= 3 rounds)
CHEAP = dict(rounds=5, warmup=2, min_sample_ms=20.0, max_seconds=30.0)       # the pipeline's sweep
THOROUGH = dict(rounds=25, warmup=5, min_sample_ms=200.0, max_seconds=120.0)  # benchmarks/speed.py
ONNX_OPSET = 17
F32_ATOL = 1e-3  # compiled vs eager logits, per unit of the largest logit; f32 differs only by summation order


# ---------------------------------------------------------------------------------------------- the deployed model

def deployable(model: nn.Module) -> nn.Module:
    """An eval-mode copy with shared convs made plain and each BatchNorm folded into its conv: conv+relu+add only,
    the graph a deployment runs (cnn_pruning.model.fold finds the pairs by tracing, not by names)."""
    return fold_batchnorms(materialize(model)).eval()


# ---------------------------------------------------------------------------------------------- runtimes

def write_onnx(module: nn.Module, example: torch.Tensor, path, input_name: str = "input") -> None:
    """`module` as an ONNX graph with a dynamic batch (input `input_name`, output `logits`): what the onnxruntime
    and openvino runtimes time here and what cnn_pruning.evaluation.deploy ships."""
    # The legacy TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency here.
    # Its warnings (the shortcut's strided slice is not constant-folded, deprecation notes) are noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.cpu(), (example,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=[input_name], output_names=["logits"],
                          dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}})


class Runner:
    """A compiled model: call it with a float32 NCHW batch (torch tensor), get the logits (torch tensor)."""

    def __init__(self, fn, runtime: str, batch_size: int, device: str, threads: int, info: dict):
        self.fn, self.runtime, self.batch_size, self.device, self.threads, self.info = \
            fn, runtime, batch_size, device, threads, info

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def compile_for(model: nn.Module, runtime: str = "pytorch", batch_size: int = 256, device: str = "cpu",
                threads: int | None = None, channels_last: bool = False, precision: str = "f32",
                ov_hint: str = "LATENCY", check: bool = True) -> Runner:
    """Deploy `model` on `runtime` for batches of `batch_size` and check its logits against eager PyTorch.

    channels_last: pytorch/torch_compile only (the input is converted inside the timed call, as a user's would
    be). Off by default: measured no gain on an idle CPU; only a loaded machine favoured it.
    precision: openvino's INFERENCE_PRECISION_HINT; "f32" pinned because OpenVINO picks bf16 on CPUs that have it.
    ov_hint: openvino PERFORMANCE_HINT; LATENCY (one stream using all threads) suits one synchronous request.
    threads: onnxruntime/openvino threads; the pytorch runtimes use torch.get_num_threads() (compare_speed sets it).
    torch_compile and openvino are specialised to `batch_size`; pytorch and onnxruntime take any batch size.
    openvino always runs on the CPU; onnxruntime uses CUDA when device is cuda and its CUDA provider is installed
    (Runner.info["providers"] says which ran).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; allowed: {RUNTIMES}")
    threads = threads or torch.get_num_threads()
    dev = torch.device(device)
    net = deployable(model).to(dev)
    info = {}
    if runtime in ("pytorch", "torch_compile"):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(memory_format=fmt)
        if runtime == "torch_compile":
            # fullgraph: a graph break or dynamo's recompile limit (8 compiled models per forward code object)
            # raises instead of silently running eager; compare_speed resets dynamo between batch sizes.
            net = torch.compile(net, dynamic=False, fullgraph=True)

        def fn(x):
            with torch.inference_mode():
                return net(x.to(dev, non_blocking=True).contiguous(memory_format=fmt))
    else:
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "model.onnx")
        write_onnx(copy.deepcopy(net), random_batch(2), path)
        fn = _onnxruntime(path, dev, threads, info) if runtime == "onnxruntime" else \
            _openvino(path, batch_size, threads, precision, ov_hint, info)
        tmp.cleanup()
    runner = Runner(fn, runtime, batch_size, str(dev), threads, info)
    if check:
        # Reference: the original model (BN unfolded, shared convs as trained) in float64 on the CPU; a copy, so
        # the caller's model keeps its device and mode.
        x = random_batch(batch_size, seed=1)
        with torch.inference_mode():
            ref = copy.deepcopy(model).cpu().double().eval()(x.double())
        got = runner(x.to(dev)).cpu().double()
        diff = (got - ref).abs().max().item()
        tf32 = dev.type == "cuda" and torch.backends.cudnn.allow_tf32  # CUDA convs default to TF32 (10-bit mantissa)
        # Relative to the logits' scale: a barely trained deep model (ResNet56 after one step at lr 0.1, say) can
        # have logits in the thousands, where float32's own rounding exceeds any absolute bound.
        atol = (F32_ATOL if precision == "f32" and not tf32 else 0.02) * max(1.0, ref.abs().max().item())
        if not diff <= atol:  # `not <=` also catches NaN
            raise RuntimeError(f"{runtime}: logits differ from eager PyTorch by {diff:.3g} (> {atol:.3g}); "
                               f"the export is wrong, refusing to time it")
        runner.info["max_abs_diff"] = diff
    return runner


def _onnxruntime(path: str, dev: torch.device, threads: int, info: dict):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    cuda = dev.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
    providers = [("CUDAExecutionProvider", {"device_id": dev.index or 0})] if cuda else []
    sess = ort.InferenceSession(path, opts, providers=providers + ["CPUExecutionProvider"])
    info["providers"] = sess.get_providers()
    if not cuda:
        def fn(x):
            return torch.from_numpy(sess.run(None, {"input": x.detach().cpu().numpy()})[0]).to(x.device)
        return fn

    def fn_cuda(x):  # bind the torch CUDA tensors directly, so no host round trip is timed
        x = x.to(dev).contiguous()
        out = torch.empty(x.shape[0], sess.get_outputs()[0].shape[1], device=dev)
        b = sess.io_binding()
        b.bind_input("input", "cuda", dev.index or 0, np.float32, list(x.shape), x.data_ptr())
        b.bind_output("logits", "cuda", dev.index or 0, np.float32, list(out.shape), out.data_ptr())
        sess.run_with_iobinding(b)
        return out
    return fn_cuda


def _openvino(path: str, batch_size: int, threads: int, precision: str, hint: str, info: dict):
    import openvino as ov

    core = ov.Core()
    ov_model = core.read_model(path)
    ov_model.reshape([batch_size, 3, 32, 32])  # static shape: OpenVINO picks its kernels per shape
    compiled = core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                    "PERFORMANCE_HINT": hint, "INFERENCE_NUM_THREADS": threads})
    info["ov_precision"] = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    request = compiled.create_infer_request()

    def fn(x):
        request.infer({0: x.detach().cpu().numpy()})
        return torch.from_numpy(request.get_output_tensor(0).data.copy()).to(x.device)
    return fn


# ---------------------------------------------------------------------------------------------- timing

def _stats(ms: list[float], batch_size: int) -> dict:
    q1, med, q3 = np.percentile(ms, [25, 50, 75]).tolist()
    return {"median_ms": med, "q1_ms": q1, "q3_ms": q3, "min_ms": min(ms), "max_ms": max(ms),
            "images_per_s": batch_size * 1000.0 / med, "ms": ms}


def compare_speed(base_model: nn.Module, candidate_model: nn.Module, runtime: str = "pytorch",
                  batch_sizes=(256, 1), rounds: int = CHEAP["rounds"], warmup: int = CHEAP["warmup"],
                  device: str = "cpu", threads: int | None = None, min_sample_ms: float = CHEAP["min_sample_ms"],
                  max_seconds: float | None = CHEAP["max_seconds"], seed: int = 0,
                  candidate_runtime: str | None = None, **compile_kw) -> dict:
    """Speed of candidate vs base on `runtime`, both deployed the same way and timed interleaved in this process.

    Per batch size: both models are compiled, warmed up `warmup` calls each, then `rounds` rounds each time one
    sample per model, the order alternating AB, BA, ... . A sample is `calls` back-to-back calls (the same number
    for both models, chosen in warm-up so a sample of the slower model lasts >= min_sample_ms; a single call at
    batch 1 is too short to time on a busy machine). After `max_seconds` of timing (and >= 3 rounds) it stops
    early, after a whole round; "rounds_done" says how many ran. Inputs: random normalised float32 (random_batch).
    Returns runtime, device, threads, rounds, batch sizes and, keyed by str(batch size), per-model stats
    ("base"/"candidate": median/IQR/min/max ms per batch, images/s), "speedup" = median(base ms) /
    median(candidate ms), "speedup_rounds" = median of the per-round ratios and "speedup_min" = min(base ms) /
    min(candidate ms) (other processes only ever add time, so on a loaded machine the minima are the steadiest).
    candidate_runtime: deploy the candidate on another runtime than the base (e.g. base in pytorch eager,
    candidate in openvino: what a user gets); by default both run on `runtime`.
    """
    threads = threads or torch.get_num_threads()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # the pytorch runtimes; onnxruntime and openvino get `threads` themselves
    cuda = device.startswith("cuda")
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    pair = (runtime, candidate_runtime or runtime)
    out = {"runtime": runtime, "candidate_runtime": pair[1], "device": device, "device_name": device_name(device),
           "threads": threads, "batch_sizes": list(batch_sizes), "rounds": rounds, "warmup": warmup,
           "min_sample_ms": min_sample_ms, "torch": torch.__version__, "calls_per_sample": {}, "rounds_done": {},
           "base": {}, "candidate": {}, "speedup": {}, "speedup_rounds": {}, "speedup_min": {},
           **machine_load()}
    try:
        for bs in batch_sizes:
            if "torch_compile" in pair:
                torch.compiler.reset()  # drop earlier compiled models (their disk cache stays), see compile_for
            runners = [compile_for(m, rt, bs, device, threads, **compile_kw)
                       for m, rt in zip((base_model, candidate_model), pair)]
            x = random_batch(bs, seed).to(device)

            def sample(run, calls, x=x):
                sync()
                t0 = time.perf_counter()
                for _ in range(calls):
                    run(x)
                sync()
                return (time.perf_counter() - t0) * 1000.0 / calls

            warm = [[sample(r, 1) for _ in range(max(1, warmup))] for r in runners]
            calls = max(1, round(min_sample_ms / max(min(w) for w in warm)))
            ms, t_start = [[], []], time.perf_counter()
            for i in range(rounds):
                for j in ((0, 1) if i % 2 == 0 else (1, 0)):
                    ms[j].append(sample(runners[j], calls))
                # `calls` was sized in warm-up; if load arrives later a round can take 100x longer: stop after
                # whole rounds (both models timed equally often) once the budget is spent, and say so.
                if max_seconds and i >= 2 and time.perf_counter() - t_start > max_seconds:
                    break
            key = str(bs)
            out["base"][key], out["candidate"][key] = _stats(ms[0], bs), _stats(ms[1], bs)
            out["speedup"][key] = out["base"][key]["median_ms"] / out["candidate"][key]["median_ms"]
            out["speedup_rounds"][key] = statistics.median(a / b for a, b in zip(*ms))
            out["speedup_min"][key] = min(ms[0]) / min(ms[1])  # load only adds time: robust on a busy machine
            out["calls_per_sample"][key], out["rounds_done"][key] = calls, len(ms[0])
    finally:
        torch.set_num_threads(old_threads)
    return out


def headline(result: dict, batch_size: int) -> dict:
    """The scalars of a compare_speed() result, the one flattening of it: speedup, images/s and ms per batch of the
    candidate and the base, and the candidate's IQR, at `batch_size` (keys without a suffix: stable across settings
    for `dvc exp show`) and at batch 1 (suffix `_b1`)."""
    m = {}
    for sfx, bs in (("", str(batch_size)), ("_b1", "1")):
        cand, base = result["candidate"][bs], result["base"][bs]
        m |= {f"speedup{sfx}": result["speedup"][bs], f"images_per_s{sfx}": cand["images_per_s"],
              f"base_images_per_s{sfx}": base["images_per_s"], f"ms_per_batch{sfx}": cand["median_ms"],
              f"base_ms_per_batch{sfx}": base["median_ms"], f"ms_iqr{sfx}": cand["q3_ms"] - cand["q1_ms"]}
    return m

