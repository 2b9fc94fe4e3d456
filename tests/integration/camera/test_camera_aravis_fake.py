"""aravis://fake: Aravis' in-process fake camera (no network at all)."""
from __future__ import annotations

import pytest

from edgead.camera import open_camera


def test_fake_free_run(aravis_available):
    with open_camera("aravis://fake?timeout_ms=2000") as cam:
        assert cam.info.model == "Fake" and cam.info.width == 512
        frames = [cam.grab() for _ in range(3)]
    assert [f.frame_id for f in frames] == [0, 1, 2]
    assert frames[0].image.shape == (512, 512, 1)


@pytest.mark.parametrize("fmt", ["RGB8", "BayerRG8"])
def test_fake_color_formats(aravis_available, fmt):
    with open_camera(f"aravis://fake?pixel_format={fmt}") as cam:
        frame = cam.grab()
        assert cam.info.pixel_format == fmt
    assert frame.image.shape == (512, 512, 3)


def test_fake_rejects_unknown_pixel_format(aravis_available):
    from edgead.errors import ConfigError

    with pytest.raises(ConfigError, match="pixel_format"):
        open_camera("aravis://fake?pixel_format=Mono12")
