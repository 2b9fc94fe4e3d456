"""Update strategies that fit: ``replay`` and ``naive`` fine-tuning of the trained models, and ``fresh``.

* ``replay``: continue from the bundle's state (``from_state``) and fit on the new task's images with replayed old
  images mixed into **every batch**: each batch holds ``b`` new images and ``round(b * f / (1 - f))`` replay
  images (``f = replay_fraction``, default 0.5: half and half), drawn without replacement from the old tasks'
  replay images, reshuffled every epoch (cycled when the buffer is smaller than an epoch needs). Models whose fit
  re-initialises parts on the data (EfficientAD's teacher) continue with ``continue_training=True``.
* ``naive``: the same without replay (the forgetting baseline).
* ``fresh``: a new model of the same configuration fitted on the new task only (one model per task); its threshold
  is calibrated on the new task only.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from edgead.continual.context import UpdateContext, UpdateOutcome
from edgead.errors import ConfigError
from edgead.models.device import fit_on, resolve_device
from edgead.models.registry import build, get_spec
from edgead.train.loader import Batches, preprocess_all

CONTINUE_FLAG = {"efficientad": {"continue_training": True}}  # fit options that keep the distilled teacher


class MixedBatches:
    """Re-iterable batches of new-task images with replay images mixed into each one (policy: module docstring).

    Args:
        new_images: the new task's uint8 images.
        replay_images: old tasks' uint8 replay images (may be empty: plain shuffled batches).
        preprocess: the bundle's preprocessing.
        batch_size: new images per batch.
        replay_fraction: share of each batch taken from the replay images, in ``[0, 1)``.
        seed: seed of the order and the draws.

    Raises:
        ConfigError: if ``replay_fraction`` is out of range.
    """

    def __init__(self, new_images: Sequence[np.ndarray], replay_images: Sequence[np.ndarray], preprocess,
                 batch_size: int, *, replay_fraction: float = 0.5, seed: int = 0):
        if not 0.0 <= replay_fraction < 1.0:
            raise ConfigError(f"replay_fraction={replay_fraction} must be in [0, 1)", hint="e.g. 0.5")
        self._new = preprocess_all(new_images, preprocess)
        self._old = preprocess_all(replay_images, preprocess)
        self.batch_size = int(batch_size)
        ratio = replay_fraction / (1.0 - replay_fraction)
        self.replay_per_batch = 0 if self._old is None else max(1, int(round(self.batch_size * ratio)))
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        n = 0 if self._new is None else len(self._new)
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self._new is None:
            return
        order = self._rng.permutation(len(self._new))
        pool = self._replay_order()
        for start in range(0, len(order), self.batch_size):
            batch = self._new[torch.from_numpy(order[start:start + self.batch_size])]
            if self.replay_per_batch:
                picks = np.array([next(pool) for _ in range(self.replay_per_batch)])
                batch = torch.cat([batch, self._old[torch.from_numpy(picks)]])
            yield batch

    def _replay_order(self) -> Iterator[int]:
        n = 0 if self._old is None else len(self._old)
        while n:
            yield from self._rng.permutation(n).tolist()


def _continue(ctx: UpdateContext, replay_images: list[np.ndarray]) -> UpdateOutcome:
    opts = ctx.options
    data = MixedBatches(ctx.fit_images, replay_images, ctx.preprocess, opts.batch_size,
                        replay_fraction=opts.replay_fraction if replay_images else 0.0, seed=opts.seed)
    fit_options = {**CONTINUE_FLAG.get(ctx.model_type, {}), **opts.fit_options}
    fit_on(get_spec(ctx.model_type).fit, ctx.model, data, resolve_device(opts.device), progress=opts.progress,
           **fit_options)
    return UpdateOutcome(ctx.model.eval(), info={"replay_images_mixed": len(replay_images),
                                                 "replay_per_batch": data.replay_per_batch})


def replay(ctx: UpdateContext) -> UpdateOutcome:
    """``replay``: continue training with old tasks' replay images in every batch."""
    images = ctx.old_buffer.replay_images()
    if not images:
        raise ConfigError("the replay buffer holds no image of the old tasks",
                          hint="give --replay N > 0 (the first update fills it from the first task's data)")
    return _continue(ctx, images)


def naive(ctx: UpdateContext) -> UpdateOutcome:
    """``naive``: continue training on the new task's images only."""
    return _continue(ctx, [])


def fresh(ctx: UpdateContext) -> UpdateOutcome:
    """``fresh``: a new model of the bundle's configuration, fitted on the new task only."""
    params = {k: v for k, v in ctx.model.export_params().items() if k in get_spec(ctx.model_type).defaults}
    model = build(ctx.model_type, ctx.model.input_hw, **params)
    data = Batches(ctx.fit_images, ctx.preprocess, ctx.options.batch_size, seed=ctx.options.seed)
    fit_on(get_spec(ctx.model_type).fit, model, data, resolve_device(ctx.options.device),
           progress=ctx.options.progress, **ctx.options.fit_options)
    return UpdateOutcome(model.eval(), calibrate_on_all=False)
