from pathlib import Path

import pytest

from edgead.convert.targets import PROFILES_DIR, Precision, load_targets, parse_target
from edgead.errors import ConfigError
from edgead.infer import BackendKind

NAMES = {"jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "jetson-xavier-nx", "rtx-ampere", "rtx-ada",
         "x86-cpu"}


def test_shipped_profiles_load():
    targets = load_targets()
    assert NAMES <= set(targets)
    assert targets["jetson-orin-nano"].dla is None  # Orin Nano has no DLA
    assert targets["jetson-orin-nx"].dla.core == 0 and targets["jetson-orin-nx"].dla.gpu_fallback
    assert targets["x86-cpu"].backend is BackendKind.ONNXRUNTIME
    assert all(Precision.AUTO not in t.precisions for t in targets.values())
    assert targets["rtx-ada"].compute_capability == "8.9"


def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _good_text() -> str:
    return (PROFILES_DIR / "rtx-ampere.yaml").read_text()


def test_adding_a_file_adds_a_target(tmp_path):
    _write(tmp_path, _good_text(), "my-ipc.yaml")
    assert list(load_targets(tmp_path)) == ["my-ipc"]


@pytest.mark.parametrize("edit, key", [
    (lambda t: t.replace("workspace_mib: 4096\n", ""), "workspace_mib"),
    (lambda t: t + "turbo: true\n", "turbo"),
    (lambda t: t.replace("[fp32, fp16, int8]", "[fp32, fp8]"), "precisions"),
    (lambda t: t.replace("backend: tensorrt", "backend: openvino"), "backend"),
    (lambda t: t.replace("max_input_hw: [2560, 2560]", "max_input_hw: [64, 64]"), "opt_input_hw"),
    (lambda t: t.replace("dla: null", "dla: {core: -1, gpu_fallback: yes}"), "dla"),
    (lambda t: t.replace('compute_capability: "8.6"', "compute_capability: null"), "compute_capability"),
])
def test_malformed_profile_names_file_and_key(tmp_path, edit, key):
    path = _write(tmp_path, edit(_good_text()))
    with pytest.raises(ConfigError) as err:
        parse_target(path)
    assert "bad.yaml" in str(err.value) and repr(key) in str(err.value)


def test_not_yaml(tmp_path):
    with pytest.raises(ConfigError, match="bad.yaml"):
        parse_target(_write(tmp_path, "a: [1, 2\n"))
