"""The first commit after a pause of the line: one part's commit after the station idled while its Checkpointer ran.

Usage:
    python benchmarks/commit_after_pause.py [--rounds 8] [--parts 300] [--pause-s 3] [--interval-s 1]

Two stores in one process, alternating rounds: each commits ``--parts`` parts back to back (a part's row with
the previous part's answer, as the station does), then idles ``--pause-s``. One has a
:class:`edgead.records.Checkpointer` every ``--interval-s`` (it runs during the pause), the other none (an
interval of an hour). Printed: the first commit after each pause, the second, and the rest (p50 / p99, ms).
A trial figure, not a docs section: docs/benchmarks.md (issue 18, fifth round) quotes it with its command.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgead.records import Checkpointer, PartRecord, RecordStore, RowUpdate
from edgead.verdict import Verdict


def record(i: int) -> PartRecord:
    return PartRecord.now(part_id=str(i), seq=i, verdict=Verdict.REJECT, score=0.7, raw_score=3.1, capture_ms=1.0,
                          align_ms=9.0, infer_ms=12.0, decide_ms=0.2, model_hash="ab" * 32, align_quality=0.98,
                          roi_scores={"part": 0.7}, error=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--parts", type=int, default=300, help="parts per round, back to back")
    ap.add_argument("--pause-s", type=float, default=3.0, help="idle time after each round")
    ap.add_argument("--interval-s", type=float, default=1.0, help="the Checkpointer's interval")
    args = ap.parse_args()
    times = {m: {"first": [], "second": [], "rest": []} for m in ("checkpointer", "none")}
    with tempfile.TemporaryDirectory() as tmp:
        stores = {}
        for mode, interval in (("checkpointer", args.interval_s), ("none", 3600.0)):
            db = Path(tmp) / f"{mode}.sqlite"
            store = RecordStore(db, autocheckpoint=False)
            stores[mode] = (store, Checkpointer(db, interval), [None, 0])
        for _ in range(args.rounds):
            for mode, (store, _, state) in stores.items():
                for j in range(args.parts):
                    last, i = state
                    updates = [RowUpdate(last, {"signal_ms": 0.3, "total_ms": 25.0, "plc_answer": "reject"})] \
                        if last else []
                    t = time.perf_counter()
                    state[0] = store.commit(record(i), updates)
                    dt = (time.perf_counter() - t) * 1e3
                    state[1] += 1
                    times[mode]["first" if j == 0 else "second" if j == 1 else "rest"].append(dt)
                time.sleep(args.pause_s)
        for store, checkpointer, _ in stores.values():
            checkpointer.close()
            store.close()
    for mode, t in times.items():
        print(f"{mode}: " + "; ".join(f"{k} commit p50 {np.median(v):.3f} / p99 {np.percentile(v, 99):.3f} ms"
                                      for k, v in t.items()), file=sys.stdout)


if __name__ == "__main__":
    main()
