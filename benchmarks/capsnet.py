"""Supervised CapsNet with few labelled defects vs unsupervised PatchCore and PaDiM, on the same reduced test split.

Usage:
    python benchmarks/capsnet.py [--categories magnetic_tile piped_...] [--fractions 0.01 0.05 0.10]
                                 [--steps N] [--image-size N] [--seed S] [--no-docs]

For each category and fraction, ``edgead.data.labelled`` moves a seeded share of the defective test images into
``train/<defect_type>/`` (a temporary folder of symlinks) so that defects are that fraction of the training set;
capsnet trains on it with ``--labelled``, PatchCore and PaDiM on its ``train/good`` only (their defaults;
``coreset_ratio 0.01`` on magnetic_tile), and all are evaluated with ONNX Runtime on the reduced test split.
Results: benchmarks/results/capsnet.json and the ``capsnet`` section of docs/benchmarks.md (``--no-docs``: neither).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, categories, machine, save_json, update_section  # noqa: E402

from edgead.data.labelled import FRACTIONS, labelled_split  # noqa: E402
from edgead.evaluation import evaluate_bundle  # noqa: E402
from edgead.models.registry import Supervision  # noqa: E402
from edgead.train.pipeline import TrainConfig, train  # noqa: E402
from edgead.train.sizing import parse_image_size  # noqa: E402

DEFAULT_CATEGORIES = ["magnetic_tile", "piped_pa_bdp01_tl", "piped_pa_bft01_tl", "piped_pa_brg01_rl"]
BASELINES = ("patchcore", "padim")
COLUMNS = ("image_auroc", "pixel_auroc", "aupro", "f1_max")


def params_for(model: str, category: str, steps: int | None) -> dict:
    """Per-run overrides of the defaults, stated in the docs table."""
    if model == "patchcore" and category == "magnetic_tile":
        return {"coreset_ratio": 0.01}
    if model == "capsnet" and steps:
        return {"steps": steps}
    return {}


def train_one(model: str, data: Path, out: Path, category: str, image_size, steps: int | None, seed: int):
    """Train ``model`` on ``data`` into ``out``; returns (bundle root, params, seconds)."""
    params = params_for(model, category, steps)
    supervision = Supervision.LABELLED if model == "capsnet" else Supervision.UNSUPERVISED
    t0 = time.perf_counter()
    cfg = TrainConfig(model=model, image_size=image_size, evaluate=False, params=params, seed=seed,
                      supervision=supervision)
    result = train(data, out, cfg, progress=False)
    return result.bundle.root, params, time.perf_counter() - t0


def evaluate_row(model: str, bundle: Path, params: dict, train_s: float, test_data: Path) -> dict:
    m = evaluate_bundle(bundle, test_data).metrics
    return {"model": model, "params": params, "train_s": train_s, **{k: m.get(k) for k in COLUMNS},
            "n_test_good": m.get("n_good"), "n_test_defective": m.get("n_defective"),
            "false_reject": m.get("false_reject"), "false_accept": m.get("false_accept")}


def run(cats: list[Path], fractions: list[float], image_size, steps: int | None, seed: int) -> list[dict]:
    """The baselines train once per category (their training set, ``train/good``, is the same for every fraction)
    and are evaluated on each fraction's reduced test split; capsnet trains once per fraction."""
    rows = []
    for cat in cats:
        with tempfile.TemporaryDirectory() as tmp:
            baselines = {m: train_one(m, cat, Path(tmp) / m, cat.name, image_size, steps, seed) for m in BASELINES}
            for fraction in fractions:
                with labelled_split(cat, fraction, seed=seed) as split:
                    trained = {"capsnet": train_one("capsnet", split.root, Path(tmp) / f"capsnet-{fraction}",
                                                    cat.name, image_size, steps, seed), **baselines}
                    for model, (bundle, params, train_s) in trained.items():
                        row = {"category": cat.name, "fraction": fraction, "n_train_good": split.n_train_good,
                               "n_train_defective": len(split.moved),
                               **evaluate_row(model, bundle, params, train_s, split.root)}
                        rows.append(row)
                        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in row.items()), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    f = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    out = ["| category | defects in train | model | image AUROC | pixel AUROC | AUPRO | F1-max | train s |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        note = " (" + ", ".join(f"{k}={v}" for k, v in r["params"].items()) + ")" if r["params"] else ""
        out.append(f"| {r['category']} | {100 * r['fraction']:.0f} % ({r['n_train_defective']} of "
                   f"{r['n_train_defective'] + r['n_train_good']}) | {r['model']}{note} | {f(r['image_auroc'])} | "
                   f"{f(r['pixel_auroc'])} | {f(r['aupro'])} | {f(r['f1_max'])} | {r['train_s']:.1f} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", nargs="*", default=DEFAULT_CATEGORIES)
    ap.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    ap.add_argument("--steps", type=int, default=None, help="capsnet training steps (default: the model's)")
    ap.add_argument("--image-size", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    args = ap.parse_args()
    rows = run(categories(args.categories), args.fractions, parse_image_size(args.image_size), args.steps, args.seed)
    if args.no_docs:
        return
    save_json(ROOT / "benchmarks" / "results" / "capsnet.json", {"machine": machine(), "rows": rows})
    body = (f"Produced by `python benchmarks/capsnet.py` on {machine()}; ONNX Runtime FP32 on the CPU. A seeded "
            "share of each category's defective test images is moved into training (`edgead.data.labelled`); "
            "capsnet trains on them with `--labelled`, PatchCore and PaDiM on the good images only, and all are "
            "evaluated on the same reduced test split; metrics in percent.\n\n")
    update_section("capsnet", body + table(rows))


if __name__ == "__main__":
    main()
