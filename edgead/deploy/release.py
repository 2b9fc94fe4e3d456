"""Build a release on the build host: the project wheel, the verified and signed bundle, the reference image the
station aligns to, the station config (trusted keys inlined), known-good and known-defective self-test samples, the
station-side tools, and ``manifest.json`` with the sha256 of every file.

A tampered bundle, or one the station's config does not trust, is refused here, before anything is copied.

Example:
    >>> rel = build_release("station.yaml", "/tmp/out", ReleaseOptions(wheel="dist/edgead-0.1.0-py3-none-any.whl",
    ...                     samples=SampleOptions(good=("good.png",), defective=("dent.png",))))  # doctest: +SKIP
    >>> rel.name, rel.manifest["model_hash"][:12]                          # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import edgead
from edgead.bundle.trust import TrustPolicy
from edgead.deploy import manifest as mf
from edgead.deploy.samples import SampleOptions, choose_samples
from edgead.deploy.station_steps import BACKENDS_WITH_ENGINE, ENGINE, SAMPLES
from edgead.errors import BundleError, ConfigError, DeployError

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "/var/lib/edgead/records.sqlite"
FORBIDDEN_EXTRAS = {"train": "it installs torch; the station runs the ONNX/TensorRT model without it"}
STATION_EXTRAS = ("station", "genicam", "trt", "jetson", "mqtt", "opcua")
"""The extras a station may need (``edgead.extras.EXTRAS``)."""
STATION_TOOLS = ("station_steps.py", "service.py", "health.py", "manifest.py")
SOURCE_PARTS = ("setup.py", "README.md", "edgead", "convert", "calibration")


@dataclass(frozen=True)
class ReleaseOptions:
    """What goes into a release.

    Attributes:
        bundle: the bundle (directory or ``.edgead``); None: the config's ``model.bundle``.
        wheel: a prebuilt edgead wheel; None: build one from the source tree (``pip wheel --no-deps``).
        wheelhouse: a folder of dependency wheels to ship for offline stations (``--deps wheelhouse``).
        extras: station extras of the wheel (never ``train``).
        target: the target profile name (``convert/profiles``); decides whether an engine is built on the station.
        samples: the self-test samples (:class:`~edgead.deploy.samples.SampleOptions`; default: from the bundle's
            training data).
    """

    bundle: str | None = None
    wheel: str | None = None
    wheelhouse: str | None = None
    extras: tuple[str, ...] = ("station",)
    target: str = "x86-cpu"
    samples: SampleOptions = SampleOptions()


@dataclass(frozen=True)
class Release:
    """A release folder ready to copy: ``root.name == name``."""

    root: Path
    name: str
    manifest: dict = field(repr=False)


def release_name(now: dt.datetime | None = None) -> str:
    """A sortable UTC timestamp name, e.g. ``20261122T080000.123456Z``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


def source_root() -> Path | None:
    """The source tree edgead runs from (with setup.py), or None for an installed wheel."""
    root = Path(edgead.__file__).resolve().parents[1]
    return root if (root / "setup.py").is_file() else None


def build_wheel(out_dir: str | Path, source: str | Path | None = None) -> Path:
    """``pip wheel --no-deps`` of the project, built from a copy of the source tree (the tree stays clean).

    Args:
        out_dir: where the wheel goes.
        source: the source tree (default :func:`source_root`).

    Returns:
        The wheel file.

    Raises:
        DeployError: when there is no source tree or the build fails.
    """
    source = Path(source) if source else source_root()
    if source is None:
        raise DeployError("no edgead source tree to build a wheel from", hint="pass --wheel edgead-*.whl")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgead-wheel-") as tmp:
        for part in SOURCE_PARTS:
            src = source / part
            if src.is_dir():
                shutil.copytree(src, Path(tmp) / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif src.is_file():
                shutil.copy2(src, Path(tmp) / part)
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                               "--disable-pip-version-check", "-w", str(out_dir), tmp], capture_output=True, text=True)
    if proc.returncode != 0:
        raise DeployError(f"pip wheel failed: {proc.stderr.strip()[-800:]}")
    wheels = sorted(out_dir.glob(f"edgead-{edgead.__version__}-*.whl"))
    if not wheels:
        raise DeployError(f"pip wheel wrote no edgead-{edgead.__version__} wheel into {out_dir}")
    return wheels[-1]


def _load_config(path: Path) -> dict:
    from edgead.config import load_yaml

    return load_yaml(path, "station config")


def _bundle_path(cfg: dict, config_path: Path, option: str | None) -> Path:
    raw = option or (cfg.get("model") or {}).get("bundle")
    if not raw:
        raise ConfigError(f"station config {config_path}: no model.bundle", hint="set model.bundle or pass --bundle")
    path = Path(raw)
    return path if path.is_absolute() or option else config_path.parent / path


