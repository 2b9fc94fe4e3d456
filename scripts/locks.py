"""The dependency locks (requirements/*.lock, written by ``make lock`` with uv) against setup.py.

Used by ``make lock`` (the station lock resolves the same on every station platform), ``make test-latest`` (what
differs from the lock) and tests/unit/test_dependency_locks.py (setup.py and the locks agree).

    python scripts/locks.py check       # setup.py vs both locks; exit 1 with one line per disagreement
    python scripts/locks.py station LOCK PYTHON PLATFORM...   # the station set resolves to LOCK's pins there too
    python scripts/locks.py drift LOCK  # installed versions that differ from LOCK
    python scripts/locks.py wheelhouse DIR [aarch64|x86_64]   # the station lock's wheels, for deploy --wheelhouse
"""
from __future__ import annotations

import re
import runpy
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from unittest import mock

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
SETUP_NOTE = "edgead (setup.py)"


@dataclass(frozen=True)
class InstallSet:
    """One lock: which extras it holds, and the interpreter and machine it was resolved for."""

    lock: Path
    extras: tuple[str, ...]
    python: str
    machine: str


@dataclass
class Pin:
    """One ``name==version`` line of a lock, with its hashes and who asked for it (``# via``)."""

    name: str
    version: Version
    marker: Marker | None = None
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def _make_var(text: str, name: str) -> str:
    m = re.search(rf"^{name}\s*[:?]?=\s*(.*)$", text, re.M)
    if not m:
        raise ValueError(f"Makefile: no {name} variable")
    return m.group(1).strip()


def install_sets(makefile: Path = ROOT / "Makefile") -> dict[str, InstallSet]:
    """The build-host and station sets, as the Makefile defines them for ``make venv`` and ``make lock``."""
    text = makefile.read_text()

    def one(lock: str, extras: str, python: str, platforms: str) -> InstallSet:
        return InstallSet(lock=ROOT / _make_var(text, lock),
                          extras=tuple(e for e in _make_var(text, extras).split(",") if e),
                          python=_make_var(text, python), machine=_make_var(text, platforms).split("-")[0])

    return {"build-host": one("LOCK", "EXTRAS", "LOCK_PYTHON", "LOCK_PLATFORM"),
            "station": one("STATION_LOCK", "STATION_EXTRAS", "STATION_PYTHON", "STATION_PLATFORMS")}


def read_lock(path: Path) -> dict[str, Pin]:
    """The pins of a lock written by ``uv pip compile --generate-hashes`` (annotations kept)."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        m = re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if m:
            name = canonicalize_name(m.group(1))
            current = Pin(name, Version(m.group(2)), Marker(m.group(3)) if m.group(3) else None)
            if name in pins:  # one pin per marker branch would need more than this parser; the locks avoid it
                raise ValueError(f"{path.name}: {name} pinned twice")
            pins[name] = current
            in_via = False
        elif current and stripped.startswith("--hash="):
            current.hashes.append(stripped.split("=", 1)[1].rstrip(" \\"))
        elif current and stripped.startswith("# via"):
            rest = stripped[len("# via"):].strip()
            in_via = not rest
            if rest:
                current.via.append(rest)
        elif current and in_via and stripped.startswith("#   "):
            current.via.append(stripped[4:].strip())
        elif not stripped.startswith("#"):
            in_via = False
    return pins


def setup_requirements(setup_py: Path = ROOT / "setup.py") -> tuple[list[Requirement], dict[str, list[Requirement]]]:
    """``install_requires`` and ``extras_require`` exactly as setup.py passes them to ``setup()``."""
    captured: dict = {}
    with mock.patch("setuptools.setup", lambda **kw: captured.update(kw)):
        runpy.run_path(str(setup_py), run_name="__main__")
    core = [Requirement(r) for r in captured.get("install_requires", [])]
    extras = {k: [Requirement(r) for r in v] for k, v in captured.get("extras_require", {}).items()}
    return core, extras


def applies(marker: Marker | None, iset: InstallSet, extra: str = "") -> bool:
    """Whether a requirement's or a pin's marker holds for the install set's Python and machine (Linux, CPython)."""
    env = {"python_version": iset.python, "python_full_version": iset.python + ".0", "platform_machine": iset.machine,
           "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "extra": extra}
    return marker is None or marker.evaluate(env)


def disagreements(iset: InstallSet, setup_py: Path = ROOT / "setup.py") -> list[str]:
    """What setup.py asks for that ``iset.lock`` does not pin (or pins outside the range), and the reverse."""
    if not iset.lock.is_file():
        return [f"{iset.lock.relative_to(ROOT)} does not exist: run `make lock`"]
    core, extras = setup_requirements(setup_py)
    unknown = [e for e in iset.extras if e not in extras]
    problems = [f"the Makefile's extra {e!r} is not in setup.py's extras_require" for e in unknown]
    wanted = [(r, "core") for r in core if applies(r.marker, iset)]
    wanted += [(r, e) for e in iset.extras if e in extras for r in extras[e] if applies(r.marker, iset, e)]
    pins = read_lock(iset.lock)
    lock = iset.lock.relative_to(ROOT)
    for req, where in wanted:
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"setup.py ({where}) asks for {req}, which {lock} does not pin: run `make lock`")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"setup.py ({where}) asks for {req}, but {lock} pins {pin.name}=={pin.version}: "
                            "run `make lock`")
    direct = {canonicalize_name(r.name) for r, _ in wanted}
    for pin in pins.values():
        if SETUP_NOTE in pin.via and pin.name not in direct:
            problems.append(f"{lock} pins {pin.name}=={pin.version} for setup.py, which no longer asks for it in "
                            f"{','.join(iset.extras)}: run `make lock`")
        if not pin.hashes:
            problems.append(f"{lock}: {pin.name} has no --hash (the lock must be written with --generate-hashes)")
    return problems


