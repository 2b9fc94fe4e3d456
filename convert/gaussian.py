"""Feature-subset recipe for Gaussian (PaDiM-style) heads: keep k of the d channels, with the EXACT marginal Gaussian.

The Mahalanobis head's batched ``MatMul`` is memory bound: per image it streams the whole ``[P, d, d]`` inverse
covariance (4 P d^2 bytes) for ``P`` matrix-vector products. A factorisation of the same matrix (Cholesky
``S = L L^T``, ``d^2 = ||L^T x||^2``) streams the same bytes, so it gains nothing; fewer channels do: the head's bytes
and work scale with ``k^2`` (the profile of the PaDiM graph: docs/benchmarks.md, "Figures behind code choices").

The rewrite (lossy, so thresholds are transferred and the accuracy gate decides):

- **Which channels**: the cheapest first. Each kept channel comes from one backbone layer (one input of the
  ``Concat`` the head's ``Gather`` picks from); channels of shallower layers are kept first (in index order within
  a layer), and the count is snapped down to a layer boundary when that costs at most 10 % of it. A layer left
  with no channel is cut from the ``Concat``, so the backbone stops after the last layer still needed (dead-node
  removal drops the rest).
- **The exact marginal**: for the kept set ``s``, the marginal of a Gaussian is its sub-block: ``cov_s =
  (S^-1)[s, s]`` and the new inverse covariance is ``(cov_s)^-1``; the mean is ``mean[..., s]``. This equals fitting
  the Gaussian on the k channels alone (with the same ``eps`` on the diagonal), without the training data.

State read from the graph only: the ``Gather`` index (``model.channel_index``), the mean (``[..., P, d]``, any
leading axes, e.g. PaDiM's task axis) and the inverse covariance (``[..., P, d, d]``) initializers, and constant
``Reshape`` shapes that name ``d`` between the Gather and the head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgead.convert.onnx_edit import GraphIndex, fresh_name, remove_dead, run_with
from edgead.errors import EngineError


@dataclass(frozen=True)
class GaussianHead:
    """Where a Gaussian head is in a graph.

    Attributes:
        gather: the ``Gather(Concat(layers...), index, axis=1)`` node picking the d channels.
        concat: the ``Concat`` of the backbone layers it reads.
        index_init: the initializer of the channel index (``[d]`` int64).
        mean_init: the mean initializer (last axis d).
        inv_init: the inverse covariance initializer (last two axes d x d).
        d: number of channels.
    """

    gather: object
    concat: object
    index_init: str
    mean_init: str
    inv_init: str
    d: int


def _downstream(g: GraphIndex, start: str, stop: set[str]) -> list:
    """Nodes reachable from tensor ``start``, not crossing tensors in ``stop``."""
    seen, todo, out = set(), [start], []
    while todo:
        t = todo.pop()
        for node in g.consumers.get(t, []):
            if id(node) in seen:
                continue
            seen.add(id(node))
            out.append(node)
            todo += [o for o in node.output if o not in stop]
    return out


def find_gaussian_head(model) -> GaussianHead | None:
    """Locate ``ReduceSum(Mul(MatMul(x, S), x))`` with ``S`` a constant ``[..., d, d]`` fed by a channel ``Gather``.

    Returns:
        The :class:`GaussianHead`, or None when the graph has none (e.g. a kNN detector).
    """
    g = GraphIndex(model)
    inits = {i.name for i in model.graph.initializer}
    for mm in model.graph.node:
        if mm.op_type != "MatMul" or mm.input[1] not in inits:
            continue
        s = g.const(mm.input[1])
        if s.ndim < 3 or s.shape[-1] != s.shape[-2]:
            continue
        mul = g.only_consumer(mm.output[0])
        if mul is None or mul.op_type != "Mul" or mm.input[0] not in mul.input:
            continue
        red = g.only_consumer(mul.output[0])
        if red is None or red.op_type != "ReduceSum":
            continue
        d = int(s.shape[-1])
        gathers = [n for n in model.graph.node if n.op_type == "Gather" and n.input[1] in inits
                   and g.const(n.input[1]).shape == (d,) and g.producer.get(n.input[0]) is not None
                   and g.producer[n.input[0]].op_type == "Concat"]
        if len(gathers) != 1:
            continue
        gather = gathers[0]
        path = _downstream(g, gather.output[0], {mm.output[0]})
        means = [t for n in path if n.op_type == "Sub" for t in n.input
                 if t in inits and g.const(t).ndim >= 2 and g.const(t).shape[-1] == d]
        if len(means) != 1 or not any(n is mm for n in path):
            continue
        return GaussianHead(gather=gather, concat=g.producer[gather.input[0]], index_init=gather.input[1],
                            mean_init=means[0], inv_init=mm.input[1], d=d)
    return None


def marginal_inverse(inv_cov: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Inverse covariance of the marginal Gaussian on the channels ``keep`` (exact).

    Args:
        inv_cov: ``[..., d, d]`` inverse covariances (symmetric positive definite).
        keep: indices of the kept channels.

    Returns:
        ``[..., k, k]`` float32: ``inv(inv(inv_cov)[keep, keep])``, computed in float64.
    """
    s = np.asarray(inv_cov, np.float64)
    cov = np.linalg.inv(s)
    sub = cov[..., keep[:, None], keep[None, :]]
    sub = 0.5 * (sub + np.swapaxes(sub, -1, -2))
    inv = np.linalg.inv(sub)
    return (0.5 * (inv + np.swapaxes(inv, -1, -2))).astype(np.float32)


