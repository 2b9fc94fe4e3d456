"""``edgead synth``: write a synthetic station (dataset in the MVTec AD layout, or a replay folder of captures)."""
from __future__ import annotations

import argparse

from edgead.errors import ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate a synthetic station: a dataset, or misaligned captures to replay")
    p.add_argument("--out", required=True, help="a new or empty folder")
    p.add_argument("--captures", type=int, default=0, metavar="N",
                   help="write N raw captures for folder:// replay instead of a dataset")
    p.add_argument("--defect-rate", type=float, default=0.3, help="with --captures: share of defective parts")
    p.add_argument("--n-train", type=int, default=60)
    p.add_argument("--n-test-good", type=int, default=20)
    p.add_argument("--n-test-defect", type=int, default=20)
    p.add_argument("--misaligned", action="store_true", help="dataset of raw captures instead of aligned parts")
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--gray", action="store_true", help="a monochrome camera")
    p.add_argument("--max-shift-px", type=float, default=12.0)
    p.add_argument("--max-rotation-deg", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_synth)
    register_align(sub)

    p = sub.add_parser("dataset", help="build an MVTec-layout dataset of the labelled parts of a station's records "
                       "(for edgead threshold / edgead update)")
    p.add_argument("--from-records", required=True, metavar="DB|STATION.yaml",
                   help="the station's records.sqlite (its archived images must be reachable), or its config")
    p.add_argument("--out", required=True, help="a new folder")
    p.add_argument("--holdout-every", type=int, default=2, metavar="N",
                   help="every N-th labelled-good part goes to test/good, the rest to train/good (default 2)")
    p.add_argument("--since", default=None, help="ISO time: only parts captured from then on")
    p.add_argument("--until", default=None, help="ISO time: only parts captured before then")
    p.add_argument("--force", action="store_true", help="replace a dataset written there before")
    p.set_defaults(handler=cmd_dataset)


def cmd_dataset(args) -> int:
    from edgead.cli.station_cmds import records_database
    from edgead.records.dataset import dataset_from_records
    from edgead.records.store import parse_iso_ns

    report = dataset_from_records(records_database(args.from_records), args.out, holdout_every=args.holdout_every,
                                  since_ns=parse_iso_ns(args.since, "--since"), until_ns=parse_iso_ns(args.until, "--until"),
                                  force=args.force)
    print(report.line())
    print(f"next: edgead threshold --bundle BUNDLE --data {args.out} --target-frr 0.01 --out NEW_BUNDLE "
          f"(or edgead update --bundle BUNDLE --data {args.out} --out NEW_BUNDLE), then edgead deploy")
    return ExitStatus.OK


def cmd_synth(args) -> int:
    from edgead.data import Color
    from edgead.data.synthetic import StationSpec, generate_captures, generate_dataset

    spec = StationSpec(height=args.height, width=args.width, color=Color.GRAY if args.gray else Color.RGB,
                       max_shift_px=args.max_shift_px, max_rotation_deg=args.max_rotation_deg)
    if args.captures:
        out = generate_captures(args.out, spec, n=args.captures, defect_rate=args.defect_rate, seed=args.seed)
        print(f"{args.captures} captures in {out} (truth.json maps each file to its ground truth)")
    else:
        out = generate_dataset(args.out, spec, n_train=args.n_train, n_test_good=args.n_test_good,
                               n_test_defect=args.n_test_defect, seed=args.seed, aligned=not args.misaligned)
        print(f"dataset in {out} (MVTec AD layout, reference.png, truth.json)")
    return ExitStatus.OK


def register_align(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="align a dataset of raw captures to a reference (as the station does)")
    p.add_argument("--data", required=True, help="MVTec-layout folder of raw captures")
    p.add_argument("--reference", required=True, help="image of a good part (same size as the captures)")
    p.add_argument("--out", required=True, help="a new folder for the aligned copy")
    p.add_argument("--motion", default="euclidean", choices=["translation", "euclidean", "affine", "homography"])
    p.set_defaults(handler=cmd_align)


def cmd_align(args) -> int:
    from edgead.align import AlignConfig, MotionModel
    from edgead.align.dataset import align_dataset

    report = align_dataset(args.data, args.out, args.reference, AlignConfig(motion=MotionModel(args.motion)))
    q = report.qualities
    print(f"{report.n_aligned} images aligned into {args.out} (quality min {min(q):.3f}, median "
          f"{sorted(q)[len(q) // 2]:.3f}); {len(report.failed)} left out")
    for rel, why in report.failed:
        print(f"  left out {rel}: {why}")
    return ExitStatus.OK
