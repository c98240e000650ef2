#!/usr/bin/env bash
# Run the tiny pipeline (the tests' settings, on a tiny image-folder archive it builds) at a git revision and print
# the md5 of every output that must not change when code is only reorganised: the data file; the data, train, prune
# and finetune metrics JSON; every model (.pt checkpoints, .rz compact files) and the study's point files (timings
# and speedups vary by nature and are left out: *.timing.json, the evaluate metrics, the study's speed files, the
# points' *_seconds).
#
#   tools/tiny_outputs.sh HEAD~3 > before.txt; tools/tiny_outputs.sh HEAD > after.txt; diff before.txt after.txt
#
# Optional: TARGETS="prune@kmeans_channel" runs only those stages (and what they need); KEEP=DIR copies the
# outputs there to compare them in detail.
# Uses the current checkout's .venv (make setup) for every revision; the work folder is removed afterwards. The
# tiny source is built once and kept (its path and md5 are recorded in the data file, so both runs must share it).
set -euo pipefail
rev="${1:?usage: tools/tiny_outputs.sh REV}"
here="$(cd "$(dirname "$0")/.." && pwd)"
py="$here/.venv/bin/python"
work="$(mktemp -d)"
source_dir="${TINY_SOURCE_DIR:-/tmp/cnn-pruning-tiny-source}"
trap 'rm -rf "$work"' EXIT
export PATH="$here/.venv/bin:$PATH" MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1 PYTHONWARNINGS=ignore

git -C "$here" worktree add -q --detach "$work/repo" "$rev"
trap 'git -C "$here" worktree remove --force "$work/repo"; rm -rf "$work"' EXIT
cd "$work/repo"
PYTHONPATH="$here/tests" "$py" - "$source_dir" <<'EOF'
import sys
from pathlib import Path
import helpers as conftest  # the tests' tiny source and settings, so this run is the tests' tiny pipeline
folder = Path(sys.argv[1])
source = folder / "cifar-tiny.tar.gz"
if not source.exists():
    folder.mkdir(parents=True, exist_ok=True)
    conftest.tar_gz(conftest.make_image_folder(folder / "cifar-tiny", 30, 10), source)
conftest.set_params(Path("."), {**conftest.TINY_OVERRIDES, "data": {**conftest.TINY_OVERRIDES["data"],
                                                                    "source": str(source)}})
EOF
# The package under test is this revision's: the venv's editable install points at the main checkout.
PYTHONPATH="$work/repo/src" dvc repro -q ${TARGETS:-} >"$work/repro.log" 2>&1 || { tail -30 "$work/repro.log" >&2; exit 1; }
[ -z "${KEEP:-}" ] || { mkdir -p "$KEEP"; cp -r metrics models results "$KEEP"/; }
find data metrics/data.json metrics/train metrics/prune metrics/finetune models -type f \
    \( -name '*.npz' -o -name '*.json' -o -name '*.pt' -o -name '*.rz' \) ! -name '*.timing.json' 2>/dev/null \
    | sort | xargs md5sum
# A study point records its fine-tune and teacher seconds beside its results: hashed without the *_seconds keys.
"$py" - results/study/points/*.json <<'EOF'
import hashlib, json, sys
for path in sys.argv[1:]:
    point = {k: v for k, v in json.load(open(path)).items() if not k.endswith("_seconds")}
    print(hashlib.md5(json.dumps(point, sort_keys=True).encode()).hexdigest(), f" {path} (without *_seconds)")
EOF
