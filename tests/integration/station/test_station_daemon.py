"""The daemon end to end: folder:// camera, alignment, ONNX Runtime, ASCII PLC peer over a real pty pair."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgead.daemon.config import load_station
from edgead.daemon.runner import Runner
from edgead.demo.plc_peer import AsciiPlc, PtyPair, run_with_plc
from edgead.errors import PlcError
from edgead.records import RecordStore

pytestmark = pytest.mark.timeout(300)


def _config(tmp_path: Path, station, bundle, port, **extra) -> Path:
    """A station config trusting the tests' signing key (``tests/conftest.py::bundle_key``)."""
    from edgead.bundle.signing import read_signature

    cfg = {
        "security": {"trusted_keys": [read_signature(bundle.root).public_key.to_line()]},
        "camera": {"url": f"folder://{station.captures}?fps=0&pattern=*.png"},
        "reference": str(station.reference),
        "model": {"bundle": str(bundle.root)},
        "plc": {"url": port, "protocol": "ascii"},
        "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "rejects")},
        "observe": {"metrics_listen": None},
    }
    for key, value in extra.items():
        cfg.setdefault(key, {}).update(value) if isinstance(value, dict) else cfg.__setitem__(key, value)
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(cfg_path: Path, plc_port, n_triggers: int):
    """Run the daemon until the virtual PLC has sent ``n_triggers`` and had its answers."""
    seen = []
    summary, log = run_with_plc(load_station(cfg_path), plc_port, n_triggers, on_part=seen.append)
    return summary, seen, log


def test_verdicts_match_ground_truth_with_no_lost_or_duplicated_ids(small_station, padim_bundle, pty, tmp_path):
    path = _config(tmp_path, small_station, padim_bundle.bundle, pty.station)
    summary, seen, log = _run(path, pty.plc, n_triggers=24)
    truth = json.loads((small_station.captures / "truth.json").read_text())["files"]
    assert summary.parts == 24 and not log.unanswered and not log.mismatched
    assert sorted(log.answers) == list(range(1, 25))  # every id answered once, in order
    assert [o.part_id for o in seen] == [str(i) for i in range(1, 25)]
    correct = sum((truth[Path(o.source).name]["label"] == 1) == (o.verdict.value != "accept") for o in seen)
    accepted_defects = sum(truth[Path(o.source).name]["label"] == 1 and o.verdict.value == "accept" for o in seen)
    assert correct >= 20, f"{correct}/24 correct"
    assert accepted_defects <= 1
    with RecordStore(tmp_path / "records.sqlite") as store:
        rows = list(store.query())
    assert len(rows) == 24 and [r.part_id for r in rows] == [str(i) for i in range(1, 25)]
    assert all(r.total_ms is not None and r.infer_ms is not None and r.align_quality > 0.9 for r in rows)
    assert {r.verdict.value for r in rows if r.image_path} <= {"reject", "no-read", "fault"}


def test_rois_are_inferred_in_order_and_the_part_takes_the_worst(small_station, padim_bundle, pty, tmp_path):
    """Two overlapping ROIs per part (``infer_many``: overlapped on TensorRT, in turn on ONNX Runtime)."""
    rois = [{"name": "left", "x": 0, "y": 0, "width": 96, "height": 128},
            {"name": "right", "x": 64, "y": 0, "width": 96, "height": 128}]
    # crops of a model trained on whole parts: only with the documented geometry override
    path = _config(tmp_path, small_station, padim_bundle.bundle, pty.station, rois=rois,
                   model={"geometry_check": "warn"})
    summary, seen, log = _run(path, pty.plc, n_triggers=6)
    assert summary.parts == 6 and not log.unanswered and sorted(log.answers) == list(range(1, 7))
    with RecordStore(tmp_path / "records.sqlite") as store:
        rows = list(store.query())
    assert len(rows) == 6
    for row in rows:
        assert list(row.roi_scores) == ["left", "right"]
        assert row.score == pytest.approx(max(row.roi_scores.values()))
    # crops of whole-part training images saturate the normalised score; the raw one shows each part's own crops
    assert len({r.raw_score for r in rows}) == 6


@pytest.fixture
def twin_engine(padim_bundle, tmp_path, monkeypatch):
    """(the CUDA twin, an engine file of the PaDiM bundle) with CUDA and TensorRT replaced by their software twins
    (tests/unit/infer/twins.py: the "engine" is the bundle's ONNX graph run by ONNX Runtime); the engine's profile
    takes 64 to 256 px."""
    from twins import CudaTwin, TensorRTTwin, twin_engine_file  # tests/unit/infer, on sys.path (tests/conftest.py)

    from edgead.infer import cuda_mem

    cuda = CudaTwin()
    monkeypatch.setattr(cuda_mem, "_API", cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", TensorRTTwin(cuda, ((1, 64, 64, 3), (1, 128, 160, 3),
                                                                     (1, 256, 256, 3))))
    return cuda, twin_engine_file(tmp_path / "model.engine", padim_bundle.bundle)


