"""EfficientAD (Batzner et al., "EfficientAD: Accurate Visual Anomaly Detection at Millisecond-Level Latencies",
WACV 2024), size S (default) or M, as a plain module.

Inference (the exported graph): teacher PDN (output normalised by its training-set channel mean/std), student PDN
(2C channels) and autoencoder. Local map = mean over channels of (teacher - student[:C])^2, global map = mean of
(autoencoder - student[C:])^2; each is upsampled to the input size and quantile-normalised,
``0.1 * (map - q_a) / (q_b - q_a)`` with the 0.9 and 0.995 quantiles of held-out training maps (buffers set by
``train.fit``); the map is their mean and the image score its maximum.

Departures from the paper (no ImageNet here; docs/models/efficientad.md): the teacher is distilled from the
pretrained EfficientNet-Lite0's ``block2`` + ``block3`` features (40 + 80 = 120 channels, so C = 120) instead of
WideResNet-101 features, on the augmented training images (``teacher_data: train``) or on the generic image set
(``generic``, the stand-in for ImageNet, ``teachers.py``); the penalty term's ImageNet images are generic images
(``penalty: generic``) or the term is dropped (``none``).
"""
from __future__ import annotations

from enum import Enum
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from edgead.errors import ConfigError
from edgead.models.backbone import BACKBONES
from edgead.models.common import check_input_hw
from edgead.models.training import InputNorm, TrainedStateMixin
from edgead.models.efficientad.networks import PDN_BUILDERS, Autoencoder, PdnSize

Q_A, Q_B = 0.9, 0.995  # the paper's quantiles of the validation maps
TEACHER_LAYERS = ("block2", "block3")  # EfficientNet-Lite0 layers the teacher is distilled from


class TeacherData(str, Enum):
    """What the teacher is distilled on: the category's training images, or the generic image set."""

    TRAIN = "train"
    GENERIC = "generic"


class Penalty(str, Enum):
    """The paper's penalty term (the student's output on ImageNet images pushed to 0): off, or on generic images."""

    NONE = "none"
    GENERIC = "generic"


def quantile_normalise(amap: torch.Tensor, q_a: torch.Tensor, q_b: torch.Tensor) -> torch.Tensor:
    """``0.1 * (amap - q_a) / (q_b - q_a)``: ``q_a`` maps to 0 and ``q_b`` to 0.1, as in the paper."""
    return 0.1 * (amap - q_a) / torch.clamp(q_b - q_a, min=1e-12)


def map_quantiles(maps: torch.Tensor) -> tuple[float, float]:
    """The :data:`Q_A` and :data:`Q_B` quantiles of all the values of ``maps`` (any shape)."""
    flat = maps.detach().flatten().float()
    if flat.numel() > 4_000_000:  # torch.quantile's input limit is 16M; a seeded subsample keeps it exact enough
        flat = flat[torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))[:4_000_000].to(flat.device)]
    q = torch.quantile(flat, torch.tensor([Q_A, Q_B], device=flat.device))
    return float(q[0]), float(q[1])


def _choice(enum: type, value, name: str):
    try:
        return enum(getattr(value, "value", value))
    except ValueError as exc:
        raise ConfigError(f"EfficientAD {name}={value!r} is unknown", hint=f"use one of {[e.value for e in enum]}") from exc


