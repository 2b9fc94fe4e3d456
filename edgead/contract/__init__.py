"""The artifact's contract, in one place: what a bundle's graph takes and returns, what its scores mean, how a
verdict is reached, and the typed metadata that travels with it (docs/bundle-format.md).

- :mod:`~edgead.contract.graph`: the input spec (uint8 NHWC), the output tensors and their meaning, the
  normalisation initializers, the threshold convention (normalised 0.5), :class:`Prediction`.
- :mod:`~edgead.contract.thresholds`: the normalisation that puts the raw threshold at 0.5, and its calibration.
- :mod:`~edgead.contract.decide`: the one verdict rule (score, map, ROI rules, defect area in camera pixels).
- :mod:`~edgead.contract.meta`: :class:`BundleMeta`, the typed ``edgead.yaml`` (its sections:
  :mod:`~edgead.contract.sections`).

Users: the exporter (``edgead.models.export``), the converters (``edgead.convert``), the backends
(``edgead.infer``), the bundle loader, the daemon, ``edgead predict``, the deploy self-test, evaluation, the
conversion gate and the Python API. It imports only numpy and edgead's errors and metrics (no torch, no onnx).
"""
from edgead.contract.decide import (
    WHOLE_IMAGE,
    Decision,
    DecisionRules,
    RoiDecision,
    RoiPrediction,
    decide,
    decide_batch,
    decide_image,
    rejected,
)
from edgead.contract.graph import (
    INPUT,
    NORM_INITIALIZERS,
    OPSET,
    OUTPUT_NAMES,
    OUTPUTS,
    RAW_OUTPUT_NAMES,
    THRESHOLD,
    Color,
    InputSpec,
    Precision,
    Prediction,
    TensorSpec,
)
from edgead.contract.meta import FORMAT_VERSION, BundleMeta
from edgead.contract.thresholds import Calibration, Normalisation, ThresholdMethod

__all__ = [
    "FORMAT_VERSION", "INPUT", "NORM_INITIALIZERS", "OPSET", "OUTPUTS", "OUTPUT_NAMES", "RAW_OUTPUT_NAMES",
    "THRESHOLD", "WHOLE_IMAGE", "BundleMeta", "Calibration", "Color", "Decision", "DecisionRules", "InputSpec",
    "Normalisation", "Precision", "Prediction", "RoiDecision", "RoiPrediction", "TensorSpec", "ThresholdMethod",
    "decide", "decide_batch", "decide_image", "rejected",
]
