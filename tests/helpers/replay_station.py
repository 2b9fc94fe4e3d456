"""The station config the drift, shadow, relabel and operator-page tests share: the synthetic station's captures
replayed by a camera-triggered daemon (``folder://``, the discrete PLC twin on ``loop://``), trusting the tests'
signing key. Extra sections are merged over it."""
from __future__ import annotations

from pathlib import Path

import yaml


def replay_config(tmp_path: Path, station, bundle, security: dict, captures: Path | None = None,
                  fps: float = 0, loop: bool = False, **sections) -> dict:
    cfg = {
        "trigger": "camera",
        "camera": {"url": f"folder://{captures or station.captures}?fps={fps:g}&loop={int(loop)}&pattern=*.png"},
        "reference": str(station.reference),
        "model": {"bundle": str(bundle.root)},
        "plc": {"url": "loop://", "protocol": "discrete", "discrete": {"pulse_ms": 1, "gap_ms": 1}},
        "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "images"),
                    "save_images": "all"},
        "observe": {"metrics_listen": None},
        "security": security,
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def write_config(tmp_path: Path, cfg: dict, name: str = "station.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def step_to_end(station, after_part=None) -> list:
    """Step an open :class:`~edgead.daemon.station.Station` until its replay ends; the outcomes, in order
    (``after_part(outcome)`` is called after each, e.g. to pace the line)."""
    from edgead.camera import EndOfStream

    seen = []
    while True:
        try:
            out = station.step()
        except EndOfStream:
            return seen
        if out is not None:
            seen.append(out)
            if after_part is not None:
                after_part(out)
