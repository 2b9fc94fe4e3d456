"""What a SIGHUP reloads as one unit: the engine, the reference/aligner and the ROIs; and how one frame is judged.

:func:`load_model` builds a complete, warmed-up :class:`LoadedModel` before anything is swapped, so a bad new
bundle or reference leaves the running one untouched. :meth:`LoadedModel.inspect` is the station's judgement of one
frame (align, one inference per ROI, :func:`edgead.contract.decide.decide`), which ``edgead predict`` and the deploy
self-test run too; the daemon's loop makes the same three calls with a timing around each.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from edgead.align import Aligner
from edgead.align.aligner import resample_onto
from edgead.align.ring import FrameRing
from edgead.align.roi import Roi, crop_rois
from edgead.contract.decide import WHOLE_IMAGE, Decision, RoiPrediction, decide
from edgead.daemon.admission import Admission, admit
from edgead.daemon.config import SaveImages, StationConfig
from edgead.daemon.decide import DecisionConfig
from edgead.errors import AlignmentError, EngineError
from edgead.infer import Backend, BackendKind, bundle_runtime, open_backend
from edgead.infer.layout import Layout, infer_layout
from edgead.infer.threads import engine_threads
from edgead.verdict import Verdict

log = logging.getLogger(__name__)
RING_MAX_BYTES = 256 << 20
"""The most memory the aligned-frame ring keeps (5 MP RGB frames: 17 of them)."""


@dataclass(frozen=True)
class Inspection:
    """The judgement of one frame.

    Attributes:
        verdict: the part's verdict (``decision.no_read_as`` when it could not be aligned).
        decision: the verdict rule's outcome per ROI (None when the frame could not be aligned).
        image: the image judged (aligned, in the bundle's channels); the frame when it could not be aligned.
        predictions: the engine's output per ROI, in ROI order (empty when not aligned).
        align_quality: the alignment's quality (None without a reference).
        error: why the part got no verdict of the rule (alignment), or None.
    """

    verdict: Verdict
    decision: Decision | None
    image: np.ndarray
    predictions: tuple[RoiPrediction, ...] = ()
    align_quality: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Placed:
    """A frame placed on the reference grid with only what inference needs resampled (the station's align stage).

    Attributes:
        frame: the frame, in the bundle's channels.
        image: the frame on the reference grid; None when the station has ROIs (only they were resampled).
        crops: each ROI on the reference grid, in order; None without ROIs.
        quality: the alignment's quality (None without a reference).
        warp: reference -> frame, 3x3 (None without a reference): :meth:`aligned` and the image archive resample
            the whole frame along it, off the hot path.
        size: the reference's ``(width, height)``.
    """

    frame: np.ndarray
    image: np.ndarray | None
    crops: list[np.ndarray] | None = None
    quality: float | None = None
    warp: np.ndarray | None = None
    size: tuple[int, int] | None = None

    def aligned(self) -> np.ndarray:
        """The whole frame on the reference grid (resampled now when only the ROIs were)."""
        if self.image is not None:
            return self.image
        return self.frame if self.warp is None else resample_onto(self.frame, self.warp, self.size)


@dataclass
class LoadedModel:
    """An open engine with its alignment and ROIs."""

    engine: Backend
    aligner: Aligner | None
    rois: list[Roi]
    channels: int
    model_hash: str
    layout: Layout = Layout()
    trust_note: str = ""
    good_quantiles: tuple[float, ...] | None = None  # the bundle's good-score quantiles (the drift alarm's baseline)
    reference: np.ndarray | None = None  # the reference image, in the bundle's channels (None without one)
    frames: FrameRing | None = None  # where :meth:`place` resamples whole frames (None: a new array each)

    def align(self, image: np.ndarray) -> tuple[np.ndarray, float | None]:
        """Frame -> (image on the reference grid, alignment quality); no reference: the frame as is.

        Raises:
            AlignmentError: the quality gate failed.
        """
        image = to_channels(image, self.channels)
        if self.aligner is None:
            return image, None
        aligned = self.aligner.align(image)
        return aligned.image, float(aligned.quality)

    def place(self, image: np.ndarray) -> Placed:
        """Register a frame to the reference and resample only what inference reads: each ROI onto its own canvas
        (:meth:`Aligner.resample` with ROIs), or the whole frame when there are none.

        Raises:
            AlignmentError: the quality gate failed.
        """
        frame = to_channels(image, self.channels)
        if self.aligner is None:
            return Placed(frame, frame, crop_rois(frame, self.rois) if self.rois else None)
        reg = self.aligner.register(frame)
        quality = float(reg.quality)
        if self.rois:
            crops = self.aligner.resample(frame, reg, self.rois)
            return Placed(frame, None, crops, quality, reg.warp, self.aligner.size)
        out = self.frames.take() if self.frames is not None and frame.shape == self.frames.shape else None
        return Placed(frame, self.aligner.resample(frame, reg, out=out), None, quality, reg.warp, self.aligner.size)

    def infer_rois(self, image: np.ndarray | Placed) -> list[RoiPrediction]:
        """One inference per ROI (the whole image, named ``part``, when there are none), sizes in camera pixels.

        Args:
            image: the aligned frame, or a :class:`Placed` frame (its ROI crops are used as they are).

        A bundle trained with a layout (orientation, native-resolution tiles) gets each ROI (or the frame) through
        it: tiles inferred, maps stitched back at the ROI's size, the ROI's score the maximum over its tiles.
        """
        placed_crops = None
        if isinstance(image, Placed):
            image, placed_crops = image.image, image.crops
        if not self.layout.is_plain:
            regions = placed_crops if placed_crops is not None else crop_rois(image, self.rois) if self.rois \
                else [image]
            names = [r.name for r in self.rois] or [WHOLE_IMAGE]
            return [RoiPrediction(n, c.shape[:2], infer_layout(self.engine, c, self.layout))
                    for n, c in zip(names, regions)]
        if not self.rois:
            return [RoiPrediction(WHOLE_IMAGE, image.shape[:2], self.engine.infer(np.ascontiguousarray(image)[None]))]
        crops = placed_crops if placed_crops is not None else crop_rois(image, self.rois)
        preds = self.engine.infer_many([np.ascontiguousarray(c)[None] for c in crops])  # overlapped on TensorRT
        return [RoiPrediction(r.name, c.shape[:2], p) for r, c, p in zip(self.rois, crops, preds)]

    def inspect(self, frame: np.ndarray, decision: DecisionConfig) -> Inspection:
        """Judge one frame as the station does: align, infer every ROI, :func:`~edgead.contract.decide.decide`.

        Args:
            frame: the captured image (mono or RGB uint8 ``[H, W, C]``).
            decision: the station's ``decision`` section (the rule's settings and ``no_read_as``).

        Returns:
            The :class:`Inspection`.

        Raises:
            EngineError: the engine failed.
        """
        try:
            image, quality = self.align(frame)
        except AlignmentError as exc:
            return Inspection(decision.no_read_as, None, frame, error=f"alignment: {exc}")
        predictions = self.infer_rois(image)
        result = decide(predictions, decision)
        return Inspection(result.verdict, result, image, tuple(predictions), quality)

    def close(self) -> None:
        self.engine.close()


def load_model(cfg: StationConfig, admission: Admission | None = None) -> LoadedModel:
    """Open and warm up the engine, load the reference and build the aligner, check the ROIs.

    Args:
        cfg: the station config (a recipe's, for a recipe).
        admission: what ``check`` admitted for this very config (start-up and reload check first); when None,
            the bundle goes through :func:`~edgead.daemon.admission.admit` here.

    Raises:
        BundleError, EngineError, ConfigError, ImageError, AlignmentError: naming the key or file.
    """
    if admission is None:
        admission = admit(cfg)  # the same gate as `edgead check`: hashes, signature, reference, ROIs, geometry
    for warning in admission.warnings:
        log.warning("%s", warning)
    bundle, color = admission.bundle, admission.color
    layout = bundle.meta.layout
    if cfg.model.engine is not None:
        # refuses an engine compiled from another bundle (header model_hash != bundle_sha256)
        engine = open_backend(cfg.model.engine, BackendKind.TENSORRT, bundle=bundle)
    else:
        engine = open_backend(bundle, cfg.model.backend, **cpu_options(cfg, bundle))  # verified once, just above
    try:
        engine.warmup(cfg.model.warmup_runs)
        aligner, rois = None, admission.rois
        if admission.reference is not None:
            aligner = admission.aligner or Aligner(admission.reference, cfg.alignment)
            _check_station_inputs(engine, admission.reference.shape, rois, color.channels, layout)
    except BaseException:
        engine.close()
        raise
    log.info("model %s %s loaded (%s), %d ROI(s), %s", bundle.model_type, bundle.model_hash[:12], engine.name,
             len(rois) or 1, admission.trust.note())
    frames = None
    if aligner is not None and not rois:
        h, w = admission.reference.shape[:2]
        frames = FrameRing((h, w, color.channels), np.uint8, ring_slots(cfg, h * w * color.channels))
    return LoadedModel(engine, aligner, rois, color.channels, bundle.model_hash, layout, admission.trust.note(),
                       bundle.meta.calibration.good_quantiles, admission.reference, frames)


def ring_slots(cfg: StationConfig, frame_bytes: int) -> int:
    """How many aligned frames the station's :class:`~edgead.align.ring.FrameRing` keeps: as many as can be held
    at once (the part in the loop; with images archived, ``runtime.image_queue`` in the writer's queue and the one
    it is writing; the shadow model copies its frame), at most :data:`RING_MAX_BYTES` of them. Frames beyond
    these are new arrays, as without a ring."""
    n = 1
    if cfg.storage.save_images is not SaveImages.NONE:
        n += cfg.runtime.image_queue + 1
    return max(1, min(n, RING_MAX_BYTES // max(1, frame_bytes)))


def cpu_options(cfg: StationConfig, bundle) -> dict:
    """The runtime's threading options (``model.intra_op_threads``, ``model.thread_wait``); none for TensorRT."""
    kind = cfg.model.backend or bundle_runtime(bundle.meta)[0]
    if kind is BackendKind.TENSORRT:
        return {}
    threads = engine_threads(cfg.model.intra_op_threads)
    log.info("inference on %s: %d thread(s) (model.intra_op_threads: %s), idle threads %s", kind.value, threads,
             getattr(cfg.model.intra_op_threads, "value", cfg.model.intra_op_threads), cfg.model.thread_wait.value)
    return {"intra_op_threads": threads, "thread_wait": cfg.model.thread_wait}


def _check_station_inputs(engine: Backend, reference_shape: tuple, rois: list[Roi], channels: int,
                          layout: Layout = Layout()) -> None:
    """Run the engine once on every input shape the station will feed it (each ROI, or the aligned frame), so that
    an engine whose input range (TensorRT's optimisation profile) does not cover them fails at start-up, before
    READY, instead of faulting every part.

    Raises:
        EngineError: naming the ROI (or the frame) and its size.
    """
    inputs = [(f"ROI {r.name!r}", r.height, r.width) for r in rois] or [("the aligned frame", *reference_shape[:2])]
    for what, height, width in inputs:
        try:
            infer_layout(engine, np.zeros((height, width, channels), np.uint8), layout)  # every tile size
        except EngineError as exc:
            raise EngineError(f"{what} ({width}x{height} px) does not fit the model's engine: {exc.message}",
                              hint=exc.hint) from exc


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Convert a camera frame (mono or RGB) to the bundle's channel count."""
    if image.shape[2] == channels:
        return image
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
    return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
