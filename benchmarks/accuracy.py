"""Accuracy of each model on the real categories of ../shared/datasets: writes docs/benchmarks.md tables.

Usage:
    python benchmarks/accuracy.py [--models patchcore padim] [--categories magnetic_tile ...] [--image-size N]
                                  [--set KEY=VALUE ...] [--orientation landscape] [--tile HxW] [--tile-overlap PX]
                                  [--label NAME] [--cache DIR] [--no-docs]

Each (model, category, variant) is trained with the defaults of ``edgead train`` (a variant: ``--set`` model
parameters, a layout, an image size) and evaluated with ``edgead eval`` on the fixed test split (ONNX Runtime on the
CPU: the artifact the station runs; metrics by the one definition of ``edgead.metrics``: raw scores and raw maps,
masks by ``mask_at``). Every row is saved to benchmarks/results/accuracy.json as soon as it is measured, and rows
already there are skipped (resumable: a run that stops goes on where it was; ``--force`` re-measures); ``--cache
DIR`` keeps the bundles. The docs tables are rebuilt from all the rows.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, categories, machine, merge_rows, save_json, update_section  # noqa: E402

from edgead.config.loader import parse_set  # noqa: E402
from edgead.evaluation import evaluate_bundle  # noqa: E402
from edgead.train.pipeline import TrainConfig, train  # noqa: E402
from edgead.train.sizing import parse_image_size  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "accuracy.json"
COLUMNS = ("image_auroc", "pixel_auroc", "aupro", "f1_max")
KEY = ("model", "category", "variant")
LARGE_TRAIN = 200  # above this many training images PatchCore keeps a tenth of its default coreset (CPU time)


def params_for(model: str, category: Path) -> dict:
    """Per-run overrides of the defaults, stated in the docs table."""
    from edgead.models.registry import get_spec

    n_train = sum(1 for _ in (category / "train" / "good").iterdir())
    if model != "patchcore" or n_train <= LARGE_TRAIN:
        return {}
    return {"coreset_ratio": get_spec("patchcore").defaults["coreset_ratio"] / 10}


def variant_of(args, model: str) -> tuple[str | None, dict, dict]:
    """``(name, params, layout)`` of this run's variant for ``model`` (name None: the defaults)."""
    from edgead.models.registry import get_spec

    params = {k: v for k, v in args.overrides.items() if k in get_spec(model).defaults}
    layout = {"orientation": args.orientation, "tile_hw": list(parse_image_size(args.tile)) if args.tile else None,
              "overlap_px": args.tile_overlap} if (args.orientation != "keep" or args.tile) else {}
    parts = [f"{k}={v}" for k, v in sorted(params.items())]
    parts += [f"{k}={v}" for k, v in layout.items() if v not in (None, 0, "keep")]
    parts += [f"image_size={args.image_size}"] if args.image_size else []
    return args.label or (",".join(parts) or None), params, layout


