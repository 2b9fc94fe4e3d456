"""The daemon runs under the system-call filter of the shipped unit: the ``SystemCallFilter=`` lines of
systemd/edgead.service, expanded by systemd's own ``systemd-analyze syscall-filter``, loaded with libseccomp
(Debian python3-seccomp) in front of ``edgead run``: camera, alignment, ONNX Runtime, PLC link, SQLite records."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgead.records import RecordStore

pytestmark = pytest.mark.timeout(300)
UNIT = Path(__file__).resolve().parents[3] / "systemd" / "edgead.service"
SYSTEM_PYTHON = "/usr/bin/python3"
WRAPPER = """
import errno, json, os, sys
import seccomp
allowed = json.load(open(sys.argv[1]))
f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))   # SystemCallErrorNumber=EPERM
for name in allowed:
    try:
        f.add_rule(seccomp.ALLOW, name)
    except (RuntimeError, ValueError):  # not a system call of this architecture
        pass
f.load()
os.execv(sys.argv[2], sys.argv[2:])
"""


def _groups() -> dict[str, list[str]]:
    text = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True).stdout
    groups, current = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def _expand(name: str, groups: dict) -> set[str]:
    if not name.startswith("@"):
        return {name}
    return set().union(*(_expand(n, groups) for n in groups[name]))


def _unit_filter() -> set[str]:
    """The allowed system calls of the unit's SystemCallFilter= lines (an allow-list, then ~ deny-lists)."""
    groups = _groups()
    allowed: set[str] = set()
    for value in re.findall(r"^SystemCallFilter=(.*)$", UNIT.read_text(), re.MULTILINE):
        names = value.split()
        if value.startswith("~"):
            allowed -= set().union(*(_expand(n.lstrip("~"), groups) for n in names))
        else:
            allowed |= set().union(*(_expand(n, groups) for n in names))
    return allowed


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    if subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True).returncode != 0:
        pytest.skip("libseccomp's Python binding is not installed (Debian package python3-seccomp)")
    allowed = _unit_filter()
    assert "ioctl" in allowed and "mount" not in allowed and "setuid" not in allowed and "chroot" not in allowed
    root = tmp_path_factory.mktemp("sandbox")
    (root / "allowed.json").write_text(json.dumps(sorted(allowed)))
    (root / "wrap.py").write_text(WRAPPER)
    return lambda *argv: [SYSTEM_PYTHON, str(root / "wrap.py"), str(root / "allowed.json"), *map(str, argv)]


def test_the_filter_is_in_force(sandbox):
    proc = subprocess.run(sandbox(sys.executable, "-c", "import os; os.chroot('/')"), capture_output=True, text=True)
    assert proc.returncode != 0 and "PermissionError" in proc.stderr


def test_the_daemon_runs_under_the_units_syscall_filter(sandbox, small_station, padim_bundle, bundle_key, tmp_path):
    cfg = {"camera": {"url": f"folder://{small_station.captures}?fps=0&pattern=*.png"},
           "reference": str(small_station.reference), "model": {"bundle": str(padim_bundle.bundle.root)},
           "plc": {"url": "loop://", "protocol": "discrete"}, "security": bundle_key.security,
           "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "images"),
                       "save_images": "all"},
           "observe": {"metrics_listen": "127.0.0.1:0", "log_format": "text"}}
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    edgead = Path(sys.executable).parent / "edgead"
    proc = subprocess.run(sandbox(edgead, "run", path, "--max-parts", "8"), capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "8 parts in" in proc.stderr
    with RecordStore(tmp_path / "records.sqlite") as store:
        rows = list(store.query())
    assert len(rows) == 8 and all(r.infer_ms is not None for r in rows)
    assert len(list((tmp_path / "images").rglob("*.png"))) >= 8  # the image archive wrote too
