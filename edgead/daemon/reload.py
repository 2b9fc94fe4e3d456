"""What a SIGHUP reload does with each config key: one table, :data:`RELOAD`.

Every key of ``STATION.yaml`` is in it (``tests/unit/daemon/test_reload.py`` checks), with the component that
must be rebuilt when the key changes:

- ``LIVE``: read at each part (``decision``, ``trigger``, loop timing): the new value applies at the next part.
- a component the station can open beside the running one (the model, the recorder and its database, the
  metrics endpoint): built completely first; if it fails, nothing changes.
- a device (camera, PLC link): a port or camera cannot be opened twice, so the old one is closed, then the new one
  opened; if that fails, the old one is opened again and the reload fails.
- ``logging``: the process's log handler, installed again.
- ``SIDECAR``: read by another process (the MQTT north, ``python -m edgead.north``), not by the daemon: nothing to
  rebuild here; that process applies it when it restarts.
- ``RESTART``: a key that cannot change while the station runs; a reload that changes it is refused as a whole,
  naming the keys (restart the service to apply them).

The model is rebuilt at every reload even when its keys are unchanged: a new bundle or reference copied over the
old path is what a reload is most often for.

Example:
    >>> from edgead.daemon.config import StationConfig
    >>> import dataclasses
    >>> old = StationConfig()
    >>> new = dataclasses.replace(old, decision=dataclasses.replace(old.decision, min_defect_area_px=9))
    >>> plan_reload(old, new).changed, plan_reload(old, new).components
    (('decision.min_defect_area_px',), ('model',))
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edgead.errors import ConfigError

LIVE = "live"
SIDECAR = "sidecar"
RESTART = "restart"
MODEL, RECORDER, METRICS, CAMERA, PLC, LOGGING = "model", "recorder", "metrics_server", "camera", "plc", "logging"
SHADOW = "shadow"
PLANT = "plant"  # recipe/lot state and the OPC UA server: opened once (opcua keys need a restart)
DEVICES = (CAMERA, PLC)
"""Components closed before their replacement is opened."""

RELOAD: dict[str, str] = {
    "name": LIVE,
    "trigger": LIVE,
    "camera": CAMERA,
    "reference": MODEL,
    "alignment": MODEL,
    "rois": MODEL,
    "model": MODEL,
    "security": MODEL,  # the new trusted keys, pin or allow_unsigned admit (or refuse) the reloaded bundle
    "decision": LIVE,
    "plc": PLC,
    "storage": RECORDER,
    "observe.log_level": LOGGING,
    "observe.log_format": LOGGING,
    "observe.metrics_listen": METRICS,
    "observe.status_interval_s": LIVE,
    "runtime.trigger_poll_ms": LIVE,
    "runtime.heartbeat_ms": LIVE,
    "runtime.record_queue": RECORDER,
    "runtime.image_queue": RECORDER,
    "runtime.image_nice": RECORDER,
    "runtime.max_parts": LIVE,
    "runtime.degraded_after_faults": LIVE,
    "runtime.max_consecutive_faults": LIVE,
    "runtime.capture_ahead": CAMERA,
    "runtime.gc": LIVE,  # the runner freezes the heap again after every reload, with the new setting
    "mqtt": SIDECAR,
    "opcua": RESTART,  # the server is not rebuilt; every reload reads its client trust folders again
    "ui": SIDECAR,  # read by `edgead ui`, a process of its own
    "drift": LIVE,  # the drift windows are rebuilt with every reload (the model is always reloaded)
    "shadow": SHADOW,
    "recipes": MODEL,  # every recipe is loaded again, as the model is
    "recipe": MODEL,  # the recipe at start: a reload keeps the one a PLC or OPC UA selected, if it still exists
}
"""Config key (a section, or ``section.key`` where a section's keys differ) -> what applies a change."""

NOT_KEYS = ("source",)
"""StationConfig fields that are not keys of the file."""


class ReloadRefused(ConfigError):
    """The new config changes keys that cannot change while the station runs."""


def action_of(key: str) -> str:
    """The :data:`RELOAD` entry of a dotted key (its own row, else its section's).

    Raises:
        KeyError: a key without a row (a bug: add it to the table).
    """
    section = key.split(".")[0]
    if key in RELOAD:
        return RELOAD[key]
    if section in RELOAD:
        return RELOAD[section]
    raise KeyError(f"config key {key!r} has no row in edgead.daemon.reload.RELOAD")


def changed_keys(old, new, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two configs (sections compared key by key)."""
    out = []
    for f in dataclasses.fields(old):
        if f.name in NOT_KEYS:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        key = f"{prefix}{f.name}"
        if a == b:
            continue
        if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b) and type(a) is type(b):
            out += changed_keys(a, b, key + ".")
        else:
            out.append(key)
    return out


@dataclass(frozen=True)
class ReloadPlan:
    """What a reload from one config to another does.

    Attributes:
        changed: the keys whose values differ.
        components: what is rebuilt, in opening order (always the model).
    """

    changed: tuple[str, ...]
    components: tuple[str, ...]

    @property
    def devices(self) -> tuple[str, ...]:
        """The components that are closed before their replacement is opened."""
        return tuple(c for c in self.components if c in DEVICES)


ORDER = (MODEL, SHADOW, RECORDER, METRICS, CAMERA, PLC, PLANT, LOGGING)
"""The components in the order the station opens them."""


def plan_reload(old, new) -> ReloadPlan:
    """The plan for reloading ``old`` into ``new``.

    Raises:
        ReloadRefused: a changed key cannot change while the station runs (the message names them).
    """
    changed = changed_keys(old, new)
    refused = [k for k in changed if action_of(k) == RESTART]
    if refused:
        raise ReloadRefused(f"reload refused: {', '.join(refused)} cannot change while the station runs",
                            hint="restart the service to apply them (systemctl restart edgead)")
    wanted = {MODEL} | {action_of(k) for k in changed} - {LIVE, SIDECAR}
    if old.trigger_source is not new.trigger_source:  # the camera captures ahead only when it starts the parts
        wanted.add(CAMERA)
    return ReloadPlan(tuple(changed), tuple(c for c in ORDER if c in wanted))
