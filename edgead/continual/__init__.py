"""Continual learning: extend a bundle with new tasks (variants, re-rigged lighting, drift) without forgetting.

``update_bundle_with_task`` (``edgead update``) applies a strategy (``strategies.STRATEGIES``): PatchCore bank
extension, PaDiM per-task or running Gaussians, replay or naive fine-tuning of the trained models, or a fresh model;
``evaluate_tasks`` (``edgead eval --tasks``) gives the task matrix, the average forgetting and the gap to one model
per task. See docs/continual.md.

Example:
    >>> from edgead.continual import update_bundle_with_task
    >>> update_bundle_with_task("b1", "datasets/variant_b", "b2")        # doctest: +SKIP
"""
from __future__ import annotations

from edgead.continual.history import Task, task_history
from edgead.continual.replay import ReplayBuffer
from edgead.continual.strategies import ALLOWED, STRATEGIES, Strategy, resolve_strategy

__all__ = ["ALLOWED", "STRATEGIES", "ReplayBuffer", "Strategy", "Task", "evaluate_tasks", "resolve_strategy",
           "task_history", "update_bundle_with_task"]


def __getattr__(name: str):  # the update and the matrix import torch / onnxruntime: load them on first use
    if name == "update_bundle_with_task":
        from edgead.continual.update import update_bundle_with_task

        return update_bundle_with_task
    if name == "evaluate_tasks":
        from edgead.continual.matrix import evaluate_tasks

        return evaluate_tasks
    raise AttributeError(name)
