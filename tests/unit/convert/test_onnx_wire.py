"""The wire-format reader that ``build-engine`` uses instead of the onnx package: the same answers as onnx on the
same graphs, and clear errors on files that are not ONNX."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgead.convert.onnx_wire import read_graph_summary, summarize
from edgead.errors import EngineError

# test helpers, on sys.path through tests/conftest.py
import contract_model as cm


def _model(nodes, inits=(), subgraph=None):
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 4])
    if subgraph is not None:
        nodes = [*nodes, helper.make_node("If", ["cond"], ["score"], then_branch=subgraph, else_branch=subgraph)]
    return helper.make_model(helper.make_graph(list(nodes), "g", [x], [y], list(inits)))


def _reference(model) -> bool:
    """What the onnx-based check said before (ops, initializer types, Cast targets of the main graph)."""
    g = model.graph
    return (any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in g.node)
            or any(i.data_type == TensorProto.FLOAT16 for i in g.initializer)
            or any(n.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.FLOAT16 for a in n.attribute)
                   for n in g.node))


QDQ = [helper.make_node("QuantizeLinear", ["image", "s", "z"], ["q"]),
       helper.make_node("DequantizeLinear", ["q", "s", "z"], ["score"])]
QDQ_INITS = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
CASES = {
    "plain": _model([helper.make_node("Relu", ["image"], ["score"])]),
    "qdq": _model(QDQ, QDQ_INITS),
    "cast-fp16": _model([helper.make_node("Cast", ["image"], ["h"], to=TensorProto.FLOAT16),
                         helper.make_node("Cast", ["h"], ["score"], to=TensorProto.FLOAT)]),
    "cast-fp32-only": _model([helper.make_node("Cast", ["image"], ["score"], to=TensorProto.FLOAT)]),
    "fp16-initializer": _model([helper.make_node("Add", ["image", "w"], ["score"])],
                               [numpy_helper.from_array(np.ones(4, np.float16), "w")]),
    "large-fp32-initializer": _model([helper.make_node("Add", ["image", "w"], ["score"])],
                                     [numpy_helper.from_array(np.ones(300_000, np.float32), "w")]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_answer_as_onnx(name, tmp_path):
    model = CASES[name]
    onnx.save(model, str(tmp_path / "m.onnx"))
    assert read_graph_summary(tmp_path / "m.onnx").explicit_precision is _reference(model)


def test_ops_are_counted_and_subgraphs_read():
    inner = helper.make_graph(QDQ, "inner", [], [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])],
                              QDQ_INITS)
    model = _model([helper.make_node("Relu", ["image"], ["r"])], subgraph=inner)
    summary = summarize(model.SerializeToString())
    assert summary.op_types["Relu"] == 1 and summary.op_types["QuantizeLinear"] == 2  # then and else branches
    assert summary.explicit_precision


def test_a_real_contract_graph(tmp_path):
    bundle = cm.build_bundle(tmp_path / "b")
    summary = read_graph_summary(bundle / "model.onnx")
    ops = {n.op_type for n in onnx.load(str(bundle / "model.onnx")).graph.node}
    assert set(summary.op_types) == ops and not summary.explicit_precision


@pytest.mark.parametrize("content, message", [
    (b"", "cannot read the ONNX model"),
    (b"\xff\xff\xff", "not a well-formed ONNX model"),
    (b"\x08\x07", "no graph in it"),  # a valid protobuf (ir_version = 7) without a graph
])
def test_not_onnx_is_an_engine_error_naming_the_file(content, message, tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(EngineError, match=message) as err:
        read_graph_summary(path)
    assert "bad.onnx" in str(err.value)


def test_a_truncated_graph_is_refused(tmp_path):
    data = CASES["qdq"].SerializeToString()
    with pytest.raises(EngineError, match="not a well-formed"):
        summarize(data[:-7])
