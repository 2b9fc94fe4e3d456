"""Bounded archives and arrays: a sparse-tar archive and an npz bomb are refused within a memory and disk bound
(each measured in a child process: its peak RSS, and the blocks left on disk)."""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgead.bundle import load_bundle, write_bundle
from edgead.bundle.arrays import ArrayCaps, caps_for, load_npz, read_headers
from edgead.errors import BundleError

from forge import MINIMAL_META as META
from forge import npz_bytes as _npz
from forge import rehash
GIB = 1 << 30
RSS_BOUND_MB = 250  # the child imports numpy and edgead.bundle (~60 MB here); a 1 GiB allocation would show
DISK_BOUND_BYTES = 1 << 20


def _child(code: str, env_cache: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``code`` in a fresh Python; returns the process and its peak RSS in MB (Linux ru_maxrss is in KiB)."""
    wrapper = (f"import resource, subprocess, sys\n"
               f"p = subprocess.run([sys.executable, '-c', {code!r}], capture_output=True, text=True, "
               f"env={{'EDGEAD_CACHE_DIR': {str(env_cache)!r}, 'PATH': '/usr/bin:/bin'}})\n"
               f"print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
               f"sys.stderr.write(p.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=300)
    rc, rss_kib = proc.stdout.split()
    proc.returncode = int(rc)
    return proc, int(rss_kib) / 1024


def _disk_bytes(root: Path) -> int:
    """Blocks actually used under ``root`` (sparse files count what they occupy)."""
    return sum(p.lstat().st_blocks * 512 for p in root.rglob("*")) if root.exists() else 0


@pytest.fixture
def bundle(tmp_path):
    return write_bundle(tmp_path / "b", META, {"model.onnx": b"onnx", "state.npz": _npz(w=np.arange(16.0))})


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is needed to write a sparse member")
def test_sparse_tar_archive_is_refused_within_memory_and_disk_bounds(bundle, tmp_path):
    """The report: a 10 KB .edgead wrote 2.1 GiB into the bundle cache. Here a 1 GiB sparse member."""
    stage = tmp_path / "stage"
    shutil.copytree(bundle.root, stage)
    with open(stage / "state.npz", "r+b") as f:  # the sparse member replaces the state
        f.truncate(GIB)
    archive = tmp_path / "sparse.edgead"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(archive), "-C", str(stage), "."], check=True)
    assert archive.stat().st_size < 64 * 1024
    with tarfile.open(archive) as tar:
        assert any(m.issparse() for m in tar.getmembers())
    cache = tmp_path / "cache"
    proc, rss_mb = _child(f"from edgead.bundle import load_bundle; load_bundle({str(archive)!r})", cache)
    assert proc.returncode != 0 and "BundleError" in proc.stderr and "sparse" in proc.stderr, proc.stderr
    assert rss_mb < RSS_BOUND_MB, f"peak RSS {rss_mb:.0f} MB"
    assert _disk_bytes(cache) < DISK_BOUND_BYTES  # nothing unpacked, no temp folder left
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_archive_whose_headers_declare_more_than_it_holds_is_refused(tmp_path):
    from edgead.bundle.archive import check_members

    info = tarfile.TarInfo("state.npz")
    info.size = 10 * GIB
    with pytest.raises(BundleError, match="more than the 2048-byte archive holds"):
        check_members([info], tmp_path / "x.edgead", 2048, 100 * GIB)
    info.size = 100
    with pytest.raises(BundleError, match="only 150 are free"):
        check_members([info], tmp_path / "x.edgead", 4096, 150)
    many = [tarfile.TarInfo(f"f{i}") for i in range(300)]
    with pytest.raises(BundleError, match="300 members"):
        check_members(many, tmp_path / "x.edgead", GIB, GIB)


def _write_bomb(path: Path, n_float32: int) -> None:
    """An .npz whose one array is ``n_float32`` zeros, deflated, streamed (never held in memory)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (n_float32,)})
    chunk = bytes(1 << 22)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("w.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            left = n_float32 * 4
            while left:
                f.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))


def test_npz_bomb_is_refused_within_a_memory_bound(bundle, tmp_path):
    """The report: a 27 MB state.npz decompressed to 6.4 GB RSS in `edgead update`. Here 1 GiB from about 1 MB."""
    _write_bomb(bundle.root / "state.npz", GIB // 4)
    assert (bundle.root / "state.npz").stat().st_size < 8 << 20
    rehash(bundle.root)  # an attacker's bundle: hashes recomputed (no trusted signature, of course)
    code = (f"from edgead.bundle import load_bundle; "
            f"load_bundle({str(bundle.root)!r}).load_arrays('state.npz')")
    proc, rss_mb = _child(code, tmp_path / "cache")
    assert proc.returncode != 0 and "above the 128 bytes the bundle's metadata allows" in proc.stderr, proc.stderr
    assert rss_mb < RSS_BOUND_MB, f"peak RSS {rss_mb:.0f} MB"


def test_a_header_declaring_terabytes_is_a_bundle_error_not_a_memory_error(tmp_path):
    path = tmp_path / "state.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", header.getvalue() + bytes(64))
    with pytest.raises(BundleError, match="declares 4398046511104 bytes"):
        load_npz(path, ArrayCaps(10, 1 << 50))


def test_object_arrays_and_too_many_arrays_are_refused(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "o.npz", "w") as zf:
        zf.writestr("o.npy", buf.getvalue())
    with pytest.raises(BundleError, match="objects or records are refused"):
        read_headers(tmp_path / "o.npz")
    (tmp_path / "m.npz").write_bytes(_npz(a=np.zeros(2), b=np.zeros(2), c=np.zeros(2)))
    with pytest.raises(BundleError, match="holds 3 arrays; the bundle's metadata allows 2"):
        load_npz(tmp_path / "m.npz", ArrayCaps(2, 1 << 20))


def test_caps_come_from_the_metadata_and_honest_arrays_load(bundle):
    assert bundle.meta.to_dict()["arrays"] == {"state.npz": {"count": 1, "nbytes": 128}}
    assert caps_for(bundle.meta, "state.npz") == ArrayCaps(1, 128)
    np.testing.assert_array_equal(load_bundle(bundle.root).load_arrays("state.npz")["w"], np.arange(16.0))
    # a bundle from before the record gets the legacy caps
    assert caps_for(None, "state.npz").max_arrays == 4096


def test_a_bigger_state_than_recorded_is_refused_even_when_consistent(bundle):
    (bundle.root / "state.npz").write_bytes(_npz(w=np.arange(32.0)))
    rehash(bundle.root)
    with pytest.raises(BundleError, match="brings the total to 256 bytes, above the 128 bytes"):
        load_bundle(bundle.root).load_arrays("state.npz")


def test_update_refuses_the_bomb(padim_bundle, small_station, tmp_path, capsys):
    """`edgead update` (the command of the report) reads the state through the caps."""
    from edgead.cli import main

    src = tmp_path / "bundle"
    shutil.copytree(padim_bundle.bundle.root, src)
    (src / "signature.json").unlink()
    n = load_bundle(src).meta.arrays["state.npz"].nbytes
    _write_bomb(src / "state.npz", 4 * n)  # 16x what the metadata records
    rehash(src)
    code = main(["update", "--bundle", str(src), "--data", str(small_station.aligned), "--out", str(tmp_path / "o"),
                 "--quiet"])
    assert code == 3
    assert "the bundle's metadata allows" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
