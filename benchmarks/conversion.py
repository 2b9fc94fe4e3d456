"""Speed and accuracy of the x86-cpu conversion candidates against the plain FP32 export, on real data.

Usage:
    python benchmarks/conversion.py [--categories piped_pa_bdp01_tl ...] [--models patchcore padim]
                                    [--runs 20] [--threads 2] [--max-test 120] [--calib-max 100] [--cache DIR]
                                    [--no-doc]

For each model and category: trains a bundle (train/good), builds every candidate ``edgead convert --precision
auto`` builds for x86-cpu (plain FP32, INT8 over the whole backbone and from stride 8 on, and the CPU recipes of
``edgead.convert.recipes``) plus the FP16
graph that the TensorRT targets compile (gated here like the others; its CPU time is for the record, x86-cpu does not
offer FP16), transfers the thresholds (on at most ``--calib-max`` seeded good training images, also the INT8
calibration set), runs the accuracy gate on the test split (resized to the model resolution only where sizes vary,
as in magnetic_tile; ``--max-test`` caps it, with
a seeded stratified subset), then times every candidate **interleaved in this process** (rounds over all
candidates, so machine load hits all alike; ONNX Runtime's CPU memory arena off for every candidate, since all of
them are open at once) and reports the median / p99 latency and the speed-up against the plain
FP32 export. ``auto`` keeps the fastest candidate that passes the gate. Results: benchmarks/results/conversion.json
and the ``conversion`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ROOT, calibration_list, categories, machine, merge_rows, save_json, stats_ms,  # noqa: E402
                    update_section)

DEFAULT_CATEGORIES = ["piped_pa_bdp01_tl", "piped_pa_bft01_tl", "piped_pa_brg01_rl", "magnetic_tile"]


def check_set(root: Path, spec, max_test: int, seed: int = 0):
    """The test split as a CheckSet, every image resized to the model resolution (sizes vary in magnetic_tile)."""
    import cv2

    from edgead.convert.gate import CheckSet
    from edgead.data.images import Color, load_image
    from edgead.data.mvtec import load_mask, scan_category
    from edgead.metrics import mask_at

    samples = scan_category(root).test
    labels = np.array([s.label for s in samples])
    if max_test and len(samples) > max_test:
        rng = np.random.default_rng(seed)
        keep = []
        for lab in (0, 1):
            idx = np.flatnonzero(labels == lab)
            keep += list(rng.choice(idx, size=max(1, round(max_test * len(idx) / len(samples))), replace=False))
        samples = [samples[i] for i in sorted(keep)]
    color = Color.GRAY if spec.channels == 1 else Color.RGB
    loaded = [load_image(s.path, color) for s in samples]
    one_size = len({img.shape for img in loaded}) == 1  # as the station feeds them: the graph resizes
    images, masks = [], []
    for s, img in zip(samples, loaded):
        m = load_mask(s, img.shape[:2])
        if not one_size:
            img = cv2.resize(img, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
        images.append(img.reshape(*img.shape[:2], spec.channels))
        masks.append(mask_at(m, (spec.height, spec.width)))  # the definition eval and the gate use
    return CheckSet(images=np.stack(images), labels=np.array([s.label for s in samples]), masks=np.stack(masks))


GPU_ONLY = ("fp16",)
"""Candidates gated here for the TensorRT targets, never chosen for x86-cpu (its profile does not offer them)."""


def candidates(bundle, calib_dir: Path, work: Path, samples: np.ndarray):
    """Every x86-cpu candidate of ``auto``, and FP16: name -> (graph path, details), thresholds transferred.

    ``calib_dir``: a folder or ``.txt`` list of good images (INT8 calibration and threshold transfer)."""
    from edgead.calibration.dataset import load_calibration_set
    from edgead.calibration.quantize import Int8Scope, Int8Settings
    from edgead.convert.candidates import TransferSet, build_candidate, candidate_jobs
    from edgead.convert.targets import Precision, get_target

    work.mkdir(parents=True, exist_ok=True)
    spec = bundle.input_spec
    calib = load_calibration_set(calib_dir, channels=spec.channels, resize_hw=(spec.height, spec.width))
    tset = TransferSet(bundle, calib.images)
    jobs = candidate_jobs((Precision.FP32, Precision.FP16, Precision.INT8), Int8Scope.BACKBONE, auto=True,
                          recipe_precisions=get_target("x86-cpu").precisions)
    out = {}
    for job in jobs:
        t0 = time.perf_counter()
        got = build_candidate(job, bundle, work, calib, Int8Settings(), samples, tset)
        if got is None:
            continue
        path, details = got
        if job.recipe is not None:
            details["build_s"] = time.perf_counter() - t0
        out[job.name] = (path, {**details, "exact": not job.lossy})
    return out


def interleaved_latency(backends: dict, image: np.ndarray, runs: int) -> dict:
    """name -> stats_ms, timing every backend once per round (the load of the shared machine hits all alike)."""
    for b in backends.values():
        for _ in range(3):
            b.infer(image)
    times = {k: [] for k in backends}
    for _ in range(runs):
        for k, b in backends.items():
            t = time.perf_counter()
            b.infer(image)
            times[k].append(time.perf_counter() - t)
    return {k: stats_ms(v) for k, v in times.items()}


def bench_one(model: str, cat: Path, args, tmp: Path) -> dict:
    from edgead.bundle import load_bundle
    from edgead.convert.gate import compare, predict
    from edgead.infer.onnxrt import OnnxRuntimeBackend
    from edgead.train.pipeline import TrainConfig, train

    t0 = time.perf_counter()
    bdir = (Path(args.cache) if args.cache else tmp) / f"{model}-{cat.name}"
    if not (bdir / "edgead.yaml").is_file():
        train(cat, bdir, TrainConfig(model=model, evaluate=False), progress=False)
    bundle = load_bundle(bdir)
    spec = bundle.input_spec
    check = check_set(cat, spec, args.max_test)
    good = check.images[check.labels == 0][:4]
    work = tmp / f"work-{model}-{cat.name}"
    work.mkdir(parents=True, exist_ok=True)
    calib_list = calibration_list(cat, args.calib_max, work)
    cands = candidates(bundle, calib_list, work, good)
    backends = {}
    for name, (path, _) in cands.items():
        backends[name] = OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"], intra_op_threads=args.threads,
                                            memory_arena=False)  # 9 sessions of a 48k-row bank: 23 GB with arenas
        backends[name].set_model_resolution(spec.height, spec.width)
    ref = predict(backends["fp32"], check.images)
    rows = {}
    for name, b in backends.items():
        gate = compare(check.labels, ref, predict(b, check.images), masks=check.masks,
                       exact=cands[name][1]["exact"])  # the bounds of convert/evidence.py apply to lossy ones
        rows[name] = {"image_auroc": gate.image_auroc, "pixel_auroc": gate.pixel_auroc,
                      "image_auroc_delta_pt": gate.image_auroc_delta_pt,
                      "pixel_auroc_delta_pt": gate.pixel_auroc_delta_pt, "agreement": gate.agreement,
                      "passed": gate.passed, "reasons": gate.reasons, "new_accepts": gate.new_accepts,
                      "new_rejects": gate.new_rejects, "n_good": int((check.labels == 0).sum()),
                      "evidence": dataclasses.asdict(gate.evidence),
                      "size_bytes": cands[name][0].stat().st_size,
                      "optimisation": cands[name][1].get("optimisation")}
    lat = interleaved_latency(backends, check.images[:1], args.runs)
    base = lat["fp32"]["median_ms"]
    for name in rows:
        rows[name].update(latency_median_ms=lat[name]["median_ms"], latency_p99_ms=lat[name]["p99_ms"],
                          speedup=base / lat[name]["median_ms"])
    for b in backends.values():
        b.close()
    passing = [n for n, r in rows.items() if r["passed"] and n not in GPU_ONLY]
    chosen = min(passing, key=lambda n: rows[n]["latency_median_ms"])
    return {"model": model, "category": cat.name, "input_hw": [spec.height, spec.width],
            "bank_rows": bundle.meta.model.params.get("bank_size"), "n_test": int(len(check.labels)),
            "n_calib": len(calib_list.read_text().splitlines()), "params": dict(bundle.meta.model.params),
            "threads": args.threads, "runs": args.runs, "candidates": rows, "auto_choice": chosen,
            "auto_speedup": rows[chosen]["speedup"], "seconds": time.perf_counter() - t0}


def _setup(r: dict) -> str:
    notes = [f"bank {r['bank_rows']} rows"] if r.get("bank_rows") else []
    notes += [f"{r['n_calib']} calib"] if r.get("n_calib") else []
    return f" ({', '.join(notes)})" if notes else ""


def markdown(results: list[dict]) -> str:
    lines = [f"Conversion candidates for x86-cpu vs the plain FP32 export, measured on {machine()}, ONNX Runtime "
             f"intra-op threads {results[0]['threads'] if results else '?'}, latencies interleaved in one process "
             "(ratios are the comparable figure: the machine is shared; ONNX Runtime's CPU memory arena off for all "
             "candidates of a row, which are open at once). `auto` keeps the fastest that passes "
             "the gate (image AUROC drop <= 0.5 pt, pixel <= 1 pt, agreement >= 90 %, no new accepts, new "
             "rejects <= 10 % of the good images). fp16 is "
             "the graph the TensorRT targets compile, gated here on ONNX Runtime; its CPU time is for the record "
             "(x86-cpu does not offer FP16). Thresholds of the lossy candidates are transferred on the "
             "calibration images (good training images, at most `--calib-max`); the category column gives the "
             "PatchCore bank rows and the number of calibration images. new acc. / rej.: defective images FP32 "
             "rejects that the candidate accepts (the gate allows none) / good images FP32 accepts that the candidate "
             "rejects, of the good images in the check set (the price of the guard band).", "",
             "| model | category | candidate | image AUROC | pixel AUROC | Δ img / pix (pt) | new acc. / rej. | gate "
             "| median / p99 (ms) | speed-up |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for name, c in r["candidates"].items():
            pix = "n/a" if c["pixel_auroc"] is None else f"{100 * c['pixel_auroc']:.2f}"
            dpix = "n/a" if c["pixel_auroc_delta_pt"] is None else f"{c['pixel_auroc_delta_pt']:+.2f}"
            mark = " **(auto)**" if name == r["auto_choice"] else ""
            flips = f"{c['new_accepts']} / {c['new_rejects']} of {c['n_good']}" if "new_rejects" in c else "-"
            lines.append(f"| {r['model']} | {r['category']}{_setup(r)} | {name}{mark} | {100 * c['image_auroc']:.2f} | {pix} | "
                         f"{c['image_auroc_delta_pt']:+.2f} / {dpix} | {flips} | {'pass' if c['passed'] else 'FAIL'} | "
                         f"{c['latency_median_ms']:.1f} / {c['latency_p99_ms']:.1f} | {c['speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", nargs="+", default=DEFAULT_CATEGORIES)
    ap.add_argument("--models", nargs="+", default=["patchcore", "padim"])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-test", type=int, default=120, help="cap on test images per category (0: all)")
    ap.add_argument("--calib-max", type=int, default=100,
                    help="calibration / threshold-transfer images: a seeded subset of train/good (0: all)")
    ap.add_argument("--cache", default=None, help="keep / reuse trained bundles in CACHE/<model>-<category>")
    ap.add_argument("--no-doc", action="store_true", help="a trial run: update neither docs/benchmarks.md nor results/")
    args = ap.parse_args()
    results = []
    out = ROOT / "benchmarks" / "results" / "conversion.json"
    with tempfile.TemporaryDirectory(prefix="edgead-bench-conv-") as tmp:
        for cat in categories(args.categories):
            for model in args.models:
                r = bench_one(model, cat, args, Path(tmp))
                results.append(r)
                print(f"{model} {cat.name}: auto -> {r['auto_choice']} ({r['auto_speedup']:.2f}x) in "
                      f"{r['seconds']:.0f} s", flush=True)
                if not args.no_doc:
                    save_json(out, {"machine": machine(),
                                    "results": merge_rows(out, results, ("model", "category"), "results")})
    if not args.no_doc:
        results = merge_rows(out, results, ("model", "category"), "results")
    md = markdown(results)
    print(md)
    if not args.no_doc:
        update_section("conversion", md)


if __name__ == "__main__":
    main()
