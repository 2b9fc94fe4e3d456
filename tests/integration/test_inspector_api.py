"""edgead.Inspector judges as the station does: the same verdicts and scores as the daemon's real loop on the same
captures (alignment, the area rule), a typed result, and clear errors for what it cannot judge."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgead import InspectionResult, Inspector, Verdict
from edgead.errors import ConfigError, ImageError

pytestmark = pytest.mark.timeout(600)


def _daemon_outcomes(tmp_path: Path, station, bundle, min_area: int) -> dict[str, tuple[str, float | None]]:
    from edgead.daemon.config import load_station
    from edgead.demo.plc_peer import PtyPair, run_with_plc

    if not shutil.which("socat"):
        pytest.skip("socat not installed (Debian package socat)")
    from edgead.bundle.signing import read_signature

    cfg = {"security": {"trusted_keys": [read_signature(bundle.root).public_key.to_line()]},
           "camera": {"url": f"folder://{station.captures}?fps=0&pattern=*.png"}, "reference": str(station.reference),
           "model": {"bundle": str(bundle.root)}, "decision": {"min_defect_area_px": min_area},
           "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "rejects")},
           "observe": {"metrics_listen": None}}
    seen = []
    with PtyPair(tmp_path) as pty:
        cfg["plc"] = {"url": pty.station, "protocol": "ascii"}
        (tmp_path / "station.yaml").write_text(yaml.safe_dump(cfg))
        run_with_plc(load_station(tmp_path / "station.yaml"), pty.plc, 24, on_part=seen.append)
    return {Path(o.source).name: (o.verdict.value, o.score) for o in seen}


@pytest.mark.parametrize("min_area", [0, 1050])
def test_same_verdicts_and_scores_as_the_daemon(padim_bundle, small_station, tmp_path, min_area):
    daemon = _daemon_outcomes(tmp_path, small_station, padim_bundle.bundle, min_area)
    assert len(daemon) == 24
    with Inspector(padim_bundle.bundle.root, reference=small_station.reference, min_defect_area_px=min_area) as insp:
        assert insp.aligns
        for name, (verdict, score) in daemon.items():
            got = insp.inspect(small_station.captures / name)
            assert got.verdict.value == verdict, name
            if score is not None:  # the same frames, the same engine: the same float32 outputs
                assert got.score == pytest.approx(score, abs=1e-6)


def test_the_area_rule_changes_verdicts(padim_bundle, small_station):
    """The parametrised test above has teeth: the area threshold used there turns some rejects into accepts (the
    rejects' areas here: about 450 to 2700 px, a third below 1050)."""
    frames = sorted(small_station.captures.glob("*.png"))
    with Inspector(padim_bundle.bundle.root, reference=small_station.reference) as plain, \
            Inspector(padim_bundle.bundle.root, reference=small_station.reference, min_defect_area_px=1050) as area:
        verdicts = [(plain.inspect(f).verdict, area.inspect(f).verdict) for f in frames]
    assert any(a is Verdict.REJECT and b is Verdict.ACCEPT for a, b in verdicts)
    assert not any(a is Verdict.ACCEPT and b is Verdict.REJECT for a, b in verdicts)


def test_typed_result_with_the_bundles_own_reference(padim_bundle, small_station):
    assert "reference.png" in padim_bundle.bundle.manifest["files"]  # trained on an aligned dataset
    capture = sorted(small_station.captures.glob("*.png"))[0]
    with Inspector(padim_bundle.bundle.root, align=True) as insp:
        r = insp.inspect(capture)
    assert isinstance(r, InspectionResult) and r.verdict in (Verdict.ACCEPT, Verdict.REJECT)
    spec = padim_bundle.bundle.input_spec
    assert r.anomaly_map.dtype == np.float32 and r.anomaly_map.shape == (spec.height, spec.width)
    assert r.passed == (r.verdict is Verdict.ACCEPT) and r.passed == (r.score < 0.5)
    assert np.isfinite(r.raw_score) and r.defect_area_px >= 0 and 0.0 < r.align_quality <= 1.0
    assert set(r.timings_ms) == {"align", "infer", "decide", "total"} and r.timings_ms["total"] > 0


def test_arrays_paths_and_what_cannot_be_judged(padim_bundle, small_station):
    good = sorted((small_station.aligned / "test" / "good").glob("*.png"))[0]
    with Inspector(padim_bundle.bundle.root) as insp:
        assert not insp.aligns
        from edgead.data import Color, load_image

        rgb = load_image(good, Color.RGB)
        by_path, by_array = insp.inspect(good), insp.inspect(rgb)
        assert by_array.score == by_path.score and by_array.verdict == by_path.verdict
        assert insp.inspect(rgb.mean(axis=2).astype(np.uint8)).verdict in (Verdict.ACCEPT, Verdict.REJECT)  # grey
        with pytest.raises(ImageError, match="float64, expected uint8"):
            insp.inspect(rgb.astype(np.float64))
        with pytest.raises(ImageError, match="shape"):
            insp.inspect(np.zeros((4, 4, 2), np.uint8))
    with Inspector(padim_bundle.bundle.root, align=True) as insp:
        r = insp.inspect(np.zeros((20, 20, 3), np.uint8))  # cannot be aligned: never an accept
    assert r.verdict is Verdict.NO_READ and r.score is None and "alignment" in r.error


def test_align_without_a_reference_is_a_config_error(padim_bundle, tmp_path):
    from edgead.bundle import write_bundle

    src = padim_bundle.bundle
    files = {n: src.root / n for n in src.manifest["files"] if n not in ("reference.png", "edgead.yaml")}
    write_bundle(tmp_path / "no-ref", src.meta, files)
    with pytest.raises(ConfigError, match="carries no reference image"):
        Inspector(tmp_path / "no-ref", align=True)


def test_trusted_keys_admit_as_a_station_does(padim_bundle, bundle_key, small_station, tmp_path):
    """With ``trusted_keys`` the Python API refuses a bundle no listed key signed, naming the key."""
    from edgead.bundle.signing import read_public_key, write_key_pair
    from edgead.bundle.signing import TrustError

    with Inspector(padim_bundle.bundle.root, trusted_keys=[bundle_key.line]) as insp:
        image = sorted((small_station.aligned / "test" / "good").glob("*.png"))[0]
        assert insp.inspect(image).verdict in (Verdict.ACCEPT, Verdict.REJECT)
    _, other = write_key_pair(tmp_path / "other", "other")
    with pytest.raises(TrustError, match=bundle_key.key_id):
        Inspector(padim_bundle.bundle.root, trusted_keys=[read_public_key(other).to_line()])