def layer_sizes(model, head: GaussianHead, image: np.ndarray) -> list[int]:
    """Channels of each ``Concat`` input (one ONNX Runtime run on ``image``)."""
    vals = run_with(model, {"image": image[:1]}, list(head.concat.input))
    return [int(vals[t].shape[1]) for t in head.concat.input]


SNAP = 0.1
"""A subset is snapped down to a layer boundary when that drops at most this fraction of its channels (so a layer
that would keep only a few channels is cut whole, and the backbone stops earlier)."""


def choose_channels(index: np.ndarray, sizes: list[int], k: int) -> np.ndarray:
    """Positions (into ``index``) of the k cheapest channels: shallow layers first, index order within a layer.

    Args:
        index: the head's channel index into the concatenated layers.
        sizes: channels per layer, in ``Concat`` order (shallow to deep).
        k: how many to keep (fewer by at most :data:`SNAP` when that cuts the deepest kept layer whole).

    Returns:
        Sorted positions into ``index``.
    """
    layer = np.searchsorted(np.cumsum(sizes), index, side="right")
    order = np.lexsort((index, layer))
    bounds = np.cumsum(np.bincount(layer, minlength=len(sizes)))
    snapped = [int(b) for b in bounds if 0 < b <= k and b >= (1.0 - SNAP) * k]
    return np.sort(order[:max(snapped) if snapped else k])


def subset_features(model, keep_fraction: float, image: np.ndarray) -> dict:
    """Rewrite the Gaussian head in place to the marginal on a channel subset, cutting unneeded layers.

    Args:
        model: the ``onnx.ModelProto``.
        keep_fraction: fraction of the head's channels kept (0 < f < 1).
        image: ``[N, H, W, C]`` uint8 sample images (probing the layer sizes, checking the features).

    Returns:
        ``{"channels_before", "channels_after", "layers_cut"}`` for ``conversion:``.

    Raises:
        EngineError: no Gaussian head, a bad fraction, or the rewritten features differ from the kept ones.
    """
    from onnx import numpy_helper

    if not 0.0 < keep_fraction < 1.0:
        raise EngineError(f"feature subset: keep fraction {keep_fraction} is not in (0, 1)")
    head = find_gaussian_head(model)
    if head is None:
        raise EngineError("no Gaussian head (ReduceSum(Mul(MatMul(x, inv_cov), x)) over a channel Gather)",
                          hint="the feature subset applies to PaDiM-style detectors only")
    g = GraphIndex(model)
    index = g.const(head.index_init).astype(np.int64)
    sizes = layer_sizes(model, head, image)
    keep = choose_channels(index, sizes, max(1, int(round(keep_fraction * head.d))))
    k = len(keep)
    before = run_with(model, {"image": image[:1]}, [head.gather.output[0]])[head.gather.output[0]]
    new_index = index[keep]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    used = [i for i, (a, n) in enumerate(zip(starts, sizes)) if np.any((new_index >= a) & (new_index < a + n))]
    cut = [i for i in range(len(sizes)) if i not in used]
    if cut and used == list(range(len(used))):  # only trailing (deepest) layers can go without re-indexing
        for _ in cut:
            head.concat.input.pop()
    else:
        cut = []
    inits = {i.name: i for i in model.graph.initializer}
    mean = numpy_helper.to_array(inits[head.mean_init])
    inv = numpy_helper.to_array(inits[head.inv_init])
    for name, value in ((head.index_init, new_index), (head.mean_init, mean[..., keep].astype(np.float32)),
                        (head.inv_init, marginal_inverse(inv, keep))):
        inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value), name))
    for node in _downstream(g, head.gather.output[0], set()):
        if node.op_type == "Reshape" and g.const(node.input[1]) is not None:
            shape = g.const(node.input[1]).astype(np.int64)
            if shape.size and shape[-1] == head.d:
                _set_const(model, g, node, 1, np.concatenate([shape[:-1], [k]]).astype(np.int64))
    remove_dead(model)
    after = run_with(model, {"image": image[:1]}, [head.gather.output[0]])[head.gather.output[0]]
    if after.shape != before[:, keep].shape or not np.allclose(after, before[:, keep], rtol=1e-4, atol=1e-5):
        raise EngineError("feature subset: the rewritten graph's features differ from the kept channels")
    return {"channels_before": head.d, "channels_after": int(k), "layers_cut": len(cut),
            "rule": "cheapest channels first (shallow layers), exact marginal Gaussian"}


def _set_const(model, g: GraphIndex, node, slot: int, value: np.ndarray) -> None:
    """Point ``node.input[slot]`` at a new initializer holding ``value`` (the old constant may be shared)."""
    from onnx import numpy_helper

    name = fresh_name(model, "edgead_feat_shape")
    model.graph.initializer.append(numpy_helper.from_array(value, name))
    node.input[slot] = name
