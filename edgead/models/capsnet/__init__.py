"""CapsNet: a supervised capsule network for highly imbalanced labels (good parts + a few labelled defects)."""
from __future__ import annotations

from edgead.models.capsnet.torch_model import CapsNet
from edgead.models.capsnet.train import fit

__all__ = ["CapsNet", "fit"]
