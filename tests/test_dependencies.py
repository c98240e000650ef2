"""dvc.yaml states each stage's code deps exactly: the modules its script imports, followed within cnn_pruning.

A missing dep would leave a stale cached result after a code change; an extra one reruns a stage for nothing. Both
fail here, naming the stage and the files. The imports are read from the source (ast), including imports inside
functions, so a lazily imported module counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from cnn_pruning.core import schema
from cnn_pruning.evaluation import SweepConfig
from cnn_pruning.model import ModelConfig
from cnn_pruning.pruning.options import REGISTRY
from cnn_pruning.training import FinetuneConfig, TrainConfig
from helpers import REPO

SRC = REPO / "src"
# Modules whose changes decide no output, each with the reason; the traversal does not follow their imports either.
EXEMPT = {"cnn_pruning.tracking": "MLflow logging: what a run records changes no stage output"}
# Modules imported by name, which the source's import statements do not show: pruning.implementation() imports each
# registered method's module when something prunes with it, so whatever imports the package may run any of them.
BY_NAME = {"cnn_pruning.pruning": {f"cnn_pruning.pruning.{m.module}" for m in REGISTRY.values()}}
DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())


def module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def package_of(path: Path) -> str:
    """The package a source file's relative imports start from."""
    return ".".join(path.relative_to(SRC).parts[:-1])  # a package's __init__.py and its modules alike


def imported_modules(path: Path) -> set[str]:
    """cnn_pruning modules (and their parent packages) that importing `path` executes."""
    found = set()
    package = package_of(path) if path.is_relative_to(SRC) else ""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names if module_file(f"{target}.{a.name}")}
    ours = {m for m in found if m.split(".")[0] == "cnn_pruning" and module_file(m)}
    return {".".join(m.split(".")[:i]) for m in ours for i in range(1, len(m.split(".")) + 1)}


def closure(script: Path) -> set[Path]:
    seen, todo = set(), sorted(imported_modules(script))
    while todo:
        name = todo.pop()
        if name in seen or name in EXEMPT:
            continue
        seen.add(name)
        todo += sorted((imported_modules(module_file(name)) | BY_NAME.get(name, set())) - seen)
    return {module_file(m) for m in seen}


def declared_code(stage: dict) -> set[Path]:
    out = set()
    for dep in stage.get("deps", []):
        path = REPO / dep
        if dep.startswith("src/"):
            out |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return out


def shortest_deps(needed: set[Path]) -> list[str]:
    """`needed` as dvc.yaml states it: a package folder where the stage imports every module in it, else its
    modules one by one (the top package's own files always one by one)."""
    def walk(folder: Path) -> list[str]:
        out = []
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
            inside = set(sub.rglob("*.py"))
            if inside <= needed:
                out.append(str(sub.relative_to(REPO)))
            elif inside & needed:
                out += walk(sub)
        return sorted(out + [str(p.relative_to(REPO)) for p in folder.glob("*.py") if p in needed])
    return walk(SRC / "cnn_pruning")


@pytest.mark.parametrize("name", sorted(DVC_YAML["stages"]))
def test_code_deps_are_exactly_what_the_stage_imports(name):
    stage = DVC_YAML["stages"][name]
    script = next(word for word in stage["cmd"].split() if word.startswith("stages/"))
    assert script in stage["deps"], f"{name}: its script {script} is not a dep"
    needed, declared = closure(REPO / script), declared_code(stage)

    def rel(paths):
        return sorted(str(p.relative_to(REPO)) for p in paths)

    assert not needed - declared, f"{name}: dvc.yaml misses code deps {rel(needed - declared)}"
    assert not declared - needed, f"{name}: dvc.yaml lists code it does not import {rel(declared - needed)}"
    # and in the fewest lines: a whole package as its folder
    listed = sorted(d for d in stage["deps"] if d.startswith("src/"))
    assert listed == shortest_deps(needed), f"{name}: state its code deps as {shortest_deps(needed)}"


def test_the_train_stage_declares_every_recipe_key_and_the_model_section():
    params = DVC_YAML["stages"]["train"]["params"]
    declared = [p for p in params if p.startswith("train.") and not p.startswith("train.optimizer_params.")]
    assert declared == [f"train.{f.name}" for f in schema.fields(TrainConfig)]
    assert [p for p in params if not p.startswith("train.")] == [f"model.{f.name}" for f in schema.fields(ModelConfig)]


