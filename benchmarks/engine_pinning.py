"""Does pinning ONNX Runtime's threads narrow the bare engine's tail? Measured only (issue 18).

One process, two sessions of the same graph with the station's runtime options (2 intra-op threads, workers that
block instead of spinning): ``float`` (the shipped setting: the OS places the threads) and ``pinned`` (the one
worker thread on CPU 1 by ``session.intra_op_thread_affinities``, the calling thread on CPU 0 by
``os.sched_setaffinity`` during its turns). They take turns in blocks, each inference after a 3 ms pause as the
station's engine has; the first two inferences of every turn are not counted (the other session's turn evicted
the caches). Prints p50, p99 and p99/p50 per setting as JSON.

Usage:
    python benchmarks/engine_pinning.py BUNDLE_DIR/model.onnx [--blocks 12] [--per-block 500] [--hw 256x320]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort


def session(model: str, pinned: bool) -> ort.InferenceSession:
    """The station's CPU session options, with the worker pinned to CPU 1 when ``pinned``."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = 2
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    if pinned:
        opts.add_session_config_entry("session.intra_op_thread_affinities", "2")  # 1-based logical processor
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--per-block", type=int, default=500)
    ap.add_argument("--hw", default="256x320", help="the uint8 image's height x width")
    args = ap.parse_args()
    if os.cpu_count() is None or os.cpu_count() < 2:
        raise SystemExit("needs 2 CPUs")
    h, w = (int(v) for v in args.hw.split("x"))
    sessions = {"float": session(args.model, False), "pinned": session(args.model, True)}
    name_in = sessions["float"].get_inputs()[0].name
    feed = {name_in: np.random.default_rng(0).integers(0, 255, (1, h, w, 3), dtype=np.uint8)}
    both = set(os.sched_getaffinity(0))
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for block in range(args.blocks):
        for name in (("float", "pinned") if block % 2 == 0 else ("pinned", "float")):
            os.sched_setaffinity(0, {0} if name == "pinned" else both)
            for i in range(args.per_block + 2):
                time.sleep(0.003)
                t0 = time.perf_counter()
                sessions[name].run(None, feed)
                if i >= 2:
                    times[name].append((time.perf_counter() - t0) * 1e3)
    os.sched_setaffinity(0, both)
    out = {}
    for name, values in times.items():
        p50, p99 = np.percentile(values, [50, 99])
        out[name] = {"n": len(values), "p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3),
                     "p99_over_p50": round(float(p99 / p50), 3)}
    out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
