"""Nothing is overwritten or done silently, and bad input is a clear error: exit 2 (usage) or 3 (bad input) with a
message naming the thing, never 1 (internal error)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edgead.bundle import load_bundle
from edgead.cli import main
from edgead.errors import ExitStatus


def _err(capsys) -> str:
    return capsys.readouterr().err


def _train(data, out, *extra) -> int:
    return main(["train", "--data", str(data), "--out", str(out), "--model", "padim", "--image-size", "64",
                 "--no-eval", "--quiet", "--set", "n_features=16", *extra])


# -- train --out ---------------------------------------------------------------------------------------------------

def test_train_refuses_an_existing_bundle_before_training(padim_bundle, small_station, tmp_path, capsys):
    out = tmp_path / "b"
    shutil.copytree(padim_bundle.bundle.root, out)
    before = load_bundle(out).model_hash
    assert _train(small_station.aligned, out) == ExitStatus.BAD_INPUT
    err = _err(capsys)
    assert str(out) in err and "exists (a bundle)" in err and "--force" in err
    assert load_bundle(out).model_hash == before


def test_train_refuses_a_file_and_an_existing_archive(padim_bundle, small_station, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert _train(small_station.aligned, target) == ExitStatus.BAD_INPUT
    assert "exists (a file)" in _err(capsys) and target.read_text() == "mine"
    archive = tmp_path / "b.edgead"
    archive.write_bytes(b"old archive")
    assert _train(small_station.aligned, archive) == ExitStatus.BAD_INPUT
    assert "b.edgead" in _err(capsys) and archive.read_bytes() == b"old archive"
    assert not (tmp_path / "b").exists()


def test_train_never_replaces_a_foreign_directory_even_with_force(small_station, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    assert _train(small_station.aligned, tmp_path / "mine", "--force") == ExitStatus.BAD_INPUT
    assert "not a bundle" in _err(capsys) and (tmp_path / "mine" / "keep.txt").exists()


def test_train_force_replaces_the_bundle(padim_bundle, small_station, tmp_path, capsys):
    out = tmp_path / "b"
    shutil.copytree(padim_bundle.bundle.root, out)
    assert _train(small_station.aligned, out, "--force") == ExitStatus.OK
    assert load_bundle(out).meta.input.width == 64  # the new one (the fixture's is 160 wide)


@pytest.mark.parametrize("flag, value, text", [("--batch-size", "0", "--batch-size 0"),
                                               ("--val-fraction", "1.5", "--val-fraction 1.5"),
                                               ("--target-frr", "0", "--target-frr 0.0")])
def test_train_options_out_of_range(small_station, tmp_path, capsys, flag, value, text):
    assert _train(small_station.aligned, tmp_path / "o", flag, value) == ExitStatus.BAD_INPUT
    err = _err(capsys)
    assert text in err and "must be" in err and not (tmp_path / "o").exists()


def test_train_on_one_pixel_images_is_refused(tmp_path, capsys):
    good = tmp_path / "tiny" / "train" / "good"
    good.mkdir(parents=True)
    for i in range(10):
        cv2.imwrite(str(good / f"{i:03d}.png"), np.full((1, 1, 3), 128, np.uint8))
    assert _train(tmp_path / "tiny", tmp_path / "o") == ExitStatus.BAD_INPUT
    err = _err(capsys)
    assert "000.png" in err and "1x1 px" in err and "10 of 10" in err


# -- threshold --out / --in-place ---------------------------------------------------------------------------------

def test_threshold_needs_out_or_in_place(padim_bundle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["threshold", "--bundle", str(padim_bundle.bundle.root), "--image-threshold", "1.0"])
    assert exc.value.code == ExitStatus.USAGE and "--out" in _err(capsys)


def test_threshold_out_writes_a_new_bundle_and_refuses_an_existing_one(padim_bundle, tmp_path, capsys):
    src = padim_bundle.bundle
    new = tmp_path / "v2"
    assert main(["threshold", "--bundle", str(src.root), "--image-threshold", "1.0", "--out", str(new)]) == 0
    assert load_bundle(new).meta.calibration.image.thr == pytest.approx(1.0)
    assert load_bundle(src.root).model_hash == src.model_hash  # the source is untouched
    capsys.readouterr()
    assert main(["threshold", "--bundle", str(src.root), "--image-threshold", "2.0", "--out", str(new)]) == 3
    assert "exists" in _err(capsys) and load_bundle(new).meta.calibration.image.thr == pytest.approx(1.0)


def test_threshold_in_place_on_an_archive_rewrites_the_archive(padim_bundle, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEAD_CACHE_DIR", str(tmp_path / "cache"))
    archive = tmp_path / "b.edgead"
    assert main(["pack", str(padim_bundle.bundle.root), str(archive)]) == 0
    assert main(["threshold", "--bundle", str(archive), "--image-threshold", "1.5", "--in-place"]) == 0
    assert load_bundle(archive).meta.calibration.image.thr == pytest.approx(1.5)


# -- records, update, pack, configs, inventory ----------------------------------------------------------------------

def test_records_on_a_missing_database_is_an_error_and_creates_nothing(tmp_path, capsys):
    db = tmp_path / "records.sqlite"
    assert main(["records", str(db)]) == ExitStatus.BAD_INPUT
    assert str(db) in _err(capsys) and not db.exists()
    assert main(["records", str(tmp_path)]) == ExitStatus.BAD_INPUT
    assert "is a directory" in _err(capsys)


def test_update_refuses_a_converted_bundle(padim_bundle, small_station, tmp_path, capsys):
    conv = tmp_path / "cpu"
    assert main(["convert", "--bundle", str(padim_bundle.bundle.root), "--target", "x86-cpu", "--precision", "fp32",
                 "--out", str(conv), "--latency-runs", "2"]) == 0
    capsys.readouterr()
    assert main(["update", "--bundle", str(conv), "--data", str(small_station.aligned), "--out",
                 str(tmp_path / "u")]) == ExitStatus.BAD_INPUT
    err = _err(capsys)
    assert "is converted (fp32 for x86-cpu)" in err and padim_bundle.bundle.model_hash[:12] in err
    assert not (tmp_path / "u").exists()


def test_pack_into_a_directory_names_the_file_to_use(padim_bundle, tmp_path, capsys):
    assert main(["pack", str(padim_bundle.bundle.root), str(tmp_path)]) == ExitStatus.BAD_INPUT
    err = _err(capsys)
    assert "is a directory" in err and str(tmp_path / (padim_bundle.bundle.root.name + ".edgead")) in err


@pytest.mark.parametrize("kind", ["directory", "binary", "overlong name", "overlong path"])
def test_config_paths_that_are_not_yaml_files(tmp_path, capsys, kind):
    path = {"directory": str(tmp_path), "binary": sys.executable, "overlong name": str(tmp_path / ("a" * 300)),
            "overlong path": str(tmp_path) + "/a" * 3000}[kind]
    assert main(["check", path]) == ExitStatus.BAD_INPUT
    err = _err(capsys)
    assert "config file" in err and "internal error" not in err
    assert len(err) < 1000  # an overlong path is shortened, not echoed whole
    assert {"directory": "is a directory", "binary": "binary file", "overlong name": "too long",
            "overlong path": "too long"}[kind] in err


@pytest.mark.parametrize("setting, text", [({"wave": "1"}, "stations.a.wave: expected an integer, got '1'"),
                                           ({"service": "system-d"}, "stations.a.service: 'system-d' is not one of"),
                                           ({"port": "ssh"}, "stations.a.port: expected an integer")])
def test_inventory_type_and_enum_mistakes(tmp_path, capsys, setting, text):
    inv = tmp_path / "stations.yaml"
    inv.write_text(yaml.safe_dump({"stations": {"a": {"host": "127.0.0.1", "config": "a.yaml", **setting}}}))
    assert main(["deploy", "--inventory", str(inv)]) == ExitStatus.BAD_INPUT
    assert text in _err(capsys)


# -- a full disk ---------------------------------------------------------------------------------------------------

def _can_mount_tmpfs() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


full_disk = pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs root and unshare -m to mount a tiny tmpfs")


def _on_tiny_disk(mnt: Path, *argv: str) -> subprocess.CompletedProcess:
    """``edgead ARGV`` in a private mount namespace where ``mnt`` is a 64 KiB tmpfs (a real ENOSPC)."""
    mnt.mkdir()
    script = 'mount -t tmpfs -o size=64k tmpfs "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(mnt), sys.executable, "-m", "edgead", *argv],
                          capture_output=True, text=True, timeout=600)


@full_disk
def test_disk_full_during_pack(padim_bundle, tmp_path):
    proc = _on_tiny_disk(tmp_path / "mnt", "pack", str(padim_bundle.bundle.root), str(tmp_path / "mnt" / "b.edgead"))
    assert proc.returncode == ExitStatus.BAD_INPUT, proc.stderr
    assert "bundle archive" in proc.stderr and "no space left" in proc.stderr and "df -h" in proc.stderr


@full_disk
def test_disk_full_during_train(small_station, tmp_path):
    proc = _on_tiny_disk(tmp_path / "mnt", "train", "--data", str(small_station.aligned), "--out",
                         str(tmp_path / "mnt" / "b"), "--model", "padim", "--image-size", "64", "--no-eval",
                         "--quiet", "--set", "n_features=16")
    assert proc.returncode == ExitStatus.BAD_INPUT, proc.stderr
    assert "bundle" in proc.stderr and "no space left" in proc.stderr


def test_the_refusals_are_in_the_troubleshooting_docs():
    text = (Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md").read_text()
    for message in ("exists (a bundle); nothing was written", "no space left on the device",
                    "is converted", "record database"):
        assert message in text, message
