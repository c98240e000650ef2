#!/usr/bin/env bash
# Issue 14's proof: one-shot vs gradual pruning, with and without distillation, after the same fine-tuning, on the
# README's quick CPU profile (the local JPEG copy of CIFAR-10, 10,000 training and 2,000 test images, 15 training
# epochs, SGD base, 5 fine-tune epochs per point: the quick run's recipe): the four methods at ratios 0.7 and 0.9,
# seeds 0/1/2, variants oneshot, gradual, oneshot_distill, gradual_distill (prune.steps=10, prune.prune_until=0.5,
# finetune.distill_alpha=0.9, distill_temperature=4: params.yaml's defaults), the control per seed.
#
#   tools/remedies_study.sh             # from a clone with ../shared beside it (tools/quick_exp.sh); prints the wall time
#
# Results: reports/study.md (its "Gradual pruning and distillation against one-shot" table), results/study/
# remedies.csv, results/study/summary.csv, plots/study/variants.png. DVC's run cache keeps every finished point: run
# again after a cut-off and only the missing points run.
exec "$(dirname "$0")/quick_exp.sh" remedies-study "study" train.epochs=15 finetune.epochs=5 \
    "study.methods=[magnitude,l2_unit,kmeans_shared,kmeans_channel]" "study.ratios=[0.7,0.9]" "study.seeds=[0,1,2]" \
    "study.variants=[oneshot,gradual,oneshot_distill,gradual_distill]"
