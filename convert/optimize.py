"""Conversion-time graph optimisation for ONNX Runtime on the CPU: exact rewrites, each checked, and an optional
memory-bank reduction (which the accuracy gate checks).

Profiling the exported PatchCore graph with ONNX Runtime (2 cores, 256x256) showed where the time goes: the kNN
head's elementwise ops over the ``[P, M]`` distance matrix (Sub, Add, Clip, ReduceMin, ArgMin) next to its MatMul,
the explicit ``Pad`` nodes of the TF-style "same" padding in the backbone, and the map's upsampling plus Gaussian
smoothing at full resolution. The rewrites:

- ``knn_head``: one Gemm + TopK instead of the full distance matrix (see :mod:`edgead.convert.knn`).
- ``separable_map``: the map's ``Resize -> (Pad -> Conv)* -> Squeeze`` chain is linear and separable per axis, so
  it equals ``A_y @ map @ A_x^T`` with two small matrices found by probing the chain with unit maps.
- ``fold_pads``: a zero ``Pad`` in front of a ``Conv`` moves into the Conv's ``pads`` attribute.

Each rewrite is verified against the source graph on sample images (outputs equal to float rounding) and dropped
when it does not hold. ``bank_keep`` then replaces the bank by a greedy coreset of it, and ``feat_keep`` a Gaussian
(PaDiM) head by its exact marginal on a channel subset, cutting backbone layers no longer needed
(:mod:`edgead.convert.gaussian`); both are lossy, so the accuracy gate decides.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgead.convert.onnx_edit import GraphIndex, attr, fresh_name, remove_dead, run_with
from edgead.contract.graph import INPUT, RAW_MAP, RAW_OUTPUT_NAMES
from edgead.errors import EngineError, lazy_import

EXACT_RTOL = 1e-3
"""Largest output difference of an exact rewrite, relative to the output's largest magnitude."""
MAP_OPS = ("Resize", "Pad", "Conv", "Squeeze", "Gather")


@dataclass
class OptimizeResult:
    """What :func:`optimize_graph` did (recorded in ``conversion:``).

    Attributes:
        path: the written graph.
        applied: rewrites kept, in order.
        skipped: rewrite -> why it was not applied.
        max_rel_error: largest output difference of the exact rewrites on the sample images.
        bank: ``{"rows_before", "rows_after"}`` when the bank was reduced.
        features: ``{"channels_before", "channels_after", "layers_cut"}`` when a feature subset was taken.
    """

    path: Path
    applied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    max_rel_error: float = 0.0
    bank: dict | None = None
    features: dict | None = None

    def details(self) -> dict:
        return {"applied": list(self.applied), "skipped": dict(self.skipped),
                "max_rel_error": float(self.max_rel_error), "bank": self.bank, "features": self.features}


def _outputs(model, images: np.ndarray) -> list[np.ndarray]:
    ort = lazy_import("onnxruntime", feature="graph optimisation")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(list(RAW_OUTPUT_NAMES), {INPUT: images})


def _rel_error(ref: list[np.ndarray], new: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-12)) for a, b in zip(ref, new))


# -- separable map --------------------------------------------------------------------------------------------
def _map_chain(g: GraphIndex):
    """(chain nodes from the first Resize to raw_map, the Resize's input) or None."""
    chain, t = [], RAW_MAP
    while True:
        node = g.producer.get(t)
        if node is None or node.op_type not in MAP_OPS:
            break
        if node.op_type == "Conv" and (len(node.input) > 2 and node.input[2] or int(attr(node, "group", 1)) != 1):
            return None
        chain.insert(0, node)
        t = node.input[0]
        if node.op_type == "Resize":
            break
        if g.only_consumer(t) is not node:
            return None
    if not chain or chain[0].op_type != "Resize" or not any(n.op_type == "Conv" for n in chain):
        return None
    return chain, chain[0].input[0]


