"""DRAEM: reconstruction + discriminative segmentation, trained on simulated (Perlin/texture) anomalies."""
from edgead.models.draem.torch_model import Draem
from edgead.models.draem.train import fit

__all__ = ["Draem", "fit"]
