"""edgead against anomalib on the same images, weights and resolution: per-image time on decoded frames.

Usage:
    python benchmarks/peers.py [--categories piped_pa_brg01_rl magnetic_tile] [--models padim patchcore]
                               [--pairs CATEGORY:MODEL ...] [--max-train 100] [--max-test 60] [--timing-images 24] [--rounds 6]
                               [--peers-venv .venv-peers] [--cache DIR] [--no-docs]
    make bench-peers

anomalib needs torch with torchvision, which the build venv's pinned torch cannot host, so it gets a virtualenv
of its own (``--peers-venv``, created and filled on first use from ``benchmarks/peers-requirements.txt``, with
edgead installed into it without dependencies, only for its EfficientNet-Lite0 module and weights loader). Per
category (a seeded subset of the real images in ../shared/datasets: ``--max-train`` good training images,
``--max-test`` test images, stratified; symlinks, nothing copied) and model:

- edgead: ``train`` at 256x256 (PatchCore with ``--preset coarse``, whose layers anomalib's PatchCore can take: see
  ``PRESETS``), then ``convert --target x86-cpu --precision auto`` with the subset's test split as the accuracy gate's
  check set and its training images as the calibration set; the chosen artifact is timed.
- anomalib (``benchmarks/peers_anomalib.py`` in the peers venv): its PaDiM / PatchCore with edgead's Lite0 module
  and weights at edgead's layers and settings (``PRESETS``), 256x256, mean/std 0.5, trained by anomalib's Engine on the
  same training images, tested on the same test split (image AUROC), exported by its own OpenVINO and ONNX
  exporters (static 256x256 input). Timed: ``OpenVINOInferencer.predict`` on the CPU, and the ONNX file on ONNX
  Runtime.

Timing: the same ``--timing-images`` test images, decoded by each process with ``cv2.imread``; each path runs in
its own process, and the processes alternate (``--rounds`` rounds, the order rotated every round), so the machine's
load falls on all alike. Reported separately: decode, resize (anomalib's static models take 256x256: ``cv2.resize``
on the host; edgead's graph resizes inside, so its resize is part of its inference) and inference; the figure
compared is resize + inference on a decoded frame, the station's case. Results: benchmarks/results/peers.json and
the ``peers`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATASETS, ROOT, machine, save_json, stats_ms, update_section  # noqa: E402

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "peers-requirements.txt"
SIZE = 256
PATHS = ("edgead", "anomalib-openvino", "anomalib-onnx")
TORCH_PAIR = {"x86_64": ["torch==2.14.1", "torchvision==0.29.1"], "aarch64": ["torch==2.9.1", "torchvision==0.24.1"]}
"""torch and torchvision that install together from this machine kind's local disk (see the machine notes)."""
SOURCES = ("edgead", "convert", "calibration")
"""The project's code that trains, converts and runs a model: a change to any of its ``.py`` files makes the models
cached under ``--cache`` stale (the cache once kept an artifact that an older ``--precision auto`` had chosen)."""
CONVERT = {"precision": "auto", "latency_runs": 20}
"""How edgead's bundle is converted (with the subset's test split as the gate's check set)."""
PRESETS = {"padim": None, "patchcore": "coarse"}
"""edgead's preset per model, the one whose settings ``peers_anomalib.py`` gives anomalib's model (its ``LAYERS``):
PaDiM's defaults; for PatchCore ``coarse`` (blocks 2+4 on the stride-8 grid, unscaled, 10 % coreset, 9 neighbours),
since anomalib's PatchCore brings every layer to the first layer's grid and cannot scale layers as edgead's
default (blocks 0-2 on the stride-4 grid, scaled, 2.5 %) does."""


