"""The graph's interface: one uint8 image tensor in, four float32 tensors out (docs/bundle-format.md).

Every ONNX graph and TensorRT engine edgead writes or runs has this interface; the exporter, the converters, the
backends and the engine builder take the names from here.

Example:
    >>> [t.name for t in OUTPUTS]
    ['score', 'map', 'raw_score', 'raw_map']
    >>> InputSpec(256, 320, 3).color
    <Color.RGB: 'rgb'>
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

OPSET = 17
"""ONNX opset of exported graphs."""

INPUT = "image"
"""The graph's only input: uint8 ``[N, H, W, C]``, N/H/W dynamic (the graph resizes to the model resolution)."""

SCORE, MAP, RAW_SCORE, RAW_MAP = "score", "map", "raw_score", "raw_map"

THRESHOLD = 0.5
"""The normalised threshold: a normalised score (or map pixel) at or above it is anomalous."""


@dataclass(frozen=True)
class TensorSpec:
    """One output tensor of the graph: name, shape (symbols: ``N`` batch, ``h, w`` model resolution), meaning."""

    name: str
    shape: str
    meaning: str
    dtype: str = "float32"


OUTPUTS = (
    TensorSpec(SCORE, "[N]", f"normalised image score in [0, 1]; >= {THRESHOLD} means anomalous"),
    TensorSpec(MAP, "[N, h, w]", f"normalised anomaly map at model resolution; a pixel >= {THRESHOLD} is anomalous"),
    TensorSpec(RAW_SCORE, "[N]", "raw image score, in the units of thresholds.image"),
    TensorSpec(RAW_MAP, "[N, h, w]", "raw anomaly map, in the units of thresholds.pixel"),
)
"""The outputs, in the order backends return them."""

OUTPUT_NAMES = tuple(t.name for t in OUTPUTS)
RAW_OUTPUT_NAMES = (RAW_SCORE, RAW_MAP)
"""What the detector itself (``nn.Module.forward``) returns, before the graph's normalisation."""

NORM_INITIALIZERS = ("edgead_image_lo", "edgead_image_thr", "edgead_pixel_lo", "edgead_pixel_thr")
"""The float32 scalar initializers of the normalisation (``edgead threshold`` rewrites them)."""


def norm_key(initializer: str) -> str:
    """``"edgead_image_lo"`` -> ``"image_lo"``: the key of the normalisation constants dict."""
    return initializer[len("edgead_"):]


class Color(str, Enum):
    """Channel layout of the images: the bundle's ``input.color``."""

    RGB = "rgb"
    GRAY = "gray"

    @property
    def channels(self) -> int:
        """3 for RGB, 1 for grey."""
        return 3 if self is Color.RGB else 1

    @classmethod
    def of_channels(cls, channels: int) -> "Color":
        """1 -> ``GRAY``, 3 -> ``RGB``."""
        return cls.GRAY if int(channels) == 1 else cls.RGB


class Precision(str, Enum):
    """Numeric precision of a graph or engine. ``AUTO`` (conversion only) tries a target's precisions."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    AUTO = "auto"


@dataclass(frozen=True)
class InputSpec:
    """What the engine accepts: uint8 NHWC with this many channels; (height, width) is the model resolution."""

    height: int
    width: int
    channels: int

    @property
    def color(self) -> Color:
        """The colour mode of ``channels``."""
        return Color.of_channels(self.channels)


@dataclass(frozen=True)
class Prediction:
    """Outputs of one batch, as numpy arrays (float32), named as the graph's outputs.

    Attributes:
        score: ``[N]`` normalised image scores; ``>= THRESHOLD`` is anomalous.
        map: ``[N, h, w]`` normalised anomaly maps at model resolution.
        raw_score: ``[N]`` raw image scores.
        raw_map: ``[N, h, w]`` raw anomaly maps.
    """

    score: np.ndarray
    map: np.ndarray
    raw_score: np.ndarray
    raw_map: np.ndarray

    @classmethod
    def from_outputs(cls, outputs) -> "Prediction":
        """From the graph's outputs: a sequence in :data:`OUTPUT_NAMES` order, or a mapping name -> array."""
        if isinstance(outputs, dict):
            outputs = [outputs[name] for name in OUTPUT_NAMES]
        return cls(*outputs)

    def __getitem__(self, i) -> "Prediction":
        """The prediction of image(s) ``i`` of the batch; an int keeps the batch axis (``pred[0].score.shape``
        is ``(1,)``)."""
        if isinstance(i, (int, np.integer)):
            i = slice(int(i), int(i) + 1)
        return Prediction(self.score[i], self.map[i], self.raw_score[i], self.raw_map[i])

    @staticmethod
    def concatenate(parts) -> "Prediction":
        """One prediction from several batches, in order."""
        return Prediction(*(np.concatenate([getattr(p, name) for p in parts]) for name in OUTPUT_NAMES))
