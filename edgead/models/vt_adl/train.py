"""Fit VT-ADL: Adam on ``NLL + 5 MSE + 0.5 (1 - SSIM)`` over good images."""
from __future__ import annotations

from typing import Iterable

import torch

from edgead.models.training import run_epochs
from edgead.models.vt_adl.torch_model import VTADL


def fit(model: VTADL, batches: Iterable[torch.Tensor], progress: bool = True, epochs: int | None = None,
        **_unused) -> list[float]:
    """Train the transformer, decoder and MDN.

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
    return run_epochs(model, batches, lambda x: model.losses(x)["total"], epochs=int(epochs or model.epochs),
                      lr=model.lr, seed=model.seed, progress=progress, desc="vt-adl")
