"""Run trained-model tests under several CPU-kernel settings and show how far each result sits from its bound.

A CI machine may have another CPU (AVX-512, AMX) than the one a test was written on. Forcing the kernels that
PyTorch dispatches to (ATen's CPU capability, oneDNN's ISA) and the thread count emulates part of that. Every
``assert_separates`` / ``assert_metric_at_least`` call (tests/helpers/separation.py) logs its value; this script
prints, per assert, the lowest and highest value seen and under which setting.

    .venv/bin/python scripts/kernel_margins.py tests/unit/models tests/unit/continual/test_update.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

SETTINGS = {
    "default": {},
    "aten=default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "onednn=avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "omp=2": {"OMP_NUM_THREADS": "2"},
}


def main(argv: list[str]) -> int:
    tests = argv or ["tests/unit/models"]
    rows: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, env in SETTINGS.items():
            log = Path(tmp) / f"{label}.jsonl"
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                                  env={**os.environ, **env, "EDGEAD_SEPARATION_LOG": str(log)},
                                  capture_output=True, text=True)
            print(f"{label:>14}: {proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.returncode}",
                  flush=True)
            if proc.returncode:
                failed.append(label)
            for line in log.read_text().splitlines() if log.exists() else []:
                r = json.loads(line)
                rows[(r["test"], r["name"])][label] = r
    print("\n| test | what | " + " | ".join(SETTINGS) + " |")
    print("|---|---|" + "---|" * len(SETTINGS))
    for (test, name), by in sorted(rows.items()):
        cells = []
        for label in SETTINGS:
            r = by.get(label)
            if r is None:
                cells.append("-")
            elif "auroc" in r:
                cells.append(f"{r['auroc']:.3f} / gap {r['gap']:.3g}")
            else:
                cells.append(f"{r['value']:.4f}")
        module, _, func = test.partition("::")
        print(f"| {Path(module).stem}::{func} | {name} | " + " | ".join(cells) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
