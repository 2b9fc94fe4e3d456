"""``edgead convert | build-engine | targets``: the conversion stage (build host) and the on-target engine build."""
from __future__ import annotations

import argparse
from pathlib import Path

from edgead.errors import ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a bundle for a target: FP16, INT8 (Q/DQ) or auto, with a gate")
    p.add_argument("--bundle", required=True)
    p.add_argument("--target", required=True, help="a profile in convert/profiles (see `edgead targets`)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8", "auto"])
    p.add_argument("--calib", default=None, help="folder or .txt list of good images (INT8)")
    p.add_argument("--calib-method", default="minmax", choices=["minmax", "entropy", "percentile"])
    p.add_argument("--int8-scope", default="backbone", choices=["backbone", "stride8"],
                   help="INT8 over the whole backbone, or from stride 8 on (high-resolution layers stay FP32); "
                        "auto tries both")
    p.add_argument("--int8-correction", default="feature-mean", choices=["feature-mean", "none"],
                   help="subtract the mean INT8 feature error measured on the calibration images (default), or not")
    p.add_argument("--guard-band", default="shortfall", choices=["shortfall", "none"],
                   help="lower a lossy candidate's thresholds by its largest shortfall on the good calibration "
                        "images, so it errs towards reject (default), or not")
    p.add_argument("--out", required=True, help="the converted bundle directory")
    p.add_argument("--check", default=None, help="labelled MVTec-layout folder for the accuracy gate")
    p.add_argument("--tolerance-pt", type=float, default=0.5, help="largest image-AUROC drop in points")
    p.add_argument("--pixel-tolerance-pt", type=float, default=1.0, help="largest pixel-AUROC drop in points")
    p.add_argument("--max-new-reject-pct", type=float, default=10.0,
                   help="largest share of the check set's good images that FP32 accepts and the result may reject")
    p.add_argument("--force", action="store_true", help="write the artifact even if the gate fails")
    p.add_argument("--latency-runs", type=int, default=20)
    p.set_defaults(handler=cmd_convert)

    p = sub.add_parser("build-engine", help="build the TensorRT engine of a converted bundle, on this station")
    p.add_argument("--bundle", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--out", default=None, help="engine file (default: BUNDLE/../model.engine)")
    p.set_defaults(handler=cmd_build_engine)

    p = sub.add_parser("targets", help="list the target profiles")
    p.set_defaults(handler=cmd_targets)


def cmd_convert(args) -> int:
    from edgead.convert.pipeline import convert

    report = convert(args.bundle, args.target, args.precision, out=args.out, calib=args.calib,
                     calib_method=args.calib_method, int8_scope=args.int8_scope,
                     int8_correction=args.int8_correction, guard_band=args.guard_band, check=args.check,
                     tolerance_pt=args.tolerance_pt, pixel_tolerance_pt=args.pixel_tolerance_pt,
                     max_new_reject_pct=args.max_new_reject_pct, force=args.force, latency_runs=args.latency_runs)
    print(report.to_markdown())
    return ExitStatus.OK


def cmd_build_engine(args) -> int:
    from edgead.bundle import load_bundle
    from edgead.convert.targets import get_target
    from edgead.convert.trt_build import build_bundle_engine, default_engine_path

    bundle = load_bundle(args.bundle)
    out = Path(args.out) if args.out else default_engine_path(bundle.root)
    path = build_bundle_engine(bundle, out, get_target(args.target))
    print(f"engine {path} ({bundle.meta.precision.value}) for {args.target}, built from bundle "
          f"{bundle.model_hash[:12]}")
    return ExitStatus.OK


def cmd_targets(args) -> int:
    from edgead.convert.targets import load_targets

    for name, t in sorted(load_targets().items()):
        precisions = ",".join(p.value for p in t.precisions)
        print(f"{name:18} {t.backend.value:12} {precisions}")
    return ExitStatus.OK
