"""The demo's station replays its captures preloaded (decoded once) when they fit the folder camera's cap."""
from __future__ import annotations

from edgead.camera import check_url
from edgead.demo.run import _station_config


def _url(tmp_path, n: int) -> str:
    captures = tmp_path / "captures"
    captures.mkdir()
    for i in range(n):
        (captures / f"{i:06d}.png").write_bytes(b"")
    return _station_config(tmp_path, captures, tmp_path / "ref.png", "/dev/null", tmp_path / "key")["camera"]["url"]


def test_the_demo_preloads_captures_that_fit(tmp_path):
    url = _url(tmp_path, 3)
    assert check_url(url)["preload"] is True


def test_the_demo_decodes_per_part_when_the_captures_exceed_the_cap(tmp_path, monkeypatch):
    import edgead.camera.folder as folder

    monkeypatch.setattr(folder, "PRELOAD_MAX_MB", 1)  # 5 frames of 256x320 RGB: 1.2 MiB
    assert check_url(_url(tmp_path, 5))["preload"] is False
