"""The demo's steps (see the package docstring). Build-host code: it trains, so it needs the [train] extra."""
from __future__ import annotations

import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from edgead.demo.plc_peer import PtyPair, run_with_plc
from edgead.errors import EdgeadError
from edgead.progress import progress

VERDICTS = ("accept", "reject", "no-read", "fault")
CHECK_GOOD, CHECK_DEFECTS = 20, 64
"""The labelled test split the conversion gate scores: 64 defective images can show a lossy candidate's extra escape
rate below the gate's default 5 % allowance (with none accepted it takes 59; convert/evidence.py), 20 good ones its
extra false-reject rate below 20 % (14). 20 defective images could show nothing below 14 %."""


@dataclass(frozen=True)
class DemoOptions:
    """Demo settings (CLI flags map 1:1)."""

    out: Path = Path("demo-out")
    parts: int = 200
    defect_rate: float = 0.3
    n_train: int = 60
    model: str = "patchcore"
    precision: str = "auto"
    seed: int = 0
    progress: bool = True  # bars on a terminal, lines in a log (edgead.progress); False: --quiet


class Steps:
    """Prints ``[i/n] what`` and, when it ends, ``done (s)`` lines."""

    def __init__(self, total: int, stream=sys.stdout):
        self.i, self.total, self.stream = 0, total, stream

    def __call__(self, what: str):
        self.i += 1
        self.stream.write(f"[{self.i}/{self.total}] {what}\n")  # a line of its own: progress may follow
        self.stream.flush()
        return _Timer(self.stream)


class _Timer:
    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        self.t = time.perf_counter()
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.stream.write(f"      done ({time.perf_counter() - self.t:.1f} s)\n")
        else:
            self.stream.write("      failed\n")
        self.stream.flush()


