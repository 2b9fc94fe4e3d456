"""Fleet roll-out in waves through ansible-core: canaries first, then ``wave`` 1, 2, ...; stop on the first failure.

edgead builds one release per station (its own config) and writes an ansible inventory (one group per wave) and a
playbook (one play per wave, ``any_errors_fatal``); ansible copies each release and runs the same
``tools/station_steps.py deploy`` as a single-station deploy. Ansible's state lives in a temp dir, the interpreter
is always set, and SSH connection sharing is off (no mux process outlives the run).

Inventory (``stations.yaml``)::

    defaults: {user: root, identity: keys/edgead, prefix: /opt/edgead, python: /usr/bin/python3, service: systemd}
    stations:
      line1: {host: 10.0.0.11, config: line1.yaml, canary: true}
      line2: {host: 10.0.0.12, port: 2222, config: line2.yaml, wave: 1}

Example:
    >>> report = roll_out("stations.yaml", ReleaseOptions())                # doctest: +SKIP
    >>> print(report.summary())                                             # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import yaml

from edgead.config.loader import convert, load_yaml
from edgead.deploy.release import ReleaseOptions, build_release, build_wheel
from edgead.deploy.remote import StationOptions
from edgead.deploy.service import ServiceKind
from edgead.deploy.ssh import HostKeyPolicy, host_key_options
from edgead.errors import ConfigError, DeployError
from edgead.extras import extra_for, install_hint

STATION_KEYS = {"host": None, "port": 22, "user": None, "identity": None, "config": None, "wave": 1,
                "canary": False, "prefix": "/opt/edgead", "python": "/usr/bin/python3",
                "service": ServiceKind.SYSTEMD.value, "venv_seed": None, "host_key_policy": HostKeyPolicy.STRICT.value,
                "known_hosts": None, "selftest_good": None, "selftest_defective": None, "selftest_data": None,
                "bundle": None}
PATH_KEYS = ("identity", "config", "known_hosts", "selftest_data", "bundle")
PATH_LIST_KEYS = ("selftest_good", "selftest_defective")
FORCED_ANSIBLE_ENV = ("ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_SSH_ARGS", "ANSIBLE_SSH_EXTRA_ARGS",
                      "ANSIBLE_SSH_COMMON_ARGS")
"""Variables of the caller's environment that could weaken host-key checking: dropped, then set here."""


@dataclass(frozen=True)
class Station:
    """One station of an inventory (paths resolved against the inventory's folder)."""

    name: str
    host: str
    config: str
    port: int = 22
    user: str | None = None
    identity: str | None = None
    wave: int = 1
    canary: bool = False
    prefix: str = "/opt/edgead"
    python: str = "/usr/bin/python3"
    service: str = ServiceKind.SYSTEMD.value
    venv_seed: str | None = None
    host_key_policy: str = HostKeyPolicy.STRICT.value
    known_hosts: str | None = None
    selftest_good: tuple[str, ...] | None = None
    selftest_defective: tuple[str, ...] | None = None
    selftest_data: str | None = None
    bundle: str | None = None


KEY_TYPES = {**{k: v for k, v in typing.get_type_hints(Station).items() if k != "name"},
             "service": ServiceKind, "host_key_policy": HostKeyPolicy}
"""Each inventory key's type; the enums' values are what the keys hold (plain strings)."""


def load_inventory(path: str | Path) -> list[Station]:
    """Parse an inventory file; unknown keys are refused, every error names the station and key.

    Args:
        path: the YAML inventory.

    Returns:
        The stations, in file order.

    Raises:
        ConfigError: on a malformed inventory.
    """
    path = Path(path)
    raw = load_yaml(path, "inventory")
    defaults = raw.get("defaults") or {}
    stations = raw.get("stations") or {}
    if not isinstance(stations, dict) or not stations:
        raise ConfigError(f"inventory {path}: 'stations' must map names to settings", hint="see docs/deploy.md")
    out = []
    for name, settings in stations.items():
        merged = {**defaults, **(settings or {})}
        unknown = sorted(set(merged) - set(STATION_KEYS))
        if unknown:
            raise ConfigError(f"inventory {path}: station {name!r}: unknown key {unknown[0]!r}",
                              hint=f"known keys: {', '.join(STATION_KEYS)}")
        for key in ("host", "config"):
            if not merged.get(key):
                raise ConfigError(f"inventory {path}: station {name!r} has no {key!r}")
        for key in PATH_LIST_KEYS:  # one sample may be given as a plain path
            if isinstance(merged.get(key), str):
                merged[key] = [merged[key]]
        for key, value in merged.items():  # types and enums, each error naming the station and the key
            if value is not None:
                value = convert(KEY_TYPES[key], value, f"inventory {path}: stations.{name}.{key}")
                merged[key] = value.value if isinstance(value, Enum) else value
        for key in PATH_KEYS:
            if merged.get(key):
                merged[key] = str((path.parent / os.path.expanduser(str(merged[key]))).resolve())
        for key in PATH_LIST_KEYS:
            if merged.get(key):
                merged[key] = tuple(str((path.parent / os.path.expanduser(str(v))).resolve()) for v in merged[key])
        out.append(Station(name=str(name), **merged))
    return out


