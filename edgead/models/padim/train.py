"""Fit a PaDiM model with running sums (float64): memory is O(positions * d^2), independent of the image count."""
from __future__ import annotations

from typing import Iterable

import torch

from edgead.errors import DataError, lazy_import
from edgead.models.common import check_batch
from edgead.models.padim.torch_model import Padim


def fit(model: Padim, batches: Iterable[torch.Tensor], progress: bool = True, **_unused) -> None:
    """Estimate the per-position Gaussians from good images.

    Args:
        model: the model to fit.
        batches: normalised float tensors ``[B, 3, H, W]`` at ``model.input_hw``.
        progress: show a progress bar over batches.
        **_unused: options of other models' fit functions (e.g. ``epochs``), ignored.

    Raises:
        DataError: if fewer than 2 images were given or a batch has the wrong shape.
    """
    positions, dim = model.mean.shape
    total = torch.zeros(positions, dim, dtype=torch.float64)
    outer = torch.zeros(positions, dim, dim, dtype=torch.float64)
    count = 0
    if progress:
        batches = lazy_import("tqdm", feature="the PaDiM progress bar", extra="train").tqdm(batches, desc="padim", unit="batch")
    model.eval()
    with torch.no_grad():
        for batch in batches:
            check_batch(batch, model.input_hw)
            emb = model.embed(batch.float()).double().transpose(0, 1)  # [P, B, d]
            total += emb.sum(1)
            outer += emb.transpose(1, 2) @ emb
            count += emb.shape[1]
    if count < 2:
        raise DataError(f"PaDiM fit got {count} training image(s)", hint="give at least 2 good images (ideally > 30)")
    mean = total / count
    covariance = (outer - count * mean.unsqueeze(2) * mean.unsqueeze(1)) / (count - 1)
    covariance += model.eps * torch.eye(dim, dtype=torch.float64)
    model.set_gaussians(mean, torch.linalg.inv(covariance))
