"""The station configuration (``STATION.yaml``): one frozen dataclass per section, validated once at start.

Sources flow one way: these defaults <- the file <- ``--set key=value`` overrides. Relative paths resolve
against the config file's folder. ``edgead check`` runs :func:`load_station` plus :func:`validate_files`.
The reference of every key is generated from these classes into docs/config.md (``make docs``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from edgead.align.config import AlignConfig
from edgead.camera.config import CameraConfig
from edgead.config import from_dict, load_yaml, merge_overrides
from edgead.daemon.decide import DecisionConfig
from edgead.errors import ConfigError
from edgead.infer import BackendKind
from edgead.north.config import MqttConfig
from edgead.opcua.config import OpcUaConfig
from edgead.plc.config import PlcConfig, Protocol


@dataclass(frozen=True)
class CameraSection(CameraConfig):
    """``camera``: the URL (``folder://``, ``opencv://``, ``rtsp://``, ``aravis://``) plus the shared options."""

    url: str = "folder://images?fps=0"

    def options(self) -> CameraConfig:
        """The options without the URL, as the camera layer takes them."""
        return CameraConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(CameraConfig)})


@dataclass(frozen=True)
class RoiSection:
    """One region of interest, in reference-image pixels."""

    name: str = "part"
    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0


class GeometryCheck(str, Enum):
    """What a station does when its reference or ROIs differ from the geometry the bundle records."""

    ENFORCE = "enforce"  # refuse the bundle (check, run, reload, deploy), naming both sides
    WARN = "warn"  # the documented override: log the difference and run anyway


@dataclass(frozen=True)
class ModelSection:
    """``model``: the bundle (directory or ``.edgead``), or a TensorRT engine built on this station.

    Attributes:
        geometry_check: ``enforce`` refuses a bundle trained against another reference (fingerprint or size) or
            for another input size than each ROI (or the aligned frame); ``warn`` is the override: it logs the
            difference and runs. See docs/bundle-format.md.
    """

    bundle: Path = Path("model.edgead")
    engine: Path | None = None
    backend: BackendKind | None = None
    intra_op_threads: int | None = None
    warmup_runs: int = 3
    geometry_check: GeometryCheck = GeometryCheck.ENFORCE


@dataclass(frozen=True)
class SecuritySection:
    """``security``: which bundles this station runs (docs/bundle-format.md, "Trust model").

    Attributes:
        trusted_keys: public keys whose signatures are accepted: ``edgead-ed25519 ...`` lines (from the ``.pub``
            file of ``edgead keygen``) or paths to ``.pub`` files (relative to this config file).
        allow_unsigned: development only: run a bundle without a trusted signature, with a warning at start
            (a bundle whose signature does not verify at all is still refused).
        model_sha256: run only the bundle with this model hash (``edgead info`` shows it), signed or not.
    """

    trusted_keys: tuple[str, ...] = ()
    allow_unsigned: bool = False
    model_sha256: str | None = None

    def __post_init__(self) -> None:
        pin = self.model_sha256
        if pin is not None and (len(pin) != 64 or any(c not in "0123456789abcdefABCDEF" for c in pin)):
            raise ConfigError(f"security.model_sha256: {pin!r} is not 64 hex digits",
                              hint="copy model_hash from `edgead info BUNDLE`")


class TriggerSource(str, Enum):
    """What starts an inspection: a PLC trigger telegram/register, or a frame from the camera."""

    AUTO = "auto"  # the PLC when its protocol carries triggers, else the camera
    PLC = "plc"
    CAMERA = "camera"


class SaveImages(str, Enum):
    """Which parts' images are archived (with a heatmap overlay)."""

    REJECTS = "rejects"  # every part that is not accepted
    ALL = "all"
    NONE = "none"


@dataclass(frozen=True)
class StorageSection:
    """``storage``: the SQLite record database and the image archive (oldest-first rotation under a quota)."""

    database: Path = Path("records.sqlite")
    images_dir: Path = Path("images")
    save_images: SaveImages = SaveImages.REJECTS
    quota_mb: float = 1024.0
    image_format: str = "png"


@dataclass(frozen=True)
class ObserveSection:
    """``observe``: logs and the Prometheus endpoint (``metrics_listen: null`` turns it off)."""

    log_level: str = "info"
    log_format: str = "auto"
    metrics_listen: str | None = "127.0.0.1:9818"
    status_interval_s: float = 5.0


@dataclass(frozen=True)
class RuntimeSection:
    """``runtime``: queue bounds and loop timing.

    Attributes:
        trigger_poll_ms: longest wait for a trigger or frame before the loop pings the watchdog again.
        record_queue: parts waiting for the writer thread; when full the loop waits (records are never dropped).
        image_queue: images waiting to be archived; when full the image is skipped (the record still says so).
        max_parts: stop after this many parts (0: run until stopped, or until a replay ends).
        heartbeat_ms: period of the PLC heartbeat toggle (status bit 3 in the Modbus status word).
    """

    trigger_poll_ms: int = 200
    heartbeat_ms: int = 500
    record_queue: int = 1024
    image_queue: int = 16
    max_parts: int = 0


