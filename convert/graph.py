"""Where the backbone is in a contract graph, and whether a converted graph still honours the contract.

Precision rule (FP16 and INT8 alike): only the **backbone** is lowered. Everything else -- the uint8 cast, resize
and normalisation in front, the feature aggregation, the distance / kNN / Mahalanobis head, the map upsampling and
Gaussian smoothing, and the output normalisation behind -- stays FP32. Those ops are cheap, and they are the ones
that overflow in FP16 or lose the ranking of small distances in INT8.

A node belongs to the backbone when one component of its ``/``-separated name is in :data:`BACKBONE_SCOPES`
(``torch.onnx.export`` names nodes after the module path, e.g. ``/model/backbone/blocks.3/conv/Conv``). A graph
with no such names falls back to a structural rule: every node reachable from the first ``Conv`` that is not
downstream of a head op (:data:`HEAD_OPS`: MatMul, ReduceMin, TopK, Sqrt, Softmax, ...).
"""
from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Iterable

from edgead.contract.graph import INPUT, NORM_INITIALIZERS, OUTPUT_NAMES
from edgead.errors import EngineError

BACKBONE_SCOPES = ("backbone", "feature_extractor", "encoder")
"""Module names whose nodes form the backbone (one component of the node name must match exactly)."""

HEAD_OPS = frozenset({
    "MatMul", "Gemm", "Einsum", "TopK", "ReduceMin", "ReduceMax", "ReduceSum", "ReduceMean", "ReduceL2",
    "ArgMin", "ArgMax", "Sqrt", "Softmax", "LogSoftmax", "LayerNormalization", "Pow",
})
"""Ops that start the scoring head in the structural fallback."""


@dataclass(frozen=True)
class Regions:
    """Node names split by precision region.

    Attributes:
        backbone: nodes that may be lowered (FP16 / INT8).
        kept: nodes that stay FP32 (pre-processing, head, post-processing).
        rule: ``"scope"`` or ``"structure"``: which rule found the backbone.
    """

    backbone: tuple[str, ...]
    kept: tuple[str, ...]
    rule: str


def ensure_node_names(model) -> None:
    """Give every unnamed node a unique name (the block lists and the quantizer address nodes by name)."""
    seen = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_edgead_{i}"
            while name in seen:
                name += "_"
            node.name = name
            seen.add(name)


def _in_scope(name: str, scopes: Iterable[str]) -> bool:
    parts = set(name.strip("/").split("/"))
    return any(s in parts for s in scopes)


def _structural_backbone(nodes) -> set[str]:
    consumers = defaultdict(list)
    for node in nodes:
        for t in node.input:
            consumers[t].append(node)
    first_conv = next((n for n in nodes if n.op_type == "Conv"), None)
    if first_conv is None:
        return set()

    producers = {t: node for node in nodes for t in node.output}

    def reach(starts, step) -> set[str]:
        """Names of the nodes reached from ``starts`` by ``step`` (node -> its neighbours one way)."""
        out, queue = set(), deque(starts)
        while queue:
            node = queue.popleft()
            if node.name not in out:
                out.add(node.name)
                queue.extend(step(node))
        return out

    def downstream(starts) -> set[str]:
        return reach(starts, lambda node: [c for t in node.output for c in consumers[t]])

    def upstream(starts) -> set[str]:
        return reach(starts, lambda node: [producers[t] for t in node.input if t in producers])

    after_head = downstream([n for n in nodes if n.op_type in HEAD_OPS])
    # the feature taps (pooling, scaling, resizing, concatenating block outputs for the head) feed no Conv: they
    # belong to the head and stay FP32, as the scope rule keeps them (OpenVINO's INT8 transformations also
    # mis-scale dequantized values carried through them into the head)
    region = downstream([first_conv]) - after_head
    return region & upstream([n for n in nodes if n.op_type == "Conv" and n.name in region])


