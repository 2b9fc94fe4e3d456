"""ONNX Runtime backend: the CPU default, with the CUDA execution provider when it is present."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from edgead.contract.graph import INPUT, OUTPUT_NAMES, InputSpec, Prediction
from edgead.errors import EngineError, lazy_import
from edgead.infer.base import Backend
from edgead.infer.threads import ThreadWait


class OnnxRuntimeBackend(Backend):
    """Run a graph-contract ONNX model with ONNX Runtime.

    Args:
        onnx_path: the model (``model.onnx`` of a bundle, or a converted FP16/INT8 graph).
        providers: execution providers in order of preference; default CUDA when available, then CPU.
        intra_op_threads: threads per operator (default: ONNX Runtime's choice, i.e. all cores).
        thread_wait: what idle worker threads do (:class:`~edgead.infer.threads.ThreadWait`); default: ONNX
            Runtime's own (spin).
        memory_arena: keep ONNX Runtime's CPU memory arena (default). ``False`` returns each run's intermediate
            buffers to the system: for tools that hold many sessions of a large model at once (the conversion
            benchmark; docs/benchmarks.md).
        session_entries: further ONNX Runtime session config entries (``add_session_config_entry``), set after
            those of ``thread_wait``: for tools that measure other settings (benchmarks/engine_settings.py).

    Raises:
        EngineError: if the file is missing or not a graph-contract model.

    Example:
        >>> with OnnxRuntimeBackend("bundle/model.onnx") as eng:   # doctest: +SKIP
        ...     pred = eng.infer(np.zeros((1, 256, 256, 3), np.uint8))
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: str | os.PathLike, *, providers: list[str] | None = None,
                 intra_op_threads: int | None = None, thread_wait: ThreadWait | str | None = None,
                 memory_arena: bool = True, session_entries: Mapping[str, str] | None = None):
        ort = lazy_import("onnxruntime", feature="the ONNX Runtime backend")
        path = Path(onnx_path)
        if not path.is_file():
            raise EngineError(f"ONNX model {path} does not exist")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads:
            opts.intra_op_num_threads = int(intra_op_threads)
        if thread_wait is not None:
            for key, value in ThreadWait(thread_wait).ort_entries.items():
                opts.add_session_config_entry(key, value)
        for key, value in (session_entries or {}).items():
            opts.add_session_config_entry(key, value)
        opts.log_severity_level = 3
        opts.enable_cpu_mem_arena = bool(memory_arena)
        available = ort.get_available_providers()
        wanted = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EngineError(f"ONNX Runtime cannot load {path}: {exc}", hint="re-export or re-convert the model") from exc
        self.path = path
        self.providers = self._session.get_providers()
        inputs = self._session.get_inputs()
        outputs = [o.name for o in self._session.get_outputs()]
        if len(inputs) != 1 or inputs[0].name != INPUT or inputs[0].type != "tensor(uint8)":
            raise EngineError(f"{path}: expected one uint8 input named {INPUT!r} (graph contract), "
                              f"got {[(i.name, i.type) for i in inputs]}")
        missing = [o for o in OUTPUT_NAMES if o not in outputs]
        if missing:
            raise EngineError(f"{path}: graph lacks outputs {missing} (graph contract)")
        self._input_name = inputs[0].name
        self._channels = int(inputs[0].shape[3]) if isinstance(inputs[0].shape[3], int) else 3
        custom = self._session.get_modelmeta().custom_metadata_map
        self._spec: InputSpec | None = None
        if "edgead.input_height" in custom:
            self._spec = InputSpec(int(custom["edgead.input_height"]), int(custom["edgead.input_width"]),
                                   int(custom.get("edgead.channels", self._channels)))

    def set_model_resolution(self, height: int, width: int) -> None:
        """Record the model resolution (from the bundle metadata) for :attr:`input_spec`."""
        self._spec = InputSpec(int(height), int(width), self._channels)

    @property
    def input_spec(self) -> InputSpec:
        if self._spec is None:
            raise EngineError(f"{self.path}: model resolution unknown (no edgead metadata in the graph)",
                              hint="open it through its bundle: open_backend(bundle_dir)")
        return self._spec

    def infer(self, images: np.ndarray) -> Prediction:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != self._channels:
            raise EngineError(
                f"{self.path}: input must be uint8 [N,H,W,{self._channels}], got {images.dtype} {images.shape}")
        try:
            outputs = self._session.run(OUTPUT_NAMES, {self._input_name: images})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EngineError(f"ONNX Runtime failed on {self.path}: {exc}") from exc
        return Prediction.from_outputs(outputs)

    def close(self) -> None:
        self._session = None