def _station_path(cfg_path: Path, raw) -> Path:
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else cfg_path.parent / path


def _inline_keys(cfg: dict, config: Path) -> TrustPolicy:
    """Replace ``security.trusted_keys`` paths (relative to the config) by the key lines, so the release carries
    the keys its station config names; returns the policy."""
    from edgead.bundle.signing import read_public_key

    sec = cfg.get("security") or {}
    keys = [read_public_key(k, config.parent, where=f"station config {config}: security.trusted_keys[{i}]")
            for i, k in enumerate(sec.get("trusted_keys") or [])]
    if keys:
        cfg["security"] = {**sec, "trusted_keys": [k.to_line() for k in keys]}
    return TrustPolicy(tuple(keys), bool(sec.get("allow_unsigned", False)), sec.get("model_sha256"))


def _ship_reference(cfg: dict, config: Path, root: Path) -> str | None:
    """Copy the config's reference image into ``reference/`` and point the config at it: the model and the
    reference it was trained against go out (and are hashed) together."""
    if not cfg.get("reference"):
        return None
    src = _station_path(config, cfg["reference"])
    if not src.is_file():
        raise DeployError(f"station config {config}: reference {src} does not exist on the build host",
                          hint="the reference ships with the model: keep it beside the config")
    (root / "reference").mkdir()
    shutil.copy2(src, root / "reference" / src.name)
    cfg["reference"] = f"reference/{src.name}"
    return cfg["reference"]


def _ship_samples(root: Path, chosen: list) -> list[dict]:
    """Copy the samples into ``selftest/good`` and ``selftest/defective`` and write ``selftest/samples.json``."""
    from edgead.daemon.selftest import KIND, write_samples

    rows = []
    for i, (path, verdict) in enumerate(chosen):
        rel = f"{KIND[verdict]}/{i:02d}-{path.parent.name}-{path.name}"
        (root / "selftest" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, root / "selftest" / rel)
        rows.append((rel, verdict, str(path)))
    write_samples(root / "selftest" / SAMPLES, rows)
    return [{"image": f"selftest/{rel}", "expect": v.value} for rel, v, _ in rows]


def _check_runtime_extra(bundle, extras) -> None:
    """Refuse a release whose station extras leave out the runtime the bundle was converted for (OpenVINO).

    Raises:
        DeployError: naming the runtime and the extra to add.
    """
    from edgead.infer import BACKENDS, bundle_runtime

    kind = bundle_runtime(bundle.meta)[0]
    extra = BACKENDS[kind].extra
    if extra is not None and extra not in extras:
        raise DeployError(f"bundle {bundle.root} was converted to run on {kind.value}, and --extras "
                          f"{','.join(extras)} does not install it",
                          hint=f"deploy with --extras {','.join([*extras, extra])}")


def check_config(config: Path, label: str | None = None) -> str:
    """Validate a station config with ``edgead check`` when that command exists; returns what happened.

    ``label`` names the config in the error (default: its path).

    Raises:
        DeployError: when ``edgead check`` rejects the config.
    """
    proc = subprocess.run([sys.executable, "-m", "edgead", "check", str(config)], capture_output=True, text=True)
    if proc.returncode == 2 and "invalid choice" in proc.stderr:
        log.info("edgead check is not available in this build: station config not validated on the build host")
        return "skipped (edgead check not available)"
    if proc.returncode != 0:
        raise DeployError(f"station config {label or config} is invalid: {(proc.stderr or proc.stdout).strip()[-800:]}",
                          hint="fix the config; `edgead check` shows the same message")
    return "ok"


@contextlib.contextmanager
def _host_config(root: Path, cfg: dict):
    """The release's station config as the host can see it: without ``model.engine``, which only exists once the
    station has built it (the host judges with the bundle's ONNX graph), and without the storage paths, which are
    the station's folders (the daemon checks them there before it opens anything)."""
    cfg = {**cfg, "storage": {k: v for k, v in (cfg.get("storage") or {}).items()
                              if k not in ("database", "images_dir")}}
    probe = root / ".station-check.yaml"
    probe.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        yield probe
    finally:
        probe.unlink()


