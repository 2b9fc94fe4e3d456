"""The generic image set: what stands in for ImageNet and DTD, which cannot be downloaded here.

Three sources, each drawn as random crops, flips and quarter turns, so that a few dozen photographs give many
different patches (the consumers look at patches: EfficientAD's PDN sees 33 px, DRAEM pastes textures):

* ``procedural``: the DRAEM textures of :mod:`edgead.models.perlin` (fractal noise, stripes, checkerboards, speckle)
  and random shapes (filled polygons, ellipses and lines over a fractal background), generated on the fly;
* ``photos``: the real photographs that ship inside the ``scikit-image`` and ``scikit-learn`` wheels (both in the
  ``train`` extra): people, animals, objects, textures (brick, grass, gravel), microscopy, text. Nothing is
  downloaded;
* ``dirs``: the images of any folders given (e.g. the ``train/good`` images of other categories), read once.

Everything is deterministic for a given ``numpy.random.Generator``. :meth:`GenericImages.describe` is the provenance
recorded beside what is made from it (a distilled teacher, a DRAEM bundle).

Example:
    >>> pool = GenericImages()                                          # doctest: +SKIP
    >>> pool.sample((128, 128), np.random.default_rng(0)).shape         # doctest: +SKIP
    (128, 128, 3)
"""
from __future__ import annotations

import hashlib
import importlib.util
from enum import Enum
from pathlib import Path
from typing import Sequence

import numpy as np

from edgead.errors import DataError
from edgead.models.perlin import random_texture

VERSION = 1
"""Bumped whenever what the set draws changes (a distilled teacher records it)."""

PACKAGE_PHOTOS: tuple[tuple[str, str], ...] = tuple(
    ("skimage", f"data/{name}") for name in (
        "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png",
        "coins.png", "color.png", "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png",
        "logo.png", "microaneurysms.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png",
        "phantom.png", "retina.jpg", "rocket.jpg", "text.png")
) + (("sklearn", "datasets/images/china.jpg"), ("sklearn", "datasets/images/flower.jpg"))
"""(package, path inside it) of the photographs used when present."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class GenericSource(str, Enum):
    """Where a model's generic images come from: ``procedural`` only, or ``generic`` (procedural and photos)."""

    PROCEDURAL = "procedural"
    GENERIC = "generic"


def _read(path: Path) -> np.ndarray | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or min(image.shape[:2]) < 16:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def package_photos() -> dict[str, np.ndarray]:
    """The photographs of :data:`PACKAGE_PHOTOS` that are installed, as uint8 RGB, by ``package/path``."""
    out = {}
    for package, rel in PACKAGE_PHOTOS:
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            continue
        path = Path(list(found.submodule_search_locations)[0]) / rel
        image = _read(path) if path.is_file() else None
        if image is not None:
            out[f"{package}/{rel}"] = image
    return out


def folder_images(dirs: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """Every readable image directly in ``dirs``, as uint8 RGB, by path.

    Raises:
        DataError: if a folder does not exist.
    """
    out = {}
    for d in dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise DataError(f"generic image folder {str(folder)!r} does not exist", hint="give folders of images")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                image = _read(path)
                if image is not None:
                    out[str(path)] = image
    return out


def random_shapes(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Filled polygons, ellipses and lines of random colours over a procedural texture: ``float32 [H, W, 3]``."""
    import cv2

    h, w = shape
    canvas = np.ascontiguousarray((random_texture(shape, rng) * 255).astype(np.uint8))
    for _ in range(int(rng.integers(3, 12))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            pts = np.stack([rng.integers(0, w, 5), rng.integers(0, h, 5)], axis=1).astype(np.int32)
            cv2.fillPoly(canvas, [pts], colour)
        elif kind == 1:
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(2, max(3, w // 4))), int(rng.integers(2, max(3, h // 4))))
            cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        else:
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(canvas, p1, p2, colour, int(rng.integers(1, 5)))
    return canvas.astype(np.float32) / 255.0


class GenericImages:
    """A seeded source of generic images.

    Args:
        source: ``procedural`` (textures and shapes only) or ``generic`` (also the photos and ``dirs``).
        dirs: folders of extra images (e.g. other categories' ``train/good``), only with ``generic``.
        photo_share: share of samples drawn from the photos and ``dirs`` when there are any.

    Raises:
        DataError: if a folder does not exist.
    """

    def __init__(self, source: GenericSource | str = GenericSource.GENERIC, dirs: Sequence[str | Path] = (),
                 photo_share: float = 0.5):
        self.source = GenericSource(getattr(source, "value", source))
        self.photos: dict[str, np.ndarray] = {}
        if self.source is GenericSource.GENERIC:
            self.photos = {**package_photos(), **folder_images(dirs)}
        self._names = sorted(self.photos)
        self.photo_share = float(photo_share) if self.photos else 0.0

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """One image ``float32 [H, W, 3]`` in [0, 1]."""
        if rng.random() < self.photo_share:
            return self._crop(self.photos[self._names[int(rng.integers(0, len(self._names)))]], shape, rng)
        if rng.random() < 0.5:
            return random_shapes(shape, rng)
        return random_texture(shape, rng)

    def batch(self, n: int, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """``n`` images ``float32 [n, H, W, 3]``."""
        return np.stack([self.sample(shape, rng) for _ in range(int(n))])

    @staticmethod
    def _crop(image: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """A random crop (a quarter to all of the shorter side), flip and quarter turn, resized to ``shape``."""
        import cv2

        h, w = image.shape[:2]
        side = int(rng.uniform(0.25, 1.0) * min(h, w))
        side = max(side, 16)
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = np.rot90(image[y:y + side, x:x + side], int(rng.integers(0, 4)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out = cv2.resize(np.ascontiguousarray(crop), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        return out.astype(np.float32) / 255.0

    def describe(self) -> dict:
        """Provenance: the source, the version, the photographs by name and a sha256 over their pixels."""
        digest = hashlib.sha256()
        for name in self._names:
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(self.photos[name]).tobytes())
        return {"source": self.source.value, "version": VERSION, "photos": len(self._names),
                "photo_names": self._names, "photos_sha256": digest.hexdigest(), "photo_share": self.photo_share}


__all__ = ["GenericImages", "GenericSource", "PACKAGE_PHOTOS", "VERSION", "folder_images", "package_photos",
           "random_shapes"]
