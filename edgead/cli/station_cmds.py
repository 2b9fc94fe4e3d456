"""``edgead run | check | records``: the station daemon, its config check, and the record export."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from edgead.errors import ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the station daemon (capture, align, infer, decide, signal, record)")
    p.add_argument("config", metavar="STATION.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. camera.timeout_ms=500 (wins over the file)")
    p.add_argument("--max-parts", type=int, default=None, help="stop after N parts")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("check", help="validate a station config (keys, units, files, bundle hashes, ROIs)")
    p.add_argument("config", metavar="STATION.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("selftest", help="judge known-good and known-defective images through the station's own path "
                                        "(reference, ROIs, engine, decision rule); pass only if all are right")
    p.add_argument("config", metavar="STATION.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--samples", default=None, metavar="samples.json", help="a release's selftest/samples.json")
    p.add_argument("--good", nargs="+", default=[], metavar="IMAGE", help="images that must be accepted")
    p.add_argument("--defective", nargs="+", default=[], metavar="IMAGE", help="images that must be rejected")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(handler=cmd_selftest)

    p = sub.add_parser("records", help="export part records as CSV, compare the shadow model (--compare), list the "
                       "drift events (--events), the OPC UA audit trail (--audit), or label a part: edgead records "
                       "label DB|STATION.yaml PART_ID good|defect",
                       usage="edgead records [-h] DB|STATION.yaml [--out OUT] [--verdict V] [--since T] [--until T] "
                             "[--compare [--json]] [--events [--json]] [--audit [--json]]\n"
                             "       edgead records label DB|STATION.yaml PART_ID good|defect "
                             "[--who NAME] [--note TEXT] [--row N]")
    p.add_argument("database", help="the station's records.sqlite, or its STATION.yaml (storage.database); or "
                   "'label'")
    p.add_argument("label_args", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--compare", action="store_true", help="the shadow model against the live one: agreement, new "
                   "accepts, new rejects, and who was right on the labelled parts")
    p.add_argument("--events", action="store_true", help="the station's events (drift alarms raised and cleared), "
                   "oldest first, within --since/--until")
    p.add_argument("--audit", action="store_true", help="the OPC UA audit trail: who called or wrote what, and the "
                   "answer (refusals too), oldest first (--since/--until apply)")
    p.add_argument("--json", action="store_true", help="with --compare: one JSON object; with --events or --audit: "
                   "one JSON object per line")
    p.add_argument("--who", default=None, help="label: who labels (default: the login name)")
    p.add_argument("--note", default=None, help="label: why (e.g. 'found at final assembly')")
    p.add_argument("--row", type=int, default=None, help="label: the part's row id (when its part id repeats)")
    p.add_argument("--out", default="-", help="CSV file (default: stdout)")
    p.add_argument("--verdict", default=None, choices=["accept", "reject", "no-read", "fault"])
    p.add_argument("--since", default=None, help="ISO time, e.g. 2026-11-22T08:00:00")
    p.add_argument("--until", default=None)
    p.set_defaults(handler=cmd_records)


def _load(args):
    from edgead.config import parse_set
    from edgead.daemon.config import load_station

    overrides = parse_set(args.set)
    if getattr(args, "max_parts", None) is not None:
        overrides.setdefault("runtime", {})["max_parts"] = args.max_parts
    return load_station(args.config, overrides)


def cmd_check(args) -> int:
    from edgead.daemon.preflight import check_station
    from edgead.redact import redact

    cfg = _load(args)
    for note in check_station(cfg):
        print(redact(f"ok: {note}"))
    print(redact(f"ok: {args.config} is valid (camera {cfg.camera.url}, plc {cfg.plc.protocol.value} on {cfg.plc.url}, "
                 f"trigger {cfg.trigger_source.value}); the devices themselves are opened by `edgead run`"))
    return ExitStatus.OK


def cmd_run(args) -> int:
    from edgead.daemon.runner import Runner, verdict_counts
    from edgead.observe.logs import setup_logging

    cfg = _load(args)
    setup_logging(cfg.observe.log_level.upper(), cfg.observe.log_format)
    runner = Runner(cfg)  # the station runs the same checks as `edgead check` before it opens a device
    runner.install_signal_handlers()
    s = runner.run()
    counts = ", ".join(f"{k} {v}" for k, v in verdict_counts(s).items())
    print(f"{s.parts} parts in {s.seconds:.1f} s ({counts}); latency p50 {s.latency(50):.1f} ms, "
          f"p99 {s.latency(99):.1f} ms; stopped by {s.stopped_by}; records in {s.database}", file=sys.stderr)
    return ExitStatus.OK


def cmd_selftest(args) -> int:
    from pathlib import Path

    from edgead.cli.output import print_json
    from edgead.daemon.selftest import Sample, check_passed, read_samples, run_selftest
    from edgead.verdict import Verdict

    samples = read_samples(args.samples) if args.samples else []
    samples += [Sample(Path(p), Verdict.ACCEPT) for p in args.good]
    samples += [Sample(Path(p), Verdict.REJECT) for p in args.defective]
    result = run_selftest(_load(args), samples)
    if args.json:
        print_json(result.to_dict())
    else:
        for r in result.results:
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.image}: {r.verdict} (expected {r.expect})")
    check_passed(result)
    if not args.json:
        print(f"self-test passed: {len(result.results)} samples, model {result.model_hash[:12]}, {result.trust}")
    return ExitStatus.OK


def records_database(text: str) -> Path:
    """A records database given as the file itself or as the station config naming it (``storage.database``).

    Raises:
        DataError: the file does not exist (reading records never creates a database).
    """
    from edgead.errors import DataError, short_path

    db = Path(text)
    if db.suffix in (".yaml", ".yml") and db.is_file():
        from edgead.daemon.config import load_station

        db = load_station(db).storage.database
    if not db.is_file():
        what = "is a directory" if db.is_dir() else "does not exist"
        raise DataError(f"record database {short_path(db)} {what}",
                        hint="give the station's storage.database file (edgead check STATION.yaml prints it)")
    return db


def cmd_label(args) -> int:
    import getpass

    from edgead.errors import ConfigError
    from edgead.records import RecordStore
    from edgead.records.labels import add_label, find_part

    if len(args.label_args) != 3:
        raise ConfigError("records label needs DB|STATION.yaml PART_ID good|defect",
                         hint="e.g. edgead records label /var/lib/edgead/records.sqlite A17 good --note 'dust'")
    target, part_id, label = args.label_args
    who = args.who or os.environ.get("SUDO_USER") or getpass.getuser()
    with RecordStore(records_database(target)) as store:
        part = find_part(store, part_id, args.row)
        rec = add_label(store, part, label, who=who, note=args.note)
    print(f"part {part.part_id} (row {part.id}, verdict sent: {part.verdict.value}) labelled {rec.label.value} by "
          f"{rec.who} at {rec.t_utc}")
    return ExitStatus.OK


def cmd_records(args) -> int:
    from edgead.errors import ConfigError
    from edgead.records import RecordStore
    from edgead.records.store import parse_iso_ns

    if args.database == "label":
        return cmd_label(args)
    if args.label_args:
        raise ConfigError(f"records: unexpected arguments {' '.join(args.label_args)}",
                         hint="edgead records DB [--compare]; to label: edgead records label DB PART_ID good|defect")

    db = records_database(args.database)  # reading records never creates a database
    if args.compare:
        from edgead.cli.output import print_json
        from edgead.records.compare import compare

        with RecordStore(db) as store:
            result = compare(store)
        if args.json:
            print_json(result.to_dict())
        else:
            print("\n".join(result.lines()))
        return ExitStatus.OK
    if args.events:
        return _print_events(db, parse_iso_ns(args.since, "--since"), parse_iso_ns(args.until, "--until"), args.json)
    if args.audit:
        return _print_audit(db, args)
    with RecordStore(db) as store:
        dest = sys.stdout if args.out == "-" else args.out
        n = store.export_csv(dest, since=parse_iso_ns(args.since, "--since"),
                             until=parse_iso_ns(args.until, "--until"), verdict=args.verdict)
    if args.out != "-":
        print(f"{n} records written to {args.out}", file=sys.stderr)
    return ExitStatus.OK


def _print_events(db: Path, since: int | None, until: int | None, as_json: bool) -> int:
    """``records --events``: one line per event (or one JSON object per line, as MQTT north sends it)."""
    from edgead.north.message import encode, event_message
    from edgead.records import RecordStore
    from edgead.records.events import EventTable

    with RecordStore(db) as store:
        events = EventTable(store).query(since=since, until=until)
    for e in events:
        if as_json:
            print(encode(event_message(e, e.station)).decode())
        else:
            value, bound = ("-" if v is None else f"{v:.4g}" for v in (e.value, e.bound))
            print(f"{e.t_utc} {e.kind.value} {e.state.value:7} {e.metric:10} value {value} bound {bound}: {e.message}")
    if not events:
        print("no events on record", file=sys.stderr)
    return ExitStatus.OK


def _print_audit(db: Path, args) -> int:
    import json

    from edgead.records import RecordStore
    from edgead.records.audit import audit_rows
    from edgead.records.store import parse_iso_ns

    with RecordStore(db) as store:
        rows = audit_rows(store, since=parse_iso_ns(args.since, "--since"), until=parse_iso_ns(args.until, "--until"))
    for row in rows:
        print(json.dumps(row.to_dict(), ensure_ascii=False) if args.json else row.line())
    if not args.json:
        print(f"{len(rows)} audit rows", file=sys.stderr)
    return ExitStatus.OK