def build_release(config: str | Path, out_dir: str | Path, options: ReleaseOptions = ReleaseOptions(),
                  name: str | None = None) -> Release:
    """Build a complete release folder ``out_dir/NAME``.

    Args:
        config: the station config (YAML; ``model.bundle`` relative to it).
        out_dir: where the release folder is created.
        options: see :class:`ReleaseOptions`.
        name: release name (default :func:`release_name`).

    Returns:
        The release.

    Raises:
        DeployError: on a tampered, untrusted or missing bundle, a forbidden extra, missing self-test samples, a
            missing reference, or a config that `edgead check` refuses.
        ConfigError: when the config cannot be read.
    """
    from edgead.bundle import load_bundle
    from edgead.bundle.core import sidecar_names
    from edgead.bundle.paths import contained
    from edgead.bundle.trust import TrustStatus, check_trust
    from edgead.convert.targets import get_target

    config = Path(config)
    from edgead.extras import EXTRAS

    hint = f"use --extras station (or {', '.join(STATION_EXTRAS[1:])})"
    bad = sorted(set(options.extras) & set(FORBIDDEN_EXTRAS))
    if bad:
        raise DeployError(f"extra {bad[0]!r} cannot go to a station: {FORBIDDEN_EXTRAS[bad[0]]}", hint=hint)
    unknown = sorted(set(options.extras) - set(EXTRAS))
    if unknown:
        raise DeployError(f"edgead has no extra {unknown[0]!r} (extras: {', '.join(EXTRAS)})", hint=hint)
    cfg = _load_config(config)
    bundle_src = _bundle_path(cfg, config, options.bundle)
    try:
        bundle = load_bundle(bundle_src)
        trust = check_trust(bundle, _inline_keys(cfg, config))
    except BundleError as exc:
        raise DeployError(f"refusing to deploy bundle {bundle_src}: {exc.message}",
                          hint=exc.hint or "re-export or re-copy the bundle; nothing was copied to the station") \
            from exc
    if trust.warning:
        log.warning("%s", trust.warning)
    target = get_target(options.target)
    _check_runtime_extra(bundle, options.extras)
    chosen = choose_samples(bundle, options.samples)
    name = name or release_name()
    root = Path(out_dir) / name
    root.mkdir(parents=True)
    (root / "bundle").mkdir()
    for file in [*bundle.manifest["files"], *sidecar_names(bundle.root)]:
        dst = root / "bundle" / file
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(contained(bundle.root, file, f"bundle {bundle.root}"), dst)
    try:
        shipped = load_bundle(root / "bundle")  # what ships is what was verified
        check_trust(shipped, _inline_keys(dict(cfg), config))
    except BundleError as exc:
        raise DeployError(f"bundle {bundle_src} changed while it was copied: {exc.message}") from exc

    cfg.setdefault("model", {})["bundle"] = "bundle"
    reference = _ship_reference(cfg, config, root)
    engine = target.backend.value in BACKENDS_WITH_ENGINE
    cfg["model"].pop("engine", None)
    with _host_config(root, cfg) as probe:
        checked = check_config(probe, label=str(config))
    if engine:  # built on the station (deploy step "engine"), before the daemon starts
        cfg["model"]["engine"] = ENGINE
    (root / "station.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    wheel = Path(options.wheel) if options.wheel else build_wheel(Path(out_dir) / ".wheel")
    if not wheel.is_file():
        raise DeployError(f"--wheel {wheel}: no such file")
    shutil.copy2(wheel, root / wheel.name)
    if options.wheelhouse:
        wheels = sorted(Path(options.wheelhouse).glob("*.whl"))
        if not wheels:
            raise DeployError(f"--wheelhouse {options.wheelhouse}: no .whl files there",
                              hint="fill it with `pip download` (see docs/deploy.md)")
        (root / "wheelhouse").mkdir()
        for w in wheels:
            shutil.copy2(w, root / "wheelhouse" / w.name)

    samples = _ship_samples(root, chosen)

    (root / "tools").mkdir()
    for tool in STATION_TOOLS:
        shutil.copy2(Path(__file__).with_name(tool), root / "tools" / tool)
    src = source_root()
    if src is not None and (src / "systemd" / "edgead.service").is_file():
        (root / "systemd").mkdir()
        shutil.copy2(src / "systemd" / "edgead.service", root / "systemd" / "edgead.service")

    info = {"release": name, "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "edgead_version": edgead.__version__, "model_hash": bundle.model_hash, "model_type": bundle.model_type,
            "signed_by": trust.key_id if trust.status is TrustStatus.SIGNED else None,
            "reference": reference, "wheel": wheel.name, "extras": list(options.extras),
            "target": {"name": target.name, "backend": target.backend.value, **({"engine": ENGINE} if engine else {})},
            "selftest": {"samples": f"selftest/{SAMPLES}", "good": sum(s["expect"] == "accept" for s in samples),
                         "defective": sum(s["expect"] == "reject" for s in samples)},
            "database": str((cfg.get("storage") or {}).get("database", DEFAULT_DATABASE)),
            "config": "station.yaml", "config_check": checked}
    manifest = mf.build_manifest(root, info=info)
    mf.write_manifest(root, manifest)
    log.info("release %s: %d files, model %s", name, len(manifest["files"]), bundle.model_hash[:12])
    return Release(root, name, manifest)
