#!/usr/bin/env bash
# What the remedies buy: one-shot vs gradual pruning, with and without distillation, after the same fine-tuning, on the
# quick CPU profile (the local JPEG copy of CIFAR-10, 10,000 training and 2,000 test images, 15 training
# epochs, SGD base, 5 fine-tune epochs per point: the quick run's recipe): the four methods at ratios 0.7 and 0.9,
# seeds 0/1/2, variants oneshot, gradual, oneshot_distill, gradual_distill (prune.steps=10, prune.prune_until=0.5,
# finetune.distill_alpha=0.9, distill_temperature=4: params.yaml's defaults), the control per seed.
#
#   tools/remedies_study.sh             # from a clone with ../shared beside it (tools/quick_exp.sh); prints the wall time
#
# Two passes: the ratio-0.9 points first (the goal is stated at 0.9, so a run cut short still has its points), then
# the rest and the report; a point done in the first pass is not run again in the second.
#
# Results: reports/study.md (its "Gradual pruning and distillation against one-shot" table), results/study/
# remedies.csv, results/study/summary.csv, plots/study/variants.png. DVC's run cache keeps every finished point: run
# again after a cut-off and only the missing points run.
set -euo pipefail
METHODS=(magnitude l2_unit kmeans_shared kmeans_channel) SEEDS=(0 1 2)
VARIANTS=(oneshot gradual oneshot_distill gradual_distill)
list() { local IFS=,; echo "[$*]"; }
RECIPE=(train.epochs=15 finetune.epochs=5 "study.methods=$(list "${METHODS[@]}")" "study.ratios=[0.7,0.9]"
        "study.seeds=$(list "${SEEDS[@]}")" "study.variants=$(list "${VARIANTS[@]}")")
FIRST=$(for m in "${METHODS[@]}"; do for s in "${SEEDS[@]}"; do for v in "${VARIANTS[@]}"; do
          echo "point@$m-0.9-$s-$v"; done; done; done)
"$(dirname "$0")/quick_exp.sh" remedies-study-0.9 "$(echo $FIRST)" "${RECIPE[@]}"
"$(dirname "$0")/quick_exp.sh" remedies-study "study" "${RECIPE[@]}"
