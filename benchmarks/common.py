"""Shared helpers of the benchmark scripts: dataset discovery, timing statistics, docs section updates."""
from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("EDGEAD_DATASETS", ROOT.parent / "shared" / "datasets"))
DOC = ROOT / "docs" / "benchmarks.md"


def categories(names: list[str] | None = None) -> list[Path]:
    """The real categories under ../shared/datasets (all, or those named), sorted."""
    if not DATASETS.is_dir():
        raise SystemExit(f"no datasets at {DATASETS}: set EDGEAD_DATASETS or check out ../shared")
    found = sorted(p for p in DATASETS.iterdir() if (p / "train" / "good").is_dir())
    if names:
        found = [p for p in found if p.name in names]
    return found


def stats_ms(samples_s: list[float] | np.ndarray) -> dict:
    """Median and p99 in ms of a list of seconds."""
    a = np.asarray(samples_s, np.float64) * 1e3
    return {"median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)), "n": int(a.size)}


def machine() -> str:
    """One line describing where the numbers were taken."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def update_section(name: str, body: str) -> None:
    """Replace ``<!-- BEGIN name -->...<!-- END name -->`` in docs/benchmarks.md (append if absent)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def save_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=float) + "\n")
