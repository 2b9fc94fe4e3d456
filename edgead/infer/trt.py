"""TensorRT backend: engine file with a checked header, one execution context, buffers allocated once.

Double buffering: two slots, each with its own pinned host and device buffers. :meth:`TensorRTBackend.submit`
copies a batch in on the H2D stream, runs the engine on the compute stream once that copy is done, and copies the
outputs back on the D2H stream; :meth:`TensorRTBackend.collect` waits for that slot only. So while frame n is
inferred, frame n+1 is already being copied in. :meth:`infer` is ``collect(submit(x))``.

Example:
    >>> with TensorRTBackend("model.engine") as eng:                     # doctest: +SKIP
    ...     t0 = eng.submit(frame0); t1 = eng.submit(frame1)
    ...     p0 = eng.collect(t0); p1 = eng.collect(t1)
"""
from __future__ import annotations

import contextlib
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgead.contract.graph import INPUT, InputSpec, Prediction
from edgead.contract.graph import OUTPUT_NAMES as OUTPUTS
from edgead.errors import EngineError, lazy_import
from edgead.infer.base import Backend
from edgead.infer.cuda_mem import (CudaEvent, CudaStream, DeviceBuffer, Direction, PinnedBuffer, copy_async,
                                   device_info)
from edgead.infer.engine_file import check_built_from, check_compatible, read_engine_file

SLOTS = 2


@dataclass(frozen=True)
class Ticket:
    """A submitted batch: which slot holds it and its output shapes."""

    slot: int
    shapes: dict


class _Slot:
    """Buffers and events of one in-flight batch."""

    def __init__(self, sizes: dict[str, int]):
        self.host = {n: PinnedBuffer(s) for n, s in sizes.items()}
        self.dev = {n: DeviceBuffer(s) for n, s in sizes.items()}
        self.copied_in, self.executed, self.copied_out = CudaEvent(), CudaEvent(), CudaEvent()
        self.busy = False

    def close(self) -> None:
        for res in (*self.host.values(), *self.dev.values(), self.copied_in, self.executed, self.copied_out):
            res.close()


