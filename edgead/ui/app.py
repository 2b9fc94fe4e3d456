"""The operator page's web app (Starlette): the page, its JSON API, the event stream and the archived images.

Routes (all reads go through :class:`~edgead.ui.reader.RecordReader`, read-only):

* ``GET /``: the page (``static/index.html``); ``/static/*`` its CSS and JavaScript.
* ``GET /api/summary``: counters by verdict (and recipe), latency, labels, and the station's own ``/healthz``
  (state, problem, drift alarms) when its metrics endpoint is configured.
* ``GET /api/parts?limit=N&after=ROW``: the last parts, newest first.
* ``GET /api/gallery?verdict=reject,fault&since=ISO&until=ISO&score_min=&score_max=&recipe=&before=ROW``.
* ``GET /api/image/ROW/image|overlay``: an archived image (only files inside ``storage.images_dir``).
* ``GET /api/events``: server-sent events, one ``part`` event per batch of new rows (checked every ``ui.poll_ms``).
* ``GET /api/compare``: the shadow model against the live one (:mod:`edgead.records.compare`).
* ``POST /api/label`` (JSON ``{"row": N, "label": "good"|"defect", "note": ...}``): needs an operator's
  credentials (HTTP Basic; ``ui.operators_file``); 401 without them, 403 for a viewer.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.error
import urllib.request
from pathlib import Path

from edgead.config import parse_listen
from edgead.errors import ConfigError, DataError, EdgeadError, lazy_import
from edgead.records.images import overlay_path
from edgead.records.store import parse_iso_ns
from edgead.ui.auth import Authenticator, Role, basic_credentials
from edgead.ui.reader import Filters, RecordReader

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
HEALTH_TIMEOUT_S = 0.5
HEARTBEAT_S = 10.0


def _float(text: str | None, key: str) -> float | None:
    if text in (None, ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{key}={text!r} is not a number") from None


def filters_from_query(q) -> Filters:
    """The gallery's :class:`Filters` from a query string (bad values: :class:`DataError`)."""
    verdicts = tuple(v for v in (q.get("verdict") or "reject,no-read,fault").split(",") if v)
    try:
        from edgead.verdict import Verdict

        verdicts = tuple(Verdict(v).value for v in verdicts)
    except ValueError:
        raise DataError(f"verdict={q.get('verdict')!r}: use accept, reject, no-read, fault") from None
    before = q.get("before")
    return Filters(verdicts=verdicts, since_ns=parse_iso_ns(q.get("since"), "since"),
                   until_ns=parse_iso_ns(q.get("until"), "until"), score_min=_float(q.get("score_min"), "score_min"),
                   score_max=_float(q.get("score_max"), "score_max"), recipe=q.get("recipe") or None,
                   before_id=int(before) if before and before.isdigit() else None,
                   shadow_disagrees=q.get("shadow") == "disagrees",
                   limit=min(200, int(q.get("limit", "48"))) if str(q.get("limit", "48")).isdigit() else 48)


def station_health(cfg) -> dict:
    """The daemon's ``/healthz`` (state, problem, drift), or why it could not be read.

    Args:
        cfg: the station's :class:`~edgead.daemon.config.StationConfig` (its ``observe.metrics_listen``).
    """
    if not cfg.observe.metrics_listen:
        return {"status": "unknown", "problem": "observe.metrics_listen is off: no station state"}
    host, port = parse_listen(cfg.observe.metrics_listen)
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=HEALTH_TIMEOUT_S) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503: degraded or starting, with the same JSON body
        try:
            return json.loads(exc.read())
        except ValueError:
            return {"status": "unknown", "problem": f"/healthz answered {exc.code}"}
    except (OSError, ValueError) as exc:
        return {"status": "stopped", "problem": f"the station does not answer on {host}:{port} ({exc})"}


