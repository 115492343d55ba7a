"""Chaincode events (Gateway ``ChaincodeEvents``) and block events (peer ``Deliver``).

Both are async iterators over a server stream; close them with ``aclose()`` or ``async with``.
A start position is, in order of precedence: a checkpoint, an explicit start block, or the next
block to commit.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from fabgateway._client import GatewayClient, SigningIdentity, rpc_error
from fabgateway._protos import ab_pb2, common_pb2, gateway_pb2
from fabgateway.checkpoint import Checkpoint
from fabgateway.errors import BlockEventsError, ChaincodeEventsError, MalformedMessageError

__all__ = [
    "BlockEventStream",
    "BlockEventsRequest",
    "ChaincodeEvent",
    "ChaincodeEventStream",
    "ChaincodeEventsRequest",
]

_MAX_BLOCK = 2**64 - 1
_EOF: Any = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs
_T = TypeVar("_T")


@dataclass(frozen=True)
class ChaincodeEvent:
    """An event emitted by a committed transaction."""

    block_number: int
    transaction_id: str
    chaincode_name: str
    event_name: str
    payload: bytes


def start_position(
    start_block: int | None, checkpoint: Checkpoint | None
) -> tuple[Any, str | None, int | None]:
    """The SeekPosition, the after-transaction id and the start block number (if known)."""
    after: str | None = None
    block = start_block
    if checkpoint is not None and checkpoint.block_number is not None:
        block = checkpoint.block_number
        after = checkpoint.transaction_id
    if block is None:
        return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit()), None, None
    if block < 0:
        raise ValueError("start_block must not be negative")
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=block)), after, block


def after_index(transaction_ids: list[str], after_transaction_id: str) -> int:
    """Where a resumed block's delivery starts: just after the last position of
    ``after_transaction_id`` in ``transaction_ids``, or 0 (nothing skipped) if absent."""
    if after_transaction_id not in transaction_ids:
        return 0
    return len(transaction_ids) - transaction_ids[::-1].index(after_transaction_id)


class ClosingIterator:
    """An async iterator that is its own async context manager: ``async with`` closes it
    (:meth:`aclose`) on the way out. The base of every event stream."""

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the stream."""
        raise NotImplementedError


class _Stream(ClosingIterator, Generic[_T]):
    """Common machinery of the event streams: lazy start, buffering, closing.

    Reads run in a task of their own, shielded from the consumer: a consumer that stops waiting
    (``asyncio.wait_for`` timing out, a cancelled task) neither cancels the gRPC call nor loses
    the message being read; the next ``__anext__`` picks up the same read.
    """

    def __init__(self) -> None:
        self._call: Any = None
        self._closed = False
        self._pending: collections.deque[_T] = collections.deque()
        self._read: asyncio.Task[Any] | None = None

    async def aclose(self) -> None:
        """Stop the stream (cancels the gRPC call)."""
        self._closed = True
        self._pending.clear()
        if self._call is not None:
            self._call.cancel()
        if self._read is not None and not self._read.done():
            self._read.cancel()

    async def _start(self) -> Any:
        raise NotImplementedError

    def _accept(self, response: Any) -> list[_T]:
        raise NotImplementedError

    def _failure(self, error: grpc.aio.AioRpcError) -> Exception:
        raise NotImplementedError

    async def _read_one(self) -> Any:
        if self._call is None:
            self._call = await self._start()
        return await self._call.read()

    async def __anext__(self) -> _T:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            if self._read is None:
                self._read = asyncio.ensure_future(self._read_one())
                self._read.add_done_callback(_retrieve)
            read = self._read
            try:
                response = await asyncio.shield(read)
            except grpc.aio.AioRpcError as error:
                self._read = None
                if self._closed:
                    raise StopAsyncIteration from None
                self._closed = True
                raise self._failure(error) from error
            except asyncio.CancelledError:
                if not read.done():
                    raise  # the consumer was cancelled; the read goes on
                if not read.cancelled() and read.exception() is None:
                    # The read finished as the consumer was cancelled: keep its message for
                    # the next __anext__ rather than drop it.
                    raise
                self._read = None
                if self._closed:
                    raise StopAsyncIteration from None
                raise
            except BaseException:
                if read.done():
                    self._read = None
                raise
            self._read = None
            if response is _EOF:
                self._closed = True
                raise StopAsyncIteration
            self._pending.extend(self._accept(response))
        return self._pending.popleft()


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a read's outcome as seen, so an abandoned stream logs no 'never retrieved'."""
    if not task.cancelled():
        task.exception()


