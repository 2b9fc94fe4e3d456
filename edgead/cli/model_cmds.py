"""``edgead train | eval | predict | threshold | info | pack``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgead.cli.output import fmt, print_json
from edgead.cli.trust_cmds import add_sign_key, signing_key
from edgead.errors import ExitStatus
from edgead.predict import OutputFormat

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
    p.add_argument("--out", required=True, help="bundle directory to write (NAME.edgead: also pack an archive); "
                   "an existing one is refused before training unless --force")
    p.add_argument("--force", action="store_true", help="replace an existing bundle or file at --out")
    p.add_argument("--reference", default=None, metavar="IMAGE",
                   help="the reference image of a good part the data was aligned to (default: DATA/reference.png if "
                        "present): the bundle carries it (the Python API's Inspector(..., align=True) aligns to it) "
                        "and records its fingerprint, so that stations with another reference are refused")
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
    add_sign_key(p)
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
    p.add_argument("images", nargs="+", metavar="INPUT",
                   help="image files, folders (searched recursively) or quoted glob patterns ('parts/**/*.png')")
    p.add_argument("--format", default=None, choices=[f.value for f in OutputFormat],
                   help="rows as text (default), csv or jsonl (one JSON object per line)")
    p.add_argument("--json", action="store_true", help="the same as --format jsonl")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write the rows here (default: stdout)")
    p.add_argument("--force", action="store_true", help="replace an existing --output file")
    p.add_argument("--overlay-dir", default=None,
                   help="write heatmap overlays here, mirroring the inputs' folders (no two share a name)")
    p.add_argument("--quiet", action="store_true", help="no progress and no summary line on stderr")
    p.add_argument("--engine", default=None, help="run this TensorRT engine (built from the bundle on this station) "
                   "instead of the bundle's ONNX graph")
    p.add_argument("--max-image-px", type=int, default=None, metavar="N",
                   help="refuse an image whose header declares more than N pixels (width x height), before decoding "
                        "(default: the config's camera.max_image_px, 50000000)")
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
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", help="write a new bundle here (a directory or NAME.edgead; must not exist)")
    g.add_argument("--in-place", action="store_true", help="rewrite --bundle itself (a directory or an archive)")
    add_sign_key(p)
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
    from edgead.train.api import train

    result = train(args.data, args.out, model=args.model, image_size=args.image_size,
                   val_fraction=args.val_fraction, target_frr=args.target_frr, seed=args.seed,
                   batch_size=args.batch_size, params=_overrides(args.set), evaluate=not args.no_eval,
                   labelled=args.labelled, device=args.device, preset=args.preset, layout=_layout(args),
                   reference=args.reference, force=args.force, progress=not args.quiet, sign_key=signing_key(args))
    bundle_dir = result.bundle.root
    m = result.metrics or {}
    preset = result.bundle.meta.training.preset
    print(f"bundle {bundle_dir} ({result.bundle.model_hash[:12]}"
          f"{', preset ' + preset if preset else ''}) trained in {result.seconds:.1f} s; "
          f"threshold {result.bundle.meta.calibration.image.thr:.5g}")
    if m:
        print("  " + "  ".join(f"{k}={fmt(m.get(k))}" for k in ("image_auroc", "pixel_auroc", "aupro", "f1_max")))
    return ExitStatus.OK


def cmd_eval(args) -> int:
    from edgead.api import evaluate
    from edgead.errors import ConfigError

    if args.tasks:
        from edgead.cli.continual_cmds import cmd_eval_tasks

        return cmd_eval_tasks(args)
    if len(args.bundle) != 1 or len(args.data) != 1 or args.single:
        raise ConfigError("eval takes one --bundle and one --data", hint="add --tasks to evaluate a task sequence")
    args.bundle, args.data = args.bundle[0], args.data[0]
    result = evaluate(args.bundle, args.data, backend=args.backend, progress=not args.json, report_dir=args.report)
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
    by ``bundle`` / ``engine`` when given, without warm-up runs (no latency to protect). Without a config there is
    no station whose trusted keys apply: the bundle need not be signed (``security.allow_unsigned``, with its
    warning); with one, its ``security`` section applies as on the station.

    Raises:
        ConfigError: neither a bundle nor a config, or an invalid config.
    """
    import dataclasses

    from edgead.daemon.config import SecuritySection, StationConfig, load_station
    from edgead.errors import ConfigError

    if bundle is None and config is None:
        raise ConfigError("predict needs --bundle or --config", hint="e.g. edgead predict --bundle B IMAGE")
    cfg = load_station(config) if config else StationConfig(security=SecuritySection(allow_unsigned=True))
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


