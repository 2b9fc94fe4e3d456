"""All models of the SDK side by side on the same real categories: accuracy, training time, CPU speed, INT8, size.

Usage:
    python benchmarks/models.py [--models patchcore padim ...] [--categories piped_pa_bdp01_tl ...]
                                [--max-train N] [--calib-max 100] [--runs 30] [--threads 2] [--cache DIR]
                                [--set KEY=VALUE ...] [--no-docs]

For each unsupervised model of the table (registry defaults; PatchCore keeps a 1 % coreset on categories with more
than 200 training images, as benchmarks/accuracy.py does) and each category:

- trains a bundle on ``train/good`` (``--max-train N``: a seeded subset of N images, stated in the table;
  ``--set KEY=VALUE``: a variant of the models that have that parameter, e.g. ``--set size=M`` for EfficientAD-M,
  a row of its own beside the defaults);
- evaluates it with ``evaluate_bundle`` on the fixed test split (ONNX Runtime FP32 on the CPU): image AUROC,
  pixel AUROC, AUPRO (30 % FPR);
- converts it with ``edgead.convert.pipeline.convert(..., "x86-cpu", "int8")``, calibrated on good training images
  (at most ``--calib-max``, seeded), and gates the INT8 bundle against the FP32 one on the test split (the check set
  of benchmarks/conversion.py: resized to the model resolution only where sizes vary) with the default tolerances;
- times FP32 and INT8 ONNX Runtime interleaved in this process (batch 1, ``--threads`` intra-op threads);
- counts the float values of the ONNX graph: ``weights`` and ``bank / statistics`` (see
  ``common.onnx_parameter_counts``), and the size of model.onnx.

``--cache DIR`` keeps the trained bundles (and their INT8 conversions) in DIR/<model>-<category>[-trainN]; a re-run
reuses them and reports the training time recorded in the bundle. The supervised capsnet is benchmarked by
benchmarks/capsnet.py (it needs labelled defects, moved out of the test split): its rows for these categories are
read from benchmarks/results/capsnet.json when it exists, marked as such, with a placeholder row otherwise.
Results: benchmarks/results/models.json (rewritten after every row) and the ``models`` section of
docs/benchmarks.md; ``--no-docs`` writes nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import params_for  # noqa: E402
from common import (ROOT, calibration_list, categories, machine, merge_rows, model_overrides,  # noqa: E402
                    onnx_parameter_counts, save_json, subset_category, update_section)
from conversion import DEFAULT_CATEGORIES, check_set, interleaved_latency  # noqa: E402

from edgead.config.loader import parse_set  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "models.json"
CAPSNET_RESULTS = ROOT / "benchmarks" / "results" / "capsnet.json"
BN_STATS = ("running_mean", "running_var", "num_batches_tracked")
KEY = ("model", "category", "variant", "preset")
"""A row is one model, category, ``--set`` variant (None: none) and preset (``--preset``; rows measured before
presets existed carry none and were measured at the registry defaults, which are the ``quick`` preset)."""


def unsupervised_models() -> list[str]:
    """Every model of the table trained on good images only (the default ``--models``)."""
    from edgead.models.registry import MODELS, Supervision

    return [name for name, spec in MODELS.items() if spec.supervision is Supervision.UNSUPERVISED]


def fitted_buffers(bundle) -> dict[str, np.ndarray]:
    """The model's registered buffers (banks, statistics) without batch-norm running statistics."""
    from edgead.models.registry import from_state

    state = dict(np.load(bundle.state_path, allow_pickle=False))
    model = from_state(bundle.model_type, bundle.meta.model.params, state)
    return {n: b.detach().cpu().numpy() for n, b in model.named_buffers() if n.rsplit(".", 1)[-1] not in BN_STATS}


def variant_name(params: dict) -> str | None:
    """``size=M`` for ``{"size": "M"}``: the row key and cache suffix of a variant; None at the defaults."""
    return ",".join(f"{k}={v}" for k, v in sorted(params.items())) or None


