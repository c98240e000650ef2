#!/usr/bin/env bash
# One `dvc exp run` on the quick profile's CPU data (the local JPEG copy of CIFAR-10 from ../shared, 10,000 training
# and 2,000 test images) with more overrides, after `make setup`; prints the wall time. The scripts beside it
# (scope_study.sh, remedies_study.sh, resnet56_quick.sh) are each one call of it, with their recipe.
#
#   tools/quick_exp.sh NAME "TARGETS" KEY=VALUE...      # TARGETS "" = the whole pipeline
set -euo pipefail -o noglob   # [a,b] lists and --glob patterns reach dvc as written
cd "$(dirname "$0")/.."
name=$1 targets=$2
shift 2
SET="data.source=../shared/data/cifar10-jpg.tar.gz data.md5=34ec1c07be108afe1a3754f7105b69d6"
SET="$SET data.train_size=10000 data.test_size=2000 $*"
start=$(date +%s)
make setup
export PATH="$PWD/.venv/bin:$PATH" MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1   # as the Makefile does
# shellcheck disable=SC2046,SC2086  # one -S per word; the targets are words too
dvc exp run -n "$name" $(for kv in $SET; do echo "-S $kv"; done) $targets
echo "$name: $(( $(date +%s) - start )) s wall time (set-up and every stage that was not cached)"
