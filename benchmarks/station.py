"""Station latency against its engine: per-part time over many parts, on the synthetic station, CPU engine.

Usage:
    python benchmarks/station.py [--parts 10000] [--warmup 500] [--block 500]
                                 [--variants none,all,camera-none,camera-all] [--model padim]
                                 [--height 256 --width 320] [--set KEY=VALUE ...] [--compare 0] [--no-docs]
                                 [--links 300] [--links-only] [--rewarm 0] [--dump FILE.npz]

Each variant is a station run as ``edgead run`` in its own process (as under systemd), replaying misaligned
captures from a ``folder://`` camera (looping, the frames decoded once at start, ``preload=1``, as a camera hands
over raw buffers), aligning, inferring with ONNX Runtime, deciding, committing the
part's row to SQLite and answering an ASCII PLC peer (this script) on a serial pty pair:

* ``none`` / ``all``: the PLC triggers each part (a trigger after each answer); no image, or every image, archived.
* ``camera-none`` / ``camera-all``: the camera starts the parts: a hardware-triggered replay
  (``trigger=hardware&trigger_line=FIFO``) whose photo-eye is this script, one edge per ``--frame-interval``
  bare-engine medians, frames captured ahead of the loop. Between its turns a station gets no edge (as when the
  line stops): it idles, its process running, and no part is in flight.
* ``none-spin``, ``all-nice0``, ``none-t1``, ``none-gc``: ``none`` with ``model.thread_wait: spin``, ``all`` with
  ``runtime.image_nice: 0``, ``none`` with ``model.intra_op_threads: 1``, ``none`` with ``runtime.gc: default``.
* ``none-left``, ``all-t1``: ``none`` with ``model.intra_op_threads: cores_left``, ``all`` with one thread.
* ``none-ov``, ``none-ov-t1``: ``none`` on OpenVINO (``model.backend: openvino``, the same graph, FP32), with one
  inference thread per core or one.
* ``none-spin-run``: ``none`` with ``model.thread_wait: spin_in_run``.

A row per plant link (``--links`` parts each; ``--links-only`` runs only this): ASCII, Modbus RTU, Modbus
TCP, and OPC UA with the MQTT north on, each the PLC (or client) round trip against the bare engine measured
in this process (:mod:`links`); the ``station-links`` section of docs/benchmarks.md.

The bare engine runs in a process of its own with the daemon's runtime options (:func:`edgead.daemon.model.cpu_options`)
on the same aligned frames: one bare engine per distinct set of model runtime options among the variants (backend,
inference threads, idle threads: :func:`engine_options`), each station compared with the one that has its own
(``none-t1`` with a one-thread bare engine), named in the tables when there are several. The variants and the
bare engines take turns in blocks of ``--block`` parts, so a change of the machine's load reaches all alike. Per-part time is the daemon's own: trigger-in (or frame arrival)
to result-out, the ``total_ms`` of each record; its p50 and p99 are given as ratios to the bare engine's.
Also measured: the PLC round trip, each stage's p50, the daemon's RSS from the end of the warm-up to the end,
the commit alone (``synchronous`` NORMAL/FULL against a queue put) and, with ``--compare N``, record before
answer against the old order (issue 15).

Where the slow parts are (:mod:`tail`): each part's turn and place in it (place 0: the first part after another
process ran) is kept, and the section gives the slow share (above the series' p99) of each bucket of places and
of the worst tenth of the turns. ``--rewarm N``: each process runs ``N`` parts at the start of each turn that are
not counted (the first part after a switch is slow for the switch's sake); the p99 over every part of the measured
turns is given beside. ``--dump FILE.npz``: every measured part's stage times, index, place, turn and time stamp.

Results: benchmarks/results/station.json and the ``station`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import queue
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, save_json, start_daemon, stats_ms, stop_daemon, update_section  # noqa: E402
from links import link_rows, measure_links  # noqa: E402
from tail import Turns, tail_profile  # noqa: E402

COMPARE_BLOCK = 250


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else float("nan")


def old_order_station(base):
    """A Station that answers first and commits the row on a writer thread afterwards (the order before issue 15),
    switched on and off per block of parts, so both orders run in one process on the same PLC link."""

    class AlternatingStation(base):
        old_order = False

        def __enter__(self):
            super().__enter__()
            from edgead.records import RecordStore

            self._old_store = RecordStore(self.cfg.storage.database, autocheckpoint=False)
            self._old_queue: queue.Queue = queue.Queue()
            self._old_writer = threading.Thread(target=self._write_old, daemon=True)
            self._old_writer.start()
            return self

        def _write_old(self):
            """The old recorder thread: archive the image (when kept), then add the row."""
            while (item := self._old_queue.get()) is not None:
                record, image, amap = item
                if image is not None and self.recorder.images is not None:
                    self.recorder.images.archive.save(image, record.part_id, anomaly_map=amap, t_ns=record.t_ns)
                self._old_store.add(record)

        def _record_and_answer(self, part):
            if not self.old_order:
                return super()._record_and_answer(part)
            t = time.monotonic_ns()
            self._answer(part)
            keep = part.image is not None and not part.outcome.verdict.passes
            self._old_queue.put((self._record(part), part.image if keep else None, part.amap if keep else None))
            part.outcome.latencies_ms["record"] = (time.monotonic_ns() - t) / 1e6 - part.outcome.latencies_ms[
                "signal"]  # the old hot-path cost of recording: a queue put

        def close(self):
            if hasattr(self, "_old_queue"):
                self._old_queue.put(None)
                self._old_writer.join()
                self._old_store.close()
            super().close()

    return AlternatingStation


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class Daemon:
    """``edgead run CONFIG`` as its own process (as under systemd), started until ``READY=1``; this process is its
    PLC: :meth:`parts` sends a trigger after each answer and keeps the round trips in a preallocated array. A
    camera-triggered station is its photo-eye too: an :class:`EdgeFeed` on the camera's trigger line."""

    def __init__(self, config: Path, plc_port: str, total: int, tmp: Path, line: Path | None = None,
                 frame_interval_s: float = 0.0, peer_gap_s: float = 0.0):
        self.config, self.plc_port, self.tmp, self.peer_gap_s = config, plc_port, tmp, peer_gap_s
        self.line, self.frame_interval_s = line, frame_interval_s
        self.camera_triggered = line is not None
        self.turns = Turns(total)  # each part's turn, place in it, and whether it counts
        self.trips = np.full(total, np.nan)
        self.next_id, self.unanswered, self.mismatched, self.busy_s = 1, 0, 0, 0.0
        self._buf = b""
        self.proc = self.sock = self.ser = self.feed = None

    def __enter__(self) -> "Daemon":
        import serial

        self.proc, self.sock, self.log_path = start_daemon(self.config, self.tmp)
        self.ser = serial.Serial(self.plc_port, 19200, timeout=0.005)
        if self.camera_triggered:
            self.feed = EdgeFeed(self.line, len(self.trips) + 16)
        return self

    def parts(self, n: int, counted: bool = True, new_turn: bool = True) -> None:
        """Inspect ``n`` parts: one trigger ``peer_gap_s`` after each answer (5 s without one: unanswered), the
        answer read as soon as it is there (not at the end of the port's read timeout); camera-triggered,
        ``n`` edges on the camera's trigger line, one per frame interval, and their answers. ``counted=False``:
        re-warm parts (run, kept apart); ``new_turn``: the first parts of a turn."""
        if self.proc.poll() is not None:
            raise SystemExit(f"the daemon {self.config.stem} stopped (rc {self.proc.returncode}): "
                             f"{self.log_path.read_text()[-3000:]}")
        self.turns.add(n, counted, new_turn)
        if self.camera_triggered:
            return self._edge_parts(n)
        ser, t_block = self.ser, time.monotonic()
        for part_id in range(self.next_id, self.next_id + n):
            t0 = time.monotonic()
            ser.write(b"T%d\r\n" % part_id)
            answered = False
            while not answered and time.monotonic() - t0 < 5.0:
                self._buf += ser.read(max(1, ser.in_waiting))  # what is there, else the first byte that comes
                while b"\n" in self._buf:
                    line, self._buf = self._buf.split(b"\n", 1)
                    if line.strip().partition(b" ")[2] == b"%d" % part_id:
                        self.trips[part_id - 1] = (time.monotonic() - t0) * 1e3
                        answered = True
                    else:
                        self.mismatched += 1
            self.unanswered += not answered
            if answered and self.peer_gap_s:
                time.sleep(self.peer_gap_s)
        self.next_id += n
        self.busy_s += time.monotonic() - t_block

    def _edge_parts(self, n: int) -> None:
        """``n`` edges paced at the frame interval, then the answers still due; the station's answer carries its
        sequence number, the edge's index: the round trip is edge to answer."""
        t_block = time.monotonic()
        answered = self.feed.run(n, self.frame_interval_s, self._read_answers)
        self.unanswered += n - answered
        self.next_id += n
        self.busy_s += time.monotonic() - t_block

    def _read_answers(self) -> int:
        """The answers read now (their round trips noted); called by the feed between edges."""
        self._buf += self.ser.read(self.ser.in_waiting)  # what is there now: the feed sleeps between polls
        got = 0
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            seq = line.strip().partition(b" ")[2]
            if seq.isdigit() and int(seq) < len(self.trips) and self.feed.sent_at(int(seq)) is not None:
                self.trips[int(seq)] = (time.monotonic() - self.feed.sent_at(int(seq))) * 1e3
                got += 1
            else:
                self.mismatched += 1
        return got

    def rss_mb(self) -> float:
        return proc_rss_mb(self.proc.pid) if self.proc.poll() is None else float("nan")

    def __exit__(self, *exc) -> None:
        if self.feed is not None:
            self.feed.close()
        if self.ser is not None:
            self.ser.close()
        if self.proc is not None:
            stop_daemon(self.proc)
        if self.sock is not None:
            self.sock.close()