def test_a_tensorrt_engine_on_software_twins_gives_the_onnxruntime_verdicts(small_station, padim_bundle, pty,
                                                                          tmp_path, twin_engine):
    """``model.engine`` through the daemon: load, header checks, warm-up and the hot loop on the TensorRT backend.

    CUDA and the TensorRT runtime are software twins here (fixture ``twin_engine``); tests/gpu/test_trt.py runs the
    real ones.
    """
    cuda, engine = twin_engine
    bundle = padim_bundle.bundle
    scores = {}
    for name, model in (("onnxruntime", {}), ("tensorrt", {"engine": str(engine)})):
        run_dir = tmp_path / name
        run_dir.mkdir()
        path = _config(run_dir, small_station, bundle, pty.station, model=model)
        summary, seen, log = _run(path, pty.plc, n_triggers=8)
        assert summary.parts == 8 and not log.unanswered and not log.mismatched
        scores[name] = {o.part_id: (o.verdict, o.score) for o in seen}
    assert cuda.ops_run > 8 * 6 and not cuda.live  # the engine ran every part, and was closed with the daemon
    for part_id, (verdict, score) in scores["onnxruntime"].items():
        assert scores["tensorrt"][part_id][0] == verdict
        assert scores["tensorrt"][part_id][1] == pytest.approx(score, abs=1e-5)


def test_an_roi_outside_the_engines_profile_fails_at_start_naming_it(small_station, padim_bundle, tmp_path,
                                                                      twin_engine):
    """Not a fault on every part: the model does not load (so the daemon never reports READY; deploy rolls back)."""
    from edgead.daemon.model import load_model
    from edgead.errors import EngineError

    cuda, engine = twin_engine
    bundle = padim_bundle.bundle
    rois = [{"name": "body", "x": 0, "y": 0, "width": 160, "height": 128},
            {"name": "pin", "x": 10, "y": 10, "width": 40, "height": 40}]
    path = _config(tmp_path, small_station, bundle, "loop://", model={"engine": str(engine), "geometry_check": "warn"},
                   rois=rois)
    with pytest.raises(EngineError, match=r"ROI 'pin' \(40x40 px\) does not fit the model's engine: .*64<=H<=256") \
            as err:
        load_model(load_station(path))
    assert "min_input_hw" in str(err.value)
    assert not cuda.live  # the engine was closed


def test_failed_alignment_is_no_read_and_replay_end_is_failsafe(small_station, padim_bundle, pty, tmp_path):
    """A frame that is not the part gets `no-read`; triggers after the replay ended get the fail-safe answer."""
    import cv2

    replay = tmp_path / "replay"
    replay.mkdir()
    shutil.copy(small_station.captures / "000000.png", replay / "000000.png")
    noise = np.random.default_rng(0).integers(0, 255, (128, 160, 3), np.uint8)
    cv2.imwrite(str(replay / "000001.png"), noise)
    path = _config(tmp_path, small_station, padim_bundle.bundle, pty.station,
                   camera={"url": f"folder://{replay}?fps=0"})
    summary, seen, log = _run(path, pty.plc, n_triggers=4)
    assert [o.verdict.value for o in seen][1:] == ["no-read", "fault", "fault"]
    # faults are recorded as such and sent as plc.failsafe_verdict (reject by default)
    assert log.answers[2] == "no-read" and log.answers[3] == "reject" and log.answers[4] == "reject"
    assert "alignment quality" in seen[1].error or "alignment" in seen[1].error
    assert "accept" not in [log.answers[i] for i in (2, 3, 4)]


def test_vanished_port_stops_the_daemon_and_keeps_records(small_station, padim_bundle, tmp_path):
    if not shutil.which("socat"):
        pytest.skip("socat not installed")
    pair = PtyPair(tmp_path)
    path = _config(tmp_path, small_station, padim_bundle.bundle, pair.station)
    cfg = load_station(path)
    plc = AsciiPlc(pair.plc, 100, window_ms=2000)
    runner = Runner(cfg, on_part=lambda o: pair._proc.kill() if o.seq == 3 else None, on_ready=plc.start)
    with pytest.raises(PlcError, match="station"):
        runner.run()
    plc.stop.set()
    pair.close()
    with RecordStore(tmp_path / "records.sqlite") as store:
        assert store.integrity_check() == [] and len(list(store.query())) >= 4


