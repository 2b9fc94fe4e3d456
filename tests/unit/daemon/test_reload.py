"""SIGHUP reload: every key has a row in the table, changed sections rebuild their component (the model always),
a failed reload leaves the station as it was, and reloads do not accumulate resources."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgead.daemon import reload as rl
from edgead.daemon.config import StationConfig, TriggerSource, load_station
from edgead.daemon.station import COMPONENTS, Station
from edgead.errors import CameraError, ConfigError
from edgead.records import RecordStore

# test helpers, on sys.path through tests/conftest.py
import contract_model as cm


def _keys(cls, prefix="") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        if f.name in rl.NOT_KEYS:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            out += _keys(type(default), f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


def test_every_config_key_has_a_row():
    keys = _keys(StationConfig)
    assert "plc.modbus.unit" in keys or any(k.startswith("plc.") for k in keys)
    for key in keys:
        assert rl.action_of(key) in (rl.LIVE, rl.SIDECAR, rl.RESTART, *rl.ORDER), key


def test_the_plan_names_what_changed_and_what_is_rebuilt():
    old = StationConfig()
    new = dataclasses.replace(old, name="line-2", camera=dataclasses.replace(old.camera, url="folder://x"),
                              storage=dataclasses.replace(old.storage, quota_mb=5.0),
                              runtime=dataclasses.replace(old.runtime, heartbeat_ms=100))
    plan = rl.plan_reload(old, new)
    assert set(plan.changed) == {"name", "camera.url", "storage.quota_mb", "runtime.heartbeat_ms"}
    assert plan.components == (rl.MODEL, rl.RECORDER, rl.CAMERA) and plan.devices == (rl.CAMERA,)
    assert rl.plan_reload(old, old) == rl.ReloadPlan((), (rl.MODEL,))


def test_a_changed_trigger_source_reopens_the_camera():
    """The camera captures ahead only while it starts the parts: a switch to PLC triggers must drop its thread."""
    old = dataclasses.replace(StationConfig(), trigger=TriggerSource.CAMERA)
    plan = rl.plan_reload(old, dataclasses.replace(old, trigger=TriggerSource.PLC))
    assert plan.changed == ("trigger",) and plan.devices == (rl.CAMERA,)


def test_a_key_that_cannot_change_live_refuses_the_whole_reload(monkeypatch):
    monkeypatch.setitem(rl.RELOAD, "name", rl.RESTART)
    old = StationConfig()
    with pytest.raises(rl.ReloadRefused, match="name cannot change while the station runs") as err:
        rl.plan_reload(old, dataclasses.replace(old, name="other"))
    assert "restart the service" in str(err.value)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return cm.build_bundle(tmp_path_factory.mktemp("reload") / "bundle")


def _frames(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cm.good_image(np.random.default_rng(i), (40, 40)))
    return folder


def _config(tmp_path: Path, bundle: Path, **sections) -> StationConfig:
    data = {"camera": {"url": f"folder://{_frames(tmp_path / 'cam', 40)}?fps=0&loop=1"}, "trigger": "camera",
            "model": {"bundle": str(bundle), "warmup_runs": 0}, "plc": {"url": "loop://", "protocol": "discrete"},
            "storage": {"database": str(tmp_path / "a.sqlite"), "save_images": "none"},
            "observe": {"metrics_listen": None},
            "security": {"allow_unsigned": True}}  # the reload mechanics; trust: tests/integration/station
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    import yaml

    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_station(path)


def test_reload_rebuilds_what_changed_and_keeps_one_closer_per_component(bundle, tmp_path):
    cfg = _config(tmp_path, bundle)
    with Station(cfg) as st:
        assert st.step() is not None
        model, camera, recorder, plc = st.model, st.camera, st.recorder, st.plc
        plan = st.reload(dataclasses.replace(cfg, decision=dataclasses.replace(cfg.decision, min_defect_area_px=5)))
        assert plan.components == (rl.MODEL,) and st.cfg.decision.min_defect_area_px == 5
        assert st.model is not model and (st.camera, st.recorder, st.plc) == (camera, recorder, plc)
        with pytest.raises(Exception):
            model.active.model.engine.infer(np.zeros((1, 32, 32, 3), np.uint8))  # the old engine was closed
        # the database moves: the recorder is rebuilt, old records stay in the old file
        moved = dataclasses.replace(cfg, storage=dataclasses.replace(cfg.storage, database=tmp_path / "b.sqlite"))
        moved = dataclasses.replace(moved, decision=st.cfg.decision)
        assert st.reload(moved).components == (rl.MODEL, rl.RECORDER)
        assert st.recorder is not recorder and st.camera is camera
        assert st.step() is not None and st.step() is not None
        # a device: closed, then opened with the new config
        other = dataclasses.replace(moved, camera=dataclasses.replace(moved.camera,
                                                                      url=cfg.camera.url + "&sort=name"))
        assert st.reload(other).devices == (rl.CAMERA,) and st.camera is not camera
        assert st.step() is not None
        for _ in range(5):
            st.reload(st.cfg)
        assert set(st._closers) == set(COMPONENTS)  # one closer each, however many reloads
    assert st.records_written == 4  # over both recorders
    with RecordStore(tmp_path / "a.sqlite") as a, RecordStore(tmp_path / "b.sqlite") as b:
        assert len(list(a.query())) == 1 and len(list(b.query())) == 3


def test_a_failed_reload_changes_nothing(bundle, tmp_path):
    cfg = _config(tmp_path, bundle)
    with Station(cfg) as st:
        model, recorder = st.model, st.recorder
        broken = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, bundle=tmp_path / "missing"),
                                     storage=dataclasses.replace(cfg.storage, database=tmp_path / "new.sqlite"))
        with pytest.raises(ConfigError, match="model.bundle: .*missing does not exist"):  # the admission gate
            st.reload(broken)
        assert st.cfg is cfg and st.model is model and st.recorder is recorder
        assert not (tmp_path / "new.sqlite").exists() or not list(RecordStore(tmp_path / "new.sqlite").query())
        # a camera that cannot be opened: the old one is opened again, the model is not swapped
        no_cam = dataclasses.replace(cfg, camera=dataclasses.replace(cfg.camera, url=f"folder://{tmp_path}/none"))
        with pytest.raises(CameraError):
            st.reload(no_cam)
        assert st.cfg is cfg and st.model is model and st.camera is not None
        assert st.step() is not None  # still inspecting with the running config
        assert set(st._closers) == set(COMPONENTS)
