#!/usr/bin/env bash
# The headline pipeline on the quick profile, as a new user runs it (the README's third `make run` command: the
# local JPEG copy of CIFAR-10 from ../shared, TARGETS=report), then its results kept as committed files for
# docs/results.md: the summary table, the accuracy-vs-speedup chart and the wall time, under a name that says
# the machine. Run it in a fresh clone, alone on the machine (the wall time is part of the result).
#
#   tools/quick_headline.sh LABEL        # LABEL names the machine, e.g. xeon-amx-2cpu
#
# Writes benchmarks/results/quick_headline-LABEL.md and docs/quick_headline-LABEL.png; commit both, then
# `python tools/results_page.py`.
set -euo pipefail
label="${1:?usage: tools/quick_headline.sh MACHINE-LABEL}"
cd "$(dirname "$0")/.."
start=$(date +%s)
make run PROFILE=quick TARGETS=report \
    SET="data.source=../shared/data/cifar10-jpg.tar.gz data.md5=34ec1c07be108afe1a3754f7105b69d6"
wall=$(( $(date +%s) - start ))
out="benchmarks/results/quick_headline-$label.md"
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
  echo "# The quick profile's headline pipeline"
  echo "<!-- provenance: commit $(git rev-parse --short HEAD); machine: $(nproc) CPUs, $cpu; profile: quick" \
       "(TARGETS=report, the JPEG copy of CIFAR-10); date: $(date -u +%Y-%m-%d) -->"
  echo
  echo "\`make run PROFILE=quick TARGETS=report SET=...\` took $(( wall / 60 )) min $(( wall % 60 )) s" \
       "(set-up included; $(nproc) CPUs, nothing else running)."
  echo
  sed '1{/^# /d}' reports/summary.md
} > "$out"
cp plots/report/accuracy_vs_speedup.png "docs/quick_headline-$label.png"
echo "$out, docs/quick_headline-$label.png: ${wall} s"
