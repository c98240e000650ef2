#!/usr/bin/env bash
# A ResNet-56 quick run on the local JPEG copy of CIFAR-10, through every stage with every method: the smallest run
# that shows the pipeline working at the depth structured-pruning papers benchmark, on a 2-core CPU. The data is
# the README's ResNet20 quick profile's (10,000 training and 2,000 test images), with fewer epochs because a
# ResNet-56 step costs about 2.7x a ResNet20 step (benchmarks/depth_epoch.py): 10 training epochs, 3 fine-tune
# epochs; the sweep at 4 ratios; the study at one ratio (0.5) and one seed for all six methods. Its accuracies are
# those of a briefly trained model on a fifth of the data, not ResNet-56's (93% in He et al. 2016).
#
#   tools/resnet56_quick.sh             # from a clone with ../shared beside it; prints the wall time at the end
#
# Results: reports/summary.md, reports/study.md, metrics/train/*.timing.json (seconds per epoch), as ever.
set -euo pipefail
cd "$(dirname "$0")/.."
SET="data.source=../shared/data/cifar10-jpg.tar.gz data.md5=34ec1c07be108afe1a3754f7105b69d6"
SET="$SET data.train_size=10000 data.test_size=2000 model.depth=56 train.epochs=10 finetune.epochs=3"
SET="$SET sweep.ratios=[0.3,0.5,0.7,0.9] study.ratios=[0.5] study.seeds=[0]"
start=$(date +%s)
make setup
export PATH="$PWD/.venv/bin:$PATH" MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1   # as the Makefile does
dvc exp run -n resnet56-quick $(for kv in $SET; do echo "-S $kv"; done)
echo "resnet56 quick run: $(( $(date +%s) - start )) s wall time (set-up and every stage that was not cached)"
