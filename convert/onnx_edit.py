"""Small helpers to read and rewrite ONNX graphs in place: who produces / consumes a tensor, constant values,
intermediate values from one ONNX Runtime run, dead-node removal. Used by the conversion-time graph rewrites."""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgead.contract.graph import NORM_INITIALIZERS, norm_key
from edgead.contract.thresholds import Calibration
from edgead.errors import EngineError, lazy_import


class GraphIndex:
    """Producer and consumers of every tensor, and the constant (initializer / Constant node) values.

    Args:
        model: an ``onnx.ModelProto`` (read; rebuild the index after editing the graph).
    """

    def __init__(self, model):
        numpy_helper = lazy_import("onnx.numpy_helper", feature="graph rewrites")
        self.model = model
        self.producer = {}
        self.consumers = defaultdict(list)
        for node in model.graph.node:
            for t in node.output:
                self.producer[t] = node
            for t in node.input:
                if t:
                    self.consumers[t].append(node)
        self.outputs = {o.name for o in model.graph.output}
        self._inits = {i.name: i for i in model.graph.initializer}
        self._np = numpy_helper

    def const(self, name: str) -> np.ndarray | None:
        """The value of ``name`` when it is an initializer or a ``Constant`` node's output, else None."""
        if name in self._inits:
            return self._np.to_array(self._inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    return self._np.to_array(a.t)
        return None

    def only_consumer(self, name: str):
        """The single node reading ``name`` (None when several or none read it, or it is a graph output)."""
        cons = self.consumers.get(name, [])
        return cons[0] if len(cons) == 1 and name not in self.outputs else None


def attr(node, name: str, default=None):
    """An attribute's value (int, float, string, ints) or ``default``."""
    helper = lazy_import("onnx.helper", feature="graph rewrites")
    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def remove_dead(model) -> int:
    """Drop nodes whose outputs nobody reads and initializers nobody uses; returns the number of nodes dropped."""
    graph = model.graph
    dropped = 0
    while True:
        used = {o.name for o in graph.output} | {t for n in graph.node for t in n.input}
        dead = [n for n in graph.node if not any(t in used for t in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
        dropped += len(dead)
    used = {t for n in graph.node for t in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    return dropped


def run_with(model, feeds: dict, names: list[str]) -> dict[str, np.ndarray]:
    """Values of the tensors ``names`` (intermediate ones included) for ``feeds``, by one ONNX Runtime run
    without graph optimisation.

    Args:
        model: an ``onnx.ModelProto`` (not modified).
        feeds: graph input name -> array.
        names: tensors to return.

    Returns:
        name -> array.
    """
    with Probe(model, names, optimize=False) as probe:
        return probe.run(feeds)


class Probe:
    """An ONNX Runtime session that returns intermediate tensors, opened once for many runs.

    Args:
        model: an ``onnx.ModelProto`` (not modified).
        names: tensors to return.
        optimize: run ONNX Runtime's graph optimisations (the numerics the station's backend has); off: the graph
            as written.
        only: run only the nodes the tensors ``names`` need (the rest of the graph is cut off; ONNX Runtime would
            otherwise run all of it, e.g. a whole kNN head to read the features in front of it).

    Example:
        >>> with Probe(model, ["feat"]) as probe:            # doctest: +SKIP
        ...     probe(images[:1])["feat"]
    """

    def __init__(self, model, names: list[str], *, optimize: bool = True, only: bool = False):
        onnx = lazy_import("onnx", feature="graph rewrites")
        ort = lazy_import("onnxruntime", feature="graph rewrites")
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        if only:
            del probe.graph.output[:]
        have = {o.name for o in probe.graph.output}
        for name in names:
            if name not in have:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
        if only:
            remove_dead(probe)
        opts = ort.SessionOptions()
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 3
        self.names = list(names)
        self._input = probe.graph.input[0].name
        self._sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def run(self, feeds: dict) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self._sess.run(self.names, feeds)))

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The tensors for a batch fed to the graph's first input."""
        return self.run({self._input: images})

    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, *exc) -> None:
        self._sess = None


def fresh_name(model, base: str) -> str:
    """A tensor / node name not used in ``model`` yet, starting with ``base``."""
    taken = {t for n in model.graph.node for t in list(n.output) + [n.name]} | {i.name for i in model.graph.initializer}
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def set_normalisation(onnx_path: str | os.PathLike, calibration: Calibration, out_path: str | os.PathLike) -> Path:
    """Rewrite the four normalisation initializers of a contract graph (threshold change without retraining).

    Args:
        onnx_path: the contract graph.
        calibration: the new thresholds and normalisation (:meth:`Calibration.norm_constants`).
        out_path: where to write the graph (may be ``onnx_path``).

    Returns:
        ``out_path``.

    Raises:
        EngineError: if the graph lacks them (not an edgead graph, or an old export).
    """
    onnx = lazy_import("onnx", feature="threshold changes")
    numpy_helper = lazy_import("onnx.numpy_helper", feature="threshold changes")
    proto = onnx.load(str(onnx_path))
    found = {i.name: i for i in proto.graph.initializer if i.name in NORM_INITIALIZERS}
    if set(found) != set(NORM_INITIALIZERS):
        missing = sorted(set(NORM_INITIALIZERS) - set(found))
        raise EngineError(f"{onnx_path}: lacks normalisation initializers {missing}")
    values = calibration.norm_constants()
    for name in NORM_INITIALIZERS:
        found[name].CopyFrom(numpy_helper.from_array(np.array(float(values[norm_key(name)]), np.float32), name))
    onnx.save(proto, str(out_path))
    return Path(out_path)
