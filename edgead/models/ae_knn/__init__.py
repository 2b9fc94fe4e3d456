"""AE-kNN: conditional patch autoencoder, reconstruction-difference map, deep-feature one-class kNN score."""
from __future__ import annotations

from edgead.models.ae_knn.torch_model import AeKnn
from edgead.models.ae_knn.train import fit

__all__ = ["AeKnn", "fit"]
