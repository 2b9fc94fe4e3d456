"""Inference engines behind one interface. One table: backend kind -> how to open it.

``open_backend(path)`` takes a bundle (directory or ``.edgead``), a ``.onnx`` or a TensorRT ``.engine`` file.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path

from edgead.bundle import Bundle, load_bundle
from edgead.contract.graph import InputSpec, Prediction
from edgead.errors import EngineError
from edgead.infer.base import Backend


class BackendKind(str, Enum):
    """Which runtime executes the graph."""

    ONNXRUNTIME = "onnxruntime"
    TENSORRT = "tensorrt"


def _open_onnxrt(path: Path, spec: InputSpec | None, **kw) -> Backend:
    from edgead.infer.onnxrt import OnnxRuntimeBackend

    eng = OnnxRuntimeBackend(path, **kw)
    if spec is not None:
        eng.set_model_resolution(spec.height, spec.width)
    return eng


def _open_trt(path: Path, spec: InputSpec | None, **kw) -> Backend:
    from edgead.infer.trt import TensorRTBackend

    return TensorRTBackend(path, **kw)


BACKENDS = {BackendKind.ONNXRUNTIME: _open_onnxrt, BackendKind.TENSORRT: _open_trt}


def open_backend(path, kind: BackendKind | str | None = None, **options) -> Backend:
    """Open an inference engine.

    Args:
        path: a bundle directory or ``.edgead`` archive (uses its ``model.onnx``), an already loaded
            :class:`~edgead.bundle.Bundle` (its hashes are not checked again), an ``.onnx`` or an ``.engine``.
        kind: force a backend; default from the file type (``.engine`` -> TensorRT, else ONNX Runtime).
        **options: passed to the backend (e.g. ``intra_op_threads``, ``providers``).

    Returns:
        An open :class:`Backend` (use it as a context manager).

    Raises:
        EngineError: unknown kind or unloadable model; BundleError for a bad bundle.
    """
    spec = None
    if isinstance(path, Bundle):
        p, spec = path.onnx_path, path.input_spec
    else:
        p = Path(path)
        if p.is_dir() or p.suffix == ".edgead":
            bundle = load_bundle(p)
            p, spec = bundle.onnx_path, bundle.input_spec
    if kind is None:
        kind = BackendKind.TENSORRT if p.suffix in (".engine", ".plan") else BackendKind.ONNXRUNTIME
    try:
        opener = BACKENDS[BackendKind(kind)]
    except ValueError:
        raise EngineError(f"unknown backend {kind!r}", hint=f"use one of {[k.value for k in BackendKind]}") from None
    return opener(p, spec, **options)


__all__ = ["BACKENDS", "Backend", "BackendKind", "InputSpec", "Prediction", "open_backend"]
