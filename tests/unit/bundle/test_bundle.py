"""Bundle format: hashes verified on load, tampered/partial/foreign bundles refused with clear errors."""
from __future__ import annotations

import json
import tarfile

import pytest
import yaml

from edgead.bundle import FORMAT_VERSION, load_bundle, pack_bundle, unpack_bundle, update_bundle, write_bundle
from edgead.errors import BundleError

from forge import npz_bytes

META = {"model": {"type": "patchcore", "params": {}}, "input": {"height": 64, "width": 96, "channels": 3},
        "thresholds": {"image": 1.0, "pixel": 2.0, "method": "frr"},
        "normalisation": {"image_lo": 0.1, "pixel_lo": 0.2}}


@pytest.fixture
def bundle(tmp_path):
    return write_bundle(tmp_path / "b", META, {"model.onnx": b"onnx-bytes", "state.npz": npz_bytes()})


def test_round_trip(bundle):
    b = load_bundle(bundle.root)
    assert b.meta.format_version == FORMAT_VERSION
    assert b.input_spec.height == 64 and b.input_spec.width == 96
    assert b.model_hash == bundle.model_hash and len(b.model_hash) == 64
    assert set(b.manifest["files"]) == {"model.onnx", "state.npz", "edgead.yaml"}


def test_tampered_file_is_refused(bundle):
    (bundle.root / "model.onnx").write_bytes(b"onnx-bytez")
    with pytest.raises(BundleError, match="model.onnx does not match its sha256"):
        load_bundle(bundle.root)


def test_truncated_file_is_refused(bundle):
    (bundle.root / "state.npz").write_bytes(b"npz")
    with pytest.raises(BundleError, match="state.npz"):
        load_bundle(bundle.root)


def test_missing_file_is_refused(bundle):
    (bundle.root / "state.npz").unlink()
    with pytest.raises(BundleError, match="state.npz is missing"):
        load_bundle(bundle.root)


def test_extra_file_is_refused(bundle):
    (bundle.root / "evil.py").write_text("print()")
    with pytest.raises(BundleError, match="not in the manifest: evil.py"):
        load_bundle(bundle.root)


def test_tampered_metadata_is_refused(bundle):
    meta = yaml.safe_load((bundle.root / "edgead.yaml").read_text())
    meta["thresholds"]["image"] = 99.0
    (bundle.root / "edgead.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(BundleError, match="edgead.yaml does not match"):
        load_bundle(bundle.root)


def test_wrong_format_version_is_refused(bundle):
    manifest = json.loads((bundle.root / "manifest.json").read_text())
    manifest["format_version"] = 99
    (bundle.root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 99.*reads version 1"):
        load_bundle(bundle.root)


def test_missing_manifest_and_missing_dir(tmp_path, bundle):
    (bundle.root / "manifest.json").unlink()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        load_bundle(bundle.root)
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not a bundle"):
        write_bundle(tmp_path / "x", META, {"model.onnx": b"o"})


def test_archive_round_trip_and_truncation(tmp_path, bundle, monkeypatch):
    monkeypatch.setenv("EDGEAD_CACHE_DIR", str(tmp_path / "cache"))
    archive = pack_bundle(bundle.root, tmp_path / "m.edgead")
    b = load_bundle(archive)
    assert b.model_hash == bundle.model_hash
    data = archive.read_bytes()
    (tmp_path / "cut.edgead").write_bytes(data[: len(data) // 3])
    with pytest.raises(BundleError):
        load_bundle(tmp_path / "cut.edgead")
    (tmp_path / "junk.edgead").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(BundleError, match="corrupt or truncated"):
        load_bundle(tmp_path / "junk.edgead")


def test_archive_with_unsafe_member_is_refused(tmp_path):
    evil = tmp_path / "evil.edgead"
    (tmp_path / "f").write_text("x")
    with tarfile.open(evil, "w") as tar:
        tar.add(tmp_path / "f", arcname="../escape")
    with pytest.raises(BundleError, match="unsafe member"):
        unpack_bundle(evil, tmp_path / "out")


def test_update_in_place_changes_hash(bundle):
    meta = dict(bundle.meta.to_dict(), thresholds={"image": 3.0, "pixel": 2.0, "method": "manual"})
    new = update_bundle(bundle, meta=meta)
    assert new.root == bundle.root
    assert new.meta.calibration.image.thr == 3.0
    assert new.model_hash != bundle.model_hash
    assert (new.root / "state.npz").read_bytes() == npz_bytes()
