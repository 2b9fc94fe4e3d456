"""``folder://DIR?fps=10&loop=0&pattern=*.png&sort=name``: replay a folder of images (demo, offline re-inspection).

``fps=0`` delivers frames as fast as asked; ``loop=1`` repeats forever (the folder is listed again at the start of
every pass, so files added or restored meanwhile are replayed); otherwise the end of the folder raises
:class:`~edgead.camera.base.EndOfStream` so a replay run can finish cleanly.

A file that cannot be used -- deleted or unreadable since the folder was listed, empty, corrupt, not 8-bit, or
declaring more than ``max_image_px`` pixels in its header (checked before decoding) -- raises
:class:`~edgead.errors.FrameError` naming it, and the replay moves on to the next file: the station records that
part as a fault instead of retrying the same file forever.

Example:
    >>> with open_camera("folder:///data/parts?fps=0&sort=natural") as cam:   # doctest: +SKIP
    ...     frame = cam.grab()
    ...     frame.source
    'part_0001.png'
"""
from __future__ import annotations

import math
import re
import time
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgead.camera.base import Camera, CameraInfo, EndOfStream, TriggerMode, as_hwc_uint8, now_ns
from edgead.camera.config import COMMON_PARAMS, CameraConfig, CameraUrl, resolve_params, to_bool
from edgead.data.images import MAX_IMAGE_PX, check_image_size
from edgead.errors import CameraError, ConfigError, FrameError, ImageError


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

PARAMS = {**COMMON_PARAMS, "fps": float, "loop": to_bool, "pattern": str, "sort": SortOrder, "max_image_px": int}
DEFAULTS = {"fps": 0.0, "loop": False, "pattern": "*.png", "sort": SortOrder.NAME, "timeout_ms": 2000,
            "trigger": TriggerMode.FREE_RUN, "reconnect_max_ms": 5000, "max_image_px": MAX_IMAGE_PX}


def read_frame_file(path: Path, where: str, max_px: int | None = MAX_IMAGE_PX) -> np.ndarray:
    """An image file as a camera delivers it: uint8 ``[H, W, C]``, mono or RGB, as stored (the folder camera's
    frames, and the deploy self-test's samples).

    Raises:
        FrameError: naming ``where`` and the file when it vanished, is empty, declares more than ``max_px``
            pixels in its header, or cannot be decoded.
    """
    import cv2

    where = f"{where}: {Path(path).name}"
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as exc:
        raise FrameError(f"{where}: unreadable ({exc.strerror or exc})",
                         hint="the file vanished or is not readable; the replay moves on") from exc
    if not data.size:
        raise FrameError(f"{where}: empty file (0 bytes)", hint="remove or replace the file")
    try:
        check_image_size(data, repr(Path(path).name), max_px)
    except ImageError as exc:
        raise FrameError(f"{where}: {exc.message}", hint=exc.hint) from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FrameError(f"{where}: cannot decode ({data.size} bytes)", hint="remove or replace the file")
    return as_hwc_uint8(image, where)


class FolderCamera(Camera):
    """Replays image files in a fixed order, paced at ``fps`` in free-run (software trigger: one per trigger)."""

    scheme = "folder"

    def __init__(self, url: str, directory: str | Path, *, fps: float = 0.0, loop: bool = False,
                 pattern: str = "*.png", sort: SortOrder = SortOrder.NAME, max_image_px: int = MAX_IMAGE_PX,
                 **common: Any):
        super().__init__(url, **{k: v for k, v in common.items() if k in ("trigger", "timeout_ms")})
        if not (fps >= 0 and math.isfinite(fps)):
            raise ConfigError(f"camera {self.url!r}: fps={fps} must be >= 0 (0 = as fast as asked)")
        if max_image_px < 1:
            raise ConfigError(f"camera {self.url!r}: max_image_px={max_image_px} must be >= 1")
        self.directory = Path(directory)
        self.pattern, self.sort = pattern, SortOrder(sort)
        self.max_image_px = int(max_image_px)
        self.files = self._list()
        self.fps, self.loop = float(fps), bool(loop)
        self._index = 0
        self._next_t = 0.0
        self._info: CameraInfo | None = None

    def _list(self) -> list[Path]:
        """The files to replay, in order (CameraError when the folder is gone or holds none)."""
        if not self.directory.is_dir():
            raise CameraError(f"camera {self.url!r}: folder {str(self.directory)!r} does not exist")
        try:
            found = [p for p in self.directory.glob(self.pattern) if p.is_file()]
            files = sorted(found, key=SORT_KEYS[self.sort])
        except OSError as exc:  # a file vanished between the listing and its stat (mtime order)
            raise CameraError(f"camera {self.url!r}: cannot list {str(self.directory)!r}: {exc}") from exc
        if not files:
            raise CameraError(f"camera {self.url!r}: no file matches {self.pattern!r} in {str(self.directory)!r}",
                              hint="check the folder and the pattern= parameter")
        return files

    @classmethod
    def check_url(cls, url: CameraUrl, config: CameraConfig | None = None) -> dict[str, Any]:
        """The parameters of a ``folder://`` URL, validated without touching the folder.

        Raises:
            ConfigError: naming the URL and the parameter.
        """
        params = resolve_params(url, PARAMS, DEFAULTS, config)
        if not url.target:
            raise ConfigError(f"camera url {url.display!r}: no folder", hint="e.g. folder:///data/parts")
        if not (params["fps"] >= 0 and math.isfinite(params["fps"])):
            raise ConfigError(f"camera url {url.display!r}: fps={params['fps']} must be >= 0 (0 = as fast as asked)")
        if params["max_image_px"] < 1:
            raise ConfigError(f"camera url {url.display!r}: max_image_px={params['max_image_px']} must be >= 1")
        return params

    @classmethod
    def from_url(cls, url: CameraUrl, config: CameraConfig | None = None) -> "FolderCamera":
        """Build from a parsed ``folder://`` URL (see the module docstring for the parameters)."""
        return cls(url.text, url.target, **cls.check_url(url, config))

    @property
    def info(self) -> CameraInfo:
        if self._info is None:
            first = self._read(self.files[0])
            fmt = "Mono8" if first.shape[2] == 1 else "RGB8"
            self._info = CameraInfo("folder replay", str(self.directory), first.shape[1], first.shape[0], fmt)
        return self._info

    def _read(self, path: Path) -> np.ndarray:
        return read_frame_file(path, f"camera {self.url!r}", self.max_image_px)

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
            self.files = self._list()  # a new pass sees files added, removed or restored meanwhile
            self._index = 0
        self._wait_for_slot(timeout_ms)
        index = self._index
        path = self.files[index]
        self._index += 1  # before reading: a bad file is one fault, not a loop on the same file
        image = self._read(path)
        return image, now_ns(), path.name, {"index": index, "path": str(path)}

    @property
    def remaining(self) -> int:
        """Frames left before the end of the folder (in the current pass when looping)."""
        return len(self.files) - self._index
