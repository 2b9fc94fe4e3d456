"""The continual-update strategies: one table from :class:`Strategy` to its update function, and which strategies
each model type allows (its default first).

| strategy           | models                                    | what it does                                     |
|--------------------|-------------------------------------------|--------------------------------------------------|
| ``bank-extension`` | patchcore                                 | coreset over old bank + new features, old kept   |
| ``per-task``       | padim                                     | one Gaussian stack per task, lowest map sum wins |
| ``running``        | padim                                     | one Gaussian of all tasks (exact merge of sums)  |
| ``replay``         | draem, efficientad, vt-adl, piade, ae-knn | continue training, replay mixed into each batch  |
| ``naive``          | the trained models                        | continue training on the new task only (forgets) |
| ``fresh``          | all                                       | a new model on the new task only                 |
"""
from __future__ import annotations

from enum import Enum
from typing import Callable

from edgead.errors import ConfigError


class Strategy(str, Enum):
    """How a bundle learns a new task."""

    BANK_EXTENSION = "bank-extension"
    PER_TASK = "per-task"
    RUNNING = "running"
    REPLAY = "replay"
    NAIVE = "naive"
    FRESH = "fresh"


_TRAINED = (Strategy.REPLAY, Strategy.NAIVE, Strategy.FRESH)

ALLOWED: dict[str, tuple[Strategy, ...]] = {
    "patchcore": (Strategy.BANK_EXTENSION, Strategy.FRESH),
    "padim": (Strategy.PER_TASK, Strategy.RUNNING, Strategy.FRESH),
    "draem": _TRAINED,
    "efficientad": _TRAINED,
    "vt-adl": _TRAINED,
    "piade": _TRAINED,
    "ae-knn": _TRAINED,
}
"""Model type -> the strategies it allows, the default first."""

USES_REPLAY = frozenset({Strategy.REPLAY})
"""Strategies that train on replay images (the others keep only the validation images)."""


def _lazy(module: str, name: str) -> Callable:
    def call(ctx):
        import importlib

        return getattr(importlib.import_module(module), name)(ctx)

    call.__name__ = name
    return call


STRATEGIES: dict[Strategy, Callable] = {
    Strategy.BANK_EXTENSION: _lazy("edgead.continual.banks", "patchcore_bank_extension"),
    Strategy.PER_TASK: _lazy("edgead.continual.banks", "padim_per_task"),
    Strategy.RUNNING: _lazy("edgead.continual.banks", "padim_running"),
    Strategy.REPLAY: _lazy("edgead.continual.trained", "replay"),
    Strategy.NAIVE: _lazy("edgead.continual.trained", "naive"),
    Strategy.FRESH: _lazy("edgead.continual.trained", "fresh"),
}
"""Strategy -> ``update(ctx: UpdateContext) -> UpdateOutcome`` (modules imported on call: they need torch)."""


def resolve_strategy(model_type: str, strategy: str | Strategy | None) -> Strategy:
    """The strategy to use for a model type (its default when None).

    Raises:
        ConfigError: if the strategy is unknown or not allowed for the model type (lists the allowed ones).
    """
    allowed = ALLOWED.get(model_type)
    if allowed is None:
        raise ConfigError(f"model type {model_type!r} has no continual-update strategy",
                          hint=f"continual updates support {sorted(ALLOWED)}")
    if strategy is None:
        return allowed[0]
    try:
        chosen = Strategy(strategy)
    except ValueError:
        raise ConfigError(f"unknown strategy {strategy!r}",
                          hint=f"use one of {[s.value for s in allowed]} for {model_type}") from None
    if chosen not in allowed:
        raise ConfigError(f"strategy {chosen.value!r} does not apply to {model_type}",
                          hint=f"use one of {[s.value for s in allowed]} (default {allowed[0].value})")
    return chosen
