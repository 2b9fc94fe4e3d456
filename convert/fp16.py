"""FP32 -> FP16 graph: the backbone in half precision, everything numerically sensitive kept in FP32.

The rule for what stays FP32 is in :mod:`edgead.convert.graph` (only the backbone is lowered); on top of it, ops in
:data:`FP32_OPS` stay FP32 wherever they are. The lowering is done with explicit ONNX ``Cast`` nodes at the region
borders (``onnxruntime.transformers.float16`` renames tensors inconsistently on graphs where one FP32 tensor feeds
several blocked nodes, producing duplicate node names): lowered nodes get FP16 weights and FP16 tensors named
``<tensor>__fp16``; a tensor that leaves the region is cast back under its original name. I/O types are kept
(uint8 in, float32 out), and the normalisation initializers stay FP32, so thresholds can still be changed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from edgead.convert.graph import BACKBONE_SCOPES, check_contract, split_regions
from edgead.errors import EngineError, lazy_import

FP32_OPS = frozenset({
    "Cast", "Resize", "Upsample", "Softmax", "LogSoftmax", "LayerNormalization", "InstanceNormalization",
    "ReduceMean", "ReduceSum", "ReduceMin", "ReduceMax", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp",
    "TopK", "ArgMin", "ArgMax", "Sqrt", "Pow", "Exp", "Log", "Erf", "Einsum", "Range", "CumSum",
    "ConstantOfShape", "RandomNormal", "RandomUniform", "Shape", "Size",
})
"""Ops kept in FP32 wherever they are (overflow- or precision-sensitive, or typed attributes)."""

SUFFIX = "__fp16"


@dataclass(frozen=True)
class Fp16Result:
    """What the FP16 conversion did.

    Attributes:
        path: the written graph.
        lowered: names of the nodes now computing in FP16.
        kept: names of the nodes that stayed FP32.
        rule: how the backbone was found (``scope`` | ``structure``).
    """

    path: Path
    lowered: tuple[str, ...]
    kept: tuple[str, ...]
    rule: str


def _elem_types(model) -> dict[str, int]:
    onnx = lazy_import("onnx", feature="FP16 conversion")
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {i.name: i.data_type for i in model.graph.initializer}
    for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        types[vi.name] = vi.type.tensor_type.elem_type
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    return types


def lower_to_fp16(model, lowered: set[str]) -> None:
    """Rewrite ``model`` in place so that the nodes named in ``lowered`` compute in FP16.

    Args:
        model: an ``onnx.ModelProto`` with unique node names.
        lowered: node names to lower; every float tensor they read or write must have a known type.
    """
    onnx = lazy_import("onnx", feature="FP16 conversion")
    from onnx import TensorProto, helper, numpy_helper

    F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
    types = _elem_types(model)
    inits = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for t in node.input:
            consumers.setdefault(t, []).append(node)
    graph_outputs = {o.name for o in model.graph.output}
    produced_low = {t for n in model.graph.node if n.name in lowered for t in n.output if types.get(t) == F32}
    new_nodes, casts_in, new_inits = [], {}, []

    def fp16_input(name: str) -> str:
        if name in produced_low:
            return name + SUFFIX
        if name in casts_in:
            return casts_in[name]
        if name in inits and all(c.name in lowered for c in consumers[name]) and name not in graph_outputs:
            arr = numpy_helper.to_array(inits[name]).astype("float16")
            inits[name].CopyFrom(numpy_helper.from_array(arr, name))
            casts_in[name] = name
        elif name in inits:
            arr = numpy_helper.to_array(inits[name]).astype("float16")
            new_inits.append(numpy_helper.from_array(arr, name + SUFFIX))
            casts_in[name] = name + SUFFIX
        else:
            new_nodes.append(helper.make_node("Cast", [name], [name + SUFFIX], to=F16, name=name + "__to_fp16"))
            casts_in[name] = name + SUFFIX
        return casts_in[name]

    for node in list(model.graph.node):
        if node.name in lowered:
            if node.op_type == "Constant":
                attr = next(a for a in node.attribute if a.name == "value")
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype("float16"), ""))
            for i, t in enumerate(node.input):
                if t and types.get(t) == F32:
                    node.input[i] = fp16_input(t)
            for i, t in enumerate(node.output):
                if t in produced_low:
                    node.output[i] = t + SUFFIX
                    outside = t in graph_outputs or any(c.name not in lowered for c in consumers.get(t, []))
                    if outside:
                        cast = helper.make_node("Cast", [t + SUFFIX], [t], to=F32, name=t + "__to_fp32")
                        new_nodes.append(cast)
        new_nodes.append(node)
    model.graph.initializer.extend(new_inits)
    del model.graph.node[:]
    model.graph.node.extend(_toposort(new_nodes, model))
    del model.graph.value_info[:]
    onnx.checker.check_model(model)


def _toposort(nodes, model) -> list:
    ready = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    pending, out = list(nodes), []
    while pending:
        rest = [n for n in pending if not all(t in ready for t in n.input)]
        done = [n for n in pending if all(t in ready for t in n.input)]
        if not done:
            raise EngineError(f"FP16 lowering left a cycle or a dangling input near {rest[0].name!r}")
        for n in done:
            out.append(n)
            ready.update(n.output)
        pending = rest
    return out


def _lowerable(model, backbone: Iterable[str]) -> set[str]:
    from onnx import TensorProto

    types = _elem_types(model)
    by_name = {n.name: n for n in model.graph.node}
    floats = (TensorProto.FLOAT,)
    out = set()
    for name in backbone:
        node = by_name[name]
        tensors = [t for t in (*node.input, *node.output) if t]
        if node.op_type in FP32_OPS or any(t not in types for t in tensors):
            continue
        if any(types[t] in floats for t in node.output):
            out.add(name)
    return out


def convert_fp16(onnx_path: str | os.PathLike, out_path: str | os.PathLike, *,
                 scopes: Iterable[str] = BACKBONE_SCOPES) -> Fp16Result:
    """Convert a contract graph to FP16, keeping the pre-/post-processing and the scoring head in FP32.

    Args:
        onnx_path: the FP32 contract graph.
        out_path: where to write the FP16 graph.
        scopes: module names that mark the backbone (see :func:`edgead.convert.graph.split_regions`).

    Returns:
        The :class:`Fp16Result`.

    Raises:
        EngineError: if the graph has no backbone or the result breaks the graph contract.

    Example:
        >>> convert_fp16("bundle/model.onnx", "out/model.fp16.onnx").lowered[:2]   # doctest: +SKIP
    """
    onnx = lazy_import("onnx", feature="FP16 conversion")
    model = onnx.load(str(onnx_path))
    regions = split_regions(model, scopes)
    lowered = _lowerable(model, regions.backbone)
    if not lowered:
        raise EngineError(f"{onnx_path}: no backbone node can run in FP16", hint="use --precision fp32")
    try:
        lower_to_fp16(model, lowered)
    except onnx.checker.ValidationError as exc:
        raise EngineError(f"FP16 graph of {onnx_path} is invalid: {exc}") from exc
    check_contract(model, where=f"FP16 graph of {onnx_path}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    names = [n.name for n in model.graph.node]
    return Fp16Result(path=out, lowered=tuple(n for n in names if n in lowered),
                      kept=tuple(n for n in names if n not in lowered), rule=regions.rule)
