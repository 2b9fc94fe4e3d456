"""``folder://DIR?fps=10&loop=0&pattern=*.png&sort=name``: replay a folder of images (demo, offline re-inspection).

``fps=0`` delivers frames as fast as asked; ``loop=1`` repeats forever; otherwise the end of the folder raises
:class:`~edgead.camera.base.EndOfStream` so a replay run can finish cleanly.

Example:
    >>> with open_camera("folder:///data/parts?fps=0&sort=natural") as cam:   # doctest: +SKIP
    ...     frame = cam.grab()
    ...     frame.source
    'part_0001.png'
"""
from __future__ import annotations

import re
import time
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgead.camera.base import Camera, CameraInfo, EndOfStream, TriggerMode, as_hwc_uint8, now_ns
from edgead.camera.config import COMMON_PARAMS, CameraConfig, CameraUrl, resolve_params, to_bool
from edgead.errors import CameraError, ConfigError


class SortOrder(str, Enum):
    """Replay order of the files."""

    NAME = "name"  # plain string order
    NATURAL = "natural"  # img2 before img10
    MTIME = "mtime"  # oldest first


def _natural_key(path: Path) -> list:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", path.name)]


SORT_KEYS: dict[SortOrder, Callable[[Path], Any]] = {
    SortOrder.NAME: lambda p: p.name,
    SortOrder.NATURAL: _natural_key,
    SortOrder.MTIME: lambda p: (p.stat().st_mtime_ns, p.name),
}

PARAMS = {**COMMON_PARAMS, "fps": float, "loop": to_bool, "pattern": str, "sort": SortOrder}
DEFAULTS = {"fps": 0.0, "loop": False, "pattern": "*.png", "sort": SortOrder.NAME, "timeout_ms": 2000,
            "trigger": TriggerMode.FREE_RUN, "reconnect_max_ms": 5000}


def read_frame_file(path: Path, where: str) -> np.ndarray:
    """An image file as a camera delivers it: uint8 ``[H, W, C]``, mono or RGB, as stored (the folder camera's
    frames, and the deploy self-test's samples).

    Raises:
        CameraError: unreadable or undecodable, naming ``where`` and the file.
    """
    import cv2

    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as exc:
        raise CameraError(f"{where}: cannot read {Path(path).name!r} ({exc.strerror or exc})") from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise CameraError(f"{where}: cannot decode {Path(path).name!r}", hint="remove or replace the file")
    return as_hwc_uint8(image, f"{where}: {Path(path).name}")


class FolderCamera(Camera):
    """Replays image files in a fixed order, paced at ``fps`` in free-run (software trigger: one per trigger)."""

    scheme = "folder"

    def __init__(self, url: str, directory: str | Path, *, fps: float = 0.0, loop: bool = False,
                 pattern: str = "*.png", sort: SortOrder = SortOrder.NAME, **common: Any):
        super().__init__(url, **{k: v for k, v in common.items() if k in ("trigger", "timeout_ms")})
        if fps < 0:
            raise ConfigError(f"camera {url!r}: fps={fps} must be >= 0 (0 = as fast as asked)")
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise CameraError(f"camera {url!r}: folder {str(self.directory)!r} does not exist")
        self.files = sorted((p for p in self.directory.glob(pattern) if p.is_file()), key=SORT_KEYS[sort])
        if not self.files:
            raise CameraError(f"camera {url!r}: no file matches {pattern!r} in {str(self.directory)!r}",
                              hint="check the folder and the pattern= parameter")
        self.fps, self.loop = float(fps), bool(loop)
        self._index = 0
        self._next_t = 0.0
        self._info: CameraInfo | None = None

    @classmethod
    def from_url(cls, url: CameraUrl, config: CameraConfig | None = None) -> "FolderCamera":
        """Build from a parsed ``folder://`` URL (see the module docstring for the parameters)."""
        params = resolve_params(url, PARAMS, DEFAULTS, config)
        return cls(url.text, url.target, **params)

    @property
    def info(self) -> CameraInfo:
        if self._info is None:
            first = self._read(self.files[0])
            fmt = "Mono8" if first.shape[2] == 1 else "RGB8"
            self._info = CameraInfo("folder replay", str(self.directory), first.shape[1], first.shape[0], fmt)
        return self._info

    def _read(self, path: Path) -> np.ndarray:
        return read_frame_file(path, f"camera {self.url!r}")

    def _wait_for_slot(self, timeout_ms: int) -> None:
        if self.fps <= 0 or self.trigger_mode is TriggerMode.SOFTWARE:
            return
        now = time.monotonic()
        if self._next_t == 0.0:
            self._next_t = now
        wait_s = self._next_t - now
        if wait_s * 1000.0 > timeout_ms:
            time.sleep(timeout_ms / 1000.0)
            raise CameraError(f"camera {self.url!r}: no frame within {timeout_ms} ms (replay at fps={self.fps})")
        if wait_s > 0:
            time.sleep(wait_s)
        self._next_t = max(self._next_t, now - 1.0 / self.fps) + 1.0 / self.fps

    def _grab(self, timeout_ms: int) -> tuple[np.ndarray, int, str, dict[str, Any]]:
        if self._index >= len(self.files):
            if not self.loop:
                raise EndOfStream(f"camera {self.url!r}: end of folder after {len(self.files)} images",
                                  hint="add loop=1 to the URL to repeat")
            self._index = 0
        self._wait_for_slot(timeout_ms)
        path = self.files[self._index]
        image = self._read(path)
        meta = {"index": self._index, "path": str(path)}
        self._index += 1
        return image, now_ns(), path.name, meta

    @property
    def remaining(self) -> int:
        """Frames left before the end of the folder (in the current pass when looping)."""
        return len(self.files) - self._index
