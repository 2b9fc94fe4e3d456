"""The station's plant side beyond the PLC link: recipe and lot selection, and the OPC UA server.

:class:`Plant` is a station component (opened after the PLC link, closed before it). It keeps the lot in force
and applies what the plant asks for, always **between two parts**:

- a PLC trigger may carry a recipe (a register, ``R`` in an ASCII telegram) and a lot id; they apply to that part
  and stay in force for the next ones;
- OPC UA ``SelectRecipe`` / ``SetLotId`` requests are taken while the station waits for a trigger (and before
  each part); ``Trigger`` requests are triggers like the PLC's, answered to the PLC link as well. A request
  wakes the wait for the PLC (:meth:`PlcLink.wake <edgead.plc.base.PlcLink.wake>`): a link that can be woken is
  waited on for the whole poll, one that cannot in slices;
- an unknown recipe (or a malformed recipe/lot from the PLC) makes that part a fault, answered fail-safe and
  recorded with the request; the recipe in force does not change.

After each part the result, counters, recipe and lot go to the OPC UA address space (a drift alarm's edge, as an
OPC UA event, when it happens), and the vision state follows the loop (``Busy`` during a part, ``Ready`` between
parts, ``Error`` while the station is degraded). The server runs in its own thread (:mod:`edgead.opcua.server`);
nothing here waits for it. Every OPC UA call and write is recorded with its caller in the record store's ``audit``
table by the server's own writer thread (:mod:`edgead.opcua.audit`); a part triggered over OPC UA carries its
caller (``requested_by``).
"""
from __future__ import annotations

import collections
import logging
import math
import queue
import time
from dataclasses import dataclass

from edgead.daemon.config import StationConfig, TriggerSource
from edgead.daemon.recipes import ONE_MODEL, RecipeBook, SelectionError, UnknownRecipe
from edgead.plc.base import PlcLink, Trigger

log = logging.getLogger(__name__)
OPCUA_SLICE_MS = 20
"""With OPC UA on, a PLC link that cannot be woken (``PlcLink.wakeable`` False: a ``socket://``
port) is waited for in slices this long, so an OPC UA request waits at most about this."""
OPCUA_ACTIVE_SLICE_MS = 1
OPCUA_ACTIVE_S = 2.0
"""For this long after an OPC UA trigger the slices are :data:`OPCUA_ACTIVE_SLICE_MS`: a client that triggers part
after part waits about a millisecond for the loop, not most of a slice, and an idle station does not wake every
millisecond."""


@dataclass(frozen=True)
class Selection:
    """What a part is judged and recorded with: the recipe's name, the lot, and why it cannot be judged."""

    recipe: str
    lot_id: str | None
    refused: SelectionError | None = None


