"""The station's OPC UA address space, shaped after OPC 40100 (Machine Vision): one table, used by the server and by
the docs.

edgead publishes its own namespace ``urn:edgead:STATION`` with the companion specification's structure where it
applies: a vision system object with its state machine, configuration (the model), recipe and result management.
The specification's own NodeSet is loaded beside it, with the station as a ``VisionSystemType`` instance whose state
machine follows the station (:mod:`edgead.opcua.companion`). Node ids are strings (``ns=2;s=VisionSystem.State``) so
that a SCADA or PLC configuration can name them without browsing.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edgead.verdict import Verdict

ROOT = "VisionSystem"


class VisionState(str, Enum):
    """``VisionStateMachine/CurrentState`` (the Operational sub-states of OPC 40100 that a station has)."""

    READY = "Ready"
    BUSY = "Busy"
    ERROR = "Error"


@dataclass(frozen=True)
class NodeSpec:
    """One variable: its path under the vision-system object, OPC UA type, and meaning."""

    path: str
    type: str  # a ua.VariantType name
    description: str


COUNTER_NAMES = {Verdict.ACCEPT: "Accept", Verdict.REJECT: "Reject", Verdict.NO_READ: "NoRead",
                 Verdict.FAULT: "Fault"}

VARIABLES: tuple[NodeSpec, ...] = (
    NodeSpec("Identification.StationName", "String", "The station's name (config key `name`)."),
    NodeSpec("Identification.Manufacturer", "String", "`edgead`."),
    NodeSpec("Identification.SoftwareRevision", "String", "The edgead version."),
    NodeSpec("VisionStateMachine.CurrentState", "String", "`Ready`, `Busy` or `Error` (OPC 40100 Operational sub-"
                                                         "states; `Error` while parts fault)."),
    NodeSpec("VisionStateMachine.LastTransitionTime", "DateTime", "When the state last changed (UTC)."),
    NodeSpec("ConfigurationManagement.ModelHash", "String", "bundle_sha256 of the model that judges parts."),
    NodeSpec("ConfigurationManagement.ModelType", "String", "The model family (padim, patchcore, ...)."),
    NodeSpec("RecipeManagement.ActiveRecipe", "String", "The recipe in use (empty for a one-model station)."),
    NodeSpec("RecipeManagement.Recipes", "String", "The recipes a client may select, `NUMBER NAME` comma-separated "
                                                   "(empty for a one-model station)."),
    NodeSpec("RecipeManagement.LotId", "String", "The lot recorded with each part from now on (empty: none)."),
    NodeSpec("ResultManagement.LastResult.ResultId", "UInt64", "The station's sequence number of the last part; "
                                                               "subscribe to it to get every result."),
    NodeSpec("ResultManagement.LastResult.PartId", "String", "The part id from the trigger."),
    NodeSpec("ResultManagement.LastResult.Verdict", "String", "`accept`, `reject`, `no-read` or `fault`."),
    NodeSpec("ResultManagement.LastResult.Score", "Double", "Normalised score (>= 0.5 rejects); NaN when no "
                                                            "inference ran."),
    NodeSpec("ResultManagement.LastResult.DefectArea_px", "Double", "Area of the defect in camera pixels (0 when "
                                                                     "none)."),
    NodeSpec("ResultManagement.LastResult.Recipe", "String", "The recipe that judged the part."),
    NodeSpec("ResultManagement.LastResult.LotId", "String", "The part's lot (empty: none)."),
    NodeSpec("ResultManagement.LastResult.Time", "DateTime", "Capture time (UTC)."),
    *(NodeSpec(f"ResultManagement.Counters.{name}", "UInt64", f"Parts with verdict `{verdict.value}` since the "
                                                               "server started.")
      for verdict, name in COUNTER_NAMES.items()),
    NodeSpec("ResultManagement.Counters.Total", "UInt64", "All parts since the server started."),
    NodeSpec("DriftMonitoring.Alarm", "Boolean", "True while a drift signal is past its bound (verdicts are "
                                                 "unchanged); updated with each `DriftAlarmEventType` event."),
    NodeSpec("DriftMonitoring.ActiveSignals", "String", "The drift signals in alarm, comma-separated (`score`, "
                                                        "`brightness`, `contrast`, `alignment`); empty: none."),
    NodeSpec("DriftMonitoring.LastMessage", "String", "The last drift event's message (empty before the first)."),
)

EVENT_TYPE = "DriftAlarmEventType"
"""The event type (a subtype of BaseEventType) the vision-system object fires on each drift alarm raised/cleared."""
SEVERITY = {"raised": 700, "cleared": 100}
"""BaseEventType.Severity (1..1000) by the alarm's edge."""


