"""The station configuration (``STATION.yaml``): one frozen dataclass per section, validated once at start.

Sources flow one way: these defaults <- the file <- ``--set key=value`` overrides. Relative paths (defaults
included) resolve against the config file's folder, and so does a relative ``folder://`` or ``file://`` camera.
Every section checks its own values when it is built; ``edgead check`` runs :func:`load_station` plus
:func:`edgead.daemon.preflight.check_station`, which the daemon also runs before it opens any device. The reference
of every key is generated from these classes into docs/config.md (``make docs``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from edgead.align.config import AlignConfig
from edgead.camera.config import CameraConfig
from edgead.config import from_dict, load_yaml, merge_overrides, parse_listen  # noqa: F401 -- re-exported
from edgead.config.loader import within as _within
from edgead.daemon.decide import DecisionConfig
from edgead.daemon.drift import DriftConfig
from edgead.daemon.shadow import ShadowConfig
from edgead.errors import ConfigError
from edgead.infer import BackendKind
from edgead.infer.threads import ThreadCount, ThreadWait
from edgead.north.config import MqttConfig
from edgead.observe.logs import LogFormat
from edgead.opcua.config import OpcUaConfig
from edgead.plc.config import PlcConfig, Protocol
from edgead.records.images import ImageFormat
from edgead.records.store import Synchronous
from edgead.ui.config import UiConfig

LOG_LEVELS = ("debug", "info", "warning", "error")


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
        intra_op_threads: inference threads on the CPU (ONNX Runtime, OpenVINO): a number, or a rule on the
            cores this process may use (its affinity mask): ``cores`` (one per core), ``cores_left`` (one per core
            less one for the loop, at least 1); null is ``cores``. The count is logged at start. See
            docs/benchmarks.md, "Sixth round (issue 18): threads".
        thread_wait: what those threads do between operators and between parts: ``block`` (sleep, leaving the
            cores to alignment, the record commit and the PLC link), ``spin`` (ONNX Runtime's own default) or
            ``spin_in_run`` (spin inside one inference, sleep between parts). See docs/benchmarks.md, "station".
        geometry_check: ``enforce`` refuses a bundle trained against another reference (fingerprint or size) or
            for another input size than each ROI (or the aligned frame); ``warn`` is the override: it logs the
            difference and runs. See docs/bundle-format.md.
    """

    bundle: Path = Path("model.edgead")
    engine: Path | None = None
    backend: BackendKind | None = None
    intra_op_threads: int | ThreadCount | None = ThreadCount.CORES
    thread_wait: ThreadWait = ThreadWait.BLOCK
    warmup_runs: int = 3
    geometry_check: GeometryCheck = GeometryCheck.ENFORCE

    def __post_init__(self) -> None:
        if isinstance(self.intra_op_threads, int):  # a number; a rule (ThreadCount) is a str
            _within("model.intra_op_threads", self.intra_op_threads, 1, 1024)
        _within("model.warmup_runs", self.warmup_runs, 0, 1000)


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


RECIPE_NAME_CHARS = 64
MAX_RECIPE_NUMBER = 0xFFFF


@dataclass(frozen=True)
class RecipeSection:
    """One entry of ``recipes``: a product the station can judge, with its own model and geometry.

    A key left out (``null``) is the station's own top-level key, so recipes only list what differs. Every
    recipe is loaded, verified (bundle hashes and trust, reference, ROIs) and warmed up at start and at each
    reload; a switch between recipes happens between two parts. See docs/plant-integration.md, "Recipes".

    Attributes:
        name: the recipe's name (``[A-Za-z0-9_.-]``, at most 64 characters): what OPC UA, an ASCII telegram
            (``R<name>``), the records and the MQTT messages use.
        number: what a PLC writes into ``plc.registers.recipe_register`` (1..65535) to select it (or sends as
            ``R<number>``); default: its position in the list, from 1.
        model: the recipe's ``model`` section (bundle, engine, backend, ...).
        reference: the recipe's reference image.
        rois: the recipe's ROIs.
        alignment: the recipe's ``alignment`` section.
        decision: the recipe's ``decision`` section (read when the recipe is loaded; without one the station's
            ``decision`` applies, live).
    """

    name: str = ""
    number: int | None = None
    model: ModelSection | None = None
    reference: Path | None = None
    rois: tuple[RoiSection, ...] | None = None
    alignment: AlignConfig | None = None
    decision: DecisionConfig | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > RECIPE_NAME_CHARS or \
                any(not (c.isascii() and (c.isalnum() or c in "_.-")) for c in self.name):
            raise ConfigError(f"recipes: name {self.name!r} must be 1..{RECIPE_NAME_CHARS} characters of "
                              "A-Z a-z 0-9 _ . -", hint="every recipe needs a name, e.g. name: housing-a")
        if self.number is not None:
            _within(f"recipes[{self.name}].number", self.number, 1, MAX_RECIPE_NUMBER)


