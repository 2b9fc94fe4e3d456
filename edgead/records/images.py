"""The reject-image archive: the image and its heatmap overlay, within a disk quota, oldest first out.

Every file is written to a temporary name and renamed into place (``os.replace``), so a crash never leaves a
truncated image under a real name. The archive keeps an index (``.edgead-archive.jsonl``, one line per file it
wrote, in write order); rotation deletes only files listed there, so it never touches a file it did not write,
even one whose name looks like ours. Only indexed files count against the quota.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from enum import Enum
from os import PathLike
from pathlib import Path

import cv2
import numpy as np

from edgead.errors import ConfigError, ImageError

log = logging.getLogger(__name__)

INDEX_NAME = ".edgead-archive.jsonl"
TMP_PREFIX = ".edgead-tmp-"
ROTATE_TO = 0.9  # after rotating, the archive holds at most this fraction of the quota (fewer index rewrites)


class ImageFormat(str, Enum):
    """How archived images are encoded."""

    PNG = "png"
    JPEG = "jpeg"


class ChannelOrder(str, Enum):
    """Channel order of the images handed to :meth:`ImageArchive.save` (the graph contract uses RGB)."""

    RGB = "rgb"
    BGR = "bgr"


class MapScale(str, Enum):
    """How an anomaly map becomes colours: ``clip`` keeps the normalised scale (0.5 = threshold, comparable
    between parts), ``minmax`` stretches each map to its own range (for raw maps)."""

    CLIP = "clip"
    MINMAX = "minmax"


# One table for the formats: file suffix and OpenCV encoder parameters (quality filled in at run time).
FORMATS = {
    ImageFormat.PNG: (".png", cv2.IMWRITE_PNG_COMPRESSION),
    ImageFormat.JPEG: (".jpg", cv2.IMWRITE_JPEG_QUALITY),
}
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SavedImages:
    """Paths of what one :meth:`ImageArchive.save` wrote (``overlay`` is None without a map)."""

    image: Path
    overlay: Path | None


def overlay_path(image_path: str | PathLike) -> Path:
    """Where :meth:`ImageArchive.save` put the overlay of the image at ``image_path`` (``<stem>_overlay<suffix>``)."""
    p = Path(image_path)
    return p.with_name(f"{p.stem}_overlay{p.suffix}")


def to_bgr(image: np.ndarray, order: ChannelOrder) -> np.ndarray:
    """A uint8 ``HxW``, ``HxWx1`` or ``HxWx3`` image as 3-channel BGR (what OpenCV writes)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ImageError(
            f"archive: expected a uint8 HxW or HxWxC (C=1|3) image, got {image.dtype} {image.shape}",
            hint="pass the frame as captured (uint8)",
        )
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if order is ChannelOrder.RGB else image


