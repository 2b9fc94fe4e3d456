"""``edgead train | eval | predict | threshold | info | pack``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgead.cli.output import fmt, print_json
from edgead.errors import ExitStatus

EVAL_KEYS = ("image_auroc", "pixel_auroc", "aupro", "f1_max", "ap", "threshold", "n_good", "n_defective")


def register(sub: argparse._SubParsersAction) -> None:
    from edgead.models.presets import Preset, render_presets
    from edgead.models.registry import MODELS

    p = sub.add_parser("train", help="train a detector on good images and write a bundle", epilog=render_presets(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="MVTec-layout folder (train/good required, test/ optional)")
    p.add_argument("--model", default="patchcore", choices=sorted(MODELS), help="model type")
    p.add_argument("--labelled", action="store_true",
                   help="supervised training: also fit on the labelled defects in train/<defect_type>/ (needed by "
                        f"{', '.join(sorted(n for n, s in MODELS.items() if s.supervision.value == 'labelled'))}; "
                        "refused by the others)")
    p.add_argument("--preset", default=None, choices=[v.value for v in Preset],
                   help="the trained models' parameter set, from quick (tests, demo) to paper (the published "
                        "architecture and schedule); default: paper on CUDA, the CPU default (*) below on a CPU; "
                        "--set overrides it (table below)")
    p.add_argument("--out", required=True, help="bundle directory to write (NAME.edgead: also pack an archive)")
    p.add_argument("--image-size", default=None, help="N (long side, aspect kept) or HxW; default 256 long side")
    p.add_argument("--val-fraction", type=float, default=0.2, help="good images held out for the threshold")
    p.add_argument("--target-frr", type=float, default=0.01, help="target false-reject rate on good parts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model parameter override")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]",
                   help="where to train (auto: CUDA when torch sees a GPU, else the CPU)")
    p.add_argument("--orientation", default="keep", choices=["keep", "landscape", "portrait"],
                   help="turn every image (and, later, every frame or ROI) a quarter turn to this orientation first")
    p.add_argument("--tile", default=None, metavar="HxW", help="cut images (and frames or ROIs) into HxW tiles at "
                   "native resolution; maps are stitched back, the part's score is the maximum over its tiles")
    p.add_argument("--tile-overlap", type=int, default=0, metavar="PX", help="least overlap of neighbouring tiles")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation on test/")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("eval", help="evaluate a bundle on a labelled dataset (--tasks: a continual run's task matrix)")
    p.add_argument("--bundle", required=True, action="append",
                   help="the bundle (with --tasks: one per learnt task, in order, repeated)")
    p.add_argument("--data", required=True, action="append",
                   help="MVTec-layout folder with test/ (with --tasks: one per task, in order, repeated)")
    p.add_argument("--tasks", action="store_true",
                   help="task matrix: bundle i (after task i) on every task j <= i, forgetting, gap to --single")
    p.add_argument("--single", nargs="+", default=None, metavar="BUNDLE",
                   help="with --tasks: one single-task bundle per task, for the gap to one model per task")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--report", default=None, metavar="DIR", help="write DIR/report.html (one file, opens offline: "
                   "confusion matrix, per-type metrics, ROC/PR curves, histogram, worst cases) and metrics.json")
    p.add_argument("--backend", default=None, choices=["onnxruntime", "tensorrt"])
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("predict", help="judge images as a station does (the verdict rule of edgead.contract)")
    p.add_argument("--bundle", default=None, help="the bundle (default: the --config's model.bundle)")
    p.add_argument("--config", default=None, metavar="STATION.yaml",
                   help="judge as this station: its model (bundle, engine), reference and alignment, ROIs and "
                        "decision rules (min_defect_area_px); without it each image is judged whole")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--overlay-dir", default=None, help="write heatmap overlays here")
    p.add_argument("--engine", default=None, help="run this TensorRT engine (built from the bundle on this station) "
                   "instead of the bundle's ONNX graph")
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("threshold", help="move a bundle's threshold without retraining")
    p.add_argument("--bundle", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--image-threshold", type=float, help="new raw image threshold")
    g.add_argument("--target-frr", type=float, help="choose the threshold for this false-reject rate on the good "
                   "images of --data")
    g.add_argument("--target-escape-rate", type=float, metavar="R", help="choose the highest threshold that accepts "
                   "at most this share of the labelled defects of --data (an MVTec category with test/<defect>/)")
    g.add_argument("--method", choices=["f1"], help="f1: the threshold of the best F1 on the labelled set of --data")
    p.add_argument("--data", help="an MVTec category (its test split: good and defective images) or a folder of "
                   "good images")
    p.add_argument("--confidence", type=float, default=0.95, help="of the rates' upper bounds (default 0.95)")
    p.add_argument("--out", help="write a new bundle here instead of in place")
    p.set_defaults(handler=cmd_threshold)

    p = sub.add_parser("info", help="verify a bundle and print its metadata")
    p.add_argument("bundle")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser("pack", help="pack a bundle directory into one .edgead file")
    p.add_argument("bundle")
    p.add_argument("archive")
    p.set_defaults(handler=cmd_pack)


def _overrides(pairs: list[str]) -> dict:
    import yaml

    from edgead.errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _layout(args):
    from edgead.infer.layout import Layout
    from edgead.train.sizing import parse_image_size

    tile = None
    if args.tile is not None:
        tile = parse_image_size(args.tile)
        tile = (tile, tile) if isinstance(tile, int) else tile
    return Layout(args.orientation, tile, args.tile_overlap)


def cmd_train(args) -> int:
    from edgead.bundle import pack_bundle
    from edgead.models.registry import Supervision
    from edgead.train.pipeline import TrainConfig, train
    from edgead.train.sizing import parse_image_size

    out = Path(args.out)
    bundle_dir = out.with_suffix("") if out.suffix == ".edgead" else out
    cfg = TrainConfig(model=args.model, image_size=parse_image_size(args.image_size), val_fraction=args.val_fraction,
                      target_frr=args.target_frr, seed=args.seed, batch_size=args.batch_size,
                      params=_overrides(args.set), evaluate=not args.no_eval, preset=args.preset,
                      supervision=Supervision.LABELLED if args.labelled else Supervision.UNSUPERVISED,
                      device=args.device, layout=_layout(args))
    result = train(args.data, bundle_dir, cfg, progress=not args.quiet)
    if out.suffix == ".edgead":
        pack_bundle(bundle_dir, out)
    m = result.metrics or {}
    preset = result.bundle.meta.training.preset
    print(f"bundle {bundle_dir} ({result.bundle.model_hash[:12]}"
          f"{', preset ' + preset if preset else ''}) trained in {result.seconds:.1f} s; "
          f"threshold {result.bundle.meta.calibration.image.thr:.5g}")
    if m:
        print("  " + "  ".join(f"{k}={fmt(m.get(k))}" for k in ("image_auroc", "pixel_auroc", "aupro", "f1_max")))
    return ExitStatus.OK


def cmd_eval(args) -> int:
    from edgead.errors import ConfigError
    from edgead.evaluation import evaluate_bundle

    if args.tasks:
        from edgead.cli.continual_cmds import cmd_eval_tasks

        return cmd_eval_tasks(args)
    if len(args.bundle) != 1 or len(args.data) != 1 or args.single:
        raise ConfigError("eval takes one --bundle and one --data", hint="add --tasks to evaluate a task sequence")
    args.bundle, args.data = args.bundle[0], args.data[0]
    result = evaluate_bundle(args.bundle, args.data, backend=args.backend, progress=not args.json,
                             report_dir=args.report)
    m = result.metrics
    if args.json:
        print_json({"confusion": m["confusion"], **m})  # escapes and false rejects first
    else:
        from edgead.evaluation.confusion import confusion_lines

        print("\n".join(confusion_lines(m["confusion"])))
        for k in EVAL_KEYS + ("ms_per_image",):
            print(f"{k:>14}: {fmt(m.get(k))}")
        if args.report:
            print(f"report: {Path(args.report) / 'report.html'}")
    return ExitStatus.OK


def predict_config(bundle: str | None, config: str | None, engine: str | None):
    """The station config ``edgead predict`` judges with: ``config`` (or the defaults), its model section replaced
    by ``bundle`` / ``engine`` when given, without warm-up runs (no latency to protect).

    Raises:
        ConfigError: neither a bundle nor a config, or an invalid config.
    """
    import dataclasses

    from edgead.daemon.config import StationConfig, load_station
    from edgead.errors import ConfigError

    if bundle is None and config is None:
        raise ConfigError("predict needs --bundle or --config", hint="e.g. edgead predict --bundle B IMAGE")
    cfg = load_station(config) if config else StationConfig()
    model = dataclasses.replace(cfg.model, warmup_runs=0)
    if bundle is not None:
        model = dataclasses.replace(model, bundle=Path(bundle), engine=None)
    if engine is not None:
        model = dataclasses.replace(model, engine=Path(engine))
    return dataclasses.replace(cfg, model=model)


def prediction_row(path: str, inspection, backend: str) -> dict:
    """One ``edgead predict --json`` row: the part's verdict, its scores, and every ROI when there are ROIs."""
    from edgead.contract.decide import WHOLE_IMAGE

    d = inspection.decision
    row = {"image": path, "verdict": inspection.verdict.value, "score": d.score if d else None,
           "raw_score": d.raw_score if d else None, "defect_area_px": d.defect_area_px if d else None,
           "backend": backend}
    if d is not None and [r.name for r in d.rois] != [WHOLE_IMAGE]:
        row["rois"] = [{"name": r.name, "verdict": r.verdict.value, "score": r.score, "raw_score": r.raw_score,
                        "defect_area_px": r.defect_area_px} for r in d.rois]
    if inspection.align_quality is not None:
        row["align_quality"] = inspection.align_quality
    if inspection.error:
        row["error"] = inspection.error
    return row


