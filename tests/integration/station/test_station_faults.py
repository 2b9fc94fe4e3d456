"""The station under faults, with its real peers: an ASCII PLC on a socat pty pair, a folder camera whose files
vanish or turn unreadable, a PLC port that vanishes with a part in flight, a paced noise line, a record store that
fills up, and a station whose every part faults (/healthz, the watchdog, exit code 9)."""
from __future__ import annotations

import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import serial
import yaml

from edgead.daemon.config import load_station
from edgead.daemon.notify import Notifier
from edgead.daemon.runner import Runner
from edgead.daemon.station import Station
from edgead.demo.plc_peer import PtyPair
from edgead.errors import ExitStatus, FaultLimitError, PlcError, RecordError

pytestmark = pytest.mark.timeout(300)


class StepPlc:
    """The PLC's end of the pty pair: a trigger, then its answer, one at a time."""

    def __init__(self, port: str):
        self.ser = serial.Serial(port, 19200, timeout=0.05)
        self.buf = b""
        self.answers: dict[int, str] = {}

    def send(self, part_id: int) -> None:
        self.ser.write(f"T{part_id}\r\n".encode())

    def answer(self, part_id: int, timeout_s: float = 60) -> str | None:
        """The answer code (OK, NG, NR, FLT) for ``part_id``, or None when none came in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                code, _, ident = line.strip().decode("ascii", "replace").partition(" ")
                if ident.isdigit():
                    self.answers[int(ident)] = code
            if part_id in self.answers:
                return self.answers[part_id]
            try:
                self.buf += self.ser.read(256)
            except serial.SerialException:
                return None
        return None

    def ask(self, part_id: int, timeout_s: float = 60) -> str | None:
        self.send(part_id)
        return self.answer(part_id, timeout_s)

    def close(self) -> None:
        self.ser.close()


def step_until_a_part(station: Station):
    """``station.step()`` until it inspects a part (under load a trigger can take longer than one poll)."""
    while (outcome := station.step()) is None:
        pass
    return outcome


def station_yaml(tmp_path: Path, station, bundle, camera_dir: Path, plc_url: str, **sections) -> Path:
    from edgead.bundle.signing import read_signature

    cfg = {
        "security": {"trusted_keys": [read_signature(bundle.root).public_key.to_line()]},  # the tests' signing key
        "camera": {"url": f"folder://{camera_dir}?fps=0&loop=1&sort=name"},
        "reference": str(station.reference),
        "model": {"bundle": str(bundle.root), "warmup_runs": 1},
        "plc": {"url": plc_url, "protocol": "ascii"},
        "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "images")},
        "observe": {"metrics_listen": None},
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class RunnerThread:
    """`Runner.run` on a thread (the daemon's loop without its signal handlers); ``error`` is what stopped it."""

    def __init__(self, cfg, notifier: Notifier | None = None):
        self.ready = threading.Event()
        self.runner = Runner(cfg, notifier=notifier or Notifier(env={}), on_ready=self.ready.set)
        self.error: BaseException | None = None
        self.summary = None
        self.thread = threading.Thread(target=self._run, name="station-under-test")
        self.thread.start()
        if not self.ready.wait(120):
            raise AssertionError(f"the station did not become ready: {self.error}")

    def _run(self) -> None:
        try:
            self.summary = self.runner.run()
        except BaseException as exc:  # noqa: BLE001 -- the test inspects it
            self.error = exc
            self.ready.set()

    def stop(self, timeout_s: float = 60) -> None:
        self.runner.stop.set()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive()


def rows(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall()[0][0] == "ok"
        return [dict(r) for r in conn.execute("SELECT * FROM parts ORDER BY id")]
    finally:
        conn.close()


def test_folder_files_vanish_or_turn_unreadable_then_return(small_station, padim_bundle, pty, tmp_path):
    """Faults answered with the fail-safe verdict and recorded naming the file; the daemon keeps running and gives
    model verdicts again once good files are back (the old replay crashed on a vanished file, and never got past
    an unreadable one)."""
    replay = tmp_path / "replay"
    replay.mkdir()
    good = {f"{i:06d}.png": (small_station.captures / f"{i:06d}.png").read_bytes() for i in range(3)}
    for name, data in good.items():
        (replay / name).write_bytes(data)
    cfg = load_station(station_yaml(tmp_path, small_station, padim_bundle.bundle, replay, pty.station))
    daemon = RunnerThread(cfg)
    plc = StepPlc(pty.plc)
    try:
        assert plc.ask(1) in ("OK", "NG")
        for name in good:  # they vanish under the daemon (000001 and 000002 are still listed)
            (replay / name).unlink()
        faults = [plc.ask(i) for i in (2, 3, 4)]  # two vanished files, then a pass that finds no file
        ok, _ = cv2.imencode(".png", np.full((128, 160), 40000, np.uint16))
        (replay / "000000.png").write_bytes(ok and _.tobytes())  # 16-bit
        (replay / "000001.png").write_bytes(b"")  # empty
        (replay / "000002.png").write_bytes(os.urandom(3000))  # noise
        faults += [plc.ask(i) for i in (5, 6, 7)]
        for name, data in good.items():
            (replay / name).write_bytes(data)  # good files return
        later = [plc.ask(i) for i in (8, 9, 10, 11)]
        assert daemon.thread.is_alive() and daemon.error is None
    finally:
        plc.close()
        daemon.stop()
    assert faults == ["NG"] * 6  # the fail-safe verdict (reject), with each part's own id
    assert all(a in ("OK", "NG") for a in later)
    recorded = {r["part_id"]: r for r in rows(cfg.storage.database)}
    assert set(recorded) == {str(i) for i in range(1, 12)}
    errors = [recorded[str(i)]["error"] for i in range(2, 8)]
    assert all(recorded[str(i)]["verdict"] == "fault" and recorded[str(i)]["plc_answer"] == "reject"
               for i in range(2, 8))
    assert "000001.png: unreadable" in errors[0] and "000002.png: unreadable" in errors[1]
    assert "no file matches" in errors[2]
    assert "uint16" in errors[3] and "empty file" in errors[4] and "corrupt or not an image" in errors[5]
    assert [recorded[str(i)]["verdict"] for i in range(9, 12)] != ["fault"] * 3  # recovered (part 8 ends the pass)
    assert all(recorded[str(i)]["error"] is None for i in (9, 10, 11))


def test_a_plc_port_vanishing_with_a_part_in_flight_leaves_that_part_on_record(small_station, padim_bundle,
                                                                               tmp_path, monkeypatch):
    """The old order answered first and recorded later: the part in flight when the port vanished had no row."""
    from edgead.camera.folder import FolderCamera

    if not shutil.which("socat"):
        pytest.skip("socat not installed")
    # The camera tells the test when the second part is in flight (its frame is being taken) and waits until the
    # cable is pulled: the moment is certain however loaded the machine is.
    in_flight, pulled, grabs = threading.Event(), threading.Event(), []
    real_grab = FolderCamera._grab

    def grab(self, timeout_ms):
        grabs.append(1)
        if len(grabs) == 2:
            in_flight.set()
            pulled.wait(60)
        return real_grab(self, timeout_ms)

    monkeypatch.setattr(FolderCamera, "_grab", grab)
    pair = PtyPair(tmp_path)
    path = station_yaml(tmp_path, small_station, padim_bundle.bundle, small_station.captures, pair.station)
    cfg = load_station(path)
    daemon = RunnerThread(cfg)
    plc = StepPlc(pair.plc)
    try:
        assert plc.ask(1) in ("OK", "NG")
        plc.send(2)
        assert in_flight.wait(60)  # the station has taken trigger 2
        pair._proc.kill()  # the cable is pulled
        pair._proc.wait()
        pulled.set()
        daemon.thread.join(60)
    finally:
        pulled.set()
        plc.close()
        pair.close()
    assert isinstance(daemon.error, PlcError) and "write failed" in daemon.error.message
    assert daemon.error.exit_status == ExitStatus.DEVICE
    recorded = {r["part_id"]: r for r in rows(cfg.storage.database)}
    assert set(recorded) == {"1", "2"}
    assert recorded["2"]["verdict"] in ("accept", "reject") and recorded["2"]["plc_answer"] is None
    assert "PLC answer failed" in recorded["2"]["error"]
    assert recorded["1"]["plc_answer"] in ("accept", "reject") and recorded["1"]["signal_ms"] is not None


def test_a_paced_10000_byte_noise_line_does_not_stop_the_daemon(small_station, padim_bundle, pty, tmp_path):
    """Noise without a line end at serial speed used to count as dozens of garbage lines and end the daemon."""
    cfg = load_station(station_yaml(tmp_path, small_station, padim_bundle.bundle, small_station.captures,
                                    pty.station))
    daemon = RunnerThread(cfg)
    plc = StepPlc(pty.plc)
    noise = bytes(random.Random(15).choice([b for b in range(256) if b != 0x0A]) for _ in range(10_000))
    try:
        assert plc.ask(1) in ("OK", "NG")
        for i in range(0, len(noise), 50):  # paced: 50 bytes every 5 ms
            plc.ser.write(noise[i:i + 50])
            time.sleep(0.005)
        plc.ser.write(b"\r\n")
        answers = [plc.ask(i) for i in (2, 3, 4)]
        assert daemon.thread.is_alive() and daemon.error is None
    finally:
        plc.close()
        daemon.stop()
    assert all(a in ("OK", "NG") for a in answers)
    assert {r["part_id"] for r in rows(cfg.storage.database)} == {"1", "2", "3", "4"}


@pytest.mark.parametrize("policy", ["stop", "degrade"])
def test_a_record_store_that_refuses_writes(small_station, padim_bundle, pty, tmp_path, policy, caplog):
    """SQLITE_FULL (the error of a full disk; here through PRAGMA max_page_count) on a part's commit: the PLC gets
    the fail-safe answer, never the decided one. `stop` ends the loop with RecordError (exit code 8) and the record
    goes to the log; `degrade` answers fail-safe until the store accepts writes, then writes the kept records."""
    path = station_yaml(tmp_path, small_station, padim_bundle.bundle, small_station.captures, pty.station,
                        storage={"on_record_failure": policy, "save_images": "none"})
    plc = StepPlc(pty.plc)
    with Station(load_station(path)) as station:
        def part(i: int) -> str:
            plc.send(i)
            step_until_a_part(station)
            return plc.answer(i)

        assert [part(i) for i in (1, 2)] != [None, None]
        conn = station.recorder.store._conn  # noqa: SLF001
        conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
        answers, i = [], 3
        if policy == "stop":
            with pytest.raises(RecordError, match="disk is full") as err:
                for i in range(3, 60):  # the first pages still have room for a few rows
                    plc.send(i)
                    step_until_a_part(station)
            assert err.value.exit_status == ExitStatus.RECORDS
            assert plc.answer(i) == "NG"  # the refused part was answered fail-safe
            assert f'"part_id": "{i}"' in caplog.text  # and its record is in the log
        else:
            while not station.recorder.degraded and i < 60:
                answers.append(part(i))
                i += 1
            kept_first = i - 1
            answers += [part(j) for j in range(i, i + 3)]
            assert station.recorder.backlog == 4 and answers[-4:] == ["NG"] * 4 and station.faulting
            conn.execute("PRAGMA max_page_count=1073741823")  # space again
            part(i + 3)
            assert station.recorder.backlog == 0 and not station.recorder.degraded
    plc.close()
    recorded = {r["part_id"]: r for r in rows(tmp_path / "records.sqlite")}
    if policy == "degrade":
        kept = [recorded[str(j)] for j in range(kept_first, kept_first + 4)]
        assert all(r["verdict"] == "fault" and "record store" in r["error"] and r["plc_answer"] == "reject"
                   for r in kept)
        assert set(recorded) == {str(j) for j in range(1, kept_first + 5)}


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs (a disk that fills up) needs root")
def test_a_disk_that_fills_up_stops_the_daemon_with_exit_code_8(small_station, padim_bundle, pty, tmp_path):
    """A real full filesystem (a 192 KiB tmpfs) under the record database."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        path = station_yaml(tmp_path, small_station, padim_bundle.bundle, small_station.captures, pty.station,
                            storage={"database": str(disk / "records.sqlite"), "save_images": "none"})
        (disk / "filler").write_bytes(b"\0" * 60_000)
        daemon = RunnerThread(load_station(path))
        plc = StepPlc(pty.plc)
        answered = {}
        try:
            for i in range(1, 2000):
                answered[i] = plc.ask(i, timeout_s=20)
                if daemon.error is not None or answered[i] is None:
                    break
            daemon.thread.join(60)
        finally:
            plc.close()
        assert isinstance(daemon.error, RecordError) and daemon.error.exit_status == ExitStatus.RECORDS
        assert "disk is full" in daemon.error.message
        last = max(i for i, a in answered.items() if a is not None)
        assert answered[last] == "NG"  # the refused part got the fail-safe answer
        (disk / "filler").unlink()  # room for SQLite to open and check the database
        recorded = {r["part_id"] for r in rows(disk / "records.sqlite")}
        assert {str(i) for i in range(1, last)} <= recorded  # every part answered before it is on record
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_station_whose_every_part_faults_is_not_ready_and_stops_with_exit_code_9(small_station, padim_bundle,
                                                                                     tmp_path):
    """Unreadable files only (replay looping): /healthz 503 with the cause, no watchdog ping once every part
    faults (systemd restarts it), and after runtime.max_consecutive_faults the loop ends with FaultLimitError."""
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    port = _free_port()
    path = station_yaml(tmp_path, small_station, padim_bundle.bundle, bad, "loop://",
                        camera={"url": f"folder://{bad}?fps=20&loop=1"},
                        plc={"protocol": "discrete", "discrete": {"pulse_ms": 1, "gap_ms": 1}},
                        observe={"metrics_listen": f"127.0.0.1:{port}", "status_interval_s": 0.1},
                        runtime={"degraded_after_faults": 3, "max_consecutive_faults": 60})
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    messages: list[str] = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                messages.append(sock.recv(4096).decode())
            except socket.timeout:
                continue

    listener = threading.Thread(target=listen)
    listener.start()
    health = []
    try:
        notifier = Notifier({"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "200000"})
        daemon = RunnerThread(load_station(path), notifier=notifier)
        while daemon.thread.is_alive():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    health.append((resp.status, json.loads(resp.read())))
            except urllib.error.HTTPError as exc:
                health.append((exc.code, json.loads(exc.read())))
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.05)
        daemon.thread.join()
    finally:
        stop.set()
        listener.join()
        sock.close()
    assert isinstance(daemon.error, FaultLimitError) and daemon.error.exit_status == ExitStatus.FAULTS
    assert "60 parts in a row" in daemon.error.message and "corrupt or not an image" in daemon.error.message
    degraded = [b for code, b in health if code == 503 and b["status"] == "degraded"]
    assert degraded and "faults in a row" in degraded[-1]["problem"]
    first = next(i for i, m in enumerate(messages) if "DEGRADED" in m)
    assert any("WATCHDOG=1" in m for m in messages[:first])  # pinged while parts were fine-ish (the first ones)
    assert not any("WATCHDOG=1" in m for m in messages[first:])  # and never once every part faulted
    recorded = rows(tmp_path / "records.sqlite")
    assert len(recorded) == 60 and all(r["verdict"] == "fault" and r["plc_answer"] == "reject" for r in recorded)


def test_an_unexpected_error_in_any_stage_is_that_parts_fault(small_station, padim_bundle, pty, tmp_path,
                                                               monkeypatch):
    """An exception of any type in capture, align, infer, decide or signal (an engine error included, which used
    to end the daemon) is answered fail-safe and recorded with its stage; the next part is inspected as usual."""
    from edgead.daemon import station as station_mod
    from edgead.errors import EngineError

    path = station_yaml(tmp_path, small_station, padim_bundle.bundle, small_station.captures, pty.station,
                        storage={"save_images": "none"})
    plc = StepPlc(pty.plc)
    results = {}
    with Station(load_station(path)) as st:
        def once(obj, name, exc):
            real = getattr(obj, name)

            def boom(*a, **kw):
                monkeypatch.setattr(obj, name, real)
                raise exc
            monkeypatch.setattr(obj, name, boom)

        faults = {"capture": (st.camera, "grab", OSError("boom in capture")),
                  "align": (st.model, "place", ZeroDivisionError("boom in align")),
                  "infer": (st.model, "infer_rois", EngineError("boom in infer")),
                  "decide": (station_mod, "decide", KeyError("boom in decide")),
                  "signal": (st.plc, "send_result", UnicodeEncodeError("ascii", "é", 0, 1, "boom in signal"))}
        part_id = 1
        for stage, (obj, name, exc) in faults.items():
            once(obj, name, exc)
            plc.send(part_id)
            outcome = step_until_a_part(st)
            results[stage] = (plc.answer(part_id), outcome)
            plc.send(part_id + 1)
            assert step_until_a_part(st).error is None and plc.answer(part_id + 1) in ("OK", "NG")  # the next one
            part_id += 2
    plc.close()
    recorded = {r["part_id"]: r for r in rows(tmp_path / "records.sqlite")}
    for i, (stage, (answer, outcome)) in enumerate(results.items()):
        row = recorded[str(2 * i + 1)]
        assert answer == "NG" and row["plc_answer"] == "reject", stage
        if stage == "signal":  # decided, then the answer failed: the fail-safe answer went out instead
            assert "signal: internal error: UnicodeEncodeError" in row["error"] and "sent fail-safe" in row["error"]
        else:
            assert row["verdict"] == "fault" and row["error"].startswith(stage), (stage, row["error"])
    assert "internal error: OSError: boom in capture" in recorded["1"]["error"]
    assert recorded["5"]["error"] == "infer: boom in infer"  # a typed error keeps its message, no "internal"
