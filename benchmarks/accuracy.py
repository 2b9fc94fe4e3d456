"""Accuracy of each model on the real categories of ../shared/datasets: writes docs/benchmarks.md tables.

Usage:
    python benchmarks/accuracy.py [--models patchcore padim] [--categories magnetic_tile ...] [--image-size N]

Each (model, category) is trained with the defaults of ``edgead train`` and evaluated with ``edgead eval`` on the
fixed test split (ONNX Runtime on the CPU: the artifact the station runs). Results: benchmarks/results/accuracy.json
and one table per model in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, categories, machine, save_json, update_section  # noqa: E402

from edgead.evaluation import evaluate_bundle  # noqa: E402
from edgead.train.pipeline import TrainConfig, train  # noqa: E402
from edgead.train.sizing import parse_image_size  # noqa: E402

COLUMNS = ("image_auroc", "pixel_auroc", "aupro", "f1_max")
LARGE_TRAIN = 200  # above this many training images PatchCore keeps a 1 % coreset (10 % is ~30 min of CPU)


def params_for(model: str, category: Path) -> dict:
    """Per-run overrides of the defaults, stated in the docs table."""
    n_train = sum(1 for _ in (category / "train" / "good").iterdir())
    return {"coreset_ratio": 0.01} if model == "patchcore" and n_train > LARGE_TRAIN else {}


def run(models: list[str], cats: list[Path], image_size) -> list[dict]:
    rows = []
    for model in models:
        for cat in cats:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                params = params_for(model, cat)
                result = train(cat, Path(tmp) / "b", TrainConfig(model=model, image_size=image_size, evaluate=False,
                                                                 params=params), progress=False)
                train_s = time.perf_counter() - t0
                ev = evaluate_bundle(result.bundle.root, cat)
            m = ev.metrics
            row = {"model": model, "category": cat.name, "train_s": train_s, "params": params,
                   "input_hw": [result.bundle.meta.input.height, result.bundle.meta.input.width],
                   **{k: m.get(k) for k in COLUMNS}, "ms_per_image": m["ms_per_image"],
                   "false_reject": m["false_reject"], "false_accept": m["false_accept"]}
            rows.append(row)
            print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    return rows


def table(rows: list[dict], model: str) -> str:
    sel = [r for r in rows if r["model"] == model]
    out = [f"### {model}\n", "| category | input | image AUROC | pixel AUROC | AUPRO (30% FPR) | F1-max | "
           "train s | ms/image |", "|---|---|---|---|---|---|---|---|"]
    for r in sel:
        f = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
        note = " (" + ", ".join(f"{k}={v}" for k, v in r["params"].items()) + ")" if r.get("params") else ""
        out.append(f"| {r['category']}{note} | {r['input_hw'][0]}x{r['input_hw'][1]} | {f(r['image_auroc'])} | "
                   f"{f(r['pixel_auroc'])} | {f(r['aupro'])} | {f(r['f1_max'])} | {r['train_s']:.1f} | "
                   f"{r['ms_per_image']:.1f} |")
    piped = [r for r in sel if r["category"].startswith("piped_")]
    if piped:
        mean = lambda k: sum(r[k] or 0 for r in piped) / len(piped)  # noqa: E731
        out.append(f"| **mean of {len(piped)} piped_*** | | {100 * mean('image_auroc'):.1f} | "
                   f"{100 * mean('pixel_auroc'):.1f} | {100 * mean('aupro'):.1f} | {100 * mean('f1_max'):.1f} | | |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["patchcore", "padim"])
    ap.add_argument("--categories", nargs="*", default=None)
    ap.add_argument("--image-size", default=None)
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    args = ap.parse_args()
    rows = run(args.models, categories(args.categories), parse_image_size(args.image_size))
    if not args.no_docs:
        save_json(ROOT / "benchmarks" / "results" / "accuracy.json", {"machine": machine(), "rows": rows})
    if not args.no_docs:
        body = (f"Produced by `python benchmarks/accuracy.py` on {machine()}; ONNX Runtime FP32 on the CPU, "
                "default settings of `edgead train`; metrics in percent.\n\n")
        body += "\n".join(table(rows, m) for m in args.models)
        update_section("accuracy", body)


if __name__ == "__main__":
    main()
