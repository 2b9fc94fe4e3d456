"""Software twins of CUDA and TensorRT (runtime and builder), to run edgead's TensorRT path on a CPU.

They isolate edgead's own logic (buffers, slots, streams, events, shapes, dtypes, builder calls); they prove nothing
about TensorRT itself, which tests/gpu/test_trt.py checks on a GPU.

- :class:`CudaTwin` has the adapter interface of ``edgead.infer.cuda_mem`` (the object ``cuda_api()`` returns).
  Memory is host memory at real addresses. Work queued on a stream is **deferred**: nothing runs when it is
  enqueued, only when a stream or event is synchronised, and then only what that synchronisation depends on
  (through ``cudaStreamWaitEvent``). So a missing wait or a missing synchronisation leaves stale bytes behind, as
  it would on a GPU where the copy had not happened yet, instead of going unnoticed.
- :func:`builder_twin` is a ``tensorrt`` module with the builder half of the API, as 10.x or 11.x expose it; it
  records the calls a build makes.
- :class:`TensorRTTwin` stands in for the ``tensorrt`` module's runtime half: the serialized "engine" is an ONNX
  graph, and ``execute_async_v3`` enqueues an ONNX Runtime run on the stream whose handle it is given, reading and
  writing the device addresses set at enqueue time.
"""
from __future__ import annotations

import ctypes
import enum
import types
from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False)  # identity: two events (streams, records) are never "equal"
class _Token:
    """One ``cudaEventRecord``: done once the stream's work before it has run."""

    stream: "_Stream"
    done: bool = False


@dataclass(eq=False)
class _Stream:
    handle: int
    pending: list = field(default_factory=list)


@dataclass(eq=False)
class _Event:
    latest: _Token | None = None


class CudaTwin:
    """CUDA on the host, with deferred per-stream work (see the module docstring)."""

    name = "cuda-twin"

    def __init__(self, gpu_name: str = "Twin GPU", compute_capability: str = "8.7"):
        self.gpu = (gpu_name, compute_capability)
        self.live: dict[int, ctypes.Array] = {}  # address -> allocation (host and "device" alike)
        self.streams: dict[int, _Stream] = {}
        self.events: list[_Event] = []
        self.ops_run = 0

    # memory
    def _alloc(self, n: int) -> int:
        buf = (ctypes.c_uint8 * max(int(n), 1))()
        ptr = ctypes.addressof(buf)
        self.live[ptr] = buf
        return ptr

    def _release(self, ptr: int) -> None:
        if ptr not in self.live:
            raise RuntimeError(f"free of an unknown pointer {ptr:#x}")
        del self.live[ptr]

    malloc = malloc_host = _alloc
    free = free_host = _release

    def view(self, ptr: int, nbytes: int) -> np.ndarray:
        """The bytes at ``ptr`` (which must lie inside a live allocation)."""
        for base, buf in self.live.items():
            if base <= ptr and ptr + nbytes <= base + ctypes.sizeof(buf):
                return np.frombuffer((ctypes.c_uint8 * nbytes).from_address(ptr), np.uint8)
        raise RuntimeError(f"access outside any allocation: {ptr:#x} + {nbytes}")

    # streams and events
    def stream_create(self) -> _Stream:
        stream = _Stream(handle=0x5000 + len(self.streams))
        self.streams[stream.handle] = stream
        return stream

    def stream_destroy(self, stream: _Stream) -> None:
        self.stream_sync(stream)
        del self.streams[stream.handle]

    def handle(self, stream: _Stream) -> int:
        return stream.handle

    def enqueue(self, handle: int, op) -> None:
        """Queue ``op()`` on the stream with this handle (what a kernel launch does)."""
        self.streams[handle].pending.append(("run", op))

    def memcpy_async(self, dst: int, src: int, n: int, direction, stream: _Stream) -> None:
        def copy():
            self.view(dst, n)[...] = self.view(src, n)
        stream.pending.append(("run", copy))

    def event_create(self) -> _Event:
        event = _Event()
        self.events.append(event)
        return event

    def event_destroy(self, event: _Event) -> None:
        self.events.remove(event)

    def event_record(self, event: _Event, stream: _Stream) -> None:
        event.latest = _Token(stream)
        stream.pending.append(("record", event.latest))

    def stream_wait_event(self, stream: _Stream, event: _Event) -> None:
        if event.latest is not None:  # waiting on a never-recorded event is a no-op in CUDA
            stream.pending.append(("wait", event.latest))

    def _run_until(self, stream: _Stream, token: _Token | None) -> None:
        while stream.pending and not (token is not None and token.done):
            kind, arg = stream.pending.pop(0)
            if kind == "run":
                arg()
                self.ops_run += 1
            elif kind == "record":
                arg.done = True
            elif not arg.done:  # wait: run the other stream up to that record first
                self._run_until(arg.stream, arg)

    def stream_sync(self, stream: _Stream) -> None:
        self._run_until(stream, None)

    def event_sync(self, event: _Event) -> None:
        if event.latest is not None and not event.latest.done:
            self._run_until(event.latest.stream, event.latest)

    def device_info(self, device: int) -> tuple[str, str]:
        return self.gpu


