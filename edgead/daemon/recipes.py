"""Recipes: several products on one station, each judged by its own bundle, reference, ROIs and decision.

:func:`load_recipes` loads **every** recipe through :func:`edgead.daemon.model.load_model` (the same admission,
warm-up and input checks as a one-model station) before the station opens, or before a reload swaps anything in;
one bad recipe fails the start (or the reload) naming it. The station's model component is the
:class:`RecipeBook`: the loop calls ``align``/``infer_rois``/``model_hash`` on it, and it answers with the recipe in
force. :meth:`RecipeBook.select` switches recipe; the station calls it only between two parts, so a part is
judged by one recipe from capture to verdict, and its record names it.

A request names a recipe by number (a Modbus register, ``R2`` in an ASCII telegram) or by name (OPC UA, ``Rhousing-a``).
An unknown one raises :class:`UnknownRecipe`; the station answers that part fail-safe and records the request.

Example:
    >>> book = load_recipes(load_station("station.yaml"))          # doctest: +SKIP
    >>> book.select(2).name, book.model_hash[:12]                   # doctest: +SKIP
    ('housing-b', '3f0c...')
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from edgead.contract.decide import RoiPrediction
from edgead.daemon.admission import Admission
from edgead.daemon.config import RecipeSection, StationConfig
from edgead.daemon.decide import DecisionConfig
from edgead.daemon.model import LoadedModel, Placed, load_model
from edgead.errors import ConfigError, EdgeadError

log = logging.getLogger(__name__)
ONE_MODEL = ""
"""The recipe name of a station without ``recipes`` (recorded as such; null in MQTT messages)."""


class SelectionError(EdgeadError):
    """What a trigger asked for cannot be applied (an unknown recipe, a lot id that is not text): that part is
    answered fail-safe and recorded with this message."""


class UnknownRecipe(SelectionError):
    """A PLC or OPC UA asked for a recipe this station does not have."""


def recipe_number(index: int, recipe: RecipeSection) -> int:
    """The number that selects ``recipe`` (its ``number``, else its position from 1)."""
    return recipe.number if recipe.number is not None else index + 1


def recipe_config(cfg: StationConfig, recipe: RecipeSection) -> StationConfig:
    """The station config as ``recipe`` sees it: its keys over the station's top-level ones."""
    changes = {name: getattr(recipe, name) for name in ("model", "reference", "rois", "alignment", "decision")
               if getattr(recipe, name) is not None}
    return dataclasses.replace(cfg, **changes, recipes=(), recipe=None)


@dataclass
class Recipe:
    """One loaded recipe: its name, number, model and (when the recipe has its own) decision section."""

    name: str
    number: int
    model: LoadedModel
    decision: DecisionConfig | None = None


