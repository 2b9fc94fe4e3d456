"""One factor at a time on a real category: PaDiM and PatchCore, torch side, with the real model classes.

Usage:
    python benchmarks/factors.py OUT.jsonl [--category magnetic_tile] [--train 100] [--max-test N]
                                 [--val-fraction F] [--variants NAME ...] [--sigmas PX ...] [--cache DIR] [--list]
    python benchmarks/factors.py OUT.jsonl --table      # the rows measured so far, as a markdown table

A variant is an input setting (decoder, normalisation, resize, orientation, model resolution, backbone), a model
(``padim`` or ``patchcore`` with its parameters) and the image scores read from its maps. The backbone features of
every image are computed once per input setting (kept as float16 ``.npy`` under ``--cache``, so runs resume; the
fitted state of each variant is kept there too, so a stopped run resumes at its test) and
fed to edgead's own model classes, whose backbone reads them from there: fitting, channel subsets, Gaussians,
coreset, distances, upsampling and smoothing are the training code's. The fit images are a seeded subset of
``train/good`` (``--train``; 0 = all), less edgead train's threshold hold-out when ``--val-fraction`` is given
(``edgead.data.split.holdout_split``, seed 0: the images a bundle from ``edgead train`` is fitted on); the test
images are the whole fixed test split, or with ``--max-test`` the seeded stratified subset ``benchmarks/peers.py``
compares on (the same draw: symlinks under ``--cache``, nothing copied). Metrics are
``edgead.metrics.evaluate`` on raw scores and maps at model resolution (masks by ``mask_at``, turned with their
image), with the pixel AUROC per defect type (``pixel_auroc_by_type``) and against the good images' pixels only
(``pixel_auroc_good_negatives``). ``--sigmas`` adds, for PatchCore, the rows of other smoothing sigmas re-smoothed
from the same search. Rows are appended to OUT.jsonl as each variant finishes; variants already there are skipped.

Image scores (``scores``): ``model`` is the model's own (PaDiM: the map's maximum; PatchCore: the paper's reweighted
maximum), ``max`` the map's maximum, ``smoothed-max`` the maximum after a mean filter of
``edgead.models.common.filter_size`` (21 px at 256), ``top1%`` the mean of the map's top 1 % pixels.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATASETS  # noqa: E402

from edgead.data import Color, load_image, load_mask, scan_category  # noqa: E402
from edgead.data.split import holdout_split, validation_count  # noqa: E402
from edgead.infer.layout import Layout, Orientation, quarter_turns, stitch, tiles, turn  # noqa: E402
from edgead.metrics import evaluate, mask_at, pixel_auroc  # noqa: E402
from edgead.models.backbone import build_backbone  # noqa: E402
from edgead.models.common import filter_size, smoothed_max  # noqa: E402

NORMS = {"half": ((0.5,) * 3, (0.5,) * 3), "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}
"""Input normalisations: the Lite weights' own ((x - 127.5) / 127.5), and the torchvision ImageNet statistics."""


@dataclass(frozen=True)
class Input:
    """How an image becomes the backbone's input (one feature cache per value)."""

    hw: tuple[int, int] = (256, 256)
    orientation: str = "keep"
    norm: str = "half"
    resize: str = "bilinear"  # the graph's F.interpolate; "bilinear-aa" antialiased; "area" cv2.INTER_AREA on uint8
    decoder: str = "cv2"  # edgead's (grey as one channel); "pil": PIL RGB, as anomalib reads it
    backbone: str = "efficientnet_lite0"
    tile: tuple[int, int] | None = None  # native-resolution tiles (edgead.infer.layout), each resized to hw
    overlap: int = 0

    def layout(self) -> Layout:
        return Layout(Orientation(self.orientation), self.tile, self.overlap)

    def key(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if not (k in ("tile", "overlap") and not v)}
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Variant:
    model: str
    params: dict
    input: Input = Input()
    scores: tuple[str, ...] = ("model",)


BASE = Input()
LAND = replace(BASE, orientation="landscape", hw=(192, 256))
TILE224 = replace(BASE, hw=(224, 224), tile=(224, 224), overlap=32)  # orientation kept: the grinding marks stay upright
PADIM = {"layers": ["block2", "block3", "block4"], "n_features": 100, "eps": 0.01, "sigma_px": 4.0}
CORE = {"layers": ["block0", "block1", "block2"], "grid_layer": "block1", "layer_scaling": "mean-norm",
        "coreset_ratio": 0.025}
