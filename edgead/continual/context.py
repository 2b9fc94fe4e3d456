"""What an update strategy receives and returns (kept apart so the strategy modules do not import each other)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from edgead.bundle import Bundle
from edgead.continual.replay import ReplayBuffer


@dataclass(frozen=True)
class UpdateOptions:
    """Options of an update (``edgead update`` flags map 1:1).

    Attributes:
        max_bank: PatchCore bank-extension cap on the memory bank rows (None: old size + the new task's coreset,
            every old row kept).
        replay_fraction: share of each training batch drawn from the replay buffer (trained models, ``replay``).
        fit_options: options of the model's fit function (e.g. ``{"epochs": 10}``, ``{"steps": 100}``).
        batch_size: images per batch.
        seed: seed of the split, the replay sample and the batch mixing.
        progress: show progress bars.
        device: where the model trains (``auto``, ``cpu``, ``cuda[:N]``; ``edgead.models.device``).
    """

    max_bank: int | None = None
    replay_fraction: float = 0.5
    fit_options: dict = field(default_factory=dict)
    batch_size: int = 8
    seed: int = 0
    progress: bool = False
    device: str = "auto"


@dataclass
class UpdateContext:
    """The inputs of one update.

    Attributes:
        bundle: the bundle being extended.
        model_type: its model type.
        model: the bundle's fitted model, rebuilt from its state (the strategy may change it in place).
        preprocess: the bundle's preprocessing (``edgead.models.export.Preprocess``).
        fit_images: the new task's training images (uint8).
        old_buffer: the replay buffer before the new task.
        options: the :class:`UpdateOptions`.
    """

    bundle: Bundle
    model_type: str
    model: torch.nn.Module
    preprocess: Any
    fit_images: list[np.ndarray]
    old_buffer: ReplayBuffer
    options: UpdateOptions


@dataclass
class UpdateOutcome:
    """What a strategy returns.

    Attributes:
        model: the updated model.
        extra_files: bundle files the strategy writes (name -> bytes), e.g. PaDiM's running statistics.
        info: facts for the tasks section (e.g. the bank size).
        calibrate_on_all: recalibrate the threshold on every task's validation images (False: the new task's only,
            for ``fresh``).
    """

    model: torch.nn.Module
    extra_files: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    calibrate_on_all: bool = True
