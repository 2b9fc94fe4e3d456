"""Fit PIADE: Adam on ``MSE + perceptual + (1 - SSIM)`` over good images (backbone frozen)."""
from __future__ import annotations

from typing import Iterable

import torch

from edgead.models.piade.torch_model import Piade
from edgead.models.training import run_epochs


def fit(model: Piade, batches: Iterable[torch.Tensor], progress: bool = True, epochs: int | None = None,
        **_unused) -> list[float]:
    """Train the SE blocks, pyramid, capsules, upsampler and decoder.

    Args:
        model: the model to train.
        batches: re-iterable normalised batches ``[B, 3, H, W]`` at ``model.input_hw`` (one pass per epoch).
        progress: show a progress bar.
        epochs: override ``model.epochs``.
        **_unused: options of other models' fit functions, ignored.

    Returns:
        The mean loss per epoch.

    Raises:
        DataError: if no batch was given or a batch has the wrong shape.
    """
    return run_epochs(model, batches, model.loss, epochs=int(epochs or model.epochs), lr=model.lr, seed=model.seed,
                      progress=progress, desc="piade")
