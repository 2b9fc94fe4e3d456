"""Each model exports to ONNX (opset 17, TorchScript exporter) as one graph with a dynamic batch, and ONNX Runtime
matches torch within ``RTOL`` of the output's scale."""
from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")
onnx = pytest.importorskip("onnx", reason="needs onnx (extra [convert])")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime")

from edgead.models.registry import build, fit  # noqa: E402

INPUT_HW = (96, 128)
RTOL = 1e-4  # max |ort - torch| <= RTOL * max |torch| (+ a tiny absolute floor); measured ~1e-6 relative


def _export(model, example):
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (example,),
        buffer,
        opset_version=17,
        dynamo=False,
        input_names=["x"],
        output_names=["raw_score", "raw_map"],
        dynamic_axes={"x": {0: "n"}, "raw_score": {0: "n"}, "raw_map": {0: "n"}},
    )
    return buffer.getvalue()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name, overrides", [("patchcore", {"coreset_ratio": 0.25}), ("padim", {"n_features": 48})])
def test_onnx_graph_matches_torch(name, overrides, synthetic_set):
    model = build(name, INPUT_HW, **overrides)
    fit(name, model, synthetic_set["train"], progress=False)
    blob = _export(model, synthetic_set["goods"][:2])
    graph = onnx.load_from_string(blob)
    onnx.checker.check_model(graph)
    assert not any(node.op_type in ("Loop", "If", "Scan") for node in graph.graph.node)
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    x = torch.cat([synthetic_set["goods"][:2], synthetic_set["defects"][:3]])  # batch 5 != export batch 2
    got_score, got_map = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        want_score, want_map = (t.numpy() for t in model(x))
    assert got_score.shape == (5,) and got_map.shape == (5, *INPUT_HW)
    for got, want in ((got_score, want_score), (got_map, want_map)):
        np.testing.assert_allclose(got, want, rtol=0, atol=RTOL * float(np.abs(want).max()) + 1e-6)
