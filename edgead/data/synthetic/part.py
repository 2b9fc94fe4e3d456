"""The synthetic part in reference pose: a machined aluminium bracket in a fixture, as albedo + height maps.

The scene is drawn once per (size, part seed) and cached; :func:`shade` turns (albedo, height) into the image
under a fixed top-left ring light, so chamfers, hole walls and dents get their highlights and shadows from
geometry rather than from painted-on shading.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

PLATE_MM = 8.0  # plate thickness in height-map units (pixels)
LIGHT = np.array([-0.45, -0.55, 1.0]) / np.linalg.norm([-0.45, -0.55, 1.0])
AMBIENT = 0.35
ALUMINIUM = (178.0, 181.0, 186.0)
FIXTURE = (52.0, 58.0, 68.0)
STEEL = (150.0, 150.0, 156.0)
INK = (62.0, 60.0, 58.0)
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Hole:
    """A round through-hole of the plate (reference pixel coordinates)."""

    x: float
    y: float
    r: float


@dataclass(frozen=True)
class Scene:
    """The reference part, read-only.

    Attributes:
        albedo: ``HxWx3`` float32 RGB reflectance in grey levels.
        height: ``HxW`` float32 height map (pixels).
        part: ``HxW`` bool, the plate's outline (holes included).
        flat: ``HxW`` bool, plain plate surface away from edges, holes and marking (where defects may go).
        holes: the mounting holes (candidates for ``missing_hole``).
        vignette: ``HxW`` float32 lens falloff, fixed in the camera frame.
    """

    albedo: np.ndarray
    height: np.ndarray
    part: np.ndarray
    flat: np.ndarray
    holes: tuple[Hole, ...]
    vignette: np.ndarray


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _ONE)), int(round(y * _ONE))


def _disk(canvas: np.ndarray, x: float, y: float, r: float, value: float = 1.0) -> None:
    cv2.circle(canvas, _pt(x, y), int(round(r * _ONE)), value, -1, cv2.LINE_AA, _SHIFT)


def _smooth_noise(rng: np.random.Generator, hw: tuple[int, int], ksize: tuple[int, int]) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.standard_normal(hw).astype(np.float32), (0, 0), ksize[0], sigmaY=ksize[1])
    return noise / (noise.std() + 1e-6)


def _outline(cx: float, cy: float, a: float, b: float, s: float) -> np.ndarray:
    c, big = 10 * s, 26 * s  # chamfered corners, one larger so the part has no symmetry
    pts = [(cx - a + c, cy - b), (cx + a - big, cy - b), (cx + a, cy - b + big), (cx + a, cy + b - c),
           (cx + a - c, cy + b), (cx - a + c, cy + b), (cx - a, cy + b - c), (cx - a, cy - b + c)]
    return np.array([_pt(x, y) for x, y in pts], np.int32)


def _marking(albedo: np.ndarray, rng: np.random.Generator, x0: float, y0: float, s: float) -> np.ndarray:
    """Laser-marked 12x12 matrix code and a part number; returns the marked area (for the flat mask)."""
    ink = np.zeros(albedo.shape[:2], np.float32)
    n, m = 12, 2.5 * s
    bits = rng.random((n, n)) < 0.5
    bits[:, 0] = True
    bits[-1, :] = True
    bits[0, ::2] = True
    bits[1::2, -1] = True
    for i, j in zip(*np.nonzero(bits)):
        cv2.rectangle(ink, _pt(x0 + j * m, y0 + i * m), _pt(x0 + (j + 1) * m - 0.3, y0 + (i + 1) * m - 0.3),
                      1.0, -1, cv2.LINE_AA, _SHIFT)
    text = np.zeros(albedo.shape[:2], np.uint8)  # putText draws on 8-bit images only
    cv2.putText(text, "EA-2041 B", (int(x0 - 8 * s), int(y0 + n * m + 14 * s)), cv2.FONT_HERSHEY_SIMPLEX,
                0.38 * s, 255, 1, cv2.LINE_AA)
    ink = np.clip(ink + text.astype(np.float32) / 255.0, 0, 1)
    albedo[:] = albedo * (1 - 0.8 * ink[:, :, None]) + np.array(INK, np.float32) * 0.8 * ink[:, :, None]
    return ink > 0.05


def _build(height: int, width: int, part_seed: int, omit_hole: int | None) -> Scene:
    rng = np.random.default_rng([part_seed, 2041])
    s = min(height / 256.0, width / 320.0)
    cx, cy, a, b = (width - 1) / 2.0, (height - 1) / 2.0, 0.36 * width, 0.33 * height
    hw = (height, width)

    # fixture plate: bead-blasted anodised steel with three dowel pins (3-2-1 locating: two below, one left)
    albedo = np.empty((height, width, 3), np.float32)
    albedo[:] = FIXTURE
    albedo *= (1 + 0.05 * _smooth_noise(rng, hw, (6, 6)) + 0.03 * _smooth_noise(rng, hw, (0.7, 0.7)))[:, :, None]
    relief = np.zeros(hw, np.float32)
    for x, y in ((cx - a - 7 * s, cy - 20 * s), (cx - 60 * s, cy + b + 7 * s), (cx + 60 * s, cy + b + 7 * s)):
        pin = np.zeros(hw, np.float32)
        _disk(pin, x, y, 6 * s)
        relief += 10 * pin
        albedo += (np.array(STEEL, np.float32) - albedo) * pin[:, :, None]

    # the plate and its shadow
    plate = np.zeros(hw, np.float32)
    cv2.fillPoly(plate, [_outline(cx, cy, a, b, s)], 1.0, cv2.LINE_AA, _SHIFT)
    shadow = np.roll(cv2.GaussianBlur(plate, (0, 0), 4 * s), (int(4 * s), int(3 * s)), (0, 1))
    albedo *= (1 - 0.55 * shadow * (1 - plate))[:, :, None]
    brushed = 0.035 * _smooth_noise(rng, hw, (25 * s, 0.6)) + 0.015 * _smooth_noise(rng, hw, (1.0, 1.0))
    metal = np.array(ALUMINIUM, np.float32) * (1 + brushed)[:, :, None]
    albedo += (metal - albedo) * plate[:, :, None]
    relief += PLATE_MM * plate

    # counterbored central bore: turned rings
    bx, by = cx - 20 * s, cy
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rr = np.hypot(xx - bx, yy - by)
    cbore = np.zeros(hw, np.float32)
    _disk(cbore, bx, by, 26 * s)
    relief -= 3.5 * cbore
    albedo *= (1 + 0.05 * cbore * np.sin(rr * 2.2 / s))[:, :, None]

    # through-holes (dark: the fixture's shadowed pocket shows through), slot
    holes = [Hole(cx + ux * (a - 22 * s), cy + uy * (b - 22 * s), 7 * s) for ux, uy in
             ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    through = np.zeros(hw, np.float32)
    for i, h in enumerate(holes):
        if i != omit_hole:
            _disk(through, h.x, h.y, h.r)
    _disk(through, bx, by, 18 * s)
    sx0, sx1, sy = cx + 40 * s, cx + 80 * s, cy + 30 * s
    cv2.line(through, _pt(sx0, sy), _pt(sx1, sy), 1.0, int(round(14 * s)), cv2.LINE_AA, _SHIFT)
    through = np.clip(through, 0, 1)
    albedo *= (1 - 0.85 * through)[:, :, None]
    relief -= PLATE_MM * through * plate

    marked = _marking(albedo, rng, cx + 28 * s, cy - 70 * s, s)
    fid = np.zeros(hw, np.float32)
    cv2.circle(fid, _pt(cx - 62 * s, cy + 52 * s), int(6 * s * _ONE), 1.0, max(1, int(s)), cv2.LINE_AA, _SHIFT)
    _disk(fid, cx - 62 * s, cy + 52 * s, 2 * s)
    albedo *= (1 - 0.6 * np.clip(fid, 0, 1))[:, :, None]

    relief = cv2.GaussianBlur(relief, (0, 0), 1.1 * s)  # chamfers and rounded edges
    keep_out = np.maximum.reduce([through, cbore, fid, marked.astype(np.float32)]) > 0.05
    keep_out = cv2.dilate(keep_out.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13)))
    inner = cv2.erode((plate > 0.5).astype(np.uint8), np.ones((int(12 * s) | 1,) * 2, np.uint8))
    vignette = (1 - 0.12 * (((xx - cx) / (width / 2)) ** 2 + ((yy - cy) / (height / 2)) ** 2) / 2).astype(
        np.float32)
    scene = Scene(albedo=albedo, height=relief, part=plate > 0.5, flat=(inner > 0) & (keep_out == 0),
                  holes=tuple(holes), vignette=vignette)
    for arr in (scene.albedo, scene.height, scene.part, scene.flat, scene.vignette):
        arr.setflags(write=False)
    return scene


@functools.lru_cache(maxsize=32)
def build_scene(height: int, width: int, part_seed: int = 0, omit_hole: int | None = None) -> Scene:
    """The reference scene (cached; the arrays are read-only).

    Args:
        height: image height.
        width: image width.
        part_seed: the part's design (texture, marking code).
        omit_hole: index of a mounting hole left undrilled, or None.

    Returns:
        The :class:`Scene`.
    """
    return _build(height, width, part_seed, omit_hole)


def shade(albedo: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Lambert shading with a specular sheen under the fixed light; a flat surface keeps its albedo.

    Args:
        albedo: ``HxWx3`` float32.
        height: ``HxW`` float32 height map in pixels.

    Returns:
        ``HxWx3`` float32 image (not clipped).
    """
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    norm = np.sqrt(gx * gx + gy * gy + 1.0)
    cos = (-gx * LIGHT[0] - gy * LIGHT[1] + LIGHT[2]) / norm
    lit = np.clip(cos, 0, None) / LIGHT[2]
    sheen = np.clip(cos - 0.97, 0, None) * 800.0  # near-mirror facets catch the light
    return albedo * (AMBIENT + (1 - AMBIENT) * lit)[:, :, None] + sheen[:, :, None]
