"""The systemd units: required and forbidden keys, `systemd-analyze verify` clean, exposure score at most 2.0."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
PLAIN, TEMPLATE = UNITS / "edgead.service", UNITS / "edgead@.service"

REQUIRED = {
    "Type": "notify",
    "NotifyAccess": "main",
    "WatchdogSec": "10",
    "Restart": "on-failure",
    "RestartSec": "2",
    "TimeoutStartSec": "300",
    "TimeoutStopSec": "30",
    "KillSignal": "SIGTERM",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "User": "edgead",
    "SupplementaryGroups": "dialout video render",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    "PrivateMounts": "yes",
    "SystemCallErrorNumber": "EPERM",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "IPAddressDeny": "any",
    "IPAddressAllow": "localhost link-local multicast 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16",
}
MULTI = {"SystemCallFilter": ["@system-service", "~@privileged"]}
MAX_EXPOSURE = 2.0
PER_UNIT = {
    PLAIN: {
        "ExecStart": "/opt/edgead/current/venv/bin/edgead run /etc/edgead/station.yaml",
        "StateDirectory": "edgead",
        "LogsDirectory": "edgead",
        "ReadWritePaths": "/var/lib/edgead /var/log/edgead",
        "WorkingDirectory": "/var/lib/edgead",
    },
    TEMPLATE: {
        "ExecStart": "/opt/edgead/current/venv/bin/edgead run /etc/edgead/%i.yaml",
        "StateDirectory": "edgead/%i",
        "LogsDirectory": "edgead/%i",
        "ReadWritePaths": "/var/lib/edgead/%i /var/log/edgead/%i",
        "WorkingDirectory": "/var/lib/edgead/%i",
    },
}
FORBIDDEN = ("PrivateDevices", "PrivateNetwork", "MemoryDenyWriteExecute", "DeviceAllow")


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}}; comments and blank lines skipped (no line continuations used)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None and "=" in line, f"{path.name}:{n}: not a key=value line: {raw!r}"
        assert not line.endswith("\\"), f"{path.name}:{n}: continuation lines are not expected"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize("unit", [PLAIN, TEMPLATE], ids=lambda p: p.name)
def test_required_and_forbidden_keys(unit):
    sections = parse_unit(unit)
    service = sections["Service"]
    for key, value in {**REQUIRED, **PER_UNIT[unit]}.items():
        assert service.get(key) == [value], f"{unit.name}: {key}={service.get(key)}, want {value!r}"
    for key, values in MULTI.items():
        assert service.get(key) == values, f"{unit.name}: {key}={service.get(key)}, want {values}"
    for key in FORBIDDEN:
        assert all(key not in sec for sec in sections.values()), f"{unit.name}: {key} must not be set"
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in sections["Unit"]["After"][0]


def _runnable_copy(unit: Path, dest_dir: Path, name: str) -> Path:
    """The unit with ExecStart's binary replaced by one that exists here (verify checks executables)."""
    true = shutil.which("true")
    kill = "/bin/kill" if Path("/bin/kill").exists() else shutil.which("kill")
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={true}", unit.read_text(), flags=re.M)
    text = text.replace("ExecReload=/bin/kill", f"ExecReload={kill}")
    copy = dest_dir / name
    copy.write_text(text)
    return copy


needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


@needs_analyze
@pytest.mark.parametrize("unit,name", [(PLAIN, "edgead.service"), (TEMPLATE, "edgead@line1.service")],
                         ids=["edgead.service", "edgead@.service"])
def test_systemd_analyze_verify_is_clean(tmp_path, unit, name):
    copy = _runnable_copy(unit, tmp_path, name)
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, timeout=60)
    # verify exits 0 on parse warnings (unknown key, bad value): stderr is the real verdict
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


@needs_analyze
@pytest.mark.parametrize("unit,name", [(PLAIN, "edgead.service"), (TEMPLATE, "edgead@line1.service")],
                         ids=["edgead.service", "edgead@.service"])
def test_security_exposure_is_at_most_2(tmp_path, unit, name, record_property, capsys):
    copy = _runnable_copy(unit, tmp_path, name)
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(copy)],
                          capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", proc.stdout)
    if found is None:
        pytest.skip(f"systemd-analyze security --offline gave no score here: {proc.stderr.strip()[:200]}")
    score = float(found.group(1))
    record_property("exposure", score)
    with capsys.disabled():
        print(f"\n{name}: systemd-analyze security exposure {score} / 10")
    assert 0.0 <= score <= MAX_EXPOSURE, proc.stdout


# -- the operator page's units: the daemon's hardening, all of it, and more ------------------------------------------
UI_PLAIN, UI_TEMPLATE = UNITS / "edgead-ui.service", UNITS / "edgead-ui@.service"
NORTH, NORTH_TEMPLATE = UNITS / "edgead-north.service", UNITS / "edgead-north@.service"  # the MQTT north
DAEMON_ONLY = ("Type", "NotifyAccess", "WatchdogSec", "TimeoutStartSec", "TimeoutStopSec", "ExecReload",
               "SupplementaryGroups", "RestrictAddressFamilies")
