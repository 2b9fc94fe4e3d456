"""PatchCore: nearest-neighbour scoring against a coreset memory bank of patch features."""
from __future__ import annotations

from edgead.models.patchcore.torch_model import PatchCore
from edgead.models.patchcore.train import fit

__all__ = ["PatchCore", "fit"]
