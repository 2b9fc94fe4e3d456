"""Station throughput and latency: trigger-in to result-out over many parts, on the synthetic station, CPU engine.

Usage:
    python benchmarks/station.py [--parts 10000] [--warmup 1000] [--compare 4000] [--model padim]
                                 [--height 128 --width 160] [--links 300] [--links-only] [--no-docs]

A virtual PLC on a serial pty pair sends ASCII triggers (each after the previous answer), the daemon replays
misaligned captures from a ``folder://`` camera (looping), aligns, infers with ONNX Runtime, decides, commits the
part's row to SQLite and answers. Three measurements:

1. **The station** (``--warmup`` + ``--parts`` parts): ``edgead run`` as its own process, as under systemd, the
   PLC peer in this one. Latency p50/p99/max as the PLC sees it and as the daemon recorded it (the ``parts``
   table), parts/min, each stage's share, the bare ``engine.infer`` p50 as the baseline, and the daemon's **RSS
   growth** (``/proc/PID/status``) from the end of the warm-up to the end (the goal: at most 1 % over 10 000
   parts). Nothing of the peer's bookkeeping is in that figure.
2. **Record before answer against the old order** (``--compare`` parts in alternating blocks of 250 in one run):
   the shipped order (commit the row, then answer; images to the image writer) against the old one (answer, then
   hand the row and the image to a writer thread that archives the image and adds the row), as PLC round trip
   p50/p99 and their ratio.
3. **The commit itself** in the same process, in alternating rounds: ``synchronous=NORMAL`` (shipped),
   ``synchronous=FULL`` (``storage.synchronous: full``) and the old hot-path cost (a queue put), p50/p99.
4. **The shadow model** (``--shadow`` parts, issue 20; ``--only-shadow`` runs this alone): one daemon with a
   shadow bundle (a second bundle of the same model, so the same cost), switched on and off in alternating blocks
   of 250 parts; PLC round trip p50/p99 with the shadow on against off, their ratio, and how many parts the shadow
   scored or skipped (busy or over ``shadow.cpu_budget_pct``).
5. **A row per plant link** (``--links`` parts each; ``--links-only`` runs only this): ASCII, Modbus RTU, Modbus
   TCP, and OPC UA with the MQTT north on, each the PLC (or client) round trip against the bare engine measured
   in this process (:mod:`links`); the ``station-links`` section of docs/benchmarks.md.

Results: benchmarks/results/station.json (station-shadow.json) and the ``station`` (``station-shadow``) sections of
docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, save_json, stats_ms, update_section  # noqa: E402
from links import link_rows, measure_links  # noqa: E402

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


def run_daemon(config: Path, plc_port: str, total: int, marks: tuple, tmp: Path) -> dict:
    """``edgead run CONFIG`` as a process; this process is its PLC (a trigger after each answer, bookkeeping in
    preallocated arrays) and samples the daemon's RSS after the answers numbered in ``marks``."""
    import serial

    sock_path = tmp / f"notify-{config.stem}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(1.0)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path))
    log_path = tmp / f"{config.stem}.log"
    with open(log_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "edgead", "run", str(config)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if "READY=1" in sock.recv(4096).decode():
                    break
            except socket.timeout:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the daemon did not start (rc {proc.poll()}): {log_path.read_text()[-2000:]}")
        trips = np.full(total, np.nan)
        rss, unanswered, mismatched, buf = {}, 0, 0, b""
        with serial.Serial(plc_port, 19200, timeout=0.005) as ser:
            t_start = time.monotonic()
            for part_id in range(1, total + 1):
                t0 = time.monotonic()
                ser.write(b"T%d\r\n" % part_id)
                answered = False
                while not answered and time.monotonic() - t0 < 5.0:
                    buf += ser.read(64)
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        ident = line.strip().partition(b" ")[2]
                        if ident == b"%d" % part_id:
                            trips[part_id - 1] = (time.monotonic() - t0) * 1e3
                            answered = True
                        else:
                            mismatched += 1
                unanswered += not answered
                if part_id in marks:
                    rss[part_id] = proc_rss_mb(proc.pid)
            seconds = time.monotonic() - t_start
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    with sqlite3.connect(config.with_suffix(".sqlite")) as conn:
        records = conn.execute("SELECT COUNT(*) FROM parts").fetchone()[0]
    return {"round_trip_ms": trips, "rss_mb": rss, "unanswered": unanswered, "mismatched": mismatched,
            "parts_per_min": 60 * total / seconds, "records": records, "rc": proc.returncode}


def daemon_rows(db: Path, warmup: int) -> dict:
    """Per-stage latencies (ms) and verdicts of the parts after the warm-up, as the daemon recorded them."""
    cols = ("capture", "align", "infer", "decide", "record", "signal", "total")
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT {', '.join(c + '_ms' for c in cols)}, verdict FROM parts WHERE seq >= ? "
                            "ORDER BY id", (warmup,)).fetchall()
    out = {c: np.array([np.nan if r[i] is None else r[i] for r in rows], np.float64) for i, c in enumerate(cols)}
    out["verdict"] = np.array([r[-1] for r in rows])
    return out


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=10000, help="parts measured after the warm-up")
    ap.add_argument("--warmup", type=int, default=1000, help="parts before the RSS baseline")
    ap.add_argument("--compare", type=int, default=4000, help="parts for the order comparison (0: skip)")
    ap.add_argument("--model", default="padim")
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--loaded", default=None,
                    help="say how the machine was loaded during the run (goes into the docs), e.g. 'shared'")
    ap.add_argument("--links", type=int, default=300, help="parts per plant link (0: skip the link rows)")
    ap.add_argument("--links-only", action="store_true", help="only the per-link rows (measurement 5)")
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    ap.add_argument("--shadow", type=int, default=4000, help="parts for the shadow on/off comparison (0: skip)")
    ap.add_argument("--shadow-budget", type=float, default=25.0, help="shadow.cpu_budget_pct of that run")
    ap.add_argument("--only-shadow", action="store_true", help="run only the shadow comparison")
    args = ap.parse_args()

    from edgead.align.dataset import align_dataset
    from edgead.daemon import runner as runner_mod
    from edgead.daemon.config import load_station
    from edgead.data import load_image
    from edgead.data.synthetic import StationSpec, generate_captures, generate_dataset
    from edgead.demo.plc_peer import PtyPair, run_with_plc
    from edgead.infer import open_backend
    from edgead.train.pipeline import TrainConfig, train

    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = StationSpec(height=args.height, width=args.width, max_shift_px=min(args.height, args.width) / 16)
        raw = generate_dataset(tmp / "raw", spec, n_train=40, n_test_good=4, n_test_defect=4, aligned=False)
        align_dataset(raw, tmp / "aligned", raw / "reference.png")
        bundle = train(tmp / "aligned", tmp / "bundle", TrainConfig(model=args.model, image_size=max(args.height,
                       args.width), evaluate=False), progress=False).bundle
        captures = generate_captures(tmp / "captures", spec, n=100, defect_rate=0.3, seed=7)
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

        bare_st = stats_ms(bare_infer())
        if args.only_shadow:
            shadow = shadow_comparison(args, tmp, bundle, captures, raw / "reference.png", load)
            report_shadow(args, shadow, bundle.model_type, bare_st)
            return
        commits = commit_costs(tmp)

        def config(pty, name: str) -> Path:
            path = tmp / f"{name}.yaml"
            path.write_text(yaml.safe_dump({**config_data(captures, raw, bundle, tmp, name),
                                            "plc": {"url": pty.station, "protocol": "ascii"}}))
            return path

        if args.links_only:
            return links_main(args, tmp, config_data(captures, raw, bundle, tmp, "links"), bare_infer, load)

        # 1. the station as its own process: latency and RSS growth
        total = args.warmup + args.parts
        with PtyPair(tmp) as pty:
            run = run_daemon(config(pty, "station"), pty.plc, total,
                             (args.warmup, args.warmup + args.parts // 2, total), tmp)
        load.append(os.getloadavg()[0])
        rows = daemon_rows(tmp / "station.sqlite", args.warmup)
        measured = rows["total"]
        rt = run["round_trip_ms"][args.warmup:]
        rss = run["rss_mb"]

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

    stages = {k: float(np.nanmean(v)) for k, v in rows.items() if k not in ("total", "verdict")}
    share = {k: v / max(sum(stages.values()), 1e-9) for k, v in stages.items()}
    rss_start, rss_end = rss.get(args.warmup), rss.get(total)
    res = {
        "machine": machine(), "load_average_1min": load, "model": bundle.model_type, "input": [args.height, args.width],
        "parts": args.parts, "warmup": args.warmup, "parts_per_min": run["parts_per_min"],
        "verdicts": {v: int(np.sum(rows["verdict"] == v)) for v in ("accept", "reject", "no-read", "fault")},
        "daemon_ms": {"p50": pct(measured, 50), "p99": pct(measured, 99), "max": float(np.nanmax(measured))},
        "plc_round_trip_ms": {"p50": pct(rt, 50), "p99": pct(rt, 99), "max": float(np.nanmax(rt))},
        "record_ms": {"p50": pct(rows["record"], 50), "p99": pct(rows["record"], 99)},
        "bare_infer_ms": bare_st, "ratio_p50_vs_bare_infer": pct(measured, 50) / bare_st["median_ms"],
        "ratio_p99_vs_bare_infer": pct(measured, 99) / bare_st["p99_ms"],
        "stage_mean_ms": stages, "stage_share": share,
        "rss_mb": {str(k): v for k, v in sorted(rss.items())},
        "rss_growth_pct": 100 * (rss_end - rss_start) / rss_start if rss_start and rss_end else None,
        "lost": run["unanswered"], "mismatched": run["mismatched"], "records_written": run["records"],
        "order_comparison": compare, "commit_ms": commits,
    }
    if not args.no_docs:
        save_json(ROOT / "benchmarks" / "results" / "station.json", res)
    print(yaml.safe_dump(res, sort_keys=False))
    if not args.no_docs:
        update_section("station", docs_section(args, res, bundle.model_type, bare_st, stages, share))


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
                "camera": {"url": f"folder://{captures}?fps=0&loop=1&pattern=*.png"},
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


def config_data(captures: Path, raw: Path, bundle, tmp: Path, name: str) -> dict:
    """The station config every link's run shares (each sets its own ``plc`` and database)."""
    return {"camera": {"url": f"folder://{captures}?fps=0&loop=1&pattern=*.png"},
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


def docs_section(args, res: dict, model: str, bare_st: dict, stages: dict, share: dict) -> str:
    d, r, c, k = res["daemon_ms"], res["plc_round_trip_ms"], res["order_comparison"], res["commit_ms"]
    loaded = args.loaded or f"load average {', '.join(f'{x:.1f}' for x in res['load_average_1min'])}"
    lines = [
        f"Produced by `python benchmarks/station.py --parts {args.parts} --warmup {args.warmup} --compare "
        f"{args.compare} --model {model} --height {args.height} --width {args.width}` on {machine()} ({loaded}): "
        "synthetic station, ONNX Runtime FP32 on the CPU, `edgead run` as its own process, an ASCII PLC peer (the "
        "script) on a socat pty pair, a trigger after each answer, every part's row committed to SQLite (WAL, "
        "synchronous=NORMAL) before its answer.", "",
        "| measure | p50 | p99 | max |", "|---|---|---|---|",
        f"| trigger-in to result-out, daemon clock (ms) | {d['p50']:.1f} | {d['p99']:.1f} | {d['max']:.1f} |",
        f"| trigger-to-answer round trip, PLC clock (ms) | {r['p50']:.1f} | {r['p99']:.1f} | {r['max']:.1f} |",
        f"| the row's commit before the answer (record stage, ms) | {res['record_ms']['p50']:.2f} | "
        f"{res['record_ms']['p99']:.2f} | |",
        f"| bare engine.infer, same process (ms) | {bare_st['median_ms']:.1f} | {bare_st['p99_ms']:.1f} | |", "",
        f"- {res['parts']} parts after {res['warmup']} of warm-up, {res['parts_per_min']:.0f} parts/min; "
        f"{res['lost']} lost, {res['mismatched']} mismatched ids; {res['records_written']} records written.",
        f"- End-to-end p50 is {res['ratio_p50_vs_bare_infer']:.2f}x the bare inference p50 "
        f"(p99: {res['ratio_p99_vs_bare_infer']:.2f}x).",
        "- Stage share: " + ", ".join(f"{s} {100 * v:.0f}% ({stages[s]:.2f} ms)" for s, v in share.items()),
        "- The daemon's RSS " + ", ".join(f"{v:.1f} MB after part {p}" for p, v in res["rss_mb"].items())
        + (f": **{res['rss_growth_pct']:+.2f} %** over the {res['parts']} parts after the warm-up (goal: at most "
           "1 %)." if res["rss_growth_pct"] is not None else "."),
    ]
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
    main()