class EdgeFeed:
    """The photo-eye of a hardware-triggered replay camera: writes one edge (a byte) per part on its trigger line
    (a named pipe, :class:`edgead.camera.folder.TriggerLine`), paced, and nothing between runs: the station is
    paused by getting no edge, never by stopping its process (a stop inside a serial write trips its timeout).

    Args:
        line: the named pipe the camera opened (it must be open: the write end is opened non-blocking).
        total: edges at most (their send times are kept in a preallocated array).
    """

    def __init__(self, line: Path, total: int):
        self._fd = os.open(line, os.O_WRONLY | os.O_NONBLOCK)
        self._sent = np.full(total, np.nan)
        self.edges = 0

    def sent_at(self, index: int) -> float | None:
        """``time.monotonic()`` when edge ``index`` (0-based) went out, None if it has not."""
        t = self._sent[index] if 0 <= index < self._sent.size else np.nan
        return None if np.isnan(t) else float(t)

    def run(self, n: int, interval_s: float, poll, quiet_s: float = 5.0) -> int:
        """Send ``n`` edges ``interval_s`` apart, calling ``poll()`` (answers read, returned as a count) in between,
        then until the ``n`` answers came or ``quiet_s`` passed without one. Returns the answers counted."""
        got, t_next = 0, time.monotonic()
        for _ in range(n):
            while (now := time.monotonic()) < t_next:
                got += poll()
                time.sleep(min(0.0005, max(0.0, t_next - time.monotonic())))
            self._sent[self.edges] = now
            os.write(self._fd, b"\x01")
            self.edges += 1
            t_next = max(t_next + interval_s, now)
        last = time.monotonic()
        while got < n and time.monotonic() - last < quiet_s:
            more = poll()
            if more:
                got, last = got + more, time.monotonic()
            else:
                time.sleep(0.0005)
        return got

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class BareEngine:
    """The station's engine alone, in a process of its own as the daemon's is (:func:`bare_worker`): the same
    bundle and runtime options (:func:`edgead.daemon.model.cpu_options`), the same aligned frames, timed one
    inference at a time after a pause of ``gap_ms`` (the station's engine waits while the loop aligns, records and
    answers). Its own process: the benchmark's (which trained the model and plays the PLC) measured it slower
    than the daemon's own infer stage."""

    def __init__(self, config: Path, frames: list, total: int, tmp: Path, gap_ms: float = 0.0):
        path = tmp / "bare-frames.npy"
        np.save(path, np.stack([np.ascontiguousarray(f) for f in frames]))
        self.proc = subprocess.Popen([sys.executable, __file__, "--bare-worker", str(config), str(path),
                                      str(gap_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the bare engine's process did not start")
        self.reset(total)

    def reset(self, total: int) -> None:
        """Forget the parts timed so far (room for ``total``, re-warm parts included)."""
        self.times = np.full(total, np.nan)
        self.turns = Turns(total)
        self.done = 0

    def parts(self, n: int, counted: bool = True, new_turn: bool = True) -> None:
        """Time ``n`` inferences (``counted=False``: re-warm parts, kept apart; ``new_turn``: the first of a turn)."""
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        got = [float(x) for x in self.proc.stdout.readline().split(",")]
        self.turns.add(len(got), counted, new_turn)
        self.times[self.done:self.done + len(got)] = got
        self.done += len(got)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(60)


def bare_series(bare: BareEngine, warmup: int) -> dict:
    """A bare engine's measured inference times (its warm-up blocks left out too) with each one's place and turn,
    and the times of every inference of the measured turns (re-warm ones included)."""
    measured, every = bare.turns.masks(warmup)
    n = bare.turns.n
    return {"ms": bare.times[:n][measured], "every": bare.times[:n][every],
            "place": bare.turns.place[:n][measured], "turn": bare.turns.turn[:n][measured]}


def bare_worker(config: str, frames_path: str, gap_ms: str) -> None:
    """The bare engine's process: reads a count per line, answers with that many inference times (ms)."""
    from edgead.bundle import load_bundle
    from edgead.daemon.config import load_station
    from edgead.daemon.model import cpu_options
    from edgead.infer import open_backend

    cfg = load_station(config)
    bundle = load_bundle(cfg.model.bundle)
    eng = open_backend(bundle, cfg.model.backend, **cpu_options(cfg, bundle))
    eng.warmup(cfg.model.warmup_runs)
    frames = [f[None] for f in np.load(frames_path)]
    gap, i = float(gap_ms) / 1000.0, 0
    print("ready", flush=True)
    for line in sys.stdin:
        out = []
        for _ in range(int(line)):
            if gap:
                time.sleep(gap)
            t = time.perf_counter()
            eng.infer(frames[i % len(frames)])
            out.append((time.perf_counter() - t) * 1e3)
            i += 1
        print(",".join(f"{x:.4f}" for x in out), flush=True)
    eng.close()


def daemon_rows(db: Path, warmup: int) -> dict:
    """Per-stage latencies (ms) and verdicts of the parts after the warm-up, as the daemon recorded them."""
    with sqlite3.connect(db) as conn:
        have = {r[1] for r in conn.execute("PRAGMA table_info(parts)")}
        cols = tuple(c for c in ("queue", "capture", "align", "infer", "decide", "record", "signal", "total")
                     if f"{c}_ms" in have)
        rows = conn.execute(f"SELECT {', '.join(c + '_ms' for c in cols)}, verdict, seq, t_ns FROM parts "
                            "WHERE seq >= ? ORDER BY id", (warmup,)).fetchall()
    out = {c: np.array([np.nan if r[i] is None else r[i] for r in rows], np.float64) for i, c in enumerate(cols)}
    out["verdict"] = np.array([r[-3] for r in rows])
    out["seq"] = np.array([r[-2] for r in rows], np.int64)  # the part's index over the run: its place in its turn
    out["t_s"] = np.array([r[-1] / 1e9 for r in rows], np.float64)
    return out


def turn_rows(rows: dict, turns: Turns, warmup: int) -> tuple[dict, np.ndarray]:
    """A daemon's rows (:func:`daemon_rows` from part 0) cut to the measured parts, each with its ``place`` in its
    turn and its ``turn``; and the per-part time of every part of the measured turns, re-warm parts included."""
    seq = rows["seq"]
    ok = seq < turns.n

    def rows_in(mask: np.ndarray) -> np.ndarray:  # the rows whose part the per-part mask picks
        pick = np.zeros(seq.size, bool)
        pick[ok] = mask[seq[ok]]
        return pick

    measured, every = turns.masks(warmup)
    picked = rows_in(measured)
    out = {k: v[picked] for k, v in rows.items()}
    out["place"], out["turn"] = turns.place[out["seq"]], turns.turn[out["seq"]]
    return out, rows["total"][rows_in(every)]


def commit_costs(tmp: Path, rounds: int = 10, per_round: int = 200) -> dict:
    """p50/p99 of one part's commit: NORMAL, FULL, and the old queue put, in alternating rounds."""
    from edgead.records import PartRecord, RecordStore, RowUpdate, Synchronous
    from edgead.verdict import Verdict

    def record(i):
        return PartRecord.now(part_id=str(i), seq=i, verdict=Verdict.REJECT, score=0.7, raw_score=3.1,
                              capture_ms=1.0, align_ms=9.0, infer_ms=12.0, decide_ms=0.2, model_hash="ab" * 32,
                              align_quality=0.98, roi_scores={"part": 0.7}, error=None)

    stores = {mode: RecordStore(tmp / f"commit-{mode.value}.sqlite", synchronous=mode, autocheckpoint=False)
              for mode in Synchronous}
    times: dict[str, list] = {"normal": [], "full": [], "old_queue_put": []}
    q: queue.Queue = queue.Queue()
    last = {mode: None for mode in Synchronous}
    for r in range(rounds):
        for mode, store in stores.items():
            for i in range(per_round):
                updates = [RowUpdate(last[mode], {"signal_ms": 0.3, "total_ms": 25.0, "plc_answer": "reject"})] \
                    if last[mode] else []
                t = time.perf_counter()
                last[mode] = store.commit(record(i), updates)
                times[mode.value].append(time.perf_counter() - t)
        for i in range(per_round):
            t = time.perf_counter()
            q.put(record(i))
            times["old_queue_put"].append(time.perf_counter() - t)
        while not q.empty():
            q.get()
    for store in stores.values():
        store.close()
    return {k: stats_ms(v) for k, v in times.items()}


# variant -> (storage.save_images, who starts the parts, its own config overrides)
VARIANTS = {"none": ("none", "plc", {}), "all": ("all", "plc", {}), "camera-none": ("none", "camera", {}),
            "camera-all": ("all", "camera", {}), "none-spin": ("none", "plc", {"model": {"thread_wait": "spin"}}),
            "all-nice0": ("all", "plc", {"runtime": {"image_nice": 0}}),
            "none-t1": ("none", "plc", {"model": {"intra_op_threads": 1}}),
            "none-gc": ("none", "plc", {"runtime": {"gc": "default"}}),
            "none-left": ("none", "plc", {"model": {"intra_op_threads": "cores_left"}}),
            "all-t1": ("all", "plc", {"model": {"intra_op_threads": 1}}),
            "none-ov": ("none", "plc", {"model": {"backend": "openvino"}}),
            "none-ov-t1": ("none", "plc", {"model": {"backend": "openvino", "intra_op_threads": 1}}),
            "none-spin-run": ("none", "plc", {"model": {"thread_wait": "spin_in_run"}})}
NAMES = {"none": "PLC trigger, no image archived", "all": "PLC trigger, every image archived",
         "camera-none": "camera-triggered, no image archived", "camera-all": "camera-triggered, every image archived",
         "none-spin": "PLC trigger, no image archived, `model.thread_wait: spin`",
         "all-nice0": "PLC trigger, every image archived, `runtime.image_nice: 0`",
         "none-t1": "PLC trigger, no image archived, `model.intra_op_threads: 1`",
         "none-gc": "PLC trigger, no image archived, `runtime.gc: default`",
         "none-left": "PLC trigger, no image archived, `model.intra_op_threads: cores_left`",
         "all-t1": "PLC trigger, every image archived, `model.intra_op_threads: 1`",
         "none-ov": "PLC trigger, no image archived, `model.backend: openvino`",
         "none-ov-t1": "PLC trigger, no image archived, `model.backend: openvino`, `model.intra_op_threads: 1`",
         "none-spin-run": "PLC trigger, no image archived, `model.thread_wait: spin_in_run`"}


def engine_options(model, bundle_backend: str) -> tuple[str, int, str]:
    """What a station's bare engine must share with it: ``(backend, inference threads, idle threads)`` of its
    ``model`` section (a :class:`edgead.daemon.config.ModelSection`; ``bundle_backend``: the bundle's own runtime,
    where the section names none), the thread rule resolved on this machine's usable cores
    (:func:`edgead.infer.threads.engine_threads`)."""
    from edgead.infer.threads import engine_threads

    return (model.backend.value if model.backend is not None else bundle_backend,
            engine_threads(model.intra_op_threads), model.thread_wait.value)


def pair_engines(options: dict[str, tuple]) -> dict[tuple, list[str]]:
    """The bare engines a run needs: each distinct option set among the variants' (``{variant: engine_options}``,
    in order) with the variants compared with it, in order of first use."""
    out: dict[tuple, list[str]] = {}
    for variant, key in options.items():
        out.setdefault(key, []).append(variant)
    return out


def engine_labels(keys: list[tuple]) -> dict[tuple, str]:
    """Each bare engine's name in the tables: ``bare `engine.infer``` alone, else followed by the options in which
    the bare engines of the run differ (``onnxruntime``, ``1 thread``, ``spin``)."""
    differ = [i for i in range(3) if len({k[i] for k in keys}) > 1]
    words = (lambda b: b, lambda n: f"{n} thread" + ("s" if n != 1 else ""), lambda w: f"`{w}`")
    return {k: ", ".join(["bare `engine.infer`", *(words[i](k[i]) for i in differ)]) for k in keys}


def parse_sets(items: list[str]) -> dict:
    """``--set model.thread_wait=spin`` -> nested dict (as ``edgead run --set``)."""
    from edgead.config import parse_set

    return parse_set(items) if items else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=10000, help="parts measured per variant after the warm-up")
    ap.add_argument("--warmup", type=int, default=500, help="parts per variant before the measurement (and RSS)")
    ap.add_argument("--block", type=int, default=500, help="parts per block; the variants and the bare engine "
                    "take turns block by block")
    ap.add_argument("--variants", default="none,all,camera-none,camera-all",
                    help="which stations to run: none / all (PLC-triggered, no image or every image archived), "
                    "camera-none / camera-all (the camera starts the parts, frames captured ahead)")
    ap.add_argument("--bare-gap-ms", type=float, default=3.0,
                    help="the bare engine sleeps this long before each inference, as the station's engine waits "
                    "while the loop aligns, records and answers (a busy loop and a sleeping one fare differently "
                    "on a shared machine)")
    ap.add_argument("--peer-gap-ms", type=float, default=3.0,
                    help="the PLC peer's pause after an answer before its next trigger (it reads the answer as "
                    "soon as it is there)")
    ap.add_argument("--frame-interval", type=float, default=1.5,
                    help="camera-triggered variants: the replay's frame interval, in bare-engine p50s")
    ap.add_argument("--compare", type=int, default=0, help="parts for the record-order comparison (0: skip)")
    ap.add_argument("--model", default="padim")
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a station config override for every daemon and the bare engine, e.g. "
                    "model.thread_wait=spin")
    ap.add_argument("--loaded", default=None,
                    help="say how the machine was loaded during the run (goes into the docs), e.g. 'shared'")
    ap.add_argument("--section", default="station",
                    help="the docs/benchmarks.md section (and benchmarks/results/SECTION.json) to write")
    ap.add_argument("--links", type=int, default=300, help="parts per plant link (0: skip the link rows)")
    ap.add_argument("--links-only", action="store_true", help="only the per-link rows (measurement 5)")
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    ap.add_argument("--rewarm", type=int, default=0,
                    help="parts each process runs at the start of each turn, not counted (the first parts after "
                    "another process ran); the p99 over every part is given beside")
    ap.add_argument("--dump", type=Path, default=None, metavar="NPZ",
                    help="also write every measured part's times, index and time stamp (and the bare engine's) here")
    ap.add_argument("--shadow", type=int, default=4000, help="parts for the shadow on/off comparison (0: skip)")
    ap.add_argument("--shadow-budget", type=float, default=25.0, help="shadow.cpu_budget_pct of that run")
    ap.add_argument("--only-shadow", action="store_true", help="run only the shadow comparison")
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or set(variants) - set(VARIANTS):
        ap.error(f"--variants: choose from {', '.join(VARIANTS)}")

    from edgead.align import Aligner
    from edgead.align.dataset import align_dataset
    from edgead.config import merge_overrides
    from edgead.daemon import runner as runner_mod
    from edgead.daemon.config import load_station
    from edgead.data import load_image
    from edgead.data.synthetic import StationSpec, generate_captures, generate_dataset
    from edgead.demo.plc_peer import PtyPair, run_with_plc
    from edgead.infer import bundle_runtime
    from edgead.train.pipeline import TrainConfig, train

    sets = parse_sets(args.sets)
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = StationSpec(height=args.height, width=args.width, max_shift_px=min(args.height, args.width) / 16)
        raw = generate_dataset(tmp / "raw", spec, n_train=40, n_test_good=4, n_test_defect=4, aligned=False)
        align_dataset(raw, tmp / "aligned", raw / "reference.png")
        bundle = train(tmp / "aligned", tmp / "bundle", TrainConfig(model=args.model, image_size=max(args.height,
                       args.width), evaluate=False), progress=False).bundle
        captures = generate_captures(tmp / "captures", spec, n=100, defect_rate=0.3, seed=7)
        if args.only_shadow:  # the shadow on/off comparison alone (its own section), with an in-process bare p50
            from edgead.infer import open_backend

            with open_backend(bundle.root) as eng:
                img = load_image(captures / "000000.png", bundle.meta.color)[None]
                for _ in range(5):
                    eng.infer(img)
                bare = []
                for _ in range(200):
                    t = time.perf_counter()
                    eng.infer(img)
                    bare.append(time.perf_counter() - t)
        from edgead.infer import open_backend

        bare_engine = open_backend(bundle.root)  # closed with the process
        bare_image = load_image(captures / "000000.png", bundle.meta.color)[None]

        def bare_infer(runs: int = 200) -> list[float]:
            """Seconds per ``engine.infer`` on one capture, in this process (the baseline)."""
            for _ in range(3):
                bare_engine.infer(bare_image)
            out = []
            for _ in range(runs):
                t = time.perf_counter()
                bare_engine.infer(bare_image)
                out.append(time.perf_counter() - t)
            return out

            shadow = shadow_comparison(args, tmp, bundle, captures, raw / "reference.png", load)
            report_shadow(args, shadow, bundle.model_type, stats_ms(bare))
            return
        commits = commit_costs(tmp)

        def config(pty, name: str, save: str = "rejects", trigger: str = "plc", line: Path | None = None,
                   own: dict | None = None) -> Path:
            path = tmp / f"{name}.yaml"
            edges = f"&trigger=hardware&trigger_line={line}" if line is not None else ""
            path.write_text(yaml.safe_dump(merge_overrides(merge_overrides({
                "camera": {"url": f"{replay_url(captures)}{edges}"}, "trigger": trigger,
                "reference": str(raw / "reference.png"), "model": {"bundle": str(bundle.root)},
                "plc": {"url": pty.station, "protocol": "ascii"},
                "storage": {"database": str(tmp / f"{name}.sqlite"), "images_dir": str(tmp / f"{name}-images"),
                            "quota_mb": 200, "save_images": save},
                "observe": {"metrics_listen": None, "log_level": "warning"},
                "security": {"allow_unsigned": True}}, sets), own or {})))  # the benchmark's own bundle
            return path

        if args.links_only:
            return links_main(args, tmp, config_data(captures, raw, bundle, tmp, "links"), bare_infer, load)

        # 1. the stations (own processes) and the bare engine (this process), taking turns block by block
        total = args.warmup + args.parts
        capacity = total + args.rewarm * -(-total // args.block)  # the re-warm parts of every turn too
        with ExitStack() as stack:
            bare_configs = {}  # each variant's bare engine config: its model section, written once
            for v in variants:
                bare_configs[v] = tmp / f"bare-{v}.yaml"
                bare_configs[v].write_text(yaml.safe_dump(merge_overrides(merge_overrides(
                    {"model": {"bundle": str(bundle.root)}}, sets), {"model": VARIANTS[v][2].get("model", {})})))
            own_backend = bundle_runtime(bundle.meta)[0].value
            loaded_cfgs = {v: load_station(path) for v, path in bare_configs.items()}
            engines = pair_engines({v: engine_options(c.model, own_backend) for v, c in loaded_cfgs.items()})
            labels = engine_labels(list(engines))
            cfg = loaded_cfgs[variants[0]]
            reference = load_image(raw / "reference.png", bundle.meta.color)
            aligner = Aligner(reference, cfg.alignment)
            frames = [aligner.align(load_image(p, bundle.meta.color)).image for p in sorted(captures.glob("*.png"))]
            bares, fps_of = {}, {}
            for key, paired in engines.items():
                bare = bares[key] = BareEngine(bare_configs[paired[0]], frames, 200, tmp, args.bare_gap_ms)
                stack.callback(bare.close)
                bare.parts(200)
                fps_of[key] = 1000.0 / (args.frame_interval * pct(bare.times[:200], 50))
                bare.reset(capacity)
            paired_with = {v: key for key, vs in engines.items() for v in vs}
            fps = fps_of[paired_with[variants[0]]]
            daemons = {}
            for v in variants:
                pty = stack.enter_context(PtyPair(tmp))
                save, trigger, own = VARIANTS[v]
                line = None
                if trigger == "camera":  # the photo-eye's line: one edge per part, none between turns
                    line = tmp / f"station-{v}.line"
                    os.mkfifo(line)
                daemons[v] = stack.enter_context(Daemon(config(pty, f"station-{v}", save, trigger, line, own),
                                                        pty.plc, capacity, tmp, line, 1.0 / fps_of[paired_with[v]],
                                                        args.peer_gap_ms / 1000.0))
            rss: dict[str, dict] = {v: {} for v in variants}
            done = 0
            while done < total:
                n = min(args.block, total - done)
                for v, d in daemons.items():
                    if args.rewarm:  # the first parts after another process ran: run, not counted
                        d.parts(args.rewarm, counted=False)
                    d.parts(n, new_turn=not args.rewarm)
                    if VARIANTS[v][0] != "none":
                        time.sleep(0.5)  # the image writer drains before the next turn
                for bare in bares.values():
                    if args.rewarm:
                        bare.parts(args.rewarm, counted=False)
                    bare.parts(n, new_turn=not args.rewarm)
                done += n
                for v, d in daemons.items():
                    for mark in (args.warmup, total):
                        if done >= mark and mark not in rss[v]:
                            rss[v][mark] = d.rss_mb()
                load.append(os.getloadavg()[0])
        runs = {}
        for v, d in daemons.items():
            rows, every = turn_rows(daemon_rows(d.config.with_suffix(".sqlite"), 0), d.turns, args.warmup)
            measured = d.turns.masks(args.warmup)[0]
            runs[v] = {"rows": rows, "every": every, "trips": d.trips[:d.turns.n][measured],
                       "unanswered": d.unanswered,
                       "mismatched": d.mismatched, "parts_per_min": 60 * d.turns.n / d.busy_s, "rss": rss[v],
                       "images": archived(d.config.with_suffix(".sqlite"))}
        bare_runs = {key: bare_series(b, args.warmup) for key, b in bares.items()}
        if args.dump:  # every measured part in order, for a look at the tail beyond tail_profile
            first = bare_runs[paired_with[variants[0]]]  # bare_ms etc.: the first variant's bare engine
            slugs = {key: "-".join(map(str, key)) for key in bares}  # bare_SLUG_ms etc.: every bare engine's
            np.savez_compressed(args.dump, block=args.block, rewarm=args.rewarm, warmup=args.warmup,
                                bare_ms=first["ms"], bare_place=first["place"], bare_turn=first["turn"],
                                paired=np.array([f"{v}={slugs[paired_with[v]]}" for v in variants]),
                                **{f"bare_{slugs[key]}_{k}": r[k] for key, r in bare_runs.items()
                                   for k in ("ms", "place", "turn")},
                                **{f"{v}_{k}": r["rows"][k] for v, r in runs.items() for k in (
                                    "total", "infer", "align", "record", "signal", "seq", "t_s", "place", "turn")})

        # 2. record before answer against the old order, alternating blocks in one run
        compare = {}
        if args.compare:
            orders: dict[int, str] = {}

            def note_order(o):
                orders[o.seq + 1] = "old" if station_cls.old_order else "new"  # ids are seq + 1
                if (o.seq + 1) % COMPARE_BLOCK == 0:
                    station_cls.old_order = not station_cls.old_order

            station_cls = old_order_station(runner_mod.Station)
            runner_mod.Station = station_cls
            try:
                with PtyPair(tmp) as pty:
                    _, clog = run_with_plc(load_station(config(pty, "compare")), pty.plc, args.compare,
                                           on_part=note_order)
            finally:
                runner_mod.Station = station_cls.__mro__[1]
            for order in ("new", "old"):
                trips = [clog.round_trip_ms[i] for i, o in orders.items() if o == order and i in clog.round_trip_ms
                         and i > COMPARE_BLOCK]  # the first block warms up
                compare[order] = {"p50": pct(trips, 50), "p99": pct(trips, 99), "n": len(trips)}
            compare["ratio_p50"] = compare["new"]["p50"] / compare["old"]["p50"]
            compare["ratio_p99"] = compare["new"]["p99"] / compare["old"]["p99"]
            load.append(os.getloadavg()[0])
        if args.links:
            links_main(args, tmp, config_data(captures, raw, bundle, tmp, "links"), bare_infer, load)

        shadow = shadow_comparison(args, tmp, bundle, captures, raw / "reference.png", load) if args.shadow else None

    bare_res = {labels[key]: {"p50": pct(r["ms"], 50), "p99": pct(r["ms"], 99), "n": int(r["ms"].size),
                              "options": dict(zip(("backend", "threads", "thread_wait"), key)),
                              "variants": engines[key],
                              "every": {"p50": pct(r["every"], 50), "p99": pct(r["every"], 99),
                                        "n": int(r["every"].size)},
                              "tail": tail_profile(r["ms"], r["place"], r["turn"], args.block + args.rewarm)}
                for key, r in bare_runs.items()}
    first_bare = bare_res[labels[paired_with[variants[0]]]]
    bare_p50, bare_p99 = first_bare["p50"], first_bare["p99"]
    res = {
        "machine": machine(), "load_average_1min": [min(load), float(np.median(load)), max(load)],
        "model": bundle.model_type, "input": [args.height, args.width], "parts": args.parts, "warmup": args.warmup,
        "block": args.block, "overrides": args.sets, "camera_fps": fps,
        "rewarm": args.rewarm,
        "bare_engines": bare_res,
        "stations": {v: summarise(r, bare_res[labels[paired_with[v]]], labels[paired_with[v]], args.warmup, total,
                                  args.block + args.rewarm) for v, r in runs.items()},
        "order_comparison": compare, "commit_ms": commits,
    }
    if not args.no_docs:
        save_json(ROOT / "benchmarks" / "results" / f"{args.section}.json", res)
    print(yaml.safe_dump(res, sort_keys=False))
    if not args.no_docs:
        update_section(args.section, docs_section(args, res))
    if shadow is not None:
        report_shadow(args, shadow, bundle.model_type, {"median_ms": bare_p50, "p99_ms": bare_p99})


def shadow_comparison(args, tmp: Path, bundle, captures: Path, reference: Path, load: list) -> dict:
    """Measurement 4: PLC round trip with the shadow model on and off, alternating blocks in one daemon."""
    import shutil

    from edgead.daemon import runner as runner_mod
    from edgead.daemon.config import load_station
    from edgead.demo.plc_peer import PtyPair, run_with_plc

    candidate = tmp / "candidate"
    shutil.copytree(bundle.root, candidate)  # the same model: the shadow costs what the live engine costs
    base = runner_mod.Station
    held: dict = {}

    class Toggled(base):
        def __enter__(self):
            out = super().__enter__()
            held["station"], held["runner"] = self, self.shadow
            return out

    state = {"on": False}
    blocks: dict[int, str] = {}

    def toggle(o):
        blocks[o.seq + 1] = "on" if state["on"] else "off"
        if (o.seq + 1) % COMPARE_BLOCK == 0:
            state["on"] = not state["on"]
            held["station"].shadow = held["runner"] if state["on"] else None

    runner_mod.Station = Toggled
    try:
        with PtyPair(tmp) as pty:
            path = tmp / "shadow.yaml"
            path.write_text(yaml.safe_dump({
                "camera": {"url": replay_url(captures)},
                "reference": str(reference), "model": {"bundle": str(bundle.root)},
                "plc": {"url": pty.station, "protocol": "ascii"},
                "storage": {"database": str(tmp / "shadow.sqlite"), "images_dir": str(tmp / "shadow-rejects"),
                            "quota_mb": 100},
                "observe": {"metrics_listen": None, "log_level": "warning"},
                "security": {"allow_unsigned": True},
                "shadow": {"bundle": str(candidate), "cpu_budget_pct": args.shadow_budget}}))
            cfg = load_station(path)
            held["station"] = None

            def first(o):  # the shadow starts off: the first block is the baseline's warm-up
                if o.seq == 0:
                    held["station"].shadow = None
                toggle(o)

            _, slog = run_with_plc(cfg, pty.plc, args.shadow, on_part=first)
    finally:
        runner_mod.Station = base
    load.append(os.getloadavg()[0])
    out = {}
    for mode in ("on", "off"):
        trips = [slog.round_trip_ms[i] for i, m in blocks.items() if m == mode and i in slog.round_trip_ms
                 and i > COMPARE_BLOCK]
        out[mode] = {"p50": pct(trips, 50), "p99": pct(trips, 99), "n": len(trips)}
    out["ratio_p50"] = out["on"]["p50"] / out["off"]["p50"]
    out["ratio_p99"] = out["on"]["p99"] / out["off"]["p99"]
    out["shadow_counts"] = {k.value: v for k, v in held["runner"].counts.items()}
    out["budget_pct"] = args.shadow_budget
    return out


def report_shadow(args, shadow: dict, model: str, bare_st: dict) -> None:
    res = {"machine": machine(), "load_average_1min": os.getloadavg()[0], "model": model,
           "input": [args.height, args.width], "parts": args.shadow, "shadow": shadow, "bare_infer_ms": bare_st}
    print(yaml.safe_dump(res, sort_keys=False))
    if args.no_docs:
        return
    save_json(ROOT / "benchmarks" / "results" / "station-shadow.json", res)
    on, off, c = shadow["on"], shadow["off"], shadow["shadow_counts"]
    loaded = args.loaded or f"load average {res['load_average_1min']:.1f}"
    offered = sum(c.values())
    update_section("station-shadow", "\n".join([
        f"Produced by `python benchmarks/station.py --only-shadow --shadow {args.shadow} --shadow-budget "
        f"{args.shadow_budget:g} --model {model} --height {args.height} --width {args.width}` on {machine()} "
        f"({loaded}): one `edgead run` loop (in process) with an ASCII PLC peer on a pty pair, triggers back to back "
        f"(the worst case: no idle time between parts), the shadow (a copy of the live bundle) switched on and off "
        f"in alternating blocks of {COMPARE_BLOCK} parts.",
        "",
        "| PLC round trip | shadow off | shadow on | on / off |",
        "|---|---|---|---|",
        f"| p50 | {off['p50']:.2f} ms | {on['p50']:.2f} ms | {shadow['ratio_p50']:.2f}x |",
        f"| p99 | {off['p99']:.2f} ms | {on['p99']:.2f} ms | {shadow['ratio_p99']:.2f}x |",
        "",
        f"Bare `engine.infer` p50 {bare_st['median_ms']:.2f} ms. Of {offered} parts offered to the shadow while it "
        f"was on: {c['scored']} scored, {c['skipped_busy']} skipped busy, {c['skipped_budget']} skipped over its "
        f"{args.shadow_budget:g} % budget, {c['error']} errors.",
    ]))


def replay_url(captures: Path) -> str:
    """The stations' camera: the captures replayed in a loop, decoded once at start (``preload=1``: the frames in
    memory, as a camera hands over its raw buffers; a PNG decode per part is the replay's cost, not a station's)."""
    return f"folder://{captures}?fps=0&loop=1&pattern=*.png&preload=1"


def config_data(captures: Path, raw: Path, bundle, tmp: Path, name: str) -> dict:
    """The station config every link's run shares (each sets its own ``plc`` and database)."""
    return {"camera": {"url": replay_url(captures)},
            "reference": str(raw / "reference.png"), "model": {"bundle": str(bundle.root)},
            "storage": {"database": str(tmp / f"{name}.sqlite"), "images_dir": str(tmp / f"{name}-rejects"),
                        "quota_mb": 100},
            "observe": {"metrics_listen": None, "log_level": "warning"},
            "security": {"allow_unsigned": True}}  # the benchmark trains its own bundle, unsigned


def links_main(args, tmp: Path, base: dict, bare_infer, load: list) -> None:
    """Measurement 5: a row per plant link against the bare engine; results/station-links.json and its section."""
    samples = measure_links(base, tmp, warmup=max(20, args.links // 10), parts=args.links, bare=bare_infer)
    load.append(os.getloadavg()[0])
    res, table = link_rows(samples)
    loaded = args.loaded or f"load average {', '.join(f'{x:.1f}' for x in load)}"
    out = {"machine": machine(), "load_average_1min": load, "parts_per_link": args.links, "links": res}
    print(yaml.safe_dump(out, sort_keys=False))
    if args.no_docs:
        return
    save_json(ROOT / "benchmarks" / "results" / "station-links.json", out)
    update_section("station-links", "\n".join([
        f"Produced by `python benchmarks/station.py --links {args.links} --links-only --model {args.model} --height "
        f"{args.height} --width {args.width}` on {machine()} ({loaded}): the same station (`edgead run` as its own "
        "process, ONNX Runtime FP32, alignment, a record committed before each answer) behind each link, one part "
        "at a time, the peer in the benchmark's process; round trip = trigger sent to result seen by the peer; the "
        "link's share = the round trip minus the daemon's own trigger-in to result-out of that part (`total_ms` in "
        "its records): transport, the peer's polling and the link's threads. "
        "Modbus peers poll registers 0..8 every millisecond; the OPC UA client calls `Trigger` and reads "
        "`LastResult.PartId` every millisecond, over Basic256Sha256 sign and encrypt, while `python -m edgead.north` "
        "publishes every record to a local mosquitto.", "", *table, ""]))


def archived(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM parts WHERE image_path IS NOT NULL").fetchone()[0]


def summarise(run: dict, bare: dict, bare_name: str, warmup: int, total: int, block: int) -> dict:
    """One station's figures: its per-part time (daemon clock) against its bare engine's (``bare``: its ``p50`` and
    ``p99``; ``bare_name``: its name in the tables), stages, RSS, and where its slow parts are
    (:func:`tail.tail_profile`, of the per-part time and of the infer stage)."""
    bare_p50, bare_p99 = bare["p50"], bare["p99"]
    rows, trips, every = run["rows"], run["trips"], run["every"]
    measured = rows["total"]
    stages = {k: {"mean": float(np.nanmean(v)), "p50": pct(v[~np.isnan(v)], 50), "p99": pct(v[~np.isnan(v)], 99)}
              for k, v in rows.items() if k not in ("total", "verdict", "seq", "t_s", "place", "turn")}
    rss0, rss1 = run["rss"].get(warmup), run["rss"].get(total)
    p50, p99 = pct(measured, 50), pct(measured, 99)
    return {
        "bare_engine": bare_name,
        "daemon_ms": {"p50": p50, "p99": p99, "max": float(np.nanmax(measured))},
        "plc_round_trip_ms": {"p50": pct(trips, 50), "p99": pct(trips, 99), "max": float(np.nanmax(trips))},
        "ratio_p50_vs_bare": p50 / bare_p50, "ratio_p99_vs_bare_p99": p99 / bare_p99, "p99_over_p50": p99 / p50,
        "infer_in_daemon_p50_vs_bare": stages["infer"]["p50"] / bare_p50,
        "stages_ms": stages, "parts_per_min": run["parts_per_min"],
        "verdicts": {v: int(np.sum(rows["verdict"] == v)) for v in ("accept", "reject", "no-read", "fault")},
        "images_archived": run["images"], "lost": run["unanswered"], "mismatched": run["mismatched"],
        "rss_mb": {str(k): v for k, v in sorted(run["rss"].items())},
        "rss_growth_pct": 100 * (rss1 - rss0) / rss0 if rss0 and rss1 else None,
        "every": {"p50": pct(every, 50), "p99": pct(every, 99), "n": int(every.size),
                  "p99_over_p50": pct(every, 99) / pct(every, 50)},
        "tail": tail_profile(measured, rows["place"], rows["turn"], block, rows["t_s"]),
        "infer_tail": tail_profile(rows["infer"], rows["place"], rows["turn"], block, rows["t_s"]),
    }


def tail_table(res: dict, names: dict) -> list[str]:
    """Where each series' slow parts (those above its p99) are: the share of each bucket of places in a turn that is
    slow (1 % everywhere if the tail were even), and the share of all slow parts in the worst tenth of the turns."""
    series = [(names[v], r["tail"]) for v, r in res["stations"].items()]
    series += [(f"{names[v]}: infer stage", r["infer_tail"]) for v, r in res["stations"].items()]
    series += [(name, b["tail"]) for name, b in res["bare_engines"].items()]
    buckets = [tuple(x["places"]) for x in series[0][1]["by_place"] if x["n"]]
    first = res.get("rewarm", 0)  # places before it are the re-warm parts, not counted
    lines = ["Where the slow parts are (a part above its series' p99 is slow: 1 % of the parts; spread evenly, 1 % of "
             "every bucket would be): the slow share of each bucket of places in a turn (place 0: the first part "
             "after another process ran" + ((f"; places 0-{first - 1} are the re-warm parts" if first > 1 else
                                             "; place 0 is the re-warm part") + ", not counted" if first else "")
             + "), and the share of all slow parts held by the worst tenth "
             "of the turns (10 % if even):", "",
             "| series | " + " | ".join(f"places {max(lo, first)}-{hi - 1}" if hi - max(lo, first) > 1
                                       else f"place {hi - 1}" for lo, hi in buckets)
             + " | worst tenth of turns |", "|---" * (len(buckets) + 2) + "|"]
    for name, t in series:
        got = {tuple(x["places"]): x for x in t["by_place"]}
        lines.append(f"| {name} | " + " | ".join(f"{got[b]['slow_pct']:.1f} %" if b in got and got[b]["n"] else ""
                                                 for b in buckets)
                     + f" | {t['per_turn']['worst_tenth_share_pct']:.0f} % |")
    return lines


def station_table(res: dict, names: dict) -> list[str]:
    """The stations' table: per-part p50 and p99, the ratios against each station's own bare engine (named in a
    column of its own when the run has several), and a row per bare engine."""
    bares = res["bare_engines"]
    several = len(bares) > 1
    lines = ["| station | per-part p50 (ms) | p99 (ms) | " + ("compared with | " if several else "")
             + "p50 / bare engine p50 | p99 / p50 | infer stage p50 / bare | PLC round trip p50 / p99 (ms) | "
             "parts/min |", "|---" * (9 if several else 8) + "|"]
    for v, r in res["stations"].items():
        d, t = r["daemon_ms"], r["plc_round_trip_ms"]
        lines.append(f"| {names[v]} | {d['p50']:.2f} | {d['p99']:.2f} | " + (f"{r['bare_engine']} | " if several
                                                                            else "")
                     + f"**{r['ratio_p50_vs_bare']:.2f}x** | {r['p99_over_p50']:.2f} | "
                     f"{r['infer_in_daemon_p50_vs_bare']:.2f}x | {t['p50']:.2f} / {t['p99']:.2f} | "
                     f"{r['parts_per_min']:.0f} |")
    for name, b in bares.items():
        lines.append(f"| {name} | {b['p50']:.2f} | {b['p99']:.2f} | " + ("| " if several else "")
                     + f"1.00x | {b['p99'] / b['p50']:.2f} | | | |")
    return lines


def docs_section(args, res: dict) -> str:
    c, k, bares = res["order_comparison"], res["commit_ms"], res["bare_engines"]
    lo, med, hi = res["load_average_1min"]
    loaded = f"{args.loaded}; " if args.loaded else ""  # what else ran, where the caller says
    sets = "".join(f" --set {x}" for x in args.sets)
    lines = [
        f"Produced by `python benchmarks/station.py --parts {args.parts} --warmup {args.warmup} --block {args.block} "
        + (f"--section {args.section} " if args.section != "station" else "")
        + (f"--rewarm {args.rewarm} " if args.rewarm else "") +
        f"--variants {args.variants} --model {res['model']} --height {args.height} --width {args.width}{sets}` on "
        f"{res['machine']} ({loaded}1-minute load average {lo:.1f} to {hi:.1f}, median {med:.1f}): synthetic "
        "station, the replay's frames decoded once at start (`preload=1`), the bundle's FP32 graph on the CPU "
        "(ONNX Runtime unless the row says otherwise), each "
        "station `edgead run` as its own process with an ASCII PLC peer (the script) on a socat pty pair, a "
        f"trigger {args.peer_gap_ms:g} ms after each answer (read as soon as it is there), every part's row committed "
        "before its answer. The stations and the bare "
        + ("engine (a process of its own, the daemon's runtime options, a " if len(bares) == 1 else
           f"engines (one per set of runtime options among the stations, {len(bares)} here, each a process of its "
           "own with the runtime options of the stations compared with it, a ")
        + f"{args.bare_gap_ms:g} ms pause before each inference as the station's engine has) take turns in blocks of "
        f"{args.block} parts; {args.warmup} parts of each are warm-up."
        + (f" Each turn opens with {args.rewarm} parts per process that are run but not counted (the first parts "
           "after another process ran, whose caches and pages that process evicted); the p99 over every part of "
           "the measured turns, those included, is given beside." if args.rewarm else "")
        + (f" Camera-triggered stations get one trigger-line edge (the script as the photo-eye) every "
           f"{1000 / res['camera_fps']:.1f} ms ({args.frame_interval:g} bare-engine medians), frames captured ahead, "
           "no edge between their turns; their round trip is edge to answer." if any(VARIANTS[v][1] == "camera" for v in
                                                                    res["stations"]) else ""), "",
    ]
    names = NAMES
    lines += [*station_table(res, names),
              *(["", f"Over every part of the measured turns, the {args.rewarm} re-warm parts of each turn included: "
                 + "; ".join(f"{names[v]} p99 {r['every']['p99']:.2f} ms = {r['every']['p99_over_p50']:.2f}x its p50"
                             for v, r in res["stations"].items())
                 + "".join(f"; {'bare engine' if len(bares) == 1 else name} p99 {b['every']['p99']:.2f} ms = "
                           f"{b['every']['p99'] / b['every']['p50']:.2f}x" for name, b in bares.items()) + "."]
                if args.rewarm else []),
              "", "Per-part time is trigger-in to result-out on the daemon's clock (the `total_ms` column). Stage "
              "p50 / p99 (ms):", ""]
    stage_names = list(next(iter(res["stations"].values()))["stages_ms"])
    lines += ["| station | " + " | ".join(stage_names) + " |", "|---" * (len(stage_names) + 1) + "|"]
    for v, r in res["stations"].items():
        lines.append(f"| {names[v]} | " + " | ".join(f"{r['stages_ms'][s]['p50']:.2f} / {r['stages_ms'][s]['p99']:.2f}"
                                                    for s in stage_names) + " |")
    lines += ["", *tail_table(res, names), ""]
    for v, r in res["stations"].items():
        lines.append(f"- {names[v]}: {args.parts} parts measured, {r['lost']} lost, {r['mismatched']} mismatched "
                     f"ids, {r['images_archived']} images archived; RSS "
                     + ", ".join(f"{x:.1f} MB after part {p}" for p, x in r["rss_mb"].items())
                     + (f" ({r['rss_growth_pct']:+.2f} %)" if r["rss_growth_pct"] is not None else "") + ".")
    if c:
        lines += [
            "", "Record before answer against the old order (answer, then a writer thread commits), alternating "
            f"blocks of {COMPARE_BLOCK} parts in one run ({args.compare} parts, the first block not counted), PLC "
            "round trip in ms:", "",
            "| order | p50 | p99 | parts |", "|---|---|---|---|",
            f"| commit, then answer (shipped) | {c['new']['p50']:.1f} | {c['new']['p99']:.1f} | {c['new']['n']} |",
            f"| answer, then commit on a thread (before issue 15) | {c['old']['p50']:.1f} | {c['old']['p99']:.1f} | "
            f"{c['old']['n']} |",
            f"| ratio shipped / old | {c['ratio_p50']:.2f}x | {c['ratio_p99']:.2f}x | |",
        ]
    lines += [
        "", "One part's commit alone, same process, alternating rounds (ms):", "",
        "| commit | p50 | p99 |", "|---|---|---|",
        f"| synchronous=NORMAL (shipped): the WAL write, no fsync | {k['normal']['median_ms']:.3f} | "
        f"{k['normal']['p99_ms']:.3f} |",
        f"| synchronous=FULL (`storage.synchronous: full`): plus an fsync | {k['full']['median_ms']:.3f} | "
        f"{k['full']['p99_ms']:.3f} |",
        f"| the old hot-path cost: a queue put | {k['old_queue_put']['median_ms']:.4f} | "
        f"{k['old_queue_put']['p99_ms']:.4f} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--bare-worker":
        bare_worker(*sys.argv[2:])
    else:
        main()
