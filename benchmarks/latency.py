"""Latency of one bundle as torch eager FP32, ONNX Runtime FP32, FP16 and INT8 on the CPU, and TensorRT where present.

Usage:
    python benchmarks/latency.py [--category piped_pa_bdp01_tl] [--model patchcore] [--runs 50] [--threads N]
                                 [--trt-target rtx-ada]

Trains the bundle on the category (or takes ``--bundle``), converts it for x86-cpu (INT8 calibrated on the
category's train/good), then times single-image inference of each variant in the same process, in 5 rounds that
take each variant in turn (:func:`time_in_blocks`). Where TensorRT and a CUDA GPU are present, it also builds FP32,
FP16 and INT8 engines for ``--trt-target`` here and times them. Reports median and p99 ms and images/s, each as a
ratio against torch eager (the baseline). Results: benchmarks/results/latency.json and the ``latency`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, categories, machine, save_json, stats_ms, update_section  # noqa: E402


def time_in_blocks(fns: list, image, runs: int, blocks: int = 5, settle: int = 2) -> list[list[float]]:
    """Per function, ``runs`` timings (s), taken in ``blocks`` rounds: in each round every function gets ``settle``
    untimed calls, then ``runs // blocks`` timed ones.

    On this VM, ONNX Runtime with 2 threads has slow episodes lasting seconds (PaDiM 26 ms against 10-11 ms, with or
    without thread spinning); timed one variant after the other, one episode made a single variant look 2.5x slower
    than its neighbours. Rounds spread an episode over all variants. Call-by-call interleaving is worse: torch's and
    ONNX Runtime's thread pools then meet while still spin-waiting (torch eager went from 30 to 131 ms); the untimed
    calls let the previous pool go idle.
    """
    per_block = max(1, runs // blocks)
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(blocks):
        for times, fn in zip(out, fns):
            for _ in range(settle):
                fn(image)
            for _ in range(per_block):
                t = time.perf_counter()
                fn(image)
                times.append(time.perf_counter() - t)
    return out


def torch_eager(bundle):
    import torch

    from edgead.models.export import Preprocess
    from edgead.models.registry import from_state

    state = dict(np.load(bundle.state_path, allow_pickle=False))
    model = from_state(bundle.model_type, bundle.meta.model.params, state).eval()
    spec = bundle.input_spec
    pre = Preprocess((spec.height, spec.width), bundle.meta.preprocessing.mean,
                     bundle.meta.preprocessing.std, spec.channels)

    def run(image):
        with torch.no_grad():
            return model(pre(torch.from_numpy(image)))
    return run


def tensorrt_engines(bundle, calib: Path, tmp: Path, target: str) -> tuple[list, str | None]:
    """[(row name, open TensorRT backend)] for FP32, FP16 and INT8 engines built here, or why there are none.

    Each precision is converted for ``target`` (INT8 calibrated on ``calib``) and its engine compiled on this
    machine by ``convert`` (TensorRT engines are device-specific: the build runs where they are timed).
    """
    from edgead.bundle import load_bundle
    from edgead.convert.pipeline import ENGINE, ConvertOptions, convert
    from edgead.convert.trt_build import tensorrt_available
    from edgead.infer import BackendKind, open_backend

    if not tensorrt_available():
        return [], "No TensorRT rows: TensorRT or a CUDA GPU is missing on this machine"
    engines = []
    for precision in ("fp32", "fp16", "int8"):
        root = tmp / f"trt-{precision}"
        rep = convert(bundle, target, root / "bundle", ConvertOptions(precision,
                      calib=calib if precision == "int8" else None, latency_runs=0))
        if not (rep.engine or "").startswith("built"):
            raise SystemExit(f"TensorRT {precision} engine for {target} was not built: {rep.engine}")
        engine = open_backend(root / ENGINE, BackendKind.TENSORRT, bundle=load_bundle(root / "bundle"))
        engines.append((f"TensorRT {precision.upper()} ({target})", engine))
    return engines, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--category", default="piped_pa_bdp01_tl")
    ap.add_argument("--model", default="patchcore")
    ap.add_argument("--bundle", default=None, help="use this bundle instead of training one")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: all)")
    ap.add_argument("--trt-target", default="rtx-ada", help="target profile of the TensorRT rows (where TensorRT "
                    "and a GPU are present)")
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    args = ap.parse_args()

    from edgead.bundle import load_bundle
    from edgead.convert.pipeline import ConvertOptions, convert
    from edgead.data import load_image, scan_category
    from edgead.infer import open_backend
    from edgead.train.pipeline import TrainConfig, train

    cat = categories([args.category])[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bundle = load_bundle(args.bundle) if args.bundle else train(
            cat, tmp / "fp32", TrainConfig(model=args.model, evaluate=False), progress=False).bundle
        color = bundle.meta.color
        image = load_image(scan_category(cat).test[0].path, color)[None]
        variants = [("torch eager FP32", torch_eager(bundle))]
        opts = {"intra_op_threads": args.threads} if args.threads else {}
        engines = []
        for precision in ("fp32", "fp16", "int8"):
            out = tmp / precision
            convert(bundle, "x86-cpu" if precision != "fp16" else "rtx-ampere", out, ConvertOptions(precision,
                    calib=cat / "train" / "good" if precision == "int8" else None, latency_runs=0))
            eng = open_backend(out, **opts)
            engines.append(eng)
            variants.append((f"ONNX Runtime {precision.upper()}", eng.infer))
        trt_engines, no_trt = tensorrt_engines(bundle, cat / "train" / "good", tmp, args.trt_target)
        engines += [eng for _, eng in trt_engines]
        variants += [(name, eng.infer) for name, eng in trt_engines]
        if no_trt:
            print(no_trt, flush=True)
        timings = time_in_blocks([fn for _, fn in variants], image, args.runs)
        base = stats_ms(timings[0])
        for (name, _), times in zip(variants, timings):
            st = stats_ms(times)
            rows.append({"variant": name, **st, "images_per_s": 1000.0 / st["median_ms"],
                         "ratio_median": base["median_ms"] / st["median_ms"],
                         "ratio_p99": base["p99_ms"] / st["p99_ms"]})
            print(f"{name:22} median {st['median_ms']:7.2f} ms  p99 {st['p99_ms']:7.2f} ms  "
                  f"x{rows[-1]['ratio_median']:.2f}", flush=True)
        for eng in engines:
            eng.close()
    spec = bundle.input_spec
    result = {"machine": machine(), "category": cat.name, "model": bundle.model_type,
              "input": [spec.height, spec.width], "runs": args.runs, "rows": rows}
    if not args.no_docs:
        save_json(ROOT / "benchmarks" / "results" / "latency.json", result)
    if not args.no_docs:
        lines = [f"Produced by `python benchmarks/latency.py --category {cat.name} --model {bundle.model_type}` on "
                 f"{machine()}: one {spec.height}x{spec.width} image per call, {args.runs} timed calls per "
                 "variant in 5 rounds (each round: 2 untimed, then 10 timed calls of each variant in turn), all in "
                 "one process. Ratio = torch eager time / variant time (higher is "
                 f"faster). {no_trt + '; ' if no_trt else 'TensorRT rows: on the GPU, engines built here; '}"
                 "FP16 on the CPU is shown for the record (ONNX Runtime's CPU kernels do not run FP16 natively).",
                 "",
                 "| variant | median ms | p99 ms | images/s | speed-up (median) | speed-up (p99) |",
                 "|---|---|---|---|---|---|"]
        lines += [f"| {r['variant']} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | {r['images_per_s']:.1f} | "
                  f"{r['ratio_median']:.2f}x | {r['ratio_p99']:.2f}x |" for r in rows]
        update_section(f"latency-{bundle.model_type}", "\n".join(lines))


if __name__ == "__main__":
    main()