def run_one(model: str, cat: Path, args, work: Path) -> dict:
    from edgead.bundle import load_bundle

    name, chosen, layout = variant_of(args, model)
    params = {**params_for(model, cat), **chosen}
    cached = Path(args.cache) / f"{model}-{cat.name}-{name or 'default'}".replace("/", "_") if args.cache else None
    t0 = time.perf_counter()
    if cached is not None and (cached / "edgead.yaml").is_file():
        bundle = load_bundle(cached)
        train_s = bundle.meta.training.seconds
    else:
        cfg = TrainConfig(model=model, image_size=parse_image_size(args.image_size), evaluate=False, params=params,
                          layout=layout or None)
        bundle = train(cat, cached or work / "b", cfg, progress=False).bundle
        train_s = time.perf_counter() - t0
    m = evaluate_bundle(bundle.root, cat).metrics
    meta = bundle.meta
    return {"model": model, "category": cat.name, "variant": name, "train_s": train_s, "params": params,
            "layout": layout, "backbone": meta.backbone["name"],
            "input_hw": [meta.input.height, meta.input.width], **{k: m.get(k) for k in COLUMNS},
            "ms_per_image": m["ms_per_image"], "false_reject": m["false_reject"], "false_accept": m["false_accept"],
            "n_good": m["n_good"], "n_defective": m["n_defective"], "machine": machine()}


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def table(rows: list[dict], model: str) -> str:
    """One table per model: a row per category and variant, the piped mean per variant."""
    sel = sorted((r for r in rows if r["model"] == model), key=lambda r: (r["category"], r.get("variant") or ""))
    out = [f"### {model}\n", "| category | variant | backbone | input | image AUROC | pixel AUROC | AUPRO (30% FPR) | "
           "F1-max | escapes / false rejects at the threshold | train s | ms/image |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sel:
        note = ", ".join(f"{k}={v}" for k, v in r["params"].items() if k == "coreset_ratio")
        out.append(f"| {r['category']}{f' ({note})' if note else ''} | {r.get('variant') or 'defaults'} | "
                   f"{r.get('backbone', 'efficientnet_lite0').replace('efficientnet_', '')} | "
                   f"{r['input_hw'][0]}x{r['input_hw'][1]} | {_pct(r['image_auroc'])} | {_pct(r['pixel_auroc'])} | "
                   f"{_pct(r['aupro'])} | {_pct(r['f1_max'])} | {r['false_accept']} of {r.get('n_defective', '?')} / "
                   f"{r['false_reject']} of {r.get('n_good', '?')} | {r['train_s']:.0f} | {r['ms_per_image']:.1f} |")
    variants = sorted({r.get("variant") or "" for r in sel})
    for v in variants:
        piped = [r for r in sel if r["category"].startswith("piped_") and (r.get("variant") or "") == v]
        if len(piped) < 2:
            continue
        mean = lambda k: sum(r[k] or 0 for r in piped) / len(piped)  # noqa: E731
        out.append(f"| **mean of {len(piped)} piped_*** | {v or 'defaults'} | | | {100 * mean('image_auroc'):.1f} | "
                   f"{100 * mean('pixel_auroc'):.1f} | {100 * mean('aupro'):.1f} | {100 * mean('f1_max'):.1f} | | | |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["patchcore", "padim"])
    ap.add_argument("--categories", nargs="*", default=None)
    ap.add_argument("--image-size", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                    help="a model parameter of the variant (models without it keep their defaults)")
    ap.add_argument("--orientation", default="keep", choices=["keep", "landscape", "portrait"])
    ap.add_argument("--tile", default=None, metavar="HxW")
    ap.add_argument("--tile-overlap", type=int, default=0)
    ap.add_argument("--label", default=None, help="the variant's name in the table (default: from its options)")
    ap.add_argument("--cache", default=None, help="keep / reuse bundles in CACHE/<model>-<category>-<variant>")
    ap.add_argument("--force", action="store_true", help="re-measure rows already in the results")
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    ap.add_argument("--docs-only", action="store_true", help="rebuild the docs tables from the results, measure nothing")
    args = ap.parse_args()
    args.overrides = parse_set(args.sets)
    if args.docs_only:
        args.models = []
    done = set()
    if RESULTS.is_file() and not args.force:
        done = {tuple(r.get(k) for k in KEY) for r in json.loads(RESULTS.read_text()).get("rows", [])}
    with tempfile.TemporaryDirectory(prefix="edgead-bench-acc-") as tmp:
        for model in args.models:
            for cat in categories(args.categories):
                if (model, cat.name, variant_of(args, model)[0]) in done:
                    print(f"{model} {cat.name}: measured before (--force to redo)", flush=True)
                    continue
                row = run_one(model, cat, args, Path(tmp))
                print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                      flush=True)
                if not args.no_docs:
                    save_json(RESULTS, {"rows": merge_rows(RESULTS, [row], KEY)})
    if not args.no_docs and RESULTS.is_file():
        rows = json.loads(RESULTS.read_text())["rows"]
        body = (f"Produced by `python benchmarks/accuracy.py` (rows of several runs, see the commands below the "
                f"tables) on {machine()}; ONNX Runtime FP32 on the CPU; metrics in percent, on raw scores and maps "
                "(`edgead.metrics`, masks by `mask_at`); escapes / false rejects at the bundle's calibrated "
                "threshold (1 % target false-reject rate on held-out good training images).\n\n")
        body += "\n".join(table(rows, m) for m in sorted({r["model"] for r in rows}))
        update_section("accuracy", body)


if __name__ == "__main__":
    main()