def build_app(cfg):
    """The Starlette app for the station ``cfg`` (nothing is opened until a request comes)."""
    lazy_import("starlette", feature="the operator page (edgead ui)")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, JSONResponse, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    reader = RecordReader(cfg.storage.database)
    auth = Authenticator(cfg.ui.operators_file)
    images_dir = Path(cfg.storage.images_dir).resolve()
    stopping = asyncio.Event()

    def error(status: int, message: str, hint: str | None = None, **headers) -> JSONResponse:
        return JSONResponse({"error": message, "hint": hint}, status_code=status, headers=headers)

    def guarded(fn):
        async def endpoint(request):
            try:
                return await fn(request)
            except EdgeadError as exc:
                return error(404 if isinstance(exc, DataError) and "does not exist" in exc.message else 400,
                             exc.message, exc.hint)
        return endpoint

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def summary(request):
        out = await run_in_threadpool(reader.summary)
        out["station"] = await run_in_threadpool(station_health, cfg)
        out["name"] = cfg.name
        out["recipes"] = await run_in_threadpool(reader.recipes)
        out["writable"] = cfg.ui.operators_file is not None
        return JSONResponse(out)

    async def parts(request):
        q = request.query_params
        limit = int(q["limit"]) if q.get("limit", "").isdigit() else cfg.ui.recent_parts
        after = int(q["after"]) if q.get("after", "").isdigit() else 0
        return JSONResponse(await run_in_threadpool(reader.recent, min(limit, 200), after))

    async def gallery(request):
        return JSONResponse(await run_in_threadpool(reader.gallery, filters_from_query(request.query_params)))

    async def image(request):
        row, kind = int(request.path_params["row"]), request.path_params["kind"]
        if kind not in ("image", "overlay"):
            return error(404, f"no image kind {kind!r}", "use image or overlay")
        path = await run_in_threadpool(reader.image_path, row)
        if path is None:
            return error(404, f"part row {row} has no archived image")
        path = (overlay_path(path) if kind == "overlay" else path).resolve()
        if not path.is_relative_to(images_dir) or not path.is_file():
            return error(404, f"part row {row}: its {kind} is not in the archive (rotated out, or never written)")
        return FileResponse(path, headers={"Cache-Control": "max-age=3600"})

    async def compare(request):
        return JSONResponse((await run_in_threadpool(reader.compare)).to_dict())

    async def label(request):
        from edgead.records import RecordStore
        from edgead.records.labels import add_label

        header = request.headers.get("authorization")
        # the page asks for the name and password itself: a challenge would make the browser ask again (or, headless,
        # hang); other clients (curl, scripts) get the standard Basic challenge
        challenge = ({} if request.headers.get("x-edgead-page") else
                     {"WWW-Authenticate": 'Basic realm="edgead operator", charset="UTF-8"'})
        if cfg.ui.operators_file is None:
            return error(403, "labelling is off: ui.operators_file is not set",
                         "create one with edgead ui-passwd and set ui.operators_file")
        if basic_credentials(header) is None:
            return error(401, "labelling needs an operator's name and password", **challenge)
        user = await run_in_threadpool(auth.check, header, Role.VIEWER)
        if user is None:
            return error(401, "wrong name or password", **challenge)
        if user.role is not Role.OPERATOR:
            return error(403, f"{user.name} is a {user.role.value}: only an operator may label parts")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, "send the label as application/json")
        try:
            body = await request.json()
            row, value, note = int(body["row"]), str(body["label"]), body.get("note") or None
        except (ValueError, KeyError, TypeError):
            return error(400, 'expected {"row": N, "label": "good"|"defect", "note": "..."}')

        def write():
            with RecordStore(cfg.storage.database, timeout_s=2.0) as store:
                return add_label(store, row, value, who=user.name, note=note)

        rec = await run_in_threadpool(write)
        log.info("part row %d labelled %s by %s", row, rec.label.value, rec.who)
        return JSONResponse({"row": row, "label": rec.label.value, "who": rec.who, "t_utc": rec.t_utc})

    async def events(request):
        async def stream():
            last = await run_in_threadpool(_last_id_or_zero, reader)
            yield f"event: hello\ndata: {json.dumps({'last_id': last})}\n\n"
            idle = 0.0
            while not stopping.is_set():
                await asyncio.sleep(cfg.ui.poll_ms / 1000)
                if await request.is_disconnected():
                    return
                now = await run_in_threadpool(_last_id_or_zero, reader)
                if now > last:
                    new = await run_in_threadpool(reader.recent, 200, last)
                    last = now
                    idle = 0.0
                    yield f"event: part\ndata: {json.dumps({'last_id': now, 'parts': new})}\n\n"
                else:
                    idle += cfg.ui.poll_ms / 1000
                    if idle >= HEARTBEAT_S:
                        idle = 0.0
                        yield ": keep-alive\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def on_shutdown():
        stopping.set()

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        on_shutdown()

    routes = [
        Route("/", index),
        Route("/api/summary", guarded(summary)),
        Route("/api/parts", guarded(parts)),
        Route("/api/gallery", guarded(gallery)),
        Route("/api/image/{row:int}/{kind}", guarded(image)),
        Route("/api/compare", guarded(compare)),
        Route("/api/label", guarded(label), methods=["POST"]),
        Route("/api/events", events),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.stop = on_shutdown
    return app


def _last_id_or_zero(reader: RecordReader) -> int:
    try:
        return reader.last_id()
    except DataError:
        return 0


def bind(cfg, listen: str | None = None) -> socket.socket:
    """The listening socket (``ui.listen``, or ``listen``; port 0 picks a free one).

    Raises:
        ConfigError: the address cannot be bound (in use, not this machine's).
    """
    host, port = parse_listen(listen or cfg.ui.listen, key="ui.listen")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"ui.listen {host}:{port}: cannot bind: {exc.strerror or exc}",
                          hint="pick a free port (ui.listen, or edgead ui --listen HOST:PORT)") from exc
    sock.listen(64)
    return sock


def serve(cfg, sock: socket.socket, on_ready=None) -> None:
    """Serve the page on ``sock`` until SIGINT/SIGTERM (uvicorn's handlers)."""
    uvicorn = lazy_import("uvicorn", feature="the operator page (edgead ui)")
    app = build_app(cfg)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2,
                            lifespan="on")
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready()
    server.run(sockets=[sock])
