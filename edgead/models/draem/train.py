"""Train DRAEM: simulated anomalies (``edgead.models.perlin``; textures procedural or from the generic image set,
``model.anomaly_source``) on good images, reconstruction (SSIM + L2) and
segmentation (focal) losses summed, Adam, ``model.steps`` steps over the re-iterated batches."""
from __future__ import annotations

import itertools
from typing import Iterable, Iterator

import numpy as np
import torch
from torch.nn import functional as F

from edgead.errors import DataError
from edgead.models.common import check_batch
from edgead.models.draem.losses import focal_loss, ssim
from edgead.models.draem.torch_model import Draem
from edgead.models.generic import GenericImages, GenericSource
from edgead.models.perlin import simulate_anomaly
from edgead.models.training import input_norm, optimise_step, progress_bar


def _cycle(batches: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    """Batches epoch after epoch (``batches`` is re-iterable, e.g. ``edgead.train.loader.Batches``)."""
    for epoch in itertools.count():
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            if epoch == 0:
                raise DataError("DRAEM fit got no training images", hint="give at least one batch of good images")
            return


def augment(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, rng: np.random.Generator,
            probability: float, source: GenericImages | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised good images -> normalised images with simulated anomalies, and their masks ``[B, H, W]``.

    ``source``: where the anomaly textures come from (None: the procedural textures of ``edgead.models.perlin``).
    """
    images = (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    texture_fn = source.sample if source is not None else None
    pairs = [simulate_anomaly(im, rng, probability=probability, texture_fn=texture_fn) for im in images]
    out = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).to(x.device)
    masks = torch.from_numpy(np.stack([p[1] for p in pairs])).to(x.device)
    return (out - mean) / std, masks


def fit(model: Draem, batches: Iterable[torch.Tensor], progress: bool = True, *, steps: int | None = None,
        **_unused) -> None:
    """Train both sub-networks on good images with simulated anomalies.

    Args:
        model: the model to train.
        batches: re-iterable normalised float tensors ``[B, 3, H, W]`` at ``model.input_hw`` (iterated once per
            epoch, as many epochs as the steps need).
        progress: show a progress bar over steps.
        steps: training steps (default ``model.steps``).
        **_unused: options of other models' fit functions, ignored.

    Raises:
        DataError: if no batch was given or a batch has the wrong shape.
    """
    total = int(steps or model.steps)
    rng = np.random.default_rng(model.seed)
    torch.manual_seed(model.seed)
    mean, std = input_norm(model.backbone, next(model.parameters()).device)
    optimiser = torch.optim.Adam(model.parameters(), lr=model.lr)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, [int(0.8 * total), int(0.9 * total)], gamma=0.2)
    source = GenericImages() if model.anomaly_source is GenericSource.GENERIC else None
    bar = progress_bar(total, "draem", progress)
    model.train()
    for _, batch in zip(range(total), _cycle(batches)):
        check_batch(batch, model.input_hw)
        clean = batch.float()
        aug, masks = augment(clean, mean, std, rng, model.anomaly_probability, source)
        recon, logits = model.segment(aug)
        recon01, clean01 = recon * std + mean, clean * std + mean
        loss = F.mse_loss(recon01, clean01) + (1.0 - ssim(recon01, clean01)) + focal_loss(logits, masks)
        optimise_step(optimiser, loss, schedule=schedule, bar=bar)
    if bar is not None:
        bar.close()
    model.eval()
