"""Move a bundle's threshold after training, without retraining: metadata and graph initializers together."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from edgead.bundle import ONNX, Bundle, load_bundle, update_bundle
from edgead.contract.thresholds import adjust
from edgead.errors import ConfigError


def set_threshold(bundle_path: str | os.PathLike, *, image_threshold: float | None = None,
                  target_frr: float | None = None, data: str | os.PathLike | None = None,
                  out: str | os.PathLike | None = None) -> Bundle:
    """Set the raw image threshold directly, or recalibrate it to a target false-reject rate on good images.

    Args:
        bundle_path: the bundle to change.
        image_threshold: new raw threshold (``thresholds.method`` becomes ``manual``).
        target_frr: recalibrate on the good images of ``data`` (a folder of images or an MVTec category).
        data: good images for ``target_frr``.
        out: write a new bundle there (default: in place; the model hash changes either way).

    Returns:
        The rewritten, verified bundle.

    Raises:
        ConfigError: neither or both of ``image_threshold`` and ``target_frr``, or ``target_frr`` without data.
    """
    from edgead.convert.onnx_edit import set_normalisation

    if (image_threshold is None) == (target_frr is None):
        raise ConfigError("give exactly one of image_threshold or target_frr")
    bundle = load_bundle(bundle_path)
    cal = bundle.meta.calibration
    good_scores = None
    if target_frr is not None:
        if data is None:
            raise ConfigError("--target-frr needs --data: a folder of good images to recalibrate on")
        good_scores = _good_raw_scores(bundle, Path(data))
    new = adjust(cal, image_threshold=image_threshold, target_frr=target_frr, good_scores=good_scores)
    with tempfile.TemporaryDirectory(prefix="edgead-thr-") as tmp:
        onnx_path = set_normalisation(bundle.onnx_path, new, Path(tmp) / ONNX)
        return update_bundle(bundle, meta=bundle.meta.replace(calibration=new), files={ONNX: onnx_path},
                             out_dir=out)


def _good_raw_scores(bundle: Bundle, data: Path) -> np.ndarray:
    from edgead.data import load_image, scan_category, scan_good_folder
    from edgead.infer import open_backend

    samples = (scan_category(data) if (data / "train").is_dir() else scan_good_folder(data)).train
    color = bundle.meta.color
    with open_backend(bundle.root) as engine:
        return np.array([float(engine.infer(load_image(s.path, color)[None]).raw_score[0]) for s in samples])