class TensorRTBackend(Backend):
    """Run an edgead engine file (see :mod:`edgead.infer.engine_file`) with TensorRT 10/11.

    Args:
        engine_path: the ``.engine`` file written by ``edgead build-engine`` / ``edgead convert``.
        device: CUDA device index (for the compatibility check).
        bundle: the :class:`~edgead.bundle.Bundle` the engine must have been compiled from (its ``model_hash``
            and format version are checked against the header before TensorRT is even imported); None: no check
            (a bare engine file, e.g. in tests).

    Raises:
        MissingExtraError: tensorrt or cuda-python missing (extra ``trt``).
        EngineError: engine built from another bundle or for another TensorRT/GPU, corrupt, or not under the
            graph contract.
    """

    name = "tensorrt"

    def __init__(self, engine_path: str | os.PathLike, *, device: int = 0, bundle=None):
        self.path = Path(engine_path)
        header, blob = read_engine_file(self.path)
        if bundle is not None:
            check_built_from(header, model_hash=bundle.model_hash,
                             bundle_format_version=bundle.meta.format_version, bundle=str(bundle.root),
                             where=str(self.path))
        trt = lazy_import("tensorrt", feature="the TensorRT backend")
        gpu, cc = device_info(device)
        check_compatible(header, tensorrt_version=trt.__version__, gpu_name=gpu, compute_capability=cc,
                         where=str(self.path), bundle=str(bundle.root) if bundle is not None else "BUNDLE")
        self.header = header
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(blob)
        if self._engine is None:
            raise EngineError(f"TensorRT could not deserialize {self.path}", hint="rebuild the engine on this station")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        missing = [n for n in (INPUT, *OUTPUTS) if n not in names]
        if missing:
            raise EngineError(f"{self.path}: engine lacks tensors {missing} (graph contract)")
        self._dtypes = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in names}
        min_shape, _, max_shape = self._engine.get_tensor_profile_shape(INPUT, 0)
        self._min_input = tuple(int(d) for d in min_shape)
        self._max_input = tuple(int(d) for d in max_shape)
        self._context.set_input_shape(INPUT, self._max_input)
        sizes = {n: int(np.prod(self._context.get_tensor_shape(n))) * self._dtypes[n].itemsize for n in names}
        sizes[INPUT] = int(np.prod(self._max_input))
        self._streams = {k: CudaStream() for k in ("h2d", "compute", "d2h")}
        self._slots = [_Slot(sizes) for _ in range(SLOTS)]
        self._next = 0
        self._spec = InputSpec(header.input_height, header.input_width, header.channels)

    @property
    def input_spec(self) -> InputSpec:
        return self._spec

    def _check(self, images: np.ndarray) -> None:
        n, h, w, c = images.shape if images.ndim == 4 else (0, 0, 0, -1)
        lo, hi = self._min_input, self._max_input
        inside = all(a <= v <= b for a, v, b in zip(lo[:3], (n, h, w), hi[:3]))
        if images.dtype != np.uint8 or c != self._spec.channels or not inside:
            raise EngineError(f"{self.path}: input must be uint8 [{lo[0]}<=N<={hi[0]}, {lo[1]}<=H<={hi[1]}, "
                              f"{lo[2]}<=W<={hi[2]}, {self._spec.channels}], got {images.dtype} {images.shape}",
                              hint="rebuild the engine for a target whose profile covers the frames or ROIs "
                                   "(min_input_hw, max_input_hw, batch_size), or change the ROIs")

    def submit(self, images: np.ndarray) -> Ticket:
        """Start one batch on the next free slot; returns the :class:`Ticket` for :meth:`collect`.

        Raises:
            EngineError: bad input, both slots still uncollected, or a TensorRT/CUDA failure.
        """
        self._check(images)
        index = self._next
        slot = self._slots[index]
        if slot.busy:
            raise EngineError(f"{self.path}: both buffers are in flight", hint="collect() a ticket before submitting")
        s = self._streams
        images = np.ascontiguousarray(images)
        slot.host[INPUT].array(np.uint8, images.shape)[...] = images
        s["h2d"].wait(slot.executed)  # the previous batch of this slot has finished reading its device input
        copy_async(slot.dev[INPUT].ptr, slot.host[INPUT].ptr, images.nbytes, Direction.H2D, s["h2d"])
        slot.copied_in.record(s["h2d"])
        ctx = self._context
        if not ctx.set_input_shape(INPUT, images.shape):
            raise EngineError(f"{self.path}: TensorRT refused input shape {images.shape}")
        for name, buf in slot.dev.items():
            ctx.set_tensor_address(name, buf.ptr)
        s["compute"].wait(slot.copied_in)
        if not ctx.execute_async_v3(s["compute"].handle):
            raise EngineError(f"{self.path}: TensorRT execution failed", hint="see the TensorRT log above")
        slot.executed.record(s["compute"])
        shapes = {n: tuple(int(d) for d in ctx.get_tensor_shape(n)) for n in OUTPUTS}
        s["d2h"].wait(slot.executed)
        for name in OUTPUTS:
            nbytes = int(np.prod(shapes[name])) * self._dtypes[name].itemsize
            copy_async(slot.host[name].ptr, slot.dev[name].ptr, nbytes, Direction.D2H, s["d2h"])
        slot.copied_out.record(s["d2h"])
        slot.busy = True
        self._next = (index + 1) % SLOTS
        return Ticket(slot=index, shapes=shapes)

    def collect(self, ticket: Ticket) -> Prediction:
        """Wait for a submitted batch and return its outputs (copies; the slot is free again, also on an error)."""
        slot = self._slots[ticket.slot]
        try:
            slot.copied_out.synchronize()
            out = {n: slot.host[n].array(self._dtypes[n], ticket.shapes[n]).astype(np.float32, copy=True)
                   for n in OUTPUTS}
        finally:
            slot.busy = False
        return Prediction.from_outputs(out)

    def infer_many(self, batches) -> list[Prediction]:
        """Run batches with both slots busy: batch n+1 is copied in while batch n is inferred.

        Raises:
            EngineError: as :meth:`submit`; the batches already in flight are drained first, so the slots are free.
        """
        out: list[Prediction] = []
        pending: deque[Ticket] = deque()
        try:
            for images in batches:
                if len(pending) == SLOTS:
                    out.append(self.collect(pending.popleft()))
                pending.append(self.submit(images))
            while pending:
                out.append(self.collect(pending.popleft()))
        except BaseException:
            for ticket in pending:  # collect() frees the slot; a second CUDA error must not hide the first
                with contextlib.suppress(EngineError):
                    self.collect(ticket)
            raise
        return out

    def infer_async(self, images: np.ndarray) -> Ticket:
        """Alias of :meth:`submit`."""
        return self.submit(images)

    def infer(self, images: np.ndarray) -> Prediction:
        return self.collect(self.submit(images))

    def close(self) -> None:
        if getattr(self, "_slots", None) is None:
            return
        for stream in self._streams.values():
            stream.synchronize()
        for slot in self._slots:
            slot.close()
        for stream in self._streams.values():
            stream.close()
        self._slots = None
        self._context = self._engine = self._runtime = None
