"""Camera URLs: parsing, the scheme table, parameter validation and precedence."""
from __future__ import annotations

import pytest

from edgead.camera import SCHEMES, CameraConfig, TriggerMode, open_camera
from edgead.camera.config import parse_url, resolve_params
from edgead.errors import ConfigError


def test_parse_url_variants(tmp_path):
    url = parse_url("folder:///data/parts?fps=10&loop=1")
    assert (url.scheme, url.target, url.query) == ("folder", "/data/parts", {"fps": "10", "loop": "1"})
    assert parse_url("aravis://127.0.0.1?trigger=software").target == "127.0.0.1"
    assert parse_url("/videos/line3.mp4").scheme == "file"
    assert parse_url(str(tmp_path)).scheme == "folder"
    rtsp = parse_url("rtsp://10.0.0.5:554/stream1?channel=2")
    assert rtsp.target == "rtsp://10.0.0.5:554/stream1?channel=2" and rtsp.query == {}
    with pytest.raises(ConfigError, match="given twice"):
        parse_url("folder:///x?fps=1&fps=2")


def test_unknown_scheme_and_parameter():
    with pytest.raises(ConfigError, match="unknown scheme 'gige'"):
        open_camera("gige://serial=1")
    with pytest.raises(ConfigError, match="did you mean 'exposure_us'"):
        open_camera("aravis://127.0.0.1?exposure=5000")
    with pytest.raises(ConfigError, match="bad value fps='fast'"):
        open_camera("folder:///tmp?fps=fast")
    with pytest.raises(ConfigError, match="trigger 'sometimes' is unknown"):
        open_camera("folder:///tmp?trigger=sometimes")
    assert {"folder", "file", "opencv", "rtsp", "aravis"} <= set(SCHEMES)


def test_url_query_wins_over_config():
    spec = {"timeout_ms": int, "trigger": TriggerMode.parse, "exposure_us": float}
    config = CameraConfig(timeout_ms=500, trigger=TriggerMode.SOFTWARE, exposure_us=100.0)
    params = resolve_params(parse_url("x://a?timeout_ms=250"), spec, {"timeout_ms": 2000}, config)
    assert params == {"timeout_ms": 250, "trigger": TriggerMode.SOFTWARE, "exposure_us": 100.0}
    assert TriggerMode.parse("Free-Run") is TriggerMode.FREE_RUN
