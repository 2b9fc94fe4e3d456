"""What a station admits: `check`, `run` and a SIGHUP reload refuse a re-hashed unsigned bundle and one re-signed by
an untrusted key (naming the key id), a model that is not the pinned one, a bundle from another reference and a
too-small ROI; `security.allow_unsigned` and `model.geometry_check: warn` are the documented, loud overrides."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import pytest
import yaml

from edgead.cli import main
from edgead.daemon.config import load_station
from edgead.daemon.runner import Runner
from edgead.daemon.station import Station
from edgead.errors import ExitStatus

from forge import rehash, resigned_copy, tampered_copy

pytestmark = pytest.mark.timeout(300)


def _config(tmp_path: Path, station, bundle_root: Path, key, **extra) -> Path:
    cfg = {"camera": {"url": f"folder://{station.captures}?fps=0&pattern=*.png"},
           "reference": str(station.reference), "model": {"bundle": str(bundle_root), "warmup_runs": 0},
           "plc": {"url": "loop://", "protocol": "discrete"},
           "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "img")},
           "observe": {"metrics_listen": None}, "security": dict(key.security)}
    for section, values in extra.items():
        cfg[section] = {**cfg.get(section, {}), **values} if isinstance(values, dict) else values
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def forged(padim_bundle, tmp_path):
    """The two bundles of an attacker with write access: re-hashed and unsigned, and re-signed by their own key."""
    rehashed = tampered_copy(padim_bundle.bundle.root, tmp_path / "rehashed")
    resigned, attacker = resigned_copy(padim_bundle.bundle.root, tmp_path / "resigned")
    return {"rehashed": (rehashed, "is not signed"),
            "resigned": (resigned, f"signed by key {attacker.key_id}, which this station does not trust")}


@pytest.mark.parametrize("which", ["rehashed", "resigned"])
def test_check_and_run_refuse_a_forged_bundle(small_station, bundle_key, forged, tmp_path, capsys, which):
    root, words = forged[which]
    path = _config(tmp_path, small_station, root, bundle_key)
    for command in ("check", "run"):
        assert main([command, str(path)]) == ExitStatus.BAD_INPUT
        err = capsys.readouterr().err
        assert words in err, err
    assert not (tmp_path / "records.sqlite").exists()  # run refused before opening anything


def test_the_signed_bundle_passes_and_names_its_key(small_station, padim_bundle, bundle_key, tmp_path, capsys):
    path = _config(tmp_path, small_station, padim_bundle.bundle.root, bundle_key)
    assert main(["check", str(path)]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert f"signed by trusted key {bundle_key.key_id}" in out and "geometry: reference and ROIs match" in out


def test_reload_refuses_a_forged_bundle_and_keeps_the_running_model(small_station, padim_bundle, bundle_key, forged,
                                                                      tmp_path, caplog):
    path = _config(tmp_path, small_station, padim_bundle.bundle.root, bundle_key)
    runner = Runner(load_station(path))
    with Station(runner.cfg) as station:
        running = station.model.model_hash
        for which in ("rehashed", "resigned"):
            root, words = forged[which]
            cfg = yaml.safe_load(path.read_text())
            cfg["model"]["bundle"] = str(root)
            path.write_text(yaml.safe_dump(cfg))
            caplog.clear()
            with caplog.at_level(logging.ERROR):
                runner._reload(station)  # what SIGHUP triggers between two parts
            assert "reload failed, keeping the running model" in caplog.text and words in caplog.text
            assert station.model.model_hash == running
        assert station.step() is not None  # and it still inspects


def test_allow_unsigned_runs_with_a_warning_but_never_a_broken_signature(small_station, padim_bundle, bundle_key,
                                                                          forged, tmp_path, capsys, caplog):
    root, _ = forged["rehashed"]
    path = _config(tmp_path, small_station, root, bundle_key, security={"allow_unsigned": True})
    assert main(["check", str(path)]) == ExitStatus.OK
    assert "warning: security.allow_unsigned is true: running bundle" in capsys.readouterr().out
    from edgead.daemon.model import load_model

    with caplog.at_level(logging.WARNING):
        load_model(load_station(path)).close()  # what `edgead run` does at start
    assert "security.allow_unsigned is true" in caplog.text
    # a signed bundle changed after signing (signature kept, manifest re-hashed) is refused even so
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(padim_bundle.bundle.root, broken)
    meta = yaml.safe_load((broken / "edgead.yaml").read_text())
    meta["thresholds"]["image"] = 1e9
    (broken / "edgead.yaml").write_text(yaml.safe_dump(meta))
    rehash(broken)
    path = _config(tmp_path, small_station, broken, bundle_key, security={"allow_unsigned": True})
    assert main(["check", str(path)]) == ExitStatus.BAD_INPUT
    assert f"signature by key {bundle_key.key_id} does not verify" in capsys.readouterr().err


def test_a_pinned_model_hash_refuses_any_other_bundle(small_station, padim_bundle, bundle_key, tmp_path, capsys):
    path = _config(tmp_path, small_station, padim_bundle.bundle.root, bundle_key,
                   security={"model_sha256": "0" * 64})
    assert main(["check", str(path)]) == ExitStatus.BAD_INPUT
    assert f"has model hash {padim_bundle.bundle.model_hash}, but security.model_sha256 pins 000" in \
        capsys.readouterr().err
    path = _config(tmp_path, small_station, padim_bundle.bundle.root, bundle_key,
                   security={"model_sha256": padim_bundle.bundle.model_hash})
    assert main(["check", str(path)]) == ExitStatus.OK


def test_a_bundle_from_another_reference_is_refused_naming_both(small_station, padim_bundle, bundle_key, tmp_path,
                                                                 capsys):
    ref = cv2.imread(str(small_station.reference), cv2.IMREAD_UNCHANGED)
    other = tmp_path / "other-line.png"
    cv2.imwrite(str(other), ref[::-1].copy())  # same size, another part
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), ref[:96, :96].copy())  # another camera
    for reference, words in ((other, ["other-line.png (pixels", "is not the reference the bundle was trained"]),
                             (small, ["small.png is 96x96 px", "trained against a 160x128 px reference"])):
        path = _config(tmp_path, small_station, padim_bundle.bundle.root, bundle_key, reference=str(reference))
        assert main(["check", str(path)]) == ExitStatus.BAD_INPUT
        err = capsys.readouterr().err
        assert "was not trained for this station" in err and all(w in err for w in words), err
        assert "model.geometry_check: warn" in err  # the hint names the override


def test_a_too_small_roi_is_refused_unless_overridden(small_station, padim_bundle, bundle_key, tmp_path, capsys):
    rois = [{"name": "strip", "x": 0, "y": 40, "width": 160, "height": 40}]
    path = _config(tmp_path, small_station, padim_bundle.bundle.root, bundle_key, rois=rois)
    assert main(["check", str(path)]) == ExitStatus.BAD_INPUT
    assert "ROI 'strip' is 160x40 px; the model was trained on 160x128 px images" in capsys.readouterr().err
    path = _config(tmp_path, small_station, padim_bundle.bundle.root, bundle_key, rois=rois,
                   model={"geometry_check": "warn"})
    assert main(["check", str(path)]) == ExitStatus.OK
    assert "warning: model.geometry_check is warn: running a bundle not trained for this station: ROI 'strip'" in \
        capsys.readouterr().out