def run_demo(opts: DemoOptions = DemoOptions(), stream=sys.stdout) -> dict:
    """Run the whole demo; returns the summary dict (also written to ``OUT/summary.json``).

    Raises:
        EdgeadError: any step failed (the message says which).
    """
    from edgead.align.dataset import align_dataset
    from edgead.bundle.signing import write_key_pair
    from edgead.convert.pipeline import ConvertOptions, convert
    from edgead.data.synthetic import StationSpec, generate_captures, generate_dataset
    from edgead.train.pipeline import TrainConfig, train

    out = Path(opts.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    step = Steps(5, stream)  # the fifth step, the station, prints its own live line
    spec = StationSpec()
    with step(f"generating a synthetic station in {out}"):
        raw = generate_dataset(out / "raw", spec, n_train=opts.n_train, n_test_good=CHECK_GOOD, n_test_defect=CHECK_DEFECTS,
                               seed=opts.seed, aligned=False)
        captures = generate_captures(out / "captures", spec, n=opts.parts, defect_rate=opts.defect_rate,
                                     seed=opts.seed + 1)
        reference = raw / "reference.png"
        # the build host's signing key: the station below trusts only bundles it signed (docs/bundle-format.md)
        key, pub = write_key_pair(out / "keys" / "build-host", "edgead demo build host")
    with step("aligning the training images to the reference"):
        report = align_dataset(raw, out / "aligned", reference)
        if report.failed:
            stream.write(f"      {len(report.failed)} left out\n")
    with step(f"training {opts.model} on {opts.n_train} good parts"):
        config = TrainConfig(model=opts.model, seed=opts.seed, preset="quick")  # the demo trains in minutes
        trained = train(out / "aligned", out / "bundle-fp32", config, progress=opts.progress, sign_key=key)
    what = ("every candidate (INT8, graph rewrites, reduced heads) through the accuracy gate, keeping the fastest "
            "that passes" if opts.precision == "auto" else f"to {opts.precision.upper()} with the accuracy gate")
    with step(f"converting for x86-cpu: {what}"):
        conv = convert(trained.bundle.root, "x86-cpu", out / "bundle", ConvertOptions(
            opts.precision, calib=out / "aligned" / "train" / "good", check=out / "aligned", latency_runs=10,
            show_progress=opts.progress, sign_key=key))
    chosen = next(c for c in conv.candidates if c.name == conv.chosen)
    base = next((c for c in conv.candidates if c.name == "fp32"), chosen)
    speed = (f", {base.latency_median_ms / chosen.latency_median_ms:.2f}x the plain FP32 export's speed here"
             if chosen is not base and chosen.latency_median_ms and base.latency_median_ms else "")
    stream.write(f"      kept {conv.chosen}{speed}\n")
    stream.write(f"      FP32 image AUROC {100 * trained.metrics['image_auroc']:.1f}, pixel AUROC "
                 f"{100 * trained.metrics['pixel_auroc']:.1f}; {chosen.gate.summary()}\n")
    station_yaml = out / "station.yaml"
    stream.write(f"[5/5] running the station: {opts.parts} parts, folder:// camera, virtual PLC on a serial pty\n")
    summary = _run_station(out, captures, reference, station_yaml, opts, stream, pub)
    from edgead.demo.north import missing_peer, show_mqtt_north

    if missing_peer() is None:
        stream.write("      MQTT north: publishing the records to a local mosquitto (python -m edgead.north)\n")
    summary["mqtt_north"] = show_mqtt_north(out / "records.sqlite", "demo-station", summary["parts"])
    summary.update({"fp32_metrics": trained.metrics, "conversion": {"chosen": conv.chosen, "requested": conv.requested},
                    "gate": chosen.gate.to_dict(), "bundle": str(out / "bundle"),
                    "signed_by": f"{pub.name} (key {conv_key_id(out / 'bundle')})"})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    _print_summary(summary, stream)
    return summary


def _station_config(out: Path, captures: Path, reference: Path, port: str, trusted_key: Path) -> dict:
    from edgead.camera.folder import PRELOAD_MAX_MB
    from edgead.data.synthetic import StationSpec

    spec, parts = StationSpec(), len(list(captures.glob("*.png")))
    fits = parts * spec.height * spec.width * 3 <= PRELOAD_MAX_MB * 2**20
    preload = "&preload=1" if fits else ""  # frames in memory, as a camera hands them over; else decoded per part
    return {
        "name": "demo-station",
        "security": {"trusted_keys": [str(trusted_key)]},
        "camera": {"url": f"folder://{captures}?fps=0&pattern=*.png{preload}", "timeout_ms": 2000},
        "reference": str(reference),
        "model": {"bundle": str(out / "bundle")},
        "decision": {"cycle_budget_ms": 1000},
        "plc": {"url": port, "protocol": "ascii"},
        "storage": {"database": str(out / "records.sqlite"), "images_dir": str(out / "rejects"), "quota_mb": 200},
        "observe": {"metrics_listen": None, "log_level": "warning", "log_format": "text"},
    }


def _run_station(out: Path, captures: Path, reference: Path, station_yaml: Path, opts: DemoOptions,
                 stream, trusted_key: Path) -> dict:
    from edgead.daemon.config import load_station
    from edgead.daemon.runner import verdict_counts

    truth = json.loads((captures / "truth.json").read_text())["files"]
    confusion: Counter = Counter()
    by_id: dict[str, str] = {}
    t_start = time.monotonic()

    bar = progress(opts.parts, "station", enabled=opts.progress, unit="part", lines=10)

    def on_part(o):
        label = truth.get(Path(o.source).name, {}).get("label")
        actual = "defective" if label == 1 else "good"
        confusion[(actual, o.verdict.value)] += 1
        by_id[o.part_id] = o.verdict.value
        n = sum(confusion.values())
        rate = 60 * n / max(time.monotonic() - t_start, 1e-9)
        bar.set_postfix(f"{rate:.0f} parts/min, last {o.verdict.value} "
                        f"{o.score if o.score is not None else float('nan'):.3f}, "
                        f"ok {confusion[('good', 'accept')] + confusion[('defective', 'reject')]}/{n}")
        bar.update()

    with bar, PtyPair(out) as pty:
        cfg_dict = _station_config(out, captures, reference, pty.station, trusted_key)
        station_yaml.write_text(yaml.safe_dump(cfg_dict, sort_keys=False))
        cfg = load_station(station_yaml, {"runtime": {"max_parts": opts.parts}})
        s, log = run_with_plc(cfg, pty.plc, opts.parts, on_part=on_part)
        pty_kind = pty.kind
    lost = [i for i in log.sent if i not in log.answers]
    failsafe = cfg.plc.failsafe_verdict.value
    wrong = [i for i, v in log.answers.items() if (by_id.get(str(i)) if by_id.get(str(i)) != "fault" else failsafe) != v]
    stages = s.stage_means_ms()
    total = sum(stages.values()) or 1.0
    return {
        "parts": s.parts, "seconds": s.seconds, "parts_per_min": 60 * s.parts / max(s.seconds, 1e-9),
        "verdicts": verdict_counts(s),
        "confusion": {f"{a}->{v}": confusion[(a, v)] for a in ("good", "defective") for v in VERDICTS},
        "latency_p50_ms": s.latency(50), "latency_p99_ms": s.latency(99),
        "latency_max_ms": s.total.max if s.total.count else 0.0,
        "stage_share": {k: v / total for k, v in stages.items()},
        "plc": {"link": f"ASCII over a {pty_kind}", "triggers": len(log.sent), "answered": len(log.answers),
                "lost": lost, "mismatched": log.mismatched, "answer_differs_from_record": wrong,
                "round_trip_p50_ms": _pct(list(log.round_trip_ms.values()), 50),
                "round_trip_p99_ms": _pct(list(log.round_trip_ms.values()), 99)},
        "records": str(out / "records.sqlite"), "records_written": s.records_written,
        "reject_images": str(out / "rejects"), "station_config": str(station_yaml),
    }


def conv_key_id(bundle: Path) -> str:
    """The key id of the bundle's signature ("unsigned" when it has none)."""
    from edgead.bundle.signing import read_signature

    sig = read_signature(bundle)
    return sig.key_id if sig else "unsigned"


def _pct(values: list, q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def _print_summary(s: dict, stream) -> None:
    c = s["confusion"]
    w = stream.write
    w("\n== edgead demo summary ==\n")
    w(f"parts inspected: {s['parts']} in {s['seconds']:.1f} s ({s['parts_per_min']:.0f} parts/min)\n")
    w("confusion matrix against the ground truth:\n")
    w(f"  {'':12}" + "".join(f"{v:>9}" for v in VERDICTS) + "\n")
    for a in ("good", "defective"):
        w(f"  {a:12}" + "".join(f"{c[f'{a}->{v}']:>9}" for v in VERDICTS) + "\n")
    good = sum(c[f"good->{v}"] for v in VERDICTS)
    bad = sum(c[f"defective->{v}"] for v in VERDICTS)
    w(f"  defects caught {c['defective->reject']}/{bad}; good parts accepted {c['good->accept']}/{good}; "
      f"defects accepted {c['defective->accept']} \n")
    w(f"latency trigger-in to result-out: p50 {s['latency_p50_ms']:.1f} ms, p99 {s['latency_p99_ms']:.1f} ms, "
      f"max {s['latency_max_ms']:.1f} ms\n")
    w("stage share: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in s["stage_share"].items()) + "\n")
    p = s["plc"]
    w(f"PLC ({p['link']}): {p['answered']}/{p['triggers']} triggers answered with their own id, "
      f"{len(p['lost'])} lost, {len(p['mismatched'])} off-by-one; round trip p50 {p['round_trip_p50_ms']:.1f} ms\n")
    w(f"records: {s['records']} ({s['records_written']} parts); reject images: {s['reject_images']}\n")
    m = s.get("mqtt_north", {})
    if "skipped" in m:
        w(f"MQTT north: skipped ({m['skipped']})\n")
    elif m:
        w(f"MQTT north: {m['published']} parts acknowledged by the broker on {m['topic']}, {m['unique']} received "
          "by a subscriber, each validated against edgead/north/part-result.schema.json\n")
    w(f"model: {s['bundle']} signed by {s['signed_by']}; the station trusts only that key\n")
    w(f"station config: {s['station_config']} (rerun: edgead run {s['station_config']})\n")


def check_summary(s: dict) -> None:
    """Raise if the demo broke a promise: a lost or mismatched PLC answer, or a defect silently accepted."""
    p = s["plc"]
    if p["lost"] or p["mismatched"] or p["answer_differs_from_record"]:
        raise EdgeadError(f"demo: PLC handshake broken: lost {p['lost'][:5]}, mismatched {p['mismatched'][:5]}")
    m = s.get("mqtt_north", {})
    if m and "skipped" not in m and (not m["all_acknowledged"] or m["unique"] < s["records_written"]):
        raise EdgeadError(f"demo: MQTT north lost parts: {m['unique']} of {s['records_written']} received")
    if s["records_written"] != s["parts"]:
        raise EdgeadError(f"demo: {s['parts']} parts but {s['records_written']} records")