def twin_engine_file(path, bundle, blob: bytes | None = None, **header):
    """An edgead engine file for the twins: the bundle's ONNX graph as the "engine", under a header that matches
    :class:`CudaTwin`'s GPU, TensorRT 10.3.0 and ``bundle`` (any field can be overridden, e.g. ``gpu_name=``)."""
    from edgead.infer.engine_file import EngineHeader, write_engine_file

    spec = bundle.input_spec
    fields = dict(tensorrt_version="10.3.0", gpu_name="Twin GPU", compute_capability="8.7",
                  model_hash=bundle.model_hash, bundle_format_version=bundle.meta.format_version,
                  precision="fp32", target="rtx-ada", edgead_version="0", input_height=spec.height,
                  input_width=spec.width, channels=spec.channels)
    fields.update(header)
    return write_engine_file(path, EngineHeader(**fields), bundle.onnx_path.read_bytes() if blob is None else blob)


class _Dims(tuple):
    """TensorRT's Dims: iterable of ints."""


class _Engine:
    def __init__(self, twin: "TensorRTTwin", blob: bytes):
        import onnxruntime as ort

        self.twin = twin
        self.session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()] + [o.name for o in self.session.get_outputs()]
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.num_io_tensors = len(self.names)

    def get_tensor_name(self, i: int) -> str:
        return self.names[i]

    def get_tensor_dtype(self, name: str) -> str:
        return "uint8" if name in self.inputs else self.twin.output_dtype

    def get_tensor_profile_shape(self, name: str, profile: int):
        return [_Dims(s) for s in self.twin.profile]

    def create_execution_context(self) -> "_Context":
        return _Context(self)


class _Context:
    def __init__(self, engine: _Engine):
        self.engine = engine
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self._out_shapes: dict[int, dict] = {}

    def set_input_shape(self, name: str, shape) -> bool:
        lo, _, hi = self.engine.twin.profile
        shape = tuple(int(d) for d in shape)
        if len(shape) != len(hi) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi)):
            return False
        self.shapes[name] = shape
        return True

    def _outputs_for(self, batch: int) -> dict:
        """Output shapes for a batch size: the contract graph resizes inside, so they depend on the batch only
        (probed once per batch size at the profile's smallest frame, not at the frame asked for)."""
        if batch not in self._out_shapes:
            smallest = (batch, *self.engine.twin.profile[0][1:])
            outs = self.engine.session.run(None, {"image": np.zeros(smallest, np.uint8)})
            names = [o.name for o in self.engine.session.get_outputs()]
            self._out_shapes[batch] = {n: o.shape for n, o in zip(names, outs)}
        return self._out_shapes[batch]

    def get_tensor_shape(self, name: str) -> _Dims:
        if name in self.engine.inputs:
            return _Dims(self.shapes[name])
        return _Dims(self._outputs_for(self.shapes["image"][0])[name])

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        cuda, session = self.engine.twin.cuda, self.engine.session
        shape, addresses = self.shapes["image"], dict(self.addresses)  # bound at enqueue time, as in TensorRT
        out_dtype = np.dtype(self.engine.twin.output_dtype)

        def run():
            image = cuda.view(addresses["image"], int(np.prod(shape))).reshape(shape).copy()
            names = [o.name for o in session.get_outputs()]
            for name, value in zip(names, session.run(None, {"image": image})):
                value = np.ascontiguousarray(value.astype(out_dtype))
                cuda.view(addresses[name], value.nbytes)[...] = value.view(np.uint8).reshape(-1)

        cuda.enqueue(int(stream_handle), run)
        return True


