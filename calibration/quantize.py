"""INT8 by explicit quantization: Q/DQ nodes computed from a calibration set, the graph TensorRT 10/11 compiles.

TensorRT 11 removed implicit INT8 calibration (``IInt8EntropyCalibrator2``), so the precision lives in the ONNX
graph itself: ``QuantizeLinear``/``DequantizeLinear`` pairs with symmetric int8 scales (zero point 0), per-channel
weights, per-tensor activations and float biases, as TensorRT wants. The same graph runs on ONNX Runtime (CPU), which the
accuracy gate uses. Only the backbone is quantized (rule in :mod:`edgead.convert.graph`): the pre-processing, the
distance / kNN head and the output normalisation stay FP32, because INT8 there ruins the anomaly maps.

How much of the backbone is INT8 is :class:`Int8Scope`, one row per variant in :data:`INT8_SCOPES`:
``backbone`` (all of it) or ``stride8`` (the high-resolution start -- stem and the stages before stride 8 -- stays
FP32). Which one passes the gate depends on the bundle, so ``--precision auto`` tries both (the measurements:
docs/conversion.md and docs/benchmarks.md).
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Iterable

from edgead.calibration.correction import Correction, Int8Correction, correct_feature_bias
from edgead.calibration.dataset import CalibrationSet
from edgead.convert.graph import BACKBONE_SCOPES, check_contract, keep_high_resolution, split_regions
from edgead.errors import CalibrationError, EngineError, lazy_import

log = logging.getLogger(__name__)


class CalibMethod(str, Enum):
    """How activation ranges are chosen from the calibration set."""

    MINMAX = "minmax"  # full observed range: no clipping of the large activations defects produce (default)
    ENTROPY = "entropy"  # KL-divergence optimal clipping (TensorRT's classic choice for classifiers)
    PERCENTILE = "percentile"  # clip at the 99.999th percentile of |x|


def _ort_methods() -> dict:
    q = lazy_import("onnxruntime.quantization", feature="INT8 quantization")
    return {
        CalibMethod.MINMAX: (q.CalibrationMethod.MinMax, {}),
        CalibMethod.ENTROPY: (q.CalibrationMethod.Entropy, {"CalibTensorRangeSymmetric": True}),
        CalibMethod.PERCENTILE: (q.CalibrationMethod.Percentile,
                                 {"CalibPercentile": 99.999, "CalibTensorRangeSymmetric": True}),
    }


class Int8Scope(str, Enum):
    """Which part of the backbone gets Q/DQ nodes."""

    BACKBONE = "backbone"  # the whole backbone (default)
    STRIDE8 = "stride8"  # from stride 8 on: stem and high-resolution stages stay FP32


INT8_SCOPES = {Int8Scope.BACKBONE: None, Int8Scope.STRIDE8: 8}
"""Int8Scope -> the first output stride that is lowered (None: all of the backbone)."""


@dataclass(frozen=True)
class Int8Settings:
    """How INT8 candidates are made (one value for all the INT8 candidates of a conversion).

    Attributes:
        method: how activation ranges are chosen.
        correction: what is done to the Q/DQ graph afterwards (:mod:`edgead.calibration.correction`).
    """

    method: CalibMethod = CalibMethod.MINMAX
    correction: Int8Correction = Int8Correction.FEATURE_MEAN

    @classmethod
    def parse(cls, method: "CalibMethod | str" = CalibMethod.MINMAX,
              correction: "Int8Correction | str" = Int8Correction.FEATURE_MEAN) -> "Int8Settings":
        """From names, with the error that lists the valid ones.

        Raises:
            CalibrationError: an unknown method or correction.
        """
        try:
            method = CalibMethod(method)
        except ValueError:
            raise CalibrationError(f"unknown calibration method {method!r}",
                                   hint=f"use one of {[m.value for m in CalibMethod]}") from None
        try:
            correction = Int8Correction(correction)
        except ValueError:
            raise CalibrationError(f"unknown INT8 correction {correction!r}",
                                   hint=f"use one of {[c.value for c in Int8Correction]}") from None
        return cls(method, correction)


@dataclass(frozen=True)
class QuantizeResult:
    """What the quantization did (recorded in the bundle's ``conversion:`` section).

    Attributes:
        path: the written Q/DQ graph.
        method: the calibration method.
        quantized: nodes allowed to run in INT8 (the backbone).
        excluded: nodes kept FP32.
        fingerprint: the calibration set's fingerprint.
        n_images: number of calibration images.
        rule: how the backbone was found (``scope`` | ``structure``), ``+stride8`` for that scope.
        scope: the :class:`Int8Scope`.
        source: where the calibration images came from.
        correction: the :class:`Int8Correction` applied.
        corrections: the inserted feature-bias corrections.
        uncorrected: exits of the INT8 region the correction could not reach (no batch axis of their own).
    """

    path: Path
    method: CalibMethod
    quantized: tuple[str, ...]
    excluded: tuple[str, ...]
    fingerprint: str
    n_images: int
    rule: str
    scope: Int8Scope = Int8Scope.BACKBONE
    source: str = ""
    correction: Int8Correction = Int8Correction.NONE
    corrections: tuple[Correction, ...] = ()
    uncorrected: tuple[str, ...] = ()

    def details(self) -> dict:
        """The ``conversion:`` entries of the bundle's edgead.yaml."""
        return {"calibration": {"fingerprint": self.fingerprint, "method": self.method.value,
                                "n_images": self.n_images, "source": self.source},
                "int8_scope": self.scope.value, "rule": self.rule, "excluded_nodes": list(self.excluded),
                "int8_correction": {"kind": self.correction.value,
                                    "points": [{"tensor": c.tensor, "shape": list(c.shape), "rms": c.rms,
                                                "relative_to_feature_std": c.relative} for c in self.corrections],
                                    "uncorrected_exits": list(self.uncorrected)}}


def _reader(calib: CalibrationSet, input_name: str):
    q = lazy_import("onnxruntime.quantization", feature="INT8 quantization")

    class _Reader(q.CalibrationDataReader):
        def __init__(self):
            self._it = iter(calib.batches(1))

        def get_next(self):
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch}

        def rewind(self):
            self._it = iter(calib.batches(1))

    return _Reader()


