"""The MQTT messages: a part record (or a station event) -> one JSON object, checked against the schema that ships
with edgead.

Pure: no broker, no I/O beyond reading the schema files once. The schemas are ``part-result.schema.json`` and
``station-event.schema.json`` beside this module (JSON Schema 2020-12); docs/plant-integration.md lists their
fields.

Example:
    >>> from edgead.records import PartRecord
    >>> from edgead.verdict import Verdict
    >>> rec = PartRecord(t_ns=1_700_000_000_000_000_000, part_id="17", seq=3, verdict=Verdict.ACCEPT, score=0.12,
    ...                  model_hash="ab12", id=41)
    >>> msg = part_message(rec, "line3")
    >>> msg["message_id"], msg["verdict"], msg["timings_ms"]["total"]
    ('line3:41:1700000000000000000', 'accept', None)
    >>> PartMessageSchema().check(msg)
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

from edgead.errors import EdgeadError, lazy_import
from edgead.records.events import StationEvent
from edgead.records.store import PartRecord
from edgead.stages import TIMINGS

SCHEMA_NAME = "edgead.part-result/1"
SCHEMA_PATH = Path(__file__).with_name("part-result.schema.json")
EVENT_SCHEMA_NAME = "edgead.station-event/1"
EVENT_SCHEMA_PATH = Path(__file__).with_name("station-event.schema.json")
MAX_ERROR_CHARS = 2000


class MessageError(EdgeadError):
    """A part message does not match the schema (a bug or a damaged record: it is never published as is)."""


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def message_id(record: PartRecord, station: str) -> str:
    """``STATION:RECORD_ID:T_NS``: unique per part, also across a replaced record database (the de-dup key)."""
    return f"{station}:{record.id}:{record.t_ns}"


def part_message(record: PartRecord, station: str) -> dict:
    """The message for one recorded part.

    Args:
        record: a record read from the store (``id`` set); its ``recipe`` (``""`` on a one-model station: null in
            the message), ``lot_id`` and ``requested_by`` go into the message as recorded.
        station: the station's name.

    Returns:
        A dict ready for :func:`encode`; non-finite scores become null (JSON has no NaN).
    """
    error = record.error if record.error is None else record.error[:MAX_ERROR_CHARS]
    return {
        "schema": SCHEMA_NAME,
        "message_id": message_id(record, station),
        "station": station,
        "record_id": record.id,
        "part_id": str(record.part_id),
        "seq": int(record.seq),
        "lot_id": record.lot_id or None,
        "recipe": record.recipe or None,
        "requested_by": record.requested_by,
        "verdict": record.verdict.value,
        "score": _number(record.score),
        "raw_score": _number(record.raw_score),
        "t_utc": record.t_utc,
        "timings_ms": {stage: _number(getattr(record, f"{stage}_ms")) for stage in TIMINGS},
        "model_hash": record.model_hash,
        "align_quality": _number(record.align_quality),
        "roi_scores": {str(k): float(v) for k, v in record.roi_scores.items() if math.isfinite(v)},
        "error": error,
    }


def event_message(event: StationEvent, station: str) -> dict:
    """The message for one recorded station event (a drift alarm raised or cleared).

    Args:
        event: an event read from the ``events`` table (``id`` set).
        station: the station's name.

    Example:
        >>> from edgead.records.events import EventKind, EventState
        >>> e = StationEvent(1_700_000_000_000_000_000, "line3", EventKind.DRIFT, EventState.RAISED, "brightness",
        ...                  -0.31, 0.15, 20, "drift alarm (brightness)", {"recipe": "", "model_hash": "ab"}, id=4)
        >>> m = event_message(e, "line3")
        >>> m["message_id"], m["state"], m["recipe"], m["detail"]
        ('line3:event:4:1700000000000000000', 'raised', None, {})
    """
    detail = {k: v for k, v in event.detail.items() if k not in ("recipe", "model_hash")}
    return {
        "schema": EVENT_SCHEMA_NAME,
        "message_id": f"{station}:event:{event.id}:{event.t_ns}",
        "station": station,
        "event_id": event.id,
        "kind": event.kind.value,
        "state": event.state.value,
        "metric": event.metric,
        "value": _number(event.value),
        "bound": _number(event.bound),
        "window_parts": event.window_parts,
        "t_utc": event.t_utc,
        "message": event.message[:MAX_ERROR_CHARS],
        "recipe": event.detail.get("recipe") or None,
        "model_hash": event.detail.get("model_hash") or None,
        "detail": detail,
    }


def encode(message: dict) -> bytes:
    """Compact UTF-8 JSON (no NaN: :func:`part_message` already mapped them to null)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()


@functools.lru_cache(maxsize=2)
def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """A JSON Schema shipped with edgead (default: the part result's)."""
    return json.loads(path.read_text())


class PartMessageSchema:
    """The compiled schema (build once, check every message).

    Args:
        path: the schema file (default: the part result's; :data:`EVENT_SCHEMA_PATH` for station events).

    Raises:
        MissingExtraError: without the ``jsonschema`` package (extra ``mqtt``).
    """

    def __init__(self, path: Path = SCHEMA_PATH) -> None:
        jsonschema = lazy_import("jsonschema", feature="MQTT message validation")
        schema = load_schema(path)
        jsonschema.Draft202012Validator.check_schema(schema)
        self._validator = jsonschema.Draft202012Validator(schema)

    def check(self, message: Any) -> None:
        """Raise :class:`MessageError` naming the first field that does not match the schema."""
        error = next(iter(self._validator.iter_errors(message)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            raise MessageError(f"message {message.get('message_id') if isinstance(message, dict) else ''!s}: "
                               f"{where}: {error.message}", hint="a bug or a damaged record; it was not published")