class ChaincodeEventStream(_Stream[ChaincodeEvent]):
    """Chaincode events in commit order; an async iterator to close when done."""

    def __init__(
        self,
        client: GatewayClient,
        signed_request: Any,
        after_transaction_id: str | None,
        timeout: float | None,
    ) -> None:
        super().__init__()
        self._client = client
        self._signed_request = signed_request
        self._after = after_transaction_id
        self._timeout = timeout
        self._first_block: int | None = None

    async def _start(self) -> Any:
        return self._client.chaincode_events(self._signed_request, self._timeout)

    def _failure(self, error: grpc.aio.AioRpcError) -> Exception:
        return rpc_error(ChaincodeEventsError, error)

    def _accept(self, response: Any) -> list[ChaincodeEvent]:
        block_number = int(response.block_number)
        events = [
            ChaincodeEvent(
                block_number=block_number,
                transaction_id=str(event.tx_id),
                chaincode_name=str(event.chaincode_id),
                event_name=str(event.event_name),
                payload=bytes(event.payload),
            )
            for event in response.events
        ]
        if self._first_block is None:
            self._first_block = block_number
        if self._after is not None and block_number == self._first_block:
            # The peer skips the events up to the checkpointed transaction; skip them here too
            # in case it did not, without ever dropping a block that lacks that transaction.
            events = events[after_index([e.transaction_id for e in events], self._after) :]
        return events


class ChaincodeEventsRequest:
    """A signed-on-demand request for the chaincode events of one chaincode."""

    def __init__(
        self, client: GatewayClient, signing_id: SigningIdentity, signed_request: Any
    ) -> None:
        self._client = client
        self._signing_id = signing_id
        self._signed_request = signed_request
        request = gateway_pb2.ChaincodeEventsRequest()
        try:
            request.ParseFromString(signed_request.request)
        except Exception as error:
            raise MalformedMessageError(f"not a ChaincodeEventsRequest: {error}") from error
        self._after = str(request.after_transaction_id) or None

    def bytes(self) -> builtins.bytes:
        """The serialized ``gateway.SignedChaincodeEventsRequest`` (for off-line signing)."""
        return builtins.bytes(self._signed_request.SerializeToString())

    def digest(self) -> builtins.bytes:
        """The digest to sign off-line."""
        return self._signing_id.hash(self._signed_request.request)

    def _set_signature(self, signature: builtins.bytes) -> None:
        self._signed_request.signature = signature

    def events(self, *, timeout: float | None = None) -> ChaincodeEventStream:
        """Sign (unless signed off-line) and return the event stream; it starts on first read."""
        if not self._signed_request.signature:
            self._set_signature(self._signing_id.sign(self.digest()))
        return ChaincodeEventStream(self._client, self._signed_request, self._after, timeout)


def build_chaincode_events_request(
    client: GatewayClient,
    signing_id: SigningIdentity,
    channel_name: str,
    chaincode_name: str,
    *,
    start_block: int | None,
    after_transaction_id: str | None,
    checkpoint: Checkpoint | None,
) -> ChaincodeEventsRequest:
    position, checkpoint_after, _ = start_position(start_block, checkpoint)
    after = checkpoint_after if checkpoint_after is not None else after_transaction_id
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=channel_name,
        chaincode_id=chaincode_name,
        identity=signing_id.creator,
        start_position=position,
        after_transaction_id=after or "",
    )
    signed = gateway_pb2.SignedChaincodeEventsRequest(request=request.SerializeToString())
    return ChaincodeEventsRequest(client, signing_id, signed)


def parse_chaincode_events_request(
    client: GatewayClient, signing_id: SigningIdentity, data: bytes
) -> ChaincodeEventsRequest:
    signed = gateway_pb2.SignedChaincodeEventsRequest()
    try:
        signed.ParseFromString(data)
    except Exception as error:
        raise MalformedMessageError(f"not a SignedChaincodeEventsRequest: {error}") from error
    return ChaincodeEventsRequest(client, signing_id, signed)


# --- block events -------------------------------------------------------------------------

_DELIVER_KINDS = {
    "block": ("Deliver", "block"),
    "filtered_block": ("DeliverFiltered", "filtered_block"),
    "block_and_private_data": ("DeliverWithPrivateData", "block_and_private_data"),
}

