"""The Python API's station half: judge one image as the station does, in three lines.

    from edgead import Inspector
    insp = Inspector("bracket.edgead")
    result = insp.inspect(image)

:class:`Inspector` opens the bundle's engine once (ONNX Runtime, or a TensorRT engine built on this machine) and
judges each image with the station's own code: :class:`edgead.daemon.model.LoadedModel`'s alignment (optional) and
inference, and the one verdict rule, :func:`edgead.contract.decide.decide` (normalised score >= 0.5, NaN never
accepted, the optional defect-area rule), timed per stage as the daemon times them. No torch is imported.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from edgead.errors import AlignmentError, ConfigError, ImageError, short_path
from edgead.verdict import Verdict

REFERENCE_FILE = "reference.png"
"""The bundle file holding the reference image of a good part (written by ``edgead train`` when the data has one)."""


@dataclass(frozen=True)
class InspectionResult:
    """One image's judgement.

    Attributes:
        verdict: ``ACCEPT``, ``REJECT``, or ``NO_READ`` when the image could not be aligned.
        score: the normalised image score (0.5 is the threshold; higher is more anomalous); None without one.
        raw_score: the model's raw image score; None when not inferred.
        anomaly_map: the normalised anomaly map, float32 ``[h, w]`` at the model's resolution (0.5 is the
            threshold); None when not inferred.
        defect_area_px: above-threshold map area in pixels of the inspected image; None when not inferred.
        timings_ms: milliseconds per stage: ``align`` (when aligning), ``infer``, ``decide`` and ``total``.
        align_quality: the alignment's quality score (None without alignment).
        error: why the image got ``NO_READ`` (None otherwise).
    """

    verdict: Verdict
    score: float | None
    raw_score: float | None
    anomaly_map: np.ndarray | None
    defect_area_px: int | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    align_quality: float | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        """True only for ``ACCEPT``."""
        return self.verdict.passes


class Inspector:
    """A bundle, opened once, that judges images the way the station does.

    Args:
        bundle: a bundle directory or ``.edgead`` archive (converted bundles included).
        align: align each image to the bundle's reference image first (the bundle must carry one: train on an
            aligned dataset, which has ``reference.png``, or pass ``reference``).
        reference: align to this reference image instead (implies ``align``).
        min_defect_area_px: the station's ``decision.min_defect_area_px`` (0: the score alone decides).
        backend: ``onnxruntime`` or ``tensorrt`` (default: the bundle's).
        engine: a TensorRT engine built from this bundle on this machine (``edgead build-engine``).
        trusted_keys: admit the bundle only if one of these public keys (``edgead-ed25519 ...`` lines or ``.pub``
            files) signed it, as a station does (``security.trusted_keys``). Default: none; the hashes are still
            verified and a tampered signature is refused, but an unsigned bundle runs (with a warning), as on the
            build host that trained it.

    Raises:
        BundleError: the bundle is missing, tampered with or of another format.  TrustError: ``trusted_keys``
        given and none of them signed it.  ConfigError: ``align`` without a reference, or a reference other than
        the one the bundle was trained against.  EngineError: the engine cannot be opened.

    Example:
        >>> with Inspector("bracket.edgead", align=True) as insp:        # doctest: +SKIP
        ...     print(insp.inspect("part.png").verdict)
    """

    def __init__(self, bundle: str | os.PathLike, *, align: bool = False, reference: str | os.PathLike | None = None,
                 min_defect_area_px: int = 0, backend: str | None = None, engine: str | os.PathLike | None = None,
                 trusted_keys: Sequence[str | os.PathLike] = ()):
        from edgead.bundle import load_bundle
        from edgead.daemon.config import ModelSection, SecuritySection, StationConfig
        from edgead.daemon.decide import DecisionConfig
        from edgead.daemon.model import load_model
        from edgead.infer import BackendKind

        self.bundle = load_bundle(bundle)
        self.color = self.bundle.meta.color
        if reference is None and align:
            reference = self._bundle_reference()
        model = ModelSection(bundle=self.bundle.root, engine=Path(engine) if engine else None,
                             backend=BackendKind(backend) if backend else None, warmup_runs=0)
        self.decision = DecisionConfig(min_defect_area_px=min_defect_area_px)
        security = SecuritySection(trusted_keys=tuple(str(k) for k in trusted_keys),
                                   allow_unsigned=not trusted_keys)
        cfg = StationConfig(model=model, reference=Path(reference) if reference is not None else None,
                            decision=self.decision, security=security)
        self._model = load_model(cfg)

    def _bundle_reference(self) -> Path:
        path = self.bundle.root / REFERENCE_FILE
        if REFERENCE_FILE not in self.bundle.manifest["files"] or not path.is_file():
            raise ConfigError(f"bundle {short_path(self.bundle.root)} carries no reference image to align to",
                              hint="train it on an aligned dataset (edgead align writes reference.png), "
                                   "or pass reference=PATH")
        return path

    @property
    def aligns(self) -> bool:
        """Whether images are aligned to a reference before inference."""
        return self._model.aligner is not None

    def inspect(self, image: np.ndarray | str | os.PathLike) -> InspectionResult:
        """Judge one image.

        Args:
            image: a path, or a uint8 array ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` (RGB order; OpenCV's
                ``imread`` gives BGR: convert with ``image[:, :, ::-1]``).

        Returns:
            The :class:`InspectionResult`. An image that cannot be aligned gets ``NO_READ`` (never an accept).

        Raises:
            ImageError: unreadable file, or an array of another dtype or shape.  EngineError: inference failed.
        """
        from edgead.contract.decide import decide

        frame = self._frame(image)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        try:
            aligned, quality = self._model.align(frame)
        except AlignmentError as exc:
            timings["align"] = timings["total"] = _ms(t0)
            return InspectionResult(self.decision.no_read_as, None, None, None, None, timings,
                                    error=f"alignment: {exc.message}")
        if self.aligns:
            timings["align"] = _ms(t0)
        t = time.perf_counter()
        predictions = self._model.infer_rois(aligned)
        timings["infer"] = _ms(t)
        t = time.perf_counter()
        decision = decide(predictions, self.decision)
        timings["decide"] = _ms(t)
        timings["total"] = _ms(t0)
        (roi,) = decision.rois
        return InspectionResult(decision.verdict, roi.score, roi.raw_score,
                                np.asarray(predictions[0].prediction.map[0], np.float32), roi.defect_area_px,
                                timings, quality)

    def _frame(self, image) -> np.ndarray:
        from edgead.data import load_image

        if isinstance(image, (str, os.PathLike)):
            return load_image(image, self.color)
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise ImageError(f"image array is {arr.dtype}, expected uint8", hint="e.g. np.clip(x, 0, 255).astype"
                             "(np.uint8), or pass the image file's path")
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 3) or min(arr.shape[:2]) < 1:
            raise ImageError(f"image array has shape {arr.shape}, expected [H, W], [H, W, 1] or [H, W, 3]")
        return np.ascontiguousarray(arr)

    def close(self) -> None:
        """Release the engine."""
        self._model.close()

    def __enter__(self) -> "Inspector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3
