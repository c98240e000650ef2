"""DVC stage `variant@<name>`: the settings one study variant runs with, in a file its points depend on.

    python stages/study_variant.py gradual_distill --out results/study/variants/gradual_distill.json

Reads prune.steps, prune.prune_until, finetune.distill_alpha and finetune.distill_temperature, and writes only the
ones the variant uses (cnn_pruning.study.point.variant_settings): `oneshot` writes the same bytes whatever they say,
so a
change of prune.steps reruns this cheap stage for every variant but the points of the variants that do not use it
stay cached (DVC compares the file, not the params).
"""

import argparse

from cnn_pruning import study
from cnn_pruning.core import files, params
from cnn_pruning.core.cli import run_stage
from cnn_pruning.study import point


def main(name: str, out: str) -> None:
    settings = point.variant_settings(name, params.section("prune"), params.section("finetune"))
    files.write_json(out, settings)
    print(f"variant {name}: {settings}")


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("name", help="a study variant: " + ", ".join(study.VARIANTS))
parser.add_argument("--out", required=True, help="the variant's settings (JSON)")

if __name__ == "__main__":
    run_stage(main, parser)
