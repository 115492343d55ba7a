"""``ChaincodeStub``: what a transaction sees of its proposal and of the ledger.

One stub per INIT or TRANSACTION. Methods that talk to the peer are coroutines; the stub
serializes them (the peer serves one request per transaction at a time), so a chaincode
may ``asyncio.gather`` several calls on one stub safely.

One file of ~710 lines on purpose: it is one class, the transcription of fabric-chaincode-go's
``ChaincodeStub`` (its ``stub.go`` is one file too), whose method groups (state, private data,
key-level endorsement, events) all go through the one serialized link to the peer at the
bottom. Splitting a class across modules would hide that link from each group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from . import _protos as pb
from .errors import (
    InvalidArgumentError,
    InvokeChaincodeError,
    PeerError,
    ProtocolError,
)
from .iterators import (
    KV,
    HistoryQueryIterator,
    KeyModification,
    Page,
    QueryIterator,
    QueryResponseMetadata,
    StateQueryIterator,
)
from .keys import (
    COMPOSITE_KEY_NAMESPACE,
    MAX_UNICODE_RUNE,
    create_composite_key,
    partial_key_range,
    range_keys,
    split_composite_key,
    validate_collection,
    validate_key,
)
from .response import ERROR_THRESHOLD, Response

if TYPE_CHECKING:
    # The handler parses what the peer offers and makes the stubs; the stub only reads it.
    from .handler import PeerFeatures
    from .interfaces import Stub

VALIDATION_PARAMETER = "VALIDATION_PARAMETER"
"""Metadata key under which a key-level endorsement policy is stored."""

CCM = pb.CCM


class TransactionLink(Protocol):
    """What a stub needs from the handler: one request/answer exchange at a time."""

    async def request(self, msg_type: int, payload: bytes) -> bytes:
        """Send a request for this transaction; return the RESPONSE payload or raise."""
        ...


def _ser(message: pb.Message) -> bytes:
    return bytes(message.SerializeToString())


class _Proposal:
    """The fields a stub extracts from the signed proposal."""

    __slots__ = ("binding", "chaincode_name", "creator", "signed", "timestamp", "transient")

    def __init__(self, signed: pb.Message | None) -> None:
        self.signed = signed
        self.creator = b""
        self.transient: dict[str, bytes] = {}
        self.binding = b""
        self.chaincode_name = ""
        self.timestamp: Timestamp | None = None
        if signed is None:
            return
        try:
            proposal = pb.proposal.Proposal.FromString(signed.proposal_bytes)
            if not proposal.header:
                raise ProtocolError("the proposal has no header")
            header = pb.common.Header.FromString(proposal.header)
            channel_header = pb.common.ChannelHeader.FromString(header.channel_header)
            valid_types = (pb.common.ENDORSER_TRANSACTION, pb.common.CONFIG)
            if channel_header.type not in valid_types:
                raise ProtocolError(f"invalid channel header type {channel_header.type}")
            signature_header = pb.common.SignatureHeader.FromString(header.signature_header)
            payload = pb.proposal.ChaincodeProposalPayload.FromString(proposal.payload)
            invocation = pb.chaincode.ChaincodeInvocationSpec.FromString(payload.input)
        except pb.DecodeError as exc:
            raise ProtocolError(f"cannot decode the signed proposal: {exc}") from exc
        self.creator = bytes(signature_header.creator)
        self.transient = {str(k): bytes(v) for k, v in payload.TransientMap.items()}
        self.chaincode_name = str(invocation.chaincode_spec.chaincode_id.name)
        epoch = int(channel_header.epoch).to_bytes(8, "little")
        self.binding = hashlib.sha256(bytes(signature_header.nonce) + self.creator + epoch).digest()
        timestamp = Timestamp()
        timestamp.CopyFrom(channel_header.timestamp)
        self.timestamp = timestamp


class ProposalView:
    """What a transaction's stub answers from its proposal, shared by ``ChaincodeStub``
    and ``fabshim.testing.MemoryStub`` so the two cannot drift apart.

    Subclasses set ``_tx_id``, ``_channel_id``, ``_args`` and ``_proposal``.
    """

    _tx_id: str
    _channel_id: str
    _args: list[bytes]
    _proposal: _Proposal

    @property
    def tx_id(self) -> str:
        """The transaction id."""
        return self._tx_id

    @property
    def channel_id(self) -> str:
        """The channel the transaction runs on."""
        return self._channel_id

    def get_tx_id(self) -> str:
        """The transaction id (Go name)."""
        return self._tx_id

    def get_channel_id(self) -> str:
        """The channel id (Go name)."""
        return self._channel_id

    def get_args(self) -> list[bytes]:
        """All arguments, the function name first, as bytes."""
        return list(self._args)

    def get_string_args(self) -> list[str]:
        """All arguments decoded as UTF-8; raises ``InvalidArgumentError`` if one is not."""
        return [_decode_arg(arg, index) for index, arg in enumerate(self._args)]

    def get_function_and_parameters(self) -> tuple[str, list[str]]:
        """The first argument as the function name and the rest as string parameters."""
        args = self.get_string_args()
        if not args:
            return "", []
        return args[0], args[1:]

    @property
    def args(self) -> list[bytes]:
        """All arguments as bytes (function name first)."""
        return self.get_args()

    @property
    def function(self) -> str:
        """The function name (first argument), or ``""``."""
        return self.get_function_and_parameters()[0]

    @property
    def parameters(self) -> list[str]:
        """The arguments after the function name, as strings."""
        return self.get_function_and_parameters()[1]

    def get_tx_timestamp(self) -> Timestamp:
        """The timestamp the client put in the proposal's channel header."""
        if self._proposal.timestamp is None:
            raise ProtocolError("the transaction has no signed proposal")
        timestamp = Timestamp()
        timestamp.CopyFrom(self._proposal.timestamp)
        return timestamp

    @property
    def tx_datetime(self) -> datetime:
        """The transaction timestamp as an aware UTC datetime."""
        return self.get_tx_timestamp().ToDatetime(tzinfo=UTC)

    def get_creator(self) -> bytes:
        """The serialized identity (``msp.SerializedIdentity``) of the transaction creator."""
        return self._proposal.creator

    def get_binding(self) -> bytes:
        """SHA-256 of nonce ‖ creator ‖ epoch: ties the proposal to this transaction."""
        return self._proposal.binding

    def get_transient(self) -> Mapping[str, bytes]:
        """The transient map (private inputs; never written to the ledger)."""
        return dict(self._proposal.transient)

    @property
    def chaincode_name(self) -> str:
        """The name of the chaincode the client's proposal invokes: the transaction's top
        level. A chaincode called with ``invoke_chaincode`` sees its caller's proposal, so
        this is the caller's name there, never its own (``""`` without a proposal)."""
        return self._proposal.chaincode_name


