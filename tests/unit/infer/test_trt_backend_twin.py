"""TensorRTBackend's own logic on software twins of CUDA and the TensorRT runtime (``twins.py``).

The twins defer every stream's work until something synchronises on it, so these tests fail if the backend forgets
a cross-stream wait or a synchronisation, and they check slots, shapes, dtypes and the release of every buffer.
They isolate the unit: TensorRT itself runs only in tests/gpu/test_trt.py.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from edgead.bundle import load_bundle
from edgead.errors import EngineError
from edgead.infer import cuda_mem
from edgead.infer.onnxrt import OnnxRuntimeBackend

# test helpers, on sys.path through tests/conftest.py
import contract_model as cm
from twins import CudaTwin, TensorRTTwin, twin_engine_file

PROFILE = ((1, 16, 16, 3), (2, 40, 40, 3), (2, 64, 64, 3))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(cm.build_bundle(tmp_path_factory.mktemp("trt") / "bundle"))


@pytest.fixture
def cuda(monkeypatch):
    twin = CudaTwin()
    monkeypatch.setattr(cuda_mem, "_API", twin)
    return twin


def _install(monkeypatch, cuda, **kw):
    trt = TensorRTTwin(cuda, PROFILE, **kw)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


@pytest.fixture
def trt(monkeypatch, cuda):
    return _install(monkeypatch, cuda)


def _engine(tmp_path, bundle, blob=None, **header):
    return twin_engine_file(tmp_path / "model.engine", bundle, blob, **header)


def _frames(n_batches, batch=2, hw=(40, 40), seed=3):
    rng = np.random.default_rng(seed)
    return [np.stack([cm.good_image(rng, hw) for _ in range(batch)]) for _ in range(n_batches)]


def _assert_same(pred, ref, tol=1e-6):
    for name in ("score", "map", "raw_score", "raw_map"):
        got, want = getattr(pred, name), getattr(ref, name)
        assert got.dtype == np.float32 and got.shape == want.shape, name
        assert np.abs(got - want).max() <= tol * max(1.0, float(np.abs(want).max())), name


@pytest.fixture
def reference(bundle):
    with OnnxRuntimeBackend(bundle.onnx_path, providers=["CPUExecutionProvider"]) as ref:
        yield ref


def test_two_batches_in_flight_match_onnxruntime(tmp_path, bundle, cuda, trt, reference):
    from edgead.infer.trt import TensorRTBackend

    frames = _frames(5)
    with TensorRTBackend(_engine(tmp_path, bundle), bundle=bundle) as eng:
        t0, t1 = eng.submit(frames[0]), eng.submit(frames[1])
        assert cuda.ops_run == 0  # deferred: nothing has run before a collect
        preds = [eng.collect(t1), eng.collect(t0)]  # out of order on purpose
        preds = [preds[1], preds[0]] + [eng.infer(f) for f in frames[2:]]
    for frame, pred in zip(frames, preds):
        _assert_same(pred, reference.infer(frame))


def test_smaller_batch_and_image_than_the_profile(tmp_path, bundle, cuda, trt, reference):
    from edgead.infer.trt import TensorRTBackend

    with TensorRTBackend(_engine(tmp_path, bundle), bundle=bundle) as eng:
        big = _frames(1, batch=2, hw=(64, 64))[0]
        small = _frames(1, batch=1, hw=(24, 30), seed=4)[0]
        p_big, p_small = eng.infer(big), eng.infer(small)
        assert p_small.score.shape == (1,)
        _assert_same(p_small, reference.infer(small))
        _assert_same(p_big, reference.infer(big))


def test_fp16_outputs_come_back_as_float32(tmp_path, bundle, cuda, monkeypatch, reference):
    from edgead.infer.trt import TensorRTBackend

    _install(monkeypatch, cuda, output_dtype="float16")
    frame = _frames(1)[0]
    with TensorRTBackend(_engine(tmp_path, bundle, precision="fp16"), bundle=bundle) as eng:
        _assert_same(eng.infer(frame), reference.infer(frame), tol=2e-3)


def test_a_third_batch_waits_for_a_collect(tmp_path, bundle, cuda, trt, reference):
    from edgead.infer.trt import TensorRTBackend

    frames = _frames(3)
    with TensorRTBackend(_engine(tmp_path, bundle), bundle=bundle) as eng:
        t0, t1 = eng.submit(frames[0]), eng.submit(frames[1])
        with pytest.raises(EngineError, match="both buffers are in flight"):
            eng.submit(frames[2])
        _assert_same(eng.collect(t0), reference.infer(frames[0]))
        t2 = eng.submit(frames[2])  # slot 0 is free again; slot 1 still holds frame 1
        _assert_same(eng.collect(t2), reference.infer(frames[2]))
        _assert_same(eng.collect(t1), reference.infer(frames[1]))


@pytest.mark.parametrize("images, match", [
    (np.zeros((1, 40, 40, 3), np.float32), "input must be uint8"),
    (np.zeros((3, 40, 40, 3), np.uint8), r"1<=N<=2"),
    (np.zeros((1, 80, 40, 3), np.uint8), r"16<=H<=64"),
    (np.zeros((1, 40, 8, 3), np.uint8), r"16<=W<=64, 3\], got uint8 \(1, 40, 8, 3\)"),  # below the profile
    (np.zeros((1, 40, 40, 1), np.uint8), r"got uint8 \(1, 40, 40, 1\)"),
])
def test_input_outside_the_profile_names_the_rebuild(tmp_path, bundle, cuda, trt, images, match):
    from edgead.infer.trt import TensorRTBackend

    with TensorRTBackend(_engine(tmp_path, bundle), bundle=bundle) as eng:
        with pytest.raises(EngineError, match=match) as err:
            eng.submit(images)
        assert "rebuild the engine for a target whose profile covers the frames or ROIs" in str(err.value)


def test_close_releases_every_buffer_stream_and_event(tmp_path, bundle, cuda, trt):
    from edgead.infer.trt import TensorRTBackend

    eng = TensorRTBackend(_engine(tmp_path, bundle), bundle=bundle)
    # 2 slots x (pinned + device) x (image + 4 outputs), 3 events per slot, 3 streams
    assert (len(cuda.live), len(cuda.events), len(cuda.streams)) == (20, 6, 3)
    eng.submit(_frames(1)[0])  # left in flight: close() must still drain and free it
    eng.close()
    eng.close()  # idempotent
    assert (len(cuda.live), len(cuda.events), len(cuda.streams)) == (0, 0, 0)
    assert cuda.ops_run == 1 + 1 + 4  # the in-flight batch ran before its buffers went


def test_warmup_runs_at_model_resolution(tmp_path, bundle, cuda, trt):
    from edgead.infer import BackendKind, open_backend

    with open_backend(_engine(tmp_path, bundle), BackendKind.TENSORRT, bundle=bundle) as eng:
        eng.warmup(runs=2)
        spec = eng.input_spec
        assert (spec.height, spec.width, spec.channels) == (bundle.input_spec.height, bundle.input_spec.width, 3)
    assert cuda.ops_run == 2 * (1 + 1 + 4)


@pytest.mark.parametrize("header, match", [
    ({"gpu_name": "Orin"}, "was built for GPU 'Orin'"),
    ({"tensorrt_version": "10.16.0"}, "built with TensorRT 10.16.0, this station runs TensorRT 10.3.0"),
])
def test_an_engine_for_another_gpu_or_tensorrt_is_refused(tmp_path, bundle, cuda, trt, header, match):
    from edgead.infer.trt import TensorRTBackend

    with pytest.raises(EngineError, match=match) as err:
        TensorRTBackend(_engine(tmp_path, bundle, **header), bundle=bundle)
    assert f"edgead build-engine --bundle {bundle.root} --target rtx-ada" in str(err.value)
    assert not cuda.live  # refused before any buffer was allocated


def test_an_engine_that_does_not_deserialize_is_refused(tmp_path, bundle, cuda, trt):
    from edgead.infer.trt import TensorRTBackend

    with pytest.raises(EngineError, match="could not deserialize"):
        TensorRTBackend(_engine(tmp_path, bundle, blob=b"\x00corrupt"), bundle=bundle)


# The twins must catch what they are here to catch: each broken variant of the backend gives stale outputs.
@pytest.mark.parametrize("broken", ["no cross-stream waits", "no synchronisation in collect"])
def test_the_twin_catches_a_missing_wait_or_synchronisation(tmp_path, bundle, cuda, trt, reference, monkeypatch,
                                                             broken):
    from edgead.infer.trt import TensorRTBackend

    target = "wait" if broken == "no cross-stream waits" else "synchronize"
    cls = cuda_mem.CudaStream if target == "wait" else cuda_mem.CudaEvent
    monkeypatch.setattr(cls, target, lambda *a: None)
    frame = _frames(1)[0]
    with TensorRTBackend(_engine(tmp_path, bundle), bundle=bundle) as eng:
        pred = eng.infer(frame)
    want = reference.infer(frame)
    assert not np.allclose(pred.raw_map, want.raw_map)


def test_infer_many_keeps_both_slots_busy_and_keeps_the_order(tmp_path, bundle, cuda, trt, reference, monkeypatch):
    from edgead.infer.trt import TensorRTBackend

    frames = [_frames(1, batch=1, hw=hw, seed=i)[0] for i, hw in enumerate([(40, 40), (24, 30), (64, 48), (32, 32)])]
    calls = []
    with TensorRTBackend(_engine(tmp_path, bundle), bundle=bundle) as eng:
        for name in ("submit", "collect"):
            method = getattr(eng, name)
            monkeypatch.setattr(eng, name, lambda x, _m=method, _n=name: (calls.append(_n[0]), _m(x))[1])
        preds = eng.infer_many(frames)
    assert "".join(calls) == "sscscscc"  # frame n+1 is in before frame n is collected
    for frame, pred in zip(frames, preds):
        _assert_same(pred, reference.infer(frame))


def test_infer_many_drains_its_batches_when_one_is_refused(tmp_path, bundle, cuda, trt, reference):
    from edgead.infer.trt import TensorRTBackend

    good = _frames(2, batch=1)
    with TensorRTBackend(_engine(tmp_path, bundle), bundle=bundle) as eng:
        with pytest.raises(EngineError, match="input must be uint8"):
            eng.infer_many([good[0], good[1], np.zeros((1, 99, 40, 3), np.uint8)])
        _assert_same(eng.infer_many(good)[1], reference.infer(good[1]))  # both slots are free again


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_the_gpu_round_trip_itself_runs_on_the_twins(tmp_path, cuda, monkeypatch, precision):
    """tests/gpu/test_trt.py's own steps (convert for rtx-ada, build, load, two batches in flight, compare with ONNX
    Runtime) on the twins, so that the GPU test cannot rot where no GPU runs it. The "engine" is the converted ONNX
    graph; its frames must lie inside the target's optimisation profile, as on a GPU."""
    import importlib.machinery
    from pathlib import Path

    from edgead.convert import trt_build
    from edgead.convert.targets import get_target

    target = get_target("rtx-ada")
    n = target.batch_size
    trt = TensorRTTwin(cuda, ((1, *target.min_input_hw, 3), (n, *target.opt_input_hw, 3),
                              (n, *target.max_input_hw, 3)))
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # the GPU test looks for it with find_spec
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trt_build, "compile_engine", lambda onnx_path, *a, **k: Path(onnx_path).read_bytes())
    _gpu_tests().test_build_load_infer_matches_onnxruntime(tmp_path, precision)
    assert cuda.ops_run >= 4 * 6


def test_the_gpu_cuda_round_trip_itself_runs_on_the_twin(cuda):
    _gpu_tests().test_cuda_mem_round_trip()
    assert cuda.ops_run == 3 and not cuda.live and not cuda.streams and not cuda.events


def _gpu_tests():
    """tests/gpu/test_trt.py as a module (under its own name: pytest collects the file separately)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("gpu_test_trt", Path(__file__).parents[2] / "gpu" / "test_trt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_cuda_error_in_collect_frees_the_slot(tmp_path, bundle, cuda, trt, reference, monkeypatch):
    from edgead.infer.trt import TensorRTBackend

    frames = _frames(3)
    with TensorRTBackend(_engine(tmp_path, bundle), bundle=bundle) as eng:
        with monkeypatch.context() as m:
            def fail(*_):
                raise EngineError("CUDA cudaEventSynchronize failed: an illegal memory access (700)")
            m.setattr(cuda_mem.CudaEvent, "synchronize", fail)
            with pytest.raises(EngineError, match="illegal memory access"):
                eng.infer_many(frames[:2])
        # both slots are free again: the next parts run
        for frame, pred in zip(frames, eng.infer_many(frames)):
            _assert_same(pred, reference.infer(frame))