class EfficientAd(TrainedStateMixin, nn.Module):
    """EfficientAD-S. ``forward(x) -> (raw_score [N], raw_map [N, H, W])`` on normalised ``[N, 3, H, W]`` input.

    Args:
        input_hw: model resolution ``(height, width)``, at least 32 px per side.
        width: factor on the PDN hidden channels (S: 128, 256, 256; M: 256, 512, 512, 512; 1.0 = the paper's).
        ae_width: autoencoder hidden channels (paper: 64).
        teacher_source: backbone the teacher is distilled from (``train.fit``).
        teacher_steps: distillation steps (``train.fit``; paper: 60 000 on ImageNet).
        steps: student/autoencoder steps (``train.fit``; paper: 70 000).
        lr: Adam learning rate of both phases (paper: 1e-4).
        holdout_fraction: share of the training images kept for the map quantiles (``train.fit``).
        seed: seed of the weights, augmentations and hold-out split.
        pretrained: accepted for the registry's interface; the teacher source is always the pretrained backbone.
        teacher_source_sha256: provenance of the distillation source (set by ``train.fit``).
        size: PDN size, ``"S"`` (default) or ``"M"`` (the paper's PDN-M: wider, a 1x1 and a 3x3 conv more).
        teacher_data: ``"train"`` (distil on the training images) or ``"generic"`` (the generic teacher).
        penalty: ``"none"`` or ``"generic"`` (the paper's penalty term on generic images).
        batch_size: images per training step (paper: 1).
        teacher_sha256: provenance of a generic teacher's weights file (set by ``train.fit``).

    Raises:
        ConfigError: if a parameter is out of range.

    Example:
        >>> model = EfficientAd((128, 160))                 # doctest: +SKIP
        >>> fit(model, batches); score, amap = model(x)     # doctest: +SKIP
    """

    def __init__(
        self,
        input_hw: Sequence[int],
        width: float = 0.25,
        ae_width: int = 32,
        teacher_source: str = "efficientnet_lite0",
        teacher_steps: int = 200,
        steps: int = 200,
        lr: float = 1e-3,
        holdout_fraction: float = 0.2,
        seed: int = 0,
        pretrained: bool = True,
        teacher_source_sha256: str | None = None,
        size: str = "S",
        teacher_data: str = "train",
        penalty: str = "none",
        batch_size: int = 8,
        teacher_sha256: str | None = None,
    ):
        super().__init__()
        self.input_hw = check_input_hw(input_hw, 32)
        if teacher_source not in BACKBONES:
            raise ConfigError(f"unknown teacher_source {teacher_source!r}", hint=f"use one of {sorted(BACKBONES)}")
        if float(width) <= 0 or int(ae_width) < 1 or int(teacher_steps) < 1 or int(steps) < 1 or float(lr) <= 0:
            raise ConfigError(f"EfficientAD needs width > 0, ae_width >= 1, steps >= 1, lr > 0; got width={width}, "
                              f"ae_width={ae_width}, teacher_steps={teacher_steps}, steps={steps}, lr={lr}")
        if not 0.0 < float(holdout_fraction) < 1.0:
            raise ConfigError(f"EfficientAD holdout_fraction={holdout_fraction} must be in (0, 1)")
        try:
            pdn_size = PdnSize(str(size).upper())
        except ValueError as exc:
            raise ConfigError(f"EfficientAD size={size!r} is unknown", hint="use 'S' or 'M'") from exc
        self.teacher_data = _choice(TeacherData, teacher_data, "teacher_data")
        self.penalty = _choice(Penalty, penalty, "penalty")
        if int(batch_size) < 1:
            raise ConfigError(f"EfficientAD batch_size={batch_size} must be >= 1")
        source = BACKBONES[teacher_source]
        self.channels = sum(source.channels[name] for name in TEACHER_LAYERS)
        self.backbone = InputNorm(name=f"pdn_s (teacher distilled from {teacher_source})", mean=source.mean,
                                  std=source.std, weights_sha256=None)
        torch.manual_seed(int(seed))
        self.teacher = PDN_BUILDERS[pdn_size](self.channels, float(width))
        self.student = PDN_BUILDERS[pdn_size](2 * self.channels, float(width))
        self.autoencoder = Autoencoder(self.input_hw, self.channels, int(ae_width))
        self.teacher.requires_grad_(False)
        self.register_buffer("teacher_mean", torch.zeros(1, self.channels, 1, 1))
        self.register_buffer("teacher_std", torch.ones(1, self.channels, 1, 1))
        self.register_buffer("quantiles", torch.tensor([0.0, 1.0, 0.0, 1.0]))  # q_a, q_b (local); q_a, q_b (global)
        self.teacher_source = teacher_source
        self.teacher_steps, self.steps, self.lr = int(teacher_steps), int(steps), float(lr)
        self.holdout_fraction, self.seed = float(holdout_fraction), int(seed)
        self.size, self.width, self.batch_size = pdn_size.value, float(width), int(batch_size)
        self._params = {
            "input_hw": list(self.input_hw), "width": float(width), "ae_width": int(ae_width),
            "teacher_source": teacher_source, "teacher_steps": self.teacher_steps, "steps": self.steps,
            "lr": self.lr, "holdout_fraction": self.holdout_fraction, "seed": self.seed,
            "pretrained": bool(pretrained), "teacher_source_sha256": teacher_source_sha256,
            "size": pdn_size.value, "teacher_data": self.teacher_data.value, "penalty": self.penalty.value,
            "batch_size": self.batch_size, "teacher_sha256": teacher_sha256,
        }

    # -- the three networks ---------------------------------------------------------------------------------
    def teacher_features(self, x: torch.Tensor) -> torch.Tensor:
        """Channel-normalised teacher output ``[N, C, gh, gw]``."""
        return (self.teacher(x) - self.teacher_mean) / self.teacher_std

    def raw_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Local (teacher vs student) and global (autoencoder vs student) maps ``[N, 1, H, W]``, not normalised."""
        c = self.channels
        teacher = self.teacher_features(x)
        student = self.student(x)
        ae = self.autoencoder(x)
        local = ((teacher - student[:, :c]) ** 2).mean(dim=1, keepdim=True)
        glob = ((ae - student[:, c:]) ** 2).mean(dim=1, keepdim=True)
        size = self.input_hw
        return (F.interpolate(local, size=size, mode="bilinear", align_corners=False),
                F.interpolate(glob, size=size, mode="bilinear", align_corners=False))

    def set_teacher_source_sha256(self, sha256: str | None) -> None:
        """Record the weights hash of the backbone the teacher was distilled from (provenance, in the params)."""
        self._params["teacher_source_sha256"] = sha256

    def set_teacher_sha256(self, sha256: str | None) -> None:
        """Record the sha256 of the generic teacher's weights file (provenance, in the params)."""
        self._params["teacher_sha256"] = sha256

    def set_quantiles(self, local: tuple[float, float], glob: tuple[float, float]) -> None:
        """Install the ``(q_a, q_b)`` of the local and of the global validation maps."""
        self.quantiles = torch.tensor([*local, *glob], dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score a normalised batch.

        Args:
            x: ``[N, 3, H, W]`` float32 at ``input_hw``, normalised with the teacher source's mean/std.

        Returns:
            ``(raw_score [N], raw_map [N, H, W])``: the map's maximum, the mean of the two normalised maps.
        """
        local, glob = self.raw_maps(x)
        q = self.quantiles
        amap = 0.5 * (quantile_normalise(local, q[0], q[1]) + quantile_normalise(glob, q[2], q[3]))
        amap = amap[:, 0]  # not squeeze(1): that exports as an If on the dynamic shape
        return amap.amax(dim=(1, 2)), amap

    # -- serialisation --------------------------------------------------------------------------------------

