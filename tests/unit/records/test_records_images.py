"""ImageArchive: atomic files, overlay, oldest-first quota rotation, never touching foreign files."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgead.errors import ConfigError, ImageError
from edgead.records import ChannelOrder, ImageArchive, ImageFormat, MapScale
from edgead.records.images import INDEX_NAME, TMP_PREFIX, heatmap_overlay

T0 = 1_795_000_000_000_000_000


def noise(h=64, w=96, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def test_save_png_round_trip_and_overlay(tmp_path):
    img = noise()
    amap = np.zeros((16, 16), np.float32)
    amap[4:8, 4:8] = 1.0
    with ImageArchive(tmp_path / "rej", quota_mb=10) as archive:
        saved = archive.save(img, "A/17 x", anomaly_map=amap, t_ns=T0 + 123_456_789)
    assert saved.image.name == "20261118T110640.123456Z_A_17_x.png"
    assert saved.overlay.name == "20261118T110640.123456Z_A_17_x_overlay.png"
    back = cv2.imread(str(saved.image), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(back, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))  # RGB in, lossless PNG on disk
    overlay = cv2.imread(str(saved.overlay))
    assert overlay.shape == back.shape
    assert not any(p.name.startswith(TMP_PREFIX) for p in saved.image.parent.iterdir())


def test_overlay_colours_follow_the_map():
    img = np.full((40, 40, 3), 128, np.uint8)
    amap = np.zeros((10, 10), np.float32)
    amap[:, 5:] = 1.0
    out = heatmap_overlay(img, amap, alpha=1.0)
    hot, cold = out[20, 35], out[20, 5]
    assert hot[2] >= 100 and hot[0] < 30 and hot[1] < 30  # JET: 1.0 is (dark) red, BGR order
    assert cold[0] >= 100 and cold[2] < 30 and cold[1] < 30  # 0.0 is (dark) blue
    stretched = heatmap_overlay(img, amap * 0.01, scale=MapScale.MINMAX, alpha=1.0)
    assert np.array_equal(stretched, out)


def test_gray_and_jpeg(tmp_path):
    gray = noise(c=1)[..., 0]
    with ImageArchive(tmp_path, quota_mb=1, fmt=ImageFormat.JPEG, jpeg_quality=80, order=ChannelOrder.BGR) as a:
        saved = a.save(gray, "g1")
    assert saved.image.suffix == ".jpg" and saved.overlay is None
    assert cv2.imread(str(saved.image)).shape == (64, 96, 3)


def test_quota_rotation_is_oldest_first(tmp_path):
    archive = ImageArchive(tmp_path, quota_mb=0.25)
    # incompressible noise: about 49 KiB per PNG, so 12 saves overflow the 256 KiB quota
    names = [archive.save(noise(128, 128, seed=i), f"P{i}", t_ns=T0 + i).image.name for i in range(12)]
    kept = [p.name for p in archive.files()]
    assert archive.used_bytes <= archive.quota_bytes
    assert kept == names[-len(kept):] and 2 <= len(kept) < 12  # a suffix: the oldest went first
    on_disk = sorted(p.name for p in tmp_path.iterdir() if p.name != INDEX_NAME)
    assert on_disk == sorted(kept)
    # the index survives a restart: a new archive keeps rotating the same files, oldest first
    again = ImageArchive(tmp_path, quota_mb=0.25)
    assert [p.name for p in again.files()] == kept
    history = kept + [again.save(noise(128, 128, seed=i), f"Q{i}", t_ns=T0 + i).image.name for i in range(4)]
    now = [p.name for p in again.files()]
    assert now == history[-len(now):] and len(now) < len(history)


def test_never_deletes_foreign_files(tmp_path):
    foreign = tmp_path / "20000101T000000.000000Z_P0.png"  # looks like ours, but the archive did not write it
    foreign.write_bytes(b"x" * 400_000)
    notes = tmp_path / "notes.txt"
    notes.write_text("operator notes")
    archive = ImageArchive(tmp_path, quota_mb=0.2)
    for i in range(10):
        archive.save(noise(128, 128, seed=i), f"P{i}", t_ns=T0 + i)
    assert foreign.read_bytes() == b"x" * 400_000 and notes.read_text() == "operator notes"
    assert archive.used_bytes <= archive.quota_bytes


def test_name_clash_does_not_overwrite(tmp_path):
    clash = tmp_path / "20261118T110640.000000Z_A1.png"
    clash.write_bytes(b"someone else's")
    archive = ImageArchive(tmp_path, quota_mb=1)
    saved = archive.save(noise(), "A1", t_ns=T0 + 1_000_000_000 - 1_000_000_000)
    assert clash.read_bytes() == b"someone else's"
    assert saved.image.name == "20261118T110640.000000Z_A1-1.png"


def test_torn_index_line_and_stale_temp_are_recovered(tmp_path):
    archive = ImageArchive(tmp_path, quota_mb=1)
    first = archive.save(noise(), "A1", t_ns=T0).image
    with open(tmp_path / INDEX_NAME, "a") as fh:
        fh.write('{"name": "half')  # a crash mid-append
    (tmp_path / f"{TMP_PREFIX}x.png").write_bytes(b"partial")
    again = ImageArchive(tmp_path, quota_mb=1)
    assert again.files() == [first]
    assert not (tmp_path / f"{TMP_PREFIX}x.png").exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="quota_mb"):
        ImageArchive(tmp_path, quota_mb=0)
    with pytest.raises(ImageError, match="uint8"):
        ImageArchive(tmp_path, quota_mb=1).save(np.zeros((8, 8), np.float32), "f")


def test_the_archive_keeps_no_list_of_its_files_in_memory(tmp_path):
    """The list of archived files (up to the quota: 100 000 entries for 2 GB of small images) lived in memory and
    grew with every reject (1.1 MB over a 10 000-part run); it stays on disk in the index, read when rotating."""
    archive = ImageArchive(tmp_path, quota_mb=0.25)
    for i in range(12):
        archive.save(noise(128, 128, seed=i), f"P{i}", t_ns=T0 + i)
    sized = [k for k, v in vars(archive).items() if isinstance(v, (list, dict, set, tuple)) and len(v) >= 2]
    assert sized == ["_params"], sized  # only the encoder parameters
    reopened = ImageArchive(tmp_path, quota_mb=0.25)
    assert reopened.used_bytes == archive.used_bytes == sum(p.stat().st_size for p in archive.files())
