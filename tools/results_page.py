"""docs/results.md and the README's headline block, generated from the result files committed in the repo.

    python tools/results_page.py            # rewrite docs/results.md and the README's headline block
    python tools/results_page.py --check    # exit 1 if either is not what the files say (tests run this)

Each block is one committed file: its title, the command that reproduces it, its provenance line (commit, machine,
profile, date: the file's own `provenance:` line, which every result file carries in its first lines) and its
content (a Markdown file as it is; a text file from its summary marker on, the whole output folded below it).
Figures that have no committed file are not on the page: UNCOMMITTED names the script that reproduces each.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from cnn_pruning.core.files import replace_block

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "results.md"
README = REPO / "README.md"
# The README's headline: the quick profile's table and chart on the machine named, between these markers.
HEADLINE = "benchmarks/results/quick_headline-xeon-amx-2cpu.md"
HEADLINE_CHART = "docs/quick_headline-xeon-amx-2cpu.png"
BEGIN, END = "<!-- headline: python tools/results_page.py -->\n", "<!-- /headline -->"
PROVENANCE = re.compile(r"provenance: (.+?)(?:\s*-->)?\s*$")


@dataclass(frozen=True)
class Result:
    path: str           # relative to the repo
    title: str
    command: str        # what reproduces it
    summary_from: str = ""  # text files: the line that starts the part shown unfolded ("" = none: all folded)


SECTIONS: dict[str, list[Result]] = {
    "The quick profile's headline pipeline": [
        Result(HEADLINE, "Every model of the headline pipeline, quick profile (the README's table)",
               "tools/quick_headline.sh xeon-amx-2cpu  (in a fresh clone, ../shared beside it)"),
    ],
    "Inference speed of pruned architectures": [
        Result("benchmarks/results/scope_speed.txt", "Speedup over the dense base on the same runtime, per case",
               "bash benchmarks/scope_speed.sh > benchmarks/results/scope_speed.txt", summary_from="Summary:"),
        Result("benchmarks/results/layer_profile.txt", "Where the time goes per layer, and each runtime's kernels",
               "python benchmarks/layer_profile.py --base --case l2_unit 0.8 --case l2_unit 0.8 scope=all "
               "--case l2_unit 0.8 scope=all round_to=8 --iters 10 --top 5"),
    ],
    "kmeans_channel: merging a cluster against dropping it": [
        Result("benchmarks/results/merge_vs_drop.txt", "Accuracy right after pruning, merge vs drop, per scope",
               "python benchmarks/merge_vs_drop.py models/base/sgd.pt data/cifar10.npz", summary_from="scope"),
    ],
    "Tracking through a server outage": [
        Result("benchmarks/results/mlflow_outage.txt", "What MLflow's asynchronous logging keeps of an outage",
               "python benchmarks/mlflow_outage.py", summary_from="before the outage"),
    ],
    "What a stage and the test suite cost": [
        Result("benchmarks/results/stage_overhead-packages.md", "Each tiny stage's overhead, with the library in "
               "packages by concept", "python benchmarks/stage_overhead.py --label packages "
               "--out benchmarks/results/stage_overhead-packages.json"),
        Result("benchmarks/results/stage_overhead-after.md", "Each tiny stage's overhead beyond its own work (now)",
               "python benchmarks/stage_overhead.py --label after --out benchmarks/results/stage_overhead-after.json"),
        Result("benchmarks/results/stage_overhead-before.md", "The same, before the stages' start-up was cut",
               "python benchmarks/stage_overhead.py --rev a26910a --label before "
               "--out benchmarks/results/stage_overhead-before.json"),
        Result("benchmarks/results/test_durations-after.txt", "The suite's slowest tests (now)",
               "CI=true bash .ci/run  (in a fresh clone, ../shared beside it)"),
        Result("benchmarks/results/test_durations-before.txt", "The suite's slowest tests, before",
               "CI=true PYTEST_ARGS='--durations=0' bash .ci/run  (in a fresh clone of a26910a)"),
    ],
}

# Figures reported before the results were kept as files: rerun the script, commit its output, add it above.
UNCOMMITTED = {
    "the quick profile's whole pipeline with the study, and prune.ratio=0.9 after it": "tools/quick_run.sh",
    "the study on the quick profile's base (methods × ratios × 3 seeds)": "tools/reference_study.sh",
    "scope inner vs all after fine-tuning": "tools/scope_study.sh",
    "gradual pruning and distillation against one-shot": "tools/remedies_study.sh",
    "a ResNet56 quick run through every stage": "tools/resnet56_quick.sh",
    "training step time per depth": "python benchmarks/depth_epoch.py",
    "training throughput, our data path against torchvision's": "python benchmarks/train_throughput.py",
}


def provenance(path: Path, text: str) -> str:
    for line in text.splitlines()[:6]:
        found = PROVENANCE.search(line)
        if found:
            return found.group(1)
    raise SystemExit(f"{path}: no 'provenance: commit ...; machine: ...; profile: ...; date: ...' line in its "
                     "first 6 lines; every committed result file says where it came from")


def block(result: Result) -> list[str]:
    path = REPO / result.path
    text = path.read_text()
    lines = [f"### {result.title}", "", f"`{result.path}`: {provenance(path, text)}.", "",
             f"Reproduce: `{result.command}`", ""]
    body = [line for line in text.splitlines() if not PROVENANCE.search(line)]
    if path.suffix == ".md":
        return lines + [line for line in body if not line.startswith("# ")] + [""]  # its heading: the title above
    start = next((i for i, line in enumerate(body) if line.startswith(result.summary_from)), None) \
        if result.summary_from else None
    if start is not None:
        shown = body[start:]
        lines += (shown if shown[-1].startswith("|") else ["```", *shown, "```"]) + [""]
    return lines + ["<details><summary>the whole output</summary>", "", "```", *body, "```", "", "</details>", ""]


def page() -> str:
    lines = ["# Results", "",
             "Generated by `python tools/results_page.py` from the result files committed in the repo; every block",
             "names its file, the command that reproduces it and where it came from (commit, machine, profile, date).",
             "The machine is noisy (±20 % run to run): speedups are ratios measured side by side in one process.", ""]
    for section, results in SECTIONS.items():
        lines += [f"## {section}", ""]
        for result in results:
            lines += block(result)
    lines += ["## Not kept as files yet", "",
              "Reported earlier, without a committed result file, so not shown here; each script reproduces it:", ""]
    lines += [f"- {what}: `{script}`" for what, script in UNCOMMITTED.items()]
    return "\n".join(lines).rstrip() + "\n"


def headline() -> str:
    """The README's block: where the figures come from, the quick profile's first table, its chart."""
    path = REPO / HEADLINE
    text = path.read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    took = next((line for line in lines if line.startswith("`make run")), "")
    return "\n".join([f"The quick profile ({provenance(path, text)}). {took} A CPU-sized recipe (10,000 training "
                      "images, 15 + 5 epochs): bases near 70 %, not a converged ResNet20's ~92 %, so it ranks the "
                      "methods on this recipe rather than giving numbers to cite. How each figure is reproduced, "
                      "and more: [docs/results.md](docs/results.md).", "", *lines[start:end], "",
                      f"![Accuracy against measured speedup, quick profile]({HEADLINE_CHART})", ""])


def readme(current: str) -> str:
    updated = replace_block(current, BEGIN, END, headline())
    if updated is None:
        raise SystemExit(f"README.md: no {BEGIN.strip()} ... {END} block")
    return updated


def main(argv: list[str]) -> int:
    text = page()
    if argv == ["--check"]:
        stale = [f for f, want in ((PAGE, text), (README, readme(README.read_text()))) if f.read_text() != want]
        for f in stale:
            print(f"{f.relative_to(REPO)} is stale: run python tools/results_page.py", file=sys.stderr)
        return 1 if stale else 0
    if argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text(text)
    README.write_text(readme(README.read_text()))
    print(f"{PAGE.relative_to(REPO)}: {sum(len(r) for r in SECTIONS.values())} result files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