class TensorRTTwin(types.ModuleType):
    """A ``tensorrt`` module for :class:`~edgead.infer.trt.TensorRTBackend`: Logger, Runtime, nptype.

    Args:
        cuda: the :class:`CudaTwin` whose streams ``execute_async_v3`` enqueues on.
        profile: (min, opt, max) input shapes ``[N, H, W, C]`` of the single optimisation profile.
        output_dtype: the engines' output dtype (``"float16"`` as an FP16 engine with FP16 outputs has).
        version: ``__version__``.
    """

    def __init__(self, cuda: CudaTwin, profile, output_dtype: str = "float32", version: str = "10.3.0"):
        super().__init__("tensorrt")
        self.__version__ = version
        self.cuda = cuda
        self.profile = tuple(tuple(int(d) for d in s) for s in profile)
        self.output_dtype = output_dtype
        twin = self

        class Logger:
            WARNING = 2

            def __init__(self, severity=2):
                self.severity = severity

        class Runtime:
            def __init__(self, logger):
                self.logger = logger

            def deserialize_cuda_engine(self, blob: bytes):
                return _Engine(twin, blob) if blob[:1] != b"\x00" else None

        self.Logger, self.Runtime = Logger, Runtime

    @staticmethod
    def nptype(dtype: str):
        return np.dtype(dtype).type


class _Err:
    def __init__(self, node, name, desc):
        self._v = (node, name, desc)

    def node(self):
        return self._v[0]

    def node_name(self):
        return self._v[1]

    def desc(self):
        return self._v[2]


def builder_twin(version="10.3.0", *, parse_errors=(), build_ok=True) -> types.ModuleType:
    """A ``tensorrt`` module with the builder half of the API; ``calls`` records what the build did.

    11.x drops ``BuilderFlag.FP16`` / ``INT8`` (precision comes from the strongly typed graph).
    """
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = calls = []
    major = int(version.split(".")[0])
    flags = ["GPU_FALLBACK", "REFIT"] + (["FP16", "INT8"] if major < 11 else [])
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", flags)
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", {"STRONGLY_TYPED": 1})
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    trt.DeviceType = enum.IntEnum("DeviceType", {"GPU": 0, "DLA": 1})

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            pass

    class Cache:
        def __init__(self, data: bytes):
            self.data = data

        def serialize(self):
            return memoryview(self.data + b"|built")

    class Config:
        def __init__(self):
            self.default_device_type, self.DLA_core, self._cache = trt.DeviceType.GPU, -1, None

        def set_memory_pool_limit(self, pool, size):
            calls.append(("pool", pool.name, size))

        def set_flag(self, flag):
            calls.append(("flag", flag.name))

        def add_optimization_profile(self, profile):
            calls.append(("profile", profile.shapes))

        def create_timing_cache(self, data):
            calls.append(("cache in", bytes(data)))
            return Cache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            self._cache = cache
            return True

        def get_timing_cache(self):
            return self._cache

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            self.shapes = (name, tuple(lo), tuple(opt), tuple(hi))

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls.append(("network", flags))
            return object()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls.append(("device", config.default_device_type.name, config.DLA_core))
            return memoryview(b"engine-bytes") if build_ok else None

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = len(parse_errors)

        def parse_from_file(self, path):
            calls.append(("parse", path))
            return not parse_errors

        def get_error(self, i):
            return _Err(*parse_errors[i])

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, OnnxParser
    return trt