OLD = {**CORE, "layers": ["block2", "block4"], "grid_layer": None, "layer_scaling": "none", "coreset_ratio": 0.1}
"""PatchCore's default before issue 21's round 1 (blocks 2+4 on block2's stride-8 grid, unscaled, 10 % coreset)."""
ALL_SCORES = ("model", "max", "smoothed-max", "top1%")
ANOMALIB_CHANNELS = [20, 149, 107, 181, 1, 19, 57, 125, 155, 172, 96, 101, 171, 136, 92, 100, 141, 228, 120, 126,
    0, 187, 47, 220, 199, 137, 128, 34, 123, 61, 59, 122, 51, 10, 50, 110, 65, 87, 41, 5,
    127, 42, 198, 176, 117, 170, 175, 224, 154, 184, 63, 185, 168, 98, 166, 135, 71, 91, 138, 21,
    222, 145, 93, 105, 114, 16, 55, 230, 30, 35, 104, 116, 97, 211, 24, 188, 2, 112, 89, 22,
    28, 208, 205, 130, 26, 231, 54, 134, 139, 157, 179, 62, 215, 79, 162, 156, 214, 152, 102, 52]
"""The 100 of the 232 channels (blocks 2-4) that anomalib's PaDiM drew (``torch.randperm``, unseeded) in the
magnetic_tile run of docs/benchmarks.md's peers table (``model.idx`` of its checkpoint)."""


def _v(model: str, base: dict, inp: Input = BASE, scores=("model",), **params) -> Variant:
    return Variant(model, {**base, **params}, inp, tuple(scores))


