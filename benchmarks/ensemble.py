"""An ensemble of saved maps: the mean of several models' normalised maps and image scores, with factors.py's metrics.

Usage:
    python benchmarks/ensemble.py OUT.jsonl --maps DIR --members "VARIANT" "VARIANT" ... [--category magnetic_tile]
                                  [--train 100] [--val-fraction F] [--weights W ...] [--cache DIR]

The members are rows that ``benchmarks/factors.py --maps DIR`` saved (same category, fit images and test split; a
re-smoothed row is named as factors.py names it, e.g. ``"patchcore coarse, sigma 16 (re-smoothed)"``). Each
member's maps are brought to the first member's resolution (bilinear) and normalised without labels: minus the
median of all its test pixels, over the spread to their 99th percentile; image scores the same over the test
scores. The normalisation reads the unlabelled test set (transductive): a station would take the statistics from
held-out good images instead, so read a gain here as an upper bound of what the ensemble gives. Rows: the
ensemble with the image score ``model`` (the weighted mean of the members' normalised scores), ``max`` and
``smoothed-max`` of the ensemble map, appended to OUT.jsonl.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATASETS  # noqa: E402
from factors import FeatureStore, Input, Variant, fit_images, maps_file, metric_rows  # noqa: E402

from edgead.data import scan_category  # noqa: E402


def normalise(values: np.ndarray) -> np.ndarray:
    """``(v - median) / (p99 - median)`` over all of ``values`` (label-free; a constant input gives zeros)."""
    flat = values.astype(np.float32).ravel()
    mid, top = np.quantile(flat, [0.5, 0.99])
    return (values.astype(np.float32) - mid) / max(float(top - mid), 1e-12)


def combine(members: list[tuple[np.ndarray, np.ndarray]], weights: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The weighted mean of the members' normalised ``(scores, maps)``, maps at the first member's resolution."""
    hw = members[0][1].shape[1:]
    total_s, total_m = 0.0, 0.0
    for (scores, maps), w in zip(members, weights):
        if maps.shape[1:] != hw:
            maps = F.interpolate(torch.from_numpy(maps.astype(np.float32))[:, None], size=hw, mode="bilinear",
                                 align_corners=False)[:, 0].numpy()
        total_s = total_s + w * normalise(scores)
        total_m = total_m + w * normalise(maps)
    norm = float(sum(weights))
    return total_s / norm, total_m / norm


def ensemble_rows(cat, cache: Path, maps_dir: Path, n_fit: int, names: list[str], weights: list[float]
                  ) -> list[dict]:
    """The ensemble's rows (factors.py's metrics) from the members' saved maps; the first member's input setting."""
    members = []
    for name in names:
        path = maps_file(maps_dir, {"category": cat.name, "n_fit": n_fit, "n_test": len(cat.test), "variant": name})
        if not path.is_file():
            raise SystemExit(f"no saved maps for {name!r} ({path}): run benchmarks/factors.py --maps {maps_dir}")
        data = np.load(path)
        members.append((data["scores"], data["maps"]))
        if not members[1:]:
            fields = json.loads(str(data["input"]))
            inp = Input(**{**fields, "hw": tuple(fields["hw"]), "tile": fields["tile"] and tuple(fields["tile"])})
    scores, maps = combine(members, weights)
    v = Variant("ensemble", {}, inp, ("model", "max", "smoothed-max"))
    store = FeatureStore(cache, v.input, "test", [s.path for s in cat.test])
    label = " + ".join(f"{w:g} x {n}" for n, w in zip(names, weights))
    base = {"category": cat.name, "model": "ensemble", "input": {"hw": list(v.input.hw)}, "n_fit": n_fit,
            "n_test": len(cat.test), "variant": f"ensemble: {label}", "params": {"members": names, "weights": weights}}
    return metric_rows(cat, store, v, scores, maps, base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--maps", type=Path, required=True, metavar="DIR")
    ap.add_argument("--members", nargs="+", required=True, metavar="VARIANT")
    ap.add_argument("--weights", type=float, nargs="*", default=None)
    ap.add_argument("--category", default="magnetic_tile")
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--val-fraction", type=float, default=0.0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/edgead-factors"))
    args = ap.parse_args()
    weights = args.weights or [1.0] * len(args.members)
    if len(weights) != len(args.members):
        raise SystemExit(f"{len(weights)} weights for {len(args.members)} members")
    cat = scan_category(DATASETS / args.category)
    rows = ensemble_rows(cat, args.cache / cat.name, args.maps, len(fit_images(cat, args.train, args.val_fraction)),
                         args.members, weights)
    with args.out.open("a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    for r in rows:
        print(f"{r['variant']} [{r['score']}]: image {100 * r['image_auroc']:.1f} pixel {100 * r['pixel_auroc']:.1f} "
              f"aupro {100 * r['aupro']:.1f} good-negatives {100 * r['pixel_auroc_good_negatives']:.1f} "
              + " ".join(f"{k} {100 * a:.1f}" for k, a in r["pixel_auroc_by_type"].items()), flush=True)


if __name__ == "__main__":
    main()
