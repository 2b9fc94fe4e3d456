"""The station's OPC UA server (asyncua): its own thread and asyncio loop; the inspection loop never waits for it.

The daemon's side is three calls, none of which blocks:

- :meth:`OpcUaServer.publish_result` and :meth:`OpcUaServer.set_state` append to a bounded deque and wake the
  server's loop (``call_soon_threadsafe``); the loop writes the variables in order. If the server falls behind, the
  oldest pending updates are dropped (the counters travel with each result, so they stay right);
- :meth:`OpcUaServer.publish_event` (a drift alarm raised or cleared) goes into a queue of its own (never pushed out
  by part results); the loop fires a ``DriftAlarmEventType`` event from the vision-system object and updates
  ``DriftMonitoring``;
- :attr:`OpcUaServer.requests` is a ``queue.Queue`` of :class:`OpcUaRequest` (Trigger, SelectRecipe) that the
  loop takes with ``get_nowait()``. A full queue refuses the call (``BadTooManyOperations``).

Security: one endpoint with policy Basic256Sha256 in ``opcua.security`` mode (sign and encrypt by default); with
``opcua.trusted_clients_dir`` a client application certificate must be trusted (and not revoked) to open a session.
Users
come from ``opcua.users_file`` (salted PBKDF2 hashes) with roles ``viewer`` (browse, read, subscribe) and
``operator`` (also call the methods); anonymous sessions are refused unless ``opcua.anonymous: viewer``. Nobody may
write variables (they are read-only), and nobody may change the address space. Requests above
``max_message_kb`` are refused and their connection closed; string arguments above ``max_string_chars`` get
``BadOutOfRange``. A SIGHUP reload reads the client trust list again (:meth:`OpcUaServer.reload_trust`).

Every method call and write, and every refused login, is recorded with its caller and answer
(:mod:`edgead.opcua.audit`); an accepted call is queued only once its row is committed. The OPC 40100 NodeSet is
loaded beside the station's own nodes, with the station as a ``VisionSystemType`` instance
(:mod:`edgead.opcua.companion`).
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Callable

import edgead
from edgead.errors import EdgeadError, ExitStatus, lazy_import
from edgead.opcua import address_space as space
from edgead.opcua.address_space import VisionState
from edgead.opcua.certs import ensure_certificate
from edgead.opcua.access import ClientTrust, UserManager, roles_ruleset
from edgead.opcua.audit import CALLER, Auditor, Caller
from edgead.opcua.companion import Companion
from edgead.opcua.config import AnonymousAccess, OpcUaConfig, SecurityMode, X509_PREFIX
from edgead.records.audit import AuditAction
from edgead.verdict import Verdict

log = logging.getLogger(__name__)

PENDING_UPDATES = 256
PENDING_EVENTS = 64


class OpcUaError(EdgeadError):
    """The OPC UA server cannot start (address in use, bad certificate): the daemon does not start (exit 5, as for a
    PLC port it cannot open)."""

    exit_status = ExitStatus.DEVICE


class RequestKind(str, Enum):
    """What an OPC UA client asked the station for."""

    TRIGGER = "trigger"
    SELECT_RECIPE = "select-recipe"
    SET_LOT = "set-lot"


METHOD_KINDS = {"Trigger": RequestKind.TRIGGER, "SelectRecipe": RequestKind.SELECT_RECIPE,
                "SetLotId": RequestKind.SET_LOT}
"""Method name (:data:`edgead.opcua.address_space.METHODS`) -> the request it queues."""


@dataclass(frozen=True)
class OpcUaRequest:
    """A request from a client: its kind, its argument (part id or recipe), the user who called, and
    ``time.monotonic_ns()``."""

    kind: RequestKind
    value: str
    user: str | None
    t_ns: int


@dataclass(frozen=True)
class ResultInfo:
    """One part's result as the OPC UA server shows it."""

    seq: int
    part_id: str
    verdict: Verdict
    score: float | None
    defect_area_px: float = 0.0
    recipe: str = ""
    t_ns: int = field(default_factory=time.time_ns)
    lot_id: str = ""


