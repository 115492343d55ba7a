"""The dashboard's web server: Starlette routes served by uvicorn, on 127.0.0.1 only.

::

    GET /            the page (static/index.html, with the current state embedded)
    GET /app.js      the page's script; GET /style.css its style sheet
    GET /api/state   the current state (JSON)
    GET /api/events  server-sent events: ``event: state`` with the whole state, on every change
    GET /healthz     ``ok``

Starlette routes the requests and writes the answers (``HEAD`` with each ``GET``; ``404``,
``405``); uvicorn speaks HTTP/1.1 (h11). Nothing here parses HTTP. Uvicorn runs as a task in
the caller's event loop, which the followers and the bank SDK share
(:class:`~dtoken.dashboard.live.LiveState` owns the state and its changes), and leaves
SIGINT/SIGTERM to the application (``dtoken dashboard`` stops on them by :meth:`Dashboard.close`).

**Guarantees** (docs/dashboard.md, each tested in ``tests/unit/dtoken/test_dashboard.py``):

* the socket is bound here, to :data:`HOST` only; there is no option for another address,
  and uvicorn is handed the bound socket (it never binds one itself);
* a request whose ``Host`` is not ``127.0.0.1:<port>`` or ``localhost:<port>`` gets ``421``,
  so a page elsewhere cannot read the data through DNS rebinding. (Starlette's
  ``TrustedHostMiddleware`` ignores the port and answers ``400``: :class:`_LocalOnly` keeps
  the stricter check and the status this server has always given);
* every answer, errors and the event stream included, carries :data:`SECURITY_HEADERS`
  (``Content-Security-Policy: default-src 'self'``: the page runs its own script only, which
  writes data with ``textContent``); the embedded state is JSON with ``<>&`` escaped;
* :meth:`Dashboard.close` ends every event stream, then uvicorn stops accepting and lets the
  open answers finish (at most ``_GRACE`` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import socket
from collections.abc import AsyncIterator, Iterator
from importlib import resources

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dtoken.bank import Member
from dtoken.dashboard.live import LiveState, State

__all__ = ["HOST", "SECURITY_HEADERS", "Dashboard", "create_app"]

#: The only address the dashboard binds.
HOST = "127.0.0.1"
#: Sent with every answer.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}
_KEEPALIVE = 15.0
_GRACE = 5
_ASSETS = {"/app.js": ("app.js", "text/javascript"), "/style.css": ("style.css", "text/css")}


class Dashboard:
    """The dashboard of one organization, as one of its client identities (``member``).

    ``async with Dashboard(member, port=0) as dash:`` starts it (``dash.url``); ``await
    dash.serve_forever()`` serves until cancelled. ``port`` 0 picks a free port.
    """

    def __init__(
        self,
        member: Member,
        *,
        port: int = 8765,
        refresh_interval: float = 30.0,
        reconnect_delay: float = 2.0,
    ) -> None:
        self.member = member
        self.live = LiveState(member, refresh_interval=refresh_interval,
                              reconnect_delay=reconnect_delay)
        self._port = port
        self._bound_port: int | None = None
        self._socket: socket.socket | None = None
        self._server: _EmbeddedServer | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("the dashboard is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def state(self) -> State:
        """The current state, as the page and ``/api/state`` get it."""
        return self.live.state

    async def start(self) -> None:
        """Bind (an ``OSError`` if the port is taken), make the first view, then serve."""
        self._socket = _bind(self._port)
        self._bound_port = int(self._socket.getsockname()[1])
        await self.live.start()
        me = self.member
        app = create_app(self.live, port=self.port,
                         title=f"{me.name} ({me.msp_id}) · deposit-token dashboard")
        self._server = _EmbeddedServer(uvicorn.Config(
            app, http="h11", ws="none", lifespan="off", interface="asgi3",
            proxy_headers=False, server_header=False, access_log=False,
            log_config=None, log_level="warning", timeout_graceful_shutdown=_GRACE,
        ))  # fmt: skip
        self._socket.listen()  # requests wait in the backlog until uvicorn accepts them
        self._serving = asyncio.create_task(self._server.serve(sockets=[self._socket]),
                                            name="dashboard-http")

    async def serve_forever(self) -> None:
        """Serve until cancelled or :meth:`close`."""
        if self._serving is None:
            await self.start()
        assert self._serving is not None
        await asyncio.shield(self._serving)

    async def close(self) -> None:
        """End the event streams and the followers, then stop the server (graceful)."""
        await self.live.close()
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
        elif self._socket is not None:
            self._socket.close()

    async def __aenter__(self) -> Dashboard:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _EmbeddedServer(uvicorn.Server):
    """Uvicorn inside an application that owns SIGINT and SIGTERM (the CLI)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def create_app(live: LiveState, *, port: int, title: str) -> ASGIApp:
    """The dashboard's ASGI application for the server on ``127.0.0.1:port``."""
    page = _asset("index.html").replace("{{title}}", html.escape(title))
    assets = {path: (_asset(name), kind) for path, (name, kind) in _ASSETS.items()}

    async def index(request: Request) -> Response:
        return HTMLResponse(page.replace("{{state}}", _json_for_html(live.state)))

    async def state(request: Request) -> Response:
        return JSONResponse(live.state)

    async def events(request: Request) -> Response:
        if request.method == "HEAD":
            return Response(media_type="text/event-stream")
        return StreamingResponse(_event_stream(live), media_type="text/event-stream")

    async def asset(request: Request) -> Response:
        body, kind = assets[request.url.path]
        return Response(body, media_type=kind)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [Route("/", index), Route("/index.html", index), Route("/api/state", state),
              Route("/api/events", events), Route("/healthz", healthz),
              *(Route(path, asset) for path in assets)]
    return _LocalOnly(Starlette(routes=routes), port=port)


class _LocalOnly:
    """ASGI middleware: ``421`` unless the ``Host`` names this server; the security headers
    on every answer (it wraps the whole application, so its error pages too)."""

    def __init__(self, app: ASGIApp, *, port: int) -> None:
        self.app = app
        self.hosts = {f"{HOST}:{port}", f"localhost:{port}"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off and websockets are not served
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        host = Headers(scope=scope).get("host", "").lower()
        app = self.app if host in self.hosts else PlainTextResponse("unexpected Host header",
                                                                    status_code=421)
        await app(scope, receive, send_secured)


async def _event_stream(live: LiveState) -> AsyncIterator[str]:
    """The current state, then each new one, until the dashboard closes or the page goes."""
    with live.subscribe() as changes:
        yield "retry: 2000\n\n" + _sse_state(live.state)
        while True:
            try:
                state = await asyncio.wait_for(changes.get(), timeout=_KEEPALIVE)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if state is None:  # closing: the stream ends, and so does its answer
                return
            yield _sse_state(state)


def _sse_state(state: State) -> str:
    data = json.dumps(state, separators=(",", ":"))  # one line: JSON escapes newlines
    return f"event: state\nid: {state.get('version', 0)}\ndata: {data}\n\n"


def _asset(name: str) -> str:
    return resources.files("dtoken.dashboard").joinpath("static", name).read_text("utf-8")


def _json_for_html(data: object) -> str:
    """JSON safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
