"""The cuda-python adapter of ``edgead.infer.cuda_mem`` against the real ``cuda.bindings.runtime``, GPU or not.

cuda-bindings imports without a GPU or driver, checks the arity and argument types of every call, and only then
asks the driver. So on a CPU machine every adapter call must reach the driver and come back as a typed
:class:`EngineError` carrying CUDA's own message, never as a TypeError or AttributeError: that proves the adapter
speaks the binding's API (names, argument order, ``(err, value)`` returns, enum names). The round trip with real
memory is tests/gpu/test_trt.py::test_cuda_mem_round_trip.
"""
from __future__ import annotations

import pytest

from edgead.errors import EngineError
from edgead.infer import cuda_mem

rt = pytest.importorskip("cuda.bindings.runtime", reason="needs cuda-bindings (pip install 'edgead[dev]')")


def _has_device() -> bool:
    err, count = rt.cudaGetDeviceCount()
    return int(err) == 0 and count > 0


@pytest.fixture
def api():
    return cuda_mem._CudaPython(rt)


def _calls():
    stream, event = rt.cudaStream_t(), rt.cudaEvent_t()
    return {
        "malloc": (16,), "free": (0,), "malloc_host": (16,), "free_host": (0,),
        "stream_create": (), "stream_destroy": (stream,), "stream_sync": (stream,),
        "memcpy_async": (0, 0, 16, cuda_mem.Direction.H2D, stream),
        "event_create": (), "event_destroy": (event,), "event_record": (event, stream), "event_sync": (event,),
        "stream_wait_event": (stream, event), "device_info": (0,),
    }


def test_every_adapter_call_is_accepted_by_the_binding(api):
    for name, args in _calls().items():
        try:
            getattr(api, name)(*args)
        except EngineError as exc:  # the driver's answer (no GPU, or a null handle on a GPU)
            assert str(exc).startswith("CUDA cuda"), (name, exc)
    assert api.handle(rt.cudaStream_t()) == 0


def test_every_direction_maps_to_a_binding_enum(api):
    assert {d: k.name for d, k in api.kinds.items()} == {
        cuda_mem.Direction.H2D: "cudaMemcpyHostToDevice", cuda_mem.Direction.D2H: "cudaMemcpyDeviceToHost",
        cuda_mem.Direction.D2D: "cudaMemcpyDeviceToDevice"}


def test_cuda_api_prefers_cuda_bindings(monkeypatch):
    monkeypatch.setattr(cuda_mem, "_API", None)
    assert cuda_mem.cuda_api().name == "cuda.bindings.runtime"


@pytest.mark.skipif(_has_device(), reason="a CUDA device is present: tests/gpu covers it")
def test_without_a_gpu_the_error_is_cudas_own_and_the_build_goes_to_the_target(monkeypatch, api):
    monkeypatch.setattr(cuda_mem, "_API", api)
    with pytest.raises(EngineError, match=r"CUDA cudaGetDeviceProperties failed: .*driver") as err:
        cuda_mem.device_info(0)
    assert "nvidia-smi" in str(err.value)
    with pytest.raises(EngineError, match="cudaMallocHost failed"):
        cuda_mem.PinnedBuffer(1024)
    from edgead.convert.trt_build import tensorrt_available

    assert not tensorrt_available()
