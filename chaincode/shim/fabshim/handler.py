"""The shim side of one peer stream: registration, the state machine, message routing.

One ``Handler`` per stream. Its receive loop owns every state change and routes each
RESPONSE or ERROR to the transaction waiting for it, keyed by ``(channel_id, txid)``.
Only INIT and TRANSACTION run as concurrent tasks; within a transaction, requests to the
peer are serialized until answered (the peer drops a request while another of the same
transaction is active). Several transactions may use one key one after the other (each
chaincode-to-chaincode call of a transaction to this package comes with the caller's txid),
so a finished transaction unregisters itself, never whatever runs under its key now.

States: ``CREATED`` (REGISTER sent) → ``ESTABLISHED`` (REGISTERED received) → ``READY``
(READY received, with the peer's optional features in its payload). KEEPALIVE is echoed
in any state. A message the current state does not allow ends the stream, after an ERROR
message to the peer, as fabric-chaincode-go does.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from . import _protos as pb
from .errors import (
    PeerError,
    ProtocolError,
    ShimError,
    StreamClosedError,
    TransactionClosedError,
)
from .interfaces import Chaincode
from .response import ERROR_THRESHOLD, Response
from .response import error as error_response
from .stub import ChaincodeStub

CCM = pb.CCM
logger = logging.getLogger("fabshim.handler")

DEFAULT_MAX_BATCH = 100
"""Batch size used when the peer offers a feature without a maximum (as Go does)."""

DRAIN_SECONDS = 30.0
"""How long COMPLETED waits for the answer to a request the chaincode left in flight (the
peer's default ``chaincode.executetimeout``: the peer has given up on the call by then)."""

_FINISHED_REMEMBERED = 256
"""Finished transactions whose last request a dropped answer's warning can name."""


def log_prefix(channel_id: str, tx_id: str) -> str:
    """``[channel-txid8]``: the prefix of every log line about a transaction."""
    return f"[{channel_id}-{tx_id[:8]}]"


class HandlerState(enum.Enum):
    """Where the handler is in the registration handshake."""

    CREATED = "created"
    ESTABLISHED = "established"
    READY = "ready"


@dataclass(frozen=True, slots=True)
class PeerFeatures:
    """What the peer offered in READY's ``ChaincodeAdditionalParams`` (and we accepted)."""

    use_write_batch: bool = False
    max_size_write_batch: int = 0
    use_get_multiple_keys: bool = False
    max_size_get_multiple_keys: int = 0

    @classmethod
    def from_ready_payload(
        cls, payload: bytes, *, allow_write_batch: bool = True, allow_get_multiple: bool = True
    ) -> PeerFeatures:
        """Parse READY's payload; an empty or unreadable payload offers nothing (as in Go)."""
        if not payload:
            return cls()
        try:
            params = pb.chaincode.ChaincodeAdditionalParams.FromString(payload)
        except pb.DecodeError:
            logger.warning("READY payload is not ChaincodeAdditionalParams; features off")
            return cls()
        use_batch = bool(params.use_write_batch) and allow_write_batch
        use_multi = bool(params.use_get_multiple_keys) and allow_get_multiple
        return cls(
            use_write_batch=use_batch,
            max_size_write_batch=(int(params.max_size_write_batch) or DEFAULT_MAX_BATCH)
            if use_batch
            else 0,
            use_get_multiple_keys=use_multi,
            max_size_get_multiple_keys=(int(params.max_size_get_multiple_keys) or DEFAULT_MAX_BATCH)
            if use_multi
            else 0,
        )


class MessageStream(Protocol):
    """A bidirectional stream of ``ChaincodeMessage``; ``recv`` returns None at its end."""

    async def send(self, message: pb.Message) -> None: ...
    async def recv(self) -> pb.Message | None: ...


class _Transaction:
    """One running INIT or TRANSACTION: its request lock and the waiter for the answer.

    The peer serves one request per transaction at a time and silently drops a second one
    while the first is still active (Fabric's ``ActiveTransactions``), so "one at a time"
    here means until the peer has *answered*, not until the caller stopped waiting: a
    request whose caller was cancelled or failed (``close``) stays ``unanswered`` until its
    answer arrives, the next request waits for that, and the late answer is consumed here
    instead of reaching the next request as if it were its own.
    """

    __slots__ = (
        "channel_id",
        "closed",
        "handler",
        "last_request",
        "lock",
        "tx_id",
        "unanswered",
        "waiter",
    )

    def __init__(self, handler: Handler, channel_id: str, tx_id: str) -> None:
        self.handler = handler
        self.channel_id = channel_id
        self.tx_id = tx_id
        self.lock = asyncio.Lock()
        self.waiter: asyncio.Future[pb.Message] | None = None
        self.unanswered: asyncio.Future[None] | None = None  # sent, not yet answered
        self.last_request = ""  # the last request's type name, for diagnostics
        self.closed = False

    async def request(self, msg_type: int, payload: bytes) -> bytes:
        request_name = pb.type_name(msg_type)
        async with self.lock:
            self._refuse_if_closed(request_name)
            previous = self.unanswered
            if previous is not None:
                # an abandoned request is still active at the peer: this one would be dropped
                await asyncio.shield(previous)
                self._refuse_if_closed(request_name)
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[pb.Message] = loop.create_future()
            self.waiter = waiter
            self.unanswered = loop.create_future()
            self.last_request = request_name
            try:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("%s sending %s", self.prefix, request_name)
                try:
                    await self.handler.send(
                        CCM(
                            type=msg_type,
                            payload=payload,
                            txid=self.tx_id,
                            channel_id=self.channel_id,
                        )
                    )
                except BaseException:
                    self._answered()  # not sent: no answer will come
                    raise
                reply = await waiter
            finally:
                self.waiter = None
        if reply.type == CCM.RESPONSE:
            return bytes(reply.payload)
        if reply.type == CCM.ERROR:
            message = bytes(reply.payload).decode("utf-8", "replace")
            logger.debug("%s peer answered ERROR to %s", self.prefix, request_name)
            raise PeerError(request_name, message)
        raise ProtocolError(
            f"{self.prefix} unexpected {pb.type_name(reply.type)} answer to {request_name}"
        )

    def _refuse_if_closed(self, request_name: str) -> None:
        if self.closed:
            raise TransactionClosedError(
                f"{self.prefix} {request_name} after the transaction completed"
            )

    @property
    def prefix(self) -> str:
        return log_prefix(self.channel_id, self.tx_id)

    def _answered(self) -> None:
        unanswered, self.unanswered = self.unanswered, None
        if unanswered is not None and not unanswered.done():
            unanswered.set_result(None)

    def deliver(self, message: pb.Message) -> bool:
        """Route the peer's answer to the request in flight; False if none is."""
        if self.unanswered is None:
            return False
        self._answered()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        else:
            logger.debug(
                "%s answer to an abandoned %s consumed", self.prefix, self.last_request
            )
        return True

    async def drain(self, seconds: float) -> None:
        """Wait until the peer has answered the request in flight, if any (at most
        ``seconds``: a request the peer dropped is never answered)."""
        unanswered = self.unanswered
        if unanswered is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(unanswered), seconds)
        except TimeoutError:
            logger.warning(
                "%s %s left in flight by the chaincode was not answered within %.0f s",
                self.prefix,
                self.last_request,
                seconds,
            )

    def close(self, reason: ShimError | None) -> None:
        self.closed = True
        waiter = self.waiter
        if reason is not None and waiter is not None and not waiter.done():
            waiter.set_exception(reason)

    def abandon(self) -> None:
        """The stream ended: no answer will come."""
        self._answered()


