#!/usr/bin/env bash
# The README's reference study, reproduced: the quick CPU profile on the local JPEG copy of CIFAR-10 (10,000
# training and 2,000 test images, 15 training epochs, 5 fine-tune epochs) with the study's defaults from
# params.yaml (every method and both random baselines x ratios 0.3/0.5/0.7/0.9 x seeds 0/1/2, the control per
# seed). It is exactly the README's quick run: `make run SET=...`, i.e. `dvc exp run -S ...` on the whole pipeline.
#
#   tools/reference_study.sh            # from a clone with ../shared beside it; prints the wall time at the end
#
# Results: reports/study.md, results/study/, plots/study/*.png, metrics/study.json; `dvc plots show` draws them.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK="data.source=../shared/data/cifar10-jpg.tar.gz data.md5=34ec1c07be108afe1a3754f7105b69d6"
QUICK="$QUICK data.train_size=10000 data.test_size=2000 train.epochs=15 finetune.epochs=5"
start=$(date +%s)
make run SET="$QUICK"
echo "reference study: $(( $(date +%s) - start )) s wall time (set-up and every stage that was not cached)"
