"""``edgead convert``: bundle -> converted bundle for one target (FP32 / FP16 / INT8 / auto), gated.

The signature of :func:`convert` maps 1:1 to the CLI flags: ``--bundle B --target T --precision
fp32|fp16|int8|auto [--calib DIR] [--calib-method M] [--int8-scope S] [--int8-correction C] [--guard-band G]
--out OUT [--check DIR] [--tolerance-pt X] [--pixel-tolerance-pt X] [--max-new-reject-pct X] [--force]``.
"""
from __future__ import annotations

from dataclasses import dataclass
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgead.bundle import META, MANIFEST, ONNX, Bundle, load_bundle, write_bundle
from edgead.calibration.correction import Int8Correction
from edgead.calibration.quantize import CalibMethod, Int8Scope, Int8Settings
from edgead.convert.gate import (DEFAULT_MAX_NEW_REJECT_PCT, DEFAULT_PIXEL_TOLERANCE_PT, DEFAULT_TOLERANCE_PT,
                                 enforce, load_check_set, measure_latency, predict, run_gate)
from edgead.convert.report import Candidate, ConversionReport
from edgead.convert.recipes import CPU_RECIPES, Recipe, make_recipe
from edgead.convert.targets import Precision, Target, get_target
from edgead.convert.transfer import GuardBand
from edgead.contract.meta import Conversion
from edgead.contract.thresholds import Calibration
from edgead.errors import ConfigError, EngineError, GateError
from edgead.infer import BackendKind

ENGINE = "model.engine"
"""The engine's default file name, beside the converted bundle (``OUT/../model.engine``), never inside it."""
REPORT_JSON, REPORT_MD = "conversion-report.json", "conversion-report.md"


def _make(precision: Precision, bundle: Bundle, work: Path, calib, int8: Int8Settings,
          scope: Int8Scope = Int8Scope.BACKBONE) -> tuple[Path, dict]:
    """Write the candidate graph for ``precision`` (INT8: over ``scope``); returns (path, details for edgead.yaml)."""
    lowered = precision is Precision.INT8 and scope is not Int8Scope.BACKBONE
    out = work / f"model.{precision.value}{'_' + scope.value if lowered else ''}.onnx"
    if precision is Precision.FP32:
        shutil.copyfile(bundle.onnx_path, out)
        return out, {}
    if precision is Precision.FP16:
        from edgead.convert.fp16 import convert_fp16

        res = convert_fp16(bundle.onnx_path, out)
        return out, {"rule": res.rule, "kept_fp32_nodes": len(res.kept), "lowered_nodes": len(res.lowered)}
    from edgead.calibration.quantize import quantize_int8

    res = quantize_int8(bundle.onnx_path, out, calib, method=int8.method, scope=scope, correction=int8.correction)
    return out, res.details()


def _transfer_images(calib, calib_set, channels: int, resize_hw: tuple[int, int]):
    """Good images both graphs score for the threshold transfer (the calibration set; none: no transfer)."""
    if calib_set is not None:
        return calib_set.images
    if calib is not None:
        from edgead.calibration.dataset import load_calibration_set

        return load_calibration_set(calib, channels=channels, resize_hw=resize_hw).images
    return None


def _sample_images(transfer_images, check_set, n: int = 4):
    """A few good images to probe and verify the graph rewrites with (calibration images first)."""
    if transfer_images is not None:
        return transfer_images[:n]
    if check_set is not None:
        imgs = check_set.images
        good = [im for im, label in zip(imgs, check_set.labels) if label == 0] or list(imgs)
        same = [im for im in good if im.shape == good[0].shape][:n]  # the probe feeds one batch
        return np.stack(same)
    return None


class TransferSet:
    """The good images of the threshold transfer and the FP32 graph's predictions on them, computed once (on first
    use) for all the candidates of a conversion, not once per candidate; ``guard``: the
    :class:`~edgead.convert.transfer.GuardBand` of the transferred thresholds."""

    def __init__(self, src: Bundle, images: np.ndarray, guard: GuardBand = GuardBand.SHORTFALL):
        self.src, self.images, self._ref, self.guard = src, images, None, GuardBand(guard)

    def reference(self):
        if self._ref is None:
            with _open(self.src.onnx_path, self.src) as ref:
                self._ref = predict(ref, self.images)
        return self._ref


