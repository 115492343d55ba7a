"""The chaincode server: the peer dials us (chaincode as a service) and calls ``Connect``.

Each ``Connect`` stream gets its own :class:`~fabshim.handler.Handler`. Stopping is
graceful: new transactions are refused, running ones get ``grace`` seconds to finish, then
the streams close.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from typing import Any

import grpc
import grpc.aio

from . import _protos as pb
from .config import ServerConfig, parse_address
from .errors import PeerError, ShimError, StreamClosedError
from .handler import Handler
from .interfaces import Chaincode

logger = logging.getLogger("fabshim.server")

_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs

_STREAM_CLOSE_SECONDS = 1.0
"""How long :meth:`ChaincodeServer.stop` lets the ended streams send their final status."""

MAX_MESSAGE_BYTES = 100 * 1024 * 1024
"""Largest gRPC message, as the peer's own default."""

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Ping idle peers every minute, give up after 20 s (fabric-chaincode-go's values).
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    # Accept the peer's own keepalive pings, with or without calls in flight.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    # Two servers must not share a port silently.
    ("grpc.so_reuseport", 0),
)


class _ServerStream:
    """``MessageStream`` over the server side of a ``Connect`` call."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._context = context

    async def send(self, message: pb.Message) -> None:
        try:
            await self._context.write(message)
        except (grpc.RpcError, RuntimeError, asyncio.InvalidStateError) as exc:
            raise StreamClosedError(f"cannot write to the peer stream: {exc}") from exc

    async def recv(self) -> pb.Message | None:
        try:
            message = await self._context.read()
        except (grpc.RpcError, RuntimeError, asyncio.InvalidStateError) as exc:
            raise StreamClosedError(f"cannot read from the peer stream: {exc}") from exc
        if message is _EOF:
            return None
        return message


class _ChaincodeService:
    """The ``protos.Chaincode`` gRPC service: one handler per ``Connect`` stream."""

    def __init__(self, server: ChaincodeServer) -> None:
        self._server = server

    async def Connect(
        self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        del request_iterator  # messages are read with context.read()
        await self._server._serve_stream(context)


class ChaincodeServer:
    """Serves one chaincode to the peers that dial it.

    ``await start()`` binds and starts; ``await stop()`` stops gracefully;
    ``await serve()`` does both around SIGTERM/SIGINT.
    """

    def __init__(self, chaincode: Chaincode, config: ServerConfig, *, grace: float = 5.0) -> None:
        self._chaincode = chaincode
        self._config = config
        self._grace = grace
        self._server: grpc.aio.Server | None = None
        self._handlers: set[Handler] = set()
        self._runs: set[asyncio.Task[None]] = set()
        self._port = 0
        self._streams = 0

    @property
    def config(self) -> ServerConfig:
        """The configuration the server runs with."""
        return self._config

    @property
    def port(self) -> int:
        """The bound port (known after :meth:`start`)."""
        return self._port

    @property
    def address(self) -> str:
        """``host:port`` as bound."""
        return f"{self._config.host}:{self._port}"

    @property
    def handlers(self) -> frozenset[Handler]:
        """The handlers of the streams open now."""
        return frozenset(self._handlers)

    async def start(self) -> int:
        """Bind, start serving, log ``chaincode server listening on HOST:PORT``; return the port."""
        if self._server is not None:
            raise ShimError("the chaincode server is already started")
        server = grpc.aio.server(options=SERVER_OPTIONS)
        pb.shim_grpc.add_ChaincodeServicer_to_server(_ChaincodeService(self), server)
        host, _ = parse_address(self._config.address, "address")
        tls = self._config.tls
        try:
            if tls is None:
                port = server.add_insecure_port(self._config.address)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(tls.key_pem, tls.cert_pem)],
                    root_certificates=tls.client_ca_pem,
                    require_client_auth=tls.client_auth_required,
                )
                port = server.add_secure_port(self._config.address, credentials)
        except RuntimeError as exc:
            await server.stop(0)
            raise ShimError(f"cannot listen on {self._config.address}: {exc}") from exc
        if port == 0:
            await server.stop(0)
            raise ShimError(f"cannot listen on {self._config.address}")
        await server.start()
        self._server = server
        self._port = port
        logger.info(
            "chaincode id %s, TLS %s, write batching %s",
            self._config.chaincode_id,
            "off"
            if tls is None
            else ("on, client certificates required" if tls.client_auth_required else "on"),
            "when the peer offers it" if self._config.write_batching else "declined",
        )
        logger.info("chaincode server listening on %s:%d", host, port)
        return port

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new transactions, let running ones finish within ``grace`` s, then stop."""
        server = self._server
        if server is None:
            return
        grace = self._grace if grace is None else grace
        handlers = list(self._handlers)
        for handler in handlers:
            handler.stop_accepting()
        if handlers:
            results = await asyncio.gather(*(h.wait_idle(grace) for h in handlers))
            if not all(results):
                logger.warning("stopping with transactions still running after %.1f s", grace)
        # End each stream from our side, so that its Connect call returns and gRPC closes
        # it with status OK, rather than cancelling a call still in progress (which the
        # peer sees as UNAVAILABLE and grpc logs as an unhandled CancelledError when the
        # event loop closes right after).
        runs = list(self._runs)
        for run in runs:
            run.cancel()
        if runs:
            await asyncio.wait(runs, timeout=_STREAM_CLOSE_SECONDS)
        await server.stop(_STREAM_CLOSE_SECONDS)
        self._server = None
        logger.info("chaincode server stopped")

    async def wait_for_termination(self) -> None:
        """Wait until the server stops."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def serve(
        self,
        stop_signals: Iterable[signal.Signals] = (
            signal.SIGTERM,
            signal.SIGINT,
        ),
    ) -> None:
        """Start, wait for one of ``stop_signals``, stop gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        for sig in stop_signals:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        try:
            await self.start()
            await stop.wait()
            logger.info("stop signal received; stopping")
            await self.stop()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def _serve_stream(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._streams += 1
        # The package (the part of the id before ':') first: one process may serve several
        # packages (one listener each), and a log line must say which stream it is about.
        package = self._config.chaincode_id.partition(":")[0]
        label = f"[{package} stream {self._streams} {context.peer()}]"
        handler = Handler(
            _ServerStream(context),
            self._chaincode,
            self._config.chaincode_id,
            write_batching=self._config.write_batching,
            multi_key_reads=self._config.multi_key_reads,
            label=label,
        )
        self._handlers.add(handler)
        logger.info("%s peer connected", label)
        run = asyncio.create_task(handler.run())
        self._runs.add(run)
        try:
            await run
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the call itself is cancelled (by gRPC): this ends run too
            # stop() ended the stream: return, so that gRPC closes the call with status OK
            logger.info("%s stream closed by the server", label)
        except PeerError as exc:
            logger.error("%s the peer refused registration: %s", label, exc)
        except StreamClosedError as exc:
            logger.info("%s %s", label, exc)
        except ShimError as exc:
            logger.error("%s stream ended: %s", label, exc)
        finally:
            self._runs.discard(run)
            self._handlers.discard(handler)