def code_key(*parts, root: Path = ROOT, files: tuple[Path, ...] = ()) -> str:
    """A cache key: sha256 of ``parts`` (settings, as JSON), of the ``.py`` files under ``root``'s
    :data:`SOURCES` and of ``files`` (their paths relative to ``root`` and their bytes)."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for f in sorted(f for d in SOURCES for f in (root / d).rglob("*.py")) + list(files):
        h.update(b"\0" + str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def cached(path: Path, key: str) -> dict | None:
    """The result cached at ``path`` when it was made with ``key``; None when absent or made by other code or
    settings (or by a revision that wrote no key)."""
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if result.get("cache_key") == key:
        return result
    print(f"peers cache: {path} was made by other code or settings, redoing it", file=sys.stderr, flush=True)
    return None


def ensure_peers_venv(venv: Path) -> Path:
    """Create and fill the peers' virtualenv once (a stamp holds the hash of what it was filled with)."""
    python = venv / "bin" / "python"
    torch_pair = TORCH_PAIR.get(platform.machine())
    if torch_pair is None:
        raise SystemExit(f"no known torch/torchvision pair for {platform.machine()}")
    wanted = hashlib.sha256((REQUIREMENTS.read_text() + " ".join(torch_pair)).encode()).hexdigest()
    stamp = venv / ".edgead-peers"
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    print(f"peers venv: installing anomalib into {venv} (several GB, once)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *torch_pair], check=True)
    subprocess.run([*pip, *torch_pair, "-r", str(REQUIREMENTS)], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    stamp.write_text(wanted)
    return python


def subset(root: Path, work: Path, max_train: int, max_test: int, seed: int = 0) -> Path:
    """A seeded subset of an MVTec-layout category (symlinks): ``max_train`` good training images and
    ``max_test`` test images, good and defective in their proportions."""
    out = work / f"{root.name}-t{max_train}-e{max_test}"
    if out.is_dir():
        return out
    rng = np.random.default_rng(seed)
    good = sorted(p for p in (root / "train" / "good").iterdir() if p.is_file())
    pick = [good[i] for i in sorted(rng.choice(len(good), min(max_train, len(good)), replace=False))]
    tests = sorted(p for p in (root / "test").rglob("*") if p.is_file())
    labels = np.array([p.parent.name != "good" for p in tests])
    keep = []
    for lab in (False, True):
        idx = np.flatnonzero(labels == lab)
        n = max(1, round(max_test * len(idx) / len(tests))) if len(tests) > max_test else len(idx)
        keep += list(rng.choice(idx, size=min(n, len(idx)), replace=False))
    for src in pick + [tests[i] for i in sorted(keep)]:
        dst = out / src.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(src.resolve())
        if dst.parent.parent.name == "test" and dst.parent.name != "good":
            for mask in (root / "ground_truth" / dst.parent.name).glob(f"{src.stem}_mask.*"):
                m = out / mask.relative_to(root)
                m.parent.mkdir(parents=True, exist_ok=True)
                m.symlink_to(mask.resolve())
    return out


def edgead_artifact(data: Path, model: str, work: Path) -> dict:
    """Train edgead's bundle and convert it with ``--precision auto``; the chosen artifact and its gate."""
    out = work / f"edgead-{model}"
    summary = out / "summary.json"
    key = code_key(model, SIZE, CONVERT, PRESETS[model])
    if (result := cached(summary, key)) is not None:
        return result
    shutil.rmtree(out, ignore_errors=True)
    from edgead.convert.pipeline import ConvertOptions, convert
    from edgead.train.pipeline import TrainConfig, train

    t = time.perf_counter()
    bundle = train(data, out / "fp32", TrainConfig(model=model, image_size=(SIZE, SIZE), evaluate=False,
                                                       preset=PRESETS[model]),
                   progress=False).bundle
    fit_s = time.perf_counter() - t
    calib = out / "calib.txt"
    calib.write_text("\n".join(str(p) for p in sorted((data / "train" / "good").iterdir())) + "\n")
    report = convert(bundle, "x86-cpu", out / "auto", ConvertOptions(**CONVERT, calib=calib, check=data))
    chosen = next(c for c in report.candidates if c.name == report.chosen)
    g = chosen.gate
    result = {"bundle": str(out / "auto"), "fit_s": fit_s, "chosen": report.chosen, "backend": report.backend,
              "gate": "pass" if chosen.passed else "FAIL", "image_auroc": g.image_auroc if g else None,
              "image_auroc_delta_pt": g.image_auroc_delta_pt if g else None,
              "candidates": [{"name": c.name, "median_ms": c.latency_median_ms,
                              "gate": "pass" if c.passed else "FAIL"} for c in report.candidates],
              "cache_key": key}
    summary.write_text(json.dumps(result, indent=2))
    return result


def time_edgead(bundle: str, images: list[str], rounds: int) -> dict:
    """This process's timing of the edgead artifact (run as ``peers.py _time-edgead``)."""
    import cv2

    from edgead.bundle import load_bundle
    from edgead.infer import open_backend

    b = load_bundle(bundle)
    flag = cv2.IMREAD_GRAYSCALE if b.input_spec.channels == 1 else cv2.IMREAD_COLOR

    def decode(path):
        img = cv2.imread(path, flag)
        return img[:, :, None] if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    out = {"decode": [], "resize": [], "infer": [], "backend": None}
    with open_backend(b) as eng:
        out["backend"] = eng.name
        for path in images[:3]:
            eng.infer(decode(path)[None])
        for _ in range(rounds):
            for path in images:
                t0 = time.perf_counter()
                frame = decode(path)
                t1 = time.perf_counter()
                eng.infer(frame[None])  # the graph resizes to 256x256 inside
                t2 = time.perf_counter()
                out["decode"].append(t1 - t0)
                out["resize"].append(0.0)
                out["infer"].append(t2 - t1)
    return out


def run_path(path: str, peers_python: Path, work: Path, edgead: dict, images_file: Path, rounds: int) -> dict:
    if path == "edgead":
        cmd = [sys.executable, str(HERE / "peers.py"), "_time-edgead", edgead["bundle"], str(images_file),
               str(rounds)]
    else:
        cmd = [str(peers_python), str(HERE / "peers_anomalib.py"), "time", "--path", path.split("-")[1], "--out",
               str(work), "--images", str(images_file), "--rounds", str(rounds), "--size", str(SIZE)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=work)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(category: Path, model: str, args, peers_python: Path, cache: Path) -> dict:
    data = subset(category, cache, args.max_train, args.max_test)
    work = cache / f"{data.name}-{model}"
    work.mkdir(parents=True, exist_ok=True)
    edgead = edgead_artifact(data, model, work)
    trained = work / "train.json"
    key = code_key(model, SIZE, files=(HERE / "peers_anomalib.py", REQUIREMENTS))
    anomalib = cached(trained, key)
    if anomalib is None:
        for stale in ("engine", "export"):
            shutil.rmtree(work / stale, ignore_errors=True)
        subprocess.run([str(peers_python), str(HERE / "peers_anomalib.py"), "train", "--model", model, "--data",
                        str(data), "--out", str(work), "--size", str(SIZE)], check=True, cwd=work,
                       stdout=subprocess.DEVNULL)
        anomalib = {**json.loads(trained.read_text()), "cache_key": key}
        trained.write_text(json.dumps(anomalib))
    tests = sorted(p for p in (data / "test").rglob("*") if p.is_file() or p.is_symlink())
    images = [str(tests[i]) for i in np.linspace(0, len(tests) - 1, min(args.timing_images, len(tests))).astype(int)]
    images_file = work / "timing-images.txt"
    images_file.write_text("\n".join(images) + "\n")
    samples = {p: {"decode": [], "resize": [], "infer": []} for p in PATHS}
    backend = None
    for r in range(args.rounds):
        order = PATHS[r % len(PATHS):] + PATHS[:r % len(PATHS)]
        for path in order:
            got = run_path(path, peers_python, work, edgead, images_file, 1)
            backend = got.get("backend", backend)
            for k in samples[path]:
                samples[path][k] += got[k]
    row = {"category": category.name, "model": model, "n_train": len(list((data / "train" / "good").iterdir())),
           "n_test": len(tests), "timed_images": len(images), "rounds": args.rounds, "edgead": edgead,
           "edgead_backend": backend, "anomalib": {k: anomalib[k] for k in ("fit_s", "image_auroc")}, "paths": {}}
    for path, s in samples.items():
        total = np.asarray(s["resize"]) + np.asarray(s["infer"])
        row["paths"][path] = {k: stats_ms(v) for k, v in s.items()}
        row["paths"][path]["decoded_frame"] = stats_ms(total)
    base = row["paths"]["edgead"]["decoded_frame"]
    for path in PATHS:
        d = row["paths"][path]["decoded_frame"]
        d["ratio_median"] = d["median_ms"] / base["median_ms"]
        d["ratio_p99"] = d["p99_ms"] / base["p99_ms"]
    return row


def render(rows: list[dict], cmd: str, load: str) -> str:
    lines = [f"Produced by `{cmd}` on {machine()} ({load}). Same images (a seeded subset of the real category, "
             f"256x256 model resolution), same EfficientNet-Lite0 module and ImageNet weights, the same layers "
             "and settings on both sides (edgead's defaults; for PatchCore its `coarse` preset, blocks 2+4, which "
             "anomalib's PatchCore can take). Each path is its own process; the processes alternate, round by "
             "round. Per image, milliseconds, median / p99. \"decoded frame\" = resize + inference, the station's "
             "case (anomalib's static 256x256 models need the host resize; edgead's graph resizes inside). "
             "\"x edgead\": how many times edgead's time the path takes on a decoded frame (median / p99). Gate: "
             "edgead's accuracy gate on the chosen artifact against its FP32 bundle (image AUROC on the test "
             "subset); anomalib: its own image AUROC on the same test subset.", "",
             "| category | model | path | artifact | decode | resize | inference | decoded frame | x edgead | "
             "image AUROC | gate |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        e = row["edgead"]
        for path in PATHS:
            p = row["paths"][path]
            d = p["decoded_frame"]
            if path == "edgead":
                artifact = f"`{e['chosen']}` ({row['edgead_backend']})"
                auroc = f"{100 * e['image_auroc']:.2f}" if e["image_auroc"] is not None else "n/a"
                gate = f"{e['gate']} ({e['image_auroc_delta_pt']:+.2f} pt)" if e["image_auroc_delta_pt"] is not None \
                    else e["gate"]
            else:
                artifact = "OpenVINO IR (FP32)" if path.endswith("openvino") else "ONNX on ONNX Runtime"
                auroc, gate = f"{100 * row['anomalib']['image_auroc']:.2f}", "(anomalib: none)"
            lines.append(
                f"| {row['category']} ({row['n_train']} train, {row['n_test']} test) | {row['model']} | {path} | "
                f"{artifact} | {p['decode']['median_ms']:.2f} | {p['resize']['median_ms']:.2f} | "
                f"{p['infer']['median_ms']:.2f} / {p['infer']['p99_ms']:.2f} | {d['median_ms']:.2f} / "
                f"{d['p99_ms']:.2f} | {d['ratio_median']:.2f}x / {d['ratio_p99']:.2f}x | {auroc} | {gate} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "_time-edgead":  # a timing process (see run_path)
        result = time_edgead(sys.argv[2], Path(sys.argv[3]).read_text().split(), int(sys.argv[4]))
        sys.stdout.write(json.dumps(result) + "\n")
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--categories", nargs="+", default=["piped_pa_brg01_rl", "magnetic_tile"])
    ap.add_argument("--models", nargs="+", default=["padim", "patchcore"], choices=["padim", "patchcore"])
    ap.add_argument("--pairs", nargs="+", metavar="CATEGORY:MODEL",
                    help="measure these pairs only (default: every category with every model)")
    ap.add_argument("--max-train", type=int, default=100)
    ap.add_argument("--max-test", type=int, default=60)
    ap.add_argument("--timing-images", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--peers-venv", type=Path, default=Path(os.environ.get("EDGEAD_PEERS_VENV", ROOT / ".venv-peers")))
    ap.add_argument("--cache", type=Path, help="keep trained models and exports here between runs")
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    args = ap.parse_args()
    peers_python = ensure_peers_venv(args.peers_venv.resolve())
    pairs = [tuple(p.split(":", 1)) for p in args.pairs] if args.pairs else \
        [(c, m) for c in args.categories for m in args.models]
    cats = [DATASETS / c for c in dict.fromkeys(c for c, _ in pairs)]
    missing = [str(c) for c in cats if not (c / "train" / "good").is_dir()]
    if missing:
        raise SystemExit(f"no real images at {', '.join(missing)}: set EDGEAD_DATASETS or check out ../shared")
    load_before = Path("/proc/loadavg").read_text().split()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cache = (args.cache or Path(tmp)).resolve()
        cache.mkdir(parents=True, exist_ok=True)
        rows = []
        for name, model in pairs:
            rows.append(measure(DATASETS / name, model, args, peers_python, cache))
            r = rows[-1]
            print(f"{name} {model}: edgead {r['edgead']['chosen']} "
                  + ", ".join(f"{p} {r['paths'][p]['decoded_frame']['median_ms']:.2f} ms" for p in PATHS), flush=True)
    load = f"load average {load_before} before, {Path('/proc/loadavg').read_text().split()[0]} after"
    cmd = "python benchmarks/peers.py " + " ".join(sys.argv[1:])
    print(render(rows, cmd.strip(), load))
    if not args.no_docs:
        save_json(ROOT / "benchmarks" / "results" / "peers.json", {"machine": machine(), "load": load, "rows": rows})
        update_section("peers", render(rows, cmd.strip(), load))


if __name__ == "__main__":
    main()
