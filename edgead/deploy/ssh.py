"""A thin shell around the OpenSSH client (``ssh``, ``scp``): batch mode, identity, port, connect timeout and a
known-hosts policy. Commands are built by pure functions and run with :mod:`subprocess`.

Example:
    >>> t = parse_host("root@10.0.0.7:2222")
    >>> t.user, t.host, t.port
    ('root', '10.0.0.7', 2222)
"""
from __future__ import annotations

import logging
import shlex
import subprocess
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Sequence

from edgead.errors import DeployError

log = logging.getLogger(__name__)


class HostKeyPolicy(str, Enum):
    """What to do with the station's host key."""

    STRICT = "strict"  # the key must be in known_hosts already (production)
    ACCEPT_NEW = "accept-new"  # trust on first use, refuse a changed key
    OFF = "off"  # no checking at all (throwaway test hosts only)


HOST_KEY_OPTIONS = {
    HostKeyPolicy.STRICT: ["-o", "StrictHostKeyChecking=yes"],
    HostKeyPolicy.ACCEPT_NEW: ["-o", "StrictHostKeyChecking=accept-new"],
    HostKeyPolicy.OFF: ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"],
}


@dataclass(frozen=True)
class SshTarget:
    """One station reachable over SSH.

    Attributes:
        host: name or address.
        user: login user (None: ssh's default).
        port: TCP port.
        identity: private key file (None: ssh's default keys / agent).
        connect_timeout_s: ``ConnectTimeout``.
        host_key_policy: see :class:`HostKeyPolicy`.
        known_hosts: a known_hosts file to use instead of ``~/.ssh/known_hosts`` (None: the default).
    """

    host: str
    user: str | None = None
    port: int = 22
    identity: str | None = None
    connect_timeout_s: int = 10
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT
    known_hosts: str | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        return f"{self.destination}:{self.port}"


def parse_host(spec: str, **kwargs) -> SshTarget:
    """Parse ``[user@]host[:port]``.

    Args:
        spec: e.g. ``"root@station-3:2222"``.
        **kwargs: other :class:`SshTarget` fields.

    Returns:
        The target.

    Raises:
        DeployError: on an empty host or a bad port.
    """
    user, _, hostport = spec.rpartition("@")
    host, sep, port = hostport.partition(":")
    if not host:
        raise DeployError(f"--host {spec!r}: no host name", hint="use user@host or user@host:port")
    try:
        port_n = int(port) if sep else kwargs.pop("port", 22)
    except ValueError as exc:
        raise DeployError(f"--host {spec!r}: port {port!r} is not a number") from exc
    kwargs.pop("port", None)
    return SshTarget(host=host, user=user or None, port=port_n, **kwargs)


def host_key_options(policy: HostKeyPolicy, known_hosts: str | None) -> list[str]:
    """The ssh options of one station's host-key policy (pure). Fleets pass them per host, never globally."""
    opts = list(HOST_KEY_OPTIONS[HostKeyPolicy(policy)])
    if known_hosts and HostKeyPolicy(policy) is not HostKeyPolicy.OFF:
        opts += ["-o", f"UserKnownHostsFile={known_hosts}"]
    return opts


def common_options(target: SshTarget) -> list[str]:
    """Options shared by ssh and scp (batch mode: never prompt; no connection sharing)."""
    opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={target.connect_timeout_s}", "-o", "ControlMaster=no",
            "-o", "ControlPath=none", "-o", "LogLevel=ERROR"]
    if target.identity:
        opts += ["-i", str(target.identity), "-o", "IdentitiesOnly=yes"]
    return opts + host_key_options(target.host_key_policy, target.known_hosts)


def ssh_argv(target: SshTarget, remote_argv: Sequence[str]) -> list[str]:
    """``ssh ... DEST -- 'quoted remote command'`` (each remote argument quoted for the remote shell)."""
    command = " ".join(shlex.quote(str(a)) for a in remote_argv)
    return ["ssh", "-p", str(target.port), *common_options(target), target.destination, "--", command]


def scp_argv(target: SshTarget, local: str | Path, remote_dir: str) -> list[str]:
    """``scp -r -p LOCAL DEST:REMOTE_DIR/`` (``-P`` is scp's port flag)."""
    return ["scp", "-q", "-r", "-p", "-P", str(target.port), *common_options(target), str(local),
            f"{target.destination}:{remote_dir.rstrip('/')}/"]


def run_remote(target: SshTarget, remote_argv: Sequence[str], *, timeout_s: float = 1800,
               check: bool = True, on_stderr_line: Callable[[str], None] | None = None
               ) -> subprocess.CompletedProcess:
    """Run a command on the station.

    Args:
        target: the station.
        remote_argv: the command, one argument per item.
        timeout_s: give up after this long.
        check: raise on a non-zero exit.
        on_stderr_line: called with each line of the command's stderr as it arrives (the station's step lines,
            for progress); the lines are in the returned ``stderr`` as well.

    Returns:
        The completed process (text stdout/stderr).

    Raises:
        DeployError: when ssh cannot connect (exit 255), times out, or (``check``) the command fails.
    """
    argv = ssh_argv(target, remote_argv)
    log.debug("ssh: %s", " ".join(argv))
    try:
        if on_stderr_line is None:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        else:
            proc = _run_streaming(argv, timeout_s, on_stderr_line)
    except subprocess.TimeoutExpired as exc:
        raise DeployError(f"station {target}: {remote_argv[0]} did not finish within {timeout_s:g} s") from exc
    if proc.returncode == 255:
        raise DeployError(f"station {target}: ssh failed: {proc.stderr.strip()[-500:]}",
                          hint="check --host, --identity, the station's sshd and its host key")
    if check and proc.returncode != 0:
        raise DeployError(f"station {target}: {' '.join(map(str, remote_argv[:3]))} exited {proc.returncode}: "
                          f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc


def _run_streaming(argv: list[str], timeout_s: float, on_line: Callable[[str], None]) -> subprocess.CompletedProcess:
    """``subprocess.run`` with stderr handed to ``on_line`` line by line (stdout is read by a thread meanwhile)."""
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, bufsize=1) as proc:
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
        reader.start()
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        err: list[str] = []
        try:
            for line in proc.stderr:
                err.append(line)
                on_line(line.rstrip("\n"))
            proc.wait()
            reader.join()
        finally:
            timed_out = not timer.is_alive() and proc.returncode is not None and proc.returncode < 0
            timer.cancel()
    if timed_out:
        raise subprocess.TimeoutExpired(argv, timeout_s)
    return subprocess.CompletedProcess(argv, proc.returncode, "".join(out), "".join(err))


def copy_dir(target: SshTarget, local: str | Path, remote_dir: str, *, timeout_s: float = 1800) -> None:
    """Copy a local directory into ``remote_dir`` (which must exist) with scp.

    Raises:
        DeployError: when the copy fails.
    """
    argv = scp_argv(target, local, remote_dir)
    log.debug("scp: %s", " ".join(argv))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise DeployError(f"station {target}: copying {local} took longer than {timeout_s:g} s") from exc
    if proc.returncode != 0:
        raise DeployError(f"station {target}: scp of {local} failed: {proc.stderr.strip()[-500:]}",
                          hint="check the connection and free disk space on the station")
