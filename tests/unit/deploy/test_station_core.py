"""Pure parts of the station side: manifest, rollback choice, atomic switch, notify parsing, health waiting."""
from __future__ import annotations

import json
import os

import pytest

from edgead.deploy import health, manifest, service, station_steps
from edgead.deploy.health import Phase, ServiceState


def _release(tmp_path):
    root = tmp_path / "rel"
    (root / "bundle").mkdir(parents=True)
    (root / "bundle" / "model.onnx").write_bytes(b"onnx")
    (root / "station.yaml").write_text("camera: {}\n")
    manifest.write_manifest(root, manifest.build_manifest(root, info={"release": "r1"}))
    return root


def test_manifest_verifies_and_names_changed_missing_and_extra_files(tmp_path):
    root = _release(tmp_path)
    assert manifest.verify_release(root)["release"] == "r1"
    (root / "venv").mkdir()  # made on the station: ignored
    (root / "venv" / "x").write_text("x")
    manifest.verify_release(root)
    (root / "bundle" / "model.onnx").write_bytes(b"evil")
    (root / "extra.txt").write_text("?")
    (root / "station.yaml").unlink()
    with pytest.raises(manifest.ManifestMismatch) as err:
        manifest.verify_release(root)
    text = str(err.value)
    assert "bundle/model.onnx: sha256 differs" in text and "station.yaml: missing" in text
    assert "extra.txt: not in the manifest" in text


def test_pick_rollback_takes_the_newest_healthy_older_release():
    names = ["20260101T000000.000000Z", "20260102T000000.000000Z", "20260103T000000.000000Z"]
    assert station_steps.pick_rollback(names, names[2], set()) == names[1]
    assert station_steps.pick_rollback(names, names[2], {names[1]}) == names[0]
    assert station_steps.pick_rollback(names, names[0], set()) is None


def test_releases_to_prune_keeps_the_newest_the_live_one_and_its_rollback_target():
    names = [f"2026010{i}T000000.000000Z" for i in range(1, 7)]
    assert station_steps.releases_to_prune(names, names[5], set(), keep=3) == names[:3]
    # live is an older one (after a rollback): it and its rollback target stay
    assert station_steps.releases_to_prune(names, names[2], {names[3], names[4], names[5]}, keep=2) == \
        [names[0], names[3]]
    # failed releases do not count towards the healthy ones kept
    assert station_steps.releases_to_prune(names, names[5], {names[4]}, keep=2) == names[:3]
    assert station_steps.releases_to_prune(names[:1], names[0], set(), keep=1) == []


def test_prune_deletes_old_release_folders(tmp_path):
    names = [f"2026010{i}T000000.000000Z" for i in range(1, 5)]
    for n in names:
        (tmp_path / "releases" / n).mkdir(parents=True)
    (tmp_path / "releases" / ".incoming").mkdir()
    station_steps.switch_current(tmp_path, names[-1])
    assert station_steps.prune(tmp_path, keep=2) == names[:2]
    assert station_steps.release_names(tmp_path) == names[2:]
    assert (tmp_path / "releases" / ".incoming").is_dir()


def test_switch_current_replaces_the_link_atomically(tmp_path):
    (tmp_path / "releases" / "a").mkdir(parents=True)
    (tmp_path / "releases" / "b").mkdir()
    station_steps.switch_current(tmp_path, "a")
    assert station_steps.current_release(tmp_path) == "a"
    station_steps.switch_current(tmp_path, "b")
    assert os.readlink(tmp_path / "current") == "releases/b"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".current")] == []


def test_apply_notify_tracks_ready_and_status():
    state = {"phase": "starting", "status_text": ""}
    state = service.apply_notify(state, b"STATUS=loading engine", 1.0)
    assert state["phase"] == "starting" and state["status_text"] == "loading engine"
    state = service.apply_notify(state, b"READY=1\nSTATUS=inspecting", 2.0)
    assert state["phase"] == "ready" and state["ready_epoch_s"] == 2.0 and state["status_text"] == "inspecting"


