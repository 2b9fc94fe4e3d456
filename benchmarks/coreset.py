"""PatchCore's greedy coreset selection: this checkout's against a baseline revision's, on real patch features.

Usage:
    python benchmarks/coreset.py [--baseline REV] [--category magnetic_tile] [--images 100] [--ratio 0.025]
                                 [--rounds 2] [--cache DIR]

The features are `coarse`'s (blocks 2+4, stride-8 grid, unscaled) of a seeded ``--images`` of the category's
training images at 256x256 (benchmarks/factors.py's feature cache). Both selections run in this process, in
alternating order, on one torch thread; the figure is the process CPU time of each (robust to the load of a shared
machine; wall time beside it). Also printed: whether both picked the same rows, and if not, the coverage radius of
each (the largest distance of a point to its nearest selected row, in the projected space the selection uses), the
quantity greedy k-center selection keeps small.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATASETS  # noqa: E402
from factors import VARIANTS, FeatureStore, build, fit_images, index_batches  # noqa: E402

from edgead.data import scan_category  # noqa: E402
from edgead.models.patchcore import coreset as this  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def baseline_module(rev: str):
    """``edgead/models/patchcore/coreset.py`` as of ``rev``, imported beside this checkout's."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:edgead/models/patchcore/coreset.py"],
                          check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_coreset.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("baseline_coreset", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def patch_features(category: str, images: int, cache: Path) -> torch.Tensor:
    v = VARIANTS["patchcore old default (blocks 2+4, unscaled, 10 %)"]
    cat = scan_category(DATASETS / category)
    store = FeatureStore(cache / category, v.input, "train", [s.path for s in fit_images(cat, images, 0.0)])
    model, _ = build(v)
    store.ensure(sorted(set(model.layers)))
    model.backbone.features = store.features
    with torch.no_grad():
        raw = torch.cat([model.raw_rows(x) for x in index_batches(len(store), v.input.hw, 8)])
        model.set_layer_scale(raw)
        return model.rows_to_features(raw)


def coverage_radius(points: torch.Tensor, picked: torch.Tensor) -> float:
    centres = points[picked]
    return max(float(torch.cdist(points[s : s + 8192], centres).min(1).values.max())
               for s in range(0, points.shape[0], 8192))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="main")
    ap.add_argument("--category", default="magnetic_tile")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--ratio", type=float, default=0.025)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/edgead-factors"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    features = patch_features(args.category, args.images, args.cache)
    count = int(args.ratio * features.shape[0])
    impls = {"baseline": baseline_module(args.baseline), "this": this}
    times: dict[str, list[float]] = {name: [] for name in impls}
    picked = {}
    for r in range(args.rounds):
        for name in (list(impls) if r % 2 else list(impls)[::-1]):
            cpu, wall = time.process_time(), time.perf_counter()
            picked[name] = impls[name].greedy_coreset(features, count, progress=False)
            times[name].append(time.process_time() - cpu)
            print(f"{name}: {times[name][-1]:.1f} CPU s, {time.perf_counter() - wall:.1f} s wall", flush=True)
    base, mine = min(times["baseline"]), min(times["this"])
    print(f"{features.shape[0]} patches, {count} rows: baseline {base:.1f} CPU s, this {mine:.1f} CPU s "
          f"(best of {args.rounds}), {base / mine:.1f}x")
    if torch.equal(picked["baseline"], picked["this"]):
        print("the same rows, in the same order")
        return
    first = int((picked["baseline"] != picked["this"]).nonzero()[0])
    projected = this.random_projection(features.float(), 128, 0)
    print(f"the selections part at row {first} of {count} (float rounding of near ties); coverage radius: baseline "
          f"{coverage_radius(projected, picked['baseline']):.4f}, this {coverage_radius(projected, picked['this']):.4f}")


if __name__ == "__main__":
    main()
