"""benchmarks/models.py: a row measured without INT8 (``--no-int8``) says so instead of failing or inventing figures."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
_spec = importlib.util.spec_from_file_location("edgead_models_benchmark", ROOT / "benchmarks" / "models.py")
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)


def row(**extra) -> dict:
    return {"model": "efficientad", "preset": "cpu", "category": "magnetic_tile", "params": {}, "max_train": 100,
            "input_hw": [256, 224], "image_auroc": 0.5, "pixel_auroc": 0.5, "aupro": 0.25, "train_s": 100.0,
            "fp32_ms": {"median_ms": 10.0, "p99_ms": 20.0}, "weights": 800_000, "bank": 200, "onnx_mb": 3.0,
            "threads": 2, **extra}


def test_a_row_without_int8_says_not_run_and_is_not_marked_as_plain_qdq():
    r = row(int8_ms=None, gate=None, int8_recipe=None, int8_onnx_mb=None)
    line = models._row(r)
    assert "| efficientad | cpu | magnetic_tile (100 train images) |" in line
    assert "| 10.0 / 20.0 | - | not run (--no-int8) |" in line
    assert not models._plain(r)
    assert "¹" not in models.markdown([r])


def test_a_row_with_int8_keeps_its_gate_cell():
    gate = {"passed": True, "image_auroc_delta_pt": -0.25, "pixel_auroc_delta_pt": None}
    r = row(int8_ms={"median_ms": 5.0, "p99_ms": 6.0}, gate=gate, int8_recipe={"correction": "bias"})
    assert "| 10.0 / 20.0 | 5.0 / 6.0 | pass (-0.25 / n/a) |" in models._row(r)
