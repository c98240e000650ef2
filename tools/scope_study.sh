#!/usr/bin/env bash
# Accuracy against speed: scope inner vs scope all after fine-tuning, on the
# quick CPU profile (the local JPEG copy of CIFAR-10, 10,000 training and 2,000 test images, 15 training
# epochs, SGD base) with the reference study's 3 fine-tune epochs per point: l2_unit and kmeans_channel in both
# scopes and the scope-all random baseline, at ratios 0.3/0.5/0.8, seeds 0/1, the control per seed. Speed is the
# study_speed stages' (evaluate.runtime, eager PyTorch by default, interleaved with the base).
#
#   tools/scope_study.sh                # from a clone with ../shared beside it (tools/quick_exp.sh); prints the wall time
#
# Results: reports/study.md and results/study/summary.csv (accuracy mean ± std, MACs reduction, speedup per
# method and ratio), plots/study/*.png.
exec "$(dirname "$0")/quick_exp.sh" scope-study "study" train.epochs=15 finetune.epochs=3 \
    "study.methods=[l2_unit,l2_unit_all,kmeans_channel,kmeans_channel_all,random_channel_all]" \
    "study.ratios=[0.3,0.5,0.8]" "study.seeds=[0,1]"
