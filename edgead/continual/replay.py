"""The replay buffer: a fixed budget of raw good images of every learnt task, kept in the bundle as ``replay.npz``.

Selection policy:

* **Budget.** A fixed total of ``budget`` replay images, split evenly across the tasks (``budget // T`` each, the
  remainder to the oldest tasks). Memory is therefore bounded whatever the number of tasks.
* **Within a task**, a seeded uniform sample of the images the model was fitted on (seed ``seed + task index``).
  Uniform sampling is unbiased and costs nothing. A diversity-seeking choice (k-center on backbone features) is a
  possible refinement; it is neither implemented nor measured here.
* **When a task arrives**, every old task shrinks to its new share by dropping seeded-random items of its sample.
* **Validation images**, kept apart: up to ``val_per_task`` (default 8) held-out good images per task, never
  trained on, always kept (not counted in the budget). The threshold is recalibrated on them for every task.

Images are stored raw (uint8 ``[N, H, W, C]`` as read, the station's channel order) so the exported graph's own
preprocessing applies to them as to station frames. A task whose images differ in size is stored resized to the
size of its first image (``INTER_AREA``). The file holds plain arrays (``replay_000``, ``val_000``...: one pair per
task, in the order of the bundle's ``tasks`` section); it is read with ``allow_pickle=False``.

Example:
    >>> buf = ReplayBuffer.empty().add_task("a", fit_images, val_images, budget=32)     # doctest: +SKIP
    >>> buf.replay_bytes, buf.validation_bytes                                          # doctest: +SKIP
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from edgead.bundle.arrays import ArrayCaps, caps_for, load_npz
from edgead.errors import BundleError, ConfigError

REPLAY_FILE = "replay.npz"
VAL_PER_TASK = 8


def shares(budget: int, n_tasks: int) -> list[int]:
    """Replay images per task: ``budget`` split evenly, the remainder to the oldest tasks.

    Example:
        >>> shares(10, 3)
        [4, 3, 3]
    """
    if budget < 0 or n_tasks < 1:
        raise ConfigError(f"replay budget {budget} for {n_tasks} task(s) is invalid", hint="use a budget >= 0")
    base, extra = divmod(int(budget), int(n_tasks))
    return [base + (1 if i < extra else 0) for i in range(n_tasks)]


def sample_indices(n: int, k: int, seed: int) -> np.ndarray:
    """A seeded uniform sample of ``min(k, n)`` indices out of ``n``, sorted."""
    k = max(0, min(int(k), int(n)))
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False)) if k else np.zeros(0, np.int64)


def stack_images(images: Sequence[np.ndarray]) -> np.ndarray:
    """Stack uint8 ``[H, W, C]`` images; images of another size are resized (area) to the first one's size."""
    if not len(images):
        return np.zeros((0, 1, 1, 1), np.uint8)
    h, w = images[0].shape[:2]
    out = []
    for im in images:
        if im.shape[:2] != (h, w):
            im = cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, -1)
        out.append(np.asarray(im, np.uint8))
    return np.stack(out)


@dataclass(frozen=True)
class ReplayBuffer:
    """Replay and validation images per task, in task order.

    Attributes:
        replay: per task, uint8 ``[n_i, H, W, C]`` images the model was fitted on (the replay sample).
        validation: per task, uint8 ``[m_i, H, W, C]`` held-out good images (threshold recalibration).
    """

    replay: tuple[np.ndarray, ...]
    validation: tuple[np.ndarray, ...]

    @classmethod
    def empty(cls) -> "ReplayBuffer":
        return cls((), ())

    @property
    def n_tasks(self) -> int:
        return len(self.validation)

    @property
    def replay_count(self) -> int:
        """Replay images over all tasks (within the budget)."""
        return int(sum(len(a) for a in self.replay))

    @property
    def replay_bytes(self) -> int:
        return int(sum(a.nbytes for a in self.replay))

    @property
    def validation_count(self) -> int:
        return int(sum(len(a) for a in self.validation))

    @property
    def validation_bytes(self) -> int:
        return int(sum(a.nbytes for a in self.validation))

    def replay_images(self) -> list[np.ndarray]:
        """All replay images of all tasks, as a flat list."""
        return [im for arr in self.replay for im in arr]

    def add_task(self, fit_images: Sequence[np.ndarray], val_images: Sequence[np.ndarray], *, budget: int,
                 val_per_task: int = VAL_PER_TASK, seed: int = 0) -> "ReplayBuffer":
        """The buffer with one more task; old tasks shrink to their new share (policy in the module docstring).

        Args:
            fit_images: the new task's training images (uint8 ``[H, W, C]``).
            val_images: the new task's held-out good images.
            budget: total replay images over all tasks.
            val_per_task: held-out images kept for the new task.
            seed: base seed (the task's index is added).

        Returns:
            A new :class:`ReplayBuffer`.

        Raises:
            ConfigError: if the budget is negative.
        """
        index = self.n_tasks
        share = shares(budget, index + 1)
        kept = [arr[sample_indices(len(arr), share[i], seed + 1000 + i)] for i, arr in enumerate(self.replay)]
        pick = sample_indices(len(fit_images), share[index], seed + index)
        new_replay = stack_images([fit_images[i] for i in pick])
        vpick = sample_indices(len(val_images), val_per_task, seed + 500 + index)
        new_val = stack_images([val_images[i] for i in vpick])
        return ReplayBuffer(tuple(kept) + (new_replay,), self.validation + (new_val,))

    def to_bytes(self) -> bytes:
        """The ``replay.npz`` file content."""
        arrays = {}
        for i, (rep, val) in enumerate(zip(self.replay, self.validation)):
            arrays[f"replay_{i:03d}"] = rep
            arrays[f"val_{i:03d}"] = val
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def load(cls, path: str | os.PathLike, caps: ArrayCaps | None = None) -> "ReplayBuffer":
        """Read a ``replay.npz`` (no pickles; every header checked against ``caps`` before anything is allocated;
        a bundle's caps come from its metadata: ``caps_for(bundle.meta, "replay.npz")``).

        Raises:
            BundleError: if the file is unreadable, above its caps, or its arrays are not in pairs.
        """
        try:
            arrays = load_npz(path, caps or caps_for(None, Path(path).name))
        except BundleError as exc:
            raise BundleError(f"replay buffer {path}: {exc.message}", hint=exc.hint) from exc
        except (OSError, ValueError) as exc:
            raise BundleError(f"replay buffer {path}: unreadable ({exc})",
                              hint="restore the bundle from its source or retrain") from exc
        n = len([k for k in arrays if k.startswith("val_")])
        try:
            replay = tuple(arrays[f"replay_{i:03d}"] for i in range(n))
            validation = tuple(arrays[f"val_{i:03d}"] for i in range(n))
        except KeyError as exc:
            raise BundleError(f"replay buffer {path}: lacks {exc}", hint="the file was not written by edgead") from exc
        return cls(replay, validation)

    def summary(self) -> dict:
        """Counts and bytes, for the bundle metadata and reports."""
        return {"replay_images": self.replay_count, "replay_bytes": self.replay_bytes,
                "validation_images": self.validation_count, "validation_bytes": self.validation_bytes,
                "per_task_replay": [len(a) for a in self.replay],
                "per_task_validation": [len(a) for a in self.validation]}
