"""``edgead check``: everything ``edgead run`` builds before it opens the camera and the PLC port.

The config sections validate themselves when they are loaded (types, units, ranges, the PLC map, the ASCII
templates, the rotation search). :func:`check_station` then does what needs files: the bundle's hashes, the
engine file, the reference image (its header size first, then the image) and the aligner built on it, the ROIs,
the camera URL's parameters for its scheme, the PLC URL for pyserial, the archive's image encoder, the metrics
address, and the storage paths (length, parent folders, a create-test where the folder exists, an existing
database's owner and schema). The daemon runs the same function before it opens anything, so a config that
``check`` passes starts, up to the devices themselves (a camera or a port that is not there).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
from pathlib import Path

from typing import TYPE_CHECKING

from edgead.daemon.config import SaveImages, StationConfig, check_runtime
from edgead.errors import BundleError, ConfigError
from edgead.redact import redact

if TYPE_CHECKING:
    from edgead.daemon.admission import Admission

log = logging.getLogger(__name__)

SHADOW_ADMISSION = "shadow:"  # the shadow bundle's key in ``admitted`` (":" is no recipe name's character)


def check_station(cfg: StationConfig, admitted: dict[str, Admission] | None = None) -> list[str]:
    """Check a loaded config as far as it can be without opening devices.

    Args:
        cfg: from :func:`edgead.daemon.config.load_station` (which already validated every key).
        admitted: if given, receives each recipe's :class:`~edgead.daemon.admission.Admission` (the one model's
            under ``""``, the shadow's under :data:`SHADOW_ADMISSION`), so that the daemon loads what was checked
            instead of hashing and verifying it again.

    Returns:
        Notes for the operator (what will run, which folders the daemon will create).

    Raises:
        ConfigError, BundleError, ImageError, AlignmentError, MissingExtraError: naming the key and the file.
    """
    notes = check_recipes(cfg, admitted) if cfg.recipes else check_model(cfg, admitted)
    notes += check_camera(cfg)
    notes += check_plc(cfg)
    notes += check_storage(cfg)
    notes += check_plant(cfg)
    notes += check_shadow(cfg, admitted)
    if cfg.observe.metrics_listen:
        from edgead.daemon.config import parse_listen

        parse_listen(cfg.observe.metrics_listen)
    return notes


def check_plant(cfg: StationConfig) -> list[str]:
    """MQTT north and OPC UA: their files (credentials, certificates, users) and addresses."""
    notes = []
    if cfg.mqtt.enabled:
        cfg.mqtt.check_files()
        host, port, tls = cfg.mqtt.address()
        notes.append(f"mqtt {'mqtts' if tls else 'mqtt'}://{host}:{port} (python -m edgead.north)")
    if cfg.ui.operators_file is not None:  # read by `edgead ui`: a broken file is found here, not at the first label
        from edgead.ui.auth import load_users

        users = load_users(cfg.ui.operators_file)
        notes.append(f"operator page users: {len(users)} in {cfg.ui.operators_file}")
    if cfg.opcua.enabled:
        cfg.opcua.check_files()
        notes.append(f"opcua opc.tcp://{cfg.opcua.listen}/edgead ({cfg.opcua.security.value}, "
                     f"{len(cfg.opcua.users())} user(s), anonymous {cfg.opcua.anonymous.value})")
    return notes


def check_shadow(cfg: StationConfig, admitted: dict[str, Admission] | None = None) -> list[str]:
    """The shadow bundle through the same admission gate as the live one (hashes, trust, reference, ROIs,
    geometry: :func:`edgead.daemon.admission.admit`), its runtime and colour mode. The admission goes into
    ``admitted[SHADOW_ADMISSION]`` when ``admitted`` is given."""
    if cfg.shadow.bundle is None:
        return []
    import dataclasses

    from edgead.daemon.admission import admit
    from edgead.errors import ImageError
    from edgead.infer import bundle_runtime, require_runtime

    path = cfg.shadow.bundle
    model = dataclasses.replace(cfg.model, bundle=path, engine=None, backend=None)
    try:
        admission = admit(dataclasses.replace(cfg, model=model))
    except (ConfigError, BundleError, ImageError) as exc:
        raise type(exc)(f"shadow.bundle: {exc.message}", hint=exc.hint) from exc
    require_runtime(bundle_runtime(admission.bundle.meta)[0], f"shadow.bundle {path}")
    if admitted is not None:
        admitted[SHADOW_ADMISSION] = admission
    return [f"shadow: {note}" for note in admission.notes[:1]] + [f"warning: shadow: {w}" for w in admission.warnings] \
        + [f"shadow judges after the answer, within {cfg.shadow.cpu_budget_pct:g} % of a core"]


def check_recipes(cfg: StationConfig, admitted: dict[str, Admission] | None = None) -> list[str]:
    """Every recipe's model, reference and ROIs, as :func:`check_model` checks a one-model station's.

    Raises:
        as :func:`check_model`, the recipe named in front of the message.
    """
    from edgead.daemon.recipes import recipe_config, recipe_number
    from edgead.errors import EdgeadError

    notes = []
    for i, recipe in enumerate(cfg.recipes):
        try:
            found = check_model(recipe_config(cfg, recipe), admitted, recipe.name)
        except EdgeadError as exc:
            exc.message = f"recipes[{i}] {recipe.name!r}: {exc.message}"
            raise
        notes += [f"recipe {recipe.name} ({recipe_number(i, recipe)}): {note}" for note in found]
    notes.append(f"{len(cfg.recipes)} recipe(s), {cfg.recipe or cfg.recipes[0].name} in force at start; a PLC or OPC UA "
                 "selects another between parts")
    return notes


def threads_note(cfg: StationConfig, kind) -> str:
    """``", N inference thread(s) (model.intra_op_threads: SETTING, C usable cores)"``: what ``run`` will use on a
    CPU runtime; empty for TensorRT."""
    from edgead.infer import BackendKind
    from edgead.infer.threads import engine_threads, usable_cores

    if kind is BackendKind.TENSORRT:
        return ""
    setting = cfg.model.intra_op_threads
    n = engine_threads(setting)
    return (f", {n} inference thread{'s' if n != 1 else ''} (model.intra_op_threads: "
            f"{getattr(setting, 'value', setting)}, {usable_cores()} usable cores)")


def check_model(cfg: StationConfig, admitted: dict[str, Admission] | None = None, name: str = "") -> list[str]:
    """The bundle's admission (hashes, trust, reference header size then image, ROIs, geometry: one gate,
    :func:`edgead.daemon.admission.admit`), its runtime, the engine file and the aligner built on the reference.
    The admission, with that aligner, goes into ``admitted[name]`` when ``admitted`` is given."""
    from edgead.align import Aligner
    from edgead.daemon.admission import admit
    from edgead.errors import ImageError

    try:
        admission = admit(cfg)
    except ImageError as exc:
        raise ImageError(f"reference: {exc.message}", hint=exc.hint) from exc
    notes = admission.notes + [f"warning: {w}" for w in admission.warnings]
    kind = check_runtime(cfg, admission.bundle)
    notes.append(f"runtime {kind.value}" + threads_note(cfg, kind))
    if cfg.model.engine is not None and not cfg.model.engine.is_file():
        raise ConfigError(f"model.engine: {cfg.model.engine} does not exist",
                          hint="build it on this station: edgead build-engine, or remove the key")
    if admission.reference is not None:  # what run builds: the pyramid, the rotation search, the ORB
        admission.aligner = Aligner(admission.reference, cfg.alignment)
    if admitted is not None:
        admitted[name] = admission
    return notes


def check_camera(cfg: StationConfig) -> list[str]:
    """The camera URL: a known scheme and every parameter valid for it (the device itself is not opened)."""
    from edgead.camera import check_url

    check_url(cfg.camera.url, cfg.camera.options())
    return []


def check_plc(cfg: StationConfig) -> list[str]:
    """The PLC URL as pyserial parses it (the port is not opened); a ``tcp://`` URL was checked with its section."""
    import serial

    from edgead.plc.config import TCP_PROTOCOLS, split_url

    if cfg.plc.protocol in TCP_PROTOCOLS:
        return []
    clean, _ = split_url(cfg.plc.url, cfg.plc.serial)
    try:
        serial.serial_for_url(clean, do_not_open=True)
    except (ValueError, serial.SerialException) as exc:
        raise ConfigError(f"plc.url: {redact(cfg.plc.url)!r} is not a port pyserial can open: {exc}",
                          hint="a device path (/dev/ttyUSB0), loop://, spy://, socket://HOST:PORT") from exc
    return []


