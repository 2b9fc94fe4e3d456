"""The OPC 40100 (Machine Vision) companion model: its NodeSet loaded at server start, and the station as an instance
of its ``VisionSystemType``.

The NodeSet is vendored (``nodesets/``, with its licence and provenance) and imported with asyncua's ``import_xml``.
The instance, ``Objects/MachineVision`` in the station's namespace (BrowseName ``MachineVision``, DisplayName the
station's name), has the type's mandatory parts, mapped where edgead has the thing they model:

- ``VisionStateMachine.CurrentState`` (and ``.Id``, the state object of the type): ``Preoperational`` until the
  station has opened, ``Operational`` while it inspects or waits for parts, ``Error`` while it is degraded
  (:data:`STATES`);
- ``VisionStateMachine.Halt()`` / ``Reset()``: a station is stopped and restarted by its service manager, not by a
  client: answered ``BadNotSupported`` (and on the audit trail, as every call is).

The companion model's optional parts (result, recipe and configuration management with their methods and
structured data types, the automatic-mode sub-state machine) are not instantiated: their methods would need the
spec's handles, result structures and file transfer. Results, recipes and the model stay under the station's own
``VisionSystem`` object (:mod:`edgead.opcua.address_space`), which is unchanged.
"""
from __future__ import annotations

import gzip
from pathlib import Path

from edgead.opcua.address_space import VisionState

NODESET = Path(__file__).with_name("nodesets") / "Opc.Ua.MachineVision.NodeSet2.xml.gz"
NAMESPACE = "http://opcfoundation.org/UA/MachineVision"
VISION_SYSTEM_TYPE = 1003  # ns=MachineVision;i=1003 VisionSystemType
ROOT = "MachineVision"
PREOPERATIONAL = ("Preoperational", 5028)
STATES: dict[VisionState, tuple[str, int]] = {
    VisionState.READY: ("Operational", 5031),
    VisionState.BUSY: ("Operational", 5031),
    VisionState.ERROR: ("Error", 5030),
}
"""edgead's vision state -> (the VisionStateMachineType state's name, its node id in the companion namespace)."""
UNSUPPORTED_METHODS = ("VisionStateMachine.Halt", "VisionStateMachine.Reset")


class Companion:
    """The instance's nodes the server writes, after :meth:`build`."""

    def __init__(self):
        self.namespace_index = 0
        self.state = None
        self.state_id = None

    async def build(self, server, idx: int, station: str, unsupported) -> None:
        """Import the NodeSet and instantiate ``VisionSystemType`` under Objects.

        Args:
            server: the asyncua server (initialised, not started).
            idx: the station's namespace index.
            station: the DisplayName of the instance.
            unsupported: ``unsupported(path)`` returns the callback for a method that edgead does not carry out.
        """
        from asyncua import ua
        from asyncua.common.instantiate_util import instantiate

        await server.import_xml(xmlstring=gzip.decompress(NODESET.read_bytes()).decode("utf-8"))
        self.namespace_index = mv = await server.get_namespace_index(NAMESPACE)
        await instantiate(server.nodes.objects, server.get_node(ua.NodeId(VISION_SYSTEM_TYPE, mv)),
                          ua.NodeId(ROOT, idx), bname=ua.QualifiedName(ROOT, idx), dname=ua.LocalizedText(station),
                          instantiate_optional=False)
        self.state = server.get_node(ua.NodeId(f"{ROOT}.VisionStateMachine.CurrentState", idx))
        self.state_id = server.get_node(ua.NodeId(f"{ROOT}.VisionStateMachine.CurrentState.Id", idx))
        for path in UNSUPPORTED_METHODS:
            server.link_method(server.get_node(ua.NodeId(f"{ROOT}.{path}", idx)), unsupported(f"{ROOT}.{path}"))
        await self._write_state(*PREOPERATIONAL)

    async def set_state(self, state: VisionState) -> None:
        await self._write_state(*STATES[state])

    async def _write_state(self, name: str, number: int) -> None:
        from asyncua import ua

        await self.state.write_value(ua.Variant(ua.LocalizedText(name), ua.VariantType.LocalizedText))
        await self.state_id.write_value(ua.Variant(ua.NodeId(number, self.namespace_index), ua.VariantType.NodeId))
