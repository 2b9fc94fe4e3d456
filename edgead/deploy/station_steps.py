"""The station side of ``edgead deploy``: install, switch, health, rollback, status, supervise.

Shipped in every release as ``tools/station_steps.py`` (with ``manifest.py``, ``health.py``, ``service.py``) and
run by the station's plain ``python3`` (stdlib only, Python >= 3.10) over SSH or by ansible. Progress goes to
stderr, one JSON result line to stdout; the exit code is 0 on success, :data:`EXIT_FAILED` when the deploy failed
(and was rolled back when there was something to roll back to), :data:`EXIT_USAGE` for bad arguments.

Layout under ``PREFIX``::

    releases/.incoming/NAME/   copied here first, verified, then renamed to releases/NAME/
    releases/NAME/             manifest.json, edgead-*.whl, bundle/, station.yaml, selftest/, tools/, venv/
    current -> releases/NAME   switched atomically (symlink to a temp name + rename)
    run/                       direct supervisor: pid, notify socket, state.json, logs
    history.jsonl              one line per deploy / rollback

After a successful deploy, releases beyond ``--keep-releases`` (default 3) are deleted, oldest first; the live
release and its rollback target are always kept.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

if __package__:
    from edgead.deploy import health, manifest, service
else:  # run from a release's tools/ folder on the station (also under `python -I`, which drops the script dir)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import health
    import manifest
    import service

EXIT_FAILED = 7  # the same number as edgead.errors.ExitStatus.DEPLOY
EXIT_USAGE = 2
BACKENDS_WITH_ENGINE = ("tensorrt",)
ENGINE = "engine/model.engine"  # built on the station; the release's station.yaml names it as model.engine
SAMPLES = "samples.json"  # in the release's selftest/: the known-good and known-defective samples
SELFTEST_RESULT = "SELFTEST.json"  # written into the release by the self-test step (station-made, not hashed)
DEPS = ("index", "wheelhouse", "seed")
KEEP_RELEASES = 3


class StepError(Exception):
    """A station step failed; ``step`` names it."""

    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step


def say(message: str) -> None:
    """One progress line on stderr (the host shows it with -v)."""
    print(f"[station] {message}", file=sys.stderr, flush=True)


def _run(step: str, argv: list, timeout_s: float = 600, **kwargs) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout_s, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise StepError(step, f"{argv[0]} did not finish within {timeout_s:g} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-800:]
        raise StepError(step, f"{' '.join(str(a) for a in argv[:4])} ... exited {proc.returncode}: {tail}")
    return proc


# ---------------------------------------------------------------- pure helpers


def release_names(prefix: Path) -> list[str]:
    """Release folder names under ``PREFIX/releases``, oldest first (names are UTC timestamps)."""
    root = prefix / "releases"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() \
        else []


def pick_rollback(names: list[str], current: str | None, failed: set[str]) -> str | None:
    """The release to roll back to: the newest healthy one older than ``current`` (pure).

    Args:
        names: release names, any order.
        current: the live release, or None.
        failed: releases marked FAILED.

    Returns:
        A release name, or None when there is none.
    """
    older = [n for n in sorted(names) if n not in failed and (current is None or n < current)]
    return older[-1] if older else None


def releases_to_prune(names: list[str], current: str | None, failed: set[str], keep: int) -> list[str]:
    """Releases to delete after a deploy: all but the ``keep`` newest healthy ones, ``current`` and its rollback
    target (pure).

    Failed releases are kept only while they are among the ``keep`` newest, so that their FAILED note can be read.

    Args:
        names: release names, any order.
        current: the live release, or None.
        failed: releases marked FAILED.
        keep: how many releases to keep at least (``>= 1``; the live one counts).

    Returns:
        Release names to delete, oldest first.
    """
    ordered = sorted(names)
    protected = set(ordered[-keep:]) | {current, pick_rollback(ordered, current, failed)}
    healthy = [n for n in ordered if n not in failed]
    protected |= set(healthy[-keep:])
    return [n for n in ordered if n not in protected]


def prune(prefix: Path, keep: int) -> list[str]:
    """Delete old releases under ``PREFIX/releases`` (see :func:`releases_to_prune`); returns the deleted names."""
    names = release_names(prefix)
    doomed = releases_to_prune(names, current_release(prefix), failed_releases(prefix), keep)
    for name in doomed:
        shutil.rmtree(prefix / "releases" / name, ignore_errors=True)
    if doomed:
        say(f"prune: removed {len(doomed)} old release(s), kept {len(names) - len(doomed)}")
    return doomed


def current_release(prefix: Path) -> str | None:
    """The release ``PREFIX/current`` points at, or None."""
    link = prefix / "current"
    return Path(os.readlink(link)).name if link.is_symlink() else None


def switch_current(prefix: Path, name: str) -> None:
    """Point ``PREFIX/current`` at ``releases/NAME`` atomically: a symlink to a temp name, then ``rename(2)``."""
    tmp = prefix / f".current.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(f"releases/{name}", tmp)
    os.replace(tmp, prefix / "current")


def failed_releases(prefix: Path) -> set[str]:
    return {n for n in release_names(prefix) if (prefix / "releases" / n / "FAILED").exists()}


def _history(prefix: Path, **event) -> None:
    event = {"utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **event}
    with open(prefix / "history.jsonl", "a") as f:
        f.write(json.dumps(event, sort_keys=True) + "\n")


@contextmanager
def _lock(prefix: Path):
    """One deploy/rollback at a time per prefix."""
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".deploy.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise StepError("lock", f"another deploy is running on {prefix}") from exc
        yield


# ---------------------------------------------------------------- steps


def verify(prefix: Path, name: str) -> tuple[Path, dict]:
    """Verify ``releases/.incoming/NAME`` against its manifest and move it to ``releases/NAME``."""
    incoming = prefix / "releases" / ".incoming" / name
    try:
        mf = manifest.verify_release(incoming)
    except manifest.ManifestMismatch as exc:
        shutil.rmtree(incoming, ignore_errors=True)
        raise StepError("verify", str(exc)) from exc
    final = prefix / "releases" / name
    if final.exists():
        raise StepError("verify", f"release {final} exists already")
    os.replace(incoming, final)
    say(f"verify: {len(mf['files'])} files match the manifest; release {name}")
    return final, mf


def install_venv(release: Path, mf: dict, python: str, deps: str, seed: str | None) -> None:
    """Create ``release/venv`` and install the wheel with the station extras (never ``train``).

    Args:
        release: the release folder.
        mf: its manifest.
        python: the interpreter the venv is made from.
        deps: ``index`` (pip's index), ``wheelhouse`` (the release's wheelhouse/, no index) or ``seed`` (a
            directory of pre-installed dependencies on the station, linked with a ``.pth``; the wheel is installed
            with ``--no-deps`` and ``pip check`` proves the seed is complete).
        seed: the seed directory for ``deps == "seed"``.
    """
    venv = release / "venv"
    engine_target = engine_file(release, mf) is not None
    # TensorRT targets see the system site-packages: on Jetson TensorRT's Python binding comes from apt
    # (python3-libnvinfer), not pip. The venv's own packages still come first.
    _run("venv", [python, "-m", "venv", *(["--system-site-packages"] if engine_target else []), venv])
    vpy = venv / "bin" / "python"
    wheel = release / mf["wheel"]
    extras = mf.get("extras") or []
    spec = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    pip = [vpy, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]
    if deps == "seed":
        if not seed or not Path(seed).is_dir():
            raise StepError("venv", f"--venv-seed {seed!r} is not a directory on the station")
        purelib = _run("venv", [vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout
        Path(purelib.strip(), "edgead-seed.pth").write_text(str(Path(seed).resolve()) + "\n")
        _run("venv", pip + ["--no-index", "--no-deps", wheel])
        _run("venv", [vpy, "-m", "pip", "check", "--disable-pip-version-check"])
    elif deps == "wheelhouse":
        _run("venv", pip + ["--no-index", "--find-links", release / "wheelhouse", spec])
    else:
        _run("venv", pip + [spec])
    probe = "import importlib.util as u, sys; sys.exit(1 if u.find_spec('torch') else 0)"
    if subprocess.run([str(vpy), "-c", probe]).returncode != 0:
        where = " (from the system site-packages, which TensorRT targets see)" if engine_target else ""
        raise StepError("venv", f"torch is importable in the station venv{where}: the station must not get the "
                                "train extra" + ("; uninstall torch from the station's system python" if where else ""))
    say(f"venv: installed {wheel.name} ({deps}{', extras ' + ','.join(extras) if extras else ''})")


def engine_file(release: Path, mf: dict) -> Path | None:
    """Where the release's engine is built (its target runs TensorRT), or None (no engine for this target)."""
    target = mf.get("target") or {}
    return release / target.get("engine", ENGINE) if target.get("backend") in BACKENDS_WITH_ENGINE else None