def _write_overlays(out_dir: str, path: str, inspection, model) -> list[str]:
    import cv2

    from edgead.align.roi import crop_rois
    from edgead.evaluation.report import overlay

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    crops = crop_rois(inspection.image, model.rois) if model.rois else [inspection.image]
    written = []
    for crop, (name, _, pred) in zip(crops, inspection.predictions):
        suffix = "" if not model.rois else f"_{name}"
        written.append(str(out / f"{Path(path).stem}{suffix}_overlay.png"))
        cv2.imwrite(written[-1], overlay(crop, pred.map[0])[:, :, ::-1])
    return written


def cmd_predict(args) -> int:
    from edgead.contract.graph import Color
    from edgead.daemon.model import load_model
    from edgead.data import load_image

    cfg = predict_config(args.bundle, args.config, args.engine)
    model = load_model(cfg)
    try:
        color = Color.of_channels(model.channels)
        for path in args.images:
            inspection = model.inspect(load_image(path, color), cfg.decision)
            row = prediction_row(path, inspection, model.engine.name)
            if args.overlay_dir and inspection.predictions:
                overlays = _write_overlays(args.overlay_dir, path, inspection, model)
                row["overlay"] = overlays[0] if len(overlays) == 1 else overlays
            if args.json:
                print_json(row)
            else:
                scores = f"score={row['score']:.3f} raw={row['raw_score']:.5g}" if row["score"] is not None \
                    else row.get("error", "")
                print(f"{row['verdict']:6} {scores}  {path}")
    finally:
        model.close()
    return ExitStatus.OK


def cmd_threshold(args) -> int:
    from edgead.calibration.operating_point import point_lines
    from edgead.convert.threshold import set_threshold

    bundle = set_threshold(args.bundle, image_threshold=args.image_threshold, target_frr=args.target_frr,
                           target_escape_rate=args.target_escape_rate, method=args.method, data=args.data,
                           out=args.out, confidence=args.confidence)
    cal = bundle.meta.calibration
    print(f"bundle {bundle.root} ({bundle.model_hash[:12]}): image threshold {cal.image.thr:.5g} ({cal.method.value})")
    point = cal.operating_point
    if args.data:
        print("\n".join(point_lines(point)))
    for warning in point["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return ExitStatus.OK


def cmd_info(args) -> int:
    import yaml

    from edgead.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    info = {"path": str(bundle.root), "model_hash": bundle.model_hash, **bundle.meta.to_dict()}
    if args.json:
        print_json(info)
    else:
        sys.stdout.write(yaml.safe_dump(info, sort_keys=False))
    return ExitStatus.OK


def cmd_pack(args) -> int:
    from edgead.bundle import pack_bundle

    print(pack_bundle(args.bundle, args.archive))
    return ExitStatus.OK