class Handler:
    """Runs the shim protocol for one stream (see the module docstring)."""

    def __init__(
        self,
        stream: MessageStream,
        chaincode: Chaincode,
        chaincode_id: str,
        *,
        write_batching: bool = True,
        multi_key_reads: bool = True,
        label: str = "",
    ) -> None:
        self._stream = stream
        self._chaincode = chaincode
        self._chaincode_id = chaincode_id
        self._allow_write_batch = write_batching
        self._allow_get_multiple = multi_key_reads
        self._label = label or "stream"
        self._state = HandlerState.CREATED
        self._features = PeerFeatures()
        self._transactions: dict[tuple[str, str], _Transaction] = {}
        self._finished: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._accepting = True
        self._closed = False

    @property
    def state(self) -> HandlerState:
        """The handshake state."""
        return self._state

    @property
    def features(self) -> PeerFeatures:
        """The optional features the peer offered in READY (and we accepted)."""
        return self._features

    @property
    def active_transactions(self) -> int:
        """Transactions running now."""
        return len(self._transactions)

    async def send(self, message: pb.Message) -> None:
        """Send one message; sends are serialized (gRPC allows one write at a time)."""
        if self._closed:
            raise StreamClosedError("the stream to the peer is closed")
        async with self._send_lock:
            await self._stream.send(message)

    async def run(self) -> None:
        """Register, then serve the stream until it ends. Raises on protocol violations."""
        registration = pb.chaincode.ChaincodeID(name=self._chaincode_id)
        try:
            await self.send(CCM(type=CCM.REGISTER, payload=registration.SerializeToString()))
            logger.info("%s REGISTER sent for chaincode id %s", self._label, self._chaincode_id)
            while True:
                message = await self._stream.recv()
                if message is None:
                    logger.info("%s stream ended by the peer", self._label)
                    return
                try:
                    self._handle(message)
                except ProtocolError as exc:
                    logger.error("%s %s; ending the stream", self._label, exc)
                    await self._send_quietly(
                        CCM(
                            type=CCM.ERROR,
                            payload=str(exc).encode("utf-8"),
                            txid=message.txid,
                            channel_id=message.channel_id,
                        )
                    )
                    raise
        finally:
            await self._close()

    def stop_accepting(self) -> None:
        """Answer new INIT and TRANSACTION messages with ERROR (graceful shutdown)."""
        self._accepting = False

    async def wait_idle(self, grace: float | None = None) -> bool:
        """Wait until no transaction runs (True) or ``grace`` seconds pass (False)."""
        tasks = set(self._tasks)
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=grace)
        return not pending

    # ------------------------------------------------------------------ receive loop

    def _handle(self, message: pb.Message) -> None:
        msg_type = message.type
        if msg_type == CCM.KEEPALIVE:
            self._spawn(self._send_quietly(message))
            return
        if self._state is HandlerState.READY:
            self._handle_ready(message)
        elif self._state is HandlerState.ESTABLISHED:
            if msg_type == CCM.ERROR:
                raise PeerError("REGISTER", bytes(message.payload).decode("utf-8", "replace"))
            if msg_type != CCM.READY:
                raise self._unexpected(message)
            self._features = PeerFeatures.from_ready_payload(
                bytes(message.payload),
                allow_write_batch=self._allow_write_batch,
                allow_get_multiple=self._allow_get_multiple,
            )
            self._state = HandlerState.READY
            features = self._features
            logger.info(
                "%s ready (write batching %s, multi-key reads %s)",
                self._label,
                f"on, max {features.max_size_write_batch}" if features.use_write_batch else "off",
                f"on, max {features.max_size_get_multiple_keys}"
                if features.use_get_multiple_keys
                else "off",
            )
        else:
            if msg_type == CCM.ERROR:
                raise PeerError("REGISTER", bytes(message.payload).decode("utf-8", "replace"))
            if msg_type != CCM.REGISTERED:
                raise self._unexpected(message)
            self._state = HandlerState.ESTABLISHED
            logger.debug("%s registered", self._label)

    def _handle_ready(self, message: pb.Message) -> None:
        msg_type = message.type
        if msg_type in (CCM.RESPONSE, CCM.ERROR):
            key = (str(message.channel_id), str(message.txid))
            transaction = self._transactions.get(key)
            if transaction is None:
                last = self._finished.get(key)
                why = "no transaction with this id is running" + (
                    f"; the last one with it finished after {last or 'no request'}"
                    if last is not None
                    else ""
                )
            elif not transaction.deliver(message):
                why = "the transaction has no request in flight; its last was " + (
                    transaction.last_request or "none"
                )
            else:
                return
            logger.warning(
                "%s %s %s for no waiting request; dropped (%s)",
                self._label,
                log_prefix(*key),
                pb.type_name(msg_type),
                why,
            )
            return
        if msg_type in (CCM.INIT, CCM.TRANSACTION):
            self._start_transaction(message, is_init=msg_type == CCM.INIT)
            return
        raise self._unexpected(message)

    def _unexpected(self, message: pb.Message) -> ProtocolError:
        return ProtocolError(
            f"{log_prefix(message.channel_id, message.txid)} cannot handle "
            f"{pb.type_name(message.type)} in state {self._state.value}"
        )

    def _start_transaction(self, message: pb.Message, *, is_init: bool) -> None:
        channel_id, tx_id = str(message.channel_id), str(message.txid)
        key = (channel_id, tx_id)
        refusal = None
        if not self._accepting:
            refusal = "chaincode server is shutting down"
        elif key in self._transactions:
            refusal = "a transaction with this id is already running on this channel"
        if refusal is not None:
            logger.warning("%s refused: %s", log_prefix(channel_id, tx_id), refusal)
            self._spawn(
                self._send_quietly(
                    CCM(
                        type=CCM.ERROR,
                        payload=refusal.encode("utf-8"),
                        txid=tx_id,
                        channel_id=channel_id,
                    )
                )
            )
            return
        transaction = _Transaction(self, channel_id, tx_id)
        self._transactions[key] = transaction
        self._spawn(self._run_transaction(transaction, message, is_init))

    # ------------------------------------------------------------------ transactions

    async def _run_transaction(
        self, transaction: _Transaction, message: pb.Message, is_init: bool
    ) -> None:
        prefix = transaction.prefix
        kind = "INIT" if is_init else "TRANSACTION"
        logger.debug("%s %s received", prefix, kind)
        try:
            try:
                chaincode_input = pb.chaincode.ChaincodeInput.FromString(message.payload)
                stub = ChaincodeStub(
                    transaction,
                    self._features,
                    channel_id=transaction.channel_id,
                    tx_id=transaction.tx_id,
                    args=list(chaincode_input.args),
                    signed_proposal=message.proposal if message.HasField("proposal") else None,
                    decorations=dict(chaincode_input.decorations),
                    write_batching=not is_init,
                )
            except (pb.DecodeError, ShimError) as exc:
                logger.error("%s cannot start %s: %s", prefix, kind, exc)
                self._finish(transaction)
                await self._reply_error(transaction, f"cannot start the transaction: {exc}")
                return
            response = await self._call_chaincode(stub, is_init, prefix)
            if not response.is_error:
                try:
                    await stub.finish_write_batch()
                except ShimError as exc:
                    logger.info("%s write batch refused: %s", prefix, type(exc).__name__)
                    response = error_response(str(exc))
            # The transaction is over before the peer hears so: a request still in flight
            # from a task the chaincode left behind fails now instead of waiting forever...
            self._close_transaction(transaction)
            # ...but COMPLETED waits for the peer's answer to it: until then the peer holds
            # the request active, and would drop a request of the next call with this txid
            # (a chaincode-to-chaincode call runs each call of one transaction on the same
            # stream with the same txid), to which the stray's late answer would go.
            await transaction.drain(DRAIN_SECONDS)
            self._finish(transaction)
            await self._reply(transaction, stub, response, is_init)
        finally:
            self._finish(transaction)

    def _close_transaction(self, transaction: _Transaction) -> None:
        if not transaction.closed:
            transaction.close(
                TransactionClosedError(f"{transaction.prefix} the transaction has completed")
            )

    def _finish(self, transaction: _Transaction) -> None:
        """Close ``transaction`` and unregister it: *it*, not whatever now runs under its
        key. The peer may have read this COMPLETED and sent the next call with the same
        (channel, txid), registered already, before this task resumes from the write."""
        self._close_transaction(transaction)
        key = (transaction.channel_id, transaction.tx_id)
        if self._transactions.get(key) is transaction:
            del self._transactions[key]
            self._finished[key] = transaction.last_request
            self._finished.move_to_end(key)
            while len(self._finished) > _FINISHED_REMEMBERED:
                self._finished.popitem(last=False)

    async def _call_chaincode(self, stub: ChaincodeStub, is_init: bool, prefix: str) -> Response:
        try:
            if is_init:
                response = await self._chaincode.init(stub)
            else:
                response = await self._chaincode.invoke(stub)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("%s chaincode raised %s", prefix, type(exc).__name__)
            return error_response(str(exc) or type(exc).__name__)
        if not isinstance(response, Response):
            logger.error("%s chaincode returned %s, not a Response", prefix, type(response))
            return error_response("chaincode returned no Response")
        if not (
            isinstance(response.status, int)
            and isinstance(response.message, str)
            and isinstance(response.payload, bytes)
        ):
            logger.error("%s chaincode returned a Response with wrongly typed fields", prefix)
            return error_response("chaincode returned a malformed Response")
        return response

    async def _reply(
        self, transaction: _Transaction, stub: ChaincodeStub, response: Response, is_init: bool
    ) -> None:
        prefix = transaction.prefix
        if is_init and response.status >= ERROR_THRESHOLD:
            await self._reply_error(transaction, response.message)
            return
        reply = CCM(
            type=CCM.COMPLETED,
            payload=pb.proposal_response.Response(
                status=response.status, message=response.message, payload=response.payload
            ).SerializeToString(),
            txid=transaction.tx_id,
            channel_id=transaction.channel_id,
        )
        event = stub.event
        if event is not None:
            reply.chaincode_event.CopyFrom(
                pb.event.ChaincodeEvent(event_name=event[0], payload=event[1])
            )
        logger.debug("%s COMPLETED status %d", prefix, response.status)
        await self._send_quietly(reply)

    async def _reply_error(self, transaction: _Transaction, text: str) -> None:
        await self._send_quietly(
            CCM(
                type=CCM.ERROR,
                payload=text.encode("utf-8"),
                txid=transaction.tx_id,
                channel_id=transaction.channel_id,
            )
        )

    # ------------------------------------------------------------------ plumbing

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            logger.error("%s internal task failed: %s", self._label, type(exc).__name__)

    async def _send_quietly(self, message: pb.Message) -> None:
        try:
            await self.send(message)
        except ShimError as exc:
            logger.warning(
                "%s cannot send %s: %s",
                log_prefix(message.channel_id, message.txid),
                pb.type_name(message.type),
                exc,
            )

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._accepting = False
        reason = StreamClosedError("the stream to the peer ended")
        for transaction in list(self._transactions.values()):
            transaction.close(reason)
            transaction.abandon()
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._transactions.clear()
