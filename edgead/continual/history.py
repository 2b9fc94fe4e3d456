"""The ``tasks`` section of a bundle's metadata: one entry per task (variant) the model has learnt, oldest first.

Each entry is ``{name, data, data_fingerprint, n_images, n_validation, added_utc, strategy}``. A bundle written by
``edgead train`` has no ``tasks`` section: its single task is derived from the ``training`` section
(:func:`task_history`), with strategy ``fresh``.

Example:
    >>> history = task_history(bundle.meta)                       # doctest: +SKIP
    >>> [t.name for t in history]                                 # doctest: +SKIP
    ['piped_pa_bdp01_tl', 'piped_pa_bft01_tl']
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

from edgead.errors import BundleError

FRESH = "fresh"  # the strategy of a task learnt from scratch (Strategy.FRESH; kept here to stay import-light)


@dataclass(frozen=True)
class Task:
    """One learnt task.

    Attributes:
        name: short name (default: the data folder's name); unique within a bundle.
        data: the data folder, absolute, as given at training time.
        data_fingerprint: ``edgead.data.fingerprint`` of its ``train/good`` images.
        n_images: images the model was fitted on.
        n_validation: held-out good images of that task (the threshold's calibration set at the time).
        added_utc: when the task was added (ISO 8601, UTC).
        strategy: how it was added (``edgead.continual.strategies.Strategy`` value).
    """

    name: str
    data: str
    data_fingerprint: str
    n_images: int
    n_validation: int
    added_utc: str
    strategy: str

    def to_dict(self) -> dict:
        """Plain YAML-safe mapping."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Task":
        """Inverse of :meth:`to_dict`.

        Raises:
            BundleError: if a key is missing.
        """
        try:
            return cls(name=str(d["name"]), data=str(d["data"]), data_fingerprint=str(d["data_fingerprint"]),
                       n_images=int(d["n_images"]), n_validation=int(d["n_validation"]),
                       added_utc=str(d["added_utc"]), strategy=str(d["strategy"]))
        except KeyError as exc:
            raise BundleError(f"bundle tasks entry {d!r} lacks {exc}",
                              hint="the tasks section was edited by hand; restore it from the bundle's source") from exc


def now_utc() -> str:
    """The current time as the bundles write it."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def task_history(meta: dict) -> list[Task]:
    """The tasks a bundle has learnt, oldest first.

    Args:
        meta: the bundle's metadata (``Bundle.meta``).

    Returns:
        The ``tasks`` section, or one task derived from ``training`` for a bundle from ``edgead train``.

    Raises:
        BundleError: if neither section is usable.
    """
    if meta.get("tasks"):
        return [Task.from_dict(t) for t in meta["tasks"]]
    training = meta.get("training")
    if not isinstance(training, dict) or "data" not in training:
        raise BundleError("bundle has neither a tasks nor a training section with the data folder",
                          hint="extend only bundles written by `edgead train` or `edgead update`")
    return [Task(name=Path(training["data"]).name, data=str(training["data"]),
                 data_fingerprint=str(training.get("data_fingerprint", "")),
                 n_images=int(training.get("n_images", 0)), n_validation=int(training.get("n_validation", 0)),
                 added_utc=str(meta.get("created_utc", "")), strategy=FRESH)]


def unique_name(history: list[Task], name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... if a task of that name exists already."""
    taken = {t.name for t in history}
    if name not in taken:
        return name
    k = 2
    while f"{name}-{k}" in taken:
        k += 1
    return f"{name}-{k}"