def plan_waves(stations: list[Station]) -> list[list[Station]]:
    """Canaries first (their own wave), then the ``wave`` numbers in ascending order (pure).

    Args:
        stations: the inventory.

    Returns:
        Non-empty waves, in roll-out order.
    """
    canaries = [s for s in stations if s.canary]
    rest = sorted({s.wave for s in stations if not s.canary})
    waves = [canaries] + [[s for s in stations if not s.canary and s.wave == w] for w in rest]
    return [w for w in waves if w]


def station_options(s: Station, health_timeout_s: float) -> StationOptions:
    deps = "seed" if s.venv_seed else "index"
    return StationOptions(prefix=s.prefix, python=s.python, service=s.service, deps=deps, venv_seed=s.venv_seed,
                          health_timeout_s=health_timeout_s)


def ansible_inventory(waves: list[list[Station]], releases: dict[str, Path], health_timeout_s: float) -> dict:
    """The ansible YAML inventory: a group ``wave_N`` per wave; host vars carry the release and the step argv."""
    groups = {}
    for i, wave in enumerate(waves):
        hosts = {}
        for s in wave:
            rel = releases[s.name]
            incoming = f"{s.prefix}/releases/.incoming"
            argv = [s.python, f"{incoming}/{rel.name}/tools/station_steps.py", "deploy", "--release", rel.name,
                    *station_options(s, health_timeout_s).step_args()]
            hv = {"ansible_host": s.host, "ansible_port": s.port, "ansible_python_interpreter": s.python,
                  "ansible_remote_tmp": f"{s.prefix}/.ansible-tmp", "edgead_release_src": str(rel),
                  "edgead_incoming": incoming, "edgead_steps_argv": argv}
            if s.user:
                hv["ansible_user"] = s.user
            if s.identity:
                hv["ansible_ssh_private_key_file"] = s.identity
            # this station's host-key policy and known_hosts, for this host only (ssh keeps an option's first
            # value, and nothing global sets these)
            hv["ansible_ssh_extra_args"] = shlex.join(host_key_options(HostKeyPolicy(s.host_key_policy),
                                                                       s.known_hosts))
            hosts[s.name] = hv
        groups[f"wave_{i}"] = {"hosts": hosts}
    return {"all": {"children": groups}}


def playbook(n_waves: int, results_dir: Path) -> list[dict]:
    """One play per wave; ``any_errors_fatal`` stops the whole roll-out on the first failing station."""
    tasks = [
        {"name": "incoming folder", "ansible.builtin.file": {"path": "{{ edgead_incoming }}", "state": "directory"}},
        {"name": "copy the release", "ansible.builtin.copy": {"src": "{{ edgead_release_src }}",
                                                              "dest": "{{ edgead_incoming }}/"}},
        {"name": "station steps: verify, install, switch, health (rollback on failure)",
         "ansible.builtin.command": {"argv": "{{ edgead_steps_argv }}"}, "register": "edgead_step",
         "failed_when": False, "changed_when": True},
        {"name": "keep the station's result", "delegate_to": "localhost",
         "ansible.builtin.copy": {"content": "{{ edgead_step.stdout }}\n",
                                  "dest": f"{results_dir}/{{{{ inventory_hostname }}}}.json"}},
        {"name": "stop the roll-out when the station failed", "ansible.builtin.fail":
            {"msg": "{{ edgead_step.stdout | default('') }} {{ edgead_step.stderr | default('') }}"},
         "when": "edgead_step.rc != 0"},
    ]
    return [{"name": f"wave {i}", "hosts": f"wave_{i}", "gather_facts": False, "any_errors_fatal": True,
             "tasks": tasks} for i in range(n_waves)]


