#!/usr/bin/env bash
# The study on the quick profile's base: the study stage and everything it needs (validate, download,
# train@<prune.base>, control@*, point@*, study_speed@*), with the study's defaults from params.yaml (every method,
# both random baselines and the scope-all variants l2_unit_all, kmeans_channel_all and random_channel_all x
# ratios 0.3/0.5/0.7/0.9 x seeds 0/1/2, the control per seed: 108 points) on the quick CPU profile: the local JPEG copy of CIFAR-10, 10,000 training and 2,000 test images, 15 training epochs (the quick
# profile's), and 3 fine-tune epochs per point (the quick run fine-tunes 5: at ~80 s a point on 2 cores, the 75
# fine-tunes would take 100 minutes; 3 epochs take about 55 s a point).
#
#   tools/reference_study.sh            # from a clone with ../shared beside it; prints the wall time at the end
#
# Results: reports/study.md, results/study/, plots/study/*.png, metrics/study.json; `dvc plots show` draws them.
set -euo pipefail
cd "$(dirname "$0")/.."
SET="data.source=../shared/data/cifar10-jpg.tar.gz data.md5=34ec1c07be108afe1a3754f7105b69d6"
SET="$SET data.train_size=10000 data.test_size=2000 train.epochs=15 finetune.epochs=3"
start=$(date +%s)
make setup
export PATH="$PWD/.venv/bin:$PATH" MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1   # as the Makefile does
dvc exp run $(for kv in $SET; do echo "-S $kv"; done) study
echo "reference study: $(( $(date +%s) - start )) s wall time (set-up and every stage that was not cached)"
