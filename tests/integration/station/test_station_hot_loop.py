"""The hot loop (issue 18): only the ROIs are resampled in the loop, the archive still gets the aligned frame, a
camera-triggered station captures ahead, and every part records its wait for the loop (``queue_ms``)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgead.align import Aligner
from edgead.daemon.config import load_station
from edgead.daemon.runner import Runner
from edgead.daemon.notify import Notifier
from edgead.data import load_image
from edgead.demo.plc_peer import run_with_plc
from edgead.records import RecordStore

pytestmark = pytest.mark.timeout(300)
ROIS = [{"name": "left", "x": 0, "y": 0, "width": 96, "height": 128},
        {"name": "right", "x": 64, "y": 0, "width": 96, "height": 128}]


def _config(tmp_path: Path, station, bundle, camera_url: str, port: str, **extra) -> Path:
    """A station config trusting the tests' signing key (``tests/conftest.py::bundle_key``)."""
    from edgead.bundle.signing import read_signature

    cfg = {"security": {"trusted_keys": [read_signature(bundle.root).public_key.to_line()]},
           "camera": {"url": camera_url}, "reference": str(station.reference),
           "model": {"bundle": str(bundle.root), "warmup_runs": 1}, "plc": {"url": port, "protocol": "ascii"},
           "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "images")},
           "observe": {"metrics_listen": None}}
    cfg.update(extra)
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("preload", ["", "&preload=1"])  # decoded per part, or read-only frames decoded at open
def test_an_roi_station_resamples_only_its_rois_and_archives_the_aligned_frame(small_station, padim_bundle, pty,
                                                                               tmp_path, monkeypatch, preload):
    calls = []
    real = Aligner.resample

    def spy(self, image, registration, rois=None):
        calls.append(rois is not None)
        return real(self, image, registration, rois)

    monkeypatch.setattr(Aligner, "resample", spy)
    path = _config(tmp_path, small_station, padim_bundle.bundle,
                   f"folder://{small_station.captures}?fps=0&pattern=*.png{preload}", pty.station, rois=ROIS,
                   model={"bundle": str(padim_bundle.bundle.root), "warmup_runs": 1, "geometry_check": "warn"},
                   storage={"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "images"),
                            "save_images": "all"})
    seen = []
    summary, log = run_with_plc(load_station(path), pty.plc, 6, on_part=seen.append)
    assert summary.parts == 6 and not log.unanswered
    assert calls and all(calls)  # the loop never resampled a whole frame
    color = padim_bundle.bundle.meta.color
    aligner = Aligner(load_image(small_station.reference, color))
    with RecordStore(tmp_path / "records.sqlite") as store:
        rows = list(store.query())
    assert len(rows) == 6
    for row, outcome in zip(rows, seen):
        assert list(row.roi_scores) == ["left", "right"] and row.queue_ms is not None and row.queue_ms >= 0
        assert row.image_path and row.image_ms is not None
        archived = load_image(row.image_path, color)
        frame = load_image(small_station.captures / outcome.source, color)
        expected = real(aligner, frame, aligner.register(frame))
        assert archived.shape == expected.shape  # the writer resampled the whole frame, as Aligner.align does
        assert np.abs(archived.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("mode", ["freeze", "default"])
def test_the_heap_is_frozen_once_the_station_is_open(small_station, padim_bundle, pty, tmp_path, mode):
    import gc

    path = _config(tmp_path, small_station, padim_bundle.bundle, f"folder://{small_station.captures}?fps=0",
                   pty.station, runtime={"gc": mode})
    frozen = []
    try:
        summary, _ = run_with_plc(load_station(path), pty.plc, 2, on_ready=lambda: frozen.append(gc.get_freeze_count()))
    finally:
        gc.unfreeze()
    assert summary.parts == 2
    assert (frozen[0] > 10_000) if mode == "freeze" else frozen == [0]  # the runtime's and the model's objects


@pytest.mark.parametrize("ahead", [1, 0])
def test_a_camera_triggered_station_captures_ahead_in_order(small_station, padim_bundle, pty, tmp_path, ahead):
    folder = tmp_path / "frames"
    folder.mkdir()
    names = sorted(p.name for p in small_station.captures.glob("*.png"))[:8]
    for name in names:
        shutil.copy(small_station.captures / name, folder / name)
    path = _config(tmp_path, small_station, padim_bundle.bundle, f"folder://{folder}?fps=0&pattern=*.png",
                   pty.station, trigger="camera", runtime={"capture_ahead": ahead})
    seen = []
    runner = Runner(load_station(path), notifier=Notifier(env={}), on_part=seen.append)
    summary = runner.run()  # the replay's end stops it
    assert summary.stopped_by == "end of stream" and [o.source for o in seen] == names
    with RecordStore(tmp_path / "records.sqlite") as store:
        rows = list(store.query())
    assert [r.part_id for r in rows] == [str(i) for i in range(len(names))]
    assert all(r.total_ms is not None and r.infer_ms is not None for r in rows)
    if ahead:  # each part is measured from its frame's arrival, and its wait for the loop is on record
        assert all(r.queue_ms is not None and r.queue_ms >= 0 for r in rows)
    else:  # the loop grabbed each frame itself: no wait to record
        assert all(r.queue_ms is None for r in rows)


def test_aligned_frames_waiting_in_the_image_queue_are_never_overwritten(small_station, padim_bundle, pty, tmp_path,
                                                                        monkeypatch):
    """The loop resamples into a ring of frames; with the image writer held up, every part's frame stays in its
    queue until archived, so each archived image is that part's own aligned frame."""
    import threading

    from edgead.records.images import ImageArchive

    parts = 6
    release = threading.Event()
    real_save = ImageArchive.save

    def held_save(self, image, part_id, **kw):
        release.wait(60)  # the writer holds its image (and the queue its others) until the last part is answered
        return real_save(self, image, part_id, **kw)

    monkeypatch.setattr(ImageArchive, "save", held_save)
    path = _config(tmp_path, small_station, padim_bundle.bundle,
                   f"folder://{small_station.captures}?fps=0&pattern=*.png&preload=1", pty.station,
                   runtime={"image_queue": 8},
                   storage={"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "images"),
                            "save_images": "all", "image_format": "png"})
    seen = []

    def on_part(outcome):
        seen.append(outcome)
        if len(seen) == parts:
            release.set()

    summary, log = run_with_plc(load_station(path), pty.plc, parts, on_part=on_part)
    assert summary.parts == parts and not log.unanswered
    color = padim_bundle.bundle.meta.color
    aligner = Aligner(load_image(small_station.reference, color))
    with RecordStore(tmp_path / "records.sqlite") as store:
        rows = list(store.query())
    assert len(rows) == parts
    sources = {o.part_id: o.source for o in seen}
    assert len(set(sources.values())) == parts  # distinct frames: a reused slot would show another part's pixels
    for row in rows:
        assert row.image_path, row.error
        archived = load_image(row.image_path, color)
        expected = aligner.align(load_image(small_station.captures / sources[row.part_id], color)).image
        assert np.abs(archived.astype(int) - expected.astype(int)).max() <= 1


def test_a_parts_answer_is_on_record_once_it_is_answered_and_its_area_is_counted_after(small_station, padim_bundle,
                                                                                        pty, tmp_path):
    """Issue 18: the part's commit is its row alone; its answer and latencies are written right after the answer
    (not with the next part's commit), and the defect area the verdict did not need is counted after the answer."""
    import sqlite3

    import serial

    from edgead.daemon.station import Station

    path = _config(tmp_path, small_station, padim_bundle.bundle, f"folder://{small_station.captures}?fps=0",
                   pty.station)
    plc = serial.Serial(pty.plc, 19200, timeout=0.05)
    try:
        with Station(load_station(path)) as station:
            plc.write(b"T1\r\n")
            while (outcome := station.step()) is None:
                pass
            # the station now waits for the next part: what the PLC was told is already on record
            db = sqlite3.connect(f"file:{tmp_path / 'records.sqlite'}?mode=ro", uri=True)
            try:
                answer, record_ms, signal_ms, total_ms = db.execute(
                    "SELECT plc_answer, record_ms, signal_ms, total_ms FROM parts WHERE id = ?",
                    (outcome.row_id,)).fetchone()
            finally:
                db.close()
    finally:
        plc.close()
    assert answer == outcome.answer.value
    assert None not in (record_ms, signal_ms, total_ms)
    assert [type(r.defect_area_px) for r in outcome.rois] == [int]