def separable_map(model, image: np.ndarray) -> str | None:
    """Replace the map's upsampling + smoothing by two MatMuls (in place); returns why not, or None when done."""
    from onnx import TensorProto, helper, numpy_helper

    g = GraphIndex(model)
    found = _map_chain(g)
    if found is None:
        return "no Resize -> Pad/Conv -> raw_map chain"
    chain, x = found
    chain_outs = {t for n in chain for t in n.output}
    aux = sorted({t for n in chain for t in n.input[1:] if t and t not in chain_outs and g.const(t) is None})
    values = run_with(model, {"image": image[:1]}, [x, *aux])
    shape = values[x].shape
    if len(shape) != 4 or shape[:2] != (1, 1):
        return f"map before upsampling is {shape}, expected [N, 1, h, w]"
    gh, gw = shape[2:]
    probe = helper.make_graph(
        [n for n in chain], "probe", [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 1, gh, gw])],
        [helper.make_tensor_value_info(RAW_MAP, TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(values[t], t) for t in aux] +
        [numpy_helper.from_array(g.const(t), t) for n in chain for t in n.input[1:] if t and g.const(t) is not None])
    pm = helper.make_model(probe, opset_imports=model.opset_import)
    pm.ir_version = model.ir_version
    ort = lazy_import("onnxruntime", feature="graph optimisation")
    sess = ort.InferenceSession(pm.SerializeToString(), providers=["CPUExecutionProvider"])

    def run(m: np.ndarray) -> np.ndarray:
        out = sess.run(None, {x: m.reshape(1, 1, gh, gw).astype(np.float32)})[0]
        return out.reshape(out.shape[-2:])

    unit = lambda i, j: np.eye(1, gh * gw, i * gw + j).reshape(gh, gw)  # noqa: E731
    o00 = run(unit(0, 0)).astype(np.float64)
    r, c = np.unravel_index(np.argmax(np.abs(o00)), o00.shape)
    if o00[r, c] == 0:
        return "the map chain maps a unit map to zero"
    ay = np.stack([run(unit(i, 0))[:, c] for i in range(gh)], 1).astype(np.float64)  # [H, gh]
    ax = np.stack([run(unit(0, j))[r, :] for j in range(gw)], 1).astype(np.float64) / o00[r, c]  # [W, gw]
    test = np.random.default_rng(0).random((gh, gw)).astype(np.float32)
    want = run(test).astype(np.float64)
    if np.max(np.abs(ay @ test @ ax.T - want)) > EXACT_RTOL * max(np.max(np.abs(want)), 1e-12):
        return "the map chain is not separable (probe mismatch)"
    ay_n, axt_n, shp = (fresh_name(model, f"edgead_map_{s}") for s in ("rows", "cols_t", "shape"))
    model.graph.initializer.extend([numpy_helper.from_array(ay.astype(np.float32), ay_n),
                                    numpy_helper.from_array(np.ascontiguousarray(ax.T, np.float32), axt_n),
                                    numpy_helper.from_array(np.array([-1, ay.shape[0], ax.shape[0]], np.int64), shp)])
    t1, t2 = fresh_name(model, "edgead_map_r"), fresh_name(model, "edgead_map_rc")
    new = [helper.make_node("MatMul", [ay_n, x], [t1], name=fresh_name(model, "/edgead_map/MatMul")),
           helper.make_node("MatMul", [t1, axt_n], [t2], name=fresh_name(model, "/edgead_map/MatMul_1")),
           helper.make_node("Reshape", [t2, shp], [RAW_MAP], name=fresh_name(model, "/edgead_map/Reshape"))]
    pos = [i for i, n in enumerate(model.graph.node) if n is chain[-1] or n.output == chain[-1].output][0]
    model.graph.node.remove(model.graph.node[pos])
    for k, node in enumerate(new):
        model.graph.node.insert(pos + k, node)
    remove_dead(model)
    return None


# -- Pad folding ----------------------------------------------------------------------------------------------
def fold_pads(model, image: np.ndarray) -> int:
    """Move zero constant ``Pad`` nodes into the ``pads`` of the Conv they feed (in place); returns how many."""
    from onnx import helper

    g = GraphIndex(model)
    pairs = []
    for node in model.graph.node:
        conv = g.only_consumer(node.output[0]) if node.op_type == "Pad" else None
        if conv is None or conv.op_type != "Conv" or attr(node, "mode", "constant") != "constant":
            continue
        if attr(conv, "auto_pad", "NOTSET") != "NOTSET" or (len(node.input) > 3 and node.input[3]):
            continue
        if len(node.input) > 2 and node.input[2] and (g.const(node.input[2]) is None or
                                                     np.any(g.const(node.input[2]) != 0)):
            continue
        pairs.append((node, conv))
    if not pairs:
        return 0
    unknown = [p.input[1] for p, _ in pairs if g.const(p.input[1]) is None]
    values = run_with(model, {"image": image[:1]}, unknown) if unknown else {}
    done = 0
    for pad, conv in pairs:
        pads = g.const(pad.input[1])
        pads = values[pad.input[1]] if pads is None else pads
        pads = np.asarray(pads, np.int64).reshape(-1)
        if pads.size != 8 or np.any(pads < 0) or np.any(pads[[0, 1, 4, 5]] != 0):
            continue
        old = np.asarray(attr(conv, "pads", [0, 0, 0, 0]), np.int64)
        new = old + pads[[2, 3, 6, 7]]
        for a in [a for a in conv.attribute if a.name == "pads"]:
            conv.attribute.remove(a)
        conv.attribute.append(helper.make_attribute("pads", [int(v) for v in new]))
        conv.input[0] = pad.input[0]
        done += 1
    remove_dead(model)
    return done


