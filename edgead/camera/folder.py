"""``folder://DIR?fps=10&loop=0&pattern=*.png&sort=name``: replay a folder of images (demo, offline re-inspection).

``fps=0`` delivers frames as fast as asked; ``loop=1`` repeats forever (the folder is listed again at the start of
every pass, so files added or restored meanwhile are replayed); otherwise the end of the folder raises
:class:`~edgead.camera.base.EndOfStream` so a replay run can finish cleanly.

By default each file is decoded when its frame is grabbed (a folder of any size). ``preload=1`` decodes every file
once, when the camera opens, and then hands out the decoded frames as a camera hands out its raw buffers: no decode
and no allocation per part (the frames are read-only and shared by every pass; the folder is not listed again).
The decoded frames may take at most ``preload_max_mb`` MiB; a folder that needs more is refused at open, naming the
cap and the folder.

``trigger=hardware&trigger_line=PATH`` replays one frame per rising edge on a trigger line, as a camera triggered by
a photo-eye: the line's twin is a named pipe (``mkfifo PATH``), every byte written to it one edge. No edge within
the grab's timeout is "no hardware trigger or frame", as for a real camera; ``fps`` is ignored.

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
import os
import re
import select
import stat
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

PRELOAD_MAX_MB = 512
"""Default cap of ``preload=1``: the decoded frames of the folder, in MiB."""
PARAMS = {**COMMON_PARAMS, "fps": float, "loop": to_bool, "pattern": str, "sort": SortOrder, "max_image_px": int,
          "preload": to_bool, "preload_max_mb": int, "trigger_line": str}
DEFAULTS = {"fps": 0.0, "loop": False, "pattern": "*.png", "sort": SortOrder.NAME, "timeout_ms": 2000,
            "trigger": TriggerMode.FREE_RUN, "reconnect_max_ms": 5000, "max_image_px": MAX_IMAGE_PX,
            "preload": False, "preload_max_mb": PRELOAD_MAX_MB, "trigger_line": None}


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
    return as_hwc_uint8(image, where, in_place=True)  # the decode is ours: no second frame allocated


class FolderCamera(Camera):
    """Replays image files in a fixed order, paced at ``fps`` in free-run (software trigger: one per trigger;
    hardware trigger: one per edge on ``trigger_line``)."""

    scheme = "folder"
    trigger_modes = (TriggerMode.FREE_RUN, TriggerMode.SOFTWARE, TriggerMode.HARDWARE)

    def __init__(self, url: str, directory: str | Path, *, fps: float = 0.0, loop: bool = False,
                 pattern: str = "*.png", sort: SortOrder = SortOrder.NAME, max_image_px: int = MAX_IMAGE_PX,
                 preload: bool = False, preload_max_mb: int = PRELOAD_MAX_MB, trigger_line: str | None = None,
                 **common: Any):
        super().__init__(url, **{k: v for k, v in common.items() if k in ("trigger", "timeout_ms")})
        _check_params(self.url, fps, max_image_px, preload_max_mb, self.trigger_mode, trigger_line)
        self.directory = Path(directory)
        self.pattern, self.sort = pattern, SortOrder(sort)
        self.max_image_px = int(max_image_px)
        self.files = self._list()
        self.fps, self.loop = float(fps), bool(loop)
        self._index = 0
        self._next_t = 0.0
        self._info: CameraInfo | None = None
        self._frames: list[np.ndarray | FrameError] | None = None
        self._line: TriggerLine | None = None
        if preload:
            self._frames = self._preload(int(preload_max_mb))
        if trigger_line is not None:
            self._line = TriggerLine(trigger_line, self.url)

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

    def _preload(self, max_mb: int) -> list[np.ndarray | FrameError]:
        """Every file decoded once (read-only frames), or the FrameError its part gets; at most ``max_mb`` MiB.

        Raises:
            CameraError: naming the cap and the folder when the decoded frames need more.
        """
        frames: list[np.ndarray | FrameError] = []
        total = 0
        for i, path in enumerate(self.files):
            try:
                image = self._read(path)
            except FrameError as exc:
                frames.append(exc)
                continue
            total += image.nbytes
            if total > max_mb * 2**20:
                raise CameraError(
                    f"camera {self.url!r}: preload=1 needs more than preload_max_mb={max_mb} MiB for the "
                    f"{len(self.files)} files of {str(self.directory)!r} ({total / 2**20:.1f} MiB after {i + 1})",
                    hint="raise preload_max_mb= in the URL if the memory is there, or drop preload=1 to decode "
                         "each file when its frame is grabbed")
            image.flags.writeable = False  # shared by every pass: no consumer may change it
            frames.append(image)
        return frames

    @classmethod
    def check_url(cls, url: CameraUrl, config: CameraConfig | None = None) -> dict[str, Any]:
        """The parameters of a ``folder://`` URL, validated without touching the folder.

        Raises:
            ConfigError: naming the URL and the parameter.
        """
        params = resolve_params(url, PARAMS, DEFAULTS, config)
        if not url.target:
            raise ConfigError(f"camera url {url.display!r}: no folder", hint="e.g. folder:///data/parts")
        _check_params(url.display, params["fps"], params["max_image_px"], params["preload_max_mb"],
                      params["trigger"], params["trigger_line"])
        return params

    @classmethod
    def from_url(cls, url: CameraUrl, config: CameraConfig | None = None) -> "FolderCamera":
        """Build from a parsed ``folder://`` URL (see the module docstring for the parameters)."""
        return cls(url.text, url.target, **cls.check_url(url, config))

    @property
    def info(self) -> CameraInfo:
        if self._info is None:
            first = self._frame(0)
            fmt = "Mono8" if first.shape[2] == 1 else "RGB8"
            self._info = CameraInfo("folder replay", str(self.directory), first.shape[1], first.shape[0], fmt)
        return self._info

    def _read(self, path: Path) -> np.ndarray:
        return read_frame_file(path, f"camera {self.url!r}", self.max_image_px)

    def _frame(self, index: int) -> np.ndarray:
        """The frame of file ``index``: preloaded (the same read-only array every pass), or decoded now."""
        if self._frames is None:
            return self._read(self.files[index])
        frame = self._frames[index]
        if isinstance(frame, FrameError):
            raise frame
        return frame

    def _wait_for_slot(self, timeout_ms: int) -> None:
        if self._line is not None:
            self._line.wait_edge(timeout_ms)
            return
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
            if self._frames is None:
                self.files = self._list()  # a new pass sees files added, removed or restored meanwhile
            self._index = 0
        self._wait_for_slot(timeout_ms)
        index = self._index
        path = self.files[index]
        self._index += 1  # before reading: a bad file is one fault, not a loop on the same file
        image = self._frame(index)
        return image, now_ns(), path.name, {"index": index, "path": str(path)}

    @property
    def remaining(self) -> int:
        """Frames left before the end of the folder (in the current pass when looping)."""
        return len(self.files) - self._index

    def close(self) -> None:
        if self._line is not None:
            self._line.close()
        super().close()