class TriggerSource(str, Enum):
    """What starts an inspection: a PLC trigger telegram/register, or a frame from the camera."""

    AUTO = "auto"  # the PLC when its protocol carries triggers, else the camera
    PLC = "plc"
    CAMERA = "camera"


class GcMode(str, Enum):
    """What Python's cyclic garbage collector sees in the daemon."""

    FREEZE = "freeze"  # after start-up and each reload, every object then alive is frozen (gc.freeze): a full
    # collection in the loop scans only what was made since, not the runtime's and the model's objects
    DEFAULT = "default"  # Python's own: a full collection scans every object


class SaveImages(str, Enum):
    """Which parts' images are archived (with a heatmap overlay)."""

    REJECTS = "rejects"  # every part that is not accepted
    ALL = "all"
    NONE = "none"


class RecordFailure(str, Enum):
    """What the station does when its record store refuses a write (``storage.on_record_failure``)."""

    STOP = "stop"  # answer the part fail-safe, log its record, exit with code 8 (systemd restarts the service)
    DEGRADE = "degrade"  # answer every part fail-safe, keep the records in memory, write them when the store recovers


@dataclass(frozen=True)
class StorageSection:
    """``storage``: the SQLite record database and the image archive (oldest-first rotation under a quota).

    Attributes:
        synchronous: what a part's commit waits for before its answer: ``normal`` (the write into SQLite's WAL:
            survives a process kill; a power cut may lose the parts since the last checkpoint) or ``full`` (also
            an fsync: survives a power cut, one fsync per part on the hot path). See docs/station-setup.md.
        checkpoint_interval_s: how often a background thread copies the WAL into the database file (and fsyncs
            it): under ``normal`` the most a power cut can lose, plus the kernel's own writeback.
        on_record_failure: what happens when a commit fails (disk full, read-only, I/O error).
    """

    database: Path = Path("records.sqlite")
    images_dir: Path = Path("images")
    save_images: SaveImages = SaveImages.REJECTS
    quota_mb: float = 1024.0
    image_format: ImageFormat = ImageFormat.PNG
    synchronous: Synchronous = Synchronous.NORMAL
    checkpoint_interval_s: float = 5.0
    on_record_failure: RecordFailure = RecordFailure.STOP

    def __post_init__(self) -> None:
        if not 0 < self.quota_mb <= 1 << 30:
            raise ConfigError(f"storage.quota_mb: {self.quota_mb} must be > 0")
        if not 0.1 <= self.checkpoint_interval_s <= 3600:
            raise ConfigError(f"storage.checkpoint_interval_s: {self.checkpoint_interval_s} is outside 0.1..3600")


