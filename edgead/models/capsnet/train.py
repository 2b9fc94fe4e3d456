"""Fit CapsNet on good images plus a few labelled defective ones.

* The frozen backbone features of every training image are computed once (no image-level augmentation), so each
  step only runs the primary capsules, the routing and the decoder: seconds on a CPU.
* **Imbalance**: every step draws ``BATCH`` good images and ``BATCH // 2`` defective ones (with replacement: the few
  defects are oversampled, channel dropout on the features makes the repeats differ), and the margin loss is
  weighted by inverse class frequency (``N / (2 N_c)``), so good and defective images each carry half of it.
* **Loss**: ``margin (m+ 0.9, m- 0.1, lambda 0.5), class-weighted + recon_weight * MSE(decoder(v_normal),
  pooled image)`` on the good images only (the label masks the defective ones out of the reconstruction).
"""
from __future__ import annotations

from typing import Iterable

import torch

from edgead.errors import DataError
from edgead.models.capsnet.losses import weighted_margin_loss
from edgead.models.capsnet.torch_model import ANOMALOUS, NORMAL, CapsNet
from edgead.models.common import check_batch
from edgead.models.training import optimise_step, progress_bar

BATCH = 8  # good images per step (defective: BATCH // 2)
CHUNK = 16  # images per no-grad backbone pass


def _stack(batches: Iterable[torch.Tensor], input_hw: tuple[int, int]) -> torch.Tensor:
    tensors = []
    for batch in batches:
        check_batch(batch, input_hw)
        tensors.append(batch.float())
    return torch.cat(tensors) if tensors else torch.zeros(0, 3, *input_hw)


def _encode(model: CapsNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached backbone features and reconstruction targets, in chunks."""
    with torch.no_grad():
        feats = [model.features(x[i:i + CHUNK]) for i in range(0, len(x), CHUNK)]
        targets = [model.target(x[i:i + CHUNK]) for i in range(0, len(x), CHUNK)]
    return torch.cat(feats), torch.cat(targets)


def step_loss(model: CapsNet, f_good: torch.Tensor, t_good: torch.Tensor, f_bad: torch.Tensor) -> torch.Tensor:
    """The training loss of one balanced batch (features of good and defective images, targets of the good ones).

    Args:
        model: the model (in train mode).
        f_good: features of the good images ``[G, C, gh, gw]``.
        t_good: their reconstruction targets ``[G, 3, rh, rw]``.
        f_bad: features of the defective images ``[B, C, gh, gw]``.

    Returns:
        The scalar loss.
    """
    _, v, _ = model.route(torch.cat([f_good, f_bad]))
    labels = torch.cat([torch.full((len(f_good),), NORMAL), torch.full((len(f_bad),), ANOMALOUS)]).to(f_good.device)
    margin = weighted_margin_loss(v.norm(dim=-1), labels)
    recon = model.reconstruct(v[: len(f_good), NORMAL])  # masked by the label: good images only
    return margin + model.recon_weight * (recon - t_good).pow(2).mean()


def fit(model: CapsNet, batches: Iterable[torch.Tensor], progress: bool = True, *,
        defective: torch.Tensor | None = None, steps: int | None = None, **_unused) -> list[float]:
    """Train the primary capsules, the prediction matrices and the decoder (the backbone stays frozen).

    Args:
        model: the model to train.
        batches: re-iterable normalised good batches ``[B, 3, H, W]`` at ``model.input_hw``.
        progress: show a progress bar over steps.
        defective: normalised labelled defective images ``[M, 3, H, W]`` (``M >= 1``).
        steps: override ``model.steps``.
        **_unused: options of other models' fit functions, ignored.

    Returns:
        The loss of each step.

    Raises:
        DataError: if there is no good image, no defective image, or a batch has the wrong shape.
    """
    good = _stack(batches, model.input_hw)
    if len(good) == 0:
        raise DataError("capsnet fit got no good training images", hint="put good images in train/good")
    if defective is None or len(defective) == 0:
        raise DataError("capsnet fit got no labelled defective images",
                        hint="put a few in train/<defect_type>/ and train with --labelled")
    bad = _stack([defective], model.input_hw)
    f_good, t_good = _encode(model, good)
    f_bad, _ = _encode(model, bad)
    gen = torch.Generator().manual_seed(model.seed)
    torch.manual_seed(model.seed)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=model.lr)
    total = int(steps or model.steps)
    n_good, n_bad = min(BATCH, len(good)), max(1, BATCH // 2)
    bar = progress_bar(total, "capsnet", progress)
    history = []
    model.train()
    try:
        for _ in range(total):
            gi = torch.randperm(len(good), generator=gen)[:n_good]
            bi = torch.randint(len(bad), (n_bad,), generator=gen)
            history.append(optimise_step(optimiser, step_loss(model, f_good[gi], t_good[gi], f_bad[bi]), bar=bar))
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    return history
