"""Why a trained model is near chance on a category: cheap diagnostics of the learning curves' cached bundles.

Usage:
    nice -n 19 python benchmarks/diagnose.py --cache /work/cache/curves [--points "piade|quick|20" ...]

For each finished point of ``CACHE/points.json`` (or those named) the point's bundle is evaluated again on the
category's test split (ONNX Runtime FP32, no training), and its image scores are split three ways:

- **orientation**: image AUROC on the landscape tiles and on the portrait tiles separately. The model input has one
  aspect ratio (magnetic_tile: 256 x 224, portrait); a landscape tile is squashed into it. A large gap between the
  two says the squashing costs accuracy (``edgead train --orientation`` turns every image one way first).
- **lighting**: the correlation, over the good test images, of the image score with the image's mean grey level.
  magnetic_tile photographs each tile under up to seven lightings; a score that follows the brightness of good
  tiles is measuring the lighting, not the defect.
- **defect type**: image AUROC of each defect type against all good images.

Results: ``CACHE/diagnosis.json`` (one entry per point, kept across runs) and the ``curves-diagnosis`` section of
docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import categories, save_json, subset_category, update_section  # noqa: E402

from edgead.metrics.image import image_auroc  # noqa: E402


def diagnose(labels, scores, landscape, mean_grey, defect_types) -> dict:
    """The three splits of one bundle's image scores (module docstring); AUROCs and correlation as fractions.

    Args:
        labels: 0 good, 1 defective, per test image.
        scores: the image scores.
        landscape: True where the image is wider than high.
        mean_grey: the image's mean grey level (0-255).
        defect_types: ``"good"`` or the defect type, per image.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    landscape, mean_grey, types = np.asarray(landscape, bool), np.asarray(mean_grey, np.float64), np.asarray(defect_types)
    good = labels == 0

    def auroc(mask: np.ndarray) -> float | None:
        both = labels[mask]
        return image_auroc(both, scores[mask]) if 0 < both.sum() < both.size else None

    corr = np.corrcoef(scores[good], mean_grey[good])[0, 1] if good.sum() > 2 else float("nan")
    return {"image_auroc": auroc(np.ones_like(good)), "landscape": auroc(landscape), "portrait": auroc(~landscape),
            "n_landscape": int(landscape.sum()), "n_portrait": int((~landscape).sum()),
            "good_score_grey_corr": None if np.isnan(corr) else float(corr),
            "by_type": {t: auroc(good | (types == t)) for t in sorted(set(types[~good].tolist()))}}


def diagnose_bundle(bundle_dir: Path, data: Path) -> dict:
    """Evaluate one bundle on ``data``'s test split and :func:`diagnose` its scores."""
    import cv2

    from edgead.evaluation import evaluate_bundle

    result = evaluate_bundle(bundle_dir, data)
    shapes, greys = [], []
    for s in result.samples:
        image = cv2.imread(str(s.path), cv2.IMREAD_GRAYSCALE)
        shapes.append(image.shape)
        greys.append(float(image.mean()))
    return diagnose([s.label for s in result.samples], result.raw_scores, [w > h for h, w in shapes], greys,
                    [s.defect_type for s in result.samples])


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def report(diagnoses: dict[str, dict]) -> str:
    types = sorted({t for d in diagnoses.values() for t in d["by_type"]})
    lines = ["Produced by `nice -n 19 python benchmarks/diagnose.py --cache DIR` from the learning curves' bundles "
             "(no training; image AUROC in percent on the fixed test split, ONNX Runtime FP32). landscape / portrait: "
             "the AUROC on the tiles of each orientation (the model input is 256 x 224, portrait: landscape tiles are "
             "squashed into it); r(score, grey): the correlation of the image score with the tile's mean grey level "
             "over the good test tiles (the lighting); then each defect type against all good tiles.", "",
             "| model | preset | budget | image AUROC | landscape (n) | portrait (n) | r(score, grey) good | "
             + " | ".join(types) + " |", "|---" * (7 + len(types)) + "|"]
    for key in sorted(diagnoses):
        d = diagnoses[key]
        r = "-" if d["good_score_grey_corr"] is None else f"{d['good_score_grey_corr']:+.2f}"
        model, preset, budget = key.split("|")
        lines.append(f"| {model} | {preset} | {budget} | {_pct(d['image_auroc'])} | {_pct(d['landscape'])} ({d['n_landscape']}) | "
                     f"{_pct(d['portrait'])} ({d['n_portrait']}) | {r} | "
                     + " | ".join(_pct(d["by_type"].get(t)) for t in types) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from curves import bundle_dir, load_points

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="the learning curves' cache (benchmarks/curves.py --cache)")
    ap.add_argument("--points", nargs="+", default=None, help="point keys (model|preset|budget); default: all")
    ap.add_argument("--category", default="magnetic_tile")
    ap.add_argument("--max-train", type=int, default=100, help="the curves' seeded subset of N training images")
    ap.add_argument("--report", action="store_true", help="only write the docs section from CACHE/diagnosis.json")
    args = ap.parse_args()
    cache = Path(args.cache)
    path = cache / "diagnosis.json"
    diagnoses = json.loads(path.read_text()) if path.is_file() else {}
    if not args.report:
        points = load_points(cache)
        (cat,) = categories([args.category])
        data = subset_category(cat, args.max_train or None, cache)
        for key in args.points or sorted(points):
            p = points[key]
            if key in diagnoses or p.get("same_as"):
                continue
            diagnoses[key] = diagnose_bundle(bundle_dir(cache, p), data)
            save_json(path, diagnoses)
            print(f"{key}: {json.dumps(diagnoses[key])}", flush=True)
    update_section("curves-diagnosis", report(diagnoses))


if __name__ == "__main__":
    main()
