"""EfficientAD's teacher: distilled from a pretrained backbone, on the training images or on the generic image set.

The paper distils its PDN teacher once, on ImageNet, from WideResNet-101 features, and reuses it for every
category. Here the target is the real ImageNet EfficientNet-Lite0 (``block2`` + ``block3`` features, resized to the
PDN grid and normalised per channel) and the images are the generic set of :mod:`edgead.models.generic`
(procedural textures and shapes, the photographs shipped in the scikit-image / scikit-learn wheels), as random
crops with flips and colour jitter. A generic teacher is found, in this order, among:

1. the teachers shipped in this package (``teachers/<key>.npz``, small ones only: the ``cpu`` preset's);
2. the user cache (``$EDGEAD_TEACHER_CACHE``, default ``~/.cache/edgead/teachers``);
3. none: ``train.fit`` distils it (``teacher_steps``) and stores it in the user cache, so the next category reuses it.

``edgead distil-teacher`` (:func:`distil_generic` + :func:`save_teacher`) makes one ahead of time, e.g. on a GPU.
A teacher is two files: ``<key>.npz`` (the PDN's tensors, read with ``allow_pickle=False``) and ``<key>.json``
(provenance: the command's parameters, the source backbone's weights sha256, the generic set's description, the
edgead and torch versions, the npz's sha256).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from edgead.errors import BundleError, ConfigError
from edgead.models.backbone import BACKBONES, build_backbone
from edgead.models.efficientad.torch_model import TEACHER_LAYERS, Penalty, TeacherData  # noqa: F401
from edgead.models.generic import GenericImages, GenericSource
from edgead.models.generic import VERSION as GENERIC_VERSION
from edgead.models.training import optimise_step, progress_bar

SHIPPED = Path(__file__).resolve().parent / "teachers"
CROP_PX = 128  # side of the generic crops a generic teacher is distilled on (the PDN sees 33 px)
BATCH = 8
STATS_IMAGES = 64  # generic crops the target's channel mean/std is taken over


def jitter(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
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


def teacher_key(size: str, width: float, source: str, steps: int, seed: int) -> str:
    """The file name (without suffix) of a generic teacher, e.g. ``pdn-S-w0.25-efficientnet_lite0-s3000-seed0-g1``."""
    return f"pdn-{size}-w{float(width):g}-{source}-s{int(steps)}-seed{int(seed)}-g{GENERIC_VERSION}"


def cache_dir() -> Path:
    """The user cache of distilled teachers."""
    return Path(os.environ.get("EDGEAD_TEACHER_CACHE", Path.home() / ".cache" / "edgead" / "teachers"))


def find_teacher(key: str) -> Path | None:
    """The ``.npz`` of a generic teacher, shipped first, then cached; None when there is none."""
    for folder in (SHIPPED, cache_dir()):
        path = folder / f"{key}.npz"
        if path.is_file():
            return path
    return None


def feature_target(backbone, layers: tuple[str, ...] = TEACHER_LAYERS) -> Callable[[torch.Tensor, tuple], torch.Tensor]:
    """``target(x, grid)``: the backbone's ``layers`` resized to the PDN ``grid`` and concatenated."""

    def target(x: torch.Tensor, grid: tuple) -> torch.Tensor:
        feats = backbone.features(x, layers)
        return torch.cat([F.interpolate(feats[k], size=grid, mode="bilinear", align_corners=False)
                          for k in layers], dim=1)

    return target


def distil(teacher: torch.nn.Module, target: Callable, draw: Callable[[], torch.Tensor], stats: torch.Tensor,
           steps: int, lr: float, progress: bool = True) -> list[float]:
    """Train ``teacher`` to regress ``target``'s features, normalised per channel over ``stats``.

    Args:
        teacher: the PDN (its output channels = the target's).
        target: ``target(x, grid)`` as :func:`feature_target` makes.
        draw: a batch of (augmented) normalised images per call.
        stats: normalised images the target's channel mean/std is taken over.
        steps: Adam steps.
        lr: learning rate (weight decay 1e-5, as the paper).
        progress: show a progress bar.

    Returns:
        The loss of each step.
    """
    grid = tuple(teacher(stats[:1]).shape[-2:])
    with torch.no_grad():
        feats = torch.cat([target(stats[i:i + 16], grid) for i in range(0, len(stats), 16)])
        f_mean = feats.mean(dim=(0, 2, 3), keepdim=True)
        f_std = feats.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    teacher.requires_grad_(True)
    teacher.train()
    optimiser = torch.optim.Adam(teacher.parameters(), lr=lr, weight_decay=1e-5)
    bar = progress_bar(steps, "efficientad teacher", progress)
    losses = []
    try:
        for _ in range(int(steps)):
            x = draw()
            with torch.no_grad():
                want = (target(x, grid) - f_mean) / f_std
            losses.append(optimise_step(optimiser, F.mse_loss(teacher(x), want), bar=bar))
    finally:
        if bar is not None:
            bar.close()
        teacher.requires_grad_(False)
        teacher.eval()
    return losses


