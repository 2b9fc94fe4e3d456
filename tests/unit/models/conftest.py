"""Synthetic inspection images for the model tests: a structured part with small random variations, and defects."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the model tests need torch (extra [train])")

INPUT_HW = (96, 128)  # non-square on purpose


def _base_part(hw: tuple[int, int]) -> np.ndarray:
    """A textured, structured part in [0, 1] RGB: stripes, a grid of holes, a colour gradient."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    stripes = 0.5 + 0.25 * np.sin(xx / 3.0) * np.cos(yy / 5.0)
    holes = ((np.mod(xx, 24) - 12) ** 2 + (np.mod(yy, 24) - 12) ** 2 < 16).astype(np.float32)
    img = np.stack([stripes, 0.8 * stripes + 0.1, 0.3 + 0.4 * xx / w], axis=-1)
    return np.clip(img - 0.35 * holes[..., None], 0, 1)


def make_good(rng: np.random.Generator, hw: tuple[int, int] = INPUT_HW) -> np.ndarray:
    """A good part: the base part with brightness jitter and noise, [H, W, 3] float32 in [0, 1]."""
    img = _base_part(hw) * rng.uniform(0.95, 1.05) + rng.normal(0, 0.02, (*hw, 3))
    return np.clip(img, 0, 1).astype(np.float32)


def make_defect(rng: np.random.Generator, hw: tuple[int, int] = INPUT_HW) -> tuple[np.ndarray, np.ndarray]:
    """A defective part (a dark blob or a bright scratch) and its boolean mask [H, W]."""
    img = make_good(rng, hw)
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.integers(20, h - 20), rng.integers(20, w - 20)
    if rng.random() < 0.5:
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(5, 8) ** 2
        img[mask] = [0.05, 0.05, 0.1]
    else:
        angle = rng.uniform(0, np.pi)
        dist = np.abs((yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle))
        along = np.abs((yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle))
        mask = (dist <= 1.5) & (along <= 14)
        img[mask] = [1.0, 0.95, 0.9]
    return img, mask


def to_batch(images: list[np.ndarray], mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)) -> "torch.Tensor":
    """Stack [H, W, 3] images in [0, 1] into a normalised [N, 3, H, W] tensor."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.fixture(scope="session")
def synthetic_set():
    """Training batches, test goods and test defects (with masks), deterministic."""
    rng = np.random.default_rng(0)
    train = [make_good(rng) for _ in range(16)]
    goods = [make_good(rng) for _ in range(8)]
    defects = [make_defect(rng) for _ in range(8)]
    return {
        "train": [to_batch(train[:8]), to_batch(train[8:])],
        "goods": to_batch(goods),
        "defects": to_batch([img for img, _ in defects]),
        "masks": np.stack([mask for _, mask in defects]),
    }


@pytest.fixture(scope="session")
def small_set(synthetic_set):
    """``synthetic_set`` downsized to 64 x 64 (``hw``), for the models that train through their backbone."""
    from torch.nn import functional as F

    hw = (64, 64)

    def small(x):
        return F.interpolate(x, size=hw, mode="bilinear", align_corners=False)

    return {"hw": hw, "train": [small(b) for b in synthetic_set["train"]], "goods": small(synthetic_set["goods"]),
            "defects": small(synthetic_set["defects"])}


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine this trains several times faster than two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def onnx_parity():
    """``check(model, export_x, x, forbidden=(), atol_floor=1e-5)``: export with a dynamic batch (traced on
    ``export_x``), refuse control-flow and ``forbidden`` nodes, and compare ONNX Runtime with torch on ``x``
    (absolute tolerance ``1e-4 * max|torch| + atol_floor``)."""
    import io

    ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime")
    onnx = pytest.importorskip("onnx", reason="needs onnx")

    def check(model, export_x, x, forbidden=(), atol_floor=1e-5):
        buffer = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(model, (export_x,), buffer, opset_version=17, dynamo=False, input_names=["x"],
                              output_names=["raw_score", "raw_map"],
                              dynamic_axes={"x": {0: "n"}, "raw_score": {0: "n"}, "raw_map": {0: "n"}})
            want = [t.numpy() for t in model(x)]
        graph = onnx.load_from_string(buffer.getvalue())
        banned = {"Loop", "If", "Scan", *forbidden}
        assert not any(node.op_type in banned for node in graph.graph.node)
        got = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-4 * float(np.abs(w).max()) + atol_floor)

    return check
