"""DVC stage `prune@<method>`: prune the base model with one method at prune.ratio (no fine-tuning yet).

    python stages/prune.py kmeans_channel   # reads params.yaml: prune.ratio, prune.base, prune.options.<method>

Writes models/pruned/<method>.pt (state_dict + spec + masks; meta: method, ratio, base, what was removed) and
metrics/prune/<method>.json: accuracy of the base and right after pruning on validation and test, params stored,
nonzero params, distinct filters, MACs. Method `none` is the control: the base model unchanged (ratio ignored),
fine-tuned later with the same recipe as the pruned ones.
"""

import sys

from cnn_pruning import data, files, measure, params, pruning, tracking
from cnn_pruning.model import load_checkpoint, save_checkpoint
from cnn_pruning.stage import run_stage

DATA = "data/cifar10.npz"


def main(method: str) -> None:
    section = params.section("prune")
    options = section["options"].get(method) or {}
    ratio = None if method == "none" else float(section["ratio"])
    base = section["base"]
    own = {"method": method, "ratio": ratio, "base": base, "options": options}
    if method != "none":
        pruning.validate(method, ratio, options)  # config checked it too; this keeps the stage safe on its own
    ds = data.load(DATA)
    base_model, _ = load_checkpoint(f"models/base/{base}.pt")
    tags = {"method": method, "ratio": "" if ratio is None else ratio, "base_optimizer": base}
    with tracking.stage_run("prune", f"prune-{method}", params=own, tags=tags) as run:
        if method == "none":
            model, info = base_model, {"method": "none"}
        else:
            result = pruning.prune(base_model, method, ratio, **options)
            model, info = result.model, result.info
        before_val, before_test = measure.accuracy(base_model, ds.val), measure.accuracy(base_model, ds.test)
        after_val, after_test = measure.accuracy(model, ds.val), measure.accuracy(model, ds.test)
        metrics = {"method": method, "ratio": ratio, "base": base,
                   "base_val_acc": before_val["accuracy"], "base_test_acc": before_test["accuracy"],
                   "val_acc": after_val["accuracy"], "test_acc": after_test["accuracy"],
                   **measure.model_summary(model)}
        out, metrics_path = f"models/pruned/{method}.pt", f"metrics/prune/{method}.json"
        save_checkpoint(out, model, meta={"method": method, "ratio": ratio, "base": base, "pruning": info})
        files.write_json(metrics_path, metrics)
        files.write_json(f"metrics/prune/{method}.info.json", info)
        run.log_metrics({k: v for k, v in metrics.items() if k != "ratio"})
        run.set_tags({"model_md5": files.md5_of(out), "model_path": out})
        run.log_artifact(metrics_path)
    print(f"prune-{method}: val_acc {metrics['base_val_acc']:.4f} -> {metrics['val_acc']:.4f}, "
          f"params {metrics['params']}, MACs {metrics['macs']}")


if __name__ == "__main__":
    run_stage(main, *sys.argv[1:], expected=(tracking.TrackingError,))
