"""A model against its base: accuracy, counts, stored size and measured speed (the evaluate and sweep stages).

    metrics, timing = compare(pruned, base, ds.test, export_path="models/compact/x.rz", runtime="openvino")
    rows = sweep(base, "l2_unit", [0.1, 0.5, 0.9], {}, ds.test, "checkpoints/sweep/l2_unit", runtime="pytorch")
    evaluate_and_save(...)       # what evaluate@<method> and evaluate_base@<optimizer> write and log

EvaluateConfig and SweepConfig are params.yaml's evaluate and sweep sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch.nn as nn

from .. import pruning
from ..core import files
from ..core.schema import integer, of_type, one_of, ratio_list, setting
from ..datasets.dataset import Dataset, Split
from ..machine import DEVICES, pick_device
from ..model import export, load_checkpoint
from ..model.measure import accuracy, model_summary
from . import speed


@dataclass
class EvaluateConfig:
    """params.yaml's evaluate section: how every fine-tuned and base model is measured and timed."""
    runtime: str = setting("pytorch", one_of(*speed.RUNTIMES), "the inference path every model is timed on")
    precision: str = setting("f32", one_of(*speed.PRECISIONS),
                             "OpenVINO inference precision (it picks bf16 on CPUs that have it unless pinned)")
    batch_size: int = setting(256, integer(1), "timed batch; batch 1 is timed too")
    rounds: int = setting(15, integer(1), "timed rounds per model and batch size (base and candidate interleaved)")
    warmup: int = setting(3, integer(0), "untimed passes first")
    threads: int | None = setting(None, integer(1, optional=True), "null = torch's default (the machine's cores)")
    device: str = setting("auto", one_of(*DEVICES), "auto = cuda when available, else cpu")


@dataclass
class SweepConfig:
    """params.yaml's sweep section: the base pruned at each ratio (no fine-tune) and measured."""
    methods: list = setting(["magnitude", "l2_unit", "kmeans_shared", "kmeans_channel",
                             *(v for v, entry in pruning.SCOPE_ALL_VARIANTS.items()  # not the baseline's
                               if entry[pruning.VARIANT_KEY] not in pruning.BASELINES)],
                            of_type(list, text="a list of method names"), "methods swept (not the control)")
    ratios: list = setting([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], ratio_list(), "ratios of each method")
    runtime: str = setting("pytorch", one_of(*speed.RUNTIMES), "the inference path the points are timed on")
    batch_size: int = setting(256, integer(1), "timed batch; batch 1 is timed too")
    rounds: int = setting(5, integer(1), "timed rounds per point: a small fixed number keeps the sweep to minutes")
    eval_images: int | None = setting(2000, integer(1, optional=True),
                                      "test images for the accuracy column (null = the whole test set)")
    threads: int | None = setting(None, integer(1, optional=True), "null = torch's default (the machine's cores)")
    device: str = setting("auto", one_of(*DEVICES), "auto = cuda when available, else cpu")


def describe(model: nn.Module, split: Split, export_path, device: str = "cpu") -> dict:
    """What a model is, apart from speed: accuracy on `split`, the counts and MACs, and the bytes of its compact
    export written to `export_path`."""
    acc = accuracy(model, split, device=device)
    return {"accuracy": acc, "summary": model_summary(model), "size": export.export_compact(model, export_path)}


