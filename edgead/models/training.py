"""Helpers shared by the trained detectors (vt-adl, piade, ae-knn, draem, efficientad): the epoch loop, loading of
trained parameters (``common.load_own_state`` handles buffers only; these models also have ``nn.Parameter`` s),
and the stand-in ``backbone`` of models that have no pretrained one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from edgead.errors import BundleError, DataError
from edgead.models.common import check_batch
from edgead.progress import progress


@dataclass(frozen=True)
class InputNorm:
    """What the pipeline reads as ``model.backbone`` for a model without a pretrained backbone."""

    name: str = "none"
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.5, 0.5, 0.5)
    weights_sha256: str | None = None


def run_epochs(model: nn.Module, batches: Iterable[torch.Tensor], loss_fn: Callable[[torch.Tensor], torch.Tensor],
               *, epochs: int, lr: float, seed: int, progress: bool, desc: str) -> list[float]:
    """Adam over ``epochs`` passes of ``batches``; the model is left in eval mode.

    Args:
        model: the model (its frozen backbone stays frozen: only parameters with ``requires_grad`` are optimised).
        batches: re-iterable normalised batches ``[B, 3, H, W]`` at ``model.input_hw``.
        loss_fn: batch -> scalar loss (called in train mode).
        epochs: passes over the data.
        lr: Adam learning rate.
        seed: torch seed for the initialisation-independent randomness (noise, dropout).
        progress: show a progress bar over epochs (:mod:`edgead.progress`).
        desc: progress bar label.

    Returns:
        The mean loss of each epoch.

    Raises:
        DataError: if there is no batch, or a batch has the wrong shape.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=lr)
    torch.manual_seed(seed)
    history = []
    bar = progress_bar(epochs, desc, progress)
    model.train()
    try:
        for _ in range(epochs):
            total, count = 0.0, 0
            for batch in batches:
                check_batch(batch, model.input_hw)
                value = optimise_step(optimiser, loss_fn(batch.float()))
                total, count = total + value * len(batch), count + len(batch)
            if count == 0:
                raise DataError(f"{desc} fit got no training images", hint="give at least one batch of good images")
            history.append(total / count)
            if bar is not None:
                bar.set_postfix(f"loss={history[-1]:.4f}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    return history


def load_trained_state(module: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    """Load exported parameters and buffers (all but the backbone's) into a freshly built model.

    Args:
        module: the model, built with the exported params.
        state: ``{name: array}`` as written by ``own_state``.

    Raises:
        BundleError: if a tensor is missing, unexpected or of the wrong shape.
    """
    tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in state.items()}
    try:
        result = module.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # size mismatch
        raise BundleError(f"model state does not fit {type(module).__name__}: {exc}",
                          hint="the state was saved by another model configuration") from exc
    missing = [k for k in result.missing_keys if not k.startswith("backbone.")]
    if missing or result.unexpected_keys:
        raise BundleError(
            f"model state does not fit {type(module).__name__}: missing {missing}, unexpected "
            f"{list(result.unexpected_keys)}", hint="the state was saved by another model type or version")


class TrainedStateMixin:
    """``export_params`` / ``export_state`` / ``from_state`` for trained models (mix in before ``nn.Module``).

    The model keeps its constructor parameters in ``self._params``; :meth:`extra_params` adds fitted facts
    (e.g. a bank size). The backbone's weights sha256 is recorded when the model has a pretrained backbone and,
    when ``checks_backbone`` is true, checked on load. The state is every own tensor (parameters and buffers), never
    the backbone, which is re-loaded from its package.
    """

    checks_backbone = True

    def extra_params(self) -> dict:
        """Fitted facts that ``from_state`` needs to rebuild the model (default: none)."""
        return {}

    def export_params(self) -> dict:
        """Constructor parameters as YAML-safe plain types (plus fitted facts and the backbone sha256)."""
        params = {**self._params, **self.extra_params()}
        sha = getattr(getattr(self, "backbone", None), "weights_sha256", None)
        if sha is not None:
            params["backbone_sha256"] = sha
        return params

    def export_state(self) -> dict:
        """Trained parameters and buffers as numpy arrays (no backbone)."""
        from edgead.models.common import own_state

        return own_state(self)

    @classmethod
    def from_state(cls, params: Mapping, state: Mapping[str, np.ndarray]):
        """Rebuild a trained model from :meth:`export_params` and :meth:`export_state`.

        Raises:
            BundleError: if the backbone weights differ from training or the state does not fit.
            ConfigError: if a parameter is invalid.
        """
        from edgead.models.common import check_backbone_sha

        kwargs = dict(params)
        expected_sha = kwargs.pop("backbone_sha256", None)
        model = cls(**kwargs)
        if cls.checks_backbone:
            check_backbone_sha(model.backbone.name, model.backbone.weights_sha256, expected_sha)
        load_trained_state(model, state)
        return model.eval()


def input_norm(backbone, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The backbone's input mean and std as ``[1, 3, 1, 1]`` tensors on ``device`` (to undo the normalisation)."""
    return (torch.tensor(backbone.mean, device=device).view(1, 3, 1, 1),
            torch.tensor(backbone.std, device=device).view(1, 3, 1, 1))


def progress_bar(total: int, desc: str, enabled: bool):
    """An :func:`edgead.progress.progress` over ``total`` steps, or None when ``enabled`` is false (close it with
    ``bar.close()``)."""
    if not enabled:
        return None
    return progress(total, desc, unit="step")


def optimise_step(optimiser: torch.optim.Optimizer, loss: torch.Tensor, *, schedule=None, bar=None) -> float:
    """One optimiser step on ``loss`` (then the LR ``schedule`` and the progress ``bar``); returns the loss value."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    if schedule is not None:
        schedule.step()
    value = float(loss.detach())
    if bar is not None:
        bar.update(1)
        bar.set_postfix(f"loss={value:.4f}")
    return value