def build_engine(release: Path, mf: dict) -> None:
    """Build the TensorRT engine on the station when the target needs one; otherwise log why not."""
    target = mf.get("target") or {}
    engine = engine_file(release, mf)
    if engine is None:
        say(f"engine: skipped, target {target.get('name')!r} runs {target.get('backend')!r} (no engine to build)")
        return
    edgead = release / "venv" / "bin" / "edgead"
    engine.parent.mkdir(parents=True, exist_ok=True)
    _run("engine", [edgead, "build-engine", "--bundle", release / "bundle", "--target", target["name"],
                    "--out", engine], timeout_s=3600)
    say(f"engine: built for {target['name']} ({engine.relative_to(release)})")


def selftest(release: Path, mf: dict) -> dict:
    """Judge the release's known-good and known-defective samples with its own venv, config, bundle, reference and
    engine (``edgead selftest``, the daemon's path), before anything is switched. The result is kept in
    ``SELFTEST.json`` (shown by ``status``).

    Raises:
        StepError: a good sample was not accepted or a defective one not rejected (naming them), or the station
            could not load the release (untrusted bundle, wrong reference, engine).
    """
    samples = release / "selftest" / SAMPLES
    argv = [release / "venv" / "bin" / "edgead", "selftest", release / mf.get("config", "station.yaml"),
            "--samples", samples, "--json"]
    try:
        proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise StepError("selftest", "edgead selftest did not finish within 600 s") from exc
    result = health.last_json(proc.stdout)
    if result is None:
        tail = (proc.stderr or proc.stdout).strip()[-800:]
        (release / SELFTEST_RESULT).write_text(json.dumps({"passed": False, "error": tail}) + "\n")
        raise StepError("selftest", f"the release could not run its self-test: {tail}")
    (release / SELFTEST_RESULT).write_text(json.dumps(result, sort_keys=True) + "\n")
    if proc.returncode != 0 or not result.get("passed"):
        raise StepError("selftest", "; ".join(result.get("failures") or []) or f"exit {proc.returncode}")
    say(f"selftest: {result['good_accepted']} known-good accepted, {result['defective_rejected']} known-defective "
        f"rejected ({result.get('trust', '')})")
    return result


