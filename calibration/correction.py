"""Feature bias correction for an INT8 graph: remove the mean error that quantization adds to the features.

INT8 rounding is not zero-mean on real activations (clipped ranges, ReLU6 outputs piled up at 0 and 6, per-tensor
scales shared by channels of very different spread), so the INT8 backbone shifts every feature by a systematic
amount, different per channel and per position. The feature-statistics heads are built for exactly that kind of
shift to matter: PaDiM's Mahalanobis distance divides it by the smallest variances of the good parts, and
PatchCore's nearest-neighbour distance adds it to every patch. The per-(channel, position) mean of the INT8 feature
error is the same for every good image, so it can be measured once and subtracted (how large a part of the error it
is: docs/conversion.md).

:func:`correct_feature_bias` does this on the good images of the calibration set (no labels): it runs the FP32 and
the INT8 graph, takes the mean difference of the features where they leave the INT8 region, and inserts one FP32
``Sub`` of that constant into the INT8 graph. Where the images are aligned to a reference (a station's are), a
position has a meaning, so the correction is per position as well as per channel. It is the data-driven bias
correction of Nagel et al. (ICCV 2019, "Data-Free Quantization Through Weight Equalization and Bias Correction"),
applied once, to the features the head reads, instead of to every layer's bias.

Where the correction goes: the INT8 region's *exits*, i.e. a ``DequantizeLinear`` of an activation read by an op
whose output is not quantized again (the head). If the batch is merged into another axis there (a reshape to
``[N*P, D]``), the point moves up through the data-movement ops (Reshape, Transpose, ...) to where the batch is an
axis of its own, so one constant serves every batch size (an exit without one, e.g. AE-kNN's two rows per image, is
left uncorrected and listed); the Q/DQ pairs of those data-movement ops are removed
(they would round the correction away again), which leaves only reshapes and transposes in FP32.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from edgead.convert.onnx_edit import GraphIndex, Probe, fresh_name
from edgead.errors import CalibrationError, EngineError, lazy_import

log = logging.getLogger(__name__)


class Int8Correction(str, Enum):
    """What is done to the INT8 graph after the Q/DQ nodes are placed."""

    NONE = "none"  # the plain Q/DQ graph
    FEATURE_MEAN = "feature-mean"  # subtract the mean INT8 feature error of the calibration images (default)


MOVE_OPS = frozenset({"Reshape", "Transpose", "Unsqueeze", "Squeeze", "Flatten", "Identity"})
"""Ops that only move values: the correction point may move up through them to find a batch axis."""
SHAPE_OPS = frozenset({"Shape", "Size"})
"""Readers that do not see values (an exit read only by these needs no correction)."""


@dataclass(frozen=True)
class Correction:
    """One inserted correction.

    Attributes:
        tensor: the INT8 graph's tensor that is corrected.
        shape: the constant's shape (1 on the batch axis).
        rms: the root mean square of the subtracted constant.
        relative: ``rms`` over the FP32 tensor's standard deviation on the calibration images.
    """

    tensor: str
    shape: tuple[int, ...]
    rms: float
    relative: float


def _quantize_of(g: GraphIndex, tensor: str):
    """The ``QuantizeLinear`` of the Q/DQ pair whose ``DequantizeLinear`` outputs ``tensor``, or None."""
    dq = g.producer.get(tensor)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = g.producer.get(dq.input[0])
    return q if q is not None and q.op_type == "QuantizeLinear" else None


def _rewire(g: GraphIndex, old: str, new: str) -> None:
    """Make every reader of ``old`` read ``new`` instead."""
    for reader in g.consumers.get(old, []):
        for k, name in enumerate(reader.input):
            if name == old:
                reader.input[k] = new


def _is_activation_dq(g: GraphIndex, node) -> bool:
    """A ``DequantizeLinear`` of an activation (not of a weight initializer / constant)."""
    if node.op_type != "DequantizeLinear" or g.const(node.input[0]) is not None:
        return False
    q = _quantize_of(g, node.output[0])
    return not (q is not None and g.const(q.input[0]) is not None)


def int8_exits(model) -> list[str]:
    """Activation tensors (``DequantizeLinear`` outputs) that leave the INT8 region for the FP32 head."""
    g = GraphIndex(model)
    exits = []
    for node in model.graph.node:
        if not _is_activation_dq(g, node):
            continue
        for reader in g.consumers.get(node.output[0], []):
            if reader.op_type in SHAPE_OPS or reader.op_type == "QuantizeLinear":
                continue
            requantized = any(c.op_type == "QuantizeLinear" for o in reader.output for c in g.consumers.get(o, []))
            if not requantized and node.output[0] not in exits:
                exits.append(node.output[0])
    return exits


def _upstream(g: GraphIndex, tensor: str) -> str | None:
    """The activation one data-movement op above ``tensor`` (through its Q/DQ pair), or None."""
    node = g.producer.get(tensor)
    if node is not None and node.op_type == "DequantizeLinear":  # DQ <- Q <- op
        q = _quantize_of(g, tensor)
        node = g.producer.get(q.input[0]) if q is not None else None
    if node is None or node.op_type not in MOVE_OPS:
        return None
    return node.input[0]


def _batch_axis(one: tuple[int, ...], two: tuple[int, ...]) -> int | None:
    """The axis that holds the batch: the only one that is 1 for one image and 2 for two."""
    if len(one) != len(two):
        return None
    diff = [i for i, (a, b) in enumerate(zip(one, two)) if a != b]
    return diff[0] if len(diff) == 1 and (one[diff[0]], two[diff[0]]) == (1, 2) else None


def _points(model, images: np.ndarray) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """For each exit, the nearest tensor at or above it with a batch axis of its own, and the tensors between it and
    the exit (the data-movement ops' Q/DQ outputs, which would round the correction away); and the exits that have
    no such tensor (e.g. AE-kNN's rows of two per image), left uncorrected."""
    g = GraphIndex(model)
    chains = []
    for exit_ in int8_exits(model):
        chain, t = [exit_], _upstream(g, exit_)
        while t is not None:
            chain.append(t)
            t = _upstream(g, t)
        chains.append(chain)
    names = sorted({t for c in chains for t in c})
    if not names:
        return [], []
    with Probe(model, names, only=True) as probe:
        one, two = probe(images[:1]), probe(np.concatenate([images[:1], images[:1]]))
    points: dict[str, list[str]] = {}  # point -> the tensors below it, of every exit it serves
    skipped = []
    for chain in chains:
        good = [t for t in chain if _batch_axis(one[t].shape, two[t].shape) is not None]
        if not good:
            seen = ", ".join(f"{t}: {one[t].shape} / {two[t].shape}" for t in chain)
            log.info("INT8 feature bias correction: no tensor with a batch axis of its own at or above %s (shapes "
                     "for 1 / 2 images: %s); left uncorrected", chain[0], seen)
            skipped.append(chain[0])
            continue
        below = points.setdefault(good[0], [])
        below += [t for t in chain[:chain.index(good[0])] if t not in below]
    return list(points.items()), skipped


def _drop_qdq(model, tensors: list[str]) -> None:
    """Remove the Q/DQ pairs that produce ``tensors`` (DequantizeLinear outputs): readers get the FP32 value."""
    g = GraphIndex(model)
    dead = set()
    for t in tensors:
        q = _quantize_of(g, t)
        if q is None or len(g.consumers.get(q.output[0], [])) != 1:
            continue
        _rewire(g, t, q.input[0])
        dead |= {t, q.output[0]}
    keep = [n for n in model.graph.node if not (len(n.output) == 1 and n.output[0] in dead)]
    del model.graph.node[:]
    model.graph.node.extend(keep)


def correct_feature_bias(fp32_path: str | Path, int8_path: str | Path,
                         images: np.ndarray) -> tuple[list[Correction], list[str]]:
    """Measure the mean INT8 error of the features on ``images`` and subtract it in the INT8 graph (in place).

    Args:
        fp32_path: the FP32 contract graph the INT8 one was made from (same tensor names).
        int8_path: the Q/DQ graph; rewritten.
        images: good images ``[N,H,W,C]`` uint8 at one size (the calibration set).

    Returns:
        (the inserted corrections, one per exit of the INT8 region; the exits left uncorrected because no tensor at
        or above them has a batch axis of its own).

    Raises:
        CalibrationError: fewer than 2 images.
        EngineError: a corrected tensor is missing in the FP32 graph (``int8_path`` was not made from it).
    """
    onnx = lazy_import("onnx", feature="INT8 quantization")
    numpy_helper = lazy_import("onnx.numpy_helper", feature="INT8 quantization")
    helper = lazy_import("onnx.helper", feature="INT8 quantization")
    if len(images) < 2:
        raise CalibrationError(f"INT8 feature bias correction needs at least 2 good images, got {len(images)}",
                               hint="give a larger calibration set")
    model = onnx.load(str(int8_path))
    fp32 = onnx.load(str(fp32_path))
    found, skipped = _points(model, images)
    if not found:
        return [], skipped
    _drop_qdq(model, [t for _, below in found for t in below])
    points = [p for p, _ in found]
    g = GraphIndex(model)
    fp_names = [_fp32_name(g, t) for t in points]
    known = {t for n in fp32.graph.node for t in n.output} | {i.name for i in fp32.graph.input}
    if any(t not in known for t in fp_names):
        raise EngineError(f"INT8 feature bias correction: {fp_names} not all in {fp32_path}",
                          hint="correct the INT8 graph made from this FP32 graph, or use --int8-correction none")
    with Probe(model, points, only=True) as q_probe, Probe(fp32, fp_names, only=True) as f_probe:
        diff = {t: 0.0 for t in points}
        sq, total = {t: 0.0 for t in points}, {t: 0.0 for t in points}
        for i in range(len(images)):
            got, ref = q_probe(images[i:i + 1]), f_probe(images[i:i + 1])
            for t, f in zip(points, fp_names):
                a = ref[f].astype(np.float64)
                diff[t] = diff[t] + (got[t] - a)
                total[t] = total[t] + a.sum()
                sq[t] = sq[t] + (a * a).sum()
    n = len(images)
    out = []
    for t in points:
        delta = (diff[t] / n).astype(np.float32)
        count = n * delta.size
        std = float(np.sqrt(max(sq[t] / count - (total[t] / count) ** 2, 1e-30)))
        rms = float(np.sqrt(np.mean(delta.astype(np.float64) ** 2)))
        const = fresh_name(model, f"{t}_edgead_int8_bias")
        corrected = fresh_name(model, f"{t}_edgead_corrected")
        model.graph.initializer.append(numpy_helper.from_array(delta, const))
        _rewire(g, t, corrected)
        sub = helper.make_node("Sub", [t, const], [corrected], name=fresh_name(model, f"{t}_edgead_bias_correction"))
        _insert_after(model, t, sub)
        out.append(Correction(tensor=t, shape=tuple(delta.shape), rms=rms, relative=rms / std))
    onnx.save(model, str(int8_path))
    return out, skipped


def _fp32_name(g: GraphIndex, tensor: str) -> str:
    """The FP32 graph's name of an INT8 graph's tensor (a DequantizeLinear output is its quantized tensor)."""
    q = _quantize_of(g, tensor)
    return tensor if q is None else q.input[0]


def _insert_after(model, tensor: str, node) -> None:
    """Insert ``node`` right after the producer of ``tensor`` (a graph input: first): the list stays sorted."""
    nodes = list(model.graph.node)
    at = next((i + 1 for i, n in enumerate(nodes) if tensor in n.output), 0)
    del model.graph.node[:]
    model.graph.node.extend(nodes[:at] + [node] + nodes[at:])