def _check_params(url: str, fps: float, max_image_px: int, preload_max_mb: int, trigger: TriggerMode,
                  trigger_line: str | None) -> None:
    """The checks of a folder camera's parameters that need no folder (ConfigError naming the URL)."""
    if not (fps >= 0 and math.isfinite(fps)):
        raise ConfigError(f"camera url {url!r}: fps={fps} must be >= 0 (0 = as fast as asked)")
    if max_image_px < 1:
        raise ConfigError(f"camera url {url!r}: max_image_px={max_image_px} must be >= 1")
    if preload_max_mb < 1:
        raise ConfigError(f"camera url {url!r}: preload_max_mb={preload_max_mb} must be >= 1")
    if (trigger is TriggerMode.HARDWARE) != (trigger_line is not None):
        raise ConfigError(f"camera url {url!r}: trigger=hardware and trigger_line= go together",
                          hint="e.g. folder:///data/parts?trigger=hardware&trigger_line=/run/edgead/line1 (a named "
                               "pipe: each byte written to it is one edge)")


class TriggerLine:
    """The twin of a camera's trigger input: a named pipe, each byte written to it one rising edge.

    Opened read-write, so that the pipe never reads as closed while no writer is connected.

    Raises:
        CameraError: naming the URL and the path when it is not a named pipe or cannot be opened.
    """

    def __init__(self, path: str | Path, url: str):
        self.path, self.url = Path(path), url
        try:
            if not stat.S_ISFIFO(os.stat(self.path).st_mode):
                raise CameraError(f"camera {url!r}: trigger_line {str(self.path)!r} is not a named pipe",
                                  hint=f"create it with: mkfifo {self.path}")
            self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        except OSError as exc:
            raise CameraError(f"camera {url!r}: cannot open trigger_line {str(self.path)!r}: "
                              f"{exc.strerror or exc}", hint=f"create it with: mkfifo {self.path}") from exc

    def wait_edge(self, timeout_ms: int) -> None:
        """Take one edge, waiting at most ``timeout_ms``.

        Raises:
            CameraError: no edge in time (no hardware trigger or frame, as a real camera says).
        """
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            try:
                if os.read(self._fd, 1):
                    return
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise CameraError(f"camera {self.url!r}: no hardware trigger or frame within {timeout_ms} ms "
                                  "(trigger=hardware)", hint="check the camera and its trigger")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