def _trained(model: str, cat: Path, data: Path, bdir: Path, params: dict, preset: str | None):
    """The cached bundle in ``bdir``, or a new one trained there; returns (bundle, trained_now)."""
    from edgead.bundle import load_bundle
    from edgead.train.pipeline import TrainConfig, train

    if (bdir / "edgead.yaml").is_file():
        return load_bundle(bdir), False
    cfg = TrainConfig(model=model, evaluate=False, params=params, preset=preset)
    return train(data, bdir, cfg, progress=False).bundle, True


def _int8(bundle, data: Path, out: Path, calib_max: int, work: Path):
    """The INT8 conversion of ``bundle`` for x86-cpu (cached in ``out``); no gate here, it runs on the check set."""
    from edgead.bundle import load_bundle
    from edgead.convert.pipeline import ConvertOptions, convert

    if not (out / "edgead.yaml").is_file():
        convert(bundle, "x86-cpu", out, ConvertOptions("int8", calib=calibration_list(data, calib_max, work),
                latency_runs=0))
    return load_bundle(out)


def bench_one(model: str, cat: Path, args, work: Path) -> dict:
    """Train (or reuse), evaluate, convert, gate, time and measure one (model, category)."""
    from edgead.convert.gate import compare, predict
    from edgead.evaluation import evaluate_bundle
    from edgead.infer import open_backend

    t0 = time.perf_counter()
    data = subset_category(cat, args.max_train, work)
    chosen = model_overrides(model, args.overrides)
    name = variant_name(chosen)
    key = f"{model}-{cat.name}" + (f"-train{args.max_train}" if data != cat else "") + (f"-{name}" if name else "")
    key += f"-{args.preset}" if args.preset else ""
    store = Path(args.cache) if args.cache else work
    params = {**params_for(model, cat), **chosen}
    bundle, trained_now = _trained(model, cat, data, store / key, params, args.preset)
    metrics = evaluate_bundle(bundle.root, data).metrics
    spec = bundle.input_spec
    check = check_set(data, spec, args.max_test)
    opts = {"providers": ["CPUExecutionProvider"], "intra_op_threads": args.threads}
    if args.no_int8:
        with open_backend(bundle.root, **opts) as fp32_eng:
            lat = interleaved_latency({"fp32": fp32_eng}, check.images[:1], args.runs)
        int8_fields = {"int8_ms": None, "gate": None, "int8_recipe": None, "int8_onnx_mb": None}
    else:
        int8 = _int8(bundle, data, store / f"{key}-int8", args.calib_max, work)
        with open_backend(bundle.root, **opts) as fp32_eng, open_backend(int8.root, **opts) as int8_eng:
            gate = compare(check.labels, predict(fp32_eng, check.images), predict(int8_eng, check.images),
                           masks=check.masks)
            lat = interleaved_latency({"fp32": fp32_eng, "int8": int8_eng}, check.images[:1], args.runs)
        conv = int8.meta.conversion.details
        int8_fields = {
            "int8_ms": lat["int8"],
            "gate": {"passed": gate.passed, "image_auroc_delta_pt": gate.image_auroc_delta_pt,
                     "pixel_auroc_delta_pt": gate.pixel_auroc_delta_pt, "agreement": gate.agreement,
                     "reasons": gate.reasons, "n_check": int(len(check.labels))},
            "int8_recipe": {"correction": conv.get("int8_correction", {}).get("kind", "none"),
                            "guard_band": conv.get("threshold_transfer", {}).get("guard_band", {}).get("kind", "none")},
            "int8_onnx_mb": int8.onnx_path.stat().st_size / 2**20}
    counts = onnx_parameter_counts(bundle.onnx_path, fitted_buffers(bundle))
    training = bundle.meta.training
    return {
        "model": model, "category": cat.name, "variant": name, "preset": args.preset or bundle.meta.training.preset,
        "input_hw": [spec.height, spec.width],
        "params": params, "n_train": training.n_images + (training.n_validation or 0),
        "max_train": args.max_train if data != cat else None, "train_s": training.seconds,
        "trained_now": trained_now,
        **{k: metrics.get(k) for k in ("image_auroc", "pixel_auroc", "aupro", "f1_max")},
        "fp32_ms": lat["fp32"], "threads": args.threads, "runs": args.runs, **int8_fields,
        "weights": counts["weights"], "bank": counts["bank"], "onnx_mb": bundle.onnx_path.stat().st_size / 2**20,
        "seconds": time.perf_counter() - t0,
    }


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


