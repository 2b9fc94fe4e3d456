"""The task matrix of a continual run (``edgead eval --tasks``), as in the continual anomaly-detection literature.

``a[i][j]`` is the metric (image AUROC; pixel F1 alongside) on task ``j``'s test split of the bundle written after
learning task ``i``. Only ``j <= i`` is computed unless ``full=True`` (the upper triangle measures forward
transfer, rarely needed). From the last row:

* **average forgetting** ``F = mean_{j < T-1} (max_{j <= i < T-1} a[i][j] - a[T-1][j])`` (how much of the best
  metric ever reached on an old task is lost at the end);
* **average metric** ``mean_j a[T-1][j]``;
* **gap to one model per task**: ``mean_j (s_j - a[T-1][j])`` given single-task bundles ``s_j`` (each trained on
  task ``j`` alone and evaluated on it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from edgead.errors import ConfigError

METRICS = ("image_auroc", "pixel_f1")


@dataclass(frozen=True)
class TaskMatrix:
    """Result of :func:`evaluate_tasks`.

    Attributes:
        tasks: task names (the data folders' names), in order.
        matrices: metric -> ``[T, T]`` array (NaN where not computed or undefined).
        single: metric -> ``[T]`` of the single-task bundles (None when not given).
    """

    tasks: tuple[str, ...]
    matrices: dict
    single: dict | None = None
    bundles: tuple[str, ...] = field(default_factory=tuple)

    def final(self, metric: str = "image_auroc") -> np.ndarray:
        """The last row: the metric on every task after the last one was learnt."""
        return self.matrices[metric][-1]

    def average(self, metric: str = "image_auroc") -> float:
        """Mean of the last row."""
        return float(np.nanmean(self.final(metric)))

    def forgetting(self, metric: str = "image_auroc") -> float | None:
        """Average forgetting (module docstring); None with one task."""
        return average_forgetting(self.matrices[metric])

    def gap_to_single(self, metric: str = "image_auroc") -> float | None:
        """Mean of (single-task metric - final metric) over tasks; None without single-task bundles."""
        if not self.single:
            return None
        return float(np.nanmean(self.single[metric] - self.final(metric)))

    def to_dict(self) -> dict:
        """Plain JSON-safe report."""
        def clean(a):
            return [None if not np.isfinite(v) else round(float(v), 4) for v in np.ravel(a)]

        out = {"tasks": list(self.tasks), "bundles": list(self.bundles)}
        for m in METRICS:
            t = len(self.tasks)
            rows = clean(self.matrices[m])
            out[m] = {"matrix": [rows[i * t:(i + 1) * t] for i in range(t)], "final": clean(self.final(m)),
                      "average": _r(self.average(m)), "forgetting": _r(self.forgetting(m)),
                      "single": clean(self.single[m]) if self.single else None,
                      "gap_to_single": _r(self.gap_to_single(m))}
        return out


def _r(v):
    return None if v is None or not np.isfinite(v) else round(float(v), 4)


def average_forgetting(matrix: np.ndarray) -> float | None:
    """``mean_{j < T-1} (max_{j <= i < T-1} a[i][j] - a[T-1][j])``; None for one task.

    Example:
        >>> average_forgetting(np.array([[0.9, np.nan], [0.7, 0.95]]))
        0.2
    """
    a = np.asarray(matrix, np.float64)
    t = a.shape[0]
    if t < 2:
        return None
    drops = [np.nanmax(a[j:t - 1, j]) - a[t - 1, j] for j in range(t - 1)]
    return round(float(np.nanmean(drops)), 10)


def evaluate_tasks(bundles_per_step: Sequence[str | os.PathLike], task_dirs: Sequence[str | os.PathLike], *,
                   single: Sequence[str | os.PathLike] | None = None, full: bool = False,
                   backend: str | None = None, progress: bool = False) -> TaskMatrix:
    """Evaluate the bundle after each task on every task seen so far.

    Args:
        bundles_per_step: ``T`` bundles, the ``i``-th written after learning task ``i``.
        task_dirs: the ``T`` tasks' data folders (MVTec layout with ``test/``), in learning order.
        single: optional ``T`` single-task bundles (bundle ``j`` trained on task ``j`` alone).
        full: also fill the upper triangle (task ``j`` before it was learnt).
        backend: force a backend kind (default: from the bundle, ONNX Runtime on CPU).
        progress: show progress bars.

    Returns:
        The :class:`TaskMatrix`.

    Raises:
        ConfigError: if the counts differ.
        DataError: if a task folder has no test split.
    """
    from pathlib import Path

    from edgead.evaluation import evaluate_bundle

    t = len(task_dirs)
    if t == 0 or len(bundles_per_step) != t or (single is not None and len(single) != t):
        raise ConfigError(f"{len(bundles_per_step)} bundle(s), {t} task folder(s)"
                          + (f", {len(single)} single-task bundle(s)" if single is not None else ""),
                          hint="give one bundle per task, in the order the tasks were learnt")
    mats = {m: np.full((t, t), np.nan) for m in METRICS}
    for i, b in enumerate(bundles_per_step):
        for j, d in enumerate(task_dirs):
            if j > i and not full:
                continue
            metrics = evaluate_bundle(b, d, backend=backend, progress=progress).metrics
            for m in METRICS:
                mats[m][i, j] = _metric(metrics, m)
    singles = None
    if single is not None:
        singles = {m: np.full(t, np.nan) for m in METRICS}
        for j, (b, d) in enumerate(zip(single, task_dirs)):
            metrics = evaluate_bundle(b, d, backend=backend, progress=progress).metrics
            for m in METRICS:
                singles[m][j] = _metric(metrics, m)
    return TaskMatrix(tuple(Path(d).name for d in task_dirs), mats, singles, tuple(str(b) for b in bundles_per_step))


def _metric(metrics: dict, name: str) -> float:
    value = metrics.get(name)
    if value is None and name == "pixel_f1":
        value = metrics.get("pixel_f1_max")
    return float("nan") if value is None else float(value)