def _transfer(tset: TransferSet, path: Path, model=None) -> dict:
    """Fit the candidate's raw scale to the FP32 one and rewrite its normalisation (see convert/transfer.py).

    ``model``: a :class:`~edgead.convert.transfer.TransferModel` (default: the offset model of reduced precision).
    """
    from edgead.convert.transfer import TransferModel, apply_to_graph, transfer_thresholds

    with _open(path, tset.src) as cand:
        cand_pred = predict(cand, tset.images)
    calibration, details = transfer_thresholds(tset.src.meta.calibration, tset.reference(), cand_pred,
                                               model=model or TransferModel.OFFSET, guard=tset.guard)
    apply_to_graph(path, calibration)
    return {**details, "sections": calibration.to_dict()}


@dataclass(frozen=True)
class Job:
    """One candidate of a conversion.

    Attributes:
        name: its name in the report (``int8``, ``int8+stride8``, ``fp32+opt+bank25``).
        precision: numeric precision of the result.
        recipe: the CPU recipe (None: the plain precision).
        scope: the INT8 scope.
        optional: skipped where it does not apply to the graph (e.g. no stride-8 layer for ``int8+stride8``).
    """

    name: str
    precision: Precision
    recipe: Recipe | None = None
    scope: Int8Scope = Int8Scope.BACKBONE
    optional: bool = False


def candidate_jobs(precisions, scope: Int8Scope, *, auto: bool, recipe_precisions=()) -> list[Job]:
    """The candidates to build: one per precision; with ``auto`` also INT8 from stride 8 on (when ``scope`` is the
    whole backbone) and the CPU recipes whose precision is in ``recipe_precisions``."""
    jobs = [Job(p.value, p, scope=scope) for p in precisions]
    if auto and Precision.INT8 in precisions and scope is Int8Scope.BACKBONE:
        jobs.append(Job(f"int8+{Int8Scope.STRIDE8.value}", Precision.INT8, scope=Int8Scope.STRIDE8, optional=True))
    if auto:
        jobs += [Job(r.name, r.precision, r, scope) for r in CPU_RECIPES.values() if r.precision in recipe_precisions]
    return jobs


def build_candidate(job: Job, src: Bundle, work: Path, calib_set, int8: Int8Settings, samples,
                    tset: "TransferSet | None") -> tuple[Path, dict] | None:
    """Write ``job``'s graph and transfer the thresholds to it when it is lossy; None when it does not apply."""
    if job.recipe is None:
        try:
            path, details = _make(job.precision, src, work, calib_set, int8, job.scope)
        except EngineError:
            if job.optional:
                return None
            raise
    else:
        got = make_recipe(job.recipe, src.onnx_path, work, samples, calib_set, int8, job.scope)
        if got is None:
            return None
        path, details = got
    lossy = job.precision is not Precision.FP32 or (job.recipe is not None and job.recipe.lossy)
    if lossy and tset is not None:
        details["threshold_transfer"] = _transfer(tset, path,
                                                  job.recipe.transfer_model if job.recipe is not None else None)
    return path, details


def _open(path: Path, bundle: Bundle):
    from edgead.infer.onnxrt import OnnxRuntimeBackend

    eng = OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"])
    eng.set_model_resolution(bundle.input_spec.height, bundle.input_spec.width)
    return eng


