"""Deploy to one station over SSH: build the release, copy it, run the station-side transaction, report.

Also ``rollback`` and ``status``, which run the ``tools/station_steps.py`` of the live release.

Example:
    >>> target = parse_host("root@station-3", identity="~/.ssh/edgead")           # doctest: +SKIP
    >>> deploy("station.yaml", target, StationOptions(), ReleaseOptions())                      # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgead.deploy.release import Release, ReleaseOptions, build_release
from edgead.deploy.service import ServiceKind
from edgead.deploy.ssh import SshTarget, copy_dir, run_remote
from edgead.errors import DeployError
from edgead.progress import Progress, progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StationOptions:
    """How the station installs and runs a release.

    Attributes:
        prefix: install prefix on the station.
        python: the station interpreter that runs the tools and makes the venv (Python >= 3.10).
        service: ``systemd`` or ``direct``.
        unit: the systemd unit name.
        deps: ``index`` | ``wheelhouse`` | ``seed`` (see docs/deploy.md).
        venv_seed: directory of pre-installed dependencies on the station (``deps == "seed"``).
        health_timeout_s: how long to wait for READY.
        keep_releases: releases kept on the station after a successful deploy (the live one and its rollback
            target always are).
    """

    prefix: str = "/opt/edgead"
    python: str = "python3"
    service: ServiceKind = ServiceKind.SYSTEMD
    unit: str = "edgead.service"
    deps: str = "index"
    venv_seed: str | None = None
    health_timeout_s: float = 120.0
    keep_releases: int = 3

    def step_args(self) -> list[str]:
        """The station_steps.py options these settings map to."""
        args = ["--prefix", self.prefix, "--service", ServiceKind(self.service).value, "--unit", self.unit,
                "--python", self.python, "--deps", self.deps, "--health-timeout-s", f"{self.health_timeout_s:g}",
                "--keep-releases", str(self.keep_releases)]
        return args + (["--venv-seed", self.venv_seed] if self.venv_seed else [])


def parse_result(stdout: str, what: str) -> dict:
    """The JSON result line printed last by station_steps.py.

    Raises:
        DeployError: when there is none.
    """
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    raise DeployError(f"{what}: the station printed no result: {stdout.strip()[-500:]!r}")


def failure_message(result: dict) -> str:
    """One sentence for a failed station result: what failed, and what is live now."""
    msg = f"step {result.get('step')!r} failed: {result.get('error')}"
    return msg + (f"; {result['note']}" if result.get("note") else "")


STEPS = ("build", "copy", "verify", "venv", "engine", "service", "switch", "health", "selftest")
"""A deploy's steps, as its progress counts them: two on the build host, then the station's (each ends with a
``[station] STEP: ...`` line on the station tool's stderr)."""


def deploy(config: str | Path, target: SshTarget, station: StationOptions, release: ReleaseOptions, *,
           show_progress: bool = True) -> dict:
    """Build a release, copy it to ``PREFIX/releases/``, install, switch, check health; roll back on failure.

    Args:
        config: the station config.
        target: the station.
        station: see :class:`StationOptions`.
        release: see :class:`~edgead.deploy.release.ReleaseOptions`.
        show_progress: report each step as it ends (:mod:`edgead.progress`; ``--quiet`` turns it off).

    Returns:
        The station's result (``release``, ``previous``, ``model_hash``, ``selftest``: every sample's verdict).

    Raises:
        DeployError: when building, copying or any station step fails (the station rolled back when it could).
    """
    with progress(len(STEPS), f"deploy to {target}", enabled=show_progress, unit="step") as bar, \
            tempfile.TemporaryDirectory(prefix="edgead-release-") as tmp:
        rel = build_release(config, tmp, release)
        bar.update()
        bar.note(f"build: release {rel.name} ({len(rel.manifest['files'])} files)")
        return push_release(rel, target, station, bar=bar)


def push_release(rel: Release, target: SshTarget, station: StationOptions, *, bar: Progress | None = None) -> dict:
    """Copy a built release to a station and run the station-side deploy (``bar``: its steps' progress)."""
    incoming = f"{station.prefix}/releases/.incoming"
    run_remote(target, ["mkdir", "-p", incoming], timeout_s=60)
    log.info("copying release %s to %s:%s", rel.name, target, incoming)
    copy_dir(target, rel.root, incoming)
    if bar is not None:
        bar.update()
        bar.note(f"copy: {rel.name} -> {target}:{incoming}")

    def station_line(line: str) -> None:
        log.info("%s", line)
        step, _, message = line.removeprefix("[station] ").partition(": ")
        if bar is not None and line.startswith("[station] ") and message:
            if step in STEPS:
                bar.update()
            bar.note(f"{step}: {message}")

    proc = run_remote(target, [station.python, f"{incoming}/{rel.name}/tools/station_steps.py", "deploy",
                               "--release", rel.name, *station.step_args()], check=False,
                      on_stderr_line=station_line)
    result = parse_result(proc.stdout, f"deploy to {target}")
    if not result.get("ok"):
        raise DeployError(f"deploy of {rel.name} to {target}: {failure_message(result)}",
                          hint=f"station log: {station.prefix}/history.jsonl and {station.prefix}/run/")
    return result


def _live_tool(target: SshTarget, station: StationOptions, step: str) -> dict:
    tool = f"{station.prefix}/current/tools/station_steps.py"
    probe = run_remote(target, ["test", "-f", tool], check=False, timeout_s=60)
    if probe.returncode != 0:
        return {"ok": False, "step": step, "error": f"nothing deployed under {station.prefix} (no {tool})",
                "current": None}
    proc = run_remote(target, [station.python, tool, step, *station.step_args()], check=False)
    for line in proc.stderr.splitlines():
        log.info("%s", line)
    return parse_result(proc.stdout, f"{step} on {target}")


def rollback(target: SshTarget, station: StationOptions) -> dict:
    """Switch the station back to its newest healthy older release and check its health.

    Raises:
        DeployError: when there is nothing to roll back to or the older release is not healthy.
    """
    result = _live_tool(target, station, "rollback")
    if not result.get("ok"):
        raise DeployError(f"rollback on {target}: {failure_message(result)}")
    return result


def status(target: SshTarget, station: StationOptions) -> dict:
    """Release, model hash, service state, uptime and parts inspected of a station (never raises for
    "nothing deployed": ``current`` is None then)."""
    result = _live_tool(target, station, "status")
    if not result.get("ok") and result.get("current") is not None:
        raise DeployError(f"status on {target}: {failure_message(result)}")
    return result