def compare(candidate: nn.Module, base: nn.Module, split: Split, *, export_path, base_export_path=None,
            base_description: dict | None = None, runtime: str = "pytorch", batch_size: int = 256, rounds: int = 5,
            warmup: int = 2, device: str = "cpu", threads: int | None = None, precision: str = "f32"
            ) -> tuple[dict, dict]:
    """Everything the evaluate and sweep stages report about `candidate` against `base`, in one flat dict.

    describe() of both (pass `base_description` to reuse the base's across calls), and the inference speed of both
    timed interleaved in this process on `runtime` (cnn_pruning.evaluation.speed.compare_speed) at `batch_size` and at
    batch 1: `speedup` = base ms / candidate ms at `batch_size` (keys without a suffix, stable across settings for
    `dvc exp show`), `speedup_b1` the same at batch 1. Returns (flat metrics, the raw speed result).
    """
    cand = describe(candidate, split, export_path, device)
    ref = base_description or describe(base, split, base_export_path, device)
    batch_sizes = (batch_size, 1) if batch_size != 1 else (1,)
    timing = speed.compare_speed(base, candidate, runtime=runtime, batch_sizes=batch_sizes, rounds=rounds,
                                 warmup=warmup, device=device, threads=threads, precision=precision)
    acc, base_acc, c, r = cand["accuracy"], ref["accuracy"], cand["summary"], ref["summary"]
    metrics = {
        "test_acc": acc["accuracy"], "per_class_acc": acc["per_class"], "test_images": acc["n"],
        "base_test_acc": base_acc["accuracy"], "acc_drop": base_acc["accuracy"] - acc["accuracy"],
        **{k: v for k, v in c.items() if not isinstance(v, (list, dict))},
        "base_params": r["params"], "base_macs": r["macs"],
        "params_ratio": r["params"] / max(1, c["params"]),
        "nonzero_ratio": r["nonzero_params"] / max(1, c["nonzero_params"]),
        "macs_ratio": r["macs"] / max(1, c["macs"]),
        "size_bytes": cand["size"], "base_size_bytes": ref["size"], "size_ratio": ref["size"] / cand["size"],
        "runtime": runtime, "device": timing["device"], "device_name": timing["device_name"],
        "threads": timing["threads"], "timed_rounds": rounds, "batch_size": batch_size,
        "load_avg_1m": timing["load_avg_1m"], "dvc_queue_workers": timing["dvc_queue_workers"],
    }
    return {**metrics, **speed.headline(timing, batch_size)}, timing


def sweep(base: nn.Module, method: str, ratios, options: dict, split: Split, workdir, name: str | None = None,
          **timing) -> list[dict]:
    """Prune `base` with `method` at every ratio (no fine-tuning) and compare() each result with it; one flat dict
    per ratio, labelled `name` (a named variant's; default: the method). The base is described once; `timing` goes
    to compare() (runtime, batch_size, rounds, ...)."""
    workdir = Path(workdir)
    base_description = describe(base, split, workdir / "base.rz", timing.get("device", "cpu"))
    rows = []
    for ratio in ratios:
        model = pruning.prune(base, method, ratio, **options).model
        metrics, _ = compare(model, base, split, export_path=workdir / f"{name or method}.rz",
                             base_description=base_description, **timing)
        rows.append({**metrics, "method": name or method, "ratio": ratio})
    return rows


@dataclass(frozen=True)
class EvaluateOutputs:
    """Where an evaluation's files go (the stage's arguments, from dvc.yaml)."""
    export: str     # the model's compact lossless export, measured for its size
    metrics: str    # accuracy, counts, size, speed and the ratios to the base (JSON)
    timing: str     # every timed sample (JSON)
    scratch: str    # the base's export while it is measured; removed afterwards


def evaluate_and_save(name: str, model_path: str, base_path: str, cfg: EvaluateConfig, ds: Dataset, run,
                      labels: dict, outputs: EvaluateOutputs) -> dict:
    """Measure the model at `model_path` against the base at `base_path` (compare()), write `outputs` and log the
    scalars and files to `run`."""
    model, _ = load_checkpoint(model_path)
    base, _ = load_checkpoint(base_path)
    metrics, timing = compare(
        model, base, ds.test, export_path=outputs.export, base_export_path=outputs.scratch, runtime=cfg.runtime,
        batch_size=cfg.batch_size, rounds=cfg.rounds, warmup=cfg.warmup, device=str(pick_device(cfg.device)),
        threads=cfg.threads, precision=cfg.precision)
    files.remove(outputs.scratch)
    metrics = {**labels, "architecture": model.name, "dataset": ds.title, **metrics}
    files.write_json(outputs.metrics, metrics)
    files.write_json(outputs.timing, timing)
    run.log_results(metrics, skip=("ratio",))  # ratio: a param of the run
    run.log_artifacts(named={"metrics.json": outputs.metrics, "timing.json": outputs.timing})
    print(f"evaluate-{name}: test_acc {metrics['test_acc']:.4f} (base {metrics['base_test_acc']:.4f}), "
          f"params {metrics['params']}, MACs {metrics['macs']}, size {metrics['size_bytes']} B "
          f"({metrics['size_ratio']:.2f}x smaller), speedup {metrics['speedup']:.2f}x at batch {cfg.batch_size} "
          f"and {metrics['speedup_b1']:.2f}x at batch 1 on {metrics['runtime']}")
    return metrics
