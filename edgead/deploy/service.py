"""Service managers on the station: ``systemd`` (real stations) and ``direct`` (a supervisor process for hosts
without systemd as PID 1, such as containers and this project's test machines).

Both run ``PREFIX/current/venv/bin/edgead run PREFIX/current/station.yaml`` and report the same
:class:`~edgead.deploy.health.ServiceState`. The ``direct`` supervisor does what systemd does for ``Type=notify``:
it binds an ``AF_UNIX`` datagram socket, exports it as ``NOTIFY_SOCKET``, starts the daemon, records ``READY=1`` and
``STATUS=`` in ``PREFIX/run/state.json``, and restarts a daemon that exits non-zero (``Restart=on-failure``).

Stdlib only (runs on the station, Python >= 3.10).

Example:
    >>> svc = make_service(ServiceKind.DIRECT, "/opt/edgead")                # doctest: +SKIP
    >>> svc.restart(); svc.state().phase                                      # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from enum import Enum
from pathlib import Path

if __package__:
    from edgead.deploy.health import Phase, ServiceState
else:  # shipped in a release's tools/ and run by the station's plain python
    from health import Phase, ServiceState

RESTART_SEC = 2.0
STOP_TIMEOUT_S = 30.0


class ServiceKind(str, Enum):
    """How the station runs the daemon."""

    SYSTEMD = "systemd"
    DIRECT = "direct"


def daemon_argv(release: Path) -> list[str]:
    """The daemon command line of a release (the same as the systemd unit's ``ExecStart``)."""
    return [str(release / "venv" / "bin" / "edgead"), "run", str(release / "station.yaml")]


# ---------------------------------------------------------------- direct: a supervisor process


def run_dir(prefix: str | os.PathLike) -> Path:
    """``PREFIX/run``: the supervisor's pid file, notify socket, state file and logs."""
    return Path(prefix) / "run"


def apply_notify(state: dict, payload: bytes, now_s: float) -> dict:
    """Fold one sd_notify datagram into the supervisor state (pure).

    Args:
        state: the current state dict.
        payload: ``KEY=value`` lines.
        now_s: wall-clock time of reception.

    Returns:
        The updated state (a new dict).
    """
    new = dict(state)
    for line in payload.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        if key == "READY" and value == "1":
            new.update(phase=Phase.READY.value, ready_epoch_s=now_s)
        elif key == "STATUS":
            new["status_text"] = value
        elif key == "STOPPING" and value == "1":
            new["phase"] = Phase.STOPPED.value
        elif key == "WATCHDOG" and value == "1":
            new["watchdog_epoch_s"] = now_s
    return new


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def _tail(path: Path, n_lines: int = 3) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n_lines:])


def supervise(prefix: str | os.PathLike, restart_sec: float = RESTART_SEC) -> int:
    """Run the daemon of ``PREFIX/current`` under a notify socket until SIGTERM (the ``direct`` manager's process).

    Args:
        prefix: the install prefix.
        restart_sec: pause before restarting a daemon that exited non-zero.

    Returns:
        0 (stopped by a signal or a clean daemon exit).
    """
    run = run_dir(prefix)
    run.mkdir(parents=True, exist_ok=True)
    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    release = Path(os.path.realpath(Path(prefix) / "current"))
    sock_path = run / "notify.sock"
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.bind(str(sock_path))
    state_path, log_path = run / "state.json", run / "daemon.log"
    state = {"phase": Phase.STARTING.value, "supervisor_pid": os.getpid(), "release": release.name,
             "started_epoch_s": time.time(), "ready_epoch_s": None, "restarts": 0, "status_text": "",
             "last_exit_code": None, "log": str(log_path)}
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), PYTHONUNBUFFERED="1")

    def spawn() -> subprocess.Popen:
        with open(log_path, "ab") as log:
            return subprocess.Popen(daemon_argv(release), env=env, cwd=str(release), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT)

    child = spawn()
    state["daemon_pid"] = child.pid
    _write_json(state_path, state)
    (run / "supervisor.pid").write_text(f"{os.getpid()}\n")  # last: start() waits for it, state is written
    restart_at = None
    while not stop:
        ready, _, _ = select.select([sock], [], [], 0.5)
        new = state
        if ready:
            new = apply_notify(state, sock.recv(65536), time.time())
        if child is not None and child.poll() is not None:
            code = child.returncode
            detail = f"daemon exited with code {code}; log {log_path}: {_tail(log_path)}"
            new = dict(new, phase=(Phase.FAILED if code else Phase.STOPPED).value, last_exit_code=code,
                       ready_epoch_s=None, daemon_pid=None, detail=detail)
            child = None
            if code == 0:
                _write_json(state_path, new)
                break
            restart_at = time.monotonic() + restart_sec
        if child is None and restart_at is not None and time.monotonic() >= restart_at:
            child, restart_at = spawn(), None
            new = dict(new, phase=Phase.STARTING.value, restarts=new["restarts"] + 1, daemon_pid=child.pid)
        if new != state:
            state = new
            _write_json(state_path, state)
    if child is not None:
        _terminate(child)
    _write_json(state_path, dict(state, phase=Phase.STOPPED.value, daemon_pid=None, ready_epoch_s=None))
    sock.close()
    sock_path.unlink(missing_ok=True)
    (run / "supervisor.pid").unlink(missing_ok=True)
    return 0


