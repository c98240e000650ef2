"""Measured speedup of a pruned CifarResNet over its base, per inference runtime, at batch 256 and batch 1.

    python benchmarks/speed.py BASE.pt CANDIDATE.pt                    # all runtimes, thorough setting
    python benchmarks/speed.py BASE.pt CANDIDATE.pt --runtime openvino --rounds 40 --threads 2
    python benchmarks/speed.py --widths 0.5 0.2                        # no checkpoints: random ResNet20s whose
                                                                       # inner widths are cut to 50% / 20%
    python benchmarks/speed.py BASE.pt --prune kmeans_channel 0.5 0.8  # prune the base at these ratios here
    python benchmarks/speed.py --case l2_unit 0.8 scope=all --case l2_unit 0.8 scope=all round_to=8
                                       # cases: METHOD RATIO [OPTION=VALUE ...], pruned from BASE.pt if given,
                                       # else from a random ResNet (--depth); all cases in one process
Both models are deployed the same way (BN folded, shared convs materialized; cnn_pruning.evaluation.speed) and timed
interleaved in this process, so each speedup is a same-process ratio. The first table per pair: candidate vs base
on the same runtime. The second: the candidate (and the base) deployed on each runtime vs the base in plain
PyTorch eager, each ratio again measured interleaved: what a user who deploys the pruned model gets.
Speed does not depend on the weights, so random models time like trained ones.

What it printed, with the machine and command, is in benchmarks/results/ and docs/results.md; figures are kept there,
not here, because they belong to one machine and go stale.

l2_unit and kmeans_channel prune to the same widths at a ratio and scope (so the same deployed shapes: their
columns differ by noise only); l2_unit's zeroed residual units (scope inner) cost the same time as live ones.
With scope inner, pruning gains less than the MACs drop: the residual stream keeps its 16/32/64 channels
(activation traffic, adds); scope all removes stream channels too. Thin convs fill the CPU's vector lanes badly
(round_to=8/16 keeps widths at multiples), and at batch 1 per-layer overheads dominate. Interleaving two runtimes
in one process (the second table) costs each some speed: PyTorch's OpenMP threads spin between calls, so ratios
across runtimes are conservative.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from cnn_pruning.core.files import write_json
from cnn_pruning.evaluation import speed
from cnn_pruning.model import STREAM_WIDTHS, CifarResNet, load_checkpoint


def scaled(fraction: float) -> CifarResNet:
    """A random ResNet20 whose inner (prunable) widths are `fraction` of the dense ones."""
    widths = [w for w in STREAM_WIDTHS for _ in range(3)]  # ResNet20: 3 blocks per stage
    return CifarResNet(inner_widths=[max(1, round(w * fraction)) for w in widths])


def check_rounds(r: dict, what: str) -> None:
    short = {bs: n for bs, n in r["rounds_done"].items() if n < r["rounds"]}
    if short:
        print(f"  note: {what}: time budget hit, only {short} of {r['rounds']} rounds ran (machine busy?)")


def table(title: str, rows: list[tuple[str, dict]], batch_sizes) -> None:
    print(f"\n{title}")
    head = f"{'':14s}" + "".join(f" | {'b' + str(bs) + ' base ms':>12s} {'cand ms':>8s} {'speedup':>7s} {'/round':>6s}"
                                 f" {'min':>6s} {'cand IQR ms':>13s}" for bs in batch_sizes)
    print(head + "\n" + "-" * len(head))
    for name, r in rows:
        cells = []
        for bs in map(str, batch_sizes):
            b, c = r["base"][bs], r["candidate"][bs]
            iqr = f"{c['q1_ms']:.3g}-{c['q3_ms']:.3g}"
            cells.append(f" | {b['median_ms']:12.2f} {c['median_ms']:8.2f} {r['speedup'][bs]:6.2f}x "
                         f"{r['speedup_rounds'][bs]:5.2f}x {r['speedup_min'][bs]:5.2f}x {iqr:>13s}")
        print(f"{name:14s}" + "".join(cells))


_BASE_CACHE: dict = {}


def run_pair(label: str, base, cand, runtimes, batch_sizes, setting: dict, threads, kw) -> dict:
    print(f"\n=== {label}: {sum(p.numel() for p in base.parameters()):,} -> "
          f"{sum(p.numel() for p in cand.parameters()):,} params", flush=True)
    results = {}
    for rt in runtimes:
        results[rt] = speed.compare_speed(base, cand, rt, batch_sizes, threads=threads, **setting, **kw)
        check_rounds(results[rt], rt)
        print(f"  {rt}: " + ", ".join(f"b{bs} {results[rt]['speedup'][str(bs)]:.2f}x" for bs in batch_sizes),
              flush=True)
    table(f"{label}: candidate vs base on the same runtime (median ms/batch; speedup = ratio of medians, "
          "/round = median of per-round ratios, min = ratio of minima)",
          [(rt, results[rt]) for rt in runtimes], batch_sizes)
    # What a user gets: each deployed model against the base as trained, in PyTorch eager. Every ratio is its
    # own interleaved measurement (comparing medians of different phases would compare different machine loads).
    eager = []
    for rt in runtimes:
        row = {}
        for who, model in (("candidate", cand), ("base", base)):
            if rt == "pytorch":  # already measured above; the base against itself is 1 by definition
                row[who] = results["pytorch"] if who == "candidate" else None
                continue
            key = (id(base), rt)  # base vs base is the same for every candidate: measure it once
            if who == "base" and key in _BASE_CACHE:
                row[who] = _BASE_CACHE[key]
                continue
            row[who] = speed.compare_speed(base, model, "pytorch", batch_sizes, threads=threads,
                                           candidate_runtime=rt, **setting, **kw)
            check_rounds(row[who], f"{who} on {rt} vs base eager")
            if who == "base":
                _BASE_CACHE[key] = row[who]
        eager.append((rt, row))
    print(f"\n{label}: deployed vs the base in PyTorch eager (ratio of medians; min = ratio of minima)")
    head = f"{'':14s}" + "".join(f" | {'b' + str(bs) + ' candidate':>14s} {'min':>6s} {'base':>7s} {'min':>6s}"
                                 for bs in batch_sizes)
    print(head + "\n" + "-" * len(head))
    for rt, row in eager:
        cells = ""
        for bs in map(str, batch_sizes):
            c, b = row["candidate"], row["base"]
            base_cells = f"{b['speedup'][bs]:6.2f}x {b['speedup_min'][bs]:5.2f}x" if b else f"{'1':>6s}x {'1':>5s}x"
            cells += f" | {c['speedup'][bs]:13.2f}x {c['speedup_min'][bs]:5.2f}x {base_cells}"
        print(f"{rt:14s}" + cells)
    for bs in map(str, batch_sizes):
        rt, row = max(eager, key=lambda e: e[1]["candidate"]["speedup"][bs])
        print(f"  batch {bs}: best deployment of the candidate is {rt}, {row['candidate']['speedup'][bs]:.2f}x "
              f"the base in eager PyTorch")
    results["vs_eager"] = {rt: row for rt, row in eager}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="*", metavar="BASE.pt CANDIDATE.pt")
    ap.add_argument("--widths", type=float, nargs="+", help="random models with inner widths scaled by these")
    ap.add_argument("--prune", nargs="+", metavar=("METHOD", "RATIO"),
                    help="with BASE.pt only: prune it with METHOD (default options) at each RATIO and time that")
    ap.add_argument("--case", nargs="+", action="append", metavar="METHOD RATIO [OPTION=VALUE]",
                    help="prune BASE.pt (or a random ResNet) with METHOD at RATIO and these options; repeatable")
    ap.add_argument("--depth", type=int, default=20, help="the random base's depth when no BASE.pt is given")
    ap.add_argument("--runtime", default="all", choices=("all",) + speed.RUNTIMES)
    ap.add_argument("--rounds", type=int, default=speed.THOROUGH["rounds"])
    ap.add_argument("--threads", type=int, default=None, help="default: torch.get_num_threads()")
    ap.add_argument("--batch-sizes", default="256,1")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False,
                    help="pytorch runtimes: NHWC memory format (off: no gain on an idle CPU here)")
    ap.add_argument("--ov-hint", default="LATENCY", choices=("LATENCY", "THROUGHPUT"))
    ap.add_argument("--precision", default="f32", help="openvino inference precision (f32, bf16, f16)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write all results here")
    args = ap.parse_args()
    if args.prune and (len(args.checkpoints) != 1 or len(args.prune) < 2):
        ap.error("--prune METHOD RATIO [RATIO ...] needs exactly one checkpoint, BASE.pt")
    if args.case and (len(args.checkpoints) > 1 or args.prune or args.widths):
        ap.error("--case takes at most one checkpoint, BASE.pt, and no --prune or --widths")
    if not args.prune and not args.case and (bool(args.checkpoints) == bool(args.widths) or
                           (args.checkpoints and len(args.checkpoints) != 2)):
        ap.error("give BASE.pt CANDIDATE.pt, BASE.pt --prune METHOD RATIO ..., or --widths F [F ...]")

    runtimes = speed.RUNTIMES if args.runtime == "all" else (args.runtime,)
    if "pytorch" not in runtimes:
        runtimes = ("pytorch",) + runtimes  # the eager reference is always measured
    batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    setting = {**speed.THOROUGH, "rounds": args.rounds, "device": args.device}
    kw = dict(channels_last=args.channels_last, ov_hint=args.ov_hint, precision=args.precision)
    threads = args.threads or torch.get_num_threads()
    print(f"{speed.device_name(args.device)}, {threads} threads, torch {torch.__version__}, rounds {args.rounds}, "
          f"{setting['min_sample_ms']:.0f} ms samples, flags {kw}")

    if args.case:
        import yaml

        from cnn_pruning import pruning

        torch.manual_seed(0)
        base = load_checkpoint(args.checkpoints[0])[0] if args.checkpoints else CifarResNet(args.depth)
        cases = []
        for method, ratio, *settings in args.case:
            options = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in settings)}
            pruning.validate(method, float(ratio), options)  # every case checked before any timing
            cases.append((" ".join([method, ratio, *settings]), method, float(ratio), options))
        pairs = [(label, base, pruning.prune(base, method, ratio, **options).model)
                 for label, method, ratio, options in cases]
    elif args.prune:
        from cnn_pruning import pruning

        base = load_checkpoint(args.checkpoints[0])[0]
        method, ratios = args.prune[0], [float(r) for r in args.prune[1:]]
        pairs = [(f"{method} {r:g}", base, pruning.prune(base, method, r).model) for r in ratios]
    elif args.checkpoints:
        pairs = [(f"{args.checkpoints[1]} vs {args.checkpoints[0]}",
                  load_checkpoint(args.checkpoints[0])[0], load_checkpoint(args.checkpoints[1])[0])]
    else:
        torch.manual_seed(0)
        base = CifarResNet()  # one base for all fractions, so its eager-vs-deployed ratios are measured once
        pairs = [(f"inner widths x{f:g}", base, scaled(f)) for f in args.widths]
    out = {label: run_pair(label, base, cand, runtimes, batch_sizes, setting, threads, kw)
           for label, base, cand in pairs}
    if args.json:
        write_json(args.json, out)
    # The summary form: per runtime and case, candidate vs base on that runtime, batch sizes side by side.
    print(f"\nSummary: speedup over the base on the same runtime, batch {' / '.join(map(str, batch_sizes))}\n")
    print("| runtime | " + " | ".join(out) + " |\n|---|" + "---|" * len(out))
    for rt in runtimes:
        print(f"| {rt} | " + " | ".join(" / ".join(f"{r[rt]['speedup'][str(bs)]:.2f}" for bs in batch_sizes)
                                         for r in out.values()) + " |")
    print("| best deployed vs base eager | " + " | ".join(
        " / ".join(f"{max(row['candidate']['speedup'][str(bs)] for row in r['vs_eager'].values()):.2f}"
                   for bs in batch_sizes) for r in out.values()) + " |")


if __name__ == "__main__":
    main()
