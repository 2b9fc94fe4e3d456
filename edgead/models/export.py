"""The model side of the graph contract: :class:`Preprocess` (training and export share it) and the ONNX export.

The exported graph takes uint8 ``[N, H, W, C]`` frames of any size, does the resize and normalisation inside,
and returns the outputs of :mod:`edgead.contract.graph`. The four normalisation constants become named
initializers (:data:`~edgead.contract.graph.NORM_INITIALIZERS`) so that conversion and ``edgead threshold`` can
move a threshold after training (``edgead.convert.onnx_edit.set_normalisation``). Build host only (torch).
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgead.contract.graph import INPUT, NORM_INITIALIZERS, OPSET, OUTPUT_NAMES, norm_key
from edgead.errors import EngineError


class Preprocess(nn.Module):
    """uint8 NHWC (any H, W; C = 1 or 3) -> float NCHW at the model resolution, normalised for the backbone."""

    def __init__(self, input_hw: Sequence[int], mean: Sequence[float], std: Sequence[float], channels: int = 3):
        super().__init__()
        if channels not in (1, 3):
            raise EngineError(f"the graph contract takes 1 (gray) or 3 (RGB) channels, not {channels}")
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.gray = channels == 1
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0)
        x = F.interpolate(x, size=self.input_hw, mode="bilinear", align_corners=False)
        if self.gray:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std


def normalise(raw: torch.Tensor, lo: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """``clip(0.5 * (raw - lo) / (thr - lo), 0, 1)``: 0.5 is the threshold."""
    return torch.clamp(0.5 * (raw - lo) / torch.clamp(thr - lo, min=1e-12), 0.0, 1.0)


class ContractGraph(nn.Module):
    """The model wrapped with pre- and post-processing; the normalisation constants are inputs at export time."""

    def __init__(self, model: nn.Module, preprocess: Preprocess):
        super().__init__()
        self.model = model
        self.preprocess = preprocess

    def forward(self, image, image_lo, image_thr, pixel_lo, pixel_thr):
        raw_score, raw_map = self.model(self.preprocess(image))
        return (normalise(raw_score, image_lo, image_thr), normalise(raw_map, pixel_lo, pixel_thr),
                raw_score, raw_map)


def export_onnx(model: nn.Module, path: str | os.PathLike, *, input_hw: Sequence[int], channels: int,
                mean: Sequence[float], std: Sequence[float], norm: dict[str, float],
                metadata: dict[str, str] | None = None) -> Path:
    """Export ``model`` (float NCHW normalised -> (raw_score, raw_map)) as a graph-contract ONNX file.

    Args:
        model: an eval-mode detector ``nn.Module``.
        path: output ``.onnx`` path.
        input_hw: the model resolution (height, width).
        channels: 1 (gray) or 3 (RGB) channels of the uint8 input.
        mean, std: the backbone's normalisation of a [0, 1] RGB image.
        norm: ``{"image_lo", "image_thr", "pixel_lo", "pixel_thr"}`` in raw units.
        metadata: extra ONNX ``metadata_props`` (strings).

    Returns:
        The written path.

    Raises:
        EngineError: if the export fails.
    """
    import onnx

    graph = ContractGraph(model.eval(), Preprocess(input_hw, mean, std, channels)).eval()
    h, w = int(input_hw[0]), int(input_hw[1])
    dummy = torch.zeros((1, h, w, channels), dtype=torch.uint8)
    consts = tuple(torch.tensor(float(norm[norm_key(k)]), dtype=torch.float32) for k in NORM_INITIALIZERS)
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer's notes on static shape checks and Slice folding are expected for these graphs; parity
            # with ONNX Runtime is checked after export instead.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            torch.onnx.export(
                graph, (dummy, *consts), buf, opset_version=OPSET, dynamo=False,
                input_names=[INPUT, *NORM_INITIALIZERS], output_names=list(OUTPUT_NAMES),
                dynamic_axes={INPUT: {0: "N", 1: "H", 2: "W"}, **{name: {0: "N"} for name in OUTPUT_NAMES}},
                do_constant_folding=True)
    except Exception as exc:  # torch.onnx raises many types
        raise EngineError(f"ONNX export of {type(model).__name__} failed: {exc}") from exc
    proto = onnx.load_from_string(buf.getvalue())
    _inputs_to_initializers(proto, {k: float(c) for k, c in zip(NORM_INITIALIZERS, consts)})
    meta = {"edgead.input_height": str(h), "edgead.input_width": str(w), "edgead.channels": str(channels)}
    meta.update(metadata or {})
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    return out


def _inputs_to_initializers(proto, values: dict[str, float]) -> None:
    from onnx import numpy_helper

    keep = [i for i in proto.graph.input if i.name not in values]
    del proto.graph.input[:]
    proto.graph.input.extend(keep)
    for name, value in values.items():
        proto.graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))