class Plant:
    """Recipe/lot state and the optional OPC UA server of one station.

    Args:
        cfg: the station config (``opcua``, ``name``, the trigger source, ``storage`` for the audit rows).
        book: the recipes, for the server's first view (recipe list, model).
        metrics: the station's metrics (audit rows that could not be recorded are counted there).
    """

    def __init__(self, cfg: StationConfig, book: RecipeBook, metrics=None):
        self.lot_id: str | None = None
        self.server = None
        self.metrics = metrics
        self._triggers: collections.deque[Trigger] = collections.deque()
        self._shown: tuple = ()
        self._state = None  # the vision state last shown
        self._audit_failures = 0  # the server's count when last copied to the metrics
        self._last_opcua_trigger = -math.inf  # time.monotonic() of the last OPC UA trigger taken
        self._waiting_on: PlcLink | None = None  # the link the loop waits on, woken by an OPC UA request
        if cfg.opcua.enabled:
            from edgead.opcua.audit import Auditor
            from edgead.opcua.server import OpcUaServer

            takes_triggers = cfg.trigger_source is TriggerSource.PLC
            auditor = Auditor(cfg.storage.database, cfg.storage.synchronous)
            try:
                self.server = OpcUaServer(cfg.opcua, cfg.name, book.model_hash, "", self._accepted(book),
                                          triggers=takes_triggers, auditor=auditor).start()
            except BaseException:
                auditor.close()
                raise
            self.server.on_request = self._wake
            self.show(book)
            self.health(False)  # opened last of the components: the station is ready

    def close(self) -> None:
        """Stop the OPC UA server (idempotent); OPC UA triggers not inspected yet are logged, not kept."""
        if self.server is not None:
            left = len(self._triggers) + self.server.requests.qsize()
            if left:
                log.warning("OPC UA: %d request(s) not taken: the station stopped (a client re-sends them)", left)
            self.server.stop()
            self.server = None

    # --- between parts ------------------------------------------------------------------------------------------
    def wait_trigger(self, plc: PlcLink, book: RecipeBook, timeout_ms: float) -> Trigger | None:
        """The next trigger from OPC UA or the PLC, within ``timeout_ms``; OPC UA requests applied meanwhile.

        Raises:
            PlcError: from the PLC link.
        """
        if self.server is None:
            return plc.wait_trigger(timeout_ms)
        deadline = time.monotonic() + timeout_ms / 1000
        self._waiting_on = plc  # before the first look: a request from here on wakes the wait (or the next one)
        try:
            while True:
                self.take_requests(book)
                if self._triggers:
                    return self._triggers.popleft()
                now = time.monotonic()
                remaining_ms = (deadline - now) * 1000
                if getattr(plc, "wakeable", False):
                    slice_ms = remaining_ms
                elif now - self._last_opcua_trigger < OPCUA_ACTIVE_S:
                    slice_ms = OPCUA_ACTIVE_SLICE_MS
                else:
                    slice_ms = OPCUA_SLICE_MS
                trigger = plc.wait_trigger(max(0.0, min(remaining_ms, slice_ms)))
                if trigger is not None or time.monotonic() >= deadline:  # woken early: take the request
                    return trigger
        finally:
            self._waiting_on = None

    def _wake(self) -> None:
        """An OPC UA request was queued (the server's thread): end the loop's wait for the PLC, if it waits."""
        link = self._waiting_on
        if link is not None:
            link.wake()

    def take_requests(self, book: RecipeBook) -> None:
        """Apply the OPC UA requests that came in (recipe, lot) and queue its triggers. Never waits."""
        if self.server is None:
            return
        from edgead.opcua.server import RequestKind

        while True:
            try:
                request = self.server.requests.get_nowait()
            except queue.Empty:
                break
            if request.kind is RequestKind.TRIGGER:
                self._triggers.append(Trigger(request.value, request.t_ns, requested_by=request.user))
                self._last_opcua_trigger = time.monotonic()
            elif request.kind is RequestKind.SET_LOT:
                self.lot_id = request.value
                log.info("OPC UA: lot %s (set by %s)", request.value, request.user)
            else:
                try:
                    book.select(request.value)
                except UnknownRecipe as exc:  # the server checks names first; a reload may have removed it
                    log.warning("OPC UA: %s (asked by %s)", exc, request.user)
        self._count_audit_failures()
        self.show(book)

    def _count_audit_failures(self) -> None:
        failures = self.server.auditor.failures
        if failures != self._audit_failures and self.metrics is not None:
            self.metrics.opcua_audit_failures.labels().inc(failures - self._audit_failures)
        self._audit_failures = failures

    def reloaded(self, cfg: StationConfig) -> None:
        """After a SIGHUP reload: audit rows go to the (possibly moved) record store, and the client trust list
        is read again (a refused re-read keeps the old list: :meth:`OpcUaServer.reload_trust`)."""
        if self.server is None:
            return
        self.server.auditor.retarget(cfg.storage.database, cfg.storage.synchronous)
        self.server.reload_trust()

    def select(self, book: RecipeBook, trigger: Trigger | None) -> Selection:
        """Apply what a trigger carries (recipe, lot) and say what the part is judged with."""
        if trigger is not None:
            if trigger.lot_id is not None:
                self.lot_id = trigger.lot_id
            if trigger.error is not None:
                return Selection(book.name, self.lot_id, SelectionError(f"PLC trigger: {trigger.error}"))
            if trigger.recipe is not None:
                try:
                    book.select(trigger.recipe)
                except UnknownRecipe as exc:
                    return Selection(str(trigger.recipe), self.lot_id, exc)
        return Selection(book.name, self.lot_id)

    # --- after a part -------------------------------------------------------------------------------------------
    def busy(self) -> None:
        """A part is being inspected."""
        if self.server is None:  # no OPC UA: nothing to show (and nothing of it imported, in the loop's time)
            return
        from edgead.opcua.address_space import VisionState

        self._show_state(VisionState.BUSY)

    def health(self, degraded: bool) -> None:
        """Between parts: ``Error`` while the station is degraded, else ``Ready`` (posted only on a change)."""
        if self.server is None:
            return
        from edgead.opcua.address_space import VisionState

        self._show_state(VisionState.ERROR if degraded else VisionState.READY)

    def _show_state(self, state) -> None:
        if self.server is not None and state is not self._state:
            self.server.set_state(state)
            self._state = state

    def part_done(self, book: RecipeBook, outcome, selection: Selection, t_ns: int) -> None:
        """Publish a part's result (the state follows from the station's health check right after)."""
        if self.server is None:
            return
        from edgead.opcua.server import ResultInfo

        area = float(sum(r.defect_area_px for r in outcome.rois))
        self.server.publish_result(ResultInfo(outcome.seq, outcome.part_id, outcome.verdict, outcome.score, area,
                                              selection.recipe, t_ns, selection.lot_id or ""))
        self.show(book)

    def event(self, event) -> None:
        """A drift alarm raised or cleared (:class:`~edgead.records.events.StationEvent`): an OPC UA event. Never
        waits."""
        if self.server is not None:
            self.server.publish_event(event)

    def show(self, book: RecipeBook) -> None:
        """Bring the server's recipe, recipe list, lot and model up to date (posts only what changed)."""
        if self.server is None:
            return
        view = (book.name, book.model_hash, self.lot_id, tuple((r.number, r.name) for r in book.recipes))
        if view == self._shown:
            return
        old = self._shown or (None, None, None, None)
        if view[0] != old[0]:
            self.server.set_recipe(book.name)
        if view[1] != old[1]:
            self.server.set_model(book.model_hash)
        if view[2] != old[2]:
            self.server.set_lot(self.lot_id)
        if view[3] != old[3]:
            listing = ", ".join(f"{n} {name}" for n, name in view[3] if name != ONE_MODEL)
            self.server.set_recipes(self._accepted(book), listing)
        self._shown = view

    @staticmethod
    def _accepted(book: RecipeBook) -> tuple[str, ...]:
        """What SelectRecipe accepts: names and numbers (in digits); on a one-model station, nothing at all."""
        if not book.names:
            return ("\x00",)  # no recipe is selectable: every SelectRecipe is BadInvalidArgument
        return book.names + tuple(str(r.number) for r in book.recipes)

