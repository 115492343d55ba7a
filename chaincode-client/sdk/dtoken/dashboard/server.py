"""The dashboard's web server: one page, a JSON API and server-sent events, on 127.0.0.1.

::

    GET /            the page (static/index.html, with the current state embedded)
    GET /app.js      the page's script; GET /style.css its style sheet
    GET /api/state   the current state (JSON)
    GET /api/events  server-sent events: ``event: state`` with the whole state, on every change
    GET /healthz     ``ok``

The server is stdlib ``asyncio`` (``asyncio.start_server`` and a minimal HTTP/1.1 reader: GET
and HEAD, one request per connection), because the bank SDK is async: the server, the event
followers and the SDK share one event loop, and no web framework is needed for four routes.

**Live updates.** Two followers read the organization's own peer: its chaincode events
(``TransferPending``/``TransferDecided``: which banks a transfer concerns, never an amount or
an id) and its filtered blocks (transaction ids, validation codes, event names), which also
trigger a refresh for transactions that emit no event (a mint, a settlement). Each trigger
(debounced) recomputes the view (:func:`dtoken.dashboard.view.ledger_view`); when it changed,
every open page gets it as an SSE message. A refresh also runs every ``refresh_interval``
seconds (a transfer that expired, private data that arrived late by reconciliation).

**What it may show.** Only what the SDK returns to this organization's client identity: the
server has no other access to the ledger. It listens on 127.0.0.1 only and answers only
requests whose ``Host`` is ``127.0.0.1:<port>`` or ``localhost:<port>`` (a page from
elsewhere cannot read it through DNS rebinding); it sends ``Content-Security-Policy:
default-src 'self'``, and the page writes data with ``textContent`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import fabgateway

from dtoken.bank import Member
from dtoken.dashboard.view import identity_view, ledger_view
from dtoken.errors import DTokenError

__all__ = ["HOST", "Dashboard"]

_log = logging.getLogger(__name__)
# fabric-protos ships no type stubs (as in fabgateway._protos)
ledger_pb2: Any = importlib.import_module("fabric_protos.common.ledger_pb2")
transaction_pb2: Any = importlib.import_module("fabric_protos.peer.transaction_pb2")

#: The only address the dashboard binds.
HOST = "127.0.0.1"
RECENT_BLOCKS = 12
RECENT_EVENTS = 20
_DEBOUNCE = 0.25
_CATCH_UP = 15.0
_KEEPALIVE = 15.0
_MAX_HEADER_LINES = 64
_STATIC = {
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_SECURITY_HEADERS = (
    "Cache-Control: no-store\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n"
)
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            421: "Misdirected Request", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _static(name: str) -> str:
    return resources.files("dtoken.dashboard").joinpath("static", name).read_text("utf-8")


def _json_for_html(data: object) -> str:
    """JSON safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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
        self._port = port
        self._refresh_interval = refresh_interval
        self._reconnect_delay = reconnect_delay
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connections: set[asyncio.Task[None]] = set()
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._dirty = asyncio.Event()
        self._closing = asyncio.Event()
        self._blocks: deque[dict[str, Any]] = deque(maxlen=RECENT_BLOCKS)
        self._events: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self._height = 0
        self._view: dict[str, Any] = {}
        self._state: dict[str, Any] = {}
        self._version = 0
        self._caught_up = asyncio.Event()
        self._follower_errors: dict[str, str] = {}

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the dashboard is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    async def start(self) -> None:
        """Start the followers at the recent blocks, make the first view, then listen."""
        start_block = 0
        try:
            self._height = await self._chain_height()
            start_block = max(0, self._height - RECENT_BLOCKS)
        except (fabgateway.GatewayError, DTokenError) as error:
            _log.warning("chain height unknown (%s): recent blocks start at block 0", error)
        if self._height == 0:
            self._caught_up.set()
        self._tasks = [
            asyncio.create_task(self._follow_blocks(start_block), name="dashboard-blocks"),
            asyncio.create_task(self._follow_events(start_block), name="dashboard-events"),
        ]
        # The first page lists the recent blocks: wait (a little) for their replay.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._caught_up.wait(), timeout=_CATCH_UP)
        await self._refresh()
        self._tasks.append(asyncio.create_task(self._refresher(), name="dashboard-refresh"))
        self._server = await asyncio.start_server(self._connection, HOST, self._port)

    async def serve_forever(self) -> None:
        """Serve until cancelled or :meth:`close`."""
        if self._server is None:
            await self.start()
        await self._closing.wait()

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
        for task in [*self._tasks, *self._connections]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Dashboard:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- state --------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        """The current state, as the page and ``/api/state`` get it."""
        return self._state

    async def _chain_height(self) -> int:
        qscc = self.member.network.get_contract("qscc")
        raw = await qscc.evaluate("GetChainInfo", arguments=[self.member.profile.channel],
                                  endorsing_organizations=[self.member.msp_id])
        return int(ledger_pb2.BlockchainInfo.FromString(raw).height)

    def _compose(self) -> dict[str, Any]:
        errors = list(self._view.get("errors", []))
        errors += [f"{k}: {v}" for k, v in sorted(self._follower_errors.items())]
        return {
            "me": identity_view(self.member),
            **self._view,
            "errors": errors,
            "height": self._height,
            "blocks": list(reversed(self._blocks)),
            "events": list(reversed(self._events)),
        }

    async def _refresh(self) -> None:
        self._view = await ledger_view(self.member)
        self._publish()

    def _publish(self) -> None:
        composed = self._compose()
        if composed == {k: v for k, v in self._state.items()
                        if k not in ("version", "updated_at")}:
            return
        self._version += 1
        composed["version"] = self._version
        composed["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self._state = composed
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(composed)

    async def _refresher(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=self._refresh_interval)
            await asyncio.sleep(_DEBOUNCE)  # one refresh for a burst of blocks
            self._dirty.clear()
            try:
                await self._refresh()
            except DTokenError as error:  # the view reports its own parts; this is a fault
                _log.warning("refresh failed: %s", error)

    # --- followers ----------------------------------------------------------------------

    async def _follow(
        self,
        what: str,
        stream: Callable[[fabgateway.InMemoryCheckpointer], Any],
        handle: Callable[[Any, fabgateway.InMemoryCheckpointer], None],
    ) -> None:
        checkpointer = fabgateway.InMemoryCheckpointer()
        while not self._closing.is_set():
            try:
                async with stream(checkpointer) as items:
                    self._follower_errors.pop(what, None)
                    async for item in items:
                        handle(item, checkpointer)
                        self._dirty.set()
            except (fabgateway.GatewayError, DTokenError) as error:
                self._follower_errors[what] = f"reconnecting ({type(error).__name__})"
                _log.warning("%s: %s; reconnecting", what, str(error).splitlines()[0])
            await asyncio.sleep(self._reconnect_delay)

    async def _follow_blocks(self, start_block: int) -> None:
        network = self.member.network

        def stream(cp: fabgateway.InMemoryCheckpointer) -> AsyncIterator[Any]:
            return network.filtered_block_events(start_block=start_block, checkpointer=cp)

        def handle(block: Any, cp: fabgateway.InMemoryCheckpointer) -> None:
            self._blocks.append(_block_view(block))
            if int(block.number) + 1 >= self._height:
                self._caught_up.set()
            self._height = max(self._height, int(block.number) + 1)
            cp.checkpoint_block(int(block.number))

        await self._follow("blocks", stream, handle)

    async def _follow_events(self, start_block: int) -> None:
        network = self.member.network
        chaincode = self.member.profile.chaincode

        def stream(cp: fabgateway.InMemoryCheckpointer) -> AsyncIterator[Any]:
            return network.chaincode_events(chaincode, start_block=start_block, checkpointer=cp)

        def handle(event: fabgateway.ChaincodeEvent, cp: fabgateway.InMemoryCheckpointer) -> None:
            self._events.append(_event_view(event))
            cp.checkpoint_chaincode_event(event)

        await self._follow("chaincode events", stream, handle)

    # --- HTTP ---------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        line = await asyncio.wait_for(reader.readline(), 10)
        parts = line.decode("latin-1").split()
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADER_LINES):
            raw = await asyncio.wait_for(reader.readline(), 10)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            await _respond(writer, 400, "text/plain", "too many headers")
            return
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await _respond(writer, 400, "text/plain", "bad request")
            return
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            await _respond(writer, 405, "text/plain", "only GET", extra="Allow: GET, HEAD\r\n")
            return
        if headers.get("host", "").lower() not in (f"{HOST}:{self.port}",
                                                   f"localhost:{self.port}"):
            await _respond(writer, 421, "text/plain", "unexpected Host header")
            return
        head = method == "HEAD"
        path = urlsplit(target).path
        if path in ("/", "/index.html"):
            await _respond(writer, 200, "text/html; charset=utf-8", self._page(), head=head)
        elif path == "/api/state":
            await _respond(writer, 200, "application/json",
                           json.dumps(self._state, separators=(",", ":")), head=head)
        elif path == "/api/events":
            await self._events_stream(writer, head)
        elif path in _STATIC:
            name, kind = _STATIC[path]
            await _respond(writer, 200, kind, _static(name), head=head)
        elif path == "/healthz":
            await _respond(writer, 200, "text/plain", "ok", head=head)
        else:
            await _respond(writer, 404, "text/plain", "not found", head=head)

    def _page(self) -> str:
        me = self.member
        title = f"{me.name} ({me.msp_id}) · deposit-token dashboard"
        return (_static("index.html")
                .replace("{{title}}", _html_escape(title))
                .replace("{{state}}", _json_for_html(self._state)))

    async def _events_stream(self, writer: asyncio.StreamWriter, head: bool) -> None:
        writer.write(("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      f"{_SECURITY_HEADERS}Connection: close\r\n\r\n").encode())
        if head:
            await writer.drain()
            return
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
        self._subscribers.add(queue)
        try:
            writer.write(b"retry: 2000\n\n")
            state: dict[str, Any] | None = self._state
            while not self._closing.is_set():
                if state is not None:
                    data = json.dumps(state, separators=(",", ":"))
                    writer.write(f"event: state\nid: {state.get('version', 0)}\n"
                                 f"data: {data}\n\n".encode())
                else:
                    writer.write(b": keep-alive\n\n")
                await writer.drain()
                try:
                    state = await asyncio.wait_for(queue.get(), timeout=_KEEPALIVE)
                except TimeoutError:
                    state = None
        finally:
            self._subscribers.discard(queue)


async def _respond(writer: asyncio.StreamWriter, status: int, kind: str, body: str, *,
                   head: bool = False, extra: str = "") -> None:
    data = body.encode("utf-8")
    writer.write((f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                  f"Content-Type: {kind}\r\nContent-Length: {len(data)}\r\n"
                  f"{_SECURITY_HEADERS}{extra}Connection: close\r\n\r\n").encode())
    if not head:
        writer.write(data)
    await writer.drain()


def _html_escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _block_view(block: Any) -> dict[str, Any]:
    """A filtered block: its transactions, their validation codes and event names."""
    txs = []
    for tx in block.filtered_transactions:
        events = [a.chaincode_event.event_name
                  for a in tx.transaction_actions.chaincode_actions
                  if a.chaincode_event.event_name]
        code = int(tx.tx_validation_code)
        txs.append({"tx_id": tx.txid, "valid": code == 0, "code": _validation_name(code),
                    "events": events})
    return {"number": int(block.number), "transactions": txs}


def _validation_name(code: int) -> str:
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return str(code)


def _event_view(event: fabgateway.ChaincodeEvent) -> dict[str, Any]:
    try:
        payload = json.loads(event.payload) if event.payload else None
    except ValueError:
        payload = None
    return {"block": event.block_number, "tx_id": event.transaction_id,
            "name": event.event_name, "payload": payload if isinstance(payload, dict) else None}