def heatmap_overlay(
    image_bgr: np.ndarray, anomaly_map: np.ndarray, *, scale: MapScale = MapScale.CLIP, alpha: float = 0.5,
    colormap: int = cv2.COLORMAP_JET,
) -> np.ndarray:
    """Blend a colour-mapped anomaly map over an image.

    Args:
        image_bgr: uint8 ``HxWx3`` BGR image.
        anomaly_map: float ``hxw`` map at any resolution (resized bilinearly to the image).
        scale: how map values become colours (see :class:`MapScale`).
        alpha: weight of the heatmap in the blend, 0..1.
        colormap: an OpenCV ``COLORMAP_*`` constant.

    Returns:
        The uint8 ``HxWx3`` BGR overlay.
    """
    amap = np.asarray(anomaly_map, np.float32).squeeze()
    if amap.ndim != 2:
        raise ImageError(f"archive: anomaly map must be 2-D, got shape {np.shape(anomaly_map)}")
    if scale is MapScale.MINMAX:
        lo, hi = float(amap.min()), float(amap.max())
        amap = (amap - lo) / (hi - lo) if hi > lo else np.zeros_like(amap)
    amap = np.nan_to_num(np.clip(amap, 0.0, 1.0), nan=0.0)
    h, w = image_bgr.shape[:2]
    resized = cv2.resize((amap * 255.0 + 0.5).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap(resized, colormap)
    return cv2.addWeighted(heat, float(alpha), image_bgr, 1.0 - float(alpha), 0.0)


class ImageArchive:
    """Saves reject images and overlays under ``directory`` and keeps the total under ``quota_mb``.

    Args:
        directory: where the files go (created if missing).
        quota_mb: the most the archive may hold, in MiB; the oldest files go first when it is exceeded.
        fmt: PNG (lossless) or JPEG.
        jpeg_quality: 1..100, for JPEG.
        order: channel order of the images passed to :meth:`save`.
        scale: how anomaly maps are coloured.
        alpha: heatmap weight in the overlay.

    Raises:
        ConfigError: if the quota or quality is out of range or the directory cannot be created.

    Example:
        >>> with ImageArchive("/var/lib/edgead/rejects", quota_mb=2048) as archive:    # doctest: +SKIP
        ...     saved = archive.save(frame, "A17", anomaly_map=pred.map[0])
    """

    def __init__(
        self, directory: str | PathLike, quota_mb: float, *, fmt: ImageFormat = ImageFormat.PNG,
        jpeg_quality: int = 90, order: ChannelOrder = ChannelOrder.RGB, scale: MapScale = MapScale.CLIP,
        alpha: float = 0.5,
    ):
        if not quota_mb > 0:
            raise ConfigError(f"archive quota_mb must be > 0, got {quota_mb}", hint="e.g. quota_mb: 2048")
        if not 1 <= int(jpeg_quality) <= 100:
            raise ConfigError(f"archive jpeg_quality must be 1..100, got {jpeg_quality}")
        self.directory = Path(directory)
        self.quota_bytes = int(quota_mb * 1024 * 1024)
        self.fmt = ImageFormat(fmt)
        self.order = ChannelOrder(order)
        self.scale = MapScale(scale)
        self.alpha = float(alpha)
        suffix, flag = FORMATS[self.fmt]
        self._suffix = suffix
        self._params = [flag, int(jpeg_quality) if self.fmt is ImageFormat.JPEG else 3]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"archive directory {str(self.directory)!r} cannot be created: {exc}") from exc
        self._index_path = self.directory / INDEX_NAME
        self._used = 0  # bytes of the indexed files; the list itself stays on disk (it can hold 100 000 entries)
        self._lock = threading.Lock()
        self._load_index()
        self._remove_stale_temps()

    @property
    def used_bytes(self) -> int:
        """Bytes held by the files this archive wrote."""
        return self._used

    def files(self) -> list[Path]:
        """The archived files, oldest first (read from the index)."""
        with self._lock:
            return [self.directory / name for name, _ in self._read_index()]

    def save(self, image: np.ndarray, part_id: str, *, anomaly_map: np.ndarray | None = None,
             t_ns: int | None = None) -> SavedImages:
        """Archive one image (and its overlay when a map is given), then enforce the quota.

        Args:
            image: uint8 frame, ``HxW`` or ``HxWxC`` in :attr:`order`.
            part_id: the part's id (made filename-safe).
            anomaly_map: the normalised map (``Prediction.map[i]``), any resolution.
            t_ns: wall-clock time for the name (default: now).

        Returns:
            The paths written.

        Raises:
            ImageError: if the image cannot be encoded.
            OSError: if the disk write fails.
        """
        bgr = to_bgr(np.asarray(image), self.order)
        overlay = None
        if anomaly_map is not None:
            overlay = heatmap_overlay(bgr, anomaly_map, scale=self.scale, alpha=self.alpha)
        with self._lock:
            stem = self._free_stem(_stem(time.time_ns() if t_ns is None else t_ns, part_id))
            image_path = self._write(f"{stem}{self._suffix}", bgr)
            overlay_file = None if overlay is None else self._write(f"{stem}_overlay{self._suffix}", overlay)
            self._rotate(keep=2 if overlay_file else 1)
        return SavedImages(image_path, overlay_file)

    # -- internals -----------------------------------------------------------------------------------------------

    def _free_stem(self, stem: str) -> str:
        """``stem``, or ``stem-N``: never overwrite an existing file (ours or not)."""
        candidate, n = stem, 0
        while any((self.directory / f"{candidate}{tail}{self._suffix}").exists() for tail in ("", "_overlay")):
            n += 1
            candidate = f"{stem}-{n}"
        return candidate

    def _write(self, name: str, bgr: np.ndarray) -> Path:
        ok, buf = cv2.imencode(self._suffix, bgr, self._params)
        if not ok:
            raise ImageError(f"archive: cannot encode {name} as {self.fmt.value}")
        path = self.directory / name
        tmp = self.directory / f"{TMP_PREFIX}{name}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(buf.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._used += len(buf)
        with open(self._index_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": name, "size": len(buf)}) + "\n")
        return path

    def _rotate(self, keep: int) -> None:
        """Delete the oldest files until under the quota; the newest ``keep`` files always stay. The index is read
        from disk here only (rotations are rare: each frees a tenth of the quota), so the archive's memory does not
        grow with the number of files it holds."""
        if self._used <= self.quota_bytes:
            return
        files = self._read_index()
        target = int(self.quota_bytes * ROTATE_TO)
        used = sum(size for _, size in files)
        drop = 0
        while used > target and drop < len(files) - keep:
            used -= files[drop][1]
            drop += 1
        for name, _ in files[:drop]:
            (self.directory / name).unlink(missing_ok=True)
        self._rewrite_index(files[drop:])
        self._used = used
        if used > self.quota_bytes:
            log.warning("archive %s: newest files alone (%d bytes) exceed the quota of %d bytes",
                        self.directory, used, self.quota_bytes)

    def _rewrite_index(self, files: list[tuple[str, int]]) -> None:
        tmp = self.directory / f"{TMP_PREFIX}{INDEX_NAME}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"name": n, "size": s}) + "\n" for n, s in files)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._index_path)

    def _read_index(self) -> list[tuple[str, int]]:
        """The index entries, oldest first; a line torn by a crash mid-append is skipped."""
        try:
            lines = self._index_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        files = []
        for line in lines:
            try:
                entry = json.loads(line)
                files.append((str(entry["name"]), int(entry["size"])))
            except (ValueError, KeyError, TypeError):
                continue
        return files

    def _load_index(self) -> None:
        """Check the index at open: drop entries whose file is gone (deleted by hand), repeated or torn."""
        try:
            n_lines = len(self._index_path.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            return
        files, seen = [], set()
        for name, size in self._read_index():
            if name in seen or "/" in name or not (self.directory / name).is_file():
                continue
            seen.add(name)
            files.append((name, size))
        self._used = sum(size for _, size in files)
        if len(files) != n_lines:
            self._rewrite_index(files)

    def _remove_stale_temps(self) -> None:
        for tmp in self.directory.glob(f"{TMP_PREFIX}*"):
            tmp.unlink(missing_ok=True)  # our own prefix: a write interrupted by a crash

    def close(self) -> None:
        """Nothing is held open between saves; present so the archive is a context manager like the rest."""

    def __enter__(self) -> "ImageArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stem(t_ns: int, part_id: str) -> str:
    """``20261122T080000.123456Z_A17``: sortable by time, then the filename-safe part id."""
    seconds, ns = divmod(int(t_ns), 1_000_000_000)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds))
    safe = _SAFE.sub("_", str(part_id)).strip("._") or "part"
    return f"{stamp}.{ns // 1000:06d}Z_{safe[:64]}"
