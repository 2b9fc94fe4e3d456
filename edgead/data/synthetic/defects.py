"""Defects drawn into the reference scene: each changes albedo and/or height and returns its exact footprint.

One function per :class:`DefectType`, in :data:`DEFECTS`. Sizes are in pixels of the default 256x320 station
and scale with it; every defect lies on the plate (``Scene.flat``, or a mounting hole for ``missing_hole``).
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from edgead.data.synthetic.part import Scene, build_scene
from edgead.data.synthetic.spec import DefectType, StationSpec

Drawn = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(albedo HxWx3 float32, height HxW float32, footprint HxW float32 in [0, 1]; >= 0.5 is defect)."""

_FOREIGN = ((72.0, 50.0, 30.0), (150.0, 82.0, 40.0), (55.0, 85.0, 150.0), (34.0, 34.0, 36.0))
"""Oil, rust, blue paint, black grease: colours of contamination."""

_TRIES = 200


def _place(scene: Scene, rng: np.random.Generator, radius: float) -> tuple[float, float]:
    """A random point whose disk of ``radius`` lies on plain plate surface."""
    free = cv2.erode(scene.flat.astype(np.uint8),
                     cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(radius) + 1,) * 2))
    ys, xs = np.nonzero(free)
    if len(xs) == 0:  # pragma: no cover - the part always has flat area at the sizes StationSpec allows
        ys, xs = np.nonzero(scene.flat)
    i = rng.integers(len(xs))
    return float(xs[i]) + rng.uniform(-0.5, 0.5), float(ys[i]) + rng.uniform(-0.5, 0.5)


def _local_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return noise / (noise.std() + 1e-6)


def scratch(scene: Scene, spec: StationSpec, rng: np.random.Generator) -> Drawn:
    """A thin curved groove, brighter or darker than the brushed surface, 20-45 px long."""
    s = spec.scale
    hw = scene.height.shape
    for _ in range(_TRIES):
        length = rng.uniform(20, 45) * s
        x0, y0 = _place(scene, rng, 3 * s)
        theta = rng.uniform(0, np.pi)
        bend = rng.uniform(-0.25, 0.25) * length
        p0 = np.array([x0, y0])
        p2 = p0 + length * np.array([np.cos(theta), np.sin(theta)])
        p1 = (p0 + p2) / 2 + bend * np.array([-np.sin(theta), np.cos(theta)])
        t = np.linspace(0, 1, 40)[:, None]
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
        xi, yi = np.round(curve).astype(int).T
        if (xi.min() >= 0 and yi.min() >= 0 and xi.max() < hw[1] and yi.max() < hw[0]
                and scene.flat[yi, xi].all()):
            break
    line = np.zeros(hw, np.float32)
    cv2.polylines(line, [np.round(curve * 16).astype(np.int32)], False, 1.0, max(1, int(round(1.2 * s))),
                  cv2.LINE_AA, 4)
    line = np.clip(line, 0, 1)
    fade = np.clip(1.2 * _local_noise(rng, hw, 3 * s) + 1.5, 0.6, 1.0)  # uneven depth along the stroke
    sign = rng.choice([-1.0, 1.0])
    albedo = scene.albedo * (1 + sign * 0.45 * line * fade)[:, :, None]
    height = scene.height - 1.5 * cv2.GaussianBlur(line * fade, (0, 0), 0.6 * s)
    footprint = cv2.dilate(line, np.ones((3, 3), np.uint8))
    return albedo.astype(np.float32), height.astype(np.float32), footprint


def dent(scene: Scene, spec: StationSpec, rng: np.random.Generator) -> Drawn:
    """An elliptical impact crater (radius 6-11 px): lit rim on one side, shadow on the other."""
    s = spec.scale
    r = rng.uniform(6, 11) * s
    x0, y0 = _place(scene, rng, r + 2)
    yy, xx = np.mgrid[0:scene.height.shape[0], 0:scene.height.shape[1]].astype(np.float32)
    theta, ratio = rng.uniform(0, np.pi), rng.uniform(0.65, 1.0)
    u = (xx - x0) * np.cos(theta) + (yy - y0) * np.sin(theta)
    v = ((yy - y0) * np.cos(theta) - (xx - x0) * np.sin(theta)) / ratio
    d2 = (u * u + v * v) / (r * r)
    depth = rng.uniform(3.0, 5.0) * s
    height = scene.height - depth * np.exp(-4.0 * d2) * (d2 < 2.25)
    tint = rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.25)  # burnished or dulled metal in the crater
    albedo = scene.albedo * (1 + tint * np.exp(-3.0 * d2))[:, :, None]
    footprint = np.clip(1.5 - d2, 0, 1).astype(np.float32)  # >= 0.5 inside the ellipse of radius r
    return albedo.astype(np.float32), height.astype(np.float32), footprint


def missing_hole(scene: Scene, spec: StationSpec, rng: np.random.Generator) -> Drawn:
    """One mounting hole not drilled: plain plate where the hole and its chamfer should be."""
    i = int(rng.integers(len(scene.holes)))
    undrilled = build_scene(spec.height, spec.width, spec.part_seed, omit_hole=i)
    hole = scene.holes[i]
    footprint = np.zeros(scene.height.shape, np.float32)
    radius = hole.r + 2.5 * spec.scale  # the hole and its chamfer ring
    cv2.circle(footprint, (int(round(hole.x * 16)), int(round(hole.y * 16))), int(round(radius * 16)), 1.0, -1,
               cv2.LINE_AA, 4)
    return undrilled.albedo.copy(), undrilled.height.copy(), np.clip(footprint, 0, 1)


def contamination(scene: Scene, spec: StationSpec, rng: np.random.Generator) -> Drawn:
    """A blob of oil, rust, paint or grease (radius 5-10 px) with its own texture."""
    s = spec.scale
    r = rng.uniform(5, 10) * s
    x0, y0 = _place(scene, rng, 1.4 * r + 2)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 14))
    radii = r * np.clip(1 + 0.3 * rng.standard_normal(14), 0.5, 1.4)
    pts = np.stack([x0 + radii * np.cos(angles), y0 + radii * np.sin(angles)], 1)
    blob = np.zeros(scene.height.shape, np.float32)
    cv2.fillPoly(blob, [np.round(pts * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
    blob = cv2.GaussianBlur(blob, (0, 0), 0.8 * s)
    colour = np.array(_FOREIGN[rng.integers(len(_FOREIGN))], np.float32)
    texture = (1 + 0.15 * _local_noise(rng, blob.shape, 1.0 * s))[:, :, None]
    alpha = (np.clip(blob, 0, 1) * rng.uniform(0.8, 0.95))[:, :, None]
    albedo = scene.albedo * (1 - alpha) + colour * texture * alpha
    height = scene.height + 1.0 * blob
    return albedo.astype(np.float32), height.astype(np.float32), np.clip(blob, 0, 1)


DEFECTS: dict[DefectType, Callable[[Scene, StationSpec, np.random.Generator], Drawn]] = {
    DefectType.SCRATCH: scratch,
    DefectType.DENT: dent,
    DefectType.MISSING_HOLE: missing_hole,
    DefectType.CONTAMINATION: contamination,
}
"""How each defect type is drawn."""
