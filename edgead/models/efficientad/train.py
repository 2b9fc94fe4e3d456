"""Train EfficientAD-S on good images only.

1. **Teacher** (``model.teacher_data``, module ``teachers``): ``train`` distils the PDN for ``model.teacher_steps``
   Adam steps to regress the pretrained EfficientNet-Lite0's ``block2`` and ``block3`` feature maps on the training
   images (random flips and colour jitter); ``generic`` loads the teacher distilled on the generic image set (the
   paper's ImageNet teacher, substituted), distilling and caching it first when there is none.
2. **Teacher channel normalisation**: mean/std of each teacher output channel over the training images (paper).
3. **Student + autoencoder** for ``model.steps`` steps of ``model.batch_size`` images: the hard-feature loss on the
   student's first C channels (mean of the squared differences at or above their 0.999 quantile, paper), the
   autoencoder's MSE to the teacher on colour-jittered images (brightness, contrast, saturation factors in
   [0.8, 1.2]) and the MSE of the student's last C channels to the (detached) autoencoder output. With
   ``model.penalty == "generic"`` the paper's penalty term, the mean squared output of the student's first C
   channels on other images, is added; its images are generic images (the paper: ImageNet).
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
from edgead.models.efficientad.teachers import (Penalty, TeacherData, cache_dir, distil, distil_generic,
                                                feature_target, find_teacher, jitter, load_teacher, save_teacher,
                                                teacher_key)
from edgead.models.efficientad.torch_model import EfficientAd, map_quantiles
from edgead.models.generic import GenericImages
from edgead.models.training import input_norm, optimise_step, progress_bar

P_HARD = 0.999  # the paper's hard-feature quantile
CHUNK = 16  # images per no-grad forward pass
PENALTY_POOL = 64  # generic images drawn once for the penalty term


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
    """Train ``model.teacher`` on the training ``images`` (``teacher_data: train``, step 1 of the module docstring)."""
    backbone = build_backbone(model.teacher_source).to(images.device)
    mean, std = input_norm(model.backbone, images.device)

    def draw() -> torch.Tensor:
        x = images[torch.randint(0, images.shape[0], (model.batch_size,), generator=gen)]
        return jitter(_flip(x, gen), mean, std, gen)

    distil(model.teacher, feature_target(backbone), draw, images, steps, model.lr, progress)
    model.set_teacher_source_sha256(backbone.weights_sha256)


def generic_teacher(model: EfficientAd, progress: bool = True) -> dict:
    """Load the generic teacher of ``model``'s size, width, source, steps and seed; distil and cache it first when
    neither the package nor the user cache has it. Returns its provenance."""
    key = teacher_key(model.size, model.width, model.teacher_source, model.teacher_steps, model.seed)
    path = find_teacher(key)
    if path is None:
        provenance = distil_generic(model.teacher, model.teacher_source, model.teacher_steps, model.seed,
                                    progress=progress)
        path = save_teacher(cache_dir(), key, model.teacher, provenance)
    provenance = load_teacher(model.teacher, path)
    model.teacher.requires_grad_(False)
    model.teacher.eval()
    model.set_teacher_source_sha256(provenance.get("source_sha256"))
    model.set_teacher_sha256(provenance["npz_sha256"])
    return provenance


def penalty_images(model: EfficientAd, device: torch.device) -> torch.Tensor:
    """:data:`PENALTY_POOL` generic images at the model resolution, normalised (seeded by ``model.seed``)."""
    pool = GenericImages().batch(PENALTY_POOL, tuple(model.input_hw), np.random.default_rng(model.seed + 1))
    mean, std = input_norm(model.backbone, device)
    return (torch.from_numpy(pool).permute(0, 3, 1, 2).to(device) - mean) / std


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
        if model.teacher_data is TeacherData.GENERIC:
            generic_teacher(model, progress)
        else:
            distill_teacher(model, train, int(teacher_steps or model.teacher_steps), gen, progress)
        with torch.no_grad():
            out = torch.cat([model.teacher(x) for x in _chunks(train)])
            model.teacher_mean = out.mean(dim=(0, 2, 3), keepdim=True)
            model.teacher_std = out.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    mean, std = input_norm(model.backbone, train.device)
    c = model.channels
    penalty = penalty_images(model, train.device) if model.penalty is Penalty.GENERIC else None
    params = list(model.student.parameters()) + list(model.autoencoder.parameters())
    optimiser = torch.optim.Adam(params, lr=model.lr, weight_decay=1e-5)
    total = int(steps or model.steps)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=max(1, int(0.95 * total)), gamma=0.1)
    model.student.train()
    model.autoencoder.train()
    bar = progress_bar(total, "efficientad student", progress)
    for _ in range(total):
        x = train[torch.randint(0, train.shape[0], (model.batch_size,), generator=gen)]
        x_aug = jitter(x, mean, std, gen)
        with torch.no_grad():
            teacher, teacher_aug = model.teacher_features(x), model.teacher_features(x_aug)
        loss_hard = hard_feature_loss(teacher, model.student(x)[:, :c])
        if penalty is not None:
            p = penalty[torch.randint(0, penalty.shape[0], (model.batch_size,), generator=gen)]
            loss_hard = loss_hard + (model.student(p)[:, :c] ** 2).mean()
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
