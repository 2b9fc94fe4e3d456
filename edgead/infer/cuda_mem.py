"""CUDA memory for the TensorRT backend: pinned host buffers, device buffers, streams and events.

One small adapter per CUDA binding, picked in order from :data:`BINDINGS`: cuda-python's ``cuda.bindings.runtime``
(cuda-python >= 12.6), its older ``cuda.cudart``, then pycuda as a last fallback. Everything is a context manager
and is allocated once, outside the hot loop (NVIDIA's TensorRT samples use the same cudart calls).

Example:
    >>> with CudaStream() as s, PinnedBuffer(1024) as h, DeviceBuffer(1024) as d:      # doctest: +SKIP
    ...     h.array(np.uint8)[:] = 7
    ...     copy_async(d.ptr, h.ptr, 1024, Direction.H2D, s)
    ...     s.synchronize()
"""
from __future__ import annotations

import ctypes
import importlib
from enum import Enum

import numpy as np

from edgead.errors import EngineError, MissingExtraError


class Direction(str, Enum):
    """Copy direction."""

    H2D = "h2d"
    D2H = "d2h"
    D2D = "d2d"


class _CudaPython:
    """cuda-python runtime API (``cudaXxx`` functions return ``(err, value...)``)."""

    def __init__(self, rt):
        self.rt = rt
        self.name = rt.__name__
        kinds = rt.cudaMemcpyKind
        self.kinds = {Direction.H2D: kinds.cudaMemcpyHostToDevice, Direction.D2H: kinds.cudaMemcpyDeviceToHost,
                      Direction.D2D: kinds.cudaMemcpyDeviceToDevice}

    def _call(self, fn: str, *args):
        out = getattr(self.rt, fn)(*args)
        err, rest = out[0], out[1:]
        if int(err) != 0:
            _, msg = self.rt.cudaGetErrorString(err)
            raise EngineError(f"CUDA {fn} failed: {msg.decode() if isinstance(msg, bytes) else msg} ({int(err)})",
                              hint="check the GPU with nvidia-smi / tegrastats and free GPU memory")
        return rest[0] if len(rest) == 1 else (rest or None)

    def malloc(self, n: int) -> int:
        return int(self._call("cudaMalloc", n))

    def free(self, ptr: int) -> None:
        self._call("cudaFree", ptr)

    def malloc_host(self, n: int) -> int:
        return int(self._call("cudaMallocHost", n))

    def free_host(self, ptr: int) -> None:
        self._call("cudaFreeHost", ptr)

    def stream_create(self):
        return self._call("cudaStreamCreate")

    def stream_destroy(self, stream) -> None:
        self._call("cudaStreamDestroy", stream)

    def stream_sync(self, stream) -> None:
        self._call("cudaStreamSynchronize", stream)

    def memcpy_async(self, dst: int, src: int, n: int, direction: Direction, stream) -> None:
        self._call("cudaMemcpyAsync", dst, src, n, self.kinds[direction], stream)

    def event_create(self):
        return self._call("cudaEventCreate")

    def event_destroy(self, event) -> None:
        self._call("cudaEventDestroy", event)

    def event_record(self, event, stream) -> None:
        self._call("cudaEventRecord", event, stream)

    def event_sync(self, event) -> None:
        self._call("cudaEventSynchronize", event)

    def stream_wait_event(self, stream, event) -> None:
        self._call("cudaStreamWaitEvent", stream, event, 0)

    def handle(self, stream) -> int:
        return int(stream)

    def device_info(self, device: int) -> tuple[str, str]:
        props = self._call("cudaGetDeviceProperties", device)
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return name.rstrip("\x00"), f"{props.major}.{props.minor}"


class _PyCuda:
    """pycuda driver API, kept to the same shape (last fallback)."""

    def __init__(self, drv):
        self.drv = drv
        self.name = "pycuda"
        drv.init()
        self._ctx = drv.Device(0).retain_primary_context()
        self._ctx.push()
        self._host: dict[int, np.ndarray] = {}
        self._dev: dict[int, object] = {}

    def malloc(self, n: int) -> int:
        alloc = self.drv.mem_alloc(n)
        self._dev[int(alloc)] = alloc
        return int(alloc)

    def free(self, ptr: int) -> None:
        self._dev.pop(ptr).free()

    def malloc_host(self, n: int) -> int:
        arr = self.drv.pagelocked_empty(n, np.uint8)
        self._host[arr.ctypes.data] = arr
        return arr.ctypes.data

    def free_host(self, ptr: int) -> None:
        self._host.pop(ptr).base.free()

    def stream_create(self):
        return self.drv.Stream()

    def stream_destroy(self, stream) -> None:
        stream.synchronize()

    def stream_sync(self, stream) -> None:
        stream.synchronize()

    def memcpy_async(self, dst: int, src: int, n: int, direction: Direction, stream) -> None:
        if direction is Direction.H2D:
            self.drv.memcpy_htod_async(dst, _host_view(src, n), stream)
        elif direction is Direction.D2H:
            self.drv.memcpy_dtoh_async(_host_view(dst, n), src, stream)
        else:
            self.drv.memcpy_dtod_async(dst, src, n, stream)

    def event_create(self):
        return self.drv.Event()

    def event_destroy(self, event) -> None:
        del event

    def event_record(self, event, stream) -> None:
        event.record(stream)

    def event_sync(self, event) -> None:
        event.synchronize()

    def stream_wait_event(self, stream, event) -> None:
        stream.wait_for_event(event)

    def handle(self, stream) -> int:
        return int(stream.handle)

    def device_info(self, device: int) -> tuple[str, str]:
        dev = self.drv.Device(device)
        major, minor = dev.compute_capability()
        return dev.name(), f"{major}.{minor}"


