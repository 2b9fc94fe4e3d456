"""Manifest names that escape the bundle (``..``, absolute, links) are refused by every command that reads or
writes a bundle, and nothing is written outside it."""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from edgead.bundle import load_bundle, pack_bundle, unpack_bundle, update_bundle, write_bundle
from edgead.bundle.paths import check_name
from edgead.errors import BundleError

from forge import MINIMAL_META as META
from forge import minimal_files, rehash


@pytest.fixture
def bundle(tmp_path):
    return write_bundle(tmp_path / "ws" / "b", META, minimal_files())


@pytest.mark.parametrize("name,why", [
    ("../escape", "'..'"), ("a/../../x", "'..'"), ("/etc/hostname", "absolute"), ("C:/x", "absolute"),
    ("a\\b", "backslash"), ("a//b", "normalised"), ("./a", "normalised"), ("", "empty"), ("a\nb", "control"),
])
def test_bad_names_are_refused(name, why):
    with pytest.raises(BundleError, match=why):
        check_name(name, "bundle b")


def _list_in_manifest(root: Path, name: str) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"][name] = "0" * 64
    (root / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/hostname"])
def test_a_manifest_naming_a_file_outside_is_refused_by_loading(bundle, name):
    _list_in_manifest(bundle.root, name)
    with pytest.raises(BundleError, match="escapes the bundle"):
        load_bundle(bundle.root)


def test_a_symlink_in_the_bundle_is_refused_by_loading_and_pack(bundle, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("plant secrets")
    os.symlink(outside, bundle.root / "notes.txt")
    _list_in_manifest(bundle.root, "notes.txt")
    rehash(bundle.root)  # the attacker recomputes the hashes: the link's target hashes fine
    with pytest.raises(BundleError, match="symbolic link"):
        load_bundle(bundle.root)
    with pytest.raises(BundleError, match="symbolic link"):
        pack_bundle(bundle.root, tmp_path / "out.edgead")
    assert not (tmp_path / "out.edgead").exists()


def test_a_linked_folder_is_refused(bundle, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.bin").write_bytes(b"x")
    os.symlink(tmp_path / "elsewhere", bundle.root / "extra")
    _list_in_manifest(bundle.root, "extra/x.bin")
    rehash(bundle.root)
    with pytest.raises(BundleError, match="extra/x.bin is \\(or passes through\\) a symbolic link"):
        load_bundle(bundle.root)


def test_an_unlisted_symlink_is_an_extra_file(bundle, tmp_path):
    os.symlink(tmp_path, bundle.root / "loop")
    with pytest.raises(BundleError, match="not in the manifest: loop"):
        load_bundle(bundle.root)


@pytest.mark.parametrize("argv", [["info", "{b}"], ["pack", "{b}", "{out}/b.edgead"],
                                  ["threshold", "--bundle", "{b}", "--image-threshold", "3", "--in-place"],
                                  ["convert", "--bundle", "{b}", "--target", "x86-cpu", "--out", "{out}/conv"],
                                  ["update", "--bundle", "{b}", "--data", "{out}", "--out", "{out}/upd"],
                                  ["sign", "{b}", "--key", "{key}"]],
                         ids=lambda a: a[0])
def test_every_command_refuses_a_manifest_that_escapes(bundle, tmp_path, monkeypatch, capsys, argv, bundle_key):
    """The old threshold bug: staging in $TMPDIR and copying manifest names wrote outside both folders."""
    from edgead.cli import main

    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "out").mkdir()
    _list_in_manifest(bundle.root, "../../pwned")
    args = [a.format(b=bundle.root, out=tmp_path / "out", key=bundle_key.key) for a in argv]
    assert main(args) == 3
    assert "escapes the bundle" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "ws" / "pwned").exists()
    assert not list((tmp_path / "tmp").iterdir()) and not list((tmp_path / "out").iterdir())
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["b"]  # no staging folder left beside it


def test_update_in_place_stages_beside_the_bundle_and_cleans_up(bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "nowhere"))  # not used: staging lives beside the bundle
    meta = {**bundle.meta.to_dict(), "thresholds": {"image": 3.0, "pixel": 2.0, "method": "manual"}}
    new = update_bundle(bundle, meta=meta)
    assert new.meta.calibration.image.thr == 3.0
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["b"]


def test_writers_refuse_escaping_names(tmp_path):
    for name in ("../x.bin", "/tmp/x.bin"):
        with pytest.raises(BundleError, match="escapes the bundle"):
            write_bundle(tmp_path / "b", META, {"model.onnx": b"onnx", name: b"x"})
    assert not (tmp_path / "x.bin").exists() and not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_archive_member_names_are_refused_and_nothing_is_left(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEAD_CACHE_DIR", str(tmp_path / "cache"))
    evil = tmp_path / "evil.edgead"
    with tarfile.open(evil, "w") as tar:
        for name in ("manifest.json", "/abs/path"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(BundleError, match="unsafe member"):
        load_bundle(evil)
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] if (tmp_path / "cache").exists() else []
    assert leftovers == []


@pytest.mark.parametrize("make", ["symlink", "hardlink", "device", "fifo", "dir", "dup"])
def test_archive_links_devices_and_duplicates_are_refused(tmp_path, make):
    evil = tmp_path / "evil.edgead"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("model.onnx")
        if make == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif make == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "manifest.json"
        elif make == "device":
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        elif make == "fifo":
            info.type = tarfile.FIFOTYPE
        elif make == "dir":
            info.type = tarfile.DIRTYPE
        if make == "dup":
            info.size = 1
            tar.addfile(info, io.BytesIO(b"a"))
            tar.addfile(info, io.BytesIO(b"b"))
        else:
            tar.addfile(info)
    with pytest.raises(BundleError, match="unsafe member|appears twice"):
        unpack_bundle(evil, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evil.edgead"]  # the temp folder is gone too
