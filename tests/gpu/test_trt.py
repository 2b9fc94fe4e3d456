"""GPU round trips: export -> convert -> build -> load -> infer -> compare with ONNX Runtime; CUDA memory alone.

Skipped with the reason when TensorRT, cuda-python or a CUDA device is absent.
"""
from __future__ import annotations

import importlib.util
import sys

import contract_model as cm  # tests/unit/convert (on sys.path: tests/conftest.py)
import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def _cuda_or_skip():
    try:
        from edgead.infer.cuda_mem import device_info

        return device_info(0)
    except Exception as exc:  # MissingExtraError or a CUDA error: no usable GPU here
        pytest.skip(f"needs cuda-python (or pycuda) and a CUDA device: {exc}")


def _trt_or_skip():
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("needs TensorRT (pip install 'edgead[trt]'; on Jetson apt install python3-libnvinfer)")
    return _cuda_or_skip()


def test_cuda_mem_round_trip():
    _cuda_or_skip()
    from edgead.infer.cuda_mem import CudaEvent, CudaStream, DeviceBuffer, Direction, PinnedBuffer, copy_async

    n = 1 << 20
    with CudaStream() as s1, CudaStream() as s2, CudaEvent() as ev, PinnedBuffer(n) as h_in, \
            PinnedBuffer(n) as h_out, DeviceBuffer(n) as d1, DeviceBuffer(n) as d2:
        data = np.random.default_rng(0).integers(0, 255, n, dtype=np.uint8)
        h_in.array(np.uint8)[:] = data
        copy_async(d1.ptr, h_in.ptr, n, Direction.H2D, s1)
        copy_async(d2.ptr, d1.ptr, n, Direction.D2D, s1)
        ev.record(s1)
        s2.wait(ev)
        copy_async(h_out.ptr, d2.ptr, n, Direction.D2H, s2)
        s2.synchronize()
        assert np.array_equal(h_out.array(np.uint8), data)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_load_infer_matches_onnxruntime(tmp_path, precision):
    _trt_or_skip()
    from edgead.bundle import load_bundle
    from edgead.convert.pipeline import ENGINE, ConvertOptions, convert
    from edgead.convert.targets import get_target
    from edgead.infer.onnxrt import OnnxRuntimeBackend
    from edgead.infer.trt import TensorRTBackend

    bundle = cm.build_bundle(tmp_path / "bundle")
    calib = cm.write_good_folder(tmp_path / "calib", 16)
    out = tmp_path / "out"
    rep = convert(bundle, "rtx-ada", out, ConvertOptions(precision, calib=calib if precision == "int8" else None,
                  latency_runs=0))
    assert rep.engine.startswith("built")
    rng = np.random.default_rng(3)
    hw = get_target("rtx-ada").min_input_hw  # frames must lie inside the engine's optimisation profile
    frames = [np.stack([cm.good_image(rng, hw) for _ in range(2)]) for _ in range(4)]
    with OnnxRuntimeBackend(out / "model.onnx", providers=["CPUExecutionProvider"]) as ref, \
            TensorRTBackend(out.parent / ENGINE, bundle=load_bundle(out)) as eng:
        tickets = [eng.submit(frames[0]), eng.submit(frames[1])]  # double buffering: two in flight
        preds = [eng.collect(tickets[0]), eng.collect(tickets[1])] + [eng.infer(f) for f in frames[2:]]
        for f, p in zip(frames, preds):
            r = ref.infer(f)
            tol = {"fp32": 1e-3, "fp16": 2e-2, "int8": 5e-2}[precision]
            scale = max(1.0, float(np.abs(r.raw_map).max()))
            assert np.abs(p.raw_map - r.raw_map).max() <= tol * scale
            assert np.abs(p.score - r.score).max() <= tol * 5
    print(f"{precision}: TensorRT matches ONNX Runtime", file=sys.stderr)
