"""DVC stage `validate`: check all of params.yaml against the one schema before any other stage runs.

    python stages/validate.py           # exit 1 naming every bad key, value and what is allowed

Every other stage depends on params.ok, whose content never changes: a params change reruns this check (a couple
of seconds) and then only the stages whose own params changed. A bad value stops `dvc repro` here, before DVC
deletes any other stage's outputs.
"""

import sys

from cnn_pruning import config, files, params
from cnn_pruning.stage import run_stage

OUT = "params.ok"


def main() -> None:
    config.check(params.load_params())
    files.write_text(OUT, "params.yaml passed cnn_pruning.config\n")  # constant: downstream reruns on their own params


if __name__ == "__main__":
    run_stage(main)
