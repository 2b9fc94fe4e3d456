"""Train EfficientAD-S on good images only.

1. **Teacher** (replaces the paper's ImageNet distillation): the PDN is trained for ``model.teacher_steps`` Adam
   steps to regress the pretrained EfficientNet-Lite0's ``block2`` and ``block3`` feature maps, each bilinearly
   resized to the PDN output grid, concatenated (120 channels) and normalised per channel by their mean/std over
   the training images; inputs are the training images with random horizontal/vertical flips and colour jitter.
2. **Teacher channel normalisation**: mean/std of each teacher output channel over the training images (paper).
3. **Student + autoencoder** for ``model.steps`` steps: the hard-feature loss on the student's first C channels
   (mean of the squared differences at or above their 0.999 quantile, paper), the autoencoder's MSE to the teacher
   on colour-jittered images (brightness, contrast, saturation factors in [0.8, 1.2]) and the MSE of the student's
   last C channels to the (detached) autoencoder output. The paper's ImageNet penalty term is dropped.
4. **Quantiles**: the 0.9 and 0.995 quantiles of the local and global maps of the held-out training images
   (``model.holdout_fraction``) become buffers, so the exported graph computes the final map.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch.nn import functional as F

from edgead.errors import DataError
from edgead.models.backbone import build_backbone
from edgead.models.common import check_batch
from edgead.models.efficientad.torch_model import TEACHER_LAYERS, EfficientAd, map_quantiles
from edgead.models.training import input_norm, optimise_step, progress_bar

P_HARD = 0.999  # the paper's hard-feature quantile
BATCH = 8  # images per step
CHUNK = 16  # images per no-grad forward pass


def _jitter(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-image brightness, contrast and saturation factors in [0.8, 1.2] on normalised images."""
    img = (x * std + mean).clamp(0, 1)
    n = img.shape[0]
    factors = (0.8 + 0.4 * torch.rand(3, n, 1, 1, 1, generator=gen)).to(x.device)
    img = img * factors[0]
    gray = img.mean(dim=1, keepdim=True)
    img = (img - gray.mean(dim=(2, 3), keepdim=True)) * factors[1] + gray.mean(dim=(2, 3), keepdim=True)
    gray = img.mean(dim=1, keepdim=True)
    img = gray + (img - gray) * factors[2]
    return (img.clamp(0, 1) - mean) / std


def _flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flips = torch.rand(2, generator=gen)
    if flips[0] < 0.5:
        x = x.flip(3)
    if flips[1] < 0.5:
        x = x.flip(2)
    return x


def _chunks(x: torch.Tensor):
    for start in range(0, x.shape[0], CHUNK):
        yield x[start:start + CHUNK]


