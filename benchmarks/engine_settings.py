"""The bare engine under different runtime settings, alternating blocks in one process (issue 18): threads, where
they run, what they do when idle, and the runtime itself. Measured only.

One process holds one engine per setting (the same graph) and lets them take turns in blocks, so a change of the
machine's load reaches all alike; each inference comes after a 3 ms pause as the station's engine has, and the
first two inferences of every turn are not counted (the other engine's turn evicted the caches). Prints p50, p99 and
p99/p50 per setting as JSON. The settings (:data:`SETTINGS`):

* ``ort-t2`` / ``ort-t1``: ONNX Runtime as the station opens it (:class:`edgead.infer.onnxrt.OnnxRuntimeBackend`,
  workers that block) with 2 or 1 intra-op threads; the OS places the threads. The other ``ort-`` settings add
  session entries to it (``session_entries``).
* ``ort-t2-pinned``: ``ort-t2`` with its one worker thread on CPU 1 (``session.intra_op_thread_affinities``) and the
  calling thread on CPU 0 (``os.sched_setaffinity``) during its turns (round 5's ``pinned``; ``float`` is ``ort-t2``).
* ``ort-t2-dbb4``: ``ort-t2`` with ``session.dynamic_block_base`` 4 (ONNX Runtime's dynamic cost model splits work
  into smaller blocks, meant for imbalanced loads).
* ``ort-t2-spin-run``: ``ort-t2`` with ``model.thread_wait: spin_in_run``: spinning workers
  (``session.intra_op.allow_spinning`` 1) that stop spinning when a run returns (``session.force_spinning_stop``
  1): fast hand-offs inside a run, idle between parts.
* ``ov-t2`` / ``ov-t1``: OpenVINO (:class:`edgead.infer.openvino_rt.OpenVinoBackend`, FP32, ``PERFORMANCE_HINT``
  LATENCY) with 2 or 1 inference threads (``[openvino]`` extra).

Usage:
    python benchmarks/engine_settings.py BUNDLE_DIR/model.onnx [--settings ort-t2,ort-t2-pinned]
        [--blocks 12] [--per-block 500] [--hw 256x320]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from edgead.infer.threads import ThreadWait


@dataclass(frozen=True)
class Setting:
    """One engine setting: the runtime (``ort`` or ``ov``), its threads, what its idle threads do (the station's
    ``model.thread_wait``), further ONNX Runtime session entries, and the CPUs the calling thread runs on during
    its turns (None: all)."""

    runtime: str
    threads: int
    wait: ThreadWait = ThreadWait.BLOCK
    entries: dict = field(default_factory=dict)
    caller_cpus: frozenset | None = None


SETTINGS = {
    "ort-t2": Setting("ort", 2),
    "ort-t1": Setting("ort", 1),
    "ort-t2-pinned": Setting("ort", 2, entries={"session.intra_op_thread_affinities": "2"},
                             caller_cpus=frozenset({0})),
    "ort-t2-dbb4": Setting("ort", 2, entries={"session.dynamic_block_base": "4"}),
    "ort-t2-spin-run": Setting("ort", 2, ThreadWait.SPIN_IN_RUN),
    "ov-t2": Setting("ov", 2),
    "ov-t1": Setting("ov", 1),
}


def engine(model: str, s: Setting):
    """A callable that runs the graph once on a feed, opened with setting ``s`` by the station's own backend."""
    if s.runtime == "ov":
        from edgead.infer.openvino_rt import OpenVinoBackend

        return OpenVinoBackend(model, intra_op_threads=s.threads).infer
    from edgead.infer.onnxrt import OnnxRuntimeBackend

    return OnnxRuntimeBackend(model, providers=["CPUExecutionProvider"], intra_op_threads=s.threads,
                              thread_wait=s.wait, session_entries=s.entries).infer


def turn_order(names: list[str], block: int) -> list[str]:
    """The settings' order in turn ``block``: rotated by one each turn, so that none always follows the same one."""
    k = block % len(names)
    return names[k:] + names[:k]


def summary(times: dict[str, list[float]]) -> dict:
    """p50, p99 (ms) and p99/p50 per setting, and each p50 and p99 against the first setting's."""
    out = {}
    for name, values in times.items():
        p50, p99 = np.percentile(values, [50, 99])
        out[name] = {"n": len(values), "p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3),
                     "p99_over_p50": round(float(p99 / p50), 3)}
    first = out[next(iter(out))]
    for row in out.values():
        row["p50_vs_first"] = round(row["p50_ms"] / first["p50_ms"], 3)
        row["p99_vs_first"] = round(row["p99_ms"] / first["p99_ms"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--settings", default="ort-t2,ort-t2-pinned",
                    help=f"comma-separated, the first is the baseline: {', '.join(SETTINGS)}")
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--per-block", type=int, default=500)
    ap.add_argument("--hw", default="256x320", help="the uint8 image's height x width")
    ap.add_argument("--gap-ms", type=float, default=3.0, help="pause before each inference")
    args = ap.parse_args()
    names = [n.strip() for n in args.settings.split(",") if n.strip()]
    if not names or set(names) - set(SETTINGS):
        ap.error(f"--settings: choose from {', '.join(SETTINGS)}")
    if any(SETTINGS[n].caller_cpus for n in names) and (os.cpu_count() or 1) < 2:
        raise SystemExit("pinned settings need 2 CPUs")
    h, w = (int(v) for v in args.hw.split("x"))
    runs = {n: engine(args.model, SETTINGS[n]) for n in names}
    images = np.random.default_rng(0).integers(0, 255, (1, h, w, 3), dtype=np.uint8)
    both = set(os.sched_getaffinity(0))
    times: dict[str, list[float]] = {n: [] for n in names}
    load = [os.getloadavg()[0]]
    for block in range(args.blocks):
        for name in turn_order(names, block):
            os.sched_setaffinity(0, SETTINGS[name].caller_cpus or both)
            run = runs[name]
            for i in range(args.per_block + 2):
                time.sleep(args.gap_ms / 1000)
                t0 = time.perf_counter()
                run(images)
                if i >= 2:
                    times[name].append((time.perf_counter() - t0) * 1e3)
        load.append(os.getloadavg()[0])
    os.sched_setaffinity(0, both)
    out = summary(times)
    out["load_average_1min"] = [round(min(load), 2), round(float(np.median(load)), 2), round(max(load), 2)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