def convert(bundle: str | os.PathLike | Bundle, target: str | Target, precision: Precision | str, *,
            out: str | os.PathLike, calib: str | os.PathLike | None = None,
            calib_method: CalibMethod | str = CalibMethod.MINMAX, int8_scope: Int8Scope | str = Int8Scope.BACKBONE,
            int8_correction: Int8Correction | str = Int8Correction.FEATURE_MEAN,
            guard_band: GuardBand | str = GuardBand.SHORTFALL,
            check: str | os.PathLike | None = None,
            tolerance_pt: float = DEFAULT_TOLERANCE_PT, pixel_tolerance_pt: float = DEFAULT_PIXEL_TOLERANCE_PT,
            max_new_reject_pct: float = DEFAULT_MAX_NEW_REJECT_PCT,
            force: bool = False, latency_runs: int = 20) -> ConversionReport:
    """Convert a bundle for a target and write the result as a bundle.

    Args:
        bundle: the FP32 bundle (directory or ``.edgead``).
        target: a target profile name (``convert/profiles/<name>.yaml``).
        precision: ``fp32`` | ``fp16`` | ``int8`` | ``auto`` (try the target's precisions, keep the fastest that
            passes the gate; needs ``check``). For ONNX Runtime targets ``auto`` also tries the CPU recipes of
            :data:`edgead.convert.recipes.CPU_RECIPES` (exact graph rewrites, bank reduction, INT8 on top).
        out: the output bundle directory.
        calib: folder (or ``.txt`` list) of good images; required for INT8.
        calib_method: ``minmax`` | ``entropy`` | ``percentile``.
        int8_scope: ``backbone`` | ``stride8`` (:class:`~edgead.calibration.quantize.Int8Scope`). ``auto`` with the
            default ``backbone`` also tries ``stride8`` as the candidate ``int8+stride8``.
        int8_correction: ``feature-mean`` | ``none`` (:class:`~edgead.calibration.correction.Int8Correction`).
        guard_band: ``shortfall`` | ``none``: lower a lossy candidate's thresholds by its measured shortfall on the
            good calibration images (:class:`~edgead.convert.transfer.GuardBand`).
        check: MVTec-layout folder with a labelled test split: the accuracy gate runs when given.
        tolerance_pt: largest image-AUROC drop (points).
        pixel_tolerance_pt: largest pixel-AUROC drop (points).
        max_new_reject_pct: largest share of the check set's good images (percent) that FP32 accepts and the
            candidate may reject.
        force: write the artifact even when the gate fails (recorded in the report).
        latency_runs: timed runs per candidate on this machine.

    Returns:
        The :class:`ConversionReport` (also written into the bundle as JSON and Markdown).

    Raises:
        ConfigError: unknown target or precision, precision not allowed by the target, INT8 without ``calib``,
            ``auto`` without ``check``.
        CalibrationError: bad calibration set.  GateError: the gate failed and not ``force``.
        BundleError: bad source bundle.  EngineError: conversion or engine build failed.
    """
    src = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    tgt = get_target(target)
    try:
        prec = Precision(precision)
    except ValueError:
        raise ConfigError(f"unknown precision {precision!r}", hint=f"use one of {[p.value for p in Precision]}") \
            from None
    if prec is Precision.AUTO:
        if check is None:
            raise ConfigError("--precision auto needs --check DIR", hint="the gate decides which precision is kept")
        wanted = [p for p in tgt.precisions if p is not Precision.INT8 or calib is not None]
    elif prec not in tgt.precisions:
        raise ConfigError(f"target {tgt.name} does not allow {prec.value}",
                          hint=f"use one of {[p.value for p in tgt.precisions]}")
    else:
        wanted = [prec]
    if prec is Precision.INT8 and calib is None:
        raise ConfigError("--precision int8 needs --calib DIR (good images)", hint="see calibration/README.md")
    int8 = Int8Settings.parse(calib_method, int8_correction)
    try:
        guard = GuardBand(guard_band)
    except ValueError:
        raise ConfigError(f"unknown guard band {guard_band!r}", hint=f"use one of {[g.value for g in GuardBand]}") \
            from None
    spec = src.input_spec
    calib_set = None
    if calib is not None and Precision.INT8 in wanted:
        from edgead.calibration.dataset import load_calibration_set

        calib_set = load_calibration_set(calib, channels=spec.channels, resize_hw=(spec.height, spec.width))
    check_set = load_check_set(check, channels=spec.channels, map_hw=(spec.height, spec.width)) if check else None
    from edgead.convert.trt_build import (compile_engine, default_engine_path, engine_header, tensorrt_available,
                                          trtexec_command)
    from edgead.infer.engine_file import write_engine_file

    is_trt = tgt.backend is BackendKind.TENSORRT
    with tempfile.TemporaryDirectory(prefix="edgead-convert-") as tmp:
        work = Path(tmp)
        made, cands = {}, []
        ref = None
        if check_set is not None:  # the FP32 outputs on the check set, once for all candidates
            with _open(src.onnx_path, src) as eng:
                ref = predict(eng, check_set.images)
        transfer_images = _transfer_images(calib, calib_set, spec.channels, (spec.height, spec.width))
        tset = TransferSet(src, transfer_images, guard) if transfer_images is not None else None
        auto = prec is Precision.AUTO
        jobs = candidate_jobs(wanted, Int8Scope(int8_scope), auto=auto,
                              recipe_precisions=tgt.precisions if auto and tgt.backend is BackendKind.ONNXRUNTIME
                              else ())
        samples = _sample_images(transfer_images, check_set)
        for job in jobs:
            got = build_candidate(job, src, work, calib_set, int8, samples, tset)
            if got is None:
                continue
            path, details = got
            made[job.name] = (job.precision, path, details)
            with _open(path, src) as eng:
                if check_set is not None:
                    gate = run_gate(ref, eng, check_set, artifact=path, tolerance_pt=tolerance_pt,
                                    pixel_tolerance_pt=pixel_tolerance_pt, max_new_reject_pct=max_new_reject_pct,
                                    latency_runs=latency_runs)
                    lat = (gate.latency_median_ms, gate.latency_p99_ms)
                else:
                    gate = None
                    lat = measure_latency(eng, np.zeros((1, spec.height, spec.width, spec.channels), np.uint8),
                                          latency_runs) if latency_runs else (None, None)
            cands.append(Candidate(job.name, path.stat().st_size, lat[0], lat[1], gate, details))
        chosen = _choose(cands, prec, force, tgt)
        cprec, onnx_path, details = made[chosen.precision]
        files = {n: src.root / n for n in src.manifest["files"] if n not in (META, MANIFEST, ONNX)}
        files[ONNX] = onnx_path
        engine_path = default_engine_path(out)
        trtexec = trtexec_command(f"{out}/{ONNX}", engine_path, tgt, spec.channels) if is_trt else None
        blob = None
        if is_trt and tensorrt_available():  # compiled before anything is written; the header needs the new hash
            blob = compile_engine(onnx_path, tgt, cprec, spec.channels,
                                  cache_path=engine_path.with_suffix(".timing.cache"))
            engine = f"built: {engine_path} (TensorRT on this machine, beside the bundle)"
        elif is_trt:
            engine = (f"not built here (no TensorRT/GPU): build on the {tgt.name} station with "
                      f"`edgead build-engine --bundle {out} --target {tgt.name}` (or deploy does it)")
        else:
            engine = "none (ONNX Runtime target)"
        report = ConversionReport(
            source=str(src.root), source_hash=src.model_hash, target=tgt.name, backend=tgt.backend.value,
            requested=prec.value, chosen=chosen.precision, out=str(out), candidates=cands, engine=engine,
            trtexec=trtexec, forced=bool(chosen.gate is not None and not chosen.gate.passed))
        calibration = src.meta.calibration
        if "threshold_transfer" in details:
            calibration = Calibration.from_dict(details["threshold_transfer"].pop("sections"))
        meta = src.meta.replace(calibration=calibration, conversion=Conversion(
            tgt.name, tgt.backend.value, cprec, src.model_hash,
            chosen.gate.to_dict() if chosen.gate is not None else None, report.forced, details))
        files[REPORT_JSON] = report.to_json().encode()
        files[REPORT_MD] = report.to_markdown().encode()
        written = write_bundle(out, meta, files)
        if blob is not None:
            header = engine_header(tgt, cprec, model_hash=written.model_hash, input_hw=(spec.height, spec.width),
                                   channels=spec.channels, bundle_format_version=written.meta.format_version)
            write_engine_file(engine_path, header, blob)
    return report


def _choose(cands: list[Candidate], requested: Precision, force: bool, tgt: Target) -> Candidate:
    if requested is not Precision.AUTO:
        c = cands[0]
        if c.gate is not None:
            enforce(c.gate, what=f"{c.precision} conversion for {tgt.name}", force=force)
        return c
    passing = [c for c in cands if c.passed]
    pool = passing or (cands if force else [])
    if not pool:
        raise GateError("no precision passed the accuracy gate: " +
                        "; ".join(f"{c.precision}: {', '.join(c.gate.reasons)}" for c in cands),
                        hint="use --force to keep the fastest anyway, or raise --tolerance-pt")
    return min(pool, key=lambda c: (c.latency_median_ms is None, c.latency_median_ms or 0.0))
