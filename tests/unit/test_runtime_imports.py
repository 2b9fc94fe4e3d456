"""The station runtime never imports torch (nor onnx, nor training code), and optional extras load lazily."""
import subprocess
import sys

STATION_MODULES = [
    "edgead.daemon.runner", "edgead.daemon.station", "edgead.daemon.config", "edgead.camera", "edgead.align",
    "edgead.plc", "edgead.infer", "edgead.infer.onnxrt", "edgead.infer.trt", "edgead.bundle", "edgead.records",
    "edgead.observe.http", "edgead.evaluation", "edgead.metrics", "edgead.data", "edgead.cli",
    "edgead.cli.station_cmds",
]


def _loaded_after(code: str) -> set:
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(' '.join(sorted(sys.modules)))"],
                         check=True, capture_output=True, text=True).stdout.split()
    return set(out)


def test_runtime_does_not_import_torch_or_onnx():
    loaded = _loaded_after("import " + ", ".join(STATION_MODULES))
    for heavy in ("torch", "onnx", "tensorrt", "pymodbus", "gi", "sklearn"):
        assert heavy not in loaded, f"station runtime imported {heavy}"


def test_cli_run_path_does_not_import_torch():
    loaded = _loaded_after("from edgead.cli import build_parser; build_parser()")
    assert "torch" not in loaded