def check_storage(cfg: StationConfig) -> list[str]:
    """The record database and (when images are archived) the image folder: paths, folders, encoder, owner."""
    from edgead.records.store import check_database_path

    storage = cfg.storage
    notes = []
    check_database_path(storage.database)
    notes += _check_folder("storage.database", storage.database.parent, probe_name=storage.database.name + "-wal")
    if storage.database.exists():
        _check_existing_database(storage.database)
    if storage.save_images is not SaveImages.NONE:
        notes += _check_folder("storage.images_dir", storage.images_dir, probe_name="x" * 100)
        _check_encoder(storage.image_format.value)
    return notes


def _check_folder(key: str, folder: Path, probe_name: str) -> list[str]:
    """Create-test: in ``folder`` a file named like the ones the daemon writes is created and removed; when the
    folder does not exist yet, a folder is created and removed in the deepest existing one above it."""
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}: {existing} is not a folder, so {folder} cannot be created",
                          hint="point the key at a folder on a local, writable filesystem")
    try:
        if existing == folder:
            fd, probe = tempfile.mkstemp(prefix=".edgead-check-", suffix=probe_name[-100:], dir=folder)
            os.close(fd)
            os.unlink(probe)
            return []
        os.rmdir(tempfile.mkdtemp(prefix=".edgead-check-", dir=existing))
    except OSError as exc:
        raise ConfigError(f"{key}: cannot write in {existing}: {exc.strerror or exc}",
                          hint="give the station's user write access (systemd: StateDirectory=, ReadWritePaths=)") \
            from exc
    return [f"{key}: {folder} will be created at start (under {existing})"]


