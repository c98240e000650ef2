"""DVC stage `prune@<method>`: prune the base model with one method at prune.ratio (no fine-tuning yet).

    python stages/prune.py kmeans_channel --data data/cifar10.npz --base models/base/sgd.pt \
        --model models/pruned/kmeans_channel.pt --metrics metrics/prune/kmeans_channel.json \
        --info metrics/prune/kmeans_channel.info.json

Reads prune.ratio, prune.base, prune.options.<method> (a registered method's options, or a named variant's:
`{method: l2_unit, scope: all}`; pruning.resolve) and prune.schedule, steps, prune_until. Writes the one-shot pruned
model (state_dict + spec + masks; meta: method, ratio, base, what was removed, and the schedule the finetune stage
follows: only its kind for one-shot, so a change of steps leaves the file, and fine-tuning, as they were), its
metrics (accuracy of the base and right after pruning on validation and
test, params stored, nonzero params, distinct filters, MACs) and the per-layer info. Method `none` is the control:
the base model unchanged (ratio ignored), fine-tuned later with the same recipe as the pruned ones.
"""

from cnn_pruning import pruning, tracking
from cnn_pruning.core import files, params, schema
from cnn_pruning.core.cli import pruning_parser, run_stage
from cnn_pruning.datasets import dataset
from cnn_pruning.model import load_checkpoint, measure, save_checkpoint


def main(method: str, data: str, base: str, model: str, metrics: str, info: str) -> None:
    section = params.section("prune")
    control = method == pruning.CONTROL
    ratio = None if control else float(section["ratio"])
    optimizer = section["base"]
    # Checked by config too; this keeps the stage safe on its own, and MLflow gets the options in effect.
    runs, options = (pruning.CONTROL, {}) if control else pruning.resolve(method, section["options"])
    resolved = {} if control else pruning.validate(runs, ratio, options)[1]
    schedule = schema.build(pruning.Schedule, {k: section[k] for k in ("schedule", "steps", "prune_until")}).record()
    ds = dataset.load(data)
    base_model, _ = load_checkpoint(base)
    own = {"runs": runs, "options": resolved, **({} if control else {"schedule": schedule})}
    coords = tracking.coordinates(method=method, ratio=ratio or 0.0, base_optimizer=optimizer,
                                  depth=base_model.depth, dataset=ds.name)
    with tracking.stage_run("prune", tracking.run_name("prune", method, ratio), params=own, coords=coords, data=ds,
                            splits=("val", "test")) as run:
        if control:
            pruned, details = base_model, {"method": pruning.CONTROL}
        else:
            result = pruning.prune(base_model, runs, ratio, **options)
            pruned, details = result.model, result.info
        before_val, before_test = measure.accuracy(base_model, ds.val), measure.accuracy(base_model, ds.test)
        after_val, after_test = measure.accuracy(pruned, ds.val), measure.accuracy(pruned, ds.test)
        result_metrics = {"method": method, "ratio": ratio, "base": optimizer,
                          "base_val_acc": before_val["accuracy"], "base_test_acc": before_test["accuracy"],
                          "val_acc": after_val["accuracy"], "test_acc": after_test["accuracy"],
                          **measure.model_summary(pruned)}
        meta = {"method": method, "ratio": ratio, "base": optimizer, "pruning": details}
        save_checkpoint(model, pruned, meta=meta if control else {**meta, "schedule": schedule})
        files.write_json(metrics, result_metrics)
        files.write_json(info, details)
        run.log_results(result_metrics, skip=("ratio",))  # ratio: a param of the run
        run.log_model(model)
        run.log_artifacts(named={"metrics.json": metrics, "info.json": info})
    print(f"prune-{method}: val_acc {result_metrics['base_val_acc']:.4f} -> {result_metrics['val_acc']:.4f}, "
          f"params {result_metrics['params']}, MACs {result_metrics['macs']}")


parser = pruning_parser(__doc__, "a registered pruning method, a named variant in prune.options, or none (the control)")
parser.add_argument("--model", required=True, help="the pruned model written")
parser.add_argument("--metrics", required=True, help="accuracy before/after and counts (JSON)")
parser.add_argument("--info", required=True, help="what was removed, zeroed or shared, per layer (JSON)")

if __name__ == "__main__":
    run_stage(main, parser)
