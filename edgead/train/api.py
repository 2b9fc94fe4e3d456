"""``edgead.train(data, out, ...)``: what ``edgead train`` calls (the CLI only parses arguments into this call).

The package :mod:`edgead.train` is callable as this function (see its docstring).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from edgead.errors import ConfigError

ARCHIVE_SUFFIX = ".edgead"


def train(data: str | os.PathLike, out: str | os.PathLike, *, model: str = "patchcore",
          image_size: int | tuple[int, int] | str | None = None, val_fraction: float = 0.2,
          target_frr: float = 0.01, seed: int = 0, batch_size: int = 8, params: Mapping[str, Any] | None = None,
          evaluate: bool = True, labelled: bool = False, device: str = "auto", preset: str | None = None,
          layout=None, reference: str | os.PathLike | None = None, force: bool = False, progress: bool = True,
          sign_key=None):
    """Train a detector on ``data/train/good`` and write a bundle (``out``), as ``edgead train`` does.

    Args:
        data: an MVTec-layout folder (``train/good`` required; ``test/`` is evaluated when present).
        out: the bundle directory, or ``NAME.edgead`` for the directory ``NAME`` plus its one-file archive.
        model: a model of the table (``edgead models``).
        image_size: the model's long side (aspect kept), ``(height, width)``, ``"HxW"``, or None for 256.
        val_fraction: share of ``train/good`` held out to calibrate the threshold, in ``[0, 1)``.
        target_frr: the false-reject rate on good parts the threshold is set for, in ``(0, 1)``.
        seed: seed of the split and of the model.
        batch_size: images per forward pass (at least 1).
        params: model parameters (``edgead models NAME`` lists them and their defaults).
        evaluate: evaluate on ``test/`` when it holds defects.
        labelled: supervised models (capsnet) also fit on ``train/<defect_type>/``.
        device: ``auto`` (CUDA when torch sees a GPU), ``cpu`` or ``cuda[:N]``.
        preset: the trained models' parameter set (``quick``, ``cpu``, ``gpu``, ``paper``; ``edgead models NAME``);
            None: ``paper`` on CUDA, the model's CPU default on a CPU. ``params`` override it.
        layout: orientation and native-resolution tiles (:class:`edgead.infer.layout.Layout`, or its dict).
        reference: a reference image of a good part for the bundle to carry (default: ``data/reference.png`` when
            present); :class:`edgead.Inspector` aligns to it with ``align=True``.
        force: replace an existing bundle or file at ``out`` (never a directory that is not a bundle).
        progress: progress bars on a terminal.
        sign_key: an Ed25519 private key (:class:`edgead.bundle.signing.SigningKey` or its file) to sign the
            bundle with; None: unsigned (stations refuse it unless their config allows unsigned bundles).

    Returns:
        The :class:`edgead.train.pipeline.TrainResult` (``bundle``, ``seconds``, ``metrics``).

    Raises:
        ConfigError: an option out of range, an unknown model or parameter.  OutputError: ``out`` exists (without
        ``force``), or the disk filled up.  DataError: missing, empty or unusable data.

    Example:
        >>> result = edgead.train("parts/", "/tmp/bracket", model="padim", image_size=128)   # doctest: +SKIP
    """
    from edgead.bundle import check_output, pack_bundle
    from edgead.models.registry import Supervision
    from edgead.train.pipeline import TrainConfig
    from edgead.train.pipeline import train as train_bundle
    from edgead.train.sizing import parse_image_size

    cfg = TrainConfig(model=model, image_size=parse_image_size(image_size), val_fraction=val_fraction,
                      target_frr=target_frr, seed=seed, batch_size=batch_size, params=dict(params or {}),
                      evaluate=evaluate, supervision=Supervision.LABELLED if labelled else Supervision.UNSUPERVISED,
                      device=device, layout=layout, reference=reference, preset=preset)
    out = Path(out)
    archive = out if out.suffix == ARCHIVE_SUFFIX else None
    bundle_dir = out.with_suffix("") if archive else out
    if archive is not None and bundle_dir == archive:
        raise ConfigError(f"--out {out}: name the archive NAME{ARCHIVE_SUFFIX}")
    check_output(bundle_dir, force=force)
    if archive is not None:
        check_output(archive, force=force)
    result = train_bundle(data, bundle_dir, cfg, progress=progress, sign_key=sign_key)
    if archive is not None:
        pack_bundle(bundle_dir, archive)
    return result
