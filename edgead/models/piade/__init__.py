"""PIADE: pyramidal capsule encoder (dynamic routing) with a reconstruction decoder and SSIM/perceptual scoring."""
from __future__ import annotations

from edgead.models.piade.torch_model import Piade
from edgead.models.piade.train import fit

__all__ = ["Piade", "fit"]