def go_live(prefix: Path, release: Path, mf: dict, svc, timeout_s: float) -> None:
    """Restart the service on ``current`` and check that it reports READY in time."""
    svc.restart()
    try:
        state = health.wait_ready(svc.state, timeout_s)
    except health.HealthError as exc:
        raise StepError("health", str(exc)) from exc
    say(f"health: READY ({state.detail})")


def deploy(args) -> dict:
    """The whole station-side transaction; see the module docstring."""
    prefix = Path(args.prefix).resolve()
    with _lock(prefix):
        release, mf = verify(prefix, args.release)
        svc = service.make_service(args.service, prefix, **_service_kwargs(args))
        previous = current_release(prefix)
        switched = False
        try:
            install_venv(release, mf, args.python, args.deps, args.venv_seed)
            build_engine(release, mf)
            row = selftest(release, mf)  # before the switch: a release that fails it never goes live
            say(f"service: {svc.install(release, gpu=engine_file(release, mf) is not None)}")
            switch_current(prefix, release.name)
            switched = True
            say(f"switch: current -> releases/{release.name} (was {previous})")
            go_live(prefix, release, mf, svc, args.health_timeout_s)
        except (StepError, RuntimeError, OSError) as exc:
            step = exc.step if isinstance(exc, StepError) else "install"
            (release / "FAILED").write_text(f"{exc}\n")
            back = _roll_back_after_failure(prefix, svc, previous, switched, args.health_timeout_s)
            _history(prefix, event="deploy", release=release.name, ok=False, step=step, error=str(exc),
                     rolled_back_to=previous if switched else None)
            return {"ok": False, "release": release.name, "step": step, "error": str(exc), **back}
        pruned = prune(prefix, args.keep_releases)
        _history(prefix, event="deploy", release=release.name, ok=True, previous=previous, pruned=pruned)
        return {"ok": True, "release": release.name, "previous": previous, "model_hash": mf["model_hash"],
                "selftest": row, "pruned": pruned}


