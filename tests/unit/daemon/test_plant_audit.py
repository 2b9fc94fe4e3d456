"""The plant side without a server: an OPC UA trigger carries its caller to the part, and audit rows the server
could not record are counted in the station's metrics."""
from __future__ import annotations

import queue
from types import SimpleNamespace
from unittest import mock

from edgead.daemon.config import StationConfig
from edgead.daemon.plant import Plant
from edgead.observe.metrics import StationMetrics
from edgead.opcua.server import OpcUaRequest, RequestKind


def test_a_trigger_carries_its_caller_and_unrecorded_audit_rows_are_counted():
    metrics = StationMetrics()
    book = SimpleNamespace(name="", model_hash="ab" * 32, recipes=(), names=())
    plant = Plant(StationConfig(), book, metrics)  # opcua off: no server of its own
    plant.server = mock.Mock(requests=queue.Queue(), auditor=SimpleNamespace(failures=0))
    plant.server.requests.put(OpcUaRequest(RequestKind.TRIGGER, "P1", "anna", 1))
    plant.server.requests.put(OpcUaRequest(RequestKind.SET_LOT, "LOT-9", "anna", 2))
    plant.server.auditor.failures = 2
    plant.take_requests(book)
    trigger = plant.wait_trigger(mock.Mock(), book, 0)
    assert (trigger.part_id, trigger.requested_by) == ("P1", "anna") and plant.lot_id == "LOT-9"
    assert "edgead_opcua_audit_failures_total 2" in metrics.render()
    plant.server.auditor.failures = 3
    plant.take_requests(book)
    assert "edgead_opcua_audit_failures_total 3" in metrics.render()