def split_regions(model, scopes: Iterable[str] = BACKBONE_SCOPES) -> Regions:
    """Split a contract graph into the backbone (may be lowered) and the rest (stays FP32).

    Args:
        model: an ``onnx.ModelProto`` (unnamed nodes are named first, in place).
        scopes: module names that mark the backbone in node names.

    Returns:
        The :class:`Regions`.

    Raises:
        EngineError: if no backbone can be found (nothing to lower).

    Example:
        >>> regions = split_regions(onnx.load("model.onnx"))        # doctest: +SKIP
    """
    ensure_node_names(model)
    nodes = list(model.graph.node)
    scopes = tuple(scopes)
    backbone = {n.name for n in nodes if _in_scope(n.name, scopes)}
    rule = "scope"
    if not backbone:
        backbone, rule = _structural_backbone(nodes), "structure"
    if not backbone:
        raise EngineError(f"no backbone found in the graph (no node under {list(scopes)} and no Conv)",
                          hint="name the feature extractor module 'backbone' in the detector")
    return Regions(backbone=tuple(n.name for n in nodes if n.name in backbone),
                   kept=tuple(n.name for n in nodes if n.name not in backbone), rule=rule)


def _spatial_height(model, name: str) -> int | None:
    """The static height (dim 2) of a rank-4 tensor from the graph's shape information, or None."""
    for vi in list(model.graph.value_info) + list(model.graph.output):
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[2].HasField("dim_value"):
                return int(dims[2].dim_value)
            return None
    return None


def keep_high_resolution(model, regions: Regions, input_height: int, min_stride: int) -> Regions:
    """Keep the backbone's high-resolution start in FP32: every backbone node before the first ``Conv`` whose
    output is at ``1/min_stride`` of the model resolution or coarser (graph order, which ``torch.onnx.export``
    writes in execution order).

    The early layers see the raw texture at full resolution and feed the per-pixel maps; their INT8 error is what
    moved the maps on low-contrast grey images (magnetic_tile, see :class:`edgead.calibration.quantize.Int8Scope`).

    Args:
        model: the graph with shape information (after ONNX Runtime's quantization pre-processing).
        regions: the split of :func:`split_regions`.
        input_height: the model resolution's height (the contract graph's ``edgead.input_height``).
        min_stride: the first output stride that is lowered.

    Returns:
        The narrowed :class:`Regions` (rule ``<rule>+stride<min_stride>``).

    Raises:
        EngineError: if no backbone Conv with a known output shape reaches that stride.
    """
    limit = input_height // int(min_stride)
    backbone = set(regions.backbone)
    order = [n for n in model.graph.node if n.name in backbone]
    cut = None
    for i, node in enumerate(order):
        if node.op_type == "Conv":
            h = _spatial_height(model, node.output[0])
            if h is not None and h <= limit:
                cut = i
                break
    if cut is None:
        raise EngineError(f"no backbone Conv at stride {min_stride} or coarser with a known output shape",
                          hint="use the whole-backbone INT8 scope (--int8-scope backbone)")
    early = {n.name for n in order[:cut]}
    return Regions(backbone=tuple(n for n in regions.backbone if n not in early),
                   kept=tuple(n.name for n in model.graph.node if n.name not in backbone or n.name in early),
                   rule=f"{regions.rule}+stride{min_stride}")


def check_contract(model, *, where: str) -> None:
    """Check the converted graph's I/O and normalisation initializers against the graph contract.

    Args:
        model: the converted ``onnx.ModelProto``.
        where: what the graph is, for the message (e.g. ``"FP16 graph"``).

    Raises:
        EngineError: naming the broken part of the contract.
    """
    from onnx import TensorProto

    inputs = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    if inputs.get(INPUT) != TensorProto.UINT8:
        raise EngineError(f"{where}: input {INPUT!r} must be uint8, got {inputs}")
    outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    for name in OUTPUT_NAMES:
        if outputs.get(name) != TensorProto.FLOAT:
            raise EngineError(f"{where}: output {name!r} must be float32, got elem_type {outputs.get(name)}")
    inits = {i.name: i.data_type for i in model.graph.initializer}
    for name in NORM_INITIALIZERS:
        if inits.get(name) != TensorProto.FLOAT:
            raise EngineError(f"{where}: normalisation initializer {name!r} missing or not float32",
                              hint="thresholds could no longer be changed; report this as a bug")
