"""Inference engines behind one interface. One table: backend kind -> how to open it, and what it needs.

``open_backend(path)`` takes a bundle (directory or ``.edgead``), a ``.onnx`` or a TensorRT ``.engine`` file. A
bundle converted for a runtime (``conversion.backend`` in its ``edgead.yaml``: ``openvino``) is opened with that
runtime unless the caller names another.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable

from edgead.bundle import Bundle, load_bundle
from edgead.contract.graph import InputSpec, Prediction
from edgead.errors import EngineError, MissingExtraError
from edgead.infer.base import Backend


class BackendKind(str, Enum):
    """Which runtime executes the graph."""

    ONNXRUNTIME = "onnxruntime"
    TENSORRT = "tensorrt"
    OPENVINO = "openvino"


def _open_onnxrt(path: Path, spec: InputSpec | None, **kw) -> Backend:
    from edgead.infer.onnxrt import OnnxRuntimeBackend

    eng = OnnxRuntimeBackend(path, **kw)
    if spec is not None:
        eng.set_model_resolution(spec.height, spec.width)
    return eng


def _open_trt(path: Path, spec: InputSpec | None, **kw) -> Backend:
    from edgead.infer.trt import TensorRTBackend

    return TensorRTBackend(path, **kw)


def _open_openvino(path: Path, spec: InputSpec | None, **kw) -> Backend:
    from edgead.infer.openvino_rt import OpenVinoBackend

    eng = OpenVinoBackend(path, **kw)
    if spec is not None:
        eng.set_model_resolution(spec.height, spec.width)
    return eng


@dataclass(frozen=True)
class Runtime:
    """One row of :data:`BACKENDS`: how to open a backend and what it needs installed.

    Attributes:
        open: ``open(path, spec, **options) -> Backend``.
        module: the Python module the runtime is (``edgead.extras.MODULES`` says which extra installs it).
        feature: what it is called in messages.
    """

    open: Callable[..., Backend]
    module: str
    feature: str

    @property
    def extra(self) -> str | None:
        """The extra that installs it (None: a core requirement)."""
        from edgead.extras import extra_for

        return extra_for(self.module)


BACKENDS: dict[BackendKind, Runtime] = {
    BackendKind.ONNXRUNTIME: Runtime(_open_onnxrt, "onnxruntime", "the ONNX Runtime backend"),
    BackendKind.TENSORRT: Runtime(_open_trt, "tensorrt", "the TensorRT backend"),
    BackendKind.OPENVINO: Runtime(_open_openvino, "openvino", "the OpenVINO backend"),
}


def bundle_runtime(meta) -> tuple[BackendKind, dict]:
    """The runtime a bundle's graph is meant for, and the options it was gated with.

    A bundle converted for OpenVINO (``conversion.backend: openvino``) runs on OpenVINO with its
    ``conversion.openvino`` options (the inference precision); every other bundle's ONNX graph runs on ONNX Runtime
    (a TensorRT target's engine is a separate file, opened with ``BackendKind.TENSORRT``).

    Args:
        meta: the bundle's :class:`~edgead.contract.BundleMeta`.

    Returns:
        ``(kind, options)`` for :func:`open_backend`.
    """
    conversion = meta.conversion
    if conversion is not None and conversion.backend == BackendKind.OPENVINO.value:
        ov = conversion.openvino or {}
        return BackendKind.OPENVINO, {k: ov[k] for k in ("inference_precision",) if k in ov}
    return BackendKind.ONNXRUNTIME, {}


def require_runtime(kind: BackendKind | str, what: str = "") -> None:
    """Check that a runtime is installed, without importing it.

    Args:
        kind: the backend kind.
        what: what needs it, for the message (default: the backend's name).

    Raises:
        MissingExtraError: naming the runtime's extra.
        EngineError: an unknown kind.
    """
    row = BACKENDS[_kind(kind)]
    if row.module in sys.modules:
        return
    try:
        found = importlib.util.find_spec(row.module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtraError(what or row.feature, row.module)


def open_backend(path, kind: BackendKind | str | None = None, **options) -> Backend:
    """Open an inference engine.

    Args:
        path: a bundle directory or ``.edgead`` archive (uses its ``model.onnx``), an already loaded
            :class:`~edgead.bundle.Bundle` (its hashes are not checked again), an ``.onnx`` or an ``.engine``.
        kind: force a backend; default: a bundle's own runtime (:func:`bundle_runtime`), else from the file type
            (``.engine`` -> TensorRT, else ONNX Runtime).
        **options: passed to the backend (e.g. ``intra_op_threads``, ``providers``); a bundle's own options
            (OpenVINO's inference precision) apply when it runs on its own runtime.

    Returns:
        An open :class:`Backend` (use it as a context manager).

    Raises:
        EngineError: unknown kind or unloadable model; BundleError for a bad bundle.
        MissingExtraError: the bundle's runtime is not installed (names the extra, e.g. ``openvino``).
    """
    kind = _kind(kind)
    spec, bundle = None, None
    if isinstance(path, Bundle):
        bundle = path
    else:
        p = Path(path)
        if p.is_dir() or p.suffix == ".edgead":
            bundle = load_bundle(p)
    if bundle is not None:
        p, spec = bundle.onnx_path, bundle.input_spec
        own_kind, own_options = bundle_runtime(bundle.meta)
        if kind is None or kind is own_kind:
            kind, options = own_kind, {**own_options, **options}
            target = bundle.meta.conversion.target if bundle.meta.conversion is not None else None
            require_runtime(kind, f"bundle {bundle.root}" + (f", converted for {target} on {kind.value}," if target
                                                             else ""))
    if kind is None:
        kind = BackendKind.TENSORRT if p.suffix in (".engine", ".plan") else BackendKind.ONNXRUNTIME
    return BACKENDS[kind].open(p, spec, **options)


def _kind(kind: BackendKind | str | None) -> BackendKind | None:
    try:
        return None if kind is None else BackendKind(kind)
    except ValueError:
        raise EngineError(f"unknown backend {kind!r}", hint=f"use one of {[k.value for k in BackendKind]}") from None


__all__ = ["BACKENDS", "Backend", "BackendKind", "InputSpec", "Prediction", "Runtime", "bundle_runtime",
           "open_backend", "require_runtime"]