BINDINGS = (("cuda.bindings.runtime", _CudaPython), ("cuda.cudart", _CudaPython), ("pycuda.driver", _PyCuda))
"""Module -> adapter, in order of preference."""

_API = None


def cuda_api():
    """The CUDA adapter (first importable binding of :data:`BINDINGS`), created once.

    Raises:
        MissingExtraError: no binding is installed (``pip install 'edgead[trt]'`` brings cuda-python).
    """
    global _API
    if _API is None:
        errors = []
        for module, adapter in BINDINGS:
            try:
                _API = adapter(importlib.import_module(module))
                break
            except ImportError as exc:
                errors.append(f"{module}: {exc}")
        else:
            raise MissingExtraError("CUDA memory for the TensorRT backend", "cuda.bindings.runtime",
                                    ImportError("; ".join(errors)))
    return _API


def device_info(device: int = 0) -> tuple[str, str]:
    """(name, compute capability ``"major.minor"``) of a CUDA device."""
    return cuda_api().device_info(device)


def _host_view(ptr: int, nbytes: int) -> np.ndarray:
    return np.frombuffer((ctypes.c_uint8 * nbytes).from_address(ptr), np.uint8)


class _Owned:
    """Base of the context-managed CUDA resources: ``close()`` is idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class PinnedBuffer(_Owned):
    """Page-locked host memory (``cudaMallocHost``): the only host memory async copies really overlap with."""

    def __init__(self, nbytes: int):
        self.api = cuda_api()
        self.nbytes = int(nbytes)
        self.ptr = self.api.malloc_host(self.nbytes)

    def array(self, dtype, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """A numpy view of the buffer (no copy); ``shape`` may use fewer bytes than the buffer holds."""
        flat = _host_view(self.ptr, self.nbytes).view(dtype)
        return flat if shape is None else flat[:int(np.prod(shape))].reshape(shape)

    def close(self) -> None:
        if self.ptr:
            self.api.free_host(self.ptr)
            self.ptr = 0


class DeviceBuffer(_Owned):
    """Device memory (``cudaMalloc``)."""

    def __init__(self, nbytes: int):
        self.api = cuda_api()
        self.nbytes = int(nbytes)
        self.ptr = self.api.malloc(max(self.nbytes, 1))

    def close(self) -> None:
        if self.ptr:
            self.api.free(self.ptr)
            self.ptr = 0


class CudaStream(_Owned):
    """A CUDA stream; :attr:`handle` is the integer TensorRT's ``execute_async_v3`` takes."""

    def __init__(self):
        self.api = cuda_api()
        self.stream = self.api.stream_create()
        self.handle = self.api.handle(self.stream)

    def synchronize(self) -> None:
        self.api.stream_sync(self.stream)

    def wait(self, event: "CudaEvent") -> None:
        """Make later work on this stream wait for ``event`` (no host blocking)."""
        self.api.stream_wait_event(self.stream, event.event)

    def close(self) -> None:
        if self.stream is not None:
            self.api.stream_destroy(self.stream)
            self.stream = None


class CudaEvent(_Owned):
    """A CUDA event, to order work across streams and to wait for one slot's results."""

    def __init__(self):
        self.api = cuda_api()
        self.event = self.api.event_create()

    def record(self, stream: CudaStream) -> None:
        self.api.event_record(self.event, stream.stream)

    def synchronize(self) -> None:
        self.api.event_sync(self.event)

    def close(self) -> None:
        if self.event is not None:
            self.api.event_destroy(self.event)
            self.event = None


def copy_async(dst: int, src: int, nbytes: int, direction: Direction, stream: CudaStream) -> None:
    """``cudaMemcpyAsync`` of ``nbytes`` on ``stream`` (host side must be pinned to overlap)."""
    if nbytes:
        cuda_api().memcpy_async(dst, src, int(nbytes), direction, stream.stream)
