"""VT-ADL: vision-transformer reconstruction with a mixture density network over patch embeddings."""
from __future__ import annotations

from edgead.models.vt_adl.torch_model import VTADL
from edgead.models.vt_adl.train import fit

__all__ = ["VTADL", "fit"]