@pytest.mark.parametrize("text,phase", [
    ("ActiveState=active\nSubState=running\nNRestarts=0\nActiveEnterTimestampMonotonic=5000000", Phase.READY),
    ("ActiveState=activating\nSubState=start\nNRestarts=0", Phase.STARTING),
    ("ActiveState=activating\nSubState=auto-restart\nNRestarts=1\nExecMainStatus=3", Phase.FAILED),
    ("ActiveState=failed\nSubState=failed\nExecMainStatus=3", Phase.FAILED),
    ("ActiveState=inactive\nSubState=dead", Phase.STOPPED),
])
def test_parse_systemctl_show(text, phase):
    state = service.parse_systemctl_show(text, restarts_before=0, uptime_s=10.0)
    assert state.phase is phase
    if phase is Phase.READY:
        assert state.since_epoch_s is not None


def test_systemd_dropin_runs_the_current_release():
    text = service.dropin_text("/opt/edgead")
    assert "ExecStart=\nExecStart=/opt/edgead/current/venv/bin/edgead run /opt/edgead/current/station.yaml" in text
    assert "ProcSubset" not in text  # a CPU release keeps the unit's ProcSubset=pid
    assert service.dropin_text("/opt/edgead", gpu=True).endswith("ProcSubset=all\n")  # CUDA reads /proc/driver


def _clock():
    t = [0.0]
    return (lambda: t[0]), (lambda s: t.__setitem__(0, t[0] + s))


def test_wait_ready_returns_on_ready_and_fails_on_crash_or_timeout():
    clock, sleep = _clock()
    states = iter([ServiceState(Phase.STARTING), ServiceState(Phase.READY, "ok")])
    assert health.wait_ready(lambda: next(states), 5, clock=clock, sleep=sleep).phase is Phase.READY
    with pytest.raises(health.HealthError, match="exited with code 3"):
        health.wait_ready(lambda: ServiceState(Phase.FAILED, "exited with code 3"), 5, clock=clock, sleep=sleep)
    with pytest.raises(health.HealthError, match="failed before READY"):
        health.wait_ready(lambda: ServiceState(Phase.STARTING, restarts=1), 5, clock=clock, sleep=sleep)
    with pytest.raises(health.HealthError, match="no READY within 5 s"):
        health.wait_ready(lambda: ServiceState(Phase.STARTING), 5, clock=clock, sleep=sleep)


def test_last_json_reads_the_result_line():
    out = "log line\n" + json.dumps({"passed": False, "failures": ["x"]}) + "\n{not json\n"
    assert health.last_json(out) == {"passed": False, "failures": ["x"]}
    assert health.last_json("Traceback ...") is None


def test_parts_inspected_reads_the_records_db(tmp_path):
    import sqlite3

    db = tmp_path / "records.sqlite"
    assert station_steps.parts_inspected(str(db)) == "unknown"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE parts (id INTEGER)")
        con.executemany("INSERT INTO parts VALUES (?)", [(1,), (2,)])
    assert station_steps.parts_inspected(str(db)) == 2


def test_station_tools_are_stdlib_only(tmp_path):
    """The tools run on the station's plain python before any venv exists: no edgead, yaml or numpy imports."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from edgead.deploy.release import STATION_TOOLS

    for tool in STATION_TOOLS:
        shutil.copy(Path(station_steps.__file__).with_name(tool), tmp_path / tool)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import station_steps; "
            "bad = [m for m in ('edgead', 'yaml', 'numpy') if m in sys.modules]; sys.exit(1 if bad else 0)")
    subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path)], check=True)
    proc = subprocess.run([sys.executable, "-I", str(tmp_path / "station_steps.py"), "status", "--prefix",
                           str(tmp_path / "none"), "--service", "direct"], capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)["current"] is None
