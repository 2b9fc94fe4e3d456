"""EfficientAD-S: teacher-student-autoencoder with quantile-normalised maps (teacher distilled from Lite0)."""
from edgead.models.efficientad.torch_model import EfficientAd
from edgead.models.efficientad.train import fit

__all__ = ["EfficientAd", "fit"]