def ansible_env(home: Path) -> dict:
    """The environment for ansible-playbook: state in ``home``, no connection sharing, and host-key checking on.

    Host-key checking is never turned off globally: each station's policy and known_hosts travel as its own
    ``ansible_ssh_extra_args`` (:func:`ansible_inventory`), so one ``accept-new`` or ``off`` station changes
    nothing for the others, and a changed key is refused on every strict or ``accept-new`` station.
    """
    for sub in ("tmp", "cp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in FORCED_ANSIBLE_ENV}
    return dict(env, ANSIBLE_HOME=str(home), ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
                ANSIBLE_SSH_CONTROL_PATH_DIR=str(home / "cp"), ANSIBLE_HOST_KEY_CHECKING="True",
                ANSIBLE_SSH_ARGS="-o ControlMaster=no -o ControlPath=none -o BatchMode=yes", ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_NOCOLOR="1",
                ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_DEPRECATION_WARNINGS="False")


UNREACHABLE = re.compile(r"^fatal: \[([^\]]+)\]: UNREACHABLE! => (.*)$", re.MULTILINE)


def unreachable_hosts(output: str) -> dict[str, str]:
    """Stations ansible could not reach (a refused host key, no route, a refused login), with ssh's reason (pure)."""
    out = {}
    for name, rest in UNREACHABLE.findall(output):
        try:
            why = json.loads(rest).get("msg", rest)
        except ValueError:
            why = rest
        out[name] = " ".join(str(why).split())[-400:]
    return out


def ansible_playbook_bin() -> str:
    """The ansible-playbook next to this Python, or on PATH.

    Raises:
        DeployError: when ansible-core is not installed.
    """
    local = Path(sys.executable).parent / "ansible-playbook"
    found = str(local) if local.exists() else shutil.which("ansible-playbook")
    if not found:
        raise DeployError("fleet roll-out needs ansible-core (ansible-playbook not found)",
                          hint=install_hint(extra_for("ansible")))
    return found


@dataclass
class FleetReport:
    """What happened to each station: ``ok``, ``failed`` or ``not run``, with the station's result."""

    waves: list[list[str]]
    results: dict[str, dict] = field(default_factory=dict)
    ansible_rc: int = 0
    ansible_tail: str = ""

    def outcome(self, name: str) -> str:
        res = self.results.get(name)
        return "not run" if res is None else "ok" if res.get("ok") else "failed"

    @property
    def ok(self) -> bool:
        return self.ansible_rc == 0 and all(self.outcome(n) == "ok" for w in self.waves for n in w)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "waves": self.waves, "ansible_rc": self.ansible_rc,
                "stations": {n: {"outcome": self.outcome(n), **self.results.get(n, {})}
                             for w in self.waves for n in w}}

    def summary(self) -> str:
        lines = []
        for i, wave in enumerate(self.waves):
            for n in wave:
                res = self.results.get(n, {})
                why = res.get("release", "") if res.get("ok") else res.get("error", "")
                lines.append(f"wave {i}  {n:<16} {self.outcome(n):<8} {why}")
        return "\n".join(lines)


def roll_out(inventory: str | Path, options: ReleaseOptions = ReleaseOptions(), *, wheel: str | None = None,
             health_timeout_s: float = 120.0) -> FleetReport:
    """Build one release per station and roll them out in waves with ansible-playbook.

    Args:
        inventory: the stations file.
        options: release options shared by all stations (per-station ``bundle`` and ``selftest_*`` override them).
        wheel: a prebuilt wheel (default: build one, once).
        health_timeout_s: READY timeout per station.

    Returns:
        The report (all stations ``ok``).

    Raises:
        DeployError: when a station failed (the roll-out stopped there; the message has the per-station summary).
    """
    stations = load_inventory(inventory)
    waves = plan_waves(stations)
    with tempfile.TemporaryDirectory(prefix="edgead-fleet-") as tmp:
        tmp = Path(tmp)
        wheel = wheel or options.wheel or str(build_wheel(tmp / "wheel"))
        releases = {}
        for s in stations:
            samples = dataclasses.replace(options.samples, good=s.selftest_good or options.samples.good,
                                          defective=s.selftest_defective or options.samples.defective,
                                          data=s.selftest_data or options.samples.data)
            opts = dataclasses.replace(options, wheel=wheel, bundle=s.bundle or options.bundle, samples=samples)
            releases[s.name] = build_release(s.config, tmp / "releases" / s.name, opts).root
        results_dir = tmp / "results"
        results_dir.mkdir()
        (tmp / "inventory.yml").write_text(yaml.safe_dump(ansible_inventory(waves, releases, health_timeout_s)))
        (tmp / "playbook.yml").write_text(yaml.safe_dump(playbook(len(waves), results_dir), sort_keys=False))
        proc = subprocess.run([ansible_playbook_bin(), "-i", str(tmp / "inventory.yml"), str(tmp / "playbook.yml")],
                              capture_output=True, text=True, env=ansible_env(tmp / "ansible"))
        report = FleetReport([[s.name for s in w] for w in waves], ansible_rc=proc.returncode,
                             ansible_tail=(proc.stdout + proc.stderr)[-3000:])
        for name, why in unreachable_hosts(proc.stdout).items():
            report.results[name] = {"ok": False, "error": f"unreachable: {why}"}
        for path in results_dir.glob("*.json"):
            try:
                report.results[path.stem] = json.loads(path.read_text().strip().splitlines()[-1])
            except (ValueError, IndexError):
                report.results[path.stem] = {"ok": False, "error": f"unreadable result: {path.read_text()[:300]!r}"}
    if not report.ok:
        raise DeployError("fleet roll-out stopped:\n" + report.summary() +
                          ("" if report.results else f"\nansible output: {report.ansible_tail}"),
                          hint="fix the failed station; stations marked 'not run' were not touched")
    return report
