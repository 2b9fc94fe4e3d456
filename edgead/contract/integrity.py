"""The sections of ``edgead.yaml`` that let a station check it was given what the model expects: the geometry it was
trained for (``geometry``) and the size of its arrays (``arrays``). Both are hashed and signed with the rest of the
bundle (docs/bundle-format.md).

Example:
    >>> g = Geometry.parse(Reader({"reference": {"pixels_sha256": "ab", "height": 4, "width": 6}, "image":
    ...                            {"height": 4, "width": 6}}, "geometry"))
    >>> g.reference.size, g.image_hw
    ((4, 6), (4, 6))
"""
from __future__ import annotations

from dataclasses import dataclass

from edgead.contract.sections import Reader, _positive


@dataclass(frozen=True)
class ReferenceRecord:
    """The reference image the training images were aligned to: a fingerprint of its decoded pixels (in the
    bundle's colour mode) and its size."""

    pixels_sha256: str
    height: int
    width: int
    channels: int = 3

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    @classmethod
    def parse(cls, r: Reader) -> "ReferenceRecord":
        return cls(r.get("pixels_sha256"), r.get("height", _positive), r.get("width", _positive),
                   r.get("channels", int, 3))

    def to_dict(self) -> dict:
        return {"pixels_sha256": self.pixels_sha256, "height": self.height, "width": self.width,
                "channels": self.channels}


@dataclass(frozen=True)
class Geometry:
    """``geometry``: what the model was trained for.

    Attributes:
        reference: the reference of the training data (None: not recorded).
        image_hw: the size every training image had (None: sizes varied or not recorded).
    """

    reference: ReferenceRecord | None = None
    image_hw: tuple[int, int] | None = None

    @classmethod
    def parse(cls, r: Reader) -> "Geometry":
        image = r.optional("image", lambda s: (s.get("height", _positive), s.get("width", _positive)))
        return cls(r.optional("reference", ReferenceRecord.parse), image)

    def to_dict(self) -> dict:
        out: dict = {}
        if self.reference is not None:
            out["reference"] = self.reference.to_dict()
        if self.image_hw is not None:
            out["image"] = {"height": self.image_hw[0], "width": self.image_hw[1]}
        return out


@dataclass(frozen=True)
class ArrayRecord:
    """One ``.npz`` file's array count and total bytes (``arrays`` section; the caps of its loading)."""

    count: int
    nbytes: int

    @classmethod
    def parse(cls, r: Reader) -> "ArrayRecord":
        return cls(r.get("count", int), r.get("nbytes", int))

    def to_dict(self) -> dict:
        return {"count": self.count, "nbytes": self.nbytes}


def parse_arrays(r: Reader) -> dict[str, ArrayRecord]:
    """The ``arrays`` section: file name -> :class:`ArrayRecord`."""
    return {str(name): ArrayRecord.parse(r.section(str(name))) for name in list(r.data)}
