"""Train a detector on good images and write a verified bundle (pure API; the CLI only parses and calls this).

Steps: scan the data -> hold out good validation images -> fit -> score the validation set -> calibrate the
threshold (target false-reject rate, or F1 when defective validation images are given) -> export the
graph-contract ONNX -> check ONNX Runtime against torch -> write the bundle -> evaluate on the test split if any.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

import edgead
from edgead.bundle import ONNX, STATE, Bundle, write_bundle
from edgead.bundle.signing import KeySource
from edgead.contract.integrity import Geometry
from edgead.contract.thresholds import calibrate
from edgead.data import Color, fingerprint, load_image, scan_category
from edgead.data.split import holdout_split, validation_count
from edgead.errors import ConfigError, DataError, EngineError, writing
from edgead.infer.layout import Layout, layout_images
from edgead.inspector import REFERENCE_FILE
from edgead.models.device import fit_on, resolve_device
from edgead.models.export import Preprocess, export_onnx
from edgead.models.presets import Preset, parse_preset
from edgead.models.registry import MODELS, Supervision, build, default_preset, get_spec, preset_spec
from edgead.progress import Progress
from edgead.train.loader import Batches, predict_torch
from edgead.train.sizing import model_resolution

log = logging.getLogger(__name__)
PARITY_TOL = 1e-3  # relative, ONNX Runtime vs torch on the validation images


@dataclass(frozen=True)
class TrainConfig:
    """Training options (CLI flags map 1:1).

    Attributes:
        model: key of the model table (``edgead.models.registry.MODELS``).
        image_size: None (long side 256), a long side, or (height, width).
        val_fraction: share of ``train/good`` held out to calibrate the threshold.
        target_frr: target false-reject rate on good parts.
        seed: seed of the split and of the model's random choices.
        batch_size: images per forward pass.
        params: overrides of the model's default parameters.
        evaluate: evaluate the bundle on the ``test/`` split when present.
        supervision: ``LABELLED`` (CLI ``--labelled``) also fits on ``train/<defect_type>/`` defects; only models
            whose table row is ``LABELLED`` accept it, and they need it.
        device: where the model trains: ``auto`` (CUDA when torch sees a GPU), ``cpu`` or ``cuda[:N]``; the
            bundle records the one used (``training.device``).
        layout: orientation and native-resolution tiles (:class:`edgead.infer.layout.Layout`, or its dict): the
            model is fitted on the oriented tiles of the training images, and the bundle's ``layout`` section makes
            eval, predict and the station feed it the same way. With tiles and no ``image_size`` the model input
            is the tile size (native resolution).
        reference: the reference image of a good part the training images were aligned to (default: the data
            folder's ``reference.png`` when it has one; ``edgead synth`` and ``edgead align`` write it). The bundle
            carries it (``Inspector(..., align=True)`` aligns to it) and records its fingerprint and size
            (``geometry``), which stations check theirs against.
        preset: a preset of the model's table (``edgead.models.presets``); None: the strongest one that finishes
            in reasonable time on the training device (``registry.default_preset``: ``paper`` on CUDA). ``params``
            override it.
    """

    model: str = "patchcore"
    image_size: tuple[int, int] | int | None = None
    val_fraction: float = 0.2
    target_frr: float = 0.01
    seed: int = 0
    batch_size: int = 8
    params: dict = field(default_factory=dict)
    evaluate: bool = True
    supervision: Supervision = Supervision.UNSUPERVISED
    device: str = "auto"
    layout: Layout | dict | None = None
    reference: str | os.PathLike | None = None
    preset: Preset | str | None = None

    def __post_init__(self) -> None:
        checks = (("batch_size", "--batch-size", isinstance(self.batch_size, int) and self.batch_size >= 1,
                   "an integer of at least 1"),
                  ("val_fraction", "--val-fraction", _number(self.val_fraction) and 0.0 <= self.val_fraction < 1.0,
                   "at least 0 and below 1 (the share of train/good held out for the threshold)"),
                  ("target_frr", "--target-frr", _number(self.target_frr) and 0.0 < self.target_frr < 1.0,
                   "above 0 and below 1 (a rate: 0.01 is 1 %)"),
                  ("seed", "--seed", isinstance(self.seed, int) and self.seed >= 0, "an integer of at least 0"))
        for name, flag, ok, want in checks:
            if not ok:
                raise ConfigError(f"{flag} {getattr(self, name)!r}: must be {want}",
                                  hint=f"TrainConfig.{name} / {flag}; nothing was trained")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def resolve_preset(config: TrainConfig, device_type: str | None = None) -> Preset | None:
    """The preset a run uses: the named one (checked against the model's table), or the training device's default.

    Args:
        config: the training options.
        device_type: ``"cpu"`` or ``"cuda"`` (default: that of ``config.device``, resolved).

    Raises:
        ConfigError: if the model has no such preset, or the device is unknown or absent.
    """
    if config.preset is None:
        preset = default_preset(config.model, device_type or resolve_device(config.device).type)
        if preset is not None:
            _warn_if_weak(config.model, preset)
        return preset
    preset = parse_preset(config.preset)
    preset_spec(config.model, preset)
    return preset


CLEARLY_ABOVE_CHANCE = 65.0
"""Image AUROC (%) on magnetic_tile below which a default preset is reported as weak on hard real parts."""


def _warn_if_weak(model: str, preset: Preset) -> None:
    """Say so when the default preset was not measured to beat chance clearly on the hard real category, and what
    to use instead."""
    auroc = preset_spec(model, preset).magnetic_tile_auroc
    if auroc is None:
        log.warning("%s: the default preset on this device is %r, not measured on magnetic_tile, the hard real "
                    "category (docs/benchmarks.md, learning curves): its accuracy on hard real parts is unknown; "
                    "check it with edgead eval before a station uses it", model, preset.value)
    elif auroc < CLEARLY_ABOVE_CHANCE:
        log.warning("%s: the default preset on this device is %r, %.1f %% image AUROC on magnetic_tile, near chance "
                    "(docs/benchmarks.md, learning curves): for hard real parts use padim or patchcore (no training); "
                    "the larger presets (edgead train --help) are for a CUDA GPU and not measured there yet",
                    model, preset.value, auroc)


@dataclass(frozen=True)
class TrainResult:
    bundle: Bundle
    seconds: float
    metrics: dict | None


def train(data_dir: str | os.PathLike, out: str | os.PathLike, config: TrainConfig = TrainConfig(),
          progress: bool = True, sign_key: KeySource | None = None) -> TrainResult:
    """Train ``config.model`` on ``data_dir/train/good`` and write the bundle to ``out``.

    Args:
        data_dir: an MVTec-layout category (``train/good`` required; ``test/`` optional).
        out: the bundle directory to write (a ``.edgead`` archive can be packed from it).
        config: training options.
        progress: show progress bars.
        sign_key: Ed25519 private key (or its file) to sign the bundle with (None: unsigned).

    Returns:
        The :class:`TrainResult` with the bundle, the wall time and the test metrics (or None).

    Raises:
        DataError: missing/empty dataset, unreadable images, a labelled run without defects in ``train/``.
        ConfigError: unknown model, bad size, or a model/supervision mismatch.
    """
    from edgead.train import labelled

    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    spec = get_spec(config.model)
    labelled.check_supervision(config.model, Supervision(config.supervision))
    is_labelled = spec.supervision is Supervision.LABELLED
    category = scan_category(data_dir)
    defects = labelled.defective_images(category, Color(category.color)) if is_labelled else []
    color = Color(category.color)
    layout = config.layout if isinstance(config.layout, Layout) else Layout.from_dict(config.layout)
    n = len(category.train)
    fit_idx, val_idx = holdout_split(n, validation_count(n, config.val_fraction), config.seed)
    evaluate = config.evaluate and any(s.label == 1 for s in category.test)
    stages = Progress(3 if evaluate else 2, f"train {config.model}", enabled=progress, unit="stage")
    images = [load_image(s.path, color) for s in category.train]
    fit_images = [t for i in fit_idx for t in layout_images(images[i], layout)]
    median_hw = category.median_hw if layout.is_plain else tuple(np.median([t.shape[:2] for t in fit_images], 0))
    size = config.image_size if config.image_size is not None or layout.tile_hw is None else max(layout.tile_hw)
    hw = model_resolution(size, median_hw)  # tiles without --image-size: native resolution
    device = resolve_device(config.device)
    preset = resolve_preset(config, device.type)
    log.info("training %s (preset %s) on %s: %d fit (%d inputs), %d validation images at %dx%d %s on %s",
             config.model, getattr(preset, "value", "none"), category.name, len(fit_idx), len(fit_images), len(val_idx),
             hw[0], hw[1], color.value, device)
    params = {"seed": config.seed, **config.params} if "seed" in spec.defaults else dict(config.params)
    model = build(config.model, hw, preset=preset, **params)
    mean, std = [float(v) for v in model.backbone.mean], [float(v) for v in model.backbone.std]
    pre = Preprocess(hw, mean, std, color.channels)
    fit_options = {"defective": labelled.defective_batch(defects, pre)} if is_labelled else {}
    stages.note(f"{len(fit_idx)} fit ({len(fit_images)} inputs) + {len(val_idx)} validation images of "
                f"{category.name} at {hw[0]}x{hw[1]} {color.value}, preset {getattr(preset, 'value', 'none')}")
    fit_on(spec.fit, model, Batches(fit_images, pre, config.batch_size, seed=config.seed), device,
           progress=progress, **fit_options)
    del fit_images
    stages.update()
    stages.note(f"fitted in {time.perf_counter() - t0:.1f} s; calibrating, exporting ONNX")
    val_images = [images[i] for i in val_idx]
    used = category.train + category.train_defective if is_labelled else category.train
    training = {"data": str(Path(data_dir).resolve()), "data_fingerprint": fingerprint(used),
                "n_images": len(fit_idx), "n_validation": len(val_idx), "seed": config.seed, "device": str(device),
                "preset": preset.value if preset is not None else None,
                **(labelled.labelled_summary(category) if is_labelled else {})}
    reference = reference_image(data_dir, config.reference, color)
    geometry = training_geometry(reference, color, images)
    bundle = write_trained_bundle(model, config.model, out, pre=pre, color=color, val_images=val_images,
                                  target_frr=config.target_frr, batch_size=config.batch_size, training=training,
                                  started=t0, layout=layout, sign_key=sign_key,
                                  extra_files={REFERENCE_FILE: reference} if reference else None,
                                  extra_meta={"geometry": geometry.to_dict()} if geometry else None)
    stages.update()
    metrics = None
    if evaluate:
        from edgead.evaluation import evaluate_bundle

        stages.note(f"bundle written; evaluating on {len(category.test)} test images")

        metrics = evaluate_bundle(bundle.root, data_dir, progress=progress).metrics
        from edgead.bundle import update_bundle

        bundle = update_bundle(bundle, meta=bundle.meta.replace(
            metrics={k: v for k, v in metrics.items() if v is not None and k != "confusion"}), sign_key=sign_key)
        stages.update()
    stages.close()
    return TrainResult(bundle=bundle, seconds=time.perf_counter() - t0, metrics=metrics)


def reference_image(data_dir: str | os.PathLike, given: str | os.PathLike | None, color: Color) -> Path | None:
    """The reference image a trained bundle carries: ``given``, else ``data_dir/reference.png`` if it exists.

    Raises:
        DataError: an explicit ``given`` that does not exist.  ImageError: the reference cannot be read as an image.
    """
    path = Path(given) if given is not None else Path(data_dir) / REFERENCE_FILE
    if given is None and not path.is_file():
        return None
    if not path.is_file():
        raise DataError(f"--reference {path} does not exist", hint="give the reference the data was aligned to")
    load_image(path, color)  # readable, decodable
    return path


def training_geometry(reference: Path | None, color: Color, images: list[np.ndarray]) -> Geometry | None:
    """The bundle's ``geometry`` section (:mod:`edgead.bundle.geometry`): the reference the data was aligned to
    (from :func:`reference_image`) and the training images' common size."""
    from edgead.bundle.geometry import common_size, geometry_record

    ref = load_image(reference, color) if reference is not None else None
    return geometry_record(ref, common_size([im.shape for im in images]))


def write_trained_bundle(model: torch.nn.Module, model_type: str, out: str | os.PathLike, *, pre: Preprocess,
                         color: Color, val_images: list[np.ndarray], target_frr: float, batch_size: int,
                         training: dict, extra_meta: dict | None = None, extra_files: dict | None = None,
                         started: float | None = None, layout: Layout = Layout(),
                         sign_key: KeySource | None = None) -> Bundle:
    """Calibrate a fitted model on good validation images, export the graph-contract ONNX, write the bundle.

    Shared by :func:`train` and by callers that fit a model their own way (``edgead update``, labelled training).

    Args:
        model: the fitted model (put in eval mode here).
        model_type: key of the model table.
        out: bundle directory to write.
        pre: the preprocessing the model was fitted with (its ``input_hw``, mean and std go into the graph).
        color: the images' colour mode.
        val_images: good uint8 images never seen by the fit; the threshold is calibrated on them.
        target_frr: target false-reject rate on good parts.
        batch_size: images per forward pass.
        training: the ``training`` section of the metadata (seconds and ONNX parity are added).
        extra_meta: more top-level metadata sections (e.g. ``tasks``).
        extra_files: more bundle files, name -> path or bytes.
        started: ``time.perf_counter()`` at the start of the job, for ``training.seconds``.
        layout: how frames reach the model; a part's validation score is the maximum over its tiles.
        sign_key: Ed25519 private key (or its file) to sign the bundle with (None: unsigned).

    Returns:
        The written, verified bundle.

    Raises:
        EngineError: if ONNX Runtime disagrees with torch beyond tolerance.
    """
    t0 = time.perf_counter() if started is None else started
    hw = tuple(pre.input_hw)
    mean, std = [float(v) for v in pre.mean.flatten()], [float(v) for v in pre.std.flatten()]
    model.eval()
    val_parts = [layout_images(im, layout) for im in val_images]
    val_inputs = [t for tiles in val_parts for t in tiles]
    tile_scores, val_maps = predict_torch(model, val_inputs, pre, batch_size)
    ends = np.cumsum([len(tiles) for tiles in val_parts])
    val_scores = np.array([tile_scores[e - len(t):e].max() for e, t in zip(ends, val_parts)], tile_scores.dtype)
    cal = calibrate(val_scores, val_maps if layout.is_plain else None, target_frr=target_frr)
    if not layout.is_plain:  # the pixel threshold over every tile's pixels
        cal = replace(cal, pixel=calibrate(tile_scores, val_maps, target_frr=target_frr).pixel)
    with tempfile.TemporaryDirectory(prefix="edgead-train-") as tmp, writing(tmp, "temporary ONNX export in"):
        onnx_path = export_onnx(model, Path(tmp) / ONNX, input_hw=hw, channels=color.channels, mean=mean,
                                std=std, norm=cal.norm_constants(), metadata={"edgead.model": model_type})
        parity = _check_parity(onnx_path, val_inputs[:4], tile_scores[:4])
        state_path = Path(tmp) / STATE
        np.savez(state_path, **model.export_state())
        meta = {
            "edgead_version": edgead.__version__,
            "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "model": {"type": model_type, "params": model.export_params()},
            "backbone": {"name": model.backbone.name, "weights_sha256": model.backbone.weights_sha256},
            "input": {"height": hw[0], "width": hw[1], "channels": color.channels, "color": color.value,
                      "dtype": "uint8", "layout": "NHWC"},
            "preprocessing": {"resize": "bilinear", "mean": mean, "std": std},
            **cal.to_dict(),
            "layout": layout.to_dict(),  # BundleMeta writes it only when it is not plain
            "training": {**training, "seconds": round(time.perf_counter() - t0, 2), "onnx_parity_max_rel": parity},
            **(extra_meta or {}),
        }
        return write_bundle(out, meta, {ONNX: onnx_path, STATE: state_path, **(extra_files or {})}, sign_key)


def _check_parity(onnx_path: Path, images: list[np.ndarray], torch_scores: np.ndarray) -> float:
    """Raw scores of ONNX Runtime vs torch on the same frames; raise if they disagree beyond tolerance."""
    from edgead.infer.onnxrt import OnnxRuntimeBackend

    if not images:
        return 0.0
    with OnnxRuntimeBackend(onnx_path) as eng:
        got = np.concatenate([eng.infer(im[None]).raw_score for im in images])
    rel = float(np.max(np.abs(got - torch_scores) / np.maximum(np.abs(torch_scores), 1e-6)))
    if rel > PARITY_TOL:
        raise EngineError(f"exported ONNX disagrees with torch: max relative score difference {rel:.2e} "
                          f"> {PARITY_TOL:.0e}", hint="report this as a bug with the model type and opset")
    return rel


__all__ = ["MODELS", "TrainConfig", "TrainResult", "holdout_split", "train", "validation_count", "write_trained_bundle"]