PLAIN_NOTE = (" ¹: measured before the INT8 feature bias correction and the threshold guard band "
              "(docs/conversion.md) were added: plain Q/DQ and the median threshold transfer.")


def _plain(r: dict) -> bool:
    """A row whose INT8 gate was measured before the feature bias correction (marked ¹ in the table)."""
    return r.get("gate") is not None and (r.get("int8_recipe") or {}).get("correction", "none") == "none"


def preset_of(r: dict) -> str:
    """The row's preset; ``quick²`` for rows measured at the registry defaults before presets existed (the
    defaults are the quick preset, unchanged), ``-`` for models without presets."""
    from edgead.models.registry import get_spec

    if r.get("preset"):
        return r["preset"]
    return "quick²" if get_spec(r["model"]).presets else "-"


PRESET_NOTE = (" ²: measured before presets existed, at the registry defaults, which are the `quick` preset "
               "unchanged.")


def _gate(r: dict) -> str:
    """The INT8 gate cell; ``not run`` for a row measured with ``--no-int8``."""
    g = r["gate"]
    if g is None:
        return "not run (--no-int8)"
    pix = "n/a" if g["pixel_auroc_delta_pt"] is None else f"{g['pixel_auroc_delta_pt']:+.2f}"
    return f"{'pass' if g['passed'] else 'FAIL'}{'¹' if _plain(r) else ''} ({g['image_auroc_delta_pt']:+.2f} / {pix})"


def _ms(stats: dict | None) -> str:
    return "-" if stats is None else f"{stats['median_ms']:.1f} / {stats['p99_ms']:.1f}"


def _row(r: dict) -> str:
    gate = _gate(r)
    notes = [f"{k}={v}" for k, v in r["params"].items()]  # the variant's --set values are among them
    notes += [f"{r['max_train']} train images"] if r.get("max_train") else []
    note = f" ({', '.join(notes)})" if notes else ""
    return (f"| {r['model']} | {preset_of(r)} | {r['category']}{note} | {r['input_hw'][0]}x{r['input_hw'][1]} | "
            f"{_pct(r['image_auroc'])} | {_pct(r['pixel_auroc'])} | {_pct(r['aupro'])} | {r['train_s']:.0f} | "
            f"{_ms(r['fp32_ms'])} | {_ms(r['int8_ms'])} | {gate} | {_count(r['weights'])} | "
            f"{_count(r['bank'])} | {r['onnx_mb']:.1f} |")


def capsnet_rows(category_names: list[str]) -> list[str]:
    """Table lines for capsnet from benchmarks/capsnet.py's results (its own reduced test split), or a placeholder."""
    rows = []
    if CAPSNET_RESULTS.is_file():
        rows = [r for r in json.loads(CAPSNET_RESULTS.read_text()).get("rows", [])
                if r.get("model") == "capsnet" and r.get("category") in category_names]
    if not rows:
        return ["| capsnet | - | supervised (`edgead train --labelled`): run benchmarks/capsnet.py | | | | | | | | | | "
                "| |"]
    return [f"| capsnet | - | {r['category']} ({100 * r['fraction']:.0f} % labelled defects in train; reduced test "
            f"split, see the capsnet section) | | {_pct(r.get('image_auroc'))} | {_pct(r.get('pixel_auroc'))} | "
            f"{_pct(r.get('aupro'))} | {r['train_s']:.0f} | | | | | | |" for r in rows]


def sort_rows(rows: list[dict]) -> list[dict]:
    """By category, then in the model table's order, then by preset (smallest first)."""
    from edgead.models.presets import Preset
    from edgead.models.registry import MODELS

    order, presets = list(MODELS), [p.value for p in Preset]
    return sorted(rows, key=lambda r: (r["category"], order.index(r["model"]) if r["model"] in order else len(order),
                                       presets.index(r.get("preset") or "quick")))


