"""The station lock installs on Python 3.10 (JetPack 6's) and runs a bundle trained with the build-host lock."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _python310() -> str | None:
    """A working CPython 3.10 (a pyenv shim on PATH may exist and still refuse to run)."""
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))
    candidates = [shutil.which("python3.10"), *map(str, pyenv)]
    for exe in filter(None, candidates):
        ok = subprocess.run([exe, "-c", "import sys, venv; assert sys.version_info[:2] == (3, 10)"],
                            capture_output=True).returncode == 0
        if ok:
            return exe
    return None


PY310 = _python310()


@pytest.mark.slow
@pytest.mark.skipif(PY310 is None, reason="no working python3.10 (the station lock's Python)")
def test_station_lock_venv_runs_the_build_hosts_bundle(padim_bundle, small_station, tmp_path):
    venv = tmp_path / "station-venv"
    subprocess.run([PY310, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["--require-hashes", "-r", str(ROOT / "requirements" / "station.lock")], check=True,
                   timeout=900)
    subprocess.run(pip + ["--no-deps", "--no-build-isolation", str(ROOT)], check=True, timeout=600, cwd=tmp_path)
    probe = "import edgead.daemon.station, sys; assert 'torch' not in sys.modules"
    subprocess.run([str(py), "-c", probe], check=True, cwd=tmp_path)
    images = sorted(str(p) for p in (small_station.aligned / "test").rglob("*.png"))[:6]
    station = subprocess.run([str(venv / "bin" / "edgead"), "predict", "--json", "--bundle",
                              str(padim_bundle.bundle.root), *images], capture_output=True, text=True, cwd=tmp_path)
    assert station.returncode == 0, station.stderr
    host = subprocess.run([sys.executable, "-m", "edgead", "predict", "--json", "--bundle",
                           str(padim_bundle.bundle.root), *images], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in station.stdout.splitlines()]
    want = [json.loads(line) for line in host.stdout.splitlines()]
    assert [r["verdict"] for r in rows] == [w["verdict"] for w in want]
    # Another numpy and ONNX Runtime (the station lock is older: Python 3.10): the same graph, float32 kernels.
    for r, w in zip(rows, want):
        assert r["raw_score"] == pytest.approx(w["raw_score"], rel=1e-4)
