"""Fixtures for deploy tests: a real OpenSSH server on 127.0.0.1 (throwaway keys), one wheel, one tiny bundle,
a venv seed (the station dependencies of edgead, without torch), and station configs.

sshd, the wheel, the bundle and the seed are built once per session.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
EDGEAD = str(Path(sys.executable).parent / "edgead")
STATION_PYTHON = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")
IMAGE_SIZE = 128


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kw)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A foreground sshd on a free 127.0.0.1 port; yields dict(port, key, known_hosts, user)."""
    for tool in (SSHD, shutil.which("ssh"), shutil.which("scp"), shutil.which("ssh-keygen")):
        if not tool or not os.path.exists(tool):
            pytest.skip(f"OpenSSH ({tool or 'ssh/scp/ssh-keygen'}) is not installed: apt-get install openssh-server")
    root = tmp_path_factory.mktemp("sshd")
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", root / "host_key")
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", root / "user_key")
    shutil.copy(root / "user_key.pub", root / "authorized_keys")
    port = _free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"Subsystem sftp {SFTP_SERVER}\n")
    os.makedirs("/run/sshd", exist_ok=True)
    log = open(root / "sshd.log", "wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdout=log, stderr=log)
    info = {"port": port, "key": str(root / "user_key"), "known_hosts": str(root / "known_hosts"),
            "user": "root", "host": f"root@127.0.0.1:{port}"}
    deadline = time.monotonic() + 20
    while True:
        probe = subprocess.run(["ssh", "-p", str(port), "-i", info["key"], "-o", "BatchMode=yes",
                                "-o", "StrictHostKeyChecking=accept-new", "-o",
                                f"UserKnownHostsFile={info['known_hosts']}", "root@127.0.0.1", "true"],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip(f"sshd did not come up: {probe.stderr.strip()} {(root / 'sshd.log').read_text()[-500:]}")
        time.sleep(0.2)
    yield info
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    from edgead.deploy import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _run(EDGEAD, "synth", "--out", root / "parts", "--n-train", "20", "--n-test-good", "2", "--n-test-defect", "2")
    _run(EDGEAD, "synth", "--out", root / "captures", "--captures", "4", "--defect-rate", "0")
    return root


@pytest.fixture(scope="session")
def bundle(tmp_path_factory, dataset, bundle_key):
    """PaDiM trained and signed by the CLI (``--sign-key``); its training data supplies the self-test samples."""
    out = tmp_path_factory.mktemp("bundle") / "padim"
    _run(EDGEAD, "train", "--data", dataset / "parts", "--out", out, "--model", "padim", "--image-size",
         str(IMAGE_SIZE), "--quiet", "--no-eval", "--sign-key", bundle_key.key)
    return out


def _installed(name: str) -> md.Distribution:
    """``name`` as installed in this venv's site-packages (never a stale ``*.egg-info`` in the working tree, which
    sits earlier on ``sys.path`` and may predate a new dependency)."""
    site = [p for p in sys.path if p.endswith("site-packages")]
    for dist in md.distributions(name=name, path=site):
        return dist
    return md.distribution(name)


def _requirement_closure(root: str, extras: tuple[str, ...]) -> set[str]:
    """Distribution names needed by ``root[extras]`` in this environment (root itself excluded)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen, todo = set(), [(root, extras)]
    while todo:
        name, extra = todo.pop()
        for spec in _installed(name).requires or []:
            req = Requirement(spec)
            envs = [{"extra": e} for e in extra] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = canonicalize_name(req.name)
            if key not in seen:
                seen.add(key)
                todo.append((req.name, tuple(req.extras)))
    return seen


@pytest.fixture(scope="session")
def venv_seed(tmp_path_factory):
    """A site-packages-like folder linking exactly the station dependencies of edgead[station] (no torch)."""
    seed = tmp_path_factory.mktemp("seed")
    for name in sorted(_requirement_closure("edgead", ("station",))):
        dist = _installed(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__"}:
            src = Path(dist.locate_file(top))
            if src.exists() and not (seed / top).exists():
                (seed / top).symlink_to(src)
    assert not (seed / "torch").exists()
    return seed


@pytest.fixture()
def needs_ansible():
    from edgead.deploy import fleet
    from edgead.errors import DeployError

    try:
        fleet.ansible_playbook_bin()
    except DeployError:
        pytest.skip("ansible-core is not installed (pip install 'edgead[fleet]')")


@pytest.fixture(scope="session")
def daemon_available() -> bool:
    """True when `edgead run` exists in this build (the station daemon)."""
    return subprocess.run([EDGEAD, "run", "--help"], capture_output=True).returncode == 0


@pytest.fixture()
def needs_daemon(daemon_available):
    if not daemon_available:
        pytest.skip("`edgead run` (the station daemon) is not in this build yet: the good-path deploy needs it")


@pytest.fixture()
def make_config(tmp_path, bundle, dataset, bundle_key):
    """Write a station config trusting the tests' key (by its .pub file, which the release inlines);
    ``camera_dir`` overrides the folder:// camera (a missing one breaks the daemon)."""
    def make(name: str = "station.yaml", camera_dir: str | None = None) -> Path:
        camera = camera_dir or str(dataset / "captures")
        cfg = {"camera": {"url": f"folder://{camera}?fps=5&loop=1"}, "model": {"bundle": str(bundle)},
               "security": {"trusted_keys": [str(bundle_key.pub)]},
               "plc": {"url": "loop://", "protocol": "discrete"},
               "storage": {"database": str(tmp_path / f"{Path(name).stem}-records.sqlite")},
               "observe": {"metrics_listen": None}}  # two stations on one host must not share a metrics port
        path = tmp_path / name
        path.write_text(yaml.safe_dump(cfg))
        return path
    return make


@pytest.fixture()
def prefixes(tmp_path):
    """Fresh install prefixes; their direct supervisors are stopped at the end of the test."""
    made = []

    def make(name: str = "opt-edgead") -> Path:
        made.append(tmp_path / name)
        return made[-1]
    yield make
    from edgead.deploy import station_steps

    for prefix in made:
        if prefix.exists():
            station_steps.main(["stop", "--prefix", str(prefix), "--service", "direct"])


@pytest.fixture()
def deploy_args(sshd, wheel, venv_seed, dataset):
    """The common `edgead deploy` options for the localhost station."""
    def make(prefix: Path, *extra: str) -> list[str]:
        return ["deploy", "--host", sshd["host"], "--identity", sshd["key"], "--host-key-policy", "accept-new",
                "--known-hosts", sshd["known_hosts"], "--prefix", str(prefix), "--station-python", STATION_PYTHON,
                "--service", "direct", "--wheel", str(wheel), "--venv-seed", str(venv_seed),
                "--health-timeout-s", "90", *extra]  # self-test samples: from the bundle's training data
    return make
