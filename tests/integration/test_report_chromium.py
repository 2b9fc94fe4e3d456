"""The eval report opens offline in a real browser: headless Chromium (no network) renders its embedded figures."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgead.cli import main

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "render_page.sh"


def test_report_renders_offline_in_chromium(padim_bundle, small_station, tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("needs chromium (Debian package; scripts/system-deps.sh installs it)")
    assert main(["eval", "--bundle", str(padim_bundle.bundle.root), "--data", str(small_station.aligned),
                 "--report", str(tmp_path / "rep")]) == 0
    capsys.readouterr()
    page = tmp_path / "rep" / "report.html"
    moved = tmp_path / "elsewhere" / "r.html"  # one file: it renders wherever it is copied
    moved.parent.mkdir()
    shutil.copy(page, moved)
    png = tmp_path / "shot.png"
    subprocess.run(["bash", str(SCRIPT), str(moved), str(png), "1200x2400"], check=True, timeout=120)
    shot = cv2.imread(str(png))
    assert shot is not None and shot.shape[:2] == (2400, 1200)
    hsv = cv2.cvtColor(shot, cv2.COLOR_BGR2HSV)
    colourful = np.mean((hsv[..., 1] > 128) & (hsv[..., 2] > 64))
    assert colourful > 0.01, colourful  # the curves, histogram and heat-map overlays were drawn (text is grey)