VARIANTS: dict[str, Variant] = {
    # PaDiM, one factor at a time from edgead's defaults (256x256 squashed, mean/std 0.5, blocks 2-4, 100 channels)
    "padim defaults": _v("padim", PADIM, scores=ALL_SCORES),
    "padim imagenet normalisation": _v("padim", PADIM, replace(BASE, norm="imagenet")),
    "padim antialiased resize": _v("padim", PADIM, replace(BASE, resize="bilinear-aa")),
    "padim area resize": _v("padim", PADIM, replace(BASE, resize="area")),
    "padim PIL RGB decoder + antialiased resize": _v("padim", PADIM, replace(BASE, decoder="pil",
                                                                             resize="bilinear-aa")),
    "padim blocks 1-3": _v("padim", PADIM, layers=["block1", "block2", "block3"]),
    "padim blocks 2-3": _v("padim", PADIM, layers=["block2", "block3"]),
    "padim blocks 3-4": _v("padim", PADIM, layers=["block3", "block4"]),
    "padim blocks 2-5": _v("padim", PADIM, layers=["block2", "block3", "block4", "block5"]),
    "padim 50 channels": _v("padim", PADIM, n_features=50),
    "padim 200 channels": _v("padim", PADIM, n_features=200),
    "padim all 232 channels": _v("padim", PADIM, n_features=None),
    "padim channel seed 1": _v("padim", PADIM, seed=1),
    "padim channel seed 2": _v("padim", PADIM, seed=2),
    "padim anomalib's channels": _v("padim", PADIM, channel_index=ANOMALIB_CHANNELS),
    "padim anomalib's channels + antialiased resize": _v("padim", PADIM, replace(BASE, resize="bilinear-aa"),
                                                          channel_index=ANOMALIB_CHANNELS),
    "padim eps 0.001": _v("padim", PADIM, eps=0.001),
    "padim eps 0.1": _v("padim", PADIM, eps=0.1),
    "padim eps 1": _v("padim", PADIM, eps=1.0),
    "padim sigma 2": _v("padim", PADIM, sigma_px=2.0),
    "padim sigma 8": _v("padim", PADIM, sigma_px=8.0),
    "padim landscape 192x256": _v("padim", PADIM, LAND, scores=ALL_SCORES),
    "padim 128x128": _v("padim", PADIM, replace(BASE, hw=(128, 128))),
    "padim 192x192": _v("padim", PADIM, replace(BASE, hw=(192, 192))),
    "padim 320x320": _v("padim", PADIM, replace(BASE, hw=(320, 320))),
    "padim lite2": _v("padim", PADIM, replace(BASE, backbone="efficientnet_lite2")),
    "padim tiles 224 native": _v("padim", PADIM, TILE224, scores=ALL_SCORES),
    "padim tiles 160 native": _v("padim", PADIM, replace(TILE224, hw=(160, 160), tile=(160, 160))),
    # PatchCore, from edgead's defaults (blocks 0-2 on the stride-4 grid, mean-norm scaled, 2.5 % coreset)
    "patchcore defaults": _v("patchcore", CORE, scores=ALL_SCORES),
    "patchcore imagenet normalisation": _v("patchcore", CORE, replace(BASE, norm="imagenet")),
    "patchcore antialiased resize": _v("patchcore", CORE, replace(BASE, resize="bilinear-aa")),
    "patchcore old default (blocks 2+4, unscaled, 10 %)": _v(
        "patchcore", CORE, layers=["block2", "block4"], grid_layer=None, layer_scaling="none", coreset_ratio=0.1),
    "patchcore blocks 1-3 @stride 8": _v("patchcore", CORE, layers=["block1", "block2", "block3"],
                                         grid_layer="block2", coreset_ratio=0.1),
    "patchcore blocks 1-3 @stride 4": _v("patchcore", CORE, layers=["block1", "block2", "block3"]),
    "patchcore 10 % coreset": _v("patchcore", CORE, coreset_ratio=0.1),
    "patchcore landscape 192x256": _v("patchcore", CORE, LAND, scores=ALL_SCORES),
    "patchcore landscape 256x320": _v("patchcore", CORE, replace(LAND, hw=(256, 320))),
    "patchcore lite2": _v("patchcore", CORE, replace(BASE, backbone="efficientnet_lite2")),
    "patchcore tiles 224 native": _v("patchcore", CORE, TILE224, scores=ALL_SCORES),
    "patchcore tiles 160 native": _v("patchcore", CORE, replace(TILE224, hw=(160, 160), tile=(160, 160))),
    # PatchCore, one factor at a time from the new default (issue 21, round 2: what costs it magnetic_tile)
    "patchcore blocks 1-2 @stride 4": _v("patchcore", CORE, layers=["block1", "block2"]),
    "patchcore blocks 2+4 @stride 4, scaled": _v("patchcore", CORE, layers=["block2", "block4"]),
    "patchcore blocks 0-2 @stride 8, 10 %": _v("patchcore", CORE, grid_layer="block2", coreset_ratio=0.1),
    "patchcore unscaled": _v("patchcore", CORE, layer_scaling="none"),
    "patchcore patch size 1": _v("patchcore", CORE, patch_size=1),
    "patchcore patch size 5": _v("patchcore", CORE, patch_size=5),
    "patchcore sigma 2": _v("patchcore", CORE, sigma_px=2.0),
    "patchcore sigma 8": _v("patchcore", CORE, sigma_px=8.0),
    "patchcore nearest upsampling": _v("patchcore", CORE, map_upsampling="nearest"),
    # ... and from the old default toward it
    "patchcore old, scaled": _v("patchcore", OLD, layer_scaling="mean-norm"),
    "patchcore old, 2.5 %": _v("patchcore", OLD, coreset_ratio=0.025),
    "patchcore old @stride 4, 2.5 %": _v("patchcore", OLD, grid_layer="block1", coreset_ratio=0.025),
    "patchcore old, patch size 5": _v("patchcore", OLD, patch_size=5),
    "patchcore old, sigma 8": _v("patchcore", OLD, sigma_px=8.0),
    "patchcore old, sigma 2": _v("patchcore", OLD, sigma_px=2.0),
    "patchcore old, nearest upsampling": _v("patchcore", OLD, map_upsampling="nearest"),
    "patchcore blocks 2+3 @stride 8, scaled, 10 %": _v("patchcore", OLD, layers=["block2", "block3"],
                                                      layer_scaling="mean-norm"),
    "patchcore blocks 2-4 @stride 8, scaled, 10 %": _v("patchcore", OLD, layers=["block2", "block3", "block4"],
                                                      layer_scaling="mean-norm"),
    "patchcore blocks 1-4 @stride 8, scaled, 10 %": _v("patchcore", OLD, layers=["block1", "block2", "block3",
                                                                                "block4"], grid_layer="block2",
                                                      layer_scaling="mean-norm"),
    "patchcore blocks 1+2+4 @stride 4, scaled": _v("patchcore", CORE, layers=["block1", "block2", "block4"]),
    "patchcore old, landscape 192x256": _v("patchcore", OLD, LAND, scores=ALL_SCORES),
    "patchcore old, landscape 256x320": _v("patchcore", OLD, replace(LAND, hw=(256, 320)), scores=ALL_SCORES),
    "patchcore blocks 0-2+4 @stride 4, scaled": _v("patchcore", CORE, layers=["block0", "block1", "block2",
                                                                             "block4"]),
    "patchcore blocks 2+4 @stride 4, scaled, 5 %": _v("patchcore", CORE, layers=["block2", "block4"],
                                                     coreset_ratio=0.05),
    # ... and `coarse` (= OLD) toward sharper maps (issue 21, round 4): input scale, a finer grid from the same
    # stages (their maps upsampled onto block1's stride-4 grid before the kNN), smoothing, and PaDiM beside it
    "patchcore coarse 320x320": _v("patchcore", OLD, replace(BASE, hw=(320, 320))),
    "patchcore coarse 384x384": _v("patchcore", OLD, replace(BASE, hw=(384, 384))),
    "patchcore coarse @stride 4, 2.5 %": _v("patchcore", OLD, grid_layer="block1", coreset_ratio=0.025),
    "patchcore coarse @stride 4, 10 %": _v("patchcore", OLD, grid_layer="block1"),
    "patchcore coarse 320x320, sigma 8": _v("patchcore", OLD, replace(BASE, hw=(320, 320)), sigma_px=8.0),
    "patchcore coarse 384x384, sigma 8": _v("patchcore", OLD, replace(BASE, hw=(384, 384)), sigma_px=8.0),
    "patchcore coarse 320x320 @stride 4, 2.5 %": _v("patchcore", OLD, replace(BASE, hw=(320, 320)),
                                                    grid_layer="block1", coreset_ratio=0.025),
    "patchcore coarse, blocks 1+2+4 unscaled": _v("patchcore", OLD, layers=["block1", "block2", "block4"],
                                                   grid_layer="block2"),
    "patchcore coarse, sigma 8": _v("patchcore", OLD, sigma_px=8.0),
    "patchcore coarse, sigma 16": _v("patchcore", OLD, sigma_px=16.0),
    "patchcore coarse 192x192": _v("patchcore", OLD, replace(BASE, hw=(192, 192))),
    "patchcore coarse 192x192, sigma 8": _v("patchcore", OLD, replace(BASE, hw=(192, 192)), sigma_px=8.0),
    "patchcore coarse, blocks 2+4+5": _v("patchcore", OLD, layers=["block2", "block4", "block5"]),
    "patchcore coarse, blocks 2+4+5 scaled": _v("patchcore", OLD, layers=["block2", "block4", "block5"],
                                                 layer_scaling="mean-norm"),
    "patchcore coarse, sigma 32": _v("patchcore", OLD, sigma_px=32.0),
    "patchcore coarse 320x320, sigma 16": _v("patchcore", OLD, replace(BASE, hw=(320, 320)), sigma_px=16.0),
    "patchcore coarse, blocks 2+4+5, sigma 16": _v("patchcore", OLD, layers=["block2", "block4", "block5"],
                                                    sigma_px=16.0),
    "patchcore coarse, blocks 4+5 @stride 8": _v("patchcore", OLD, layers=["block4", "block5"], grid_layer="block2"),
    # ... on every fit image (issue 21, round 5): `coarse` at 320x320 with the 2.5 % coreset of round 4's 256 run
    "patchcore coarse 320x320, 2.5 %": _v("patchcore", OLD, replace(BASE, hw=(320, 320)), coreset_ratio=0.025),
    "padim 384x384": _v("padim", PADIM, replace(BASE, hw=(384, 384))),
    "padim sigma 16": _v("padim", PADIM, sigma_px=16.0),
    "padim 320x320, sigma 8": _v("padim", PADIM, replace(BASE, hw=(320, 320)), sigma_px=8.0),
}


