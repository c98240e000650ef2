"""The one schema for params.yaml: every key, its type and what is allowed, checked before any stage runs.

    python -m cnn_pruning.config params.yaml      # exit 1 with one line per problem, 0 when valid
    errors = config.problems(params_dict)          # [] when valid

DVC deletes a stage's outputs before it runs the stage, so a stage that checked only its own section at start-up
would already have lost them. The `validate` stage runs this first; every other stage depends on its output, whose
content never changes, so a change to one section reruns validation (a second or two) and then only the stages
that read that section. Each problem names the key, the bad value and what is allowed.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable

from .speed import RUNTIMES
from .train import SCHEDULES

PRECISIONS = ("f32", "bf16", "f16")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """params.yaml breaks the schema; the message lists every problem."""


# ---------------------------------------------------------------------------------------------- value checks
# A check returns None when the value is fine, else a description of what is allowed.

def integer(lo: int | None = None, optional: bool = False) -> Callable[[Any], str | None]:
    def check(v):
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
            return f"an integer >= {lo}" + (" or null" if optional else "") if lo is not None else "an integer"
    return check


def number(lo: float, hi: float, hi_open: bool = False) -> Callable[[Any], str | None]:
    def check(v):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v
        ok = ok and (v < hi if hi_open else v <= hi)
        if not ok:
            return f"a number in [{lo}, {hi}{')' if hi_open else ']'}"
    return check


def one_of(*allowed, optional: bool = False) -> Callable[[Any], str | None]:
    def check(v):
        if (v is None and optional) or (isinstance(v, (str, bool)) and v in allowed):
            return None
        return "one of " + ", ".join(map(repr, allowed)) + (" or null" if optional else "")
    return check


def kind(*types, optional: bool = False, what: str) -> Callable[[Any], str | None]:
    def check(v):
        if (v is None and optional) or (isinstance(v, types) and not (isinstance(v, bool) and bool not in types)):
            return None
        return what
    return check


def md5(v):
    if v is None or (isinstance(v, str) and len(v) == 32 and all(c in "0123456789abcdef" for c in v.lower())):
        return None
    return "32 hex digits or null (null skips the check)"


def flag(v):
    return None if v == "auto" or isinstance(v, bool) else "true, false or 'auto'"


def int_list(lo: int) -> Callable[[Any], str | None]:
    def check(v):
        if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= lo for x in v):
            return None
        return f"a list of integers >= {lo}"
    return check


def ratio_list(v):
    if isinstance(v, list) and v and all(number(0, 1, hi_open=True)(x) is None for x in v):
        return None
    return "a non-empty list of numbers in [0, 1)"


# ---------------------------------------------------------------------------------------------- the schema

RECIPE = {  # what train and finetune share (TrainConfig)
    "epochs": integer(1), "batch_size": integer(1), "schedule": one_of(*SCHEDULES),
    "warmup_epochs": number(0, 1e6), "milestones": int_list(0), "gamma": number(0, 1),
    "label_smoothing": number(0, 1, hi_open=True), "seed": integer(0), "device": one_of(*DEVICES),
    "channels_last": flag, "amp": flag, "eval_batch_size": integer(1),
}

SCHEMA: dict[str, dict[str, Callable]] = {
    "data": {"source": kind(str, what="a URL, file:// URL or path"), "md5": md5, "val_size": integer(0),
             "train_size": integer(1, optional=True), "test_size": integer(1, optional=True), "seed": integer(0)},
    "train": {"optimizers": kind(list, what="a list of optimizer names"),
              "optimizer_params": kind(dict, what="a mapping optimizer -> keyword arguments"), **RECIPE},
    "prune": {"methods": kind(list, what="a list of method names"), "ratio": number(0, 1, hi_open=True),
              "base": kind(str, what="an optimizer name from train.optimizers"),
              "options": kind(dict, what="a mapping method -> options")},
    "finetune": {"optimizer": kind(str, what="a torch.optim class name"),
                 "optimizer_params": kind(dict, what="keyword arguments of the optimizer"), **RECIPE},
    "evaluate": {"runtime": one_of(*RUNTIMES), "precision": one_of(*PRECISIONS), "batch_size": integer(1),
                 "rounds": integer(1), "warmup": integer(0), "threads": integer(1, optional=True),
                 "device": one_of(*DEVICES)},
    "sweep": {"methods": kind(list, what="a list of method names"), "ratios": ratio_list,
              "runtime": one_of(*RUNTIMES), "batch_size": integer(1), "rounds": integer(1),
              "eval_images": integer(1, optional=True), "threads": integer(1, optional=True),
              "device": one_of(*DEVICES)},
    "tracking": {"experiment": kind(str, what="an MLflow experiment name")},
}


def optimizer_problems(key: str, name: Any, hparams: Any) -> list[str]:
    """A torch.optim class name (any case) and keyword arguments its constructor accepts, with an lr > 0."""
    from .train import optimizer_class

    try:
        optimizer_class(name, hparams)
    except ValueError as e:
        return [f"{key}: {e}"]
    return []


def source_problems(source: str) -> list[str]:
    """A local data.source (path or file:// URL, relative to the project root) must exist: checked here, because
    once the download stage starts DVC has already deleted the data it would replace. URLs are checked on download."""
    from .data import DataError, locate
    from .params import project_root

    try:
        locate(source, project_root())
    except DataError as e:
        return [str(e)]
    return []


def problems(params: Any) -> list[str]:
    """Every way `params` breaks the schema, as readable lines; [] when it is valid."""
    from . import pruning  # the registry knows the methods and their options

    if not isinstance(params, dict):
        return [f"params.yaml must be a mapping of sections, got {type(params).__name__}"]
    out = [f"unknown section {s!r}; allowed: {', '.join(SCHEMA)}" for s in params if s not in SCHEMA]
    for section, fields in SCHEMA.items():
        values = params.get(section)
        if not isinstance(values, dict):
            out.append(f"missing section {section!r} (a mapping with keys {', '.join(fields)})")
            continue
        for key, value in values.items():
            if key not in fields:
                out.append(f"{section}.{key}: unknown key; allowed: {', '.join(fields)}")
        for key, check in fields.items():
            if key not in values:
                out.append(f"{section}.{key}: missing; expected {check(object()) or 'a value'}")
            elif (allowed := check(values[key])) is not None:
                out.append(f"{section}.{key} = {values[key]!r} is not allowed; expected {allowed}")
    if out:
        return out  # the cross-section checks below assume the shapes are right

    train, prune, finetune, sweep = params["train"], params["prune"], params["finetune"], params["sweep"]
    out += source_problems(params["data"]["source"])
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
    for key, methods, allowed in (("prune.methods", prune["methods"], pruning.METHODS + ("none",)),
                                  ("sweep.methods", sweep["methods"], pruning.METHODS)):
        if not methods:
            out.append(f"{key} is empty; list at least one of {', '.join(allowed)}")
        for m in methods:
            if m not in allowed:
                out.append(f"{key}: unknown method {m!r}; allowed: {', '.join(allowed)}")
        if len(set(map(str, methods))) != len(methods):
            out.append(f"{key} = {methods} lists a method twice")
    for m, opts in prune["options"].items():
        if m not in pruning.METHODS + ("none",):
            out.append(f"prune.options: unknown method {m!r}; allowed: {', '.join(pruning.METHODS + ('none',))}")
        elif not isinstance(opts, dict):
            out.append(f"prune.options.{m} = {opts!r} is not allowed; expected a mapping of options")
        elif m != "none":
            try:
                pruning.validate(m, prune["ratio"], opts)
            except ValueError as e:
                out.append(f"prune.options.{m}: {e}")
    for m in set(prune["methods"]) | set(sweep["methods"]):
        if m in pruning.METHODS + ("none",) and m not in prune["options"]:
            out.append(f"prune.options has no entry for {m!r}; add `{m}: {{}}` for its defaults")
    return out


def check(params: Any) -> None:
    """Raise ConfigError listing every problem, or return quietly."""
    found = problems(params)
    if found:
        raise ConfigError("params.yaml is not valid:\n  " + "\n  ".join(found))


def main(argv: list[str]) -> int:
    from .params import load_params

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
