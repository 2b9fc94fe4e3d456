"""A virtual PLC for the demo and tests: a serial pty pair (socat, or ``os.openpty``) and an ASCII-protocol peer.

The peer plays the line's PLC: it sends ``T<id>\\r\\n`` triggers and reads the station's ``OK <id>`` /
``NG <id>`` / ``NR <id>`` / ``FLT <id>`` answers, checking that every answer carries the id of its trigger.
A trigger without an answer within the inspection window counts as a reject (what a real PLC does).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ANSWERS = {"OK": "accept", "NG": "reject", "NR": "no-read", "FLT": "fault"}


class PtyPair:
    """Two connected serial ports: ``station`` (a path for pyserial) and ``plc`` (a path, or an fd)."""

    def __init__(self, workdir: str | os.PathLike | None = None):
        self._proc = None
        self._fds: list[int] = []
        self._tmp = Path(tempfile.mkdtemp(prefix="edgead-pty-", dir=workdir))
        if shutil.which("socat"):
            self.station, self.plc = str(self._tmp / "station"), str(self._tmp / "plc")
            self._proc = subprocess.Popen(
                ["socat", f"pty,raw,echo=0,link={self.station}", f"pty,raw,echo=0,link={self.plc}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 5
            while not (os.path.exists(self.station) and os.path.exists(self.plc)):
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    raise RuntimeError("socat did not create the pty pair")
                time.sleep(0.02)
            self.kind = "socat pty pair"
        else:
            import tty

            master, slave = os.openpty()
            tty.setraw(master)
            tty.setraw(slave)
            self._fds = [master, slave]
            self.station, self.plc = os.ttyname(slave), master
            self.kind = "os.openpty pair"

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "PtyPair":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class PeerLog:
    """What the virtual PLC saw: per trigger id, the answer and the round trip."""

    sent: list = field(default_factory=list)
    answers: dict = field(default_factory=dict)
    round_trip_ms: dict = field(default_factory=dict)
    unanswered: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)
    garbage: list = field(default_factory=list)


class AsciiPlc(threading.Thread):
    """Sends ``n`` triggers, one after each answer (or after ``window_ms`` without one)."""

    def __init__(self, port: str | int, n: int, window_ms: int = 2000, start_id: int = 1):
        super().__init__(name="virtual-plc", daemon=True)
        self.port, self.n, self.window_ms, self.start_id = port, n, window_ms, start_id
        self.log = PeerLog()
        self.stop = threading.Event()
        self.on_done = None  # called when every trigger was sent and answered (or timed out)

    def run(self) -> None:
        import serial

        ser = serial.Serial(self.port, 19200, timeout=0.01) if isinstance(self.port, str) else None
        read = (lambda: ser.read(256)) if ser else (lambda: _read_fd(self.port))
        write = (lambda b: ser.write(b)) if ser else (lambda b: os.write(self.port, b))
        buf = b""
        try:
            for part_id in range(self.start_id, self.start_id + self.n):
                if self.stop.is_set():
                    break
                t0 = time.monotonic()
                write(f"T{part_id}\r\n".encode())
                self.log.sent.append(part_id)
                answered = False
                while not answered and (time.monotonic() - t0) * 1e3 < self.window_ms and not self.stop.is_set():
                    buf += read()
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        answered |= self._answer(line.strip().decode("ascii", "replace"), part_id, t0)
                if not answered:
                    self.log.unanswered.append(part_id)
        finally:
            if ser:
                ser.close()
            if self.on_done is not None:
                self.on_done()

    def _answer(self, line: str, expected: int, t0: float) -> bool:
        code, _, ident = line.partition(" ")
        if code not in ANSWERS or not ident.isdigit():
            self.log.garbage.append(line)
            return False
        if int(ident) != expected:
            self.log.mismatched.append((expected, line))
            return False
        self.log.answers[expected] = ANSWERS[code]
        self.log.round_trip_ms[expected] = (time.monotonic() - t0) * 1e3
        return True


def _read_fd(fd: int) -> bytes:
    import select

    ready, _, _ = select.select([fd], [], [], 0.01)
    return os.read(fd, 256) if ready else b""


def run_with_plc(cfg, plc_port: str | int, n_triggers: int, *, on_part=None, on_ready=None,
                 window_ms: int = 5000):
    """Run the daemon until a virtual ASCII PLC on ``plc_port`` has sent ``n_triggers`` and had its answers.

    The PLC starts only once the station is READY (a trigger sent earlier would be flushed when the port opens),
    and the station stops when the PLC is done.

    Args:
        cfg: the station config (its ``plc.url`` is the other end of ``plc_port``).
        plc_port: the PLC's end of the pty pair (path or fd).
        n_triggers: triggers to send.
        on_part: passed to the :class:`~edgead.daemon.runner.Runner`.
        on_ready: called after READY, before the first trigger.
        window_ms: the PLC's inspection window per trigger.

    Returns:
        ``(RunSummary, PeerLog)``.
    """
    from edgead.daemon.runner import Runner

    plc = AsciiPlc(plc_port, n_triggers, window_ms=window_ms)

    def ready():
        if on_ready is not None:
            on_ready()
        plc.start()

    runner = Runner(cfg, on_part=on_part, on_ready=ready)
    plc.on_done = runner.stop.set
    try:
        summary = runner.run()
    finally:
        plc.stop.set()
        if plc.is_alive():
            plc.join(timeout=10)
    return summary, plc.log
