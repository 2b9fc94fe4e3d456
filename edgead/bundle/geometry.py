"""The geometry a model was trained for, recorded in its bundle and checked against a station (pure).

``edgead train`` records, in ``edgead.yaml``::

    geometry:
      reference: {pixels_sha256: ..., height: 256, width: 320, channels: 3}   # what the training set was aligned to
      image: {height: 256, width: 320}                                      # the size of every training image

``reference`` is present when the training data came with its reference (``DATA/reference.png``, written by
``edgead align``, or ``edgead train --reference``); ``image`` when every training image had one size. The fingerprint
is over the decoded pixels in the bundle's colour mode, so re-encoding the PNG keeps it. The typed section is
:class:`edgead.contract.integrity.Geometry` (``bundle.meta.geometry``).

At a station (``edgead check``, ``run``, reload, the deploy self-test), :func:`geometry_problems` compares the
station's reference and the size of what the model will see (each ROI, or the aligned frame, which has the
reference's size) with that record.

Example:
    >>> ref = np.zeros((4, 6, 1), np.uint8)
    >>> rec = geometry_record(ref, (4, 6))
    >>> geometry_problems(rec, ref, "ref.png", [])
    []
    >>> geometry_problems(rec, ref, "ref.png", [("ROI 'bore'", 2, 6)])
    ["ROI 'bore' is 6x2 px; the model was trained on 6x4 px images (geometry.image)"]
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from edgead.contract.integrity import Geometry, ReferenceRecord


def pixels_sha256(image: np.ndarray) -> str:
    """sha256 over ``HxWxC`` and the uint8 pixels (independent of the file's encoding)."""
    h, w = image.shape[:2]
    c = image.shape[2] if image.ndim == 3 else 1
    digest = hashlib.sha256(f"{h}x{w}x{c}\n".encode())
    digest.update(np.ascontiguousarray(image, np.uint8).tobytes())
    return digest.hexdigest()


def reference_record(image: np.ndarray) -> ReferenceRecord:
    """The ``geometry.reference`` entry of a reference image (as loaded in the bundle's colour mode)."""
    return ReferenceRecord(pixels_sha256(image), int(image.shape[0]), int(image.shape[1]),
                           int(image.shape[2]) if image.ndim == 3 else 1)


def geometry_record(reference: np.ndarray | None, image_hw: tuple[int, int] | None) -> Geometry | None:
    """The ``geometry`` section: the reference (if any) and the common training-image size (if any); None when
    there is neither."""
    if reference is None and image_hw is None:
        return None
    return Geometry(None if reference is None else reference_record(reference),
                    None if image_hw is None else (int(image_hw[0]), int(image_hw[1])))


def common_size(shapes: Sequence[tuple[int, ...]]) -> tuple[int, int] | None:
    """``(h, w)`` when every shape has the same height and width, else None."""
    sizes = {tuple(int(v) for v in s[:2]) for s in shapes}
    return next(iter(sizes)) if len(sizes) == 1 else None


def geometry_problems(record: Geometry | None, reference: np.ndarray | None, reference_name: str,
                      inputs: Sequence[tuple[str, int, int]]) -> list[str]:
    """Every way the station differs from the geometry the bundle records; empty when it matches.

    Args:
        record: the bundle's ``geometry`` section (None: nothing recorded, nothing to compare).
        reference: the station's reference image in the bundle's colour mode (None: the station has none).
        reference_name: its file, for messages.
        inputs: what the model will see: ``(ROI name, height, width)`` per ROI; without ROIs, the aligned frame
            (the reference's size). Empty when the station has no reference (frame size unknown before capture).

    Returns:
        One sentence per difference, naming both sides.
    """
    if record is None:
        return []
    problems = []
    rec = record.reference
    if rec is not None and reference is not None:
        got = reference_record(reference)
        if got.size != rec.size:
            problems.append(f"reference {reference_name} is {got.width}x{got.height} px; the bundle was trained "
                            f"against a {rec.width}x{rec.height} px reference")
        elif got.pixels_sha256 != rec.pixels_sha256:
            problems.append(f"reference {reference_name} (pixels {got.pixels_sha256[:12]}) is not the reference the "
                            f"bundle was trained against (pixels {rec.pixels_sha256[:12]})")
    if record.image_hw is not None:
        want = record.image_hw
        for name, h, w in inputs:
            if (h, w) != want:
                problems.append(f"{name} is {w}x{h} px; the model was trained on {want[1]}x{want[0]} px images "
                                "(geometry.image)")
    return problems