@dataclass(frozen=True)
class EventField:
    """One property of :data:`EVENT_TYPE`, beside BaseEventType's (EventId, Time, Message, Severity, SourceName)."""

    name: str
    type: str  # a ua.VariantType name
    description: str


EVENT_FIELDS: tuple[EventField, ...] = (
    EventField("Metric", "String", "The drift signal: `score`, `brightness`, `contrast` or `alignment`."),
    EventField("State", "String", "`raised` or `cleared`."),
    EventField("Value", "Double", "The signal's value over the window (NaN: none)."),
    EventField("Bound", "Double", "The configured bound (`drift.*`)."),
    EventField("WindowParts", "UInt32", "Parts in the window it was judged over (0: cleared by a reset: a reload, "
                                        "another recipe, the station's stop)."),
    EventField("Recipe", "String", "The recipe in force (empty for a one-model station)."),
)


@dataclass(frozen=True)
class MethodSpec:
    """One method on the vision-system object: its name, input argument, and who may call it."""

    name: str
    argument: str
    description: str


METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("Trigger", "PartId (String)", "Ask for one inspection with this part id; its result appears under "
                                             "`ResultManagement.LastResult` (and goes to the PLC link too). "
                                             "`BadInvalidState` on a camera-triggered station. Output `Accepted` "
                                             "(Boolean): queued for the station. Role `operator`."),
    MethodSpec("SelectRecipe", "RecipeId (String)", "Ask the station to switch recipe between parts (a name, "
                                                    "or a number in digits); an unknown one gets "
                                                    "`BadInvalidArgument`. Output `Accepted` (Boolean): queued. Role "
                                                    "`operator`."),
    MethodSpec("SetLotId", "LotId (String)", "Record this lot with every part from the next one on. Output "
                                             "`Accepted` (Boolean): queued. Role `operator`."),
)


def node_id(path: str) -> str:
    """The string identifier of a node: ``VisionSystem.`` + its path."""
    return f"{ROOT}.{path}" if path else ROOT


def markdown_table() -> str:
    """The address space as Markdown (docs/plant-integration.md)."""
    lines = ["| node (`ns=<urn:edgead:STATION>;s=...`) | type | meaning |", "|---|---|---|"]
    lines += [f"| `{node_id(v.path)}` | {v.type} | {v.description} |" for v in VARIABLES]
    lines += [f"| `{node_id(m.name)}()` | method, in: {m.argument} | {m.description} |" for m in METHODS]
    return "\n".join(lines)


def event_table() -> str:
    """The drift event type's fields as Markdown (docs/plant-integration.md)."""
    lines = [f"| `{EVENT_TYPE}` field | type | meaning |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {f.type} | {f.description} |" for f in EVENT_FIELDS]
    lines.append("| `Severity` | UInt16 | " + ", ".join(f"{v} {k}" for k, v in SEVERITY.items()) + " |")
    lines.append("| `Message`, `Time`, `SourceName` | BaseEventType | The log line; when (the same `t_utc` as the "
                 "event's MQTT message); `VisionSystem`. |")
    return "\n".join(lines)