# -- driver ---------------------------------------------------------------------------------------------------
def _knn(model, bank_keep: float | None, seed: int) -> tuple[str | None, dict | None]:
    from edgead.convert.bank import reduce_bank
    from edgead.convert.knn import find_knn_head, rewrite_knn_head

    head = find_knn_head(model)
    if head is None:
        return "no kNN head (ReduceMin over a bank MatMul)", None
    if bank_keep is None or bank_keep >= 1.0:
        rewrite_knn_head(model, head)
        return None, None
    from onnx import numpy_helper

    k = None
    if head.neighbors_init is not None:
        k = next(numpy_helper.to_array(i).shape[1] for i in model.graph.initializer if i.name == head.neighbors_init)
    red = reduce_bank(head.bank, bank_keep, num_neighbors=k, seed=seed)
    rewrite_knn_head(model, head, bank=red.bank, neighbors=red.neighbors)
    return None, {"keep": float(bank_keep), "rows_before": int(len(head.bank)), "rows_after": int(len(red.bank)),
                  "method": "greedy k-center coreset of the bank"}


def optimize_graph(onnx_path: str | os.PathLike, out_path: str | os.PathLike, images: np.ndarray, *,
                   bank_keep: float | None = None, feat_keep: float | None = None, seed: int = 0
                   ) -> OptimizeResult:
    """Apply the exact CPU rewrites (each verified on ``images``), then optionally reduce the kNN bank.

    Args:
        onnx_path: the contract graph (FP32).
        out_path: where to write the optimised graph.
        images: ``[N, H, W, C]`` uint8 sample images (a few good ones) for probing and verification.
        bank_keep: fraction of the kNN bank to keep (None: keep it whole, the result is exact).
        feat_keep: fraction of a Gaussian head's channels to keep (None: all, the result is exact).
        seed: seed of the bank selection.

    Returns:
        The :class:`OptimizeResult`.

    Raises:
        EngineError: when the optimised graph breaks the graph contract, or a reduction has nothing to reduce.
    """
    onnx = lazy_import("onnx", feature="graph optimisation")
    from edgead.convert.graph import check_contract

    model = onnx.load(str(onnx_path))
    images = np.ascontiguousarray(images[:4])
    ref = _outputs(model, images)
    res = OptimizeResult(path=Path(out_path))
    steps = (("separable_map", lambda m: separable_map(m, images)),
             ("fold_pads", lambda m: None if fold_pads(m, images) else "no Pad in front of a Conv"),
             ("knn_head", lambda m: _knn(m, None, seed)[0]))
    for name, step in steps:
        trial = onnx.ModelProto()
        trial.CopyFrom(model)
        try:
            why = step(trial)
        except Exception as exc:  # a rewrite that cannot apply must not fail the conversion: it is reported
            why = f"{type(exc).__name__}: {exc}"
        if why is None:
            err = _rel_error(ref, _outputs(trial, images))
            if err <= EXACT_RTOL:
                model, res.max_rel_error = trial, max(res.max_rel_error, err)
                res.applied.append(name)
                continue
            why = f"outputs changed by {err:.2e} (relative), more than {EXACT_RTOL}"
        res.skipped[name] = why
    if bank_keep is not None and bank_keep < 1.0:
        if "knn_head" not in res.applied:
            raise EngineError(f"cannot reduce the bank of {onnx_path}: {res.skipped.get('knn_head')}",
                              hint="bank reduction applies to kNN detectors (PatchCore) only")
        base = onnx.load(str(onnx_path))
        for name, step in steps[:2]:
            if name in res.applied:
                step(base)
        _, res.bank = _knn(base, bank_keep, seed)
        model = base
        res.applied.append(f"bank_reduction({bank_keep:g})")
    if feat_keep is not None and feat_keep < 1.0:
        from edgead.convert.gaussian import subset_features

        res.features = subset_features(model, feat_keep, images)
        res.applied.append(f"feature_subset({feat_keep:g})")
    check_contract(model, where=f"optimised graph of {onnx_path}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return res
