"""Test scenes for alignment: a textured rigid part, moved by known poses with cv2 warps (no downloads)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest


def textured_canvas(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A uint8 gray scene: multi-scale smooth noise plus filled discs and rectangle outlines."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width), np.float32)
    for sigma, amp in ((12, 1.0), (4, 0.6), (1.5, 0.3)):
        noise = cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), sigma)
        img += amp * noise / (noise.std() + 1e-6)
    img = (img - img.min()) / (img.max() - img.min()) * 160 + 40
    for _ in range(25):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.circle(img, (x, y), int(rng.integers(5, 30)), float(rng.integers(0, 255)), -1)
        cv2.rectangle(img, (x, y), (x + int(rng.integers(10, 60)), y + int(rng.integers(10, 60))),
                      float(rng.integers(0, 255)), 2)
    return np.clip(img, 0, 255).astype(np.uint8)


def pose(dx: float, dy: float, angle_deg: float, center: tuple[float, float], scale: float = 1.0) -> np.ndarray:
    """3x3 reference -> frame warp: rotate (and scale) about ``center``, then shift."""
    t = math.radians(angle_deg)
    c, s = math.cos(t) * scale, math.sin(t) * scale
    cx, cy = center
    return np.array([[c, -s, cx - c * cx + s * cy + dx], [s, c, cy - s * cx - c * cy + dy], [0.0, 0.0, 1.0]])


class Scene:
    """A canvas whose centre crop is the reference; frames show it under a known warp."""

    def __init__(self, height: int, width: int, seed: int = 0, margin: int = 160):
        self.hw = (height, width)
        self.canvas = textured_canvas(height + 2 * margin, width + 2 * margin, seed)
        self.offset = np.array([[1, 0, margin], [0, 1, margin], [0, 0, 1.0]])
        self.reference = self.canvas[margin:margin + height, margin:margin + width].copy()
        self.center = ((width - 1) / 2.0, (height - 1) / 2.0)

    def pose(self, dx: float, dy: float, angle_deg: float, scale: float = 1.0) -> np.ndarray:
        """3x3 warp of a part moved by (dx, dy) and rotated about the reference centre."""
        return pose(dx, dy, angle_deg, self.center, scale)

    def frame(self, warp: np.ndarray) -> np.ndarray:
        """The frame in which reference pixel x appears at ``warp @ x``."""
        h, w = self.hw
        to_canvas = self.offset @ np.linalg.inv(warp)  # frame pixel -> canvas pixel
        return cv2.warpPerspective(self.canvas, to_canvas, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REFLECT)

    def corner_error(self, true: np.ndarray, estimated: np.ndarray, margin: float = 0.1) -> float:
        """Max displacement (px) of the part's corner points between the true and the estimated warp."""
        h, w = self.hw
        pts = np.array([[w * margin, h * margin], [w * (1 - margin), h * margin],
                        [w * (1 - margin), h * (1 - margin)], [w * margin, h * (1 - margin)]])
        est = estimated if estimated.shape == (3, 3) else np.vstack([estimated, [0.0, 0.0, 1.0]])

        def apply(m: np.ndarray) -> np.ndarray:
            p = np.c_[pts, np.ones(len(pts))] @ m.T
            return p[:, :2] / p[:, 2:]

        return float(np.max(np.linalg.norm(apply(true) - apply(est), axis=1)))


@pytest.fixture(scope="session")
def scene() -> Scene:
    return Scene(256, 320, seed=1)


@pytest.fixture(scope="session")
def other_scene() -> Scene:
    return Scene(256, 320, seed=7)


class LargeScene(Scene):
    """A scene whose structure scales with the image, as a real part's does on a high-resolution camera."""

    def __init__(self, height: int, width: int, seed: int = 3, margin: int = 128, factor: int = 8):
        self.hw = (height, width)
        small = textured_canvas((height + 2 * margin) // factor, (width + 2 * margin) // factor, seed)
        canvas = cv2.resize(small, (width + 2 * margin, height + 2 * margin), interpolation=cv2.INTER_CUBIC)
        grain = np.random.default_rng(seed).normal(0, 12, canvas.shape).astype(np.float32)
        self.canvas = np.clip(canvas + cv2.GaussianBlur(grain, (0, 0), 1.5), 0, 255).astype(np.uint8)
        self.offset = np.array([[1, 0, margin], [0, 1, margin], [0, 0, 1.0]])
        self.reference = self.canvas[margin:margin + height, margin:margin + width].copy()
        self.center = ((width - 1) / 2.0, (height - 1) / 2.0)


@pytest.fixture(scope="session")
def large_scene() -> LargeScene:
    return LargeScene(1024, 1280)
