"""An engine runs only with the bundle it was compiled from: header ``model_hash`` == the bundle's ``bundle_sha256``.

Literal headers and a tiny bundle; no TensorRT needed (the check runs before TensorRT is imported).
"""
import dataclasses

import pytest

from edgead.bundle import write_bundle
from edgead.errors import EngineError
from edgead.infer.engine_file import (EngineHeader, check_built_from, pack_engine, read_engine_header,
                                      write_engine_file)

HEADER = EngineHeader(tensorrt_version="10.3.0", gpu_name="Orin", compute_capability="8.7", model_hash="ab" * 32,
                      bundle_format_version=1, precision="int8", target="jetson-orin-nx", edgead_version="0.1.0",
                      input_height=256, input_width=320, channels=3)


def test_same_bundle_passes():
    check_built_from(HEADER, model_hash="ab" * 32, bundle_format_version=1)


def test_another_bundle_is_refused_with_the_rebuild_command():
    with pytest.raises(EngineError) as err:
        check_built_from(HEADER, model_hash="cd" * 32, bundle_format_version=1, bundle="/opt/r/bundle",
                         where="/opt/r/engine")
    msg = str(err.value)
    assert "/opt/r/engine was built from bundle abababababab" in msg and "runs bundle cdcdcdcdcdcd" in msg
    assert "edgead build-engine --bundle /opt/r/bundle --target jetson-orin-nx" in msg


def test_another_bundle_format_is_refused():
    with pytest.raises(EngineError, match="format-1 bundle, BUNDLE is format 2"):
        check_built_from(HEADER, model_hash="ab" * 32, bundle_format_version=2)


def test_read_header_only(tmp_path):
    path = write_engine_file(tmp_path / "m.engine", HEADER, b"\x00" * 100_000)
    assert read_engine_header(path) == HEADER
    (tmp_path / "empty.engine").write_bytes(pack_engine(HEADER, b""))
    with pytest.raises(EngineError, match="no engine"):
        read_engine_header(tmp_path / "empty.engine")
    (tmp_path / "bare.engine").write_bytes(b"\x7fELF")
    with pytest.raises(EngineError, match="not an edgead engine file"):
        read_engine_header(tmp_path / "bare.engine")


def _bundle(path):
    meta = {"model": {"type": "padim", "params": {}}, "input": {"height": 8, "width": 8, "channels": 3},
            "thresholds": {"image": 1.0, "method": "manual"}, "normalisation": {"image_lo": 0.0}}
    return write_bundle(path, meta, {"model.onnx": b"not a graph: only hashed here"})


def test_tensorrt_backend_refuses_an_engine_of_another_bundle(tmp_path):
    from edgead.infer.trt import TensorRTBackend

    bundle = _bundle(tmp_path / "bundle")
    stale = dataclasses.replace(HEADER, model_hash="0" * 64)
    path = write_engine_file(tmp_path / "model.engine", stale, b"engine")
    with pytest.raises(EngineError, match="rebuild it from this bundle: edgead build-engine --bundle"):
        TensorRTBackend(path, bundle=bundle)


def test_open_backend_passes_the_bundle_to_the_check(tmp_path):
    from edgead.infer import BackendKind, open_backend

    bundle = _bundle(tmp_path / "bundle")
    path = write_engine_file(tmp_path / "model.engine", HEADER, b"engine")
    with pytest.raises(EngineError, match=f"runs bundle {bundle.model_hash[:12]}"):
        open_backend(path, BackendKind.TENSORRT, bundle=bundle)