class OpcUaServer:
    """An OPC UA server for one station, in its own thread.

    Args:
        cfg: the ``opcua`` section (``listen`` must be set).
        station: the station's name (application URI ``urn:edgead:STATION``).
        model_hash: the model's ``bundle_sha256``.
        model_type: the model family.
        recipes: what a client may select (names, and numbers in digits); empty: any name is passed on (the
            station decides). :meth:`set_recipes` changes it.
        triggers: whether the station takes triggers from OPC UA (False on a camera-triggered station: Trigger
            gets ``BadInvalidState``).
        auditor: where every method call and write is recorded with its caller (:mod:`edgead.opcua.audit`); the
            default only logs them.

    Raises:
        MissingExtraError: without asyncua/cryptography (extra ``opcua``).
        ConfigError: for a bad users file or certificate folder.

    Example:
        >>> with OpcUaServer(cfg, "line3", "ab12...", "padim") as ua_server:          # doctest: +SKIP
        ...     ua_server.publish_result(ResultInfo(1, "17", Verdict.ACCEPT, 0.12))
        ...     request = ua_server.requests.get_nowait()                             # in the loop: never waits
    """

    def __init__(self, cfg: OpcUaConfig, station: str, model_hash: str = "", model_type: str = "",
                 recipes: tuple[str, ...] = (), triggers: bool = True, auditor: Auditor | None = None):
        self._ua = lazy_import("asyncua", feature="the OPC UA server")
        self.cfg = cfg
        self.station = station
        self.host, self.port = cfg.address()
        self.application_uri = f"urn:edgead:{station}"
        self.endpoint = f"opc.tcp://{self.host}:{self.port}/edgead"
        self._users = cfg.users()
        self._model = (model_hash, model_type)
        self._recipes = tuple(recipes)
        self._triggers = triggers
        self.auditor = auditor if auditor is not None else Auditor(None)
        self.trust: ClientTrust | None = None
        self.companion = Companion()
        self._accepting: asyncio.Lock | None = None
        self.requests: queue.Queue[OpcUaRequest] = queue.Queue(maxsize=cfg.request_queue)
        self.on_request: Callable[[], None] | None = None  # called (server thread) after each request is queued
        self.counters = {verdict: 0 for verdict in Verdict}
        self._pending: collections.deque = collections.deque(maxlen=PENDING_UPDATES)
        self._events: collections.deque = collections.deque(maxlen=PENDING_EVENTS)
        self._drift_active: dict[str, None] = {}  # the signals in alarm, in the order they were raised
        self._event_gen = None
        self._loop = asyncio.new_event_loop()
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._nodes: dict[str, object] = {}
        self._thread = threading.Thread(target=self._thread_main, name=f"opcua {self.endpoint}", daemon=True)
        if cfg.certificate_file is not None:
            self.certificate_file, self.private_key_file = cfg.certificate_file, cfg.private_key_file
        else:
            self.certificate_file, self.private_key_file = ensure_certificate(
                cfg.pki_dir, self.application_uri, [self.host, "localhost", "127.0.0.1"])

    # --- the daemon's side: never blocks ----------------------------------------------------------------------

    def publish_result(self, result: ResultInfo) -> None:
        """Show a part's result (and count it). Returns at once."""
        self.counters[result.verdict] += 1
        self._post(("result", result, dict(self.counters)))

    def set_state(self, state: VisionState) -> None:
        """Set ``VisionStateMachine/CurrentState``. Returns at once."""
        self._post(("state", state, time.time_ns()))

    def set_recipe(self, recipe: str) -> None:
        """Show the active recipe. Returns at once."""
        self._post(("recipe", recipe, None))

    def set_lot(self, lot_id: str | None) -> None:
        """Show the lot in force. Returns at once."""
        self._post(("lot", lot_id or "", None))

    def set_model(self, model_hash: str, model_type: str = "") -> None:
        """Show the model that judges parts now (after a reload or a recipe switch). Returns at once."""
        self._post(("model", model_hash, model_type))

    def set_recipes(self, recipes: tuple[str, ...], listing: str = "") -> None:
        """What SelectRecipe accepts from now on, and the ``RecipeManagement.Recipes`` text. Returns at once."""
        self._recipes = tuple(recipes)
        self._post(("recipes", listing, None))

    def publish_event(self, event) -> None:
        """Fire a drift event (:class:`~edgead.records.events.StationEvent`) and update ``DriftMonitoring``.
        Returns at once."""
        self._events.append(event)
        self._post(None)

    def reload_trust(self, timeout_s: float = 30.0) -> bool:
        """Read ``opcua.trusted_clients_dir`` and ``client_crl_dir`` again (SIGHUP): a newly trusted client can
        connect, a removed or revoked one is refused from its next connection on; connections already open stay.
        An unreadable or empty folder keeps the list in force (logged). Waits for the server's loop.

        Returns:
            True when the list was read again; False when it was kept, or the server has no trust list.
        """
        if self.trust is None or not self._thread.is_alive():
            return False
        future = asyncio.run_coroutine_threadsafe(self.trust.reload(), self._loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            log.error("OPC UA: client trust list not reloaded within %g s: the list in force stays", timeout_s)
            return False

    def _post(self, item: tuple | None) -> None:
        if item is not None:
            self._pending.append(item)
        if self._wake is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop is closing
                pass

    # --- lifetime ---------------------------------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> "OpcUaServer":
        """Start the server thread and wait until the endpoint listens.

        Raises:
            OpcUaError: if it does not start (address in use, certificate unreadable).
        """
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise OpcUaError(f"OPC UA server {self.endpoint} did not start within {timeout_s:g} s")
        if self._error is not None:
            raise OpcUaError(f"OPC UA server {self.endpoint} cannot start: {self._error}",
                             hint="another process holds the port, or the certificate/key is unreadable") \
                from self._error
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and its thread, then write the audit rows still queued (idempotent)."""
        if self._thread.is_alive() and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(timeout_s)
        self.auditor.close()

    def __enter__(self) -> "OpcUaServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    _stop_event: asyncio.Event | None = None

    def _thread_main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(); the station keeps running without OPC UA
            self._error = exc
            log.error("OPC UA server %s stopped: %s", self.endpoint, exc)
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        self._wake, self._stop_event, self._accepting = asyncio.Event(), asyncio.Event(), asyncio.Lock()
        server = await self._build()
        async with server:
            if self.cfg.anonymous is AnonymousAccess.OFF:  # endpoints are built: they do not offer anonymous, but
                # an anonymous attempt reaches the user manager, which refuses it on the audit trail
                server.iserver.supported_tokens = (*server.iserver.supported_tokens, self._ua.ua.AnonymousIdentityToken)
            self._ready.set()
            log.info("OPC UA server listening at %s (%s, anonymous %s)", self.endpoint, self.cfg.security.value,
                     self.cfg.anonymous.value)
            while not self._stop_event.is_set():
                await self._drain(server)
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(self._stop_event.wait())
                await asyncio.wait((waiter, stopper), return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                self._wake.clear()

    # --- building the server ----------------------------------------------------------------------------------

    async def _build(self):
        ua_mod = self._ua
        ua = ua_mod.ua
        from asyncua.common.connection import TransportLimits

        users = UserManager(self._users, self.cfg.anonymous, self._login_refused)
        server = ua_mod.Server(user_manager=users)
        await server.init()
        users.watch_x509_tokens(server.iserver)
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"edgead {self.station}")
        await server.set_application_uri(self.application_uri)
        await server.load_certificate(str(self.certificate_file))
        await server.load_private_key(str(self.private_key_file))
        policy = {SecurityMode.SIGN_AND_ENCRYPT: ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                  SecurityMode.SIGN: ua.SecurityPolicyType.Basic256Sha256_Sign,
                  SecurityMode.NONE: ua.SecurityPolicyType.NoSecurity}[self.cfg.security]
        server.set_security_policy([policy], permission_ruleset=roles_ruleset(self._users, self._denied))
        if self.cfg.trusted_clients_dir is not None:
            self.trust = ClientTrust(self.cfg)
            await self.trust.load()
            server.set_certificate_validator(self.trust)
        tokens = [ua.UserNameIdentityToken]
        if any(secret.startswith(X509_PREFIX) for _, secret in self._users.values()):
            tokens.append(ua.X509IdentityToken)
        if self.cfg.anonymous is AnonymousAccess.VIEWER:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        size = self.cfg.max_message_kb * 1024
        server.limits = TransportLimits(max_recv_buffer=65535, max_send_buffer=65535,
                                        max_chunk_count=max(1, math.ceil(size / 65535)), max_message_size=size)
        await self._build_nodes(server)
        return server

    async def _build_nodes(self, server) -> None:
        ua = self._ua.ua
        idx = await server.register_namespace(self.application_uri)
        self.namespace_index = idx
        root = await server.nodes.objects.add_object(ua.NodeId(space.ROOT, idx), ua.QualifiedName(space.ROOT, idx))
        folders = {"": root}
        now = datetime.now(timezone.utc)
        initial = {"Identification.StationName": self.station, "Identification.Manufacturer": "edgead",
                   "Identification.SoftwareRevision": edgead.__version__,
                   "VisionStateMachine.CurrentState": VisionState.ERROR.value,
                   "VisionStateMachine.LastTransitionTime": now, "ConfigurationManagement.ModelHash": self._model[0],
                   "ConfigurationManagement.ModelType": self._model[1], "ResultManagement.LastResult.Time": now,
                   "ResultManagement.LastResult.Score": math.nan}
        defaults = {"String": "", "UInt64": 0, "Double": 0.0, "DateTime": now, "Boolean": False}
        for spec in space.VARIABLES:
            parent_path, _, name = spec.path.rpartition(".")
            parent = await self._folder(folders, parent_path, idx)
            variant = getattr(ua.VariantType, spec.type)
            node = await parent.add_variable(ua.NodeId(space.node_id(spec.path), idx), ua.QualifiedName(name, idx),
                                             ua.Variant(initial.get(spec.path, defaults[spec.type]), variant))
            await node.set_read_only()
            self._nodes[spec.path] = node
        await self._build_event_type(server, root, idx)
        for method in space.METHODS:
            await root.add_method(ua.NodeId(space.node_id(method.name), idx), ua.QualifiedName(method.name, idx),
                                  self._method(method), [ua.VariantType.String], [ua.VariantType.Boolean])
        t = time.perf_counter()
        await self.companion.build(server, idx, self.station, self._unsupported)
        log.info("OPC UA: OPC 40100 Machine Vision NodeSet loaded and instantiated in %.2f s",
                 time.perf_counter() - t)

    async def _build_event_type(self, server, root, idx: int) -> None:
        """``DriftAlarmEventType`` (a BaseEventType with :data:`~edgead.opcua.address_space.EVENT_FIELDS`), fired
        from the vision-system object (its EventNotifier: SubscribeToEvents)."""
        ua = self._ua.ua
        base = server.get_node(ua.NodeId(ua.ObjectIds.BaseEventType))
        etype = await base.add_object_type(ua.NodeId(space.node_id(space.EVENT_TYPE), idx),
                                           ua.QualifiedName(space.EVENT_TYPE, idx))
        for spec in space.EVENT_FIELDS:
            variant = getattr(ua.VariantType, spec.type)
            await etype.add_property(ua.NodeId(f"{space.node_id(space.EVENT_TYPE)}.{spec.name}", idx),
                                     ua.QualifiedName(spec.name, idx), ua.get_default_value(variant),
                                     varianttype=variant)
        self.event_type = etype
        self._event_gen = await server.get_event_generator(etype, root)

    async def _fire(self, event) -> None:
        """One drift event: the DriftMonitoring variables first (a client that reads on the event sees them)."""
        state = event.state.value
        if state == "raised":
            self._drift_active[event.metric] = None
        else:
            self._drift_active.pop(event.metric, None)
        await self._write("DriftMonitoring.Alarm", bool(self._drift_active))
        await self._write("DriftMonitoring.ActiveSignals", ",".join(self._drift_active))
        await self._write("DriftMonitoring.LastMessage", event.message)
        e = self._event_gen.event
        values = {"Metric": event.metric, "State": state,
                  "Value": math.nan if event.value is None else float(event.value),
                  "Bound": math.nan if event.bound is None else float(event.bound),
                  "WindowParts": int(event.window_parts or 0), "Recipe": str(event.detail.get("recipe") or "")}
        for spec in space.EVENT_FIELDS:
            setattr(e, spec.name, values[spec.name])  # wrapped in its property's variant type on the way out
        e.Severity = space.SEVERITY[state]
        await self._event_gen.trigger(time_attr=_utc(event.t_ns), message=event.message)

    async def _folder(self, folders: dict, path: str, idx: int):
        if path in folders:
            return folders[path]
        parent_path, _, name = path.rpartition(".")
        parent = await self._folder(folders, parent_path, idx)
        ua = self._ua.ua
        folders[path] = await parent.add_object(ua.NodeId(space.node_id(path), idx), ua.QualifiedName(name, idx))
        return folders[path]

    # --- methods, and what is refused before them ----------------------------------------------------------

    def _method(self, method: space.MethodSpec):
        kind, argument = METHOD_KINDS[method.name], method.argument.split()[0]

        async def call(parent, *arguments):
            return await self._request(method.name, kind, argument, arguments)

        return call

    async def _request(self, name: str, kind: RequestKind, argument: str, arguments: tuple):
        """One method call: checked, recorded with its caller, then queued for the station. An accepted request
        is queued only once its audit row is committed (else ``BadResourceUnavailable``); a refusal is answered
        at once and recorded without waiting."""
        ua = self._ua.ua
        value = getattr(arguments[0], "Value", None) if len(arguments) == 1 else None
        caller = CALLER.get()
        status = self._refusal(kind, value, caller, len(arguments))
        entry = (caller or Caller("?", "", "?", "")).entry(
            AuditAction.CALL, name, {argument: value} if len(arguments) <= 1 else
            {f"{argument}[{i}]": getattr(a, "Value", a) for i, a in enumerate(arguments)}, status or "Good")
        if status is None:
            async with self._accepting:  # the only producer: a request recorded as Good finds room in the queue
                if self.requests.full():
                    status = "BadTooManyOperations"
                elif await self.auditor.record(entry):
                    self.requests.put_nowait(OpcUaRequest(kind, value, caller.name, time.monotonic_ns()))
                    self._announce_request()
                    return [ua.Variant(True, ua.VariantType.Boolean)]
                else:
                    return ua.StatusCode(ua.StatusCodes.BadResourceUnavailable)
            entry = caller.entry(AuditAction.CALL, name, {argument: value}, status)
        self.auditor.record_soon(entry)
        return ua.StatusCode(getattr(ua.StatusCodes, status))

    def _announce_request(self) -> None:
        """Tell the station a request is waiting (:attr:`on_request`: it wakes the loop's wait for the PLC)."""
        if self.on_request is not None:
            try:
                self.on_request()
            except Exception:  # noqa: BLE001 -- the request is queued; the loop takes it at its next look anyway
                log.exception("OPC UA: waking the station for a request failed")

    def _refusal(self, kind: RequestKind, value, caller: Caller | None, count: int) -> str | None:
        """Why a call is refused (a status code name), or None."""
        if caller is None:  # the ruleset names every caller; without one nothing runs (module docstring of .audit)
            return "BadUserAccessDenied"
        if count != 1:
            return "BadArgumentsMissing" if count == 0 else "BadTooManyArguments"
        if kind is RequestKind.TRIGGER and not self._triggers:
            return "BadInvalidState"
        if kind is RequestKind.SELECT_RECIPE and self._recipes and isinstance(value, str) \
                and value not in self._recipes:
            return "BadInvalidArgument"
        if not isinstance(value, str) or not value or len(value) > self.cfg.max_string_chars \
                or not value.isprintable():
            return "BadOutOfRange"
        return None

    def _denied(self, caller: Caller, type_id, body) -> None:
        """The ruleset refused a call or a write (``BadUserAccessDenied``): one audit row per method or node."""
        ua = self._ua.ua
        from asyncua.ua.ua_binary import struct_from_binary

        denied = "BadUserAccessDenied"
        is_call = type_id == ua.NodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary)
        try:
            if is_call:
                for call in struct_from_binary(ua.CallParameters, body.copy()).MethodsToCall:
                    target = self._target(call.MethodId)
                    method = next((m for m in space.METHODS if m.name == target), None)
                    names = [method.argument.split()[0]] if method else []
                    arguments = {names[i] if i < len(names) else f"arg{i}": getattr(a, "Value", a)
                                 for i, a in enumerate(call.InputArguments or [])}
                    self.auditor.record_soon(caller.entry(AuditAction.CALL, target, arguments, denied))
            else:
                for write in struct_from_binary(ua.WriteParameters, body.copy()).NodesToWrite:
                    value = write.Value.Value.Value if write.Value and write.Value.Value else None
                    self.auditor.record_soon(caller.entry(
                        AuditAction.WRITE, self._target(write.NodeId),
                        {"attribute": ua.AttributeIds(write.AttributeId).name, "value": value}, denied))
        except Exception as exc:  # noqa: BLE001 -- a request asyncua itself cannot parse: still on record
            self.auditor.record_soon(caller.entry(AuditAction.CALL if is_call else AuditAction.WRITE, "?", {}, denied,
                                                  f"request not readable: {type(exc).__name__}"))

    def _unsupported(self, path: str):
        """The callback of a companion-model method edgead does not carry out: ``BadNotSupported``, on record."""
        async def call(parent, *arguments):
            caller = CALLER.get()
            status = "BadNotSupported" if caller is not None else "BadUserAccessDenied"
            self.auditor.record_soon((caller or Caller("?", "", "?", "")).entry(
                AuditAction.CALL, path, {f"arg{i}": getattr(a, "Value", a) for i, a in enumerate(arguments)}, status))
            return self._ua.ua.StatusCode(getattr(self._ua.ua.StatusCodes, status))
        return call

    def _login_refused(self, caller: Caller, why: str) -> None:
        self.auditor.record_soon(caller.entry(AuditAction.LOGIN, "session", {}, "BadUserAccessDenied", why))

    def _target(self, node_id) -> str:
        """A node as the audit trail names it: one of ours by its path (``Trigger``,
        ``MachineVision.VisionStateMachine.Halt``), else its NodeId string."""
        if getattr(node_id, "NamespaceIndex", None) == getattr(self, "namespace_index", None) \
                and isinstance(node_id.Identifier, str):
            return node_id.Identifier.removeprefix(space.ROOT + ".")
        return node_id.to_string()

    # --- applying the daemon's updates ------------------------------------------------------------------------

    async def _drain(self, server) -> None:
        while self._events:
            event = self._events.popleft()
            try:
                await self._fire(event)
            except Exception:  # noqa: BLE001 -- an event that cannot go out never stops the server
                log.exception("OPC UA: drift event not fired: %s", event.message)
        while self._pending:
            kind, value, extra = self._pending.popleft()
            if kind == "result":
                await self._write_result(value, extra)
            elif kind == "state":
                await self._write("VisionStateMachine.CurrentState", value.value)
                await self._write("VisionStateMachine.LastTransitionTime", _utc(extra))
                await self.companion.set_state(value)
            elif kind == "model":
                await self._write("ConfigurationManagement.ModelHash", value)
                await self._write("ConfigurationManagement.ModelType", extra)
            else:
                await self._write({"recipe": "RecipeManagement.ActiveRecipe", "lot": "RecipeManagement.LotId",
                                   "recipes": "RecipeManagement.Recipes"}[kind], value)

    async def _write_result(self, result: ResultInfo, counters: dict) -> None:
        last = "ResultManagement.LastResult."
        await self._write(last + "PartId", str(result.part_id))
        await self._write(last + "Verdict", result.verdict.value)
        await self._write(last + "Score", math.nan if result.score is None else float(result.score))
        await self._write(last + "DefectArea_px", float(result.defect_area_px))
        await self._write(last + "Recipe", result.recipe)
        await self._write(last + "LotId", result.lot_id)
        await self._write(last + "Time", _utc(result.t_ns))
        for verdict, name in space.COUNTER_NAMES.items():
            await self._write(f"ResultManagement.Counters.{name}", counters[verdict])
        await self._write("ResultManagement.Counters.Total", sum(counters.values()))
        await self._write(last + "ResultId", int(result.seq))  # last: a subscriber to it sees a whole result

    async def _write(self, path: str, value) -> None:
        ua = self._ua.ua
        spec_type = next(s.type for s in space.VARIABLES if s.path == path)
        await self._nodes[path].write_value(ua.Variant(value, getattr(ua.VariantType, spec_type)))


def _utc(t_ns: int) -> datetime:
    return datetime.fromtimestamp(t_ns / 1e9, timezone.utc)
