"""Why PatchCore's maps were blurry: one factor at a time, on the real piped categories (torch, no export).

Usage:
    python benchmarks/patchcore_maps.py OUT.jsonl CATEGORY_DIR... [--variants NAME ...]

The backbone features of every image (Lite0, 256x256, blocks 0-4) are computed once per category; each variant then
builds its patch embedding (layers, patch grid, per-layer scaling, local-neighbourhood pooling), selects its coreset
(greedy k-center, the training code's), scores the test split by nearest-neighbour distance (or the mean of the
``knn`` nearest), upsamples the patch map (bilinear or nearest) and smooths it (sigma 4, 2 or 1 px). Metrics are
``edgead.metrics.evaluate`` (raw maps; masks by ``mask_at``). The fit split is the training pipeline's (80 % of
train/good, seed 0). Rows are appended to OUT.jsonl; categories already there are skipped (resumable). These are
torch-side measurements of the map; docs/benchmarks.md gives the exported bundles' numbers beside them.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from edgead.convert.export import Preprocess
from edgead.data import Color, load_image, load_mask, scan_category
from edgead.metrics import evaluate, mask_at
from edgead.models.backbone import build_backbone
from edgead.models.common import GaussianSmoothing, squared_distances
from edgead.models.patchcore.coreset import greedy_coreset
from edgead.train.pipeline import holdout_split, validation_count

HW = (256, 256)
LAYERS = ["block0", "block1", "block2", "block3", "block4"]
VARIANTS = {  # name: layers, grid layer, per-layer scaling, coreset ratio, pooling, knn
    "before: b2+b4": dict(layers=["block2", "block4"], grid="block2"),
    "b2+b4 scaled": dict(layers=["block2", "block4"], grid="block2", scale=True),
    "b2+b4 on the stride-4 grid": dict(layers=["block2", "block4"], grid="block1", scale=True),
    "b2+b3": dict(layers=["block2", "block3"], grid="block2"),
    "b2+b3 scaled": dict(layers=["block2", "block3"], grid="block2", scale=True),
    "b2+b3 scaled, no pooling": dict(layers=["block2", "block3"], grid="block2", scale=True, pool=1),
    "b2+b3+b4 scaled": dict(layers=["block2", "block3", "block4"], grid="block2", scale=True),
    "b1+b2+b3 scaled @stride 8": dict(layers=["block1", "block2", "block3"], grid="block2", scale=True),
    "b1+b2+b3 scaled @stride 4, 2.5 %": dict(layers=["block1", "block2", "block3"], grid="block1", scale=True,
                                             ratio=0.025),
    "after: b1+b2 scaled @stride 4, 2.5 %": dict(layers=["block1", "block2"], grid="block1", scale=True, ratio=0.025),
    "b0+b1+b2 scaled @stride 4, 2.5 %": dict(layers=["block0", "block1", "block2"], grid="block1", scale=True,
                                             ratio=0.025),
    "b1+b2 scaled @stride 4, 5 %": dict(layers=["block1", "block2"], grid="block1", scale=True, ratio=0.05),
    "b1+b2 @stride 4, 2.5 %, pool 5": dict(layers=["block1", "block2"], grid="block1", scale=True, ratio=0.025, pool=5),
    "b1+b2 @stride 4, 2.5 %, 3-NN map": dict(layers=["block1", "block2"], grid="block1", scale=True, ratio=0.025,
                                             knn=3),
}


def features(backbone, images, pre) -> dict[str, torch.Tensor]:
    out = {name: [] for name in LAYERS}
    with torch.no_grad():
        for im in images:
            f = backbone.features(pre(torch.from_numpy(np.ascontiguousarray(im))[None]), LAYERS)
            for name in LAYERS:
                out[name].append(f[name])
    return {k: torch.cat(v) for k, v in out.items()}


def embed(f, v, scale) -> torch.Tensor:
    grid = f[v["grid"]].shape[-2:]
    maps = []
    for name in v["layers"]:
        m = f[name]
        pool = v.get("pool", 3)
        if pool > 1:
            m = F.avg_pool2d(m, pool, 1, pool // 2)
        if m.shape[-2] > grid[0]:
            m = F.adaptive_avg_pool2d(m, grid)
        elif m.shape[-2:] != grid:
            m = F.interpolate(m, size=grid, mode="bilinear", align_corners=False)
        maps.append(m / scale[name] if v.get("scale") else m)
    return torch.cat(maps, 1)


def run(category: Path, names: list[str]) -> list[dict]:
    backbone = build_backbone("efficientnet_lite0")
    backbone.fix_input_hw(HW)
    cat = scan_category(category)
    color = Color(cat.color)
    pre = Preprocess(HW, [0.5] * 3, [0.5] * 3, color.channels)
    fit_idx, _ = holdout_split(len(cat.train), validation_count(len(cat.train), 0.2), 0)
    train_f = features(backbone, [load_image(cat.train[i].path, color) for i in fit_idx], pre)
    test_images = [load_image(s.path, color) for s in cat.test]
    test_f = features(backbone, test_images, pre)
    masks = np.stack([mask_at(load_mask(s, im.shape[:2]), HW) for s, im in zip(cat.test, test_images)])
    labels = np.array([s.label for s in cat.test])
    scale = {n: float(F.avg_pool2d(train_f[n], 3, 1, 1).norm(dim=1).mean()) for n in LAYERS}
    rows = []
    for name in names:
        v, t0 = VARIANTS[name], time.perf_counter()
        train_e = embed(train_f, v, scale)
        dim = train_e.shape[1]
        bank_rows = train_e.permute(0, 2, 3, 1).reshape(-1, dim)
        bank = bank_rows[greedy_coreset(bank_rows, math.ceil(v.get("ratio", 0.1) * len(bank_rows)), progress=False)]
        test_e = embed(test_f, v, scale)
        gh, gw = test_e.shape[-2:]
        k = v.get("knn", 1)
        with torch.no_grad():
            d = torch.stack([squared_distances(p, bank).topk(k, dim=-1, largest=False).values.sqrt().mean(-1)
                             for p in test_e.permute(0, 2, 3, 1).reshape(len(test_e), -1, dim)])
        patch = d.reshape(-1, 1, gh, gw)
        scores = patch.flatten(1).amax(1).numpy()
        for mode in ("bilinear", "nearest"):
            up = F.interpolate(patch, size=HW, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
            for sigma in (4.0, 2.0, 1.0):
                amap = GaussianSmoothing(sigma, HW)(up).squeeze(1).numpy()
                m = evaluate(labels, scores, masks, amap)
                rows.append({"category": cat.name, "variant": name, "upsample": mode, "sigma": sigma,
                             "image_auroc": m["image_auroc"], "pixel_auroc": m["pixel_auroc"], "aupro": m["aupro"],
                             "bank": len(bank), "seconds": round(time.perf_counter() - t0, 1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("categories", nargs="+")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    done = {json.loads(line)["category"] for line in out.read_text().splitlines()} if out.exists() else set()
    for category in args.categories:
        if Path(category).name in done:
            continue
        rows = run(Path(category), args.variants)
        with out.open("a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
        print(f"{Path(category).name}: {len(rows)} rows", flush=True)


if __name__ == "__main__":
    main()
