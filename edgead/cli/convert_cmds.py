"""``edgead convert | build-engine | targets``: the conversion stage (build host) and the on-target engine build."""
from __future__ import annotations

import argparse
from pathlib import Path

from edgead.cli.trust_cmds import add_sign_key, signing_key
from edgead.errors import ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    from edgead.convert.pipeline import ConvertOptions

    d = ConvertOptions()  # the defaults and the choices come from the options and their enums
    values = lambda default: [e.value for e in type(default)]  # noqa: E731
    p = sub.add_parser("convert", help="convert a bundle for a target: FP16, INT8 (Q/DQ) or auto, with a gate")
    p.add_argument("--bundle", required=True)
    p.add_argument("--target", required=True, help="a profile in convert/profiles (see `edgead targets`)")
    p.add_argument("--precision", default=d.precision.value, choices=values(d.precision))
    p.add_argument("--calib", default=d.calib, help="folder or .txt list of good images (INT8)")
    p.add_argument("--calib-method", default=d.calib_method.value, choices=values(d.calib_method))
    p.add_argument("--int8-scope", default=d.int8_scope.value, choices=values(d.int8_scope),
                   help="INT8 over the whole backbone, or from stride 8 on (high-resolution layers stay FP32); "
                        "auto tries both")
    p.add_argument("--int8-correction", default=d.int8_correction.value, choices=values(d.int8_correction),
                   help="subtract the mean INT8 feature error measured on the calibration images (default), or not")
    p.add_argument("--guard-band", default=d.guard_band.value, choices=values(d.guard_band),
                   help="lower a lossy candidate's thresholds by its largest shortfall on the good calibration "
                        "images, so it errs towards reject (default), or not")
    p.add_argument("--out", required=True, help="the converted bundle directory")
    p.add_argument("--check", default=d.check, help="labelled MVTec-layout folder for the accuracy gate")
    p.add_argument("--tolerance-pt", type=float, default=d.tolerance_pt, help="largest image-AUROC drop in points")
    p.add_argument("--pixel-tolerance-pt", type=float, default=d.pixel_tolerance_pt,
                   help="largest pixel-AUROC drop in points")
    p.add_argument("--max-new-reject-pct", type=float, default=d.max_new_reject_pct,
                   help="largest share of the check set's good images that FP32 accepts and the result may reject")
    p.add_argument("--confidence", type=float, default=d.confidence,
                   help="of the upper bounds on a lossy result's extra escape and false-reject rates (default "
                        f"{d.confidence})")
    p.add_argument("--max-extra-escape-pct", type=float, default=d.max_extra_escape_pct,
                   help="allowance for the extra escape rate: the upper confidence bound of the share of the "
                        "defective check images FP32 rejects that the result accepts must be below it (percent, "
                        f"default {d.max_extra_escape_pct:g}; with none accepted that takes about 300/allowance "
                        "such images)")
    p.add_argument("--max-extra-false-reject-pct", type=float, default=d.max_extra_false_reject_pct,
                   help="allowance: the same for the good images FP32 accepts that the result rejects (percent, "
                        f"default {d.max_extra_false_reject_pct:g})")
    p.add_argument("--max-defect-score-fall", type=float, default=d.max_defect_score_fall,
                   help="largest fall of a defect's normalised score (0.5 = threshold) below FP32's (default "
                        f"{d.max_defect_score_fall:g})")
    p.add_argument("--force", action="store_true", help="write the artifact even if the gate fails")
    p.add_argument("--latency-runs", type=int, default=d.latency_runs)
    p.add_argument("--quiet", action="store_true", help="no per-candidate progress on stderr")
    add_sign_key(p)
    p.set_defaults(handler=cmd_convert)

    p = sub.add_parser("build-engine", help="build the TensorRT engine of a converted bundle, on this station")
    p.add_argument("--bundle", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--out", default=None, help="engine file (default: BUNDLE/../model.engine)")
    p.set_defaults(handler=cmd_build_engine)

    p = sub.add_parser("targets", help="list the target profiles")
    p.set_defaults(handler=cmd_targets)


def cmd_convert(args) -> int:
    import dataclasses

    from edgead.convert.pipeline import ConvertOptions, convert

    args.sign_key = signing_key(args)  # loaded (and a bad key refused) before any work
    fields = [f.name for f in dataclasses.fields(ConvertOptions) if f.name != "show_progress"]
    options = ConvertOptions(**{name: getattr(args, name) for name in fields}, show_progress=not args.quiet)
    report = convert(args.bundle, args.target, args.out, options)
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
        extra = ""
        if t.openvino:  # the OpenVINO candidates of --precision auto, and the CPU features each keys on
            extra = "  openvino: " + ", ".join(k + (f" ({'|'.join(v)})" if v else "") for k, v in t.openvino.items())
        print(f"{name:18} {t.backend.value:12} {precisions}{extra}")
    return ExitStatus.OK
