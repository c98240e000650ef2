#!/usr/bin/env bash
# The quick run, as a user runs it: the quick profile on the local JPEG copy of CIFAR-10 (../shared), the
# whole pipeline (study included) as experiment quick-05, then prune.ratio=0.9 as quick-09 (only what the ratio
# touches reruns); then the tables and the plots page. Prints each step's wall time. Run it alone on the machine.
#
#   tools/quick_run.sh            # in a clone of the repo; `make run` sets up .venv first when needed
set -euo pipefail
cd "$(dirname "$0")/.."
source_set="data.source=../shared/data/cifar10-jpg.tar.gz data.md5=34ec1c07be108afe1a3754f7105b69d6"
start=$(date +%s)
make run PROFILE=quick NAME=quick-05 SET="$source_set"
middle=$(date +%s)
make run NAME=quick-09 SET="prune.ratio=0.9"
end=$(date +%s)
echo "quick-05 (whole pipeline, set-up included): $(( middle - start )) s; quick-09 (prune.ratio=0.9): $(( end - middle )) s"
make -s exp
make -s exp SHOW=speedup
make -s study-table
.venv/bin/dvc plots show
