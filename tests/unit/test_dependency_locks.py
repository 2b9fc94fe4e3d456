"""setup.py and the dependency locks (requirements/*.lock) agree; the venv running the tests is the locked one."""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("edgead_locks", ROOT / "scripts" / "locks.py")
locks = importlib.util.module_from_spec(_spec)
sys.modules["edgead_locks"] = locks
_spec.loader.exec_module(locks)

SETS = locks.install_sets()


@pytest.mark.parametrize("name", sorted(SETS))
def test_setup_py_and_lock_agree(name):
    problems = locks.disagreements(SETS[name])
    assert not problems, "\n".join(problems)


def test_build_host_lock_holds_the_cpu_torch_from_the_constraints():
    pins = locks.read_lock(SETS["build-host"].lock)
    torch = pins["torch"]
    assert torch.version.local == "cpu", "the build-host lock must pin the CPU build of torch, never a CUDA one"
    assert not any(n.startswith("nvidia-") for n in pins), "CUDA runtime wheels in the build-host lock"
    constraint = (ROOT / "constraints-cpu.txt").read_text()
    assert f"torch=={torch.version.public}" in constraint


def test_station_lock_has_no_training_stack():
    pins = locks.read_lock(SETS["station"].lock)
    assert not {"torch", "onnx", "tqdm", "scikit-learn"} & set(pins)
    assert {"numpy", "onnxruntime", "opencv-python-headless", "pyserial", "paho-mqtt", "asyncua"} <= set(pins)


def _setup_copy(tmp_path: Path, old: str, new: str) -> Path:
    """setup.py and the install table it reads (edgead/extras.py) in ``tmp_path``, the table edited."""
    text = (ROOT / "edgead" / "extras.py").read_text()
    assert old in text
    (tmp_path / "edgead").mkdir()
    shutil.copy(ROOT / "edgead" / "__init__.py", tmp_path / "edgead" / "__init__.py")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copy(ROOT / "setup.py", tmp_path / "setup.py")
    (tmp_path / "edgead" / "extras.py").write_text(text.replace(old, new))
    return tmp_path / "setup.py"


def test_a_new_dependency_not_in_the_lock_is_named(tmp_path):
    setup_py = _setup_copy(tmp_path, '"pyserial>=3.5",', '"pyserial>=3.5", "requests>=2.0",')
    problems = locks.disagreements(SETS["station"], setup_py)
    assert any("requests>=2.0" in p and "make lock" in p for p in problems), problems


def test_a_range_that_excludes_the_pin_is_named(tmp_path):
    setup_py = _setup_copy(tmp_path, '"numpy>=1.24",', '"numpy>=1.24,<2.0",')
    problems = locks.disagreements(SETS["build-host"], setup_py)
    assert any("numpy" in p and "pins numpy==" in p for p in problems), problems


def test_a_dropped_dependency_still_locked_is_named(tmp_path):
    setup_py = _setup_copy(tmp_path, '"pyserial>=3.5",', "")
    problems = locks.disagreements(SETS["station"], setup_py)
    assert any("pyserial" in p and "no longer asks" in p for p in problems), problems


@pytest.mark.skipif(os.environ.get("EDGEAD_TEST_LATEST") == "1", reason="make test-latest runs the newest versions")
def test_the_venv_running_the_tests_is_the_locked_one():
    rows = locks.drift(SETS["build-host"].lock)
    assert not rows, "installed versions differ from the lock (run `make venv`):\n" + "\n".join(rows)


@pytest.mark.slow
@pytest.mark.parametrize("machine", ["aarch64", "x86_64"])
def test_station_lock_downloads_for_python_310(tmp_path, machine):
    """Every station pin has a wheel for CPython 3.10 on the machine, with a hash the lock holds (from PyPI): what
    ``python scripts/locks.py wheelhouse DIR MACHINE`` fills a deploy wheelhouse with."""
    iset = locks.InstallSet(SETS["station"].lock, SETS["station"].extras, "3.10", machine)
    pins = locks.download_wheels(iset, tmp_path / "wheels")
    assert len(list((tmp_path / "wheels").glob("*.whl"))) == len(pins) > 20
