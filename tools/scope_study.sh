#!/usr/bin/env bash
# Issue 13's accuracy-against-speed comparison, reproduced: scope inner vs scope all after fine-tuning, on the
# README's quick CPU profile (the local JPEG copy of CIFAR-10, 10,000 training and 2,000 test images, 15 training
# epochs, SGD base) with the reference study's 3 fine-tune epochs per point: l2_unit and kmeans_channel in both
# scopes and the scope-all random baseline, at ratios 0.3/0.5/0.8, seeds 0/1, the control per seed. Speed is the
# study_speed stages' (evaluate.runtime, eager PyTorch by default, interleaved with the base).
#
#   tools/scope_study.sh                # from a clone with ../shared beside it; prints the wall time at the end
#
# Results: reports/study.md and results/study/summary.csv (accuracy mean ± std, MACs reduction, speedup per
# method and ratio), plots/study/*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
SET="data.source=../shared/data/cifar10-jpg.tar.gz data.md5=34ec1c07be108afe1a3754f7105b69d6"
SET="$SET data.train_size=10000 data.test_size=2000 train.epochs=15 finetune.epochs=3"
SET="$SET study.methods=[l2_unit,l2_unit_all,kmeans_channel,kmeans_channel_all,random_channel_all]"
SET="$SET study.ratios=[0.3,0.5,0.8] study.seeds=[0,1]"
start=$(date +%s)
make setup
export PATH="$PWD/.venv/bin:$PATH" MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1   # as the Makefile does
dvc exp run -n scope-study $(for kv in $SET; do echo "-S $kv"; done) study
echo "scope study: $(( $(date +%s) - start )) s wall time (set-up and every stage that was not cached)"
