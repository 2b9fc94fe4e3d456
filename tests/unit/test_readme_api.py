"""The README's Python API examples run exactly as printed (each in a fresh interpreter, in a folder holding the
files they name), and importing edgead stays cheap."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THREE_LINES = ('from edgead import Inspector\ninsp = Inspector("bracket.edgead")\nresult = insp.inspect(image)\n')


def readme_api_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _run(code: str, cwd: Path, *, torch_free: bool) -> str:
    """Run ``code`` as printed in a fresh interpreter (``torch_free``: then check torch was never imported)."""
    probe = "\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'\n" if torch_free else ""
    proc = subprocess.run([sys.executable, "-c", code + probe], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_readme_shows_the_three_lines():
    blocks = readme_api_blocks()
    assert len(blocks) == 2 and THREE_LINES in blocks[0]


def test_inspector_example_as_printed(padim_bundle, small_station, tmp_path):
    from edgead.bundle import pack_bundle

    pack_bundle(padim_bundle.bundle.root, tmp_path / "bracket.edgead")
    defect = sorted(p for p in (small_station.aligned / "test").rglob("*.png") if p.parent.name != "good")[0]
    shutil.copy(defect, tmp_path / "part.png")
    verdict, score, area, total, unit = _run(readme_api_blocks()[0], tmp_path, torch_free=True).split()
    assert verdict == "reject" and 0.5 <= float(score) <= 1.0 and int(area) > 0 and float(total) > 0 and unit == "ms"


def test_train_and_evaluate_example_as_printed(small_station, tmp_path):
    pytest.importorskip("torch", reason="edgead.train needs the [train] extra")
    (tmp_path / "parts").symlink_to(small_station.aligned, target_is_directory=True)
    out = _run(readme_api_blocks()[1], tmp_path, torch_free=False)
    m = re.fullmatch(r"image AUROC (\d\.\d{3}), trained in \d+ s\n", out)
    assert m and float(m.group(1)) >= 0.8, out
    assert (tmp_path / "bracket.edgead").is_file() and (tmp_path / "bracket" / "reference.png").is_file()


def test_import_edgead_is_cheap():
    code = ("import sys, edgead; from edgead import Inspector, InspectionResult, Verdict; "
            "heavy = {'torch', 'cv2', 'onnxruntime', 'onnx', 'tqdm'} & set(sys.modules); "
            "assert not heavy, heavy; assert callable(edgead.train) and callable(edgead.evaluate)")
    subprocess.run([sys.executable, "-c", code], check=True)