def _check_existing_database(path: Path) -> None:
    """An existing database: ours, a schema this edgead reads, and writable (read-only open: nothing changes)."""
    from edgead.records.store import APP_NAME, APPLICATION_ID, SCHEMA_VERSION, SQLITE_MAGIC

    if path.is_dir():
        raise ConfigError(f"storage.database: {path} is a folder", hint="give a file path")
    with open(path, "rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        raise ConfigError(f"storage.database: {path} is not an SQLite database",
                          hint="point storage.database at a new file, or move this one away")
    if not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"storage.database: {path} is not writable by this user",
                          hint="chown it to the station's user")
    if not head:
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            meta = dict(conn.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"storage.database: {path} is unreadable or corrupt: {exc}",
                          hint="move it aside and restart; a new database will be created") from exc
    if tables and (app_id != APPLICATION_ID or meta.get("app") != APP_NAME):
        raise ConfigError(f"storage.database: {path} belongs to another application",
                          hint="point storage.database at a new file")
    if meta and int(meta.get("schema_version", 0)) > SCHEMA_VERSION:
        raise ConfigError(f"storage.database: {path} has schema version {meta['schema_version']}, this edgead "
                          f"reads up to {SCHEMA_VERSION}", hint="upgrade edgead, or point storage.database elsewhere")


def _check_encoder(fmt: str) -> None:
    import cv2
    import numpy as np

    from edgead.records.images import FORMATS, ImageFormat

    suffix, _flag = FORMATS[ImageFormat(fmt)]
    ok, _ = cv2.imencode(suffix, np.zeros((8, 8, 3), np.uint8))
    if not ok:
        raise ConfigError(f"storage.image_format: this OpenCV build cannot encode {fmt}", hint="use png")