def _write_overlays(dest: Path, inspection, model) -> list[str]:
    """The overlay of the image (``dest``), or of each ROI (``dest`` with the ROI's name before ``_overlay``)."""
    import cv2

    from edgead.align.roi import crop_rois
    from edgead.errors import OutputError
    from edgead.evaluation.report import overlay

    dest.parent.mkdir(parents=True, exist_ok=True)
    crops = crop_rois(inspection.image, model.rois) if model.rois else [inspection.image]
    written = []
    for crop, (name, _, pred) in zip(crops, inspection.predictions):
        path = dest if not model.rois else dest.with_name(dest.name.replace("_overlay.png", f"_{name}_overlay.png"))
        if not cv2.imwrite(str(path), overlay(crop, pred.map[0])[:, :, ::-1]):
            raise OutputError(f"overlay {path} could not be written", hint="check --overlay-dir and its free space")
        written.append(str(path))
    return written


def cmd_predict(args) -> int:
    from edgead.predict import expand_inputs, overlay_paths

    out_format = OutputFormat.JSONL if args.json else OutputFormat(args.format or OutputFormat.TEXT.value)
    images = expand_inputs(args.images)
    overlays = overlay_paths(images, args.overlay_dir) if args.overlay_dir else {}
    cfg = predict_config(args.bundle, args.config, args.engine)
    if args.quiet:  # rows only: the start-up notes (an unsigned bundle judged off-station) are not shown
        return _quietly(lambda: _predict(args, cfg, out_format, images, overlays))
    return _predict(args, cfg, out_format, images, overlays)


def _quietly(call):
    import logging

    logger = logging.getLogger("edgead")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return call()
    finally:
        logger.setLevel(level)


def _predict(args, cfg, out_format, images, overlays) -> int:
    import time

    from edgead.contract.graph import Color
    from edgead.daemon.model import load_model
    from edgead.data import load_image
    from edgead.errors import ConfigError, ImageError
    from edgead.predict import RowWriter, open_output, summary_line
    from edgead.progress import track

    max_px = cfg.camera.max_image_px if args.max_image_px is None else args.max_image_px
    if max_px < 1:
        raise ConfigError(f"--max-image-px {max_px}: must be >= 1")
    t0 = time.perf_counter()
    model = load_model(cfg)
    rows, unreadable = [], []
    stream = open_output(args.output, force=args.force)
    try:
        writer = RowWriter(stream, out_format)
        color = Color.of_channels(model.channels)
        for path in track(images, "predict", enabled=not args.quiet, unit="img"):
            try:
                image = load_image(path, color, max_px=max_px)
            except ImageError as exc:  # one unreadable file does not stop a folder; the exit status says it
                unreadable.append(exc)
                row = {"image": str(path), "verdict": None, "error": exc.message}
            else:
                inspection = model.inspect(image, cfg.decision)
                row = prediction_row(str(path), inspection, model.engine.name)
                if overlays and inspection.predictions:
                    written = _write_overlays(overlays[path], inspection, model)
                    row["overlay"] = written[0] if len(written) == 1 else written
            writer.write(row)
            rows.append(row)
    finally:
        model.close()
        if stream is not sys.stdout:
            stream.close()
    if not args.quiet:
        print(summary_line(rows, time.perf_counter() - t0, args.overlay_dir), file=sys.stderr)
    if unreadable:
        raise ImageError(f"{len(unreadable)} of {len(rows)} images could not be read; the first: "
                         f"{unreadable[0].message}", hint=unreadable[0].hint)
    return ExitStatus.OK


def cmd_threshold(args) -> int:
    from edgead.calibration.operating_point import point_lines
    from edgead.convert.threshold import set_threshold

    bundle = set_threshold(args.bundle, image_threshold=args.image_threshold, target_frr=args.target_frr,
                           target_escape_rate=args.target_escape_rate, method=args.method, data=args.data,
                           out=args.out, in_place=args.in_place, confidence=args.confidence,
                           sign_key=signing_key(args))
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
    sig = bundle.signature
    signed = ({"key_id": sig.key_id, "signed_utc": sig.signed_utc, "verified": "no: `edgead verify` or `edgead check` "
               "checks it against trusted keys"} if sig else None)
    info = {"path": str(bundle.root), "model_hash": bundle.model_hash, "signature": signed, **bundle.meta.to_dict()}
    if args.json:
        print_json(info)
    else:
        sys.stdout.write(yaml.safe_dump(info, sort_keys=False))
    return ExitStatus.OK


def cmd_pack(args) -> int:
    from edgead.bundle import pack_bundle

    print(pack_bundle(args.bundle, args.archive))
    return ExitStatus.OK
