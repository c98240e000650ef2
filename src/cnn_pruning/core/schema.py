"""Typed settings: each params.yaml key is one dataclass field that carries its default, what is allowed and a doc.

    @dataclass(frozen=True)
    class EvaluateConfig:
        rounds: int = setting(15, integer(1), "timed rounds per model and batch size")

    problems(EvaluateConfig, {"rounds": 0})       # [Problem("rounds", "bad", 0, "an integer >= 1")]
    build(EvaluateConfig, section)                # EvaluateConfig(rounds=...), or ValueError naming every problem
    rows(EvaluateConfig)                          # [(name, default, allowed, doc)] for the documentation

The dataclass is what the library takes; the same fields are what `validate` checks in params.yaml and what the
docs/settings.md lists (`python -m cnn_pruning.pipeline.config --show`), so a setting is defined in one place. Plain
Python only: every module that defines a section imports this one.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Rule:
    """What a value may be: a predicate and its description in words ("an integer >= 1")."""
    ok: Callable[[Any], bool]
    text: str


@dataclass(frozen=True)
class Problem:
    key: str
    kind: str        # "unknown" | "missing" | "bad"
    value: Any = None
    allowed: str = ""


def setting(default: Any, rule: Rule, doc: str) -> Any:
    """A dataclass field: `default` (copied for every instance when mutable), `rule`, and a one-line `doc`."""
    meta = {"rule": rule, "doc": doc}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def override(cls, name: str, default: Any) -> Any:
    """The field `name` of `cls` with another default, same rule and doc (a subclass's own default)."""
    f = {f.name: f for f in fields(cls)}[name]
    return setting(default, f.metadata["rule"], f.metadata["doc"])


# ---------------------------------------------------------------------------------------------- rules

def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _or_null(rule_ok, text: str, optional: bool) -> Rule:
    return Rule((lambda v: v is None or rule_ok(v)) if optional else rule_ok, text + (" or null" if optional else ""))


def integer(lo: int | None = None, hi: int | None = None, optional: bool = False) -> Rule:
    text = (f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}" if lo is not None
            else "an integer")
    return _or_null(lambda v: _is_int(v) and (lo is None or v >= lo) and (hi is None or v <= hi), text, optional)


def number(lo: float, hi: float, hi_open: bool = False, lo_open: bool = False) -> Rule:
    return Rule(lambda v: _is_number(v) and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi),
                f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")


def one_of(*choices, optional: bool = False) -> Rule:
    """One of `choices`, of the same type (True is not 1). Two choices read "A or B", more "one of A, B, C"."""
    words = [repr(c) for c in choices]
    text = " or ".join(words) if len(words) == 2 else "one of " + ", ".join(words)
    return _or_null(lambda v: any(v == c and type(v) is type(c) for c in choices), text, optional)


def of_type(*types: type, text: str, optional: bool = False) -> Rule:
    return _or_null(lambda v: isinstance(v, types) and not (isinstance(v, bool) and bool not in types), text, optional)


BOOLEAN = one_of(False, True)
FLAG = Rule(lambda v: v == "auto" or isinstance(v, bool), "true, false or 'auto'")
MD5 = Rule(lambda v: v is None or (isinstance(v, str) and len(v) == 32 and all(c in "0123456789abcdef"
                                                                              for c in v.lower())),
           "32 hex digits or null (null skips the check)")


def int_list(lo: int) -> Rule:
    return Rule(lambda v: isinstance(v, list) and all(_is_int(x) and x >= lo for x in v), f"a list of integers >= {lo}")


def ratio_list() -> Rule:
    return Rule(lambda v: isinstance(v, list) and bool(v) and all(_is_number(x) and 0 <= x < 1 for x in v),
                "a non-empty list of numbers in [0, 1)")


# ---------------------------------------------------------------------------------------------- checking

def fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "rule" in f.metadata]


def default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def problems(cls, values: dict, require_all: bool = True) -> list[Problem]:
    """Every unknown key, missing key (when `require_all`) and value its rule refuses, in field order."""
    known = {f.name: f for f in fields(cls)}
    found = [Problem(k, "unknown") for k in values if k not in known]
    for name, f in known.items():
        rule = f.metadata["rule"]
        if name not in values:
            if require_all:
                found.append(Problem(name, "missing", allowed=rule.text))
        elif not rule.ok(values[name]):
            found.append(Problem(name, "bad", values[name], rule.text))
    return found


def resolve(cls, values: dict) -> dict:
    """Defaults overlaid with `values`, integers made plain ints (numpy's too); checked with problems() first."""
    out = {f.name: default_of(f) for f in fields(cls)}
    out.update({k: int(v) if _is_int(v) else v for k, v in values.items()})
    return out


def build(cls, values: dict, *, ignore: tuple[str, ...] = ()):
    """An instance of `cls` from a params section (keys in `ignore` belong to someone else); a ValueError lists
    every problem, so a stage run on its own is as safe as one after `validate`."""
    own = {k: v for k, v in values.items() if k not in ignore}
    found = problems(cls, own, require_all=False)
    if found:
        raise ValueError(f"{cls.__name__}: " + "; ".join(describe(p) for p in found))
    return cls(**resolve(cls, own))


def describe(p: Problem, where: str = "") -> str:
    """One line naming the key, the bad value and what is allowed (the wording of params.yaml's checks)."""
    key = f"{where}.{p.key}" if where else p.key
    if p.kind == "unknown":
        return f"{key}: unknown key"
    if p.kind == "missing":
        return f"{key}: missing; expected {p.allowed}"
    return f"{key} = {p.value!r} is not allowed; expected {p.allowed}"


def rows(cls) -> list[tuple[str, Any, str, str]]:
    """(name, default, allowed, doc) per field, for the documentation."""
    return [(f.name, default_of(f), f.metadata["rule"].text, f.metadata["doc"]) for f in fields(cls)]
