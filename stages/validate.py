"""DVC stage `validate`: check all of params.yaml against its definitions before any other stage runs.

    python stages/validate.py --out params.ok     # exit 1 naming every bad key, value and what is allowed

Every other stage depends on params.ok, whose content never changes: a params change reruns this check (a couple
of seconds) and then only the stages whose own params changed. A bad value stops `dvc repro` here, before DVC
deletes any other stage's outputs. On a machine without CUDA it then prints how long the whole pipeline would take
here, from a probe of a few training steps (cnn_pruning.pipeline.estimate), and the quick profile's command when that
is long.
"""

import argparse
import time

from cnn_pruning.core import files, params
from cnn_pruning.core.cli import run_stage
from cnn_pruning.pipeline import config, estimate


def main(out: str) -> None:
    startup_s = time.process_time()  # this process's CPU time so far: interpreter and imports, what every stage pays
    values = params.load_params()
    config.check(values)
    # Constant (downstream stages rerun on their own params), so its bytes never change: not even when the
    # validating module moved (to cnn_pruning.pipeline.config).
    files.write_text(out, "params.yaml passed cnn_pruning.config\n")
    line = estimate.report(values, startup_s)
    if line:
        print(line)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", required=True, help="marker file written when params.yaml is valid")

if __name__ == "__main__":
    run_stage(main, parser)
