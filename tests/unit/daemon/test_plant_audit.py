"""The plant side without a server: an OPC UA trigger carries its caller to the part, and audit rows the server
could not record are counted in the station's metrics."""
from __future__ import annotations

import queue
from types import SimpleNamespace
from unittest import mock

import pytest

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


def test_the_plc_is_waited_for_in_short_slices_while_an_opcua_client_triggers(monkeypatch):
    """With OPC UA on, the loop waits for the PLC in slices and takes OPC UA requests between them: 20 ms slices on
    an idle station; 1 ms slices for a while after an OPC UA trigger, so a client triggering part after part does not
    wait most of a slice per part."""
    from edgead.daemon import plant as plant_mod

    clock = [100.0]
    monkeypatch.setattr(plant_mod.time, "monotonic", lambda: clock[0])
    book = SimpleNamespace(name="", model_hash="ab" * 32, recipes=(), names=())
    plant = Plant(StationConfig(), book)
    plant.server = mock.Mock(requests=queue.Queue(), auditor=SimpleNamespace(failures=0))
    slices: list[float] = []

    def wait(timeout_ms):  # the PLC link: nothing arrives; the clock moves by the slice
        slices.append(timeout_ms)
        clock[0] += timeout_ms / 1000
        return None

    plc = SimpleNamespace(wait_trigger=wait)
    assert plant.wait_trigger(plc, book, 100) is None
    assert slices and max(slices) == plant_mod.OPCUA_SLICE_MS  # idle: long slices
    plant.server.requests.put(OpcUaRequest(RequestKind.TRIGGER, "P1", "anna", 1))
    assert plant.wait_trigger(plc, book, 100).part_id == "P1"
    slices.clear()
    assert plant.wait_trigger(plc, book, 10) is None
    assert slices and max(slices) == plant_mod.OPCUA_ACTIVE_SLICE_MS  # a client is triggering: short slices
    clock[0] += plant_mod.OPCUA_ACTIVE_S
    slices.clear()
    assert plant.wait_trigger(plc, book, 100) is None
    assert max(slices) == plant_mod.OPCUA_SLICE_MS  # back to long slices once it stopped


def test_a_link_that_can_be_woken_is_waited_on_for_the_whole_poll_and_an_opcua_request_wakes_it(monkeypatch):
    """With OPC UA on and a link that can be woken, the loop waits for the PLC in one piece; a request that comes
    meanwhile (the server calls ``on_request``) ends the wait, and the loop takes it at once, not after a slice."""
    from edgead.daemon import plant as plant_mod

    clock = [100.0]
    monkeypatch.setattr(plant_mod.time, "monotonic", lambda: clock[0])
    book = SimpleNamespace(name="", model_hash="ab" * 32, recipes=(), names=())
    plant = Plant(StationConfig(), book)
    plant.server = mock.Mock(requests=queue.Queue(), auditor=SimpleNamespace(failures=0))
    on_request = plant._wake  # what Plant gives its own server as ``on_request``

    class Link:
        wakeable = True

        def __init__(self):
            self.waits: list[float] = []
            self.woken = False
            self.arrivals = []  # (after ms, part id): an OPC UA Trigger call coming in during a wait

        def wake(self):
            self.woken = True

        def wait_trigger(self, timeout_ms):
            self.waits.append(timeout_ms)
            if self.arrivals:
                after_ms, part_id = self.arrivals.pop(0)
                clock[0] += after_ms / 1000
                plant.server.requests.put(OpcUaRequest(RequestKind.TRIGGER, part_id, "anna", 1))
                on_request()  # the server's thread, right after queueing it
            if self.woken:
                self.woken = False
                return None
            clock[0] += timeout_ms / 1000
            return None

    link = Link()
    assert plant.wait_trigger(link, book, 200) is None
    assert link.waits == [pytest.approx(200)]  # idle: one wait for the whole poll, no slices
    link.waits.clear()
    link.arrivals.append((3.0, "P1"))
    start = clock[0]
    trigger = plant.wait_trigger(link, book, 200)
    assert trigger.part_id == "P1" and trigger.requested_by == "anna"
    assert link.waits == [pytest.approx(200)] and clock[0] - start == pytest.approx(0.003)  # taken when it came
    link.woken = False
    plant._wake()  # a request while the loop inspects a part: nobody waits, nothing to wake
    assert not link.woken