def _collect(model: EfficientAd, batches: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = []
    for batch in batches:
        check_batch(batch, model.input_hw)
        rows.append(batch.float())
    count = sum(len(r) for r in rows)
    if count < 2:
        raise DataError(f"EfficientAD fit got {count} training image(s)",
                        hint="give at least 2 good images (one is held out for the map quantiles)")
    images = torch.cat(rows)
    order = torch.from_numpy(np.random.default_rng(model.seed).permutation(count))
    n_hold = min(count - 1, max(1, int(round(model.holdout_fraction * count))))
    return images[order[n_hold:]], images[order[:n_hold]]


def distill_teacher(model: EfficientAd, images: torch.Tensor, steps: int, gen: torch.Generator,
                    progress: bool = True) -> None:
    """Train ``model.teacher`` to regress the normalised backbone features (step 1 of the module docstring)."""
    backbone = build_backbone(model.teacher_source).to(images.device)
    grid = model.teacher(images[:1]).shape[-2:]

    def target(x: torch.Tensor) -> torch.Tensor:
        feats = backbone.features(x, TEACHER_LAYERS)
        return torch.cat([F.interpolate(feats[k], size=grid, mode="bilinear", align_corners=False)
                          for k in TEACHER_LAYERS], dim=1)

    with torch.no_grad():
        feats = torch.cat([target(x) for x in _chunks(images)])
        f_mean = feats.mean(dim=(0, 2, 3), keepdim=True)
        f_std = feats.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    mean, std = input_norm(model.backbone, images.device)
    model.teacher.requires_grad_(True)
    model.teacher.train()
    optimiser = torch.optim.Adam(model.teacher.parameters(), lr=model.lr, weight_decay=1e-5)
    bar = progress_bar(steps, "efficientad teacher", progress)
    for _ in range(steps):
        x = images[torch.randint(0, images.shape[0], (BATCH,), generator=gen)]
        x = _jitter(_flip(x, gen), mean, std, gen)
        with torch.no_grad():
            want = (target(x) - f_mean) / f_std
        optimise_step(optimiser, F.mse_loss(model.teacher(x), want), bar=bar)
    if bar is not None:
        bar.close()
    model.teacher.requires_grad_(False)
    model.teacher.eval()
    model.set_teacher_source_sha256(backbone.weights_sha256)


def hard_feature_loss(teacher: torch.Tensor, student: torch.Tensor, p_hard: float = P_HARD) -> torch.Tensor:
    """Mean of the squared differences at or above their ``p_hard`` quantile (the paper's hard-feature loss)."""
    dist = (teacher - student) ** 2
    flat = dist.detach().flatten()
    pos = p_hard * (flat.numel() - 1)  # linear interpolation, as torch.quantile (which caps the input at 16M)
    lo = int(np.floor(pos))
    below = flat.kthvalue(lo + 1).values
    above = flat.kthvalue(min(lo + 2, flat.numel())).values
    threshold = below + (pos - lo) * (above - below)
    return dist[dist >= threshold].mean()


def fit(model: EfficientAd, batches: Iterable[torch.Tensor], progress: bool = True, *,
        teacher_steps: int | None = None, steps: int | None = None, continue_training: bool = False,
        **_unused) -> None:
    """Distil the teacher, train the student and autoencoder, and set the map quantiles.

    ``continue_training=True`` (continual updates, ``edgead.continual``) keeps the fitted teacher and its channel
    normalisation, so the student and autoencoder continue towards the same targets; only steps 3 and 4 run.

    Args:
        model: the model to train.
        batches: normalised float tensors ``[B, 3, H, W]`` at ``model.input_hw`` (read once, kept in memory).
        progress: show progress bars.
        teacher_steps: distillation steps (default ``model.teacher_steps``).
        steps: student/autoencoder steps (default ``model.steps``).
        continue_training: keep the teacher and its normalisation (the model was fitted before).
        **_unused: options of other models' fit functions, ignored.

    Raises:
        DataError: if fewer than 2 images were given or a batch has the wrong shape.
        MissingExtraError: if the teacher source's pretrained weights are not installed.
    """
    train, hold = _collect(model, batches)
    gen = torch.Generator().manual_seed(model.seed)
    torch.manual_seed(model.seed)
    if not continue_training:
        distill_teacher(model, train, int(teacher_steps or model.teacher_steps), gen, progress)
        with torch.no_grad():
            out = torch.cat([model.teacher(x) for x in _chunks(train)])
            model.teacher_mean = out.mean(dim=(0, 2, 3), keepdim=True)
            model.teacher_std = out.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    mean, std = input_norm(model.backbone, train.device)
    c = model.channels
    params = list(model.student.parameters()) + list(model.autoencoder.parameters())
    optimiser = torch.optim.Adam(params, lr=model.lr, weight_decay=1e-5)
    total = int(steps or model.steps)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=max(1, int(0.95 * total)), gamma=0.1)
    model.student.train()
    model.autoencoder.train()
    bar = progress_bar(total, "efficientad student", progress)
    for _ in range(total):
        x = train[torch.randint(0, train.shape[0], (BATCH,), generator=gen)]
        x_aug = _jitter(x, mean, std, gen)
        with torch.no_grad():
            teacher, teacher_aug = model.teacher_features(x), model.teacher_features(x_aug)
        loss_hard = hard_feature_loss(teacher, model.student(x)[:, :c])
        ae = model.autoencoder(x_aug)
        loss_ae = F.mse_loss(ae, teacher_aug)
        loss_stae = F.mse_loss(model.student(x_aug)[:, c:], ae.detach())
        optimise_step(optimiser, loss_hard + loss_ae + loss_stae, schedule=schedule, bar=bar)
    if bar is not None:
        bar.close()
    model.eval()
    with torch.no_grad():
        maps = [model.raw_maps(x) for x in _chunks(hold)]
    model.set_quantiles(map_quantiles(torch.cat([m[0] for m in maps])), map_quantiles(torch.cat([m[1] for m in maps])))
