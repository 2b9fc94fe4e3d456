"""How a part larger than the model input, or turned either way, is fed to the engine: orientation and tiles.

Real parts are not square (docs/station-setup.md, "Large and elongated parts"). A tile photographed upright and one
photographed lying down are the same part to an inspector, but a model squashes them into one input shape in two
different ways. A crack 1 px wide on a 500 x 1250 px commutator vanishes when the whole part is resized to 256 px.

A :class:`Layout` says what the station does before the engine sees a frame (or an ROI), and how the maps come back:

1. **orientation**: turn the image a quarter turn when it is not ``landscape`` (width >= height) or ``portrait``
   as asked, so every part reaches the model the same way up (``keep``: never turn);
2. **tiles**: cut the (turned) image at native resolution into ``tile_hw`` windows overlapping by at least
   ``overlap_px``; the last window of a row or column is aligned to the edge, so every pixel is covered and no tile
   is padded; each tile is one inference;
3. **stitching**: each tile's map is resized to the tile, and the maps are combined by their maximum where tiles
   overlap, then turned back: the map comes back at the image's native resolution and orientation. The part's
   score is the maximum over its tiles, so one defective tile rejects the part.

The bundle records the layout it was trained with (``layout`` in ``edgead.yaml``, ``BundleMeta.layout``: the record is
:mod:`edgead.contract.layout`); eval, predict and the station apply it. Pure numpy and OpenCV: the station runtime
imports no torch.

Example:
    >>> windows((300, 700), (256, 256), 32)
    [(0, 0), (0, 222), (0, 444), (44, 0), (44, 222), (44, 444)]
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from edgead.contract.layout import Layout, Orientation
from edgead.infer.base import Prediction

__all__ = ["Layout", "Orientation", "infer_layout", "infer_images", "layout_images", "map_hw", "quarter_turns",
           "stitch", "tiles", "turn", "windows"]


def quarter_turns(hw: Sequence[int], orientation: Orientation) -> int:
    """1 when an image of this size must turn to reach ``orientation``, else 0."""
    h, w = int(hw[0]), int(hw[1])
    if orientation is Orientation.LANDSCAPE:
        return int(h > w)
    if orientation is Orientation.PORTRAIT:
        return int(w > h)
    return 0


def turn(image: np.ndarray, turns: int) -> np.ndarray:
    """The image (``[H, W, ...]``) turned ``turns`` quarter turns counter-clockwise (a view)."""
    return np.rot90(image, turns, axes=(0, 1)) if turns % 4 else image


def windows(hw: Sequence[int], tile_hw: Sequence[int], overlap_px: int = 0) -> list[tuple[int, int]]:
    """Top-left corners of the tiles covering an image, row by row.

    Along each axis the fewest tiles with at least ``overlap_px`` overlap, spread evenly from edge to edge (the
    last one ends at the edge). An image smaller than a tile along an axis gets one window there (the tile is then
    that short: the graph resizes it).

    Returns:
        ``[(y, x), ...]``.
    """
    def starts(size: int, tile: int) -> list[int]:
        if size <= tile:
            return [0]
        count = math.ceil((size - overlap_px) / (tile - overlap_px))
        count = max(count, 2)
        return [round(i * (size - tile) / (count - 1)) for i in range(count)]

    return [(y, x) for y in starts(int(hw[0]), int(tile_hw[0])) for x in starts(int(hw[1]), int(tile_hw[1]))]


def tiles(image: np.ndarray, layout: Layout) -> tuple[list[np.ndarray], list[tuple[int, int]], int]:
    """The oriented image cut into the layout's tiles (views).

    Returns:
        ``(tiles, corners, turns)``: the tiles, their top-left corners in the oriented image, the quarter turns.
    """
    turns = quarter_turns(image.shape[:2], layout.orientation)
    oriented = turn(image, turns)
    if layout.tile_hw is None:
        return [oriented], [(0, 0)], turns
    th, tw = layout.tile_hw
    corners = windows(oriented.shape[:2], layout.tile_hw, layout.overlap_px)
    return [oriented[y:y + th, x:x + tw] for y, x in corners], corners, turns


def stitch(maps: Sequence[np.ndarray], corners: Sequence[tuple[int, int]], tile_shapes: Sequence[tuple[int, int]],
           hw: tuple[int, int]) -> np.ndarray:
    """Tile maps (any resolution) -> one map of size ``hw``, each resized to its tile, maximum where they overlap."""
    out = np.full(hw, -np.inf, np.float32)
    for amap, (y, x), (th, tw) in zip(maps, corners, tile_shapes):
        tile = cv2.resize(np.asarray(amap, np.float32), (tw, th), interpolation=cv2.INTER_LINEAR)
        np.maximum(out[y:y + th, x:x + tw], tile, out=out[y:y + th, x:x + tw])
    return out


def infer_layout(engine, image: np.ndarray, layout: Layout) -> Prediction:
    """Infer one ``[H, W, C]`` image through ``layout``: a batch-of-one :class:`Prediction`.

    Plain layout: exactly ``engine.infer(image[None])``. Turned only: the maps (model resolution) are turned
    back. Tiled: one inference per tile (``engine.infer_many``), scores the maximum over the tiles, maps stitched at
    the image's native resolution and turned back.
    """
    if layout.is_plain:
        return engine.infer(np.ascontiguousarray(image)[None])
    parts, corners, turns = tiles(image, layout)
    preds = engine.infer_many([np.ascontiguousarray(p)[None] for p in parts])
    if layout.tile_hw is None:
        p = preds[0]
        back = (lambda m: np.ascontiguousarray(turn(m[0], -turns))[None])
        return Prediction(p.score, back(p.map), p.raw_score, back(p.raw_map))
    oriented_hw = turn(image, turns).shape[:2]
    shapes = [p.shape[:2] for p in parts]

    def whole(key: str) -> np.ndarray:
        return np.ascontiguousarray(turn(stitch([getattr(p, key)[0] for p in preds], corners, shapes,
                                                  oriented_hw), -turns))[None]

    best = int(np.argmax([float(p.raw_score[0]) for p in preds]))
    score = np.array([max(float(p.score[0]) for p in preds)], np.float32)
    return Prediction(score, whole("map"), preds[best].raw_score[:1].astype(np.float32), whole("raw_map"))


def map_hw(image_hw: Sequence[int], model_hw: Sequence[int], layout: Layout) -> tuple[int, int]:
    """The size of the map :func:`infer_layout` returns for an image of ``image_hw``: the image's own when tiled,
    else the model's, turned back with the image."""
    if layout.tile_hw is not None:
        return int(image_hw[0]), int(image_hw[1])
    h, w = int(model_hw[0]), int(model_hw[1])
    return (w, h) if quarter_turns(image_hw, layout.orientation) % 2 else (h, w)


