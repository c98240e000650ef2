#!/usr/bin/env bash
# The speed table of docs/results.md: every pruning case timed against the same random ResNet20 base in one
# process, each pair interleaved (benchmarks/speed.py). Speed does not depend on the weights, so a random base
# times like a trained one. Run it on a quiet machine: nothing else on the CPU.
#
#   bash benchmarks/scope_speed.sh > benchmarks/results/scope_speed.txt      # ~30 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
exec .venv/bin/python benchmarks/speed.py --rounds "${ROUNDS:-15}" --json benchmarks/results/scope_speed.json \
    --case kmeans_channel 0.5 --case l2_unit 0.5 --case kmeans_channel 0.8 --case l2_unit 0.8 \
    --case kmeans_shared 0.9 \
    --case l2_unit 0.5 scope=all --case l2_unit 0.5 scope=all round_to=8 \
    --case l2_unit 0.8 scope=all --case l2_unit 0.8 scope=all round_to=8 \
    --case kmeans_channel 0.8 scope=all