def test_only_the_train_stage_reads_the_model_section():
    """model.depth reaches later stages through the base models' files, so they rerun on it without declaring it."""
    readers = [name for name, stage in DVC_YAML["stages"].items()
               if any(str(p).startswith("model") for p in stage.get("params", []))]
    assert readers == ["train"]


def test_the_sweep_stage_declares_every_sweep_key_but_the_list_of_methods():
    declared = [p for p in DVC_YAML["stages"]["sweep"]["params"] if p.startswith("sweep.")]
    assert declared == [f"sweep.{f.name}" for f in schema.fields(SweepConfig) if f.name != "methods"]


@pytest.mark.parametrize("name, skipped", [
    ("control", {"seed", "distill", "distill_alpha", "distill_temperature"}),   # the control is never distilled
    ("point", {"seed", "distill", "distill_alpha", "distill_temperature"})])   # from its variant's file
def test_the_study_points_declare_the_finetune_recipe_but_its_seed(name, skipped):
    """The point's own seed replaces finetune.seed, so changing finetune.seed must rerun no point; the variant, not
    finetune.distill, decides whether a point is distilled (and the control never is), and the distillation's
    settings reach a point through its variant's file."""
    declared = [p for p in DVC_YAML["stages"][name]["params"] if p.startswith("finetune.")]
    assert declared == [f"finetune.{f.name}" for f in schema.fields(FinetuneConfig) if f.name not in skipped]


def test_variant_settings_reach_the_points_through_a_file_and_fine_tuning_through_the_pruned_model():
    """A change of prune.steps must rerun no one-shot point and no control fine-tune: the points read the settings
    from their variant's file, the finetune stage from the pruned model's meta; the stages that write those files
    declare the params (and write the same bytes where the setting does not apply)."""
    stages = DVC_YAML["stages"]
    gradual = {"prune.schedule", "prune.steps", "prune.prune_until", "finetune.distill_alpha",
               "finetune.distill_temperature"}
    for name in ("point", "control", "finetune"):
        assert not gradual & set(stages[name]["params"]), name
    assert set(stages["variant"]["params"]) == gradual - {"prune.schedule"}
    assert {"prune.schedule", "prune.steps", "prune.prune_until"} <= set(stages["prune"]["params"])
    assert "results/study/variants/${item.variant}.json" in stages["point"]["deps"]


def test_the_traversal_sees_relative_lazy_and_package_imports():
    """The helper itself: a relative import, one inside a function, and a package's __init__ all count."""
    needed = {str(p.relative_to(SRC)) for p in closure(REPO / "stages" / "download.py")}
    assert {"cnn_pruning/__init__.py", "cnn_pruning/datasets/__init__.py", "cnn_pruning/datasets/source.py",
            "cnn_pruning/core/errors.py"} <= needed
    assert "cnn_pruning/tracking/__init__.py" not in needed and "cnn_pruning/training/__init__.py" not in needed


def test_the_readmes_layout_names_every_module_and_stage():
    layout = (REPO / "README.md").read_text().split("## Layout", 1)[1]
    modules = {p.stem for p in (SRC / "cnn_pruning").rglob("*.py")} - {"__init__", "__main__"}
    assert not {m for m in modules if f"`{m}`" not in layout}, "README's layout misses modules"
    for package in ("core/", "datasets/", "model/", "training/", "pruning/", "evaluation/", "study/", "pipeline/",
                    "tracking/"):
        assert f"`{package}`" in layout


def stages_importing(module: str) -> set[str]:
    path = SRC / module
    return {name for name, stage in DVC_YAML["stages"].items()
            if path in closure(REPO / next(w for w in stage["cmd"].split() if w.startswith("stages/")))}


def test_editing_the_training_loop_reruns_training_only_and_the_speed_code_timing_only():
    """What a code change reruns (validate reruns on any code it checks, but writes the same marker, so it stops
    there): the training loop decides the trained models (the study's points fine-tune too), the speed code only
    the timings; how the study's results are summarised or drawn reruns no point."""
    assert stages_importing("cnn_pruning/training/__init__.py") == {"validate", "train", "finetune", "control", "point",
                                                                    "variant"}
    assert stages_importing("cnn_pruning/evaluation/speed.py") == {"validate", "evaluate_base", "evaluate", "sweep",
                                                        "study_speed"}
    assert stages_importing("cnn_pruning/study/report.py") == {"study"}  # validation needs only its settings
    assert stages_importing("cnn_pruning/study/charts.py") == {"study"}
    assert stages_importing("cnn_pruning/datasets/archive.py") == {"validate", "download"}
