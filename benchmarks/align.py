"""Alignment time and accuracy: this aligner against an earlier one (a git revision), interleaved in one process.

Usage:
    python benchmarks/align.py [--baseline 855b386] [--rounds 30] [--frames 12] [--evict] [--no-docs]

Frames are synthetic station captures with known poses (``edgead.data.synthetic``): the station's 256x320 RGB
frames (shifts up to 16 px, rotations up to 3 degrees, lighting drift, noise) and 2048x2448 RGB frames, 5 MP
(shifts up to 128 px). The baseline's ``edgead/align`` is read from git and imported beside this one as its own
package, both with their default settings; each round times every frame with both, in alternating order. Reported
per size: median and p99 of the whole ``align()`` (gray, coarse pose, refinement, full-resolution warp and quality
gate), their ratios, the steps' medians, and the corner error against the true pose (max over the frames, px).
``--evict`` touches 32 MiB before every align, as the station's inference does between two parts: the daemon's
align stage runs on cold caches, where the many small calls of an align cost more than back to back.
Results: benchmarks/results/align.json and the ``align`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, save_json, stats_ms, update_section  # noqa: E402

BASELINE = "855b386"
"""The last revision with the earlier aligner (phase correlation at 256 px over 13 angles, OpenCV ECC)."""
SIZES = {"station 256x320": (256, 320, 16.0, 3.0), "5 MP 2048x2448": (2048, 2448, 128.0, 3.0)}


def load_baseline(rev: str, work: Path):
    """Import ``edgead/align`` of git revision ``rev`` as the package ``align_baseline``."""
    pkg = work / "align_baseline"
    pkg.mkdir()
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", f"{rev}:edgead/align"],
                           check=True, capture_output=True, text=True).stdout.split()
    for name in names:
        if not name.endswith(".py") or name == "dataset.py":
            continue
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:edgead/align/{name}"], check=True,
                             capture_output=True, text=True).stdout
        src = re.sub(r"\bedgead\.align\b", "align_baseline", src)
        (pkg / name).write_text(src.replace("from edgead.align import", "from align_baseline import"))
    sys.path.insert(0, str(work))
    return importlib.import_module("align_baseline")


def frames_for(height: int, width: int, shift: float, angle: float, n: int, seed: int = 11):
    """(reference, [(frame, true 3x3 warp)]) of the synthetic station at this size."""
    from edgead.data.synthetic import StationSpec, affine_matrix, random_pose, reference_image, render_part

    spec = StationSpec(height=height, width=width, max_shift_px=shift, max_rotation_deg=angle)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        pose = random_pose(spec, rng, aligned=False)
        image, _ = render_part(spec, pose, None, rng)
        out.append((image, np.vstack([affine_matrix(spec, pose), [0.0, 0.0, 1.0]])))
    return reference_image(spec), out


def corner_error(true: np.ndarray, est: np.ndarray, hw: tuple[int, int]) -> float:
    h, w = hw
    pts = np.array([[0.1 * w, 0.1 * h, 1], [0.9 * w, 0.1 * h, 1], [0.9 * w, 0.9 * h, 1], [0.1 * w, 0.9 * h, 1]])
    est = est if est.shape == (3, 3) else np.vstack([est, [0.0, 0.0, 1.0]])
    return float(np.max(np.linalg.norm((pts @ true.T)[:, :2] - (pts @ est.T)[:, :2], axis=1)))


EVICT_BYTES = 32 << 20
"""What ``--evict`` touches before every align: more than the last-level cache, as an inference does."""


def measure(name: str, hw_spec, base, rounds: int, n_frames: int, evict: bool = False) -> dict:
    from edgead.align import Aligner

    h, w, shift, angle = hw_spec
    reference, frames = frames_for(h, w, shift, angle, n_frames)
    aligners = {"baseline": base.Aligner(reference), "this": Aligner(reference)}
    times = {k: [] for k in aligners}
    steps: dict[str, dict[str, list]] = {k: {} for k in aligners}
    errors = {k: [] for k in aligners}
    junk = np.ones(EVICT_BYTES if evict else 64, np.uint8)
    for _ in range(2):  # warm-up
        for image, _ in frames:
            for a in aligners.values():
                a.align(image)
    for r in range(rounds):
        order = list(aligners) if r % 2 == 0 else list(aligners)[::-1]
        for image, true in frames:
            for key in order:
                if evict:
                    junk[::64] += 1  # one write per cache line
                t = time.perf_counter()
                got = aligners[key].align(image)
                times[key].append(time.perf_counter() - t)
                for step, ms in got.timings_ms.items():
                    steps[key].setdefault(step, []).append(ms)
                if r == 0:
                    errors[key].append(corner_error(true, got.warp, (h, w)))
    row = {"frames": name, "n": len(times["this"])}
    for key in aligners:
        row[key] = {**stats_ms(times[key]), "max_corner_error_px": max(errors[key]),
                    "steps_median_ms": {s: float(np.median(v)) for s, v in steps[key].items()}}
    row["median_ratio"] = row["baseline"]["median_ms"] / row["this"]["median_ms"]
    row["p99_ratio"] = row["baseline"]["p99_ms"] / row["this"]["p99_ms"]
    return row


def render(rows: list[dict], args, load: str) -> str:
    options = f" --frames {args.frames}" * (args.frames != 12) + " --evict" * args.evict
    lines = [f"Produced by `python benchmarks/align.py --baseline {args.baseline} --rounds {args.rounds}{options}` on "
             f"{machine()} ({load}): synthetic station captures with known poses, RGB, default `alignment` "
             f"settings; the baseline is `edgead/align` of {args.baseline}, imported beside this one, and both "
             "time every frame of every round, in alternating order, in one process. A time is the whole "
             "`align()`: gray, coarse pose, refinement, the full-resolution warp of the RGB frame and the quality "
             "gate.", "",
             "| frames | aligner | median (ms) | p99 (ms) | speed-up median / p99 | max corner error (px) | steps, "
             "median (ms) |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        for key in ("baseline", "this"):
            r = row[key]
            speed = f"{row['median_ratio']:.1f}x / {row['p99_ratio']:.1f}x" if key == "this" else "1.0x"
            step = ", ".join(f"{s} {v:.2f}" for s, v in r["steps_median_ms"].items() if s != "total")
            lines.append(f"| {row['frames']} ({row['n']} aligns) | {key} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} "
                         f"| {speed} | {r['max_corner_error_px']:.3f} | {step} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=BASELINE, help="git revision of the aligner to compare with")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--frames", type=int, default=12, help="frames per size")
    ap.add_argument("--evict", action="store_true", help="touch 32 MiB before every align (cold caches, as in the "
                    "station after an inference)")
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    args = ap.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[0]
    with tempfile.TemporaryDirectory() as tmp:
        base = load_baseline(args.baseline, Path(tmp))
        rows = []
        for name, hw in SIZES.items():
            rounds = args.rounds if hw[0] <= 512 else max(3, args.rounds // 5)
            rows.append(measure(name, hw, base, rounds, args.frames, args.evict))
            r = rows[-1]
            print(f"{name}: baseline {r['baseline']['median_ms']:.3f} / {r['baseline']['p99_ms']:.3f} ms, this "
                  f"{r['this']['median_ms']:.3f} / {r['this']['p99_ms']:.3f} ms: {r['median_ratio']:.2f}x / "
                  f"{r['p99_ratio']:.2f}x; corner error {r['baseline']['max_corner_error_px']:.4f} / "
                  f"{r['this']['max_corner_error_px']:.4f} px", flush=True)
    load = f"load average {load_before} before, {Path('/proc/loadavg').read_text().split()[0]} after"
    if not args.no_docs:
        save_json(ROOT / "benchmarks" / "results" / "align.json", {"machine": machine(), "load": load, "rows": rows})
        update_section("align", render(rows, args, load))


if __name__ == "__main__":
    main()
