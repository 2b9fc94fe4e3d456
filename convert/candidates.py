"""The candidates of a conversion: which graphs to build (:class:`Job`), how each is built (a precision, or a CPU
recipe of :mod:`edgead.convert.recipes`), and the threshold transfer that makes a lossy one's normalised 0.5 mean
what the FP32 graph's does (:mod:`edgead.convert.transfer`).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgead.bundle import Bundle
from edgead.calibration.quantize import Int8Scope, Int8Settings
from edgead.convert.gate import predict
from edgead.convert.recipes import CPU_RECIPES, Recipe, make_recipe
from edgead.convert.targets import Precision
from edgead.convert.transfer import GuardBand
from edgead.errors import EngineError
from edgead.infer import BackendKind


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


def transfer_images(calib, calib_set, channels: int, resize_hw: tuple[int, int], layout=None):
    """Good images both graphs score for the threshold transfer (the calibration set, as the bundle's ``layout``
    feeds the model; none: no transfer)."""
    if calib_set is not None:
        return calib_set.images
    if calib is not None:
        from edgead.calibration.dataset import load_calibration_set

        return load_calibration_set(calib, channels=channels, resize_hw=resize_hw, layout=layout).images
    return None


def sample_images(transfer: np.ndarray | None, check_set, n: int = 4):
    """A few good images to probe and verify the graph rewrites with (the transfer images first)."""
    if transfer is not None:
        return transfer[:n]
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
            with open_candidate(self.src.onnx_path, self.src) as ref:
                self._ref = predict(ref, self.images)
        return self._ref


def _transfer(tset: TransferSet, path: Path, model=None, job: "Job | None" = None) -> dict:
    """Fit the candidate's raw scale to the FP32 one and rewrite its normalisation (see convert/transfer.py).

    ``model``: a :class:`~edgead.convert.transfer.TransferModel` (default: the offset model of reduced precision).
    ``job``: the candidate, whose runtime scores it (default: ONNX Runtime).
    """
    from edgead.convert.transfer import TransferModel, apply_to_graph, transfer_thresholds

    with (job.open(path, tset.src) if job is not None else open_candidate(path, tset.src)) as cand:
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
        runtime: the runtime it runs on (OpenVINO candidates: ``ov-fp32``, ``ov-bf16``, ``ov-int8``).
        inference_precision: OpenVINO's precision for the layers the graph does not quantize (``f32``, ``bf16``).
    """

    name: str
    precision: Precision
    recipe: Recipe | None = None
    scope: Int8Scope = Int8Scope.BACKBONE
    optional: bool = False
    runtime: BackendKind = BackendKind.ONNXRUNTIME
    inference_precision: str | None = None

    @property
    def lossy(self) -> bool:
        """Its scores differ from FP32 beyond rounding: its thresholds are transferred."""
        return (self.precision is not Precision.FP32 or (self.recipe is not None and self.recipe.lossy)
                or self.inference_precision not in (None, "f32"))

    def open(self, path: Path, bundle: Bundle):
        """The backend this candidate runs on, for ``path``."""
        return open_candidate(path, bundle, self.runtime, self.inference_precision)


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
                    tset: "TransferSet | None", graphs: dict | None = None) -> tuple[Path, dict] | None:
    """Write ``job``'s graph and transfer the thresholds to it when it is lossy; None when it does not apply.

    ``graphs``: the graphs already made in this conversion, by precision and scope, before any threshold transfer;
    an OpenVINO candidate runs a copy of one (the INT8 Q/DQ graph is not quantized twice), and a graph made here is
    added to it.
    """
    graphs = {} if graphs is None else graphs
    key = (job.precision, job.scope)
    if job.runtime is BackendKind.OPENVINO:
        from edgead.convert.ov_candidates import openvino_graph

        got = openvino_graph(job, src, work, graphs)
        if got is None:
            return None
        path, details = got
    elif job.recipe is None:
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
    if job.recipe is None and job.runtime is BackendKind.ONNXRUNTIME and key not in graphs:
        graphs[key] = shutil.copyfile(path, work / f"pristine.{job.name}.onnx")
    if job.lossy and tset is not None:
        details["threshold_transfer"] = _transfer(tset, path,
                                                  job.recipe.transfer_model if job.recipe is not None else None, job)
    return path, details


def open_candidate(path: Path, bundle: Bundle, runtime: BackendKind = BackendKind.ONNXRUNTIME,
                   inference_precision: str | None = None):
    """A CPU backend (ONNX Runtime, or OpenVINO at ``inference_precision``) on a candidate graph, at the bundle's
    model resolution."""
    if runtime is BackendKind.OPENVINO:
        from edgead.infer.openvino_rt import OpenVinoBackend

        eng = OpenVinoBackend(path, inference_precision=inference_precision or "f32")
    else:
        from edgead.infer.onnxrt import OnnxRuntimeBackend

        eng = OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"])
    eng.set_model_resolution(bundle.input_spec.height, bundle.input_spec.width)
    return eng
