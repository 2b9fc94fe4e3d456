import dataclasses

import pytest

from edgead.errors import EngineError
from edgead.infer.engine_file import (MAGIC, EngineHeader, check_compatible, pack_engine, read_engine_file,
                                      unpack_engine, write_engine_file)

HEADER = EngineHeader(tensorrt_version="10.3.0", gpu_name="Orin", compute_capability="8.7", model_hash="ab" * 32,
                      bundle_format_version=1, precision="int8", target="jetson-orin-nx", edgead_version="0.1.0",
                      input_height=256, input_width=320, channels=3)
HERE = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7"}


def test_round_trip(tmp_path):
    path = write_engine_file(tmp_path / "m.engine", HEADER, b"\x00engine-bytes")
    header, engine = read_engine_file(path)
    assert header == HEADER and engine == b"\x00engine-bytes"
    check_compatible(header, **HERE)


@pytest.mark.parametrize("field, value, expected", [
    ("tensorrt_version", "11.4.0", "TensorRT 10.3.0, this station runs TensorRT 11.4.0"),
    ("compute_capability", "8.9", "compute capability 8.7), this station has 'Orin' (compute capability 8.9)"),
    ("gpu_name", "NVIDIA RTX 4000 Ada", "built for GPU 'Orin'"),
])
def test_another_station_is_refused(field, value, expected):
    with pytest.raises(EngineError) as err:
        check_compatible(HEADER, **{**HERE, field: value}, where="m.engine")
    assert expected in str(err.value)
    assert "rebuild the engine on this station: edgead build-engine" in str(err.value)


def test_fake_header_from_another_gpu_in_a_file(tmp_path):
    other = dataclasses.replace(HEADER, gpu_name="NVIDIA GeForce RTX 3080", compute_capability="8.6")
    path = write_engine_file(tmp_path / "o.engine", other, b"x")
    header, _ = read_engine_file(path)
    with pytest.raises(EngineError, match="RTX 3080"):
        check_compatible(header, **HERE)


@pytest.mark.parametrize("data, match", [
    (b"\x7fELF plain trtexec engine", "not an edgead engine file"),
    (MAGIC + b"\x01", "truncated"),
    (MAGIC + (5000).to_bytes(4, "little") + b"{}", "corrupt or truncated"),
    (MAGIC + (2).to_bytes(4, "little") + b"{]" + b"e", "not valid JSON"),
    (MAGIC + (2).to_bytes(4, "little") + b"{}" + b"e", "lacks"),
])
def test_bad_files(data, match):
    with pytest.raises(EngineError, match=match):
        unpack_engine(data)


def test_header_without_engine():
    with pytest.raises(EngineError, match="no engine"):
        unpack_engine(pack_engine(HEADER, b""))


def test_missing_file(tmp_path):
    with pytest.raises(EngineError, match="cannot be read"):
        read_engine_file(tmp_path / "none.engine")
