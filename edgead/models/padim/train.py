"""Fit a PaDiM model with running sums (float64): memory is O(positions * d^2), independent of the image count.

The sums are :class:`GaussianStats` (count, sum, sum of outer products per position): adding the stats of two image
sets gives exactly the stats of their union, which the continual ``running`` strategy uses (``edgead.continual``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from edgead.errors import BundleError, ConfigError, DataError
from edgead.models.common import check_batch
from edgead.models.padim.torch_model import Padim
from edgead.progress import track


@dataclass(frozen=True)
class GaussianStats:
    """Sufficient statistics of the per-position Gaussians (float64).

    Attributes:
        count: images seen.
        total: ``[P, d]`` sum of the features.
        outer: ``[P, d, d]`` sum of the features' outer products.
    """

    count: int
    total: torch.Tensor
    outer: torch.Tensor

    def __add__(self, other: "GaussianStats") -> "GaussianStats":
        if self.total.shape != other.total.shape:
            raise ConfigError(f"PaDiM statistics {tuple(self.total.shape)} and {tuple(other.total.shape)} differ",
                              hint="merge only statistics of the same model configuration")
        return GaussianStats(self.count + other.count, self.total + other.total, self.outer + other.outer)

    def gaussians(self, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean [P, d], inverse covariance [P, d, d])`` with ``eps * I`` added to each covariance.

        Raises:
            DataError: if fewer than 2 images were seen.
        """
        if self.count < 2:
            raise DataError(f"PaDiM fit got {self.count} training image(s)",
                            hint="give at least 2 good images (ideally > 30)")
        mean = self.total / self.count
        covariance = (self.outer - self.count * mean.unsqueeze(2) * mean.unsqueeze(1)) / (self.count - 1)
        covariance += eps * torch.eye(mean.shape[1], dtype=torch.float64)
        return mean, torch.linalg.inv(covariance)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """``{"count", "total", "outer"}`` numpy arrays (for ``np.savez``, no pickles)."""
        return {"count": np.array(self.count, np.int64), "total": self.total.numpy(), "outer": self.outer.numpy()}

    @classmethod
    def from_arrays(cls, arrays) -> "GaussianStats":
        """Inverse of :meth:`to_arrays`.

        Raises:
            BundleError: if an array is missing.
        """
        missing = [k for k in ("count", "total", "outer") if k not in arrays]
        if missing:
            raise BundleError(f"PaDiM statistics lack {missing}", hint="the file was not written by edgead update")
        return cls(int(arrays["count"]), torch.as_tensor(np.asarray(arrays["total"], np.float64)),
                   torch.as_tensor(np.asarray(arrays["outer"], np.float64)))

    @classmethod
    def from_gaussians(cls, mean: torch.Tensor, inv_covariance: torch.Tensor, count: int, eps: float
                       ) -> "GaussianStats":
        """Recover the statistics of a fitted Gaussian (``count`` images) by inverting its inverse covariance.

        Exact up to the float32 rounding of the stored mean and inverse covariance: used when a bundle written by
        ``edgead train`` (which keeps no sums) is first extended with the ``running`` strategy.
        """
        mean = mean.double()
        covariance = torch.linalg.inv(inv_covariance.double()) - eps * torch.eye(mean.shape[1], dtype=torch.float64)
        outer = (count - 1) * covariance + count * mean.unsqueeze(2) * mean.unsqueeze(1)
        return cls(int(count), count * mean, outer)


def gaussian_stats(model: Padim, batches: Iterable[torch.Tensor], progress: bool = False) -> GaussianStats:
    """Accumulate the float64 sums of the model's position features over ``batches``.

    Args:
        model: the model (its channel subset and backbone decide the features).
        batches: normalised float tensors ``[B, 3, H, W]`` at ``model.input_hw``.
        progress: show a progress bar over batches.

    Returns:
        The :class:`GaussianStats`.

    Raises:
        DataError: if a batch has the wrong shape.
    """
    _, positions, dim = model.mean.shape
    device = model.mean.device  # the accumulation runs where the model is; the statistics come back to the CPU
    total = torch.zeros(positions, dim, dtype=torch.float64, device=device)
    outer = torch.zeros(positions, dim, dim, dtype=torch.float64, device=device)
    count = 0
    batches = track(batches, "padim", enabled=progress, unit="batch")
    model.eval()
    with torch.no_grad():
        for batch in batches:
            check_batch(batch, model.input_hw)
            emb = model.embed(batch.float()).double().transpose(0, 1)  # [P, B, d]
            total += emb.sum(1)
            outer += emb.transpose(1, 2) @ emb
            count += emb.shape[1]
    return GaussianStats(count, total.cpu(), outer.cpu())


def fit(model: Padim, batches: Iterable[torch.Tensor], progress: bool = True, **_unused) -> GaussianStats:
    """Estimate the per-position Gaussians from good images.

    Args:
        model: the model to fit (one task).
        batches: normalised float tensors ``[B, 3, H, W]`` at ``model.input_hw``.
        progress: show a progress bar over batches.
        **_unused: options of other models' fit functions (e.g. ``epochs``), ignored.

    Returns:
        The statistics the Gaussians were computed from.

    Raises:
        DataError: if fewer than 2 images were given or a batch has the wrong shape.
        ConfigError: if the model holds more than one task.
    """
    if model.n_tasks != 1:
        raise ConfigError(f"PaDiM fit fills one task, the model holds {model.n_tasks}",
                          hint="fit a model with n_tasks=1; add tasks with `edgead update`")
    stats = gaussian_stats(model, batches, progress)
    model.set_gaussians(*stats.gaussians(model.eps))
    return stats
