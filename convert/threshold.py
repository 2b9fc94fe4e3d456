"""Move a bundle's threshold after training, without retraining: metadata and graph initializers together.

The threshold is set directly, or chosen on ``--data`` by a method: a target false-reject rate (good images), a
target escape rate (labelled defects) or the best F1 (both). The rates on both sides at the chosen threshold, with
their confidence bounds and any warning that the sample cannot support the target, go into the bundle's
``thresholds.operating_point`` (docs/bundle-format.md).
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgead.bundle import ONNX, Bundle, check_output, load_bundle, pack_bundle, update_bundle
from edgead.bundle.signing import KeySource
from edgead.calibration.operating_point import operating_point, support_warnings
from edgead.contract.thresholds import ThresholdMethod, adjust, retune
from edgead.errors import ConfigError

log = logging.getLogger(__name__)


def set_threshold(bundle_path: str | os.PathLike, *, image_threshold: float | None = None,
                  target_frr: float | None = None, data: str | os.PathLike | None = None,
                  out: str | os.PathLike | None = None, target_escape_rate: float | None = None,
                  method: ThresholdMethod | str | None = None, confidence: float = 0.95,
                  in_place: bool = False, sign_key: KeySource | None = None) -> Bundle:
    """Set the raw image threshold directly, or choose it on ``data`` by a method.

    Args:
        bundle_path: the bundle to change.
        image_threshold: new raw threshold (``thresholds.method`` becomes ``manual``).
        target_frr: choose the threshold for this false-reject rate on the good images of ``data``.
        data: an MVTec category (its ``test/`` split is the labelled set: good and defective images; without one,
            ``train/good``), or a folder of good images.
        out: write a new bundle there (a directory, or ``NAME.edgead``); it must not exist.
        target_escape_rate: choose the highest threshold whose escape rate on the labelled defects of ``data`` is
            at most this.
        method: ``f1`` (best F1 on the labelled set of ``data``); the other methods follow from the argument given.
        confidence: of the bounds in the operating point.
        in_place: rewrite ``bundle_path`` itself (a directory, or an archive re-packed), instead of ``out``; the
            model hash changes either way.
        sign_key: Ed25519 private key (or its file) to sign the result with (None: unsigned; an old signature
            never survives a change).

    Returns:
        The rewritten, verified bundle; ``meta.calibration.operating_point`` holds both rates with their
        bounds (sides without images in ``data`` are None) and ``warnings``.

    Raises:
        ConfigError: not exactly one way to set the threshold, or a method without ``data``; neither or both of
            ``out`` and ``in_place``.
        OutputError: ``out`` exists.
        CalibrationError: a method without the images it needs (e.g. ``escape`` without defects).
    """
    from edgead.convert.onnx_edit import set_normalisation

    chosen = _method(image_threshold, target_frr, target_escape_rate, method)
    if (out is None) == (not in_place):
        raise ConfigError("threshold writes a new bundle (--out) or rewrites --bundle (--in-place): give one",
                          hint="e.g. --out BUNDLE-v2; the model hash changes either way")
    if out is not None:
        check_output(out)
    bundle = load_bundle(bundle_path)
    cal = bundle.meta.calibration
    good = defects = None
    if data is not None:
        good, defects = labelled_raw_scores(bundle, Path(data))
    elif chosen is not ThresholdMethod.MANUAL:
        raise ConfigError(f"the {chosen.value!r} threshold method needs --data: a category (or folder of good images)"
                          " to choose the threshold on")
    if chosen is ThresholdMethod.MANUAL:
        new = adjust(cal, image_threshold=image_threshold, good_scores=good if good is not None and good.size else None)
    else:
        target = target_frr if chosen is ThresholdMethod.FRR else target_escape_rate
        new = retune(cal, chosen, good, defects, target=target)
    point = operating_point(new.image.thr, good, defects, confidence=confidence)
    warnings = []
    if chosen is ThresholdMethod.FRR:
        warnings = support_warnings("frr", target_frr, 0 if good is None else good.size, confidence)
    elif chosen is ThresholdMethod.ESCAPE:
        warnings = support_warnings("escape", target_escape_rate, defects.size, confidence)
    for w in warnings:
        log.warning("%s", w)
    new = replace(new, operating_point={**point, "warnings": warnings,
                                        "data": None if data is None else str(Path(data).resolve())})
    with tempfile.TemporaryDirectory(prefix="edgead-thr-") as tmp:
        onnx_path = set_normalisation(bundle.onnx_path, new, Path(tmp) / ONNX)
        return _write(bundle, bundle.meta.replace(calibration=new), {ONNX: onnx_path},
                      Path(out if out is not None else bundle_path), sign_key)


def _write(bundle: Bundle, meta, files: dict, dest: Path, sign_key: KeySource | None) -> Bundle:
    """The rewritten bundle at ``dest``: a directory, or an archive packed from a temporary one (an archive's
    unpacked copy is only a cache, so rewriting that would change nothing the user holds)."""
    if dest.suffix != ".edgead" and not dest.is_file():
        return update_bundle(bundle, meta=meta, files=files, out_dir=dest, sign_key=sign_key)
    with tempfile.TemporaryDirectory(prefix="edgead-thr-out-") as tmp:
        new = update_bundle(bundle, meta=meta, files=files, out_dir=Path(tmp) / dest.with_suffix("").name,
                            sign_key=sign_key)
        pack_bundle(new.root, dest)
    return load_bundle(dest)


def _method(image_threshold, target_frr, target_escape_rate, method) -> ThresholdMethod:
    given = [name for name, v in (("image_threshold", image_threshold), ("target_frr", target_frr),
                                  ("target_escape_rate", target_escape_rate), ("method", method)) if v is not None]
    if len(given) != 1:
        raise ConfigError(f"give exactly one of image_threshold, target_frr, target_escape_rate or method; got "
                          f"{given or 'none'}", hint="e.g. --target-escape-rate 0.01 --data CATEGORY")
    if image_threshold is not None:
        return ThresholdMethod.MANUAL
    if target_frr is not None:
        return ThresholdMethod.FRR
    if target_escape_rate is not None:
        return ThresholdMethod.ESCAPE
    if ThresholdMethod(method) is not ThresholdMethod.F1:
        raise ConfigError(f"method {method!r} takes its own argument", hint="use --target-frr, "
                          "--target-escape-rate or --image-threshold; --method takes f1")
    return ThresholdMethod.F1


def labelled_raw_scores(bundle: Bundle, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores ``(good, defective)`` of ``data``: a category's test split (its ``train/good`` when it has no test
    split), or a folder of good images (no defects)."""
    from edgead.data import load_image, scan_category, scan_good_folder
    from edgead.infer import open_backend

    if (data / "train").is_dir() or (data / "test").is_dir():
        category = scan_category(data)
        samples = category.test or category.train
    else:
        samples = scan_good_folder(data).train
    color = bundle.meta.color
    with open_backend(bundle.root) as engine:
        raw = np.array([float(engine.infer(load_image(s.path, color)[None]).raw_score[0]) for s in samples])
    labels = np.array([s.label for s in samples], bool)
    return raw[~labels], raw[labels]
