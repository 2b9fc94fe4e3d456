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
from pathlib import Path

from edgead.contract.meta import BundleMeta, Task
from edgead.errors import BundleError

FRESH = "fresh"  # the strategy of a task learnt from scratch (Strategy.FRESH; kept here to stay import-light)


def now_utc() -> str:
    """The current time as the bundles write it."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def task_history(meta: BundleMeta) -> list[Task]:
    """The tasks a bundle has learnt, oldest first.

    Args:
        meta: the bundle's metadata (``Bundle.meta``).

    Returns:
        The ``tasks`` section, or one task derived from ``training`` for a bundle from ``edgead train``.

    Raises:
        BundleError: if neither section is usable.
    """
    if meta.tasks:
        return list(meta.tasks)
    training = meta.training
    if training is None or training.data is None:
        raise BundleError("bundle has neither a tasks nor a training section with the data folder",
                          hint="extend only bundles written by `edgead train` or `edgead update`")
    return [Task(name=Path(training.data).name, data=training.data, data_fingerprint=training.data_fingerprint or "",
                 n_images=training.n_images or 0, n_validation=training.n_validation or 0,
                 added_utc=meta.created_utc or "", strategy=FRESH)]


def unique_name(history: list[Task], name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... if a task of that name exists already."""
    taken = {t.name for t in history}
    if name not in taken:
        return name
    k = 2
    while f"{name}-{k}" in taken:
        k += 1
    return f"{name}-{k}"