@dataclass(frozen=True)
class ObserveSection:
    """``observe``: logs and the Prometheus endpoint (``metrics_listen: null`` turns it off)."""

    log_level: str = "info"
    log_format: LogFormat = LogFormat.AUTO
    metrics_listen: str | None = "127.0.0.1:9818"
    status_interval_s: float = 5.0

    def __post_init__(self) -> None:
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(f"observe.log_level: {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        if self.metrics_listen is not None:
            parse_listen(self.metrics_listen)
        if not 0.1 <= self.status_interval_s <= 3600:
            raise ConfigError(f"observe.status_interval_s: {self.status_interval_s} is outside 0.1..3600")


@dataclass(frozen=True)
class RuntimeSection:
    """``runtime``: queue bounds, loop timing, and when a station that only faults stops.

    Attributes:
        trigger_poll_ms: longest wait for a trigger or frame before the loop pings the watchdog again.
        record_queue: records kept in memory while the record store refuses writes
            (``storage.on_record_failure: degrade``); when full, the daemon stops (exit code 8).
        image_queue: images waiting to be archived; when full the image is skipped (the record says so).
        image_nice: added to the image writer thread's nice value (0-19): resampling and encoding images take a
            core only when the inspection loop does not need it (0: the loop's priority). Under a load that
            starves the writer, the image queue fills and images are skipped, never parts delayed.
        max_parts: stop after this many parts (0: run until stopped, or until a replay ends).
        heartbeat_ms: period of the PLC heartbeat toggle (status bit 3 in the Modbus status word).
        degraded_after_faults: after this many fault verdicts in a row the station reports itself not ready:
            ``/healthz`` 503, ``edgead_ready`` 0, the fault status bit, ``STATUS=``, and no more watchdog pings
            (systemd restarts it after ``WatchdogSec``). A part that is not a fault ends it.
        max_consecutive_faults: after this many fault verdicts in a row the daemon exits with code 9 (0: never).
        capture_ahead: when the camera starts the inspections (``trigger: camera``), frames grabbed on a thread of
            their own while the part before is inspected, at most (0: the loop grabs each frame itself). Each
            part's wait for the loop is its ``queue_ms``. A PLC-triggered station always grabs after the trigger.
        gc: ``freeze``: once the station is open (and after each reload) the objects then alive are collected
            once and frozen out of Python's garbage collector, so that a full collection in the loop does not
            scan the hundreds of thousands of objects of the runtime and the model; ``default``: Python's own.
    """

    trigger_poll_ms: int = 200
    heartbeat_ms: int = 500
    record_queue: int = 1024
    image_queue: int = 16
    image_nice: int = 10
    max_parts: int = 0
    degraded_after_faults: int = 3
    max_consecutive_faults: int = 100
    capture_ahead: int = 1
    gc: GcMode = GcMode.FREEZE

    def __post_init__(self) -> None:
        _within("runtime.trigger_poll_ms", self.trigger_poll_ms, 1, 60_000)
        _within("runtime.heartbeat_ms", self.heartbeat_ms, 1, 60_000)
        _within("runtime.record_queue", self.record_queue, 1, 1_000_000)
        _within("runtime.image_queue", self.image_queue, 1, 10_000)
        _within("runtime.image_nice", self.image_nice, 0, 19)
        _within("runtime.max_parts", self.max_parts, 0, 1 << 62)
        _within("runtime.degraded_after_faults", self.degraded_after_faults, 1, 1_000_000)
        _within("runtime.max_consecutive_faults", self.max_consecutive_faults, 0, 1 << 62)
        _within("runtime.capture_ahead", self.capture_ahead, 0, 64)


@dataclass(frozen=True)
class StationConfig:
    """The whole station (``STATION.yaml``).

    Attributes:
        recipes: the products this station judges, each with its own bundle, reference, ROIs and decision
            (``recipes[]`` below); empty: one model, from the top-level keys.
        recipe: the recipe in force at start (a name from ``recipes``; default: the first). A PLC or OPC UA
            selects another while the station runs.
    """

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
    ui: UiConfig = field(default_factory=UiConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    recipes: tuple[RecipeSection, ...] = ()
    recipe: str | None = None
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
        path: the YAML file (None: defaults and overrides only; relative paths then resolve against the working
            directory).
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
    modbus = cfg.plc.protocol in (Protocol.MODBUS_CLIENT, Protocol.MODBUS_SERVER, Protocol.MODBUS_TCP_CLIENT,
                                  Protocol.MODBUS_TCP_SERVER)
    if modbus and cfg.trigger_source is TriggerSource.PLC and cfg.plc.registers.trigger_register is None:
        raise ConfigError("plc.registers.trigger_register: null, but the PLC triggers the inspections "
                          f"(trigger: {cfg.trigger.value})", hint="map the trigger register, or set trigger: camera")
    check_recipes(cfg)
    camera = dataclasses.replace(cfg.camera, url=resolve_camera_url(cfg.camera.url, base))
    return dataclasses.replace(cfg, camera=camera, source=Path(path).resolve() if path else None)


def check_recipes(cfg: StationConfig) -> None:
    """The ``recipes`` list as a whole: unique names and numbers, and ``recipe`` naming one of them.

    Raises:
        ConfigError: naming the key.
    """
    names: dict[str, int] = {}
    numbers: dict[int, str] = {}
    for i, recipe in enumerate(cfg.recipes):
        if recipe.name in names:
            raise ConfigError(f"recipes[{i}].name: {recipe.name!r} is also recipes[{names[recipe.name]}]",
                              hint="give every recipe its own name")
        names[recipe.name] = i
        number = recipe.number if recipe.number is not None else i + 1
        if number in numbers:
            raise ConfigError(f"recipes[{i}].number: {number} also selects recipe {numbers[number]!r}",
                              hint="give every recipe its own number (the value the PLC writes)")
        numbers[number] = recipe.name
    if cfg.recipe is not None and cfg.recipe not in names:
        raise ConfigError(f"recipe: {cfg.recipe!r} is not in recipes",
                          hint=f"one of {', '.join(names)}" if names else "define recipes first, or remove the key")


def resolve_camera_url(url: str, base: Path) -> str:
    """A ``folder://`` / ``file://`` URL (or a bare path) with a relative path made absolute against ``base``.

    Example:
        >>> resolve_camera_url("folder://captures?fps=0", Path("/etc/edgead"))
        'folder:///etc/edgead/captures?fps=0'
    """
    text = str(url).strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        path, q, query = text.partition("?")
        return text if not path or Path(path).is_absolute() else str(base / path) + q + query
    if scheme.lower() not in ("folder", "file"):
        return text
    path, q, query = rest.partition("?")
    if not path or path.startswith("/"):
        return text
    return f"{scheme}://{base / path}{q}{query}"


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