def infer_images(engine, images, layout: Layout, batch_size: int = 8) -> Prediction:
    """Infer many ``[H, W, C]`` images (an ``[N, H, W, C]`` array or a list) through ``layout``, in order.

    Plain layout: batches of ``batch_size`` (a list of different sizes: one by one). Otherwise each image through
    :func:`infer_layout`, the station's path. The maps are ``[N, h, w]`` arrays when they share a size, else
    lists of per-image ``[h_i, w_i]`` arrays (tiled parts of different sizes).
    """
    if layout.is_plain:
        if isinstance(images, list):
            parts = [engine.infer(np.ascontiguousarray(im)[None]) for im in images]
        else:
            parts = [engine.infer(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return Prediction.concatenate(parts)
    parts = [infer_layout(engine, im, layout) for im in images]
    if len({p.map.shape for p in parts}) == 1:
        return Prediction.concatenate(parts)
    return Prediction(np.concatenate([p.score for p in parts]), [p.map[0] for p in parts],
                      np.concatenate([p.raw_score for p in parts]), [p.raw_map[0] for p in parts])


def layout_images(image: np.ndarray, layout: Layout) -> list[np.ndarray]:
    """What a model trained with ``layout`` is fitted on for one training image: its oriented tiles."""
    return [np.ascontiguousarray(t) for t in tiles(image, layout)[0]]