def distil_generic(teacher: torch.nn.Module, source: str, steps: int, seed: int, *, lr: float = 1e-3,
                   dirs: tuple = (), crop_px: int = CROP_PX, progress: bool = True) -> dict:
    """Distil ``teacher`` (a fresh PDN) from ``source`` on generic crops; returns the provenance.

    Raises:
        ConfigError: for an unknown source backbone.
        MissingExtraError: if its pretrained weights are not installed.
    """
    if source not in BACKBONES:
        raise ConfigError(f"unknown teacher source {source!r}", hint=f"use one of {sorted(BACKBONES)}")
    device = next(teacher.parameters()).device  # the teacher's (edgead.models.device.fit_on moves it)
    backbone = build_backbone(source).to(device)
    spec = BACKBONES[source]
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    pool = GenericImages(GenericSource.GENERIC, dirs=dirs)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    shape = (int(crop_px), int(crop_px))

    def images(n: int) -> torch.Tensor:
        x = torch.from_numpy(pool.batch(n, shape, rng)).permute(0, 3, 1, 2).to(device)
        return (x - mean) / std

    def draw() -> torch.Tensor:
        return jitter(images(BATCH), mean, std, gen)

    torch.manual_seed(seed)
    losses = distil(teacher, feature_target(backbone), draw, images(STATS_IMAGES), steps, lr, progress)
    return {"source": source, "source_sha256": backbone.weights_sha256, "layers": list(TEACHER_LAYERS),
            "steps": int(steps), "seed": int(seed), "lr": float(lr), "batch": BATCH, "crop_px": int(crop_px),
            "generic": pool.describe(), "final_loss": float(np.mean(losses[-50:])) if losses else None}


def make_teacher(*, size: str = "S", width: float = 0.25, source: str = "efficientnet_lite0", steps: int = 3000,
                 seed: int = 0, out: str | os.PathLike | None = None, dirs: tuple = (), float16: bool = False,
                 progress: bool = True) -> Path:
    """Distil a generic teacher and save it under the key the models look it up by (``edgead distil-teacher``).

    Args:
        size: PDN size, ``"S"`` or ``"M"``.
        width: factor on the PDN's hidden channels (the ``width`` model parameter).
        source: the pretrained backbone distilled from.
        steps: Adam steps (the ``teacher_steps`` model parameter).
        seed: seed of the weights and of the generic crops (the ``seed`` model parameter).
        out: folder to write to (default: the user cache, where training finds it).
        dirs: folders of extra images for the generic set.
        float16: store the weights as float16 (half the size; loaded as float32).
        progress: show a progress bar.

    Returns:
        The ``.npz`` path (its ``.json`` provenance beside it).

    Raises:
        ConfigError: for an unknown size or source.
    """
    from edgead.models.efficientad.networks import PDN_BUILDERS, PdnSize

    if source not in BACKBONES:
        raise ConfigError(f"unknown teacher source {source!r}", hint=f"use one of {sorted(BACKBONES)}")
    try:
        pdn = PdnSize(str(size).upper())
    except ValueError as exc:
        raise ConfigError(f"PDN size {size!r} is unknown", hint="use S or M") from exc
    torch.manual_seed(int(seed))
    channels = sum(BACKBONES[source].channels[name] for name in TEACHER_LAYERS)
    teacher = PDN_BUILDERS[pdn](channels, float(width))
    provenance = distil_generic(teacher, source, steps, seed, dirs=tuple(dirs), progress=progress)
    provenance.update({"size": pdn.value, "width": float(width), "float16": bool(float16),
                       "command": f"edgead distil-teacher --size {pdn.value} --width {float(width):g} --source "
                                  f"{source} --steps {int(steps)} --seed {int(seed)}"
                                  + "".join(f" --images {d}" for d in dirs) + (" --float16" if float16 else "")})
    key = teacher_key(pdn.value, width, source, steps, seed)
    return save_teacher(out if out is not None else cache_dir(), key, teacher, provenance)


def save_teacher(folder: str | os.PathLike, key: str, teacher: torch.nn.Module, provenance: dict) -> Path:
    """Write ``<key>.npz`` (float16 when ``provenance["float16"]``, else float32) and ``<key>.json``; returns the
    npz path."""
    import edgead

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dtype = np.float16 if provenance.get("float16") else np.float32
    arrays = {k: v.detach().cpu().numpy().astype(dtype) for k, v in teacher.state_dict().items()}
    path = folder / f"{key}.npz"
    np.savez_compressed(path, **arrays)
    meta = {**provenance, "key": key, "edgead_version": edgead.__version__, "torch_version": torch.__version__,
            "npz_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (folder / f"{key}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def load_teacher(teacher: torch.nn.Module, path: Path) -> dict:
    """Load a saved teacher into ``teacher`` (float32); returns its provenance (with the npz's sha256).

    Raises:
        BundleError: if the file does not fit the PDN (another size or width) or its hash differs from its record.
    """
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("npz_sha256") not in (None, sha):
        raise BundleError(f"teacher {path} has sha256 {sha}, its record says {meta['npz_sha256']}",
                          hint=f"re-make it with edgead distil-teacher, or delete {path}")
    with np.load(path, allow_pickle=False) as npz:
        state = {k: torch.from_numpy(npz[k].astype(np.float32)) for k in npz.files}
    try:
        teacher.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BundleError(f"teacher {path} does not fit this PDN: {exc}",
                          hint="its size or width differs from the model's") from exc
    return {**meta, "npz_sha256": sha}


__all__ = ["CROP_PX", "Penalty", "SHIPPED", "TEACHER_LAYERS", "TeacherData", "cache_dir", "distil", "distil_generic",
           "feature_target", "find_teacher", "jitter", "make_teacher", "load_teacher", "save_teacher", "teacher_key"]
