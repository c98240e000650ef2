"""params.yaml, checked as a whole before any stage runs, and documented from the same definitions.

    python -m cnn_pruning.pipeline.config params.yaml      # exit 1 with one line per problem, 0 when valid
    python -m cnn_pruning.pipeline.config --show    # every setting: default, what is allowed, what it does (Markdown)
    python -m cnn_pruning.pipeline.config --update docs/settings.md   # rewrite the page's copy of those tables
    errors = config.problems(params_dict)          # [] when valid

Each section is one dataclass, defined beside the code that uses it (SECTIONS below); its fields carry the
default, the rule and a one-line doc (cnn_pruning.core.schema). This module adds only what spans sections: optimizer
names and their keyword arguments, the base model among the trained ones, methods against the registry, options
against each method's own `Options`, a local data source that must exist.

DVC deletes a stage's outputs before it runs the stage, so a stage that checked only its own section at start-up
would already have lost them. The `validate` stage runs this first; every other stage depends on its output, whose
content never changes, so a change to one section reruns validation (a second or two) and then only the stages
that read that section. Each problem names the key, the bad value and what is allowed.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from .. import pruning
from ..core import schema
from ..core.errors import UserError
from ..core.params import TrackingConfig
from ..datasets.prepare import DataConfig
from ..evaluation import EvaluateConfig, SweepConfig
from ..model import ModelConfig
from ..study import StudyConfig
from ..training import BaseTrainingConfig, FinetuneConfig
from ..training.recipe import optimizer_class

# params.yaml's sections, in file order, and the dataclass that defines each.
SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": BaseTrainingConfig,
                             "prune": pruning.PruneConfig,
                             "finetune": FinetuneConfig, "evaluate": EvaluateConfig, "sweep": SweepConfig,
                             "study": StudyConfig, "tracking": TrackingConfig}


class ConfigError(UserError, ValueError):
    """params.yaml breaks the schema; the message lists every problem."""


def optimizer_problems(key: str, name: Any, hparams: Any) -> list[str]:
    """A torch.optim class name (any case) and keyword arguments its constructor accepts, with an lr > 0."""
    try:
        optimizer_class(name, hparams)
    except ValueError as e:
        return [f"{key}: {e}"]
    return []


def source_problems(data: dict) -> list[str]:
    """A null data.source needs a dataset with an official tarball; a local one (path or file:// URL, relative to
    the project root) must exist: checked here, because once the download stage starts DVC has already deleted the
    data it would replace. URLs are checked on download."""
    from ..core.params import project_root
    from ..datasets.dataset import DataError
    from ..datasets.prepare import official_source
    from ..datasets.source import locate

    try:
        source, _ = official_source(data["name"], data["source"], data["md5"])
        if data["source"] is not None:
            locate(source, project_root())
    except DataError as e:
        return [str(e)]
    return []


def section_problems(params: dict) -> list[str]:
    """Unknown sections, and in each section unknown keys, missing keys and values their rule refuses."""
    out = [f"unknown section {s!r}; allowed: {', '.join(SECTIONS)}" for s in params if s not in SECTIONS]
    for section, cls in SECTIONS.items():
        names = ", ".join(f.name for f in schema.fields(cls))
        values = params.get(section)
        if not isinstance(values, dict):
            out.append(f"missing section {section!r} (a mapping with keys {names})")
            continue
        for p in schema.problems(cls, values):
            out.append(schema.describe(p, section) + (f"; allowed: {names}" if p.kind == "unknown" else ""))
    return out


def method_problems(prune: dict, sweep: dict, study: dict) -> list[str]:
    """Methods against the registry (plus the control for prune.methods) and the named variants defined in
    prune.options (`name: {method: <registered>, options...}`), and one options entry per registered method."""
    out = []
    criteria = tuple(m for m in pruning.METHODS if m not in pruning.BASELINES)
    known = (*criteria, pruning.CONTROL, *pruning.BASELINES)  # the methods, the control, what they must beat
    variants = tuple(m for m, opts in prune["options"].items()
                     if m not in known and isinstance(opts, dict) and pruning.VARIANT_KEY in opts)
    for key, methods, allowed in (("prune.methods", prune["methods"], known + variants),
                                  ("sweep.methods", sweep["methods"], pruning.METHODS + variants),
                                  ("study.methods", study["methods"], pruning.METHODS + variants)):
        if not methods:
            out.append(f"{key} is empty; list at least one of {', '.join(allowed)}")
        for m in methods:
            if m not in allowed:
                out.append(f"{key}: unknown method {m!r}; allowed: {', '.join(allowed)}, or a variant of your own "
                           f"defined in prune.options as `{m}: {{{pruning.VARIANT_KEY}: <a method>, <options>}}`")
        if len(set(map(str, methods))) != len(methods):
            out.append(f"{key} = {methods} lists a method twice")
    for m, opts in prune["options"].items():
        if not isinstance(opts, dict):
            out.append(f"prune.options.{m} = {opts!r} is not allowed; expected a mapping of options")
        elif m == pruning.CONTROL and opts:
            out.append(f"prune.options.{m} = {opts!r} is not allowed; the control has no options, expected {{}}")
        elif m not in known and pruning.VARIANT_KEY not in opts:
            out.append(f"prune.options: unknown method {m!r}; allowed: {', '.join(known)}, or a named variant "
                       f"`{m}: {{{pruning.VARIANT_KEY}: <one of {', '.join(pruning.METHODS)}>, <options>}}`")
        elif m != pruning.CONTROL:
            try:
                method, options = pruning.resolve(m, prune["options"])
                pruning.validate(method, prune["ratio"], options)
            except ValueError as e:
                out.append(f"prune.options.{m}: {e}")
    # DVC needs every params key a stage declares to exist: one entry per method, `{}` for its defaults.
    for m in known:
        if m not in prune["options"]:
            out.append(f"prune.options has no entry for {m!r}; add `{m}: {{}}` for its defaults")
    return out


def problems(params: Any) -> list[str]:
    """Every way `params` breaks the schema, as readable lines; [] when it is valid."""
    if not isinstance(params, dict):
        return [f"params.yaml must be a mapping of sections, got {type(params).__name__}"]
    out = section_problems(params)
    if out:
        return out  # the cross-section checks below assume the shapes are right

    train, prune, finetune = params["train"], params["prune"], params["finetune"]
    out += source_problems(params["data"])
    if not train["optimizers"]:
        out.append("train.optimizers is empty; list at least one optimizer (e.g. [sgd])")
    for opt in train["optimizers"]:
        if opt not in train["optimizer_params"]:
            # the name first: a typo must list the allowed optimizers, not ask for settings of a non-optimizer
            named = optimizer_problems("train.optimizers", opt, {})
            out += named or [f"train.optimizer_params has no entry for {opt!r} (train.optimizers lists it); "
                             "add its lr"]
        else:
            out += optimizer_problems("train.optimizers", opt, train["optimizer_params"][opt])
    if len(set(train["optimizers"])) != len(train["optimizers"]):
        out.append(f"train.optimizers = {train['optimizers']} lists an optimizer twice")
    out += optimizer_problems("finetune.optimizer", finetune["optimizer"], finetune["optimizer_params"])
    if prune["base"] not in train["optimizers"]:
        out.append(f"prune.base = {prune['base']!r} is not among the trained optimizers {train['optimizers']}")
    return out + method_problems(prune, params["sweep"], params["study"]) + study_problems(params["study"])


def study_problems(study: dict) -> list[str]:
    """Each study point once: no ratio or seed listed twice, at least one seed (the control needs one)."""
    out = [] if study["seeds"] else ["study.seeds is empty; list at least one seed (e.g. [0, 1, 2])"]
    for key in ("ratios", "seeds"):
        if len(set(study[key])) != len(study[key]):
            out.append(f"study.{key} = {study[key]} lists a value twice")
    return out


def check(params: Any) -> None:
    """Raise ConfigError listing every problem, or return quietly."""
    found = problems(params)
    if found:
        raise ConfigError("params.yaml is not valid:\n  " + "\n  ".join(found))


# ---------------------------------------------------------------------------------------------- documentation

def _cell(value: Any) -> str:
    """A value as params.yaml spells it (YAML flow style: null, true, [a, b], {k: v})."""
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True, width=10**6)
    return text.removesuffix("\n...\n").strip().replace("|", "\\|")


def _table(cls, prefix: str) -> list[str]:
    lines = ["| key | default | allowed | what it does |", "|---|---|---|---|"]
    for name, default, allowed, doc in schema.rows(cls):
        lines.append(f"| `{prefix}{name}` | `{_cell(default)}` | {_cell(allowed)} | {_cell(doc)} |")
    return lines


def settings_markdown() -> str:
    """Every setting of every section and every method's options, as Markdown tables (docs/settings.md's copy)."""
    lines = []
    for section, cls in SECTIONS.items():
        summary = cls.__doc__.strip().splitlines()[0].split(":", 1)[1].strip()  # "params.yaml's x section: ..."
        lines += [f"**{section}**: {summary}", "", *_table(cls, f"{section}."), ""]
    for method in pruning.METHODS:
        lines += [f"**prune.options.{method}**: {pruning.options_class(method).__doc__.strip()}", "",
                  *_table(pruning.options_class(method), f"{method}."), ""]
    lines += [f"**Named variants**: an entry of prune.options that is not a method but has `{pruning.VARIANT_KEY}:` "
              "runs that method with the options beside it, under its own name in prune.methods, sweep.methods and "
              "study.methods, e.g. `l2_unit_all: {method: l2_unit, scope: all}`.", ""]
    return "\n".join(lines).rstrip() + "\n"


SETTINGS_BEGIN, SETTINGS_END = "<!-- settings: python -m cnn_pruning.pipeline.config --show -->\n", "<!-- /settings -->"


def update_page(path: str) -> None:
    """Replace what stands between the page's settings markers with settings_markdown()."""
    from ..core.files import replace_block, write_text

    updated = replace_block(open(path).read(), SETTINGS_BEGIN, SETTINGS_END, settings_markdown())
    if updated is None:
        raise ConfigError(f"{path}: no {SETTINGS_BEGIN.strip()} ... {SETTINGS_END} block to update")
    write_text(path, updated)


def main(argv: list[str]) -> int:
    from ..core.params import load_params

    if argv[:1] == ["--show"]:
        print(settings_markdown(), end="")
        return 0
    if argv[:1] == ["--update"] and len(argv) == 2:
        update_page(argv[1])
        print(f"{argv[1]}: settings tables updated")
        return 0
    path = argv[0] if argv else "params.yaml"
    try:
        check(load_params(path))
    except (ConfigError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{path}: valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
