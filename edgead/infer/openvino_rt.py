"""OpenVINO backend: Intel's CPU runtime, for bundles converted for ``x86-cpu`` with OpenVINO (``[openvino]`` extra).

OpenVINO reads the bundle's ONNX graph as it is (FP32, or INT8 as explicit Q/DQ, which it runs on VNNI/AMX
kernels). The inference precision of the layers that are not quantized is part of what the accuracy gate
approved, so it comes from the bundle (``conversion.openvino.inference_precision``) and is set explicitly: left to
itself, OpenVINO picks BF16 on CPUs with AMX.
"""
from __future__ import annotations

import logging
import os
from enum import Enum
from pathlib import Path

import numpy as np

from edgead.contract.graph import INPUT, OUTPUT_NAMES, InputSpec, Prediction
from edgead.errors import EngineError, lazy_import
from edgead.infer.base import Backend

log = logging.getLogger(__name__)


class InferencePrecision(str, Enum):
    """OpenVINO's ``INFERENCE_PRECISION_HINT`` for the layers a graph does not quantize itself."""

    F32 = "f32"
    BF16 = "bf16"  # needs AVX512-BF16 or AMX; OpenVINO runs f32 on other CPUs


def openvino_module():
    """The ``openvino`` module, or :class:`~edgead.errors.MissingExtraError` naming the ``openvino`` extra."""
    return lazy_import("openvino", feature="the OpenVINO backend")


def cpu_capabilities() -> set[str]:
    """OpenVINO's optimisation capabilities of this CPU (``FP32``, ``BF16``, ``INT8``, ...).

    Raises:
        MissingExtraError: OpenVINO is not installed.
    """
    ov = openvino_module()
    return {str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")}


class OpenVinoBackend(Backend):
    """Run a graph-contract ONNX model with OpenVINO on the CPU.

    Args:
        onnx_path: the model (``model.onnx`` of a converted bundle).
        inference_precision: precision of the layers the graph does not quantize (default ``f32``).
        intra_op_threads: CPU threads for inference (default: OpenVINO's choice, all cores); the station's
            ``model.intra_op_threads``, as for ONNX Runtime.
        thread_wait: accepted for the station's ``model.thread_wait`` and ignored: OpenVINO's threads have no
            spin setting.

    Raises:
        MissingExtraError: OpenVINO is not installed (``pip install 'edgead[openvino]'``).
        EngineError: the file is missing, not a graph-contract model, or OpenVINO cannot compile it.

    Example:
        >>> with OpenVinoBackend("bundle/model.onnx", inference_precision="bf16") as eng:   # doctest: +SKIP
        ...     pred = eng.infer(np.zeros((1, 256, 256, 3), np.uint8))
    """

    name = "openvino"

    def __init__(self, onnx_path: str | os.PathLike, *, inference_precision: InferencePrecision | str = "f32",
                 intra_op_threads: int | None = None, thread_wait: str | None = None):
        ov = openvino_module()
        path = Path(onnx_path)
        if not path.is_file():
            raise EngineError(f"ONNX model {path} does not exist")
        try:
            self.precision = InferencePrecision(inference_precision)
        except ValueError:
            raise EngineError(f"unknown OpenVINO inference precision {inference_precision!r}",
                              hint=f"use one of {[p.value for p in InferencePrecision]}") from None
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": self.precision.value}
        if intra_op_threads:
            config["INFERENCE_NUM_THREADS"] = int(intra_op_threads)
        if self.precision is InferencePrecision.BF16 and "BF16" not in cpu_capabilities():
            log.warning("%s: bundle asks for BF16 inference, this CPU has no BF16 kernels; OpenVINO runs FP32", path)
        try:
            model = core.read_model(str(path))
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError and its own types
            raise EngineError(f"OpenVINO cannot compile {path}: {exc}", hint="re-convert the model") from exc
        self.path = path
        inputs = self._compiled.inputs
        names = [set(o.get_names()) for o in self._compiled.outputs]
        if len(inputs) != 1 or INPUT not in inputs[0].get_names() or inputs[0].get_element_type() != ov.Type.u8:
            raise EngineError(f"{path}: expected one uint8 input named {INPUT!r} (graph contract), "
                              f"got {[(sorted(i.get_names()), str(i.get_element_type())) for i in inputs]}")
        missing = [o for o in OUTPUT_NAMES if not any(o in n for n in names)]
        if missing:
            raise EngineError(f"{path}: graph lacks outputs {missing} (graph contract)")
        self._outputs = [self._compiled.output(o) for o in OUTPUT_NAMES]
        shape = inputs[0].get_partial_shape()
        self._channels = shape[3].get_length() if shape[3].is_static else 3
        self._request = self._compiled.create_infer_request()
        self._spec: InputSpec | None = None

    def set_model_resolution(self, height: int, width: int) -> None:
        """Record the model resolution (from the bundle metadata) for :attr:`input_spec`."""
        self._spec = InputSpec(int(height), int(width), self._channels)

    @property
    def input_spec(self) -> InputSpec:
        if self._spec is None:
            raise EngineError(f"{self.path}: model resolution unknown", hint="open it through its bundle")
        return self._spec

    def infer(self, images: np.ndarray) -> Prediction:
        if self._request is None:
            raise EngineError(f"{self.path}: the OpenVINO backend is closed")
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != self._channels:
            raise EngineError(
                f"{self.path}: input must be uint8 [N,H,W,{self._channels}], got {images.dtype} {images.shape}")
        try:
            result = self._request.infer({0: np.ascontiguousarray(images)})
            outputs = [np.array(result[o], np.float32) for o in self._outputs]
        except Exception as exc:  # OpenVINO raises RuntimeError and its own types
            raise EngineError(f"OpenVINO failed on {self.path}: {exc}") from exc
        return Prediction.from_outputs(outputs)

    def close(self) -> None:
        self._request = None
        self._compiled = None