def markdown(rows: list[dict]) -> str:
    """The ``models`` section: one table; capsnet's rows (from its own script) at the end."""
    threads = rows[0]["threads"] if rows else "?"
    lines = [f"Produced by `python benchmarks/models.py [--preset NAME]` on {machine()}. Every model at the "
             "preset of its row (`edgead train --help`, `edgead models`), trained on train/good, evaluated with ONNX Runtime FP32 on the fixed test "
             "split (metrics in percent, AUPRO to 30 % FPR). ms/image: ONNX Runtime on the CPU, batch 1, "
             f"{threads} intra-op threads, FP32 and INT8 timed interleaved in one process (median / p99; the "
             "machine is shared, compare within a row). INT8 gate: the INT8 bundle against its FP32 bundle on the "
             "test split, Δ image / pixel AUROC in points (tolerances 0.5 / 1 pt, agreement >= 90 %, no new "
             "accepts, new rejects <= 10 % of the good images). weights: float values of the graph's trained and "
             "pretrained tensors (backbone included); bank / statistics: values fitted to the good images (memory "
             "banks, Gaussians, kNN banks, feature statistics), counted as stored in the graph. ONNX MB: the FP32 "
             "model.onnx." + (PLAIN_NOTE if any(_plain(r) for r in rows) else "")
             + (PRESET_NOTE if any(preset_of(r) == "quick²" for r in rows) else ""), "",
             "| model | preset | category | input | image AUROC | pixel AUROC | AUPRO | train s | FP32 ms | INT8 ms | "
             "INT8 gate (Δ img / pix pt) | weights | bank / statistics | ONNX MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(r) for r in rows]
    lines += capsnet_rows(sorted({r["category"] for r in rows}))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=None, help="default: every unsupervised model of the table")
    ap.add_argument("--categories", nargs="+", default=DEFAULT_CATEGORIES)
    ap.add_argument("--max-train", type=int, default=None, help="train on a seeded subset of N good images")
    ap.add_argument("--calib-max", type=int, default=100, help="INT8 calibration images (seeded subset; 0: all)")
    ap.add_argument("--max-test", type=int, default=0, help="cap on the INT8 gate's check set (0: whole test split)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per precision")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--cache", default=None, help="keep / reuse bundles in CACHE/<model>-<category>[-trainN]")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                    help="a model parameter for a variant row (e.g. size=M); models without it are unchanged")
    ap.add_argument("--preset", default=None, help="train at this preset (default: the models' CPU default)")
    ap.add_argument("--no-int8", action="store_true",
                    help="FP32 only: no INT8 conversion, gate or timing (rows say 'not run'; a CPU-scarce run)")
    ap.add_argument("--report", action="store_true", help="only rewrite the docs section from the results file")
    ap.add_argument("--no-docs", action="store_true", help="a trial run: write neither docs nor results/")
    args = ap.parse_args()
    args.overrides = parse_set(args.sets)
    if args.report:
        update_section("models", markdown(sort_rows(json.loads(RESULTS.read_text())["rows"])))
        return
    models = args.models or unsupervised_models()
    rows = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgead-bench-models-") as tmp:
        for cat in categories(args.categories):
            for model in models:
                r = bench_one(model, cat, args, Path(tmp))
                rows.append(r)
                print(f"{model} {cat.name}: image AUROC {_pct(r['image_auroc'])}, train {r['train_s']:.0f} s"
                      f"{'' if r['trained_now'] else ' (cached)'}, FP32 {_ms(r['fp32_ms'])} ms, "
                      f"INT8 {_ms(r['int8_ms'])} ms, gate {_gate(r)}; row in {r['seconds']:.0f} s", flush=True)
                if not args.no_docs:
                    save_json(RESULTS, {"machine": machine(), "args": vars(args),
                                        "rows": merge_rows(RESULTS, rows, KEY)})
    if not args.no_docs:
        rows = merge_rows(RESULTS, rows, KEY)
    md = markdown(sort_rows(rows))
    print(md)
    print(f"total {time.perf_counter() - t_all:.0f} s", flush=True)
    if not args.no_docs:
        update_section("models", md)


if __name__ == "__main__":
    main()
