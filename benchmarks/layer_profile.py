"""Where the time goes, layer by layer, and which kernel each runtime chose: OpenVINO's per-node profile (its
exec_type names the implementation, e.g. brgconv_avx512 or jit_avx512 against ref or gemm fallbacks) and ONNX
Runtime's (op types after its graph optimisations: a Conv in the com.microsoft.nchwc domain runs the blocked-layout
kernels, a plain Conv the generic one; ReorderInput/ReorderOutput are the layout changes around the blocked ones).

    python benchmarks/layer_profile.py --case l2_unit 0.8 scope=all --case l2_unit 0.8 scope=all round_to=8
    python benchmarks/layer_profile.py BASE.pt --case kmeans_channel 0.8 --batch-size 1 --runtime openvino

Each case is pruned from BASE.pt, or from a random ResNet20 (speed does not depend on the weights), deployed as
cnn_pruning.evaluation.speed deploys it (BN folded) and run `--iters` times after a warm-up. Prints, per case and
runtime,
the total and the slowest nodes with their kernel, and per kernel the share of the time. Not a speed comparison:
profiling adds overhead; benchmarks/speed.py measures speedups.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from cnn_pruning import pruning
from cnn_pruning.evaluation import speed
from cnn_pruning.model import CifarResNet, load_checkpoint


def openvino_profile(onnx_path: str, x, threads: int, iters: int) -> list[dict]:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(onnx_path), "CPU", {
        "PERF_COUNT": "YES", "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    total = collections.defaultdict(float)
    kinds = {}
    for i in range(iters + 2):
        request.infer({0: x})
        if i < 2:  # warm-up
            continue
        for p in request.get_profiling_info():
            if p.status == p.Status.EXECUTED:
                total[p.node_name] += p.real_time.total_seconds() * 1e3
                kinds[p.node_name] = (p.node_type, p.exec_type)
    return [{"node": n, "op": kinds[n][0], "kernel": kinds[n][1], "ms": t / iters} for n, t in total.items()]


def onnxruntime_profile(onnx_path: str, x, threads: int, iters: int) -> list[dict]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.enable_profiling = threads, True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for _ in range(iters + 2):
        sess.run(None, {name: x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    node_runs = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    total, kinds = collections.defaultdict(float), {}
    for e in node_runs[len(node_runs) * 2 // (iters + 2):]:  # drop the warm-up runs' events
        node = e["name"].removesuffix("_kernel_time")
        total[node] += e["dur"] / 1e3
        kinds[node] = e["args"].get("op_name", "?")
    return [{"node": n, "op": kinds[n], "kernel": _ort_kernel(n, kinds[n]), "ms": t / iters} for n, t in total.items()]


def _ort_kernel(node: str, op: str) -> str:
    # ONNX Runtime's NCHWc transformer renames what it rewrites; its nodes keep the op type but gain the domain in
    # the profile's op_name only in some versions, so the node name is the reliable hint.
    if op in ("ReorderInput", "ReorderOutput"):
        return "layout change (NCHWc)"
    if "nchwc" in node.lower() or op.startswith("com.microsoft.nchwc"):
        return "NCHWc blocked"
    return "generic" if op in ("Conv", "FusedConv") else op


def report(label: str, runtime: str, rows: list[dict], top: int) -> None:
    total = sum(r["ms"] for r in rows)
    print(f"\n{label} on {runtime}: {total:.2f} ms per batch in {len(rows)} executed nodes")
    by_kernel = collections.defaultdict(float)
    for r in rows:
        by_kernel[f"{r['op']} / {r['kernel']}"] += r["ms"]
    for k, t in sorted(by_kernel.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * t / total:5.1f}%  {t:8.3f} ms  {k}")
    print(f"  slowest {top} nodes:")
    for r in sorted(rows, key=lambda r: -r["ms"])[:top]:
        print(f"    {r['ms']:8.3f} ms  {r['op']:>14s}  {r['kernel']:<28s} {r['node']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?", metavar="BASE.pt")
    ap.add_argument("--case", nargs="+", action="append", required=True, metavar="METHOD RATIO [OPTION=VALUE]")
    ap.add_argument("--runtime", default="all", choices=("all", "openvino", "onnxruntime"))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None, help="default: torch.get_num_threads()")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--base", action="store_true", help="profile the unpruned base too")
    args = ap.parse_args()
    import yaml

    threads = args.threads or torch.get_num_threads()
    torch.manual_seed(0)
    base = load_checkpoint(args.checkpoint)[0] if args.checkpoint else CifarResNet()
    models = [("base", base)] if args.base else []
    for method, ratio, *settings in args.case:
        options = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in settings)}
        result = pruning.prune(base, method, float(ratio), **options)
        models.append((" ".join([method, ratio, *settings]), result.model))
    runtimes = ("openvino", "onnxruntime") if args.runtime == "all" else (args.runtime,)
    x = speed.random_batch(args.batch_size).numpy()
    print(f"{speed.device_name('cpu')}, {threads} threads, batch {args.batch_size}, {args.iters} runs per profile")
    for label, model in models:
        print(f"\n=== {label}: stream widths {model.stream_widths}, inner widths {model.inner_widths}")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            speed.write_onnx(speed.deployable(model), speed.random_batch(2), path)
            for rt in runtimes:
                profile = openvino_profile if rt == "openvino" else onnxruntime_profile
                report(label, rt, profile(path, x, threads, args.iters), args.top)


if __name__ == "__main__":
    main()
