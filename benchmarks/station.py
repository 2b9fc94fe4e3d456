"""Station throughput and latency: trigger-in to result-out over many parts, on the synthetic station, CPU engine.

Usage:
    python benchmarks/station.py [--parts 10000] [--model padim] [--height 128 --width 160]

A virtual PLC on a serial pty pair sends ASCII triggers (each after the previous answer), the daemon replays
misaligned captures from a ``folder://`` camera (looping), aligns, infers with ONNX Runtime, decides, answers and
records every part in SQLite. Reported: latency p50/p99/max as the PLC sees it and as the daemon measures it,
parts/min, each stage's share, RSS at start (after READY) and at the end, and the baseline ratio: end-to-end p50
over bare ``engine.infer`` p50 measured in the same process. Results: benchmarks/results/station.json and the
``station`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, save_json, stats_ms, update_section  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=10000)
    ap.add_argument("--model", default="padim")
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    args = ap.parse_args()

    from edgead.align.dataset import align_dataset
    from edgead.daemon.config import load_station
    from edgead.daemon.runner import verdict_counts
    from edgead.data import load_image
    from edgead.data.synthetic import StationSpec, generate_captures, generate_dataset
    from edgead.demo.plc_peer import PtyPair, run_with_plc
    from edgead.infer import open_backend
    from edgead.train.pipeline import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = StationSpec(height=args.height, width=args.width, max_shift_px=min(args.height, args.width) / 16)
        raw = generate_dataset(tmp / "raw", spec, n_train=40, n_test_good=4, n_test_defect=4, aligned=False)
        align_dataset(raw, tmp / "aligned", raw / "reference.png")
        bundle = train(tmp / "aligned", tmp / "bundle", TrainConfig(model=args.model, image_size=max(args.height,
                       args.width), evaluate=False), progress=False).bundle
        captures = generate_captures(tmp / "captures", spec, n=100, defect_rate=0.3, seed=7)
        with open_backend(bundle.root) as eng:
            img = load_image(captures / "000000.png", bundle.meta.color)[None]
            for _ in range(5):
                eng.infer(img)
            bare = []
            for _ in range(200):
                t = time.perf_counter()
                eng.infer(img)
                bare.append(time.perf_counter() - t)
        bare_st = stats_ms(bare)
        with PtyPair(tmp) as pty:
            cfg_path = tmp / "station.yaml"
            cfg_path.write_text(yaml.safe_dump({
                "camera": {"url": f"folder://{captures}?fps=0&loop=1&pattern=*.png"},
                "reference": str(raw / "reference.png"), "model": {"bundle": str(bundle.root)},
                "plc": {"url": pty.station, "protocol": "ascii"},
                "storage": {"database": str(tmp / "records.sqlite"), "images_dir": str(tmp / "rejects"),
                            "quota_mb": 100},
                "observe": {"metrics_listen": None, "log_level": "warning"}}))
            marks = {}
            s, log = run_with_plc(load_station(cfg_path), pty.plc, args.parts,
                                  on_ready=lambda: marks.__setitem__("rss_start", rss_mb()))
        rss_end = rss_mb()
    total = np.array(s.total_ms)
    rt = np.array(list(log.round_trip_ms.values()))
    stages = {k: float(np.mean(v)) if v else 0.0 for k, v in s.stage_ms.items()}
    share = {k: v / max(sum(stages.values()), 1e-9) for k, v in stages.items()}
    res = {
        "machine": machine(), "model": bundle.model_type, "input": [args.height, args.width], "parts": s.parts,
        "parts_per_min": 60 * s.parts / s.seconds, "verdicts": verdict_counts(s),
        "daemon_ms": {"p50": float(np.percentile(total, 50)), "p99": float(np.percentile(total, 99)),
                      "max": float(total.max())},
        "plc_round_trip_ms": {"p50": float(np.percentile(rt, 50)), "p99": float(np.percentile(rt, 99)),
                              "max": float(rt.max())},
        "bare_infer_ms": bare_st, "ratio_p50_vs_bare_infer": float(np.percentile(total, 50)) / bare_st["median_ms"],
        "ratio_p99_vs_bare_infer": float(np.percentile(total, 99)) / bare_st["p99_ms"],
        "stage_mean_ms": stages, "stage_share": share, "rss_mb_start": marks.get("rss_start"),
        "rss_mb_end": rss_end, "lost": len(log.unanswered), "mismatched": len(log.mismatched),
        "records_written": s.records_written,
    }
    if not args.no_docs:
        save_json(ROOT / "benchmarks" / "results" / "station.json", res)
    print(yaml.safe_dump(res, sort_keys=False))
    if not args.no_docs:
        d, r = res["daemon_ms"], res["plc_round_trip_ms"]
        body = "\n".join([
            f"Produced by `python benchmarks/station.py --parts {args.parts} --model {bundle.model_type} --height "
            f"{args.height} --width {args.width}` on {machine()}: synthetic station, ONNX Runtime FP32 on the CPU, "
            "ASCII PLC peer on a socat pty pair, a trigger after each answer, every part recorded in SQLite.", "",
            "| measure | p50 | p99 | max |", "|---|---|---|---|",
            f"| trigger-in to result-out, daemon clock (ms) | {d['p50']:.1f} | {d['p99']:.1f} | {d['max']:.1f} |",
            f"| trigger-to-answer round trip, PLC clock (ms) | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} |",
            f"| bare engine.infer, same process (ms) | {bare_st['median_ms']:.1f} | {bare_st['p99_ms']:.1f} | |",
            "",
            f"- {res['parts']} parts, {res['parts_per_min']:.0f} parts/min; {res['lost']} lost, "
            f"{res['mismatched']} mismatched ids; {res['records_written']} records written.",
            f"- End-to-end p50 is {res['ratio_p50_vs_bare_infer']:.2f}x the bare inference p50 "
            f"(p99: {res['ratio_p99_vs_bare_infer']:.2f}x).",
            "- Stage share: " + ", ".join(f"{k} {100 * v:.0f}% ({stages[k]:.1f} ms)" for k, v in share.items()),
            f"- RSS {res['rss_mb_start']:.0f} MB after READY, {res['rss_mb_end']:.0f} MB at the end.",
        ])
        update_section("station", body)


if __name__ == "__main__":
    main()
