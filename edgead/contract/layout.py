"""The ``layout`` section of ``edgead.yaml``: which way up parts reach the model, and its native-resolution tiles.

What the station does with it (turning, cutting, stitching the maps back) is :mod:`edgead.infer.layout`; this is the
typed record, kept here so that the bundle's metadata (:class:`~edgead.contract.meta.BundleMeta`) holds it as a field
of its own. A bundle without the section has the plain layout (no turn, no tiles).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edgead.errors import BundleError, ConfigError

KEYS = ("orientation", "tile_hw", "overlap_px")


class Orientation(str, Enum):
    """Which way up parts reach the model."""

    KEEP = "keep"
    LANDSCAPE = "landscape"  # width >= height: portrait images are turned a quarter turn
    PORTRAIT = "portrait"  # height >= width


@dataclass(frozen=True)
class Layout:
    """Orientation and tiling of the frames (or ROIs) fed to a model.

    Attributes:
        orientation: :class:`Orientation`.
        tile_hw: ``(height, width)`` of a tile in image pixels, or None (the whole image is one input, resized by
            the graph).
        overlap_px: the least overlap of neighbouring tiles (so a defect on a tile border is seen whole by one).

    Raises:
        ConfigError: for an unknown orientation, a tile under 16 px, or an overlap not below the tile's side.
    """

    orientation: Orientation = Orientation.KEEP
    tile_hw: tuple[int, int] | None = None
    overlap_px: int = 0

    def __post_init__(self):
        try:
            object.__setattr__(self, "orientation", Orientation(self.orientation))
        except ValueError:
            raise ConfigError(f"layout orientation {self.orientation!r} is unknown",
                              hint=f"use one of {[o.value for o in Orientation]}") from None
        if self.tile_hw is not None:
            try:
                tile = tuple(int(v) for v in self.tile_hw)
            except (TypeError, ValueError):
                raise ConfigError(f"layout tile_hw {self.tile_hw!r} must be [height, width]") from None
            if len(tile) != 2 or min(tile) < 16:
                raise ConfigError(f"layout tile_hw {self.tile_hw!r} must be [height, width], each >= 16 px")
            object.__setattr__(self, "tile_hw", tile)
        try:
            overlap = int(self.overlap_px)
        except (TypeError, ValueError):
            raise ConfigError(f"layout overlap_px {self.overlap_px!r} must be a whole number of pixels") from None
        if not 0 <= overlap < min(self.tile_hw or (10**9,)):
            raise ConfigError(f"layout overlap_px {self.overlap_px} must be in 0..tile side - 1")
        object.__setattr__(self, "overlap_px", overlap)

    @property
    def is_plain(self) -> bool:
        """True when frames go to the engine as they are (no turn, no tiles)."""
        return self.orientation is Orientation.KEEP and self.tile_hw is None

    def to_dict(self) -> dict:
        """The ``layout`` section of ``edgead.yaml``."""
        return {"orientation": self.orientation.value, "tile_hw": list(self.tile_hw) if self.tile_hw else None,
                "overlap_px": self.overlap_px}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Layout":
        """Inverse of :meth:`to_dict`; None or ``{}`` (bundles without a layout) is the plain layout.

        Raises:
            ConfigError: for an unknown key or an invalid value.
        """
        if d is not None and not isinstance(d, dict):
            raise ConfigError(f"layout is not a mapping (got {type(d).__name__})", hint=f"keys: {', '.join(KEYS)}")
        d = dict(d or {})
        unknown = sorted(set(d) - set(KEYS))
        if unknown:
            raise ConfigError(f"layout has no key {unknown[0]!r}", hint=f"keys: {', '.join(KEYS)}")
        return cls(d.get("orientation") or Orientation.KEEP, d.get("tile_hw"), d.get("overlap_px") or 0)

    @classmethod
    def parse(cls, data, where: str) -> "Layout":
        """The bundle's ``layout`` section (``where`` names it in errors); None is the plain layout.

        Raises:
            BundleError: naming ``where`` and what is wrong.
        """
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise BundleError(f"{where}: {exc.message}", hint=exc.hint or "see docs/bundle-format.md") from None