def _decode(path: Path, decoder: str) -> np.ndarray:
    if decoder == "pil":
        from PIL import Image

        return np.asarray(Image.open(path).convert("RGB"))
    return load_image(path, Color.GRAY)


def to_input(image: np.ndarray, inp: Input) -> torch.Tensor:
    """uint8 ``HxWxC`` (already turned) -> the normalised ``[1, 3, h, w]`` backbone input."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMS[inp.norm])
    if inp.resize == "area":
        import cv2

        image = cv2.resize(np.ascontiguousarray(image), inp.hw[::-1], interpolation=cv2.INTER_AREA)
        image = image[:, :, None] if image.ndim == 2 else image
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    if inp.resize != "area":
        x = F.interpolate(x, size=inp.hw, mode="bilinear", align_corners=False, antialias=inp.resize == "bilinear-aa")
    return (x.expand(-1, 3, -1, -1) - mean) / std


class FeatureStore:
    """Backbone features of every input of a split for one :class:`Input` (an image, or each of its tiles), as
    float16 ``.npy`` files per layer; ``owner[i]`` is the image of input ``i``."""

    def __init__(self, cache: Path, inp: Input, split: str, paths: list[Path]):
        digest = hashlib.sha256("\n".join(p.name for p in paths).encode()).hexdigest()[:8]
        self.dir = cache / f"{inp.key()}-{split}{len(paths)}-{digest}"
        self.inp, self.paths = inp, paths
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "input.json").write_text(json.dumps({**asdict(self.inp), "n": len(paths)}))
        self.arrays: dict[str, np.ndarray] = {}
        index = self.dir / "tiles.json"
        if not index.is_file():  # which tiles each image gives (corners and shapes in the oriented image)
            entries = []
            for i, path in enumerate(paths):
                parts, corners, turns = tiles(_decode(path, inp.decoder), inp.layout())
                entries += [{"owner": i, "corner": list(c), "shape": list(t.shape[:2]), "turns": turns}
                            for c, t in zip(corners, parts)]
            index.write_text(json.dumps(entries))
        self.entries = json.loads(index.read_text())
        self.owner = np.array([e["owner"] for e in self.entries])

    def __len__(self) -> int:
        return len(self.entries)

    def ensure(self, layers: list[str]) -> None:
        missing = [name for name in layers if not (self.dir / f"{name}.npy").is_file()]
        if missing:
            backbone = build_backbone(self.inp.backbone)
            backbone.fix_input_hw(self.inp.hw)
            out = {}
            tmp = {name: self.dir / f"{name}.{os.getpid()}.tmp.npy" for name in missing}  # runs may share a cache
            k = 0
            with torch.no_grad():
                for path in self.paths:
                    for part in tiles(_decode(path, self.inp.decoder), self.inp.layout())[0]:
                        feats = backbone.features(to_input(part, self.inp), missing)
                        for name in missing:
                            if name not in out:
                                out[name] = np.lib.format.open_memmap(tmp[name], "w+", np.float16,
                                                                      (len(self), *feats[name].shape[1:]))
                            out[name][k] = feats[name][0].numpy()
                        k += 1
            for name, arr in out.items():
                arr.flush()
                del arr
                tmp[name].rename(self.dir / f"{name}.npy")  # atomic
        for name in layers:
            self.arrays.setdefault(name, np.load(self.dir / f"{name}.npy", mmap_mode="r"))

    def features(self, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        """The model backbone's ``features``: the input indices ride in ``x[:, 0, 0, 0]``."""
        idx = x[:, 0, 0, 0].long().numpy()
        return {name: torch.from_numpy(self.arrays[name][idx].astype(np.float32)) for name in layers}

    def per_image(self, scores: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Per image, in its oriented frame: the score (maximum over its tiles) and the map (model resolution
        untiled; tiled: stitched at native resolution, as ``edgead.infer.layout.infer_layout``)."""
        out_s, out_m = [], []
        for i in range(len(self.paths)):
            sel = np.flatnonzero(self.owner == i)
            out_s.append(scores[sel].max())
            if self.inp.tile is None:
                out_m.append(maps[sel[0]])
                continue
            entries = [self.entries[j] for j in sel]
            hw = tuple(max(e["corner"][a] + e["shape"][a] for e in entries) for a in (0, 1))
            out_m.append(stitch([maps[j] for j in sel], [tuple(e["corner"]) for e in entries],
                                [tuple(e["shape"]) for e in entries], hw))
        return np.array(out_s), out_m


def index_batches(n: int, hw: tuple[int, int], size: int):
    for start in range(0, n, size):
        idx = torch.arange(start, min(n, start + size), dtype=torch.float32)
        x = torch.zeros(len(idx), 3, *hw)
        x[:, 0, 0, 0] = idx
        yield x


def build(v: Variant):
    from edgead.models.padim import Padim
    from edgead.models.padim import fit as padim_fit
    from edgead.models.patchcore import PatchCore
    from edgead.models.patchcore import fit as patchcore_fit

    NearestMapPatchCore = _nearest_map_patchcore()

    if v.model == "padim":
        params = dict(v.params)
        channels = params.pop("channel_index", None)
        model = Padim(v.input.hw, backbone=v.input.backbone, pretrained=False, **params)
        if channels is not None:  # a given subset (the channels' order does not change a Mahalanobis distance)
            model.channel_index = torch.tensor(sorted(channels))
        return model, padim_fit
    params = dict(v.params)
    cls = NearestMapPatchCore if params.pop("map_upsampling", "bilinear") == "nearest" else PatchCore
    return cls(v.input.hw, backbone=v.input.backbone, pretrained=False, **params), patchcore_fit


def _nearest_map_patchcore():
    from edgead.models.patchcore import PatchCore

    class NearestMap(PatchCore):
        """PatchCore whose patch-grid map reaches model resolution by nearest-neighbour upsampling (a factor only)."""

        def upsample_map(self, amap: torch.Tensor) -> torch.Tensor:
            return F.interpolate(amap, size=self.input_hw, mode="nearest")

    return NearestMap


def image_scores(kind: str, model_scores: np.ndarray, maps: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if kind == "model":
        return model_scores
    if kind == "max":
        return maps.reshape(len(maps), -1).max(1)
    if kind == "smoothed-max":
        return smoothed_max(torch.from_numpy(maps), filter_size(hw)).numpy()
    if kind == "top1%":
        flat = np.sort(maps.reshape(len(maps), -1), axis=1)
        return flat[:, -max(1, flat.shape[1] // 100):].mean(1)
    raise SystemExit(f"unknown score {kind!r}")


def run_variant(name: str, v: Variant, cat, fit_paths, cache: Path, sigmas: tuple[float, ...] = (),
                maps_dir: Path | None = None) -> list[dict]:
    """Fit and test one variant; its rows. ``sigmas`` (PatchCore only): also the rows of the same model with each of
    these smoothing sigmas, from its unsmoothed maps (the smoothing is the map's last step, so a row is what a
    model trained with that ``sigma_px`` gives, without another nearest-neighbour search). ``maps_dir``: each row's
    model scores and maps are also saved there (:func:`save_maps`), for ``benchmarks/ensemble.py``."""
    t0 = time.perf_counter()
    model, fit = build(v)
    layers = sorted(set(model.layers))
    train_store = FeatureStore(cache, v.input, "train", fit_paths)
    test_store = FeatureStore(cache, v.input, "test", [s.path for s in cat.test])
    train_store.ensure(layers)
    test_store.ensure(layers)
    t1 = time.perf_counter()
    model.backbone.features = train_store.features
    fitted = cache / f"fitted-{fit_key(v, fit_paths)}.npz"  # a rerun skips the fit (the coreset: hours at 10 %)
    resumed = fitted.is_file()
    if resumed:
        from edgead.models.common import load_own_state

        load_own_state(model, dict(np.load(fitted)))
    else:
        from edgead.models.common import own_state

        fit(model, index_batches(len(train_store), v.input.hw, 8), progress=False)
        tmp = fitted.with_name(f"{fitted.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **own_state(model))
        tmp.rename(fitted)  # atomic
    model.eval()
    model.backbone.features = test_store.features
    t2 = time.perf_counter()
    sigmas = tuple(sigmas) if v.model == "patchcore" else ()
    unsmoothed: list[torch.Tensor] = []
    if sigmas:
        upsample = model.upsample_map

        def keep(amap: torch.Tensor) -> torch.Tensor:
            out = upsample(amap)
            unsmoothed.append(out.clone())
            return out

        model.upsample_map = keep
    scores, maps = [], []
    with torch.no_grad():
        for x in index_batches(len(test_store), v.input.hw, 1 if v.model == "patchcore" else 8):
            s, m = model(x)
            scores.append(s.numpy())
            maps.append(m.numpy())
    scores, maps = np.concatenate(scores), np.concatenate(maps)
    t3 = time.perf_counter()
    timing = {"features_s": round(t1 - t0, 1), "fit_s": round(t2 - t1, 1), "test_s": round(t3 - t2, 1),
              "fit_resumed": resumed}
    base = {"category": cat.name, "model": v.model, "input": asdict(v.input), "n_fit": len(fit_paths),
            "n_fit_inputs": len(train_store), "n_test": len(cat.test), **timing}
    rows = metric_rows(cat, test_store, v, scores, maps, {**base, "variant": name, "params": v.params})
    save_maps(maps_dir, rows[0], scores, maps)
    for sigma in sigmas:
        from edgead.models.common import GaussianSmoothing

        smooth = GaussianSmoothing(sigma, v.input.hw)
        with torch.no_grad():
            resmoothed = torch.cat([smooth(u) for u in unsmoothed]).squeeze(1).numpy()
        more = metric_rows(cat, test_store, replace(v, scores=("model",)), scores, resmoothed,
                           {**base, "variant": f"{name}, sigma {sigma:g} (re-smoothed)",
                            "params": {**v.params, "sigma_px": sigma}})
        save_maps(maps_dir, more[0], scores, resmoothed)
        rows += more
    return rows


def fit_key(v: Variant, fit_paths: list[Path]) -> str:
    """The fitted state's cache key: the model, its parameters, the input setting and the fit images."""
    text = json.dumps({"model": v.model, "params": v.params, "input": asdict(v.input),
                       "fit": [p.name for p in fit_paths]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def maps_file(maps_dir: Path, row: dict) -> Path:
    """Where :func:`save_maps` keeps a row's maps: named by category, fit and test counts and variant."""
    digest = hashlib.sha256(row["variant"].encode()).hexdigest()[:10]
    return maps_dir / f"{row['category']}-fit{row['n_fit']}-test{row['n_test']}-{digest}.npz"


def save_maps(maps_dir: Path | None, row: dict, scores: np.ndarray, maps: np.ndarray) -> None:
    """The model's image scores and maps (float16, one per test input, model resolution) of one row."""
    if maps_dir is None:
        return
    maps_dir.mkdir(parents=True, exist_ok=True)
    np.savez(maps_file(maps_dir, row), scores=scores.astype(np.float32), maps=maps.astype(np.float16),
             variant=row["variant"], input=json.dumps(row["input"]))


def metric_rows(cat, test_store: FeatureStore, v: Variant, scores: np.ndarray, maps: np.ndarray, base: dict
                ) -> list[dict]:
    """One row per image score of ``v``: ``base`` and the metrics of these test scores and maps."""
    per_kind = {kind: image_scores(kind, scores, maps, v.input.hw) for kind in v.scores}
    labels = np.array([s.label for s in cat.test])
    image_maps = test_store.per_image(scores, maps)[1]
    masks = []
    for s, amap in zip(cat.test, image_maps):
        hw = load_image(s.path, Color.GRAY).shape[:2]
        masks.append(mask_at(turn(load_mask(s, hw), quarter_turns(hw, Orientation(v.input.orientation))), amap.shape))
    if len({m.shape for m in masks}) == 1:
        masks, image_maps = np.stack(masks), np.stack(image_maps)
    by_type = pixel_auroc_by_type([s.defect_type for s in cat.test], masks, image_maps)
    good_only = pixel_auroc_good_negatives(labels, masks, image_maps)
    rows = []
    for kind, tile_scores in per_kind.items():
        m = evaluate(labels, test_store.per_image(tile_scores, maps)[0], masks, image_maps)
        rows.append({**base, "score": kind, "image_auroc": m["image_auroc"], "pixel_auroc": m["pixel_auroc"],
                     "aupro": m["aupro"], "pixel_auroc_by_type": by_type, "pixel_auroc_good_negatives": good_only})
    return rows


def pixel_auroc_by_type(types: list[str], masks, maps) -> dict[str, float]:
    """Per defect type, the pixel AUROC over the good test images and the images of that type (the pooled pixel
    AUROC weighs each type by its defect pixels: on magnetic_tile ``uneven``'s large masks are most of them)."""
    out = {}
    for kind in sorted(set(types) - {"good"}):
        sel = [i for i, t in enumerate(types) if t in ("good", kind)]
        out[kind] = pixel_auroc([masks[i] for i in sel], [maps[i] for i in sel])
    return out


def pixel_auroc_good_negatives(labels: np.ndarray, masks, maps) -> float:
    """Pixel AUROC of the defect pixels against the pixels of the good images only (the defective images' own
    unmasked pixels left out): where it is far above the pooled figure, the false alarms sit in defective images."""
    from edgead.metrics.image import auroc_sorted

    pos = np.sort(np.concatenate([np.asarray(maps[i])[np.asarray(masks[i], bool)] for i in np.flatnonzero(labels)]))
    neg = np.sort(np.concatenate([np.asarray(maps[i]).ravel() for i in np.flatnonzero(labels == 0)]))
    return auroc_sorted(pos, neg)


def fit_images(cat, train: int, val_fraction: float) -> list:
    """The fit images: a seeded ``train`` of ``cat.train`` (0 or more than there are: all), less edgead train's
    threshold hold-out when ``val_fraction`` is given."""
    good = list(cat.train)
    if train and train < len(good):
        good = [good[i] for i in np.sort(np.random.default_rng(0).choice(len(good), train, replace=False))]
    if val_fraction:
        good = [good[i] for i in holdout_split(len(good), validation_count(len(good), val_fraction), 0)[0]]
    return good


def table(rows: list[dict]) -> str:
    """Markdown: one line per variant and image score, metrics in percent."""
    out = ["| category | fit / test images | variant | image score | image AUROC | pixel AUROC | AUPRO |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['category']} | {r['n_fit']} / {r['n_test']} | {r['variant']} | {r['score']} | "
                   + " | ".join(f"{100 * r[k]:.1f}" for k in ("image_auroc", "pixel_auroc", "aupro")) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?")
    ap.add_argument("--category", default="magnetic_tile")
    ap.add_argument("--train", type=int, default=100, help="fit images, a seeded subset of train/good (0: all)")
    ap.add_argument("--max-test", type=int, default=0,
                    help="test on benchmarks/peers.py's seeded stratified subset of this many images (0: all)")
    ap.add_argument("--val-fraction", type=float, default=0.0,
                    help="leave out edgead train's threshold hold-out of the fit images (its default: 0.2)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), metavar="NAME")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/edgead-factors"))
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: runs side by side)")
    ap.add_argument("--sigmas", type=float, nargs="*", default=[], metavar="PX",
                    help="PatchCore: also rows with these smoothing sigmas, re-smoothed from the same search")
    ap.add_argument("--maps", type=Path, default=None, metavar="DIR",
                    help="also save each row's model scores and maps under DIR (benchmarks/ensemble.py reads them)")
    ap.add_argument("--list", action="store_true", help="list the variants and exit")
    ap.add_argument("--table", action="store_true", help="print OUT's rows as a markdown table and exit")
    args = ap.parse_args()
    if args.list or not args.out:
        print("\n".join(VARIANTS))
        return
    if args.table:
        print(table([json.loads(line) for line in Path(args.out).read_text().splitlines()]))
        return
    unknown = [n for n in args.variants if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; --list shows them")
    torch.set_num_threads(args.threads)
    if args.max_test:
        from peers import subset

        cat = scan_category(subset(DATASETS / args.category, args.cache / "subsets", args.train or 10**9,
                                   args.max_test))
        cat = replace(cat, name=args.category)
    else:
        cat = scan_category(DATASETS / args.category)
    fit_paths = [s.path for s in fit_images(cat, args.train, args.val_fraction)]
    out = Path(args.out)
    done = {(r["category"], r["variant"], r["n_fit"], r["n_test"])
            for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    cache = args.cache / cat.name
    for name in args.variants:
        if (cat.name, name, len(fit_paths), len(cat.test)) in done:
            continue
        rows = run_variant(name, VARIANTS[name], cat, fit_paths, cache, tuple(args.sigmas), args.maps)
        with out.open("a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
        for r in rows:
            print(f"{r['variant']} [{r['score']}]: image {100 * r['image_auroc']:.1f} pixel {100 * r['pixel_auroc']:.1f} "
                  f"aupro {100 * r['aupro']:.1f} ({r['features_s']}+{r['fit_s']}+{r['test_s']} s)", flush=True)


if __name__ == "__main__":
    main()
