"""PaDiM: per-position Gaussians of patch features, Mahalanobis distance map."""
from __future__ import annotations

from edgead.models.padim.torch_model import Padim
from edgead.models.padim.train import fit

__all__ = ["Padim", "fit"]
