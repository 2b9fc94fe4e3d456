"""Update strategies of the memory-bank models: PatchCore bank extension, PaDiM per-task and running Gaussians.

* ``bank-extension`` (PatchCore): patch features of the new task's images, greedy k-center coreset over
  (old bank + new features) that starts from the old bank rows (``greedy_coreset(..., preselected=M)``), so the old
  rows stay unchanged and the new rows are the new features farthest from everything kept. The bank grows by the
  new task's coreset size (``coreset_ratio`` of its patches). With ``max_bank`` below that, the coreset is selected
  over the union from scratch and old rows may go. Old-task scores are unchanged wherever the new rows are not the
  nearest ones (a new variant that does not look like the old one); they can only go down otherwise.
* ``per-task`` (PaDiM): one more Gaussian stack; the graph keeps, per image, the task with the lowest map sum.
* ``running`` (PaDiM): one Gaussian of all tasks' images, merged exactly from the stored sums (``padim_stats.npz``;
  a bundle from ``edgead train`` has none, so its sums are recovered from its Gaussian and image count).
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch

from edgead.continual.context import UpdateContext, UpdateOutcome
from edgead.errors import ConfigError
from edgead.train.loader import batches

PADIM_STATS = "padim_stats.npz"


def extend_bank(model, new_features: torch.Tensor, *, max_bank: int | None = None, progress: bool = False) -> dict:
    """Extend a fitted PatchCore's memory bank with new patch features (in place).

    Args:
        model: a fitted ``PatchCore``.
        new_features: ``[P, D]`` patch features of the new task's images.
        max_bank: cap on the bank rows (None: no cap).
        progress: show the coreset progress bar.

    Returns:
        ``{"bank_before", "bank_after", "old_rows_kept"}``.

    Raises:
        ConfigError: if ``max_bank`` is below ``num_neighbors``.
    """
    from edgead.models.patchcore.coreset import greedy_coreset, nearest_neighbors

    old = model.memory_bank
    n_old = old.shape[0]
    n_new = min(new_features.shape[0], max(1, math.ceil(model.coreset_ratio * new_features.shape[0])))
    union = torch.cat([old, new_features.float()])
    if max_bank is not None and max_bank < model.num_neighbors:
        raise ConfigError(f"max_bank={max_bank} is below num_neighbors={model.num_neighbors}",
                          hint="raise max_bank or lower num_neighbors")
    if max_bank is None or n_old + n_new <= max_bank:
        index = greedy_coreset(union, n_old + n_new, projection_dim=model.projection_dim, seed=model.seed,
                               progress=progress, preselected=n_old)
        kept = True
    else:
        index = greedy_coreset(union, min(int(max_bank), union.shape[0]), projection_dim=model.projection_dim,
                               seed=model.seed, progress=progress)
        kept = False
    bank = union[index]
    model.set_memory_bank(bank, nearest_neighbors(bank, min(model.num_neighbors, bank.shape[0])))
    return {"bank_before": int(n_old), "bank_after": int(bank.shape[0]), "old_rows_kept": kept}


def patchcore_bank_extension(ctx: UpdateContext) -> UpdateOutcome:
    """``bank-extension``: see the module docstring."""
    model = ctx.model
    with torch.no_grad():
        rows = [model.patches(b) for b in batches(ctx.fit_images, ctx.preprocess, ctx.options.batch_size)]
    info = extend_bank(model, torch.cat(rows), max_bank=ctx.options.max_bank, progress=ctx.options.progress)
    return UpdateOutcome(model, info=info)


def _padim_with_tasks(model, mean: torch.Tensor, inv: torch.Tensor):
    from edgead.models.padim import Padim

    params = {k: v for k, v in model.export_params().items() if k != "backbone_sha256"}
    params["n_tasks"] = int(mean.shape[0])
    out = Padim(**params)
    out.set_gaussians(mean, inv)
    return out.eval()


def padim_per_task(ctx: UpdateContext) -> UpdateOutcome:
    """``per-task``: the old Gaussian stacks plus one fitted on the new task's images."""
    from edgead.models.padim.train import gaussian_stats

    model = ctx.model
    stats = gaussian_stats(model, batches(ctx.fit_images, ctx.preprocess, ctx.options.batch_size))
    mean, inv = stats.gaussians(model.eps)
    merged = _padim_with_tasks(model, torch.cat([model.mean, mean.float()[None]]),
                               torch.cat([model.inv_covariance, inv.float()[None]]))
    return UpdateOutcome(merged, info={"gaussian_stacks": int(merged.n_tasks)})


def padim_running(ctx: UpdateContext) -> UpdateOutcome:
    """``running``: one Gaussian over all tasks' images, merged exactly from the sums."""
    from edgead.models.padim.train import gaussian_stats

    model = ctx.model
    if model.n_tasks != 1:
        raise ConfigError(f"the running strategy needs a one-Gaussian PaDiM, this bundle holds {model.n_tasks}",
                          hint="keep extending it with --strategy per-task")
    old = _old_stats(ctx)
    new = gaussian_stats(model, batches(ctx.fit_images, ctx.preprocess, ctx.options.batch_size))
    merged = old + new
    model.set_gaussians(*merged.gaussians(model.eps))
    buffer = io.BytesIO()
    np.savez(buffer, **merged.to_arrays())
    return UpdateOutcome(model, extra_files={PADIM_STATS: buffer.getvalue()},
                         info={"images_in_gaussian": int(merged.count)})


def _old_stats(ctx: UpdateContext):
    from edgead.models.padim.train import GaussianStats

    if PADIM_STATS in ctx.bundle.manifest.get("files", {}):
        return GaussianStats.from_arrays(ctx.bundle.load_arrays(PADIM_STATS))
    count = (ctx.bundle.meta.training.n_images if ctx.bundle.meta.training else None) or 0
    if count < 2:
        raise ConfigError("the bundle records no training image count to merge its Gaussian with",
                          hint="use --strategy per-task, or retrain with `edgead train`")
    return GaussianStats.from_gaussians(ctx.model.mean[0], ctx.model.inv_covariance[0], count, ctx.model.eps)
