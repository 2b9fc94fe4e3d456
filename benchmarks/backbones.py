"""Backbone speed: the same detector with each backbone of the table, timed interleaved in one process.

Usage:
    python benchmarks/backbones.py --model patchcore --category piped_pa_bdp01_tl [--runs 40] [--threads 2]
                                   [--cache DIR] [--no-docs]

For each backbone of ``edgead.models.backbone.BACKBONES`` a bundle of ``--model`` is trained on the category (or
reused from ``--cache``, the same folder names as benchmarks/accuracy.py uses), then all bundles are timed with ONNX
Runtime on the CPU, batch 1, one call of each in turn per round (the load of the shared machine hits all alike).
Speed is a ratio against the first backbone (Lite0), median and p99; accuracy is in the accuracy tables (backbone
column). Results: benchmarks/results/backbones.json and the ``backbones`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, categories, machine, save_json, update_section  # noqa: E402
from conversion import interleaved_latency  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "backbones.json"


def bundle_for(model: str, cat: Path, backbone: str, cache: Path):
    from edgead.bundle import load_bundle
    from edgead.models.registry import get_spec
    from edgead.train.pipeline import TrainConfig, train

    default = get_spec(model).defaults.get("backbone")
    name = "default" if backbone == default else f"backbone={backbone}"
    out = cache / f"{model}-{cat.name}-{name}"
    if (out / "edgead.yaml").is_file():
        return load_bundle(out)
    params = {} if backbone == default else {"backbone": backbone}
    return train(cat, out, TrainConfig(model=model, evaluate=False, params=params), progress=False).bundle


def main() -> None:
    from edgead.data import load_image, scan_category
    from edgead.infer import open_backend
    from edgead.models.backbone import BACKBONES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="patchcore")
    ap.add_argument("--category", default="piped_pa_bdp01_tl")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    (cat,) = categories([args.category])
    with tempfile.TemporaryDirectory(prefix="edgead-bench-bb-") as tmp:
        cache = Path(args.cache or tmp)
        bundles = {name: bundle_for(args.model, cat, name, cache) for name in BACKBONES}
        sample = scan_category(cat).test[0]
        image = load_image(sample.path, next(iter(bundles.values())).meta.color)[None]
        opts = {"providers": ["CPUExecutionProvider"], "intra_op_threads": args.threads}
        engines = {name: open_backend(b.root, **opts) for name, b in bundles.items()}
        try:
            lat = interleaved_latency(engines, image, args.runs)
        finally:
            for e in engines.values():
                e.close()
    base = lat[next(iter(lat))]
    rows = [{"backbone": name, **lat[name], "ratio_median": lat[name]["median_ms"] / base["median_ms"],
             "ratio_p99": lat[name]["p99_ms"] / base["p99_ms"],
             "onnx_mb": bundles[name].onnx_path.stat().st_size / 2**20} for name in lat]
    lines = [f"Produced by `python benchmarks/backbones.py --model {args.model} --category {cat.name}` on {machine()}: "
             f"ONNX Runtime FP32, batch 1, {args.threads} intra-op threads, {args.runs} rounds of one call per "
             "backbone in turn (ratios are the comparable figure on a shared machine).", "",
             "| backbone | median ms | p99 ms | x Lite0 (median) | x Lite0 (p99) | ONNX MB |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['backbone']} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} | {r['ratio_median']:.2f} | "
              f"{r['ratio_p99']:.2f} | {r['onnx_mb']:.1f} |" for r in rows]
    print("\n".join(lines))
    if not args.no_docs:
        save_json(RESULTS, {"machine": machine(), "model": args.model, "category": cat.name, "rows": rows})
        update_section("backbones", "\n".join(lines))


if __name__ == "__main__":
    main()
