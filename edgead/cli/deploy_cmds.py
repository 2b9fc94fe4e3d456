"""``edgead deploy``: one station over SSH (deploy, ``--rollback``, ``--status``) or a fleet (``--inventory``)."""
from __future__ import annotations

import argparse
import sys

from edgead.cli.output import print_json
from edgead.errors import DeployError, ExitStatus


def register(sub: argparse._SubParsersAction) -> None:
    from edgead.deploy.service import ServiceKind
    from edgead.deploy.ssh import HostKeyPolicy

    p = sub.add_parser("deploy", help="deploy a release to a station over SSH (or a fleet through ansible-core)",
                       description="Build a release, copy it over SSH, install it without torch, switch "
                                   "PREFIX/current atomically, check health (READY + self-test), roll back on "
                                   "failure. See docs/deploy.md.")
    p.add_argument("config", nargs="?", help="station config (STATION.yaml); not needed with --rollback/--status")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--rollback", action="store_true", help="switch back to the previous healthy release")
    what.add_argument("--status", action="store_true", help="show release, model hash, uptime, parts inspected")
    what.add_argument("--inventory", metavar="STATIONS.yaml", help="roll out to a fleet in waves (ansible-core)")
    p.add_argument("--host", help="user@host[:port]")
    p.add_argument("--identity", help="SSH private key")
    p.add_argument("--connect-timeout-s", type=int, default=10)
    p.add_argument("--host-key-policy", default=HostKeyPolicy.STRICT.value, choices=[k.value for k in HostKeyPolicy])
    p.add_argument("--known-hosts", help="known_hosts file (default: ssh's own)")
    p.add_argument("--prefix", default="/opt/edgead", help="install prefix on the station")
    p.add_argument("--station-python", default="python3", help="station interpreter (>= 3.10) for tools and venv")
    p.add_argument("--service", default=ServiceKind.SYSTEMD.value, choices=[k.value for k in ServiceKind],
                   help="systemd on real stations; direct: a supervisor process (no systemd as PID 1)")
    p.add_argument("--unit", default="edgead.service", help="systemd unit name")
    p.add_argument("--bundle", help="bundle to deploy (default: the config's model.bundle)")
    p.add_argument("--wheel", help="prebuilt edgead wheel (default: pip wheel of this source tree)")
    p.add_argument("--extras", default="station", help="comma-separated station extras of the wheel (never train)")
    deps = p.add_mutually_exclusive_group()
    deps.add_argument("--wheelhouse", metavar="DIR", help="ship these dependency wheels; install with --no-index")
    deps.add_argument("--venv-seed", metavar="DIR", help="directory of pre-installed dependencies on the station")
    p.add_argument("--target", default="x86-cpu", help="target profile (an engine is built on TensorRT targets)")
    p.add_argument("--selftest-good", action="append", default=[], metavar="IMAGE",
                   help="a known-good part the release must accept on the station (repeatable)")
    p.add_argument("--selftest-defective", action="append", default=[], metavar="IMAGE",
                   help="a known-defective part the release must reject on the station (repeatable)")
    p.add_argument("--selftest-data", metavar="DIR",
                   help="MVTec-layout folder for the samples not given (default: the bundle's training data: its "
                        "held-out good images and test/<defect>/ images)")
    p.add_argument("--selftest-count", type=int, default=3, help="samples of each kind taken from the data")
    p.add_argument("--health-timeout-s", type=float, default=120.0, help="how long to wait for READY")
    p.add_argument("--keep-releases", type=int, default=3,
                   help="releases kept on the station after a successful deploy (live + rollback target always)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no per-step progress on stderr")
    p.set_defaults(handler=cmd_deploy)


def _target(args):
    from edgead.deploy.ssh import HostKeyPolicy, parse_host

    if not args.host:
        raise DeployError("--host is required", hint="edgead deploy STATION.yaml --host user@host[:port]")
    return parse_host(args.host, identity=args.identity, connect_timeout_s=args.connect_timeout_s,
                      host_key_policy=HostKeyPolicy(args.host_key_policy), known_hosts=args.known_hosts)


def _station(args):
    from edgead.deploy.remote import StationOptions

    deps = "wheelhouse" if args.wheelhouse else "seed" if args.venv_seed else "index"
    return StationOptions(prefix=args.prefix, python=args.station_python, service=args.service, unit=args.unit,
                          deps=deps, venv_seed=args.venv_seed, health_timeout_s=args.health_timeout_s,
                          keep_releases=args.keep_releases)


def _release(args):
    from edgead.deploy.release import ReleaseOptions
    from edgead.deploy.samples import SampleOptions

    extras = tuple(e.strip() for e in args.extras.split(",") if e.strip())
    samples = SampleOptions(good=tuple(args.selftest_good), defective=tuple(args.selftest_defective),
                            data=args.selftest_data, count=args.selftest_count)
    return ReleaseOptions(bundle=args.bundle, wheel=args.wheel, wheelhouse=args.wheelhouse, extras=extras,
                          target=args.target, samples=samples)


def _print_status(result: dict) -> None:
    if result.get("current") is None:
        print(f"nothing deployed under {result.get('prefix', '?')}")
        return
    uptime = "-" if result.get("uptime_s") is None else f"{result['uptime_s']:.0f} s"
    print(f"release   {result['current']}\nmodel     {result['model_hash'][:16]}\n"
          f"edgead    {result['edgead_version']}\nservice   {result['service']} ({result.get('service_detail', '')})\n"
          f"uptime    {uptime}\nparts     {result['parts_inspected']}\nsigned by {result.get('signed_by') or 'nobody'}")
    test = result.get("selftest")
    if test is None:
        print("self-test none recorded (released before edgead kept it)")
    else:
        print(f"self-test {'passed' if test.get('passed') else 'FAILED'}: known-good accepted "
              f"{test.get('good_accepted', '?')}, known-defective rejected {test.get('defective_rejected', '?')}")
    last = result.get("last_deploy")
    if last and not last.get("ok"):
        print(f"last deploy {last.get('release')} FAILED at step {last.get('step')!r}: {last.get('error')}")
    for rel in result.get("releases", []):
        print(f"  {'*' if rel['name'] == result['current'] else ' '} {rel['name']}{'  FAILED' if rel['failed'] else ''}")


def cmd_deploy(args) -> int:
    from edgead.deploy import fleet, remote

    if args.inventory:
        report = fleet.roll_out(args.inventory, _release(args), wheel=args.wheel,
                                health_timeout_s=args.health_timeout_s)
        print_json(report.as_dict()) if args.json else print(report.summary())
        return ExitStatus.OK
    if args.status:
        result = remote.status(_target(args), _station(args))
        print_json(result) if args.json else _print_status(result)
        return ExitStatus.OK
    if args.rollback:
        result = remote.rollback(_target(args), _station(args))
        print_json(result) if args.json else print(f"rolled back to {result['release']} (was {result['previous']})")
        return ExitStatus.OK
    if not args.config:
        raise DeployError("a station config is required", hint="edgead deploy STATION.yaml --host user@host")
    result = remote.deploy(args.config, _target(args), _station(args), _release(args),
                           show_progress=not (args.quiet or args.json))
    if args.json:
        print_json(result)
    else:
        test = result["selftest"]
        print(f"release {result['release']} is live (model {result['model_hash'][:12]}, self-test passed: "
              f"known-good accepted {test['good_accepted']}, known-defective rejected {test['defective_rejected']}); "
              f"previous {result['previous']}", file=sys.stdout)
    return ExitStatus.OK