def _terminate(child: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> None:
    child.terminate()  # SIGTERM: the daemon drains the part in flight
    try:
        child.wait(timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie (an orphan may wait for a PID 1 that never reaps)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _is_our_supervisor(pid: int, prefix: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"supervise" in argv and str(prefix).encode() in argv


class DirectService:
    """The ``direct`` manager: a detached supervisor process per prefix.

    Args:
        prefix: the install prefix.
        steps_script: the ``station_steps.py`` that runs ``supervise`` (default: the live release's).
        python: interpreter for the supervisor (default: this one).
    """

    kind = ServiceKind.DIRECT

    def __init__(self, prefix: str | os.PathLike, steps_script: str | None = None, python: str | None = None):
        self.prefix = Path(prefix)
        self.run = run_dir(prefix)
        self.steps_script = steps_script
        self.python = python or sys.executable

    def install(self, release: Path, gpu: bool = False) -> str:
        """Nothing to install for ``direct``; returns what was done."""
        return "direct: no unit to install"

    def start(self) -> None:
        """Start a detached supervisor (new session, no inherited stdio, so the SSH session can end) and wait until
        it has written its pid file.

        The supervisor code is the live release's ``tools/station_steps.py`` (resolved now, so a later switch does
        not change the running supervisor).

        Raises:
            RuntimeError: if the supervisor exits at once (its log is named).
        """
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / "state.json").unlink(missing_ok=True)
        (self.run / "supervisor.pid").unlink(missing_ok=True)
        script = self.steps_script or os.path.realpath(self.prefix / "current" / "tools" / "station_steps.py")
        with open(self.run / "supervisor.log", "ab") as log:
            proc = subprocess.Popen([self.python, script, "supervise", "--prefix", str(self.prefix)],
                                    start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, close_fds=True, cwd=str(self.prefix))
        deadline = time.monotonic() + 30
        while self.pid() is None:
            if proc.poll() is not None:
                raise RuntimeError(f"the direct supervisor exited with code {proc.returncode}: "
                                   f"{_tail(self.run / 'supervisor.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the direct supervisor wrote no pid file within 30 s ({self.run})")
            time.sleep(0.05)

    def pid(self) -> int | None:
        """The running supervisor's pid, or None."""
        try:
            pid = int((self.run / "supervisor.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and _is_our_supervisor(pid, self.prefix) else None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S + 10) -> None:
        """SIGTERM the supervisor (which stops the daemon) and wait for it; SIGKILL after ``timeout_s``."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

    def restart(self) -> None:
        """Stop, then start."""
        self.stop()
        self.start()

    def state(self) -> ServiceState:
        """Read ``PREFIX/run/state.json``."""
        try:
            raw = json.loads((self.run / "state.json").read_text())
        except (OSError, ValueError):
            running = self.pid() is not None
            return ServiceState(Phase.STARTING if running else Phase.STOPPED, "no supervisor state yet")
        phase = Phase(raw.get("phase", "stopped"))
        if phase is not Phase.STOPPED and self.pid() is None:
            phase, raw["detail"] = Phase.STOPPED, "the supervisor is not running"
        detail = raw.get("detail") or raw.get("status_text", "")
        return ServiceState(phase, detail, raw.get("ready_epoch_s"), int(raw.get("restarts", 0)), raw)


# ---------------------------------------------------------------- systemd


def dropin_text(prefix: str | os.PathLike, gpu: bool = False) -> str:
    """A drop-in that points the unit at this prefix's current release and its station config; for a GPU
    (TensorRT) release it also shows the daemon all of /proc (CUDA reads /proc/driver/nvidia, Jetson libraries
    /proc/device-tree), which the unit's ``ProcSubset=pid`` hides."""
    release = Path(prefix) / "current"
    text = ("# written by edgead deploy: the unit runs the current release with its own station config\n"
            "[Service]\nExecStart=\nExecStart=" + " ".join(daemon_argv(release)) + "\n")
    return text + ("# a TensorRT release: CUDA needs /proc/driver/nvidia (and Jetson /proc/device-tree)\n"
                   "ProcSubset=all\n" if gpu else "")


def parse_systemctl_show(text: str, restarts_before: int = 0, uptime_s: float | None = None) -> ServiceState:
    """Turn ``systemctl show -p ActiveState,SubState,StatusText,NRestarts,ExecMainStatus,
    ActiveEnterTimestampMonotonic`` output into a :class:`ServiceState` (pure).

    Args:
        text: the ``KEY=value`` lines.
        restarts_before: ``NRestarts`` when this start began (only later restarts count).
        uptime_s: ``CLOCK_MONOTONIC`` now, in seconds (for the READY time), or None.

    Returns:
        The state. ``Type=notify`` units are ``active/running`` only after ``READY=1``.
    """
    kv = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    active, sub = kv.get("ActiveState", ""), kv.get("SubState", "")
    restarts = max(0, int(kv.get("NRestarts", "0") or 0) - restarts_before)
    detail = f"{active}/{sub}, main exit status {kv.get('ExecMainStatus', '?')}: {kv.get('StatusText', '')}"
    since = None
    if active == "active" and sub == "running":
        phase = Phase.READY
        enter_us = int(kv.get("ActiveEnterTimestampMonotonic", "0") or 0)
        if uptime_s is not None and enter_us:
            since = time.time() - (uptime_s - enter_us / 1e6)
    elif active == "failed" or sub == "auto-restart":
        phase = Phase.FAILED
    elif active in ("activating", "reloading"):
        phase = Phase.STARTING
    else:
        phase = Phase.STOPPED
    return ServiceState(phase, detail, since, restarts, kv)


class SystemdService:
    """The ``systemd`` manager: installs the unit (+ a drop-in for this prefix) and drives ``systemctl``.

    Args:
        prefix: the install prefix.
        unit: the unit name.
        unit_dir: where units are installed.
    """

    kind = ServiceKind.SYSTEMD
    PROPS = "ActiveState,SubState,StatusText,NRestarts,ExecMainStatus,ActiveEnterTimestampMonotonic"

    def __init__(self, prefix: str | os.PathLike, unit: str = "edgead.service",
                 unit_dir: str = "/etc/systemd/system"):
        self.prefix, self.unit, self.unit_dir = Path(prefix), unit, Path(unit_dir)
        self._restarts_before = 0

    def _systemctl(self, *args: str) -> str:
        proc = subprocess.run(["systemctl", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"systemctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def install(self, release: Path, gpu: bool = False) -> str:
        """Copy the release's unit (if it ships one), write the drop-in (``gpu``: with ``ProcSubset=all``),
        ``daemon-reload``, ``enable``."""
        if shutil.which("systemctl") is None:
            raise RuntimeError("systemctl not found: this station has no systemd; deploy with --service direct")
        shipped = release / "systemd" / "edgead.service"
        if shipped.is_file():
            shutil.copyfile(shipped, self.unit_dir / self.unit)
        dropin = self.unit_dir / (self.unit + ".d")
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / "10-edgead-deploy.conf").write_text(dropin_text(self.prefix, gpu))
        self._systemctl("daemon-reload")
        self._systemctl("enable", self.unit)
        return f"systemd: installed {self.unit} with a drop-in for {self.prefix}"

    def restart(self) -> None:
        """``systemctl restart --no-block``: the health check polls for READY itself."""
        self._restarts_before = int(self._show().get("NRestarts", "0") or 0)
        self._systemctl("restart", "--no-block", self.unit)

    def stop(self) -> None:
        """``systemctl stop``."""
        self._systemctl("stop", self.unit)

    def _show(self) -> dict:
        text = self._systemctl("show", "-p", self.PROPS, self.unit)
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def state(self) -> ServiceState:
        """Read ``systemctl show``."""
        text = self._systemctl("show", "-p", self.PROPS, self.unit)
        return parse_systemctl_show(text, self._restarts_before, time.monotonic())  # systemd's CLOCK_MONOTONIC


SERVICES = {ServiceKind.SYSTEMD: SystemdService, ServiceKind.DIRECT: DirectService}


def make_service(kind: ServiceKind | str, prefix: str | os.PathLike, **kwargs):
    """The manager for ``kind`` (one table: :data:`SERVICES`).

    Args:
        kind: ``systemd`` or ``direct``.
        prefix: the install prefix.
        **kwargs: passed to the manager.

    Returns:
        A :class:`SystemdService` or :class:`DirectService`.
    """
    return SERVICES[ServiceKind(kind)](prefix, **kwargs)