@dataclass(frozen=True)
class StationConfig:
    """The whole station (``STATION.yaml``)."""

    name: str = "station"
    trigger: TriggerSource = TriggerSource.AUTO
    camera: CameraSection = field(default_factory=CameraSection)
    reference: Path | None = None
    alignment: AlignConfig = field(default_factory=AlignConfig)
    rois: tuple[RoiSection, ...] = ()
    model: ModelSection = field(default_factory=ModelSection)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    plc: PlcConfig = field(default_factory=PlcConfig)
    storage: StorageSection = field(default_factory=StorageSection)
    observe: ObserveSection = field(default_factory=ObserveSection)
    runtime: RuntimeSection = field(default_factory=RuntimeSection)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    opcua: OpcUaConfig = field(default_factory=OpcUaConfig)
    security: SecuritySection = field(default_factory=SecuritySection)
    source: Path | None = None  # the file it was loaded from (not a key)

    @property
    def trigger_source(self) -> TriggerSource:
        """The effective trigger source."""
        if self.trigger is not TriggerSource.AUTO:
            return self.trigger
        return TriggerSource.CAMERA if self.plc.protocol is Protocol.DISCRETE else TriggerSource.PLC


def load_station(path: str | Path | None, overrides: dict | None = None) -> StationConfig:
    """Defaults <- file <- overrides, converted strictly (every error names its key).

    Args:
        path: the YAML file (None: defaults and overrides only).
        overrides: nested dict from ``--set`` (see ``edgead.config.parse_set``).

    Returns:
        The validated :class:`StationConfig`.

    Raises:
        ConfigError: unknown key, wrong type or unit, bad value.
    """
    data = load_yaml(path) if path else {}
    data.pop("source", None)
    data = merge_overrides(data, overrides or {})
    base = Path(path).resolve().parent if path else Path.cwd()
    cfg = from_dict(StationConfig, data, base_dir=base)
    if cfg.trigger is TriggerSource.PLC and cfg.plc.protocol is Protocol.DISCRETE:
        raise ConfigError("trigger: 'plc' needs a protocol that carries triggers",
                          hint="use ascii or a modbus protocol (RTU or TCP), or trigger: camera")
    return dataclasses.replace(cfg, source=Path(path).resolve() if path else None)


def validate_files(cfg: StationConfig) -> list[str]:
    """Check what can be checked without opening devices: the bundle's hashes and signature, the reference, the ROIs
    and their geometry (:func:`edgead.daemon.admission.admit`).

    Returns:
        Notes for the operator (e.g. which bundle and model hash will run).

    Raises:
        ConfigError / BundleError / TrustError / ImageError naming the key and the file.
    """
    from edgead.daemon.admission import admit

    admission = admit(cfg)
    notes = admission.notes + [f"warning: {w}" for w in admission.warnings]
    notes.append(f"runtime {check_runtime(cfg, admission.bundle).value}")
    if cfg.model.engine is not None and not cfg.model.engine.is_file():
        raise ConfigError(f"model.engine: {cfg.model.engine} does not exist",
                          hint="build it on this station: edgead build-engine, or remove the key")
    if cfg.observe.metrics_listen:
        parse_listen(cfg.observe.metrics_listen)
    if cfg.mqtt.enabled:
        cfg.mqtt.check_files()
        host, port, tls = cfg.mqtt.address()
        notes.append(f"mqtt {'mqtts' if tls else 'mqtt'}://{host}:{port} (python -m edgead.north)")
    if cfg.opcua.enabled:
        cfg.opcua.check_files()
        notes.append(f"opcua opc.tcp://{cfg.opcua.listen}/edgead ({cfg.opcua.security.value}, "
                     f"{len(cfg.opcua.users())} user(s), anonymous {cfg.opcua.anonymous.value})")
    return notes


def check_runtime(cfg: StationConfig, bundle) -> BackendKind:
    """The runtime the station will run the model on (an engine: TensorRT; else ``model.backend``, else the
    bundle's own), checked to be installed.

    Raises:
        MissingExtraError: naming the extra that installs it (a bundle converted for OpenVINO on a station
            without ``edgead[openvino]``).
    """
    from edgead.infer import bundle_runtime, require_runtime

    if cfg.model.engine is not None:
        kind, what = BackendKind.TENSORRT, f"model.engine {cfg.model.engine}"
    elif cfg.model.backend is not None:
        kind, what = cfg.model.backend, f"model.backend: {cfg.model.backend.value}"
    else:
        kind = bundle_runtime(bundle.meta)[0]
        target = bundle.meta.conversion.target if bundle.meta.conversion is not None else None
        what = f"model.bundle {cfg.model.bundle}" + (f" (converted for {target} on {kind.value})" if target else "")
    require_runtime(kind, what)
    return kind


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9818"`` -> (host, port); :class:`ConfigError` naming ``observe.metrics_listen`` otherwise."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"observe.metrics_listen: {text!r} is not HOST:PORT", hint="e.g. 127.0.0.1:9818")
    return host or "127.0.0.1", int(port)
