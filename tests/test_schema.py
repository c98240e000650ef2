"""cnn_pruning.core.schema: a setting's rule refuses what it should, with words that say what is allowed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from cnn_pruning.core import schema
from cnn_pruning.core.schema import BOOLEAN, FLAG, integer, number, one_of, ratio_list, setting


@dataclass
class Example:
    """params.yaml's example section: a little of everything."""
    rounds: int = setting(15, integer(1), "timed rounds")
    seed: int = setting(0, integer(0, 9), "a small seed")
    ratio: float = setting(0.5, number(0, 1, hi_open=True), "fraction removed")
    mode: str = setting("a", one_of("a", "b", "c"), "a mode")
    merge: bool = setting(True, BOOLEAN, "merge or drop")
    ratios: list = setting([0.1, 0.5], ratio_list(), "a list of ratios")


@pytest.mark.parametrize("rule,good,bad,text", [
    (integer(1), [1, 10**9, np.int64(3)], [0, 1.5, True, "2", None], "an integer >= 1"),
    (integer(1, optional=True), [None, 2], [0], "an integer >= 1 or null"),
    (integer(0, 9), [0, 9], [-1, 10], "an integer in [0, 9]"),
    (number(0, 1, hi_open=True), [0, 0.5, 0.999], [1.0, -0.1, float("nan"), float("inf"), True, "half"],
     "a number in [0, 1)"),
    (one_of("a", "b", "c"), ["a", "c"], ["d", None, 1], "one of 'a', 'b', 'c'"),
    (BOOLEAN, [True, False], [1, 0, "yes", None], "False or True"),
    (FLAG, [True, False, "auto"], ["on", 1], "true, false or 'auto'"),
    (ratio_list(), [[0.5], [0, 0.9]], [[], [1.0], 0.5, [True]], "a non-empty list of numbers in [0, 1)"),
])
def test_rules_accept_and_refuse_and_say_what_is_allowed(rule, good, bad, text):
    assert all(rule.ok(v) for v in good), [v for v in good if not rule.ok(v)]
    assert not any(rule.ok(v) for v in bad), [v for v in bad if rule.ok(v)]
    assert rule.text == text


def test_problems_lists_unknown_missing_and_bad_in_field_order():
    found = schema.problems(Example, {"rounds": 0, "mode": "a", "merge": 1, "rounds_": 3})
    assert [(p.key, p.kind) for p in found] == [("rounds_", "unknown"), ("rounds", "bad"), ("seed", "missing"),
                                                ("ratio", "missing"), ("merge", "bad"), ("ratios", "missing")]
    assert schema.describe(found[1], "example") == "example.rounds = 0 is not allowed; expected an integer >= 1"
    assert schema.describe(found[2], "example") == "example.seed: missing; expected an integer in [0, 9]"
    assert not schema.problems(Example, {"rounds": 3}, require_all=False)


def test_build_fills_defaults_makes_ints_plain_and_names_every_problem():
    built = schema.build(Example, {"rounds": np.int64(4)})
    assert built == Example(rounds=4) and type(built.rounds) is int
    assert built.ratios == [0.1, 0.5] and Example().ratios is not Example().ratios  # no shared mutable default
    with pytest.raises(ValueError, match=r"Example: rounds = 0 is not allowed.*; mode = 'z' is not allowed"):
        schema.build(Example, {"rounds": 0, "mode": "z"})


def test_rows_document_every_field():
    rows = schema.rows(Example)
    assert [r[0] for r in rows] == ["rounds", "seed", "ratio", "mode", "merge", "ratios"]
    assert rows[0] == ("rounds", 15, "an integer >= 1", "timed rounds")