def _roll_back_after_failure(prefix: Path, svc, previous: str | None, switched: bool, timeout_s: float) -> dict:
    if not switched:
        return {"rolled_back_to": None, "note": "nothing was switched; the live release is unchanged"}
    if previous is None:
        svc.stop()
        (prefix / "current").unlink(missing_ok=True)
        return {"rolled_back_to": None, "note": "no previous release: the service is stopped"}
    switch_current(prefix, previous)
    say(f"rollback: current -> releases/{previous}")
    svc.restart()
    try:
        health.wait_ready(svc.state, timeout_s)
        return {"rolled_back_to": previous, "note": f"release {previous} is live again"}
    except health.HealthError as exc:
        return {"rolled_back_to": previous, "note": f"release {previous} restored but not healthy: {exc}"}


def rollback(args) -> dict:
    """Switch back to the newest healthy release older than ``current`` and check its health."""
    prefix = Path(args.prefix).resolve()
    with _lock(prefix):
        current = current_release(prefix)
        target = pick_rollback(release_names(prefix), current, failed_releases(prefix))
        if target is None:
            raise StepError("rollback", f"no healthy release older than {current!r} under {prefix}/releases")
        svc = service.make_service(args.service, prefix, **_service_kwargs(args))
        release = prefix / "releases" / target
        mf = manifest.read_manifest(release)
        try:
            selftest(release, mf)  # the older release proves itself again before it goes back live
            say(f"service: {svc.install(release, gpu=engine_file(release, mf) is not None)}")
        except (StepError, RuntimeError, OSError) as exc:
            _history(prefix, event="rollback", release=target, ok=False, error=str(exc))
            return {"ok": False, "release": target, "previous": current,
                    "step": exc.step if isinstance(exc, StepError) else "install", "error": str(exc),
                    "note": f"nothing was switched; {current} is still live"}
        switch_current(prefix, target)
        say(f"rollback: current -> releases/{target} (was {current})")
        try:
            go_live(prefix, release, mf, svc, args.health_timeout_s)
        except StepError as exc:
            _history(prefix, event="rollback", release=target, ok=False, error=str(exc))
            return {"ok": False, "release": target, "previous": current, "step": exc.step, "error": str(exc)}
        if current is not None:
            (prefix / "releases" / current / "FAILED").write_text("rolled back by edgead deploy --rollback\n")
        _history(prefix, event="rollback", release=target, ok=True, previous=current)
        return {"ok": True, "release": target, "previous": current}


