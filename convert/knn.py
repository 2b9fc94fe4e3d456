"""Rewrite the nearest-neighbour head of a kNN detector (PatchCore, the contract test model) for the CPU.

The exported head computes the full distance matrix ``||q||^2 - 2 q.B^T + ||b||^2`` (``[N, P, M]``), clamps it
and takes its minimum (and arg-minimum) over the bank. Every elementwise op there touches all ``P x M`` entries.
The rewrite computes ``g = q.(-2 B^T) + ||b||^2`` with one ``Gemm`` (bias folded, the ``-2`` folded into the
weights), takes min and arg-min of ``g`` with one ``TopK(k=1, largest=0)``, and adds ``||q||^2`` and the clamp on
the ``[N, P]`` minimum only: ``min_j(a + g_j) = a + min_j g_j``, so the result is the same up to float rounding.
The bank may be replaced (``bank``/``neighbors``: a reduced bank from :mod:`edgead.convert.bank`); the bank
initializers read elsewhere (PatchCore's reweighting gathers bank rows and each row's neighbours) are replaced too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgead.convert.onnx_edit import GraphIndex, attr, fresh_name, remove_dead
from edgead.errors import EngineError, lazy_import


@dataclass(frozen=True)
class KnnHead:
    """Where the head is.

    Attributes:
        query: the ``[N, P, D]`` patch-feature tensor.
        bank: ``[M, D]`` float32, recovered from the MatMul weights.
        min_out: the ``ReduceMin`` output (squared distance to the nearest entry).
        argmin_out: the ``ArgMin`` output (its index), or None.
        keepdims: whether those keep the reduced axis.
        bank_init: the ``[M, D]`` bank initializer read by other nodes (reweighting), or None.
        neighbors_init: the ``[M, k]`` int64 neighbour initializer, or None.
    """

    query: str
    bank: np.ndarray
    min_out: str
    argmin_out: str | None
    keepdims: int
    bank_init: str | None
    neighbors_init: str | None


def _scalar(g: GraphIndex, name: str) -> float | None:
    v = g.const(name)
    return float(v.reshape(-1)[0]) if v is not None and v.size == 1 else None


def find_knn_head(model) -> KnnHead | None:
    """Locate ``ReduceMin(Clip(Add(Sub(ReduceSum(q*q), MatMul(s*q, W)), ||b||^2)))`` over the last axis.

    Returns:
        The :class:`KnnHead`, or None when the graph has no such head (nothing to rewrite).
    """
    g = GraphIndex(model)
    for node in model.graph.node:
        if node.op_type != "MatMul" or g.const(node.input[1]) is None:
            continue
        w = g.const(node.input[1]).astype(np.float32)
        if w.ndim != 2:
            continue
        x = node.input[0]
        scale = 1.0
        mul = g.producer.get(x)
        if mul is not None and mul.op_type == "Mul":
            for a, b in ((0, 1), (1, 0)):
                s = _scalar(g, mul.input[b])
                if s is not None:
                    scale, x = s, mul.input[a]
                    break
        sub = g.only_consumer(node.output[0])
        if sub is None or sub.op_type != "Sub" or sub.input[1] != node.output[0]:
            continue
        add = g.only_consumer(sub.output[0])
        clip = g.only_consumer(add.output[0]) if add is not None and add.op_type == "Add" else None
        if clip is None or clip.op_type not in ("Clip", "Relu"):
            continue
        reducers = g.consumers.get(clip.output[0], [])
        rmin = [n for n in reducers if n.op_type == "ReduceMin"]
        amin = [n for n in reducers if n.op_type == "ArgMin"]
        if len(rmin) != 1 or len(reducers) != len(rmin) + len(amin) or len(amin) > 1:
            continue
        keep = int(attr(rmin[0], "keepdims", 1))
        axes = attr(rmin[0], "axes", None)
        if axes is None and len(rmin[0].input) > 1 and rmin[0].input[1]:
            axes = list(g.const(rmin[0].input[1]).reshape(-1))
        if axes is None or len(axes) != 1 or int(axes[0]) not in (-1, 2):
            continue
        if amin and (int(attr(amin[0], "axis", 0)) not in (-1, 2) or int(attr(amin[0], "keepdims", 1)) != keep):
            continue
        bank = (scale / 2.0 * w).T.astype(np.float32)  # a2 - (s*q) @ W + b2: s*W = 2 B^T
        bank_init = neighbors_init = None
        for init in model.graph.initializer:
            if tuple(init.dims) == bank.shape and np.allclose(g.const(init.name), bank, rtol=1e-4, atol=1e-5):
                bank_init = init.name if any(n.op_type == "Gather" for n in g.consumers.get(init.name, [])) \
                    else bank_init
            elif len(init.dims) == 2 and init.dims[0] == bank.shape[0] and init.data_type == 7:  # INT64
                neighbors_init = init.name
        return KnnHead(query=x, bank=bank, min_out=rmin[0].output[0], argmin_out=amin[0].output[0] if amin else None,
                       keepdims=keep, bank_init=bank_init, neighbors_init=neighbors_init)
    return None


def rewrite_knn_head(model, head: KnnHead, *, bank: np.ndarray | None = None,
                     neighbors: np.ndarray | None = None) -> None:
    """Replace the head found by :func:`find_knn_head` in place (optionally with another bank).

    Args:
        model: the ``onnx.ModelProto``.
        head: from :func:`find_knn_head` on this model.
        bank: ``[M', D]`` replacement bank (default: the graph's own).
        neighbors: ``[M', k]`` int64 neighbour indices into ``bank`` (required when the graph has a neighbour
            initializer and ``bank`` is given).

    Raises:
        EngineError: a replacement bank without the neighbour table the graph needs.
    """
    onnx = lazy_import("onnx", feature="graph rewrites")
    from onnx import helper, numpy_helper

    b = head.bank if bank is None else np.asarray(bank, np.float32)
    if bank is not None and head.neighbors_init is not None and neighbors is None:
        raise EngineError("a reduced bank needs its neighbour table (the reweighting gathers it)")
    d = b.shape[1]
    n = lambda base: fresh_name(model, f"edgead_knn_{base}")  # noqa: E731
    w_name, c_name, shp = n("weight"), n("bias"), n("rows_shape")
    model.graph.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(-2.0 * b.T), w_name),
        numpy_helper.from_array((b.astype(np.float64) ** 2).sum(1).astype(np.float32), c_name),
        numpy_helper.from_array(np.array([-1, d], np.int64), shp)])
    out_shape = n("out_shape")
    nodes = []

    def add(op, inputs, outputs=None, **attrs):
        outs = outputs or [n(op.lower())]
        nodes.append(helper.make_node(op, inputs, outs, name=f"/edgead_knn/{op}_{len(nodes)}", **attrs))
        return outs

    rows, = add("Reshape", [head.query, shp])
    g, = add("Gemm", [rows, w_name, c_name])
    k1 = n("k1")
    model.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), k1))
    gmin, gidx = add("TopK", [g, k1], [n("min"), n("argmin")], axis=1, largest=0, sorted=0)
    sq, = add("Mul", [rows, rows])
    axes = n("axes")
    model.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), axes))
    a2, = add("ReduceSum", [sq, axes], keepdims=1)
    dist, = add("Add", [gmin, a2])
    zero = n("zero")
    model.graph.initializer.append(numpy_helper.from_array(np.array(0.0, np.float32), zero))
    dist, = add("Max", [dist, zero])
    # [N*P, 1] -> the ReduceMin output shape: [N, P] (or [N, P, 1] with keepdims), from the query's shape.
    qshape, = add("Shape", [head.query])
    starts, ends = n("starts"), n("ends")
    model.graph.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), starts),
                                    numpy_helper.from_array(np.array([-1], np.int64), ends)])
    lead, = add("Slice", [qshape, starts, ends])
    if head.keepdims:
        add("Concat", [lead, k1], [out_shape], axis=0)
    else:
        add("Identity", [lead], [out_shape])
    add("Reshape", [dist, out_shape], [head.min_out])
    if head.argmin_out is not None:
        add("Reshape", [gidx, out_shape], [head.argmin_out])
    old = {head.min_out, head.argmin_out}
    kept = [x for x in model.graph.node if not (set(x.output) & old)]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    # Insert the new nodes right after the query's producer (topological order).
    pos = next((i for i, x in enumerate(model.graph.node) if head.query in x.output), -1) + 1
    for i, node in enumerate(nodes):
        model.graph.node.insert(pos + i, node)
    if bank is not None:
        for name, value in ((head.bank_init, b), (head.neighbors_init, neighbors)):
            if name is None:
                continue
            for init in model.graph.initializer:
                if init.name == name:
                    init.CopyFrom(numpy_helper.from_array(np.asarray(value, np.int64 if value is neighbors else
                                                                     np.float32), name))
    remove_dead(model)
    onnx.checker.check_model(model)
