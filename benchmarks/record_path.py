"""The station's record stage alone: build the part's record and commit it with the previous part's answer.

Usage:
    python benchmarks/record_path.py [--parts 3000] [--baseline REV] [--rounds 4] [--no-docs]

What the loop does between decide and answer (:meth:`edgead.daemon.station.Station._record_and_answer`): the
station's own ``_row`` makes the part's row and :meth:`Recorder.commit_row` commits it alone; the previous part's row
update (its answer and latencies) was written right after that part's answer, outside the timed commit (a revision
before issue 18's sixth round: ``_record`` builds the :class:`~edgead.records.PartRecord` and :meth:`Recorder.commit`
writes it in one transaction with the previous part's update), on a real SQLite file in WAL mode.
Timed warm (part after part) and cold (32 MiB of memory touched before each part, as the engine's inference evicts
the caches in the station). With ``--baseline REV``, the same measurement runs on git revision ``REV``'s edgead in
alternating processes (``--rounds`` each), and the table gives both and their ratio.
Results: the ``record-path`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import io
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, update_section  # noqa: E402


def measure(parts: int, cold: bool) -> dict:
    """Median and p99 (ms) of the record stage over ``parts`` parts (the first 10 % left out)."""
    from edgead.contract.decide import RoiDecision
    from edgead.daemon.config import RecordFailure
    from edgead.daemon.plant import Selection
    from edgead.daemon.recorder import Recorder
    from edgead.daemon.station import PartOutcome, Station, _Part
    from edgead.records import RecordStore, RowUpdate
    from edgead.records.store import WRITER_CACHE_KIB
    from edgead.verdict import Verdict

    evict = np.ones(32 << 20, np.uint8)  # the L3 cache of the machines we measure on
    station = SimpleNamespace(model=SimpleNamespace(model_hash="ab" * 32))
    lat = {"queue": 0.05, "capture": 0.02, "align": 1.1, "infer": 8.1, "decide": 0.1}
    times = []
    row_path = hasattr(Station, "_row")  # a revision whose loop builds the row without the record
    with tempfile.TemporaryDirectory() as tmp:
        with RecordStore(Path(tmp) / "records.sqlite", autocheckpoint=False, cache_kib=WRITER_CACHE_KIB) as store:
            recorder = Recorder(store, None, RecordFailure.STOP, 1024)
            for i in range(parts):
                outcome = PartOutcome(i, str(i), Verdict.ACCEPT, 0.31, "000001.png", dict(lat),
                                      [RoiDecision("part", 0.31, 1.7, 0, Verdict.ACCEPT)])
                part = _Part(outcome, None, time.monotonic_ns(), raw=1.7, quality=0.97,
                             selection=Selection("", None))
                if cold:
                    evict[::64] += 1
                t = time.perf_counter()
                if row_path:  # the loop commits the row alone (issue 18, round 6)
                    outcome.row_id = recorder.commit_row(Station._row(station, part))
                else:
                    outcome.row_id = recorder.commit(Station._record(station, part))
                times.append(time.perf_counter() - t)
                recorder.later(RowUpdate(outcome.row_id, {"record_ms": 0.3, "signal_ms": 0.07, "total_ms": 9.9,
                                                          "plc_answer": Verdict.ACCEPT}))
                if row_path:  # ... and writes the answer's update right after the answer
                    recorder.flush()
    a = np.asarray(times[parts // 10:]) * 1e3
    return {"median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99))}


def tree_of(rev: str, work: Path) -> Path:
    """Git revision ``rev`` of the repository, unpacked under ``work``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "edgead"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(work)
    return work


def run_child(parts: int, pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, __file__, "--child", "--parts", str(parts)], check=True,
                         capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=3000)
    ap.add_argument("--baseline", default=None, help="git revision to compare with, in alternating processes")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--loaded", default=None, help="say how the machine was loaded (goes into the docs)")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps({"warm": measure(args.parts, False), "cold": measure(args.parts, True)}))
        return
    load = [os.getloadavg()[0]]
    runs: dict[str, list[dict]] = {"this": [], "baseline": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = str(tree_of(args.baseline, Path(tmp))) if args.baseline else None
        for r in range(args.rounds):
            order = [("this", None), ("baseline", base)] if r % 2 == 0 else [("baseline", base), ("this", None)]
            for name, path in order:
                if name == "baseline" and base is None:
                    continue
                runs[name].append(run_child(args.parts, path))
    load.append(os.getloadavg()[0])
    rows = []
    for mode in ("warm", "cold"):
        this = float(np.median([r[mode]["median_ms"] for r in runs["this"]]))
        row = {"mode": mode, "this_p50_ms": this,
               "this_p99_ms": float(np.median([r[mode]["p99_ms"] for r in runs["this"]]))}
        if runs["baseline"]:
            old = float(np.median([r[mode]["median_ms"] for r in runs["baseline"]]))
            row.update(baseline_p50_ms=old, ratio=this / old)
        rows.append(row)
        print(row)
    if args.no_docs:
        return
    loaded = args.loaded or f"load average {load[0]:.1f} -> {load[1]:.1f}"
    lines = [f"`python benchmarks/record_path.py --parts {args.parts} --rounds {args.rounds}"
             + (f" --baseline {args.baseline}`" if args.baseline else "`") + f", {machine()}, {loaded}.", "",
             "| caches | this p50 ms | this p99 ms | baseline p50 ms | this / baseline |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['mode']} | {row['this_p50_ms']:.3f} | {row['this_p99_ms']:.3f} | "
                     f"{row.get('baseline_p50_ms', float('nan')):.3f} | {row.get('ratio', float('nan')):.2f} |")
    update_section("record-path", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