def _replay_config(tmp_path, station, bundle, fps: int) -> Path:
    """A camera-triggered station (looping replay, discrete PLC on loop://) for the signal tests."""
    return _config(tmp_path, station, bundle, "loop://",
                   camera={"url": f"folder://{station.captures}?fps={fps}&loop=1"},
                   plc={"url": "loop://", "protocol": "discrete", "discrete": {"pulse_ms": 1, "gap_ms": 1}})


def _start_under_notify(tmp_path, config: Path, **env_extra):
    """Start `edgead run CONFIG` with a real AF_UNIX datagram socket as NOTIFY_SOCKET; returns (process, socket)."""
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), **env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "edgead", "run", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, sock


def test_sigterm_drains_and_notifies(small_station, padim_bundle, tmp_path):
    """`edgead run` under a real NOTIFY_SOCKET: READY=1 after start-up, WATCHDOG pings, SIGTERM -> exit 0."""
    path = _replay_config(tmp_path, small_station, padim_bundle.bundle, fps=5)
    proc, sock = _start_under_notify(tmp_path, path, WATCHDOG_USEC="1000000", WATCHDOG_PID="")
    try:
        messages = []
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        deadline = time.monotonic() + 30
        while sum("WATCHDOG=1" in m for m in messages) < 2 and time.monotonic() < deadline:
            messages.append(sock.recv(4096).decode())
        assert sum("WATCHDOG=1" in m for m in messages) >= 2
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        while True:
            try:
                sock.settimeout(0.5)
                messages.append(sock.recv(4096).decode())
            except socket.timeout:
                break
    finally:
        proc.kill() if proc.poll() is None else None
        sock.close()
    assert proc.returncode == 0, err
    assert any("STOPPING=1" in m for m in messages)
    assert "stopped by SIGTERM" in err
    wal = tmp_path / "records.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # drained: pending updates written, then checkpointed
    with RecordStore(tmp_path / "records.sqlite") as store:
        assert store.integrity_check() == []
        rows = list(store.query())
    n = len(rows)
    assert n >= 1 and f"{n} parts" in err
    assert all(r.plc_answer is not None and r.total_ms is not None for r in rows)  # the last one's too


def test_sighup_reloads_and_a_bad_reload_keeps_the_running_model(small_station, padim_bundle, tmp_path):
    """SIGHUP with a good config reloads (RELOADING=1 then READY=1); with a broken bundle the old model keeps going."""
    path = _replay_config(tmp_path, small_station, padim_bundle.bundle, fps=20)
    proc, sock = _start_under_notify(tmp_path, path)

    def wait_for(text):
        while True:
            m = sock.recv(4096).decode()
            if text in m:
                return m

    try:
        wait_for("READY=1")
        proc.send_signal(signal.SIGHUP)
        wait_for("RELOADING=1")
        assert "reloaded" in wait_for("READY=1")
        cfg = yaml.safe_load(path.read_text())
        cfg["model"]["bundle"] = str(tmp_path / "missing-bundle")
        path.write_text(yaml.safe_dump(cfg))
        proc.send_signal(signal.SIGHUP)
        wait_for("RELOADING=1")
        wait_for("READY=1")
        time.sleep(0.5)
        assert proc.poll() is None, "a bad reload must not stop the station"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
        sock.close()
    assert proc.returncode == 0
    assert "reload failed, keeping the running model" in err and "missing-bundle" in err


def test_every_log_line_is_written_once_with_its_journald_priority(small_station, padim_bundle, tmp_path):
    """`edgead run` under journald: the CLI's own handler and the daemon's used to write every line twice, the
    second copy without a priority; now each line is written once and starts with <N>."""
    path = _replay_config(tmp_path, small_station, padim_bundle.bundle, fps=0)
    log_file = tmp_path / "journal.log"
    with open(log_file, "w") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        proc = subprocess.run([sys.executable, "-m", "edgead", "run", str(path), "--max-parts", "3",
                               "--set", "observe.log_level=info", "--set", "observe.log_format=text"],
                              env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=240)
    lines = [line for line in log_file.read_text().splitlines() if line.strip()]
    assert proc.returncode == 0, lines[-5:]
    logged = [line for line in lines if "edgead." in line]  # log lines (the summary line is a plain print)
    assert sum("loaded (onnxruntime)" in line for line in logged) == 1, logged
    assert logged and all(line[:3] in ("<3>", "<4>", "<6>", "<7>") for line in logged), logged


def test_the_ready_status_has_no_password():
    from edgead.daemon.runner import ready_status

    status = ready_status("ab" * 32, "rtsp://admin:hunter2@10.0.0.5:554/stream1?token=x")
    assert "hunter2" not in status and "token=***" in status and "rtsp://admin:***@10.0.0.5" in status