UI_REQUIRED = {"Type": "exec", "Restart": "on-failure", "PrivateDevices": "yes", "MemoryDenyWriteExecute": "yes",
               "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6"}
UI_PER_UNIT = {
    UI_PLAIN: {"ExecStart": "/opt/edgead/current/venv/bin/edgead ui /etc/edgead/station.yaml",
               "StateDirectory": "edgead", "ReadWritePaths": "/var/lib/edgead"},
    UI_TEMPLATE: {"ExecStart": "/opt/edgead/current/venv/bin/edgead ui /etc/edgead/%i.yaml",
                  "StateDirectory": "edgead/%i", "ReadWritePaths": "/var/lib/edgead/%i"},
}


@pytest.mark.parametrize("unit,daemon", [(UI_PLAIN, PLAIN), (UI_TEMPLATE, TEMPLATE)], ids=lambda p: p.name)
def test_ui_units_keep_every_hardening_key_of_the_daemon(unit, daemon):
    ui, station = parse_unit(unit)["Service"], parse_unit(daemon)["Service"]
    hardening = [k for k in station if k.startswith(("Protect", "Restrict", "Private", "NoNew", "Lock", "System",
                                                      "Capability", "Ambient", "UMask", "IPAddress", "Proc",
                                                      "WorkingDirectory"))]
    assert len(hardening) >= 20
    for key in hardening:
        if key not in DAEMON_ONLY:
            assert ui.get(key) == station[key], f"{unit.name}: {key}={ui.get(key)}, the daemon has {station[key]}"
    for key, value in {**UI_REQUIRED, **UI_PER_UNIT[unit]}.items():
        assert ui.get(key) == [value], f"{unit.name}: {key}={ui.get(key)}, want {value!r}"
    assert ui["User"] == station["User"] == ["edgead"] and "RemoveIPC" not in ui  # see the unit's comment
    assert ui["SystemCallFilter"] == station["SystemCallFilter"]
    assert "SupplementaryGroups" not in ui  # no devices


@needs_analyze
@pytest.mark.parametrize("unit,name", [(UI_PLAIN, "edgead-ui.service"), (UI_TEMPLATE, "edgead-ui@line1.service"),
                                       (NORTH, "edgead-north.service"), (NORTH_TEMPLATE, "edgead-north@line1.service")],
                         ids=["edgead-ui.service", "edgead-ui@.service", "edgead-north.service",
                              "edgead-north@.service"])
def test_sidecar_units_verify_clean_and_are_no_more_exposed_than_the_daemon(tmp_path, unit, name):
    copy = _runnable_copy(unit, tmp_path, name)
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    scores = []
    for path, unit_name in ((copy, name), (_runnable_copy(PLAIN, tmp_path, "edgead.service"), "edgead.service")):
        out = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)],
                             capture_output=True, text=True, timeout=60).stdout
        found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", out)
        if found is None:
            pytest.skip("systemd-analyze security --offline gave no score here")
        scores.append(float(found.group(1)))
    assert scores[0] <= scores[1], scores


# --- the MQTT north sidecar (python -m edgead.north) ----------------------------------------------------------

NOT_HARDENING = {  # the daemon's keys that are about what it runs, not how it is confined
    "Type", "NotifyAccess", "ExecStart", "ExecReload", "WatchdogSec", "RestartSec", "TimeoutStartSec",
    "TimeoutStopSec", "SyslogIdentifier", "SupplementaryGroups", "LogsDirectory", "ReadWritePaths",
    "RestrictAddressFamilies", "Environment"}


@pytest.mark.parametrize("north,daemon", [(NORTH, PLAIN), (NORTH_TEMPLATE, TEMPLATE)],
                         ids=["edgead-north.service", "edgead-north@.service"])
def test_the_north_unit_has_every_hardening_key_of_the_station_and_more(north, daemon):
    mine, theirs = parse_unit(north)["Service"], parse_unit(daemon)["Service"]
    for key, values in theirs.items():
        if key not in NOT_HARDENING:
            assert mine.get(key) == values, f"{north.name}: {key}={mine.get(key)}, the station has {values}"
    assert mine["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]  # no netlink: no device, no interface
    assert mine["PrivateDevices"] == ["yes"] and mine["MemoryDenyWriteExecute"] == ["yes"]
    state = theirs["StateDirectory"][0]
    assert mine["ReadWritePaths"] == [f"/var/lib/{state}"]  # only the database's folder
    config = theirs["ExecStart"][0].split()[-1]
    assert mine["ExecStart"] == [f"/opt/edgead/current/venv/bin/python -m edgead.north {config}"]
    assert mine["Restart"] == ["on-failure"] and mine["User"] == ["edgead"]