class RecipeBook:
    """Every loaded recipe and the one in force (the station's model component).

    Args:
        recipes: the loaded recipes, in config order.
        active: the name of the recipe in force at start.
    """

    def __init__(self, recipes: list[Recipe], active: str):
        self.recipes = recipes
        self._by_name = {r.name: r for r in recipes}
        self._by_number = {r.number: r for r in recipes}
        self.active = self._by_name[active]
        self.switches = 0

    # --- what the loop calls: the recipe in force judges -------------------------------------------------------
    def align(self, image: np.ndarray) -> tuple[np.ndarray, float | None]:
        """The active recipe's :meth:`LoadedModel.align`."""
        return self.active.model.align(image)

    def place(self, image: np.ndarray) -> Placed:
        """The active recipe's :meth:`LoadedModel.place` (registration, then only what inference reads)."""
        return self.active.model.place(image)

    def infer_rois(self, image: np.ndarray | Placed) -> list[RoiPrediction]:
        """The active recipe's :meth:`LoadedModel.infer_rois`."""
        return self.active.model.infer_rois(image)

    @property
    def model_hash(self) -> str:
        """The active recipe's model hash."""
        return self.active.model.model_hash

    @property
    def good_quantiles(self) -> tuple[float, ...] | None:
        """The active recipe's good-score quantiles (the drift alarm's baseline)."""
        return self.active.model.good_quantiles

    @property
    def reference(self) -> np.ndarray | None:
        """The active recipe's reference image (the drift alarm compares brightness and contrast with it)."""
        return self.active.model.reference

    @property
    def name(self) -> str:
        """The active recipe's name (``""`` on a station without recipes)."""
        return self.active.name

    def decision(self, station: DecisionConfig) -> DecisionConfig:
        """The decision section in force: the active recipe's own, else the station's (``station``)."""
        return self.active.decision or station

    # --- selection -----------------------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """The recipe names, in config order (empty for a one-model station)."""
        return tuple(r.name for r in self.recipes if r.name != ONE_MODEL)

    def resolve(self, key: int | str) -> Recipe:
        """The recipe a request names: an int is a number; a text is a name, or a number written in digits.

        Raises:
            UnknownRecipe: naming the request and the recipes there are.
        """
        recipe = None
        if isinstance(key, int):
            recipe = self._by_number.get(key)
        else:
            recipe = self._by_name.get(key) or (self._by_number.get(int(key)) if key.isdigit() else None)
        if recipe is None or recipe.name == ONE_MODEL:
            known = ", ".join(f"{r.number} {r.name}" for r in self.recipes if r.name != ONE_MODEL) or "none"
            raise UnknownRecipe(f"recipe {key!r} is not a recipe of this station (recipes: {known})",
                                hint="select one of the configured recipes (STATION.yaml recipes:)")
        return recipe

    def select(self, key: int | str) -> Recipe:
        """Make the recipe ``key`` names the one in force (call only between parts).

        Raises:
            UnknownRecipe: the recipe in force stays.
        """
        recipe = self.resolve(key)
        if recipe is not self.active:
            log.info("recipe %s (%d) selected, was %s; model %s", recipe.name, recipe.number, self.active.name,
                     recipe.model.model_hash[:12])
            self.active = recipe
            self.switches += 1
        return recipe

    def close(self) -> None:
        """Close every recipe's engine (each even if another fails)."""
        errors = []
        for recipe in self.recipes:
            try:
                recipe.model.close()
            except Exception as exc:  # noqa: BLE001 -- the others must close too
                errors.append(exc)
        if errors:
            raise errors[0]


def load_recipes(cfg: StationConfig, keep: str | None = None,
                 admitted: dict[str, Admission] | None = None) -> RecipeBook:
    """Load every recipe of ``cfg`` (or its one model when it has none), verified and warmed up.

    Args:
        cfg: the station config.
        keep: the recipe to keep in force if the new config still has it (a reload keeps the PLC's choice);
            else ``cfg.recipe``, else the first.
        admitted: the admissions :func:`~edgead.daemon.preflight.check_station` made for this config, by recipe
            name (``""`` for the one model); a recipe not in it is admitted here.

    Returns:
        The :class:`RecipeBook`; nothing is left open when a recipe fails.

    Raises:
        EdgeadError: from :func:`~edgead.daemon.model.load_model`, with the recipe's name in front.
    """
    admitted = admitted or {}
    if not cfg.recipes:
        return RecipeBook([Recipe(ONE_MODEL, 0, load_model(cfg, admitted.get(ONE_MODEL)))], ONE_MODEL)
    loaded: list[Recipe] = []
    try:
        for i, section in enumerate(cfg.recipes):
            try:
                model = load_model(recipe_config(cfg, section), admitted.get(section.name))
            except EdgeadError as exc:  # same type (same exit code), the recipe named in front
                exc.message = f"recipes[{i}] {section.name!r}: {exc.message}"
                raise
            loaded.append(Recipe(section.name, recipe_number(i, section), model, section.decision))
    except BaseException:
        for recipe in loaded:
            recipe.model.close()
        raise
    names = [r.name for r in loaded]
    active = keep if keep in names else (cfg.recipe or names[0])
    if active not in names:  # load_station checked it; a config built in code may not have been
        for recipe in loaded:
            recipe.model.close()
        raise ConfigError(f"recipe: {active!r} is not in recipes", hint=f"one of {', '.join(names)}")
    return RecipeBook(loaded, active)