@contextlib.contextmanager
def _working_dir(path: Path):
    """Run a block with ``path`` as the working directory (``contextlib.chdir`` is Python >= 3.11)."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _pre_process(quant_pre_process, onnx_path: Path, pre: Path) -> None:
    """ONNX Runtime's quantization pre-processing (shape inference), without graph optimisation: it would
    constant-fold the normalisation initializers away. Symbolic shape inference gives up on some graphs (e.g.
    DRAEM's mean filter after a softmax); ONNX's own shape inference is then enough for Q/DQ placement.

    Raises:
        EngineError: when both fail.
    """
    try:
        with _working_dir(pre.parent):  # on failure it dumps sym_shape_infer_temp.onnx (+ .data) into the cwd
            quant_pre_process(str(Path(onnx_path).resolve()), str(pre.resolve()), skip_optimization=True)
        return
    except Exception as exc:  # onnxruntime raises plain exceptions
        first = exc
    try:
        quant_pre_process(str(onnx_path), str(pre), skip_optimization=True, skip_symbolic_shape=True)
        log.info("quantization pre-processing of %s: symbolic shape inference failed (%s); used ONNX shape "
                 "inference", onnx_path, first)
    except Exception as exc:
        raise EngineError(f"quantization pre-processing of {onnx_path} failed: {first}; without symbolic shape "
                          f"inference: {exc}", hint="report the model type; convert to fp32 or fp16 meanwhile"
                          ) from exc


def quantize_int8(onnx_path: str | os.PathLike, out_path: str | os.PathLike, calib: CalibrationSet, *,
                  method: CalibMethod | str = CalibMethod.MINMAX, scope: Int8Scope | str = Int8Scope.BACKBONE,
                  scopes: Iterable[str] = BACKBONE_SCOPES,
                  correction: Int8Correction | str = Int8Correction.FEATURE_MEAN) -> QuantizeResult:
    """Insert Q/DQ nodes into the backbone of a contract graph, with ranges from ``calib``.

    Args:
        onnx_path: the FP32 contract graph.
        out_path: where to write the Q/DQ graph.
        calib: the checked calibration set (:func:`edgead.calibration.dataset.load_calibration_set`).
        method: ``minmax`` | ``entropy`` | ``percentile``.
        scope: :class:`Int8Scope`: the whole backbone, or from stride 8 on.
        scopes: module names that mark the backbone.
        correction: :class:`Int8Correction`: subtract the mean INT8 feature error of the calibration images (default)
            or leave the Q/DQ graph as placed.

    Returns:
        The :class:`QuantizeResult`.

    Raises:
        CalibrationError: unknown method, scope or correction.
        EngineError: if pre-processing or quantization fails, or the result breaks the graph contract.

    Example:
        >>> quantize_int8("b/model.onnx", "out/model.int8.onnx", load_calibration_set("calib/", channels=3))  # doctest: +SKIP
    """
    onnx = lazy_import("onnx", feature="INT8 quantization")
    q = lazy_import("onnxruntime.quantization", feature="INT8 quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    settings = Int8Settings.parse(method, correction)
    method = settings.method
    try:
        scope = Int8Scope(scope)
    except ValueError:
        raise CalibrationError(f"unknown INT8 scope {scope!r}",
                               hint=f"use one of {[s.value for s in Int8Scope]}") from None
    ort_method, extra = _ort_methods()[method]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgead-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        _pre_process(quant_pre_process, Path(onnx_path), pre)
        model = onnx.load(str(pre))
        regions = split_regions(model, scopes)
        if INT8_SCOPES[scope] is not None:
            height = _input_height(onnx, Path(onnx_path))
            regions = keep_high_resolution(model, regions, height, INT8_SCOPES[scope])
        onnx.save(model, str(pre))  # with the node names split_regions may have added
        try:
            q.quantize_static(
                str(pre), str(out), _reader(calib, "image"), quant_format=q.QuantFormat.QDQ,
                activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8, per_channel=True,
                nodes_to_quantize=list(regions.backbone), calibrate_method=ort_method,
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                               "QuantizeBias": False, **extra})  # TensorRT takes float biases
        except Exception as exc:  # onnxruntime raises plain exceptions
            raise EngineError(f"INT8 quantization of {onnx_path} failed: {exc}") from exc
    converted = onnx.load(str(out))
    _kept_nodes_read_fp32(converted, set(regions.backbone))
    source = onnx.load(str(onnx_path), load_external_data=False)
    del converted.metadata_props[:]
    converted.metadata_props.extend(source.metadata_props)  # edgead.input_height ... (the quantizer drops them)
    onnx.save(converted, str(out))
    check_contract(converted, where=f"INT8 graph of {onnx_path}")
    if not any(n.op_type == "QuantizeLinear" for n in converted.graph.node):
        raise EngineError(f"INT8 quantization of {onnx_path} inserted no Q/DQ node",
                          hint="the backbone has no quantizable op (Conv, MatMul, ...); use --precision fp16")
    corrections, uncorrected = (), ()
    if settings.correction is Int8Correction.FEATURE_MEAN:
        done, left = correct_feature_bias(onnx_path, out, calib.images)
        corrections, uncorrected = tuple(done), tuple(left)
        check_contract(onnx.load(str(out)), where=f"bias-corrected INT8 graph of {onnx_path}")
    return QuantizeResult(path=out, method=method, quantized=regions.backbone, excluded=regions.kept,
                          fingerprint=calib.fingerprint, n_images=len(calib), rule=regions.rule, scope=scope,
                          source=str(calib.source), correction=settings.correction, corrections=corrections,
                          uncorrected=uncorrected)


def _kept_nodes_read_fp32(model, quantized: set[str]) -> int:
    """Point every node outside the INT8 region that reads a dequantized activation at the FP32 tensor before its
    QuantizeLinear instead (in place); return how many inputs moved.

    The quantizer puts one Q/DQ pair on a tensor and hands its output to every consumer, so a feature tap that
    also feeds the next INT8 layer would see rounded features although the head is meant to stay FP32.
    OpenVINO's low-precision transformations then carry the dequantization through the tap's pooling, scaling and
    concatenation into the head and return a constant score (``ov-int8`` on the demo's PatchCore: every image
    scored 6.0 against 0.4-1.3 on ONNX Runtime); with FP32 taps both runtimes agree.
    """
    producer = {t: n for n in model.graph.node for t in n.output}
    before_q = {}
    for node in model.graph.node:
        q = producer.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if q is not None and q.op_type == "QuantizeLinear":
            before_q[node.output[0]] = q.input[0]
    moved = 0
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") or node.name in quantized:
            continue
        for i, name in enumerate(node.input):
            if name in before_q:
                node.input[i] = before_q[name]
                moved += 1
    while True:  # a Q/DQ pair that only kept nodes read is now read by none
        read = {t for n in model.graph.node for t in n.input} | {o.name for o in model.graph.output}
        unread = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                  and not any(t in read for t in n.output)]
        if not unread:
            return moved
        for node in unread:
            model.graph.node.remove(node)


def _input_height(onnx, path: Path) -> int:
    """The model resolution's height from the contract graph's metadata (``edgead.input_height``)."""
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "edgead.input_height" not in meta:
        raise EngineError(f"{path} has no edgead.input_height metadata: not a contract graph",
                          hint="export it with edgead (edgead train / the bundle's model.onnx)")
    return int(meta["edgead.input_height"])
