"""Gradual pruning: the final ratio reached in steps during fine-tuning, on Zhu & Gupta's (2017) cubic schedule.

    schedule = Schedule(kind="gradual", steps=10, prune_until=0.5)   # prune.schedule, prune.steps, prune.prune_until
    plan(0.9, schedule, total_iterations=400)      # [(0, 0.244...), (20, 0.458...), ..., (180, 0.9)]
    pruner = GradualPruner(base, "l2_unit", 0.9, {}, schedule, total_iterations=400)
    history = train.fit(base, ds, ..., changes=pruner)   # fit() asks the pruner before every iteration
    pruner.model                                   # the pruned, fine-tuned model at the end

Step k of n (k = 1..n) prunes to s_k = s_f * (1 - (1 - k/n)^3) and happens before iteration floor((k - 1)/n * U),
U = prune_until * total iterations: the first step at the first iteration, the last (s_n = s_f exactly) before U,
training between the steps and at the final ratio after them. Steps are placed by iteration, not epoch, so a short
fine-tune holds many steps. With steps = 1 gradual is one-shot pruning (the same model, pruned before iteration 0).
Each step is pruning.prune() continuing from the last step's result (counts of the original model; what was pruned
stays pruned), so every method's invariants hold after every step and the end has exactly one-shot's counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.schema import integer, number, one_of, setting
from ..model import CifarResNet, build

SCHEDULES = ("oneshot", "gradual")


@dataclass
class Schedule:
    """How the ratio is reached (params.yaml's prune.schedule, prune.steps, prune.prune_until)."""
    schedule: str = setting("oneshot", one_of(*SCHEDULES), "oneshot: prune once, then fine-tune (the prune stage's "
                            "model); gradual: prune in steps during fine-tuning, from the base model")
    steps: int = setting(10, integer(1, 10_000), "gradual: pruning steps (Zhu & Gupta's cubic schedule)")
    prune_until: float = setting(0.5, number(0, 1, lo_open=True),
                                 "gradual: fraction of the fine-tune iterations by which the final ratio is reached")

    def record(self) -> dict:
        """The settings that matter, as plain data for a checkpoint's meta or a file: only the kind for one-shot, so
        one-shot records stay byte-identical whatever steps and prune_until say (and what depends on them cached)."""
        if self.schedule == "oneshot":
            return {"schedule": "oneshot"}
        return {"schedule": self.schedule, "steps": self.steps, "prune_until": self.prune_until}


def step_ratio(final: float, k: int, steps: int) -> float:
    """The ratio after step k of `steps` (1-based): final * (1 - (1 - k/steps)^3); exactly `final` at the last."""
    return final * (1.0 - (1.0 - k / steps) ** 3)


def plan(final: float, schedule: Schedule, total_iterations: int) -> list[tuple[int, float]]:
    """(iteration before which the step happens, ratio after it) for every step, in order."""
    until = schedule.prune_until * total_iterations
    return [(math.floor((k - 1) / schedule.steps * until), step_ratio(final, k, schedule.steps))
            for k in range(1, schedule.steps + 1)]


class GradualPruner:
    """Prunes the model train.fit() is training at the planned iterations (fit's `changes` protocol: at(),
    state_dict(), load_state_dict(), model). Each step continues from the last (pruning.prune's `previous`)."""

    def __init__(self, model: CifarResNet, method: str, ratio: float, options: dict, schedule: Schedule,
                 total_iterations: int):
        from . import validate
        ratio, self.options = validate(method, ratio, options)
        self.method, self.ratio, self.model = method, ratio, model
        self.steps = plan(ratio, schedule, total_iterations)
        self.done, self.info = 0, None

    def at(self, iteration: int, model: CifarResNet) -> CifarResNet | None:
        """Before `iteration`: the model after every step due by then (a new object), or None if none is due."""
        from . import prune
        before = self.done
        while self.done < len(self.steps) and self.steps[self.done][0] <= iteration:
            result = prune(model, self.method, self.steps[self.done][1], previous=self.info, **self.options)
            model, self.info, self.done = result.model, result.info, self.done + 1
        if self.done == before:
            return None
        self.model = model
        return model

    @property
    def ratio_now(self) -> float:
        return self.steps[self.done - 1][1] if self.done else 0.0

    def state_dict(self) -> dict:
        """Plain data (loads with weights_only=True): steps done, the last step's info, the architecture and masks."""
        return {"done": self.done, "info": self.info, "spec": self.model.spec(),
                "masks": {k: v.detach().cpu() for k, v in self.model.masks.items()}}

    def load_state_dict(self, state: dict) -> CifarResNet:
        """Back to a saved state: the model of that architecture and masks (its weights are loaded by the caller)."""
        self.done, self.info = state["done"], state["info"]
        with torch.random.fork_rng(devices=[]):  # a fresh init must not move the training's random stream
            model = build(state["spec"])
        model.masks = {k: v.bool() for k, v in state["masks"].items()}
        self.model = model
        return model