def parts_inspected(database: str | None) -> int | str:
    """``SELECT COUNT(*) FROM parts`` in the records database (read-only), or ``"unknown"``."""
    if not database or not Path(database).is_file():
        return "unknown"
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM parts").fetchone()[0])
    except sqlite3.Error:
        return "unknown"


def status(args) -> dict:
    """Release, model hash, service state and uptime, parts inspected, releases on disk."""
    prefix = Path(args.prefix).resolve()
    current = current_release(prefix)
    out = {"ok": True, "prefix": str(prefix), "current": current,
           "releases": [{"name": n, "failed": n in failed_releases(prefix)} for n in release_names(prefix)]}
    if current is None:
        return dict(out, service="not deployed", parts_inspected="unknown")
    mf = manifest.read_manifest(prefix / "releases" / current)
    state = service.make_service(args.service, prefix, **_service_kwargs(args)).state()
    uptime = None if state.since_epoch_s is None else round(time.time() - state.since_epoch_s, 1)
    return dict(out, model_hash=mf["model_hash"], edgead_version=mf["edgead_version"], created_utc=mf["created_utc"],
                signed_by=mf.get("signed_by"), service=state.phase.value, service_detail=state.detail,
                uptime_s=uptime, parts_inspected=parts_inspected(mf.get("database")),
                selftest=read_selftest(prefix / "releases" / current), last_deploy=last_deploy(prefix))


def read_selftest(release: Path) -> dict | None:
    """The self-test result kept in a release (``SELFTEST.json``), or None."""
    try:
        return json.loads((release / SELFTEST_RESULT).read_text())
    except (OSError, ValueError):
        return None


def last_deploy(prefix: Path) -> dict | None:
    """The newest deploy event of ``history.jsonl`` with its release's self-test (a failed one names the samples)."""
    try:
        lines = (prefix / "history.jsonl").read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "deploy":
            test = read_selftest(prefix / "releases" / str(event.get("release")))
            return {**event, "selftest_passed": None if test is None else test.get("passed")}
    return None


def stop(args) -> dict:
    """Stop the service (tests and decommissioning)."""
    service.make_service(args.service, Path(args.prefix).resolve(), **_service_kwargs(args)).stop()
    return {"ok": True}


def _service_kwargs(args) -> dict:
    return {"unit": args.unit} if args.service == service.ServiceKind.SYSTEMD.value else {}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="station_steps.py", description="edgead deploy, station side")
    p.add_argument("step", choices=["deploy", "rollback", "status", "stop", "supervise"])
    p.add_argument("--prefix", required=True)
    p.add_argument("--release", help="deploy: the name under releases/.incoming/")
    p.add_argument("--service", default="systemd", choices=[k.value for k in service.ServiceKind])
    p.add_argument("--unit", default="edgead.service")
    p.add_argument("--python", default=sys.executable, help="interpreter for the release venv")
    p.add_argument("--deps", default="index", choices=DEPS)
    p.add_argument("--venv-seed", default=None)
    p.add_argument("--health-timeout-s", type=float, default=120.0)
    p.add_argument("--keep-releases", type=int, default=KEEP_RELEASES,
                   help="releases kept on disk after a successful deploy (the live one and its rollback target "
                        "are always kept)")
    return p


STEPS = {"deploy": deploy, "rollback": rollback, "status": status, "stop": stop}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.step == "supervise":
        return service.supervise(args.prefix)
    if args.keep_releases < 1:
        print(json.dumps({"ok": False, "step": "usage", "error": "--keep-releases must be at least 1"}))
        return EXIT_USAGE
    if args.step == "deploy" and not args.release:
        print(json.dumps({"ok": False, "step": "usage", "error": "deploy needs --release NAME"}))
        return EXIT_USAGE
    try:
        result = STEPS[args.step](args)
    except StepError as exc:
        result = {"ok": False, "step": exc.step, "error": str(exc)}
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0 if result.get("ok") else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
