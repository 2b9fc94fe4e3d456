"""What a serialized ONNX graph holds (its ops, Cast targets and initializer types), read from the protobuf wire
format without the ``onnx`` package.

``edgead build-engine`` runs on the station, whose install has no ``onnx`` (it is a build-host package, extras
``convert``/``train``), but it must know whether a graph carries its own precision. The few fields needed are read
here (field numbers from ``onnx/onnx.proto``); large initializer payloads are skipped by their length, never
decoded.

Example:
    >>> summary = read_graph_summary("bundle/model.onnx")          # doctest: +SKIP
    >>> summary.op_types["QuantizeLinear"], summary.explicit_precision   # doctest: +SKIP
    (57, True)
"""
from __future__ import annotations

import mmap
import os
from collections import Counter
from dataclasses import dataclass, field

from edgead.errors import EngineError

FLOAT16 = 10  # TensorProto.DataType.FLOAT16
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

# field numbers (onnx/onnx.proto)
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_FUNCTION_NODE = 7
_NODE_OP_TYPE, _NODE_ATTRIBUTE = 4, 5
_ATTR_NAME, _ATTR_I, _ATTR_G, _ATTR_GRAPHS = 1, 3, 6, 11
_TENSOR_DATA_TYPE = 2
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


@dataclass
class GraphSummary:
    """Counts over a model's main graph, its subgraphs and its functions.

    Attributes:
        op_types: nodes per op type.
        cast_targets: data types that ``Cast`` nodes convert to (``TensorProto.DataType`` values).
        initializer_types: data types of the initializers.
    """

    op_types: Counter = field(default_factory=Counter)
    cast_targets: set = field(default_factory=set)
    initializer_types: set = field(default_factory=set)

    @property
    def explicit_precision(self) -> bool:
        """True when the graph carries its own precision (Q/DQ nodes, FP16 initializers or casts to FP16): TensorRT
        builds it strongly typed."""
        return (any(self.op_types[op] for op in QDQ_OPS) or FLOAT16 in self.initializer_types
                or FLOAT16 in self.cast_targets)


class _Corrupt(Exception):
    pass


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Corrupt(f"varint at byte {pos}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """(field number, wire type, value) of one message: an int for varints, a (start, end) span otherwise."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
        elif wire == _BYTES:
            n, pos = _varint(buf, pos, end)
            value, pos = (pos, pos + n), pos + n
        elif wire in (_FIXED64, _FIXED32):
            n = 8 if wire == _FIXED64 else 4
            value, pos = (pos, pos + n), pos + n
        else:
            raise _Corrupt(f"wire type {wire} at byte {pos}")
        if pos > end:
            raise _Corrupt(f"field {number} runs past its message")
        yield number, wire, value


def _node(buf, span, out: GraphSummary) -> None:
    op, attrs = None, []
    for number, wire, value in _fields(buf, *span):
        if number == _NODE_OP_TYPE and wire == _BYTES:
            op = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
        elif number == _NODE_ATTRIBUTE and wire == _BYTES:
            attrs.append(value)
    out.op_types[op] += 1
    for span_a in attrs:
        name, i = None, None
        for number, wire, value in _fields(buf, *span_a):
            if number == _ATTR_NAME and wire == _BYTES:
                name = bytes(buf[value[0]:value[1]])
            elif number == _ATTR_I and wire == _VARINT:
                i = value
            elif number in (_ATTR_G, _ATTR_GRAPHS) and wire == _BYTES:
                _graph(buf, value, out)
        if op == "Cast" and name == b"to" and i is not None:
            out.cast_targets.add(i)


def _graph(buf, span, out: GraphSummary) -> None:
    for number, wire, value in _fields(buf, *span):
        if number == _GRAPH_NODE and wire == _BYTES:
            _node(buf, value, out)
        elif number == _GRAPH_INITIALIZER and wire == _BYTES:
            for n, w, v in _fields(buf, *value):
                if n == _TENSOR_DATA_TYPE and w == _VARINT:
                    out.initializer_types.add(v)


def summarize(data) -> GraphSummary:
    """Summarize a serialized ``ModelProto`` (bytes or a buffer).

    Raises:
        EngineError: if the bytes are not a well-formed protobuf, or hold no graph.
    """
    out = GraphSummary()
    found = False
    try:
        with memoryview(data) as buf:  # released before a memory map is closed
            for number, wire, value in _fields(buf, 0, len(buf)):
                if number == _MODEL_GRAPH and wire == _BYTES:
                    _graph(buf, value, out)
                    found = True
                elif number == _MODEL_FUNCTIONS and wire == _BYTES:
                    for n, w, v in _fields(buf, *value):
                        if n == _FUNCTION_NODE and w == _BYTES:
                            _node(buf, v, out)
    except _Corrupt as exc:
        raise EngineError(f"not a well-formed ONNX model ({exc})", hint="re-export or re-convert the bundle") from None
    if not found:
        raise EngineError("not an ONNX model: no graph in it", hint="re-export or re-convert the bundle")
    return out


def read_graph_summary(path: str | os.PathLike) -> GraphSummary:
    """:func:`summarize` of an ``.onnx`` file (memory-mapped: its initializers are not read).

    Raises:
        EngineError: unreadable, empty or malformed file (the message names it).
    """
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            try:
                return summarize(mm)
            except EngineError as exc:
                raise EngineError(f"{path}: {exc.message}", hint=exc.hint) from None
    except (OSError, ValueError) as exc:  # ValueError: mmap of an empty file
        raise EngineError(f"{path}: cannot read the ONNX model ({exc})", hint="re-copy the bundle") from exc


def has_explicit_precision(path: str | os.PathLike) -> bool:
    """True when the graph in ``path`` carries its own precision (see :attr:`GraphSummary.explicit_precision`)."""
    return read_graph_summary(path).explicit_precision