_STATUS_TO_CODE = {
    "BAD_REQUEST": grpc.StatusCode.INVALID_ARGUMENT,
    "FORBIDDEN": grpc.StatusCode.PERMISSION_DENIED,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "SERVICE_UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
}


class BlockEventStream(_Stream[Any]):
    """Blocks (``common.Block``, ``peer.FilteredBlock`` or ``peer.BlockAndPrivateData``)."""

    def __init__(
        self, client: GatewayClient, kind: str, envelope: Any, timeout: float | None
    ) -> None:
        super().__init__()
        self._client = client
        self._method, self._field = _DELIVER_KINDS[kind]
        self._envelope = envelope
        self._timeout = timeout

    async def _start(self) -> Any:
        return await self._client.deliver(self._method, self._envelope, self._timeout)

    def _failure(self, error: grpc.aio.AioRpcError) -> Exception:
        return rpc_error(BlockEventsError, error)

    def _accept(self, response: Any) -> list[Any]:
        which = response.WhichOneof("Type")
        if which == self._field:
            return [getattr(response, self._field)]
        if which == "status":
            self._closed = True
            if self._call is not None:
                self._call.cancel()
            status = int(response.status)
            name = common_pb2.Status.Name(status) if status in common_pb2.Status.values() else ""
            if name == "SUCCESS":
                return []
            raise BlockEventsError(
                f"deliver service answered status {status} ({name})",
                code=_STATUS_TO_CODE.get(name, grpc.StatusCode.UNKNOWN),
                deliver_status=status,
            )
        return []


class BlockEventsRequest:
    """A signed-on-demand Deliver request (a ``common.Envelope`` holding a SeekInfo)."""

    def __init__(
        self, client: GatewayClient, signing_id: SigningIdentity, kind: str, envelope: Any
    ) -> None:
        if kind not in _DELIVER_KINDS:
            raise ValueError(f"unknown block event kind {kind!r}")
        self._client = client
        self._signing_id = signing_id
        self._kind = kind
        self._envelope = envelope

    @property
    def kind(self) -> str:
        return self._kind

    def bytes(self) -> builtins.bytes:
        """The serialized ``common.Envelope`` (for off-line signing)."""
        return builtins.bytes(self._envelope.SerializeToString())

    def digest(self) -> builtins.bytes:
        """The digest of the envelope payload, to sign off-line."""
        return self._signing_id.hash(self._envelope.payload)

    def _set_signature(self, signature: builtins.bytes) -> None:
        self._envelope.signature = signature

    def events(self, *, timeout: float | None = None) -> BlockEventStream:
        """Sign (unless signed off-line) and return the block stream; it starts on first read."""
        if not self._envelope.signature:
            self._set_signature(self._signing_id.sign(self.digest()))
        return BlockEventStream(self._client, self._kind, self._envelope, timeout)


def build_block_events_request(
    client: GatewayClient,
    signing_id: SigningIdentity,
    channel_name: str,
    kind: str,
    *,
    start_block: int | None,
    checkpoint: Checkpoint | None,
    tls_certificate_hash: bytes | None,
) -> BlockEventsRequest:
    position, _, _ = start_position(start_block, checkpoint)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.Value("DELIVER_SEEK_INFO"),
        channel_id=channel_name,
        timestamp=timestamp,
        epoch=0,
        tls_cert_hash=tls_certificate_hash or b"",
    )
    signature_header = common_pb2.SignatureHeader(creator=signing_id.creator)
    seek_info = ab_pb2.SeekInfo(
        start=position,
        stop=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=_MAX_BLOCK)),
        behavior=ab_pb2.SeekInfo.SeekBehavior.Value("BLOCK_UNTIL_READY"),
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ),
        data=seek_info.SerializeToString(),
    )
    envelope = common_pb2.Envelope(payload=payload.SerializeToString())
    return BlockEventsRequest(client, signing_id, kind, envelope)


def parse_block_events_request(
    client: GatewayClient, signing_id: SigningIdentity, kind: str, data: bytes
) -> BlockEventsRequest:
    envelope = common_pb2.Envelope()
    try:
        envelope.ParseFromString(data)
    except Exception as error:
        raise MalformedMessageError(f"not a block events request envelope: {error}") from error
    return BlockEventsRequest(client, signing_id, kind, envelope)