def check_station(lock: Path, python: str, platforms: list[str], extras: tuple[str, ...]) -> list[str]:
    """Resolve the station set for each other platform and compare with the lock's pins (one lock for all)."""
    uv = Path(sys.executable).with_name("uv")
    want = {n: p.version for n, p in read_lock(lock).items()}
    problems = []
    for platform in platforms:
        cmd = [str(uv), "pip", "compile", str(ROOT / "setup.py"), "--quiet", "--no-header", "--no-annotate",
               "--python-version", python, "--python-platform", platform]
        for e in extras:
            cmd += ["--extra", e]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        got = {canonicalize_name(m.group(1)): Version(m.group(2))
               for m in re.finditer(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", out, re.M)}
        for name in sorted(set(want) | set(got)):
            if want.get(name) != got.get(name):
                problems.append(f"{lock.name}: {name} is {want.get(name)} for the lock's platform but "
                                f"{got.get(name)} on {platform} (Python {python}); pin it in setup.py's station "
                                "extras or split the lock")
    return problems


def drift(lock: Path) -> list[str]:
    """Installed distributions whose version differs from the lock (for ``make test-latest``)."""
    pins = read_lock(lock)
    rows = []
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})  # not setuptools' vendored
    for dist in sorted(metadata.distributions(path=site), key=lambda d: canonicalize_name(d.metadata["Name"])):
        name = canonicalize_name(dist.metadata["Name"])
        pin = pins.get(name)
        if pin is not None and Version(dist.version) != pin.version:
            rows.append(f"{name}: lock {pin.version}, here {dist.version}")
    return rows


MANYLINUX = ("manylinux_2_35", "manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")
"""The wheel tags a JetPack 6 / Ubuntu 22.04 station (glibc 2.35) accepts, newest first."""


def download_wheels(iset: InstallSet, dest: Path) -> list[Pin]:
    """Download the wheel of every pin of ``iset`` that applies to its Python and machine, hash-checked.

    pip evaluates markers with the interpreter that runs it, not the target, so the pins that apply to the target
    are written out without markers first.

    Raises:
        subprocess.CalledProcessError: a pin has no wheel for the target, or a hash does not match.
    """
    pins = [p for p in read_lock(iset.lock).values() if applies(p.marker, iset)]
    dest.mkdir(parents=True, exist_ok=True)
    reqs = dest / ".pins.txt"
    reqs.write_text("".join(f"{p.name}=={p.version} " + " ".join(f"--hash={h}" for h in p.hashes) + "\n"
                            for p in pins))
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--require-hashes",
           "--no-deps", "--only-binary=:all:", "--python-version", iset.python, "--implementation", "cp",
           "-r", str(reqs), "-d", str(dest)]
    for tag in MANYLINUX:
        cmd += ["--platform", f"{tag}_{iset.machine}"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
    finally:
        reqs.unlink(missing_ok=True)
    return pins


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "check"
    if cmd == "check":
        problems = [p for iset in install_sets().values() for p in disagreements(iset)]
    elif cmd == "station":
        lock, python, platforms = Path(argv[1]), argv[2], argv[3:]
        problems = check_station(lock, python, platforms, install_sets()["station"].extras)
        if not problems:
            print(f"{lock.name}: the same pins on {', '.join(platforms) or 'the lock platform only'}")
    elif cmd == "wheelhouse":
        station = install_sets()["station"]
        iset = InstallSet(station.lock, station.extras, station.python, argv[2] if len(argv) > 2 else "aarch64")
        try:
            pins = download_wheels(iset, Path(argv[1]))
        except subprocess.CalledProcessError as exc:
            print(exc.stderr[-2000:], file=sys.stderr)
            return 1
        print(f"{len(pins)} wheels of {station.lock.name} for CPython {iset.python} on {iset.machine} in {argv[1]}")
        return 0
    elif cmd == "drift":
        rows = drift(Path(argv[1]))
        print(f"versions that differ from {argv[1]}: {len(rows)}")
        for row in rows:
            print("  " + row)
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
