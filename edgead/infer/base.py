"""The engine interface the station uses: uint8 images in, normalised and raw score/map out.

Backends (ONNX Runtime, TensorRT) implement :class:`Backend`; ``edgead.infer.open_backend`` picks one from the
table in ``edgead.infer``. The graph contract (:class:`InputSpec`, :class:`Prediction`, the tensor names) is
:mod:`edgead.contract.graph`.
"""
from __future__ import annotations

import abc
from typing import Sequence

import numpy as np

from edgead.contract.graph import InputSpec, Prediction


class Backend(abc.ABC):
    """An inference engine under the graph contract. Use as a context manager; buffers live from enter to exit.

    Example:
        >>> with open_backend("bundle/") as engine:          # doctest: +SKIP
        ...     pred = engine.infer(images_uint8_nhwc)
    """

    name: str = "abstract"

    @property
    @abc.abstractmethod
    def input_spec(self) -> InputSpec:
        """The input the engine expects."""

    @abc.abstractmethod
    def infer(self, images: np.ndarray) -> Prediction:
        """Run one batch.

        Args:
            images: uint8 array ``[N, H, W, C]`` (C as in :attr:`input_spec`; H, W any size: the graph resizes).

        Returns:
            The :class:`Prediction` for the batch.

        Raises:
            EngineError: if the engine fails or the input violates the contract.
        """

    def infer_many(self, batches: Sequence[np.ndarray]) -> list[Prediction]:
        """Run several batches in order (e.g. one per ROI of a part) and return their predictions in that order.

        A backend that can overlap batches does so (TensorRT: the copy of batch n+1 overlaps the inference of
        batch n); the default runs them one after the other.

        Raises:
            EngineError: as :meth:`infer`; no batch is left in flight.
        """
        return [self.infer(b) for b in batches]

    def warmup(self, runs: int = 3) -> None:
        """Run a few dummy inferences so the first real part is not slow."""
        spec = self.input_spec
        dummy = np.zeros((1, spec.height, spec.width, spec.channels), np.uint8)
        for _ in range(runs):
            self.infer(dummy)

    def close(self) -> None:
        """Release the engine's resources (idempotent)."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