class ChaincodeStub(ProposalView):
    """The API a chaincode uses during one transaction.

    Reads see the ledger as committed before this transaction: a transaction does not read
    its own writes (Fabric's rule). A missing key reads as ``None``. An empty value written
    with ``put_state`` deletes the key (Fabric's rule).

    When the peer announced write batching in READY (and the server did not opt out), writes
    of a TRANSACTION are sent in WRITE_BATCH_STATE messages at the end of the transaction,
    or earlier where Fabric's rules need them (before a private-data or paginated query, and
    before ``invoke_chaincode``); a write the peer refuses then surfaces at that point.
    """

    def __init__(
        self,
        link: TransactionLink,
        features: PeerFeatures,
        *,
        channel_id: str,
        tx_id: str,
        args: Sequence[bytes],
        signed_proposal: pb.Message | None = None,
        decorations: Mapping[str, bytes] | None = None,
        write_batching: bool = False,
    ) -> None:
        self._link = link
        self._features = features
        self._channel_id = channel_id
        self._tx_id = tx_id
        self._args = [bytes(a) for a in args]
        self._proposal = _Proposal(signed_proposal)
        self._decorations = dict(decorations or {})
        self._event: tuple[str, bytes] | None = None
        self._batch: dict[tuple[str, str, bool], pb.Message] | None = (
            {} if write_batching and features.use_write_batch else None
        )
        self._read_only_query_done = False

    # ------------------------------------------------------------------ proposal

    def get_signed_proposal(self) -> pb.Message | None:
        """The ``peer.SignedProposal`` the peer passed with the transaction."""
        return self._proposal.signed

    def get_decorations(self) -> Mapping[str, bytes]:
        """Decorations the peer added to the chaincode input."""
        return dict(self._decorations)

    # ------------------------------------------------------------------ public state

    async def get_state(self, key: str) -> bytes | None:
        """The committed value of ``key``, or ``None`` when the key does not exist."""
        return await self._get_state("", key)

    async def get_multiple_states(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of several keys, in order (``None`` for a missing key).

        Uses GET_STATE_MULTIPLE when the peer offers it, else one GET_STATE per key.
        """
        return await self._get_multiple("", keys)

    async def put_state(self, key: str, value: bytes) -> None:
        """Write ``value`` under ``key`` (an empty value deletes the key)."""
        await self._put("", key, value)

    async def del_state(self, key: str) -> None:
        """Delete ``key``."""
        await self._delete("", key)

    async def get_state_by_range(self, start_key: str, end_key: str) -> StateQueryIterator:
        """Keys in ``[start_key, end_key)``; empty bounds are open."""
        start, end = range_keys(start_key, end_key)
        iterator, _ = await self._range_query("", start, end, None)
        return iterator

    async def get_state_by_range_with_pagination(
        self, start_key: str, end_key: str, page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        """One page of ``[start_key, end_key)``; continue with the returned bookmark.

        A paginated query makes the transaction read-only (Fabric's rule).
        """
        start, end = range_keys(start_key, end_key)
        return await self._range_query("", start, end, _query_metadata(page_size, bookmark))

    async def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> StateQueryIterator:
        """Composite keys starting with ``object_type`` and ``attributes``."""
        start, end = partial_key_range(object_type, attributes)
        iterator, _ = await self._range_query("", start, end, None)
        return iterator

    async def get_state_by_partial_composite_key_with_pagination(
        self, object_type: str, attributes: Sequence[str], page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        """One page of a partial composite key query."""
        start, end = partial_key_range(object_type, attributes)
        return await self._range_query("", start, end, _query_metadata(page_size, bookmark))

    async def get_all_states_composite_key_with_pagination(
        self, page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        """One page of every composite key of the chaincode."""
        start = COMPOSITE_KEY_NAMESPACE
        end = COMPOSITE_KEY_NAMESPACE + MAX_UNICODE_RUNE
        return await self._range_query("", start, end, _query_metadata(page_size, bookmark))

    def create_composite_key(self, object_type: str, attributes: Sequence[str]) -> str:
        """Build a composite key (see ``fabshim.keys``)."""
        return create_composite_key(object_type, attributes)

    def split_composite_key(self, composite_key: str) -> tuple[str, list[str]]:
        """Split a composite key into object type and attributes."""
        return split_composite_key(composite_key)

    async def get_query_result(self, query: str) -> StateQueryIterator:
        """A rich (CouchDB) query. A LevelDB peer refuses it: ``PeerError``."""
        iterator, _ = await self._rich_query("", query, None)
        return iterator

    async def get_query_result_with_pagination(
        self, query: str, page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        """One page of a rich query (CouchDB only)."""
        return await self._rich_query("", query, _query_metadata(page_size, bookmark))

    async def get_history_for_key(self, key: str) -> HistoryQueryIterator:
        """The committed history of a public key (needs the peer's history database)."""
        validate_key(key)
        payload = _ser(pb.shim.GetHistoryForKey(key=key))
        response = await self._link.request(CCM.GET_HISTORY_FOR_KEY, payload)
        page = _history_page(_parse_query_response(response))
        return QueryIterator(page, self._next_history_page, self._close_query)

    # ------------------------------------------------------------------ private data

    async def get_private_data(self, collection: str, key: str) -> bytes | None:
        """The value of ``key`` in ``collection``, or ``None``."""
        validate_collection(collection)
        return await self._get_state(collection, key)

    async def get_multiple_private_data(
        self, collection: str, keys: Sequence[str]
    ) -> list[bytes | None]:
        """The values of several private keys, in order."""
        validate_collection(collection)
        return await self._get_multiple(collection, keys)

    async def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        """Write a private value (an empty value deletes the key)."""
        validate_collection(collection)
        await self._put(collection, key, value)

    async def del_private_data(self, collection: str, key: str) -> None:
        """Delete a private key (its hash stays in history)."""
        validate_collection(collection)
        await self._delete(collection, key)

    async def purge_private_data(self, collection: str, key: str) -> None:
        """Delete a private key and purge its past values from peers' private stores."""
        validate_collection(collection)
        validate_key(key)
        record = pb.shim.WriteRecord(
            key=key, collection=collection, type=pb.shim.WriteRecord.PURGE_PRIVATE_DATA
        )
        if self._batching:
            assert self._batch is not None
            self._batch[(collection, key, False)] = record
            return
        payload = _ser(pb.shim.DelState(key=key, collection=collection))
        await self._link.request(CCM.PURGE_PRIVATE_DATA, payload)

    async def get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        """SHA-256 of the private value, readable by non-members; ``None`` if missing."""
        validate_collection(collection)
        validate_key(key)
        payload = _ser(pb.shim.GetState(key=key, collection=collection))
        value = await self._link.request(CCM.GET_PRIVATE_DATA_HASH, payload)
        return value or None

    async def get_private_data_by_range(
        self, collection: str, start_key: str, end_key: str
    ) -> StateQueryIterator:
        """Private keys in ``[start_key, end_key)``; makes the transaction read-only."""
        validate_collection(collection)
        start, end = range_keys(start_key, end_key)
        iterator, _ = await self._range_query(collection, start, end, None)
        return iterator

    async def get_private_data_by_partial_composite_key(
        self, collection: str, object_type: str, attributes: Sequence[str]
    ) -> StateQueryIterator:
        """Private composite keys with this prefix; makes the transaction read-only."""
        validate_collection(collection)
        start, end = partial_key_range(object_type, attributes)
        iterator, _ = await self._range_query(collection, start, end, None)
        return iterator

    async def get_private_data_query_result(
        self, collection: str, query: str
    ) -> StateQueryIterator:
        """A rich query over a collection (CouchDB only); makes the transaction read-only."""
        validate_collection(collection)
        iterator, _ = await self._rich_query(collection, query, None)
        return iterator

    # ------------------------------------------------------------ key-level endorsement

    async def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        """Set the key-level endorsement policy of a public key (see ``fabshim.statebased``)."""
        await self._put_metadata("", key, VALIDATION_PARAMETER, policy)

    async def get_state_validation_parameter(self, key: str) -> bytes | None:
        """The key-level endorsement policy of a public key, or ``None``."""
        metadata = await self._get_metadata("", key)
        return metadata.get(VALIDATION_PARAMETER)

    async def set_private_data_validation_parameter(
        self, collection: str, key: str, policy: bytes
    ) -> None:
        """Set the key-level endorsement policy of a private key."""
        validate_collection(collection)
        await self._put_metadata(collection, key, VALIDATION_PARAMETER, policy)

    async def get_private_data_validation_parameter(
        self, collection: str, key: str
    ) -> bytes | None:
        """The key-level endorsement policy of a private key, or ``None``."""
        validate_collection(collection)
        metadata = await self._get_metadata(collection, key)
        return metadata.get(VALIDATION_PARAMETER)

    # ------------------------------------------------------------------ events, calls

    def set_event(self, name: str, payload: bytes) -> None:
        """Set the transaction's chaincode event (one per transaction; the last one wins).

        Sent with the COMPLETED message and written into the block: no private values.
        """
        if not name:
            raise InvalidArgumentError("event name must be a non-empty string")
        self._event = (name, bytes(payload))

    @property
    def event(self) -> tuple[str, bytes] | None:
        """The event set so far, as ``(name, payload)``."""
        return self._event

    async def invoke_chaincode(
        self, name: str, args: Sequence[bytes | str], channel: str = ""
    ) -> Response:
        """Call another chaincode in this transaction and return its successful response.

        Raises ``PeerError`` when the peer refuses the call and ``InvokeChaincodeError``
        when the called chaincode answers with an error status.
        """
        if not name:
            raise InvalidArgumentError("chaincode name must be a non-empty string")
        await self._flush_batch()
        target = f"{name}/{channel}" if channel else name
        spec = pb.chaincode.ChaincodeSpec(
            chaincode_id=pb.chaincode.ChaincodeID(name=target),
            input=pb.chaincode.ChaincodeInput(
                args=[a.encode("utf-8") if isinstance(a, str) else bytes(a) for a in args]
            ),
        )
        raw = await self._link.request(CCM.INVOKE_CHAINCODE, _ser(spec))
        try:
            inner = CCM.FromString(raw)
        except pb.DecodeError as exc:
            raise ProtocolError(f"cannot decode the INVOKE_CHAINCODE answer: {exc}") from exc
        if inner.type == CCM.COMPLETED:
            try:
                resp = pb.proposal_response.Response.FromString(inner.payload)
            except pb.DecodeError as exc:
                raise ProtocolError(f"cannot decode the called chaincode's answer: {exc}") from exc
            result = Response(int(resp.status), str(resp.message), bytes(resp.payload))
            if result.status >= ERROR_THRESHOLD:
                raise InvokeChaincodeError(name, result.status, result.message, result.payload)
            return result
        raise PeerError("INVOKE_CHAINCODE", bytes(inner.payload).decode("utf-8", "replace"))

    # ------------------------------------------------------------------ write batching

    @property
    def write_batching(self) -> bool:
        """True while writes are being collected for WRITE_BATCH_STATE."""
        return self._batching

    def start_write_batch(self) -> None:
        """Collect writes from now on, if the peer offers batching (no effect otherwise)."""
        if self._features.use_write_batch and self._batch is None:
            self._batch = {}

    async def finish_write_batch(self) -> None:
        """Send the collected writes now and write directly for the rest of the transaction."""
        await self._flush_batch()
        self._batch = None

    async def _flush_batch(self) -> None:
        if not self._batch:
            return
        records = list(self._batch.values())
        self._batch.clear()
        size = max(1, self._features.max_size_write_batch or 100)
        for offset in range(0, len(records), size):
            payload = _ser(pb.shim.WriteBatchState(rec=records[offset : offset + size]))
            await self._link.request(CCM.WRITE_BATCH_STATE, payload)

    @property
    def _batching(self) -> bool:
        # After a query that makes the transaction read-only, writes go out one by one so
        # the peer's refusal surfaces at the write, exactly as without batching.
        return self._batch is not None and not self._read_only_query_done

    async def _before_read_only_query(self) -> None:
        await self._flush_batch()
        self._read_only_query_done = True

    # ------------------------------------------------------------------ internals

    async def _get_state(self, collection: str, key: str) -> bytes | None:
        validate_key(key)
        payload = _ser(pb.shim.GetState(key=key, collection=collection))
        value = await self._link.request(CCM.GET_STATE, payload)
        return value or None

    async def _get_multiple(self, collection: str, keys: Sequence[str]) -> list[bytes | None]:
        if isinstance(keys, str):
            raise InvalidArgumentError("keys must be a sequence of strings, not a string")
        for key in keys:
            validate_key(key)
        if not keys:
            return []
        if not self._features.use_get_multiple_keys:
            return [await self._get_state(collection, key) for key in keys]
        size = max(1, self._features.max_size_get_multiple_keys or 100)
        values: list[bytes | None] = []
        for offset in range(0, len(keys), size):
            chunk = list(keys[offset : offset + size])
            payload = _ser(pb.shim.GetStateMultiple(keys=chunk, collection=collection))
            raw = await self._link.request(CCM.GET_STATE_MULTIPLE, payload)
            try:
                result = pb.shim.GetStateMultipleResult.FromString(raw)
            except pb.DecodeError as exc:
                raise ProtocolError(f"cannot decode GET_STATE_MULTIPLE answer: {exc}") from exc
            if len(result.values) != len(chunk):
                raise ProtocolError(
                    f"GET_STATE_MULTIPLE answered {len(result.values)} values for {len(chunk)} keys"
                )
            values.extend(bytes(v) or None for v in result.values)
        return values

    async def _put(self, collection: str, key: str, value: bytes) -> None:
        validate_key(key)
        if not isinstance(value, bytes | bytearray | memoryview):
            raise InvalidArgumentError("value must be bytes")
        value = bytes(value)
        if self._batching:
            assert self._batch is not None
            self._batch[(collection, key, False)] = pb.shim.WriteRecord(
                key=key, value=value, collection=collection, type=pb.shim.WriteRecord.PUT_STATE
            )
            return
        payload = _ser(pb.shim.PutState(key=key, value=value, collection=collection))
        await self._link.request(CCM.PUT_STATE, payload)

    async def _delete(self, collection: str, key: str) -> None:
        validate_key(key)
        if self._batching:
            assert self._batch is not None
            self._batch[(collection, key, False)] = pb.shim.WriteRecord(
                key=key, collection=collection, type=pb.shim.WriteRecord.DEL_STATE
            )
            return
        payload = _ser(pb.shim.DelState(key=key, collection=collection))
        await self._link.request(CCM.DEL_STATE, payload)

    async def _put_metadata(self, collection: str, key: str, metakey: str, value: bytes) -> None:
        validate_key(key)
        metadata = pb.shim.StateMetadata(metakey=metakey, value=bytes(value))
        if self._batching:
            assert self._batch is not None
            self._batch[(collection, key, True)] = pb.shim.WriteRecord(
                key=key,
                collection=collection,
                metadata=metadata,
                type=pb.shim.WriteRecord.PUT_STATE_METADATA,
            )
            return
        payload = _ser(pb.shim.PutStateMetadata(key=key, collection=collection, metadata=metadata))
        await self._link.request(CCM.PUT_STATE_METADATA, payload)

    async def _get_metadata(self, collection: str, key: str) -> dict[str, bytes]:
        validate_key(key)
        payload = _ser(pb.shim.GetStateMetadata(key=key, collection=collection))
        raw = await self._link.request(CCM.GET_STATE_METADATA, payload)
        try:
            result = pb.shim.StateMetadataResult.FromString(raw)
        except pb.DecodeError as exc:
            raise ProtocolError(f"cannot decode GET_STATE_METADATA answer: {exc}") from exc
        return {str(e.metakey): bytes(e.value) for e in result.entries}

    async def _range_query(
        self, collection: str, start: str, end: str, metadata: bytes | None
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        if collection or metadata is not None:
            await self._before_read_only_query()
        payload = _ser(
            pb.shim.GetStateByRange(
                startKey=start, endKey=end, collection=collection, metadata=metadata or b""
            )
        )
        raw = await self._link.request(CCM.GET_STATE_BY_RANGE, payload)
        return self._state_iterator(raw)

    async def _rich_query(
        self, collection: str, query: str, metadata: bytes | None
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        if not query:
            raise InvalidArgumentError("query must be a non-empty string")
        if collection or metadata is not None:
            await self._before_read_only_query()
        payload = _ser(
            pb.shim.GetQueryResult(query=query, collection=collection, metadata=metadata or b"")
        )
        raw = await self._link.request(CCM.GET_QUERY_RESULT, payload)
        return self._state_iterator(raw)

    def _state_iterator(self, raw: bytes) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        response = _parse_query_response(raw)
        metadata = QueryResponseMetadata(0, "")
        if response.metadata:
            try:
                parsed = pb.shim.QueryResponseMetadata.FromString(response.metadata)
            except pb.DecodeError as exc:
                raise ProtocolError(f"cannot decode query response metadata: {exc}") from exc
            metadata = QueryResponseMetadata(
                int(parsed.fetched_records_count), str(parsed.bookmark)
            )
        iterator = QueryIterator(_kv_page(response), self._next_state_page, self._close_query)
        return iterator, metadata

    async def _next_state_page(self, query_id: str) -> Page[KV]:
        return _kv_page(await self._query_next(query_id))

    async def _next_history_page(self, query_id: str) -> Page[KeyModification]:
        return _history_page(await self._query_next(query_id))

    async def _query_next(self, query_id: str) -> pb.Message:
        payload = _ser(pb.shim.QueryStateNext(id=query_id))
        return _parse_query_response(await self._link.request(CCM.QUERY_STATE_NEXT, payload))

    async def _close_query(self, query_id: str) -> None:
        payload = _ser(pb.shim.QueryStateClose(id=query_id))
        await self._link.request(CCM.QUERY_STATE_CLOSE, payload)


def _decode_arg(arg: bytes, index: int) -> str:
    try:
        return arg.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(f"argument {index} is not valid UTF-8") from exc


def _query_metadata(page_size: int, bookmark: str) -> bytes:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size <= 0:
        raise InvalidArgumentError("page_size must be a positive integer")
    if page_size > 2**31 - 1:
        raise InvalidArgumentError("page_size must fit in 32 bits")
    return _ser(pb.shim.QueryMetadata(pageSize=page_size, bookmark=bookmark))


def _parse_query_response(raw: bytes) -> pb.Message:
    try:
        return pb.shim.QueryResponse.FromString(raw)
    except pb.DecodeError as exc:
        raise ProtocolError(f"cannot decode query response: {exc}") from exc


def _kv_page(response: pb.Message) -> Page[KV]:
    results: list[KV] = []
    for item in response.results:
        try:
            kv = pb.kv.KV.FromString(item.resultBytes)
        except pb.DecodeError as exc:
            raise ProtocolError(f"cannot decode a query result: {exc}") from exc
        results.append(KV(key=str(kv.key), value=bytes(kv.value), namespace=str(kv.namespace)))
    return Page(results, bool(response.has_more), str(response.id))


def _history_page(response: pb.Message) -> Page[KeyModification]:
    results: list[KeyModification] = []
    for item in response.results:
        try:
            mod = pb.kv.KeyModification.FromString(item.resultBytes)
        except pb.DecodeError as exc:
            raise ProtocolError(f"cannot decode a history result: {exc}") from exc
        when = mod.timestamp.ToDatetime(tzinfo=UTC) if mod.HasField("timestamp") else None
        results.append(
            KeyModification(
                tx_id=str(mod.tx_id),
                value=bytes(mod.value),
                timestamp=when,
                is_delete=bool(mod.is_delete),
            )
        )
    return Page(results, bool(response.has_more), str(response.id))


if TYPE_CHECKING:

    def _conforms(stub: ChaincodeStub) -> Stub:
        return stub
