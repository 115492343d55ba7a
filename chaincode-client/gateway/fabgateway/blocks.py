"""Full Fabric blocks decoded into typed, frozen records: what each transaction wrote, where.

What it owns: turning a ``common.Block`` (from Deliver, or from ``qscc``) and the private data
delivered with it (``peer.BlockAndPrivateData``) into :class:`Block`: per transaction its
position, id, header type, creator and endorsers, the validation code from the block's
``TRANSACTIONS_FILTER``, and per namespace the public reads and writes and, per collection, the
*hashed* private reads and writes and metadata writes (whose entries, such as
``VALIDATION_PARAMETER``, are in clear), and the chaincode event each action carries. Every
value is kept as the exact bytes of the block: nothing is re-serialized, so a hash computed
here equals the one Fabric computed.

What it must not do: know any chaincode; drop a transaction it cannot decode (the record says
why, in ``malformed``, and the rest of the block is decoded; one bad transaction must not hide
the others); treat an invalid transaction's writes as committed (``is_valid`` says which are:
callers filter).

The layout followed (Fabric's protos): ``Envelope.payload`` → ``Payload`` (``header``:
``ChannelHeader`` + ``SignatureHeader``, ``data``) → ``Transaction.actions[]`` →
``ChaincodeActionPayload.action`` → ``ProposalResponsePayload.extension`` → ``ChaincodeAction``
→ ``results`` → ``TxReadWriteSet.ns_rwset[]`` → ``KVRWSet`` and
``collection_hashed_rwset[].hashed_rwset`` → ``HashedRWSet``; ``ChaincodeAction.events`` →
``ChaincodeEvent`` (its ``chaincode_id`` is the top-level chaincode: the endorsing peer sets
it, so only the top level's event survives a chaincode-to-chaincode call).

One file (over 500 lines) because the records and their decoding are one mirror of that
layout: each record is built by exactly one decoding function below it, and neither is used
without the other.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fabgateway._protos import (
    chaincode_event_pb2,
    common_pb2,
    events_pb2,
    identities_pb2,
    kv_rwset_pb2,
    proposal_pb2,
    proposal_response_pb2,
    rwset_pb2,
    transaction_pb2,
)
from fabgateway.errors import MalformedMessageError, validation_code_name
from fabgateway.events import ChaincodeEvent

__all__ = [
    "VALIDATION_PARAMETER",
    "Block",
    "BlockTransaction",
    "CollectionRWSet",
    "HashedMetadataWrite",
    "HashedRead",
    "HashedWrite",
    "MetadataWrite",
    "NamespaceRWSet",
    "PrivateCollectionData",
    "PrivateWrite",
    "Read",
    "TxPosition",
    "Version",
    "Write",
    "decode_block",
    "decode_block_and_private_data",
    "decode_envelope",
    "decoded_blocks",
    "key_hash",
    "value_hash",
]

VALIDATION_PARAMETER = "VALIDATION_PARAMETER"
"""The metadata entry name under which Fabric keeps a key's endorsement (validation) policy."""

_VALID = int(transaction_pb2.TxValidationCode.Value("VALID"))
_ENDORSER_TRANSACTION = int(common_pb2.HeaderType.Value("ENDORSER_TRANSACTION"))
_TRANSACTIONS_FILTER = int(common_pb2.BlockMetadataIndex.Value("TRANSACTIONS_FILTER"))


def key_hash(key: str) -> bytes:
    """The hash Fabric puts in a block for a private key: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def value_hash(value: bytes) -> bytes:
    """The hash Fabric puts in a block for a private value: SHA-256 of its exact bytes."""
    return hashlib.sha256(value).digest()


# --- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """The version of a key that a transaction read: the position of its last writer."""

    block_number: int
    tx_number: int


@dataclass(frozen=True)
class Read:
    """A public read; ``version`` is None when the key did not exist."""

    key: str
    version: Version | None


@dataclass(frozen=True)
class Write:
    """A public write (or, in private data, a private write in clear)."""

    key: str
    value: bytes
    is_delete: bool


def _entry(entries: tuple[tuple[str, bytes], ...], name: str) -> bytes | None:
    for entry_name, value in entries:
        if entry_name == name:
            return value
    return None


class _MetadataEntries:
    """What a public and a private metadata write share: their (name, value) entries."""

    entries: tuple[tuple[str, bytes], ...]

    def entry(self, name: str) -> bytes | None:
        """The value of entry ``name``, or None."""
        return _entry(self.entries, name)

    @property
    def validation_parameter(self) -> bytes | None:
        """The ``VALIDATION_PARAMETER`` entry (empty bytes: the parameter was removed)."""
        return self.entry(VALIDATION_PARAMETER)


@dataclass(frozen=True)
class MetadataWrite(_MetadataEntries):
    """A public metadata write: ``entries`` are (name, value) pairs, in block order."""

    key: str
    entries: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class HashedRead:
    """A private read, as the block holds it."""

    key_hash: bytes
    version: Version | None


@dataclass(frozen=True)
class HashedWrite:
    """A private write, as the block holds it: ``value_hash`` is empty for a delete or purge."""

    key_hash: bytes
    value_hash: bytes
    is_delete: bool
    is_purge: bool


@dataclass(frozen=True)
class HashedMetadataWrite(_MetadataEntries):
    """A private key's metadata write; the entries are in clear in the block."""

    key_hash: bytes
    entries: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class CollectionRWSet:
    """What one transaction read and wrote in one private data collection (hashes only).

    ``private_rwset_hash`` is SHA-256 of the private read-write set's bytes (the private data
    delivered with the block must hash to it).
    """

    collection: str
    reads: tuple[HashedRead, ...]
    writes: tuple[HashedWrite, ...]
    metadata_writes: tuple[HashedMetadataWrite, ...]
    private_rwset_hash: bytes


@dataclass(frozen=True)
class NamespaceRWSet:
    """What one transaction read and wrote in one namespace (a chaincode)."""

    namespace: str
    reads: tuple[Read, ...]
    writes: tuple[Write, ...]
    metadata_writes: tuple[MetadataWrite, ...]
    collections: tuple[CollectionRWSet, ...]

    def collection(self, name: str) -> CollectionRWSet | None:
        """The hashed read-write set of collection ``name``, or None."""
        for collection in self.collections:
            if collection.collection == name:
                return collection
        return None


@dataclass(frozen=True)
class TxPosition:
    """Where a transaction is in the ledger: the order no writer can choose."""

    block_number: int
    tx_index: int
    transaction_id: str


@dataclass(frozen=True)
class BlockTransaction:
    """One transaction of a block.

    ``validation_code`` comes from the block's ``TRANSACTIONS_FILTER`` (0, ``VALID``, or why the
    committing peers invalidated it). An invalid transaction still carries its read-write sets:
    check :attr:`is_valid` before treating a write as committed. ``malformed`` is None, or why
    (part of) the envelope did not decode; what did decode is kept.
    """

    position: TxPosition
    header_type: int
    header_type_name: str
    channel_id: str
    timestamp: datetime.datetime | None
    creator_msp_id: str
    creator: bytes
    """The creator's identity bytes (``SerializedIdentity.id_bytes``: its PEM certificate)."""
    validation_code: int
    validation_code_name: str
    chaincode_name: str | None
    endorser_msp_ids: tuple[str, ...]
    namespaces: tuple[NamespaceRWSet, ...]
    malformed: str | None = None
    chaincode_events: tuple[ChaincodeEvent, ...] = ()
    """The chaincode event of each action that set one (one action, one event at most, in
    practice), whatever the validation code: check :attr:`is_valid` before believing it."""

    @property
    def is_valid(self) -> bool:
        """True when the committing peers marked the transaction VALID."""
        return self.validation_code == _VALID

    @property
    def transaction_id(self) -> str:
        return self.position.transaction_id

    @property
    def block_number(self) -> int:
        return self.position.block_number

    @property
    def tx_index(self) -> int:
        return self.position.tx_index

    def namespace(self, name: str) -> NamespaceRWSet | None:
        """The read-write set of namespace ``name``, or None."""
        for namespace in self.namespaces:
            if namespace.namespace == name:
                return namespace
        return None

    def hashed_writes(self, namespace: str, collection: str) -> tuple[HashedWrite, ...]:
        """The hashed writes of ``collection`` in ``namespace`` (empty if none)."""
        found = self.namespace(namespace)
        coll = found.collection(collection) if found else None
        return coll.writes if coll else ()


@dataclass(frozen=True)
class PrivateWrite:
    """A private write in clear, from the private data delivered with a block."""

    key: str
    value: bytes
    is_delete: bool

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.key)

    @property
    def value_hash(self) -> bytes:
        """SHA-256 of the value, or empty for a delete (as Fabric records a delete)."""
        return b"" if self.is_delete else value_hash(self.value)


@dataclass(frozen=True)
class PrivateCollectionData:
    """The private read-write set of one transaction in one collection, delivered in clear.

    ``rwset_hash`` is SHA-256 of the delivered bytes: it must equal the committed
    :attr:`CollectionRWSet.private_rwset_hash`. ``malformed`` says why the bytes did not decode.
    """

    tx_index: int
    namespace: str
    collection: str
    writes: tuple[PrivateWrite, ...]
    rwset_hash: bytes
    malformed: str | None = None


@dataclass(frozen=True)
class Block:
    """A decoded block. ``private_data`` is None when the block came without private data
    (Deliver's ``block`` kind, qscc), else what this client's organization was given."""

    number: int
    previous_hash: bytes
    data_hash: bytes
    transactions: tuple[BlockTransaction, ...]
    private_data: tuple[PrivateCollectionData, ...] | None = None

    @property
    def valid_transactions(self) -> tuple[BlockTransaction, ...]:
        return tuple(tx for tx in self.transactions if tx.is_valid)

    def transaction(self, transaction_id: str) -> BlockTransaction | None:
        """The transaction with that id (the first, should the block hold a duplicate)."""
        for tx in self.transactions:
            if tx.transaction_id == transaction_id:
                return tx
        return None

    def private_data_of(
        self, tx_index: int, namespace: str, collection: str
    ) -> PrivateCollectionData | None:
        """The private data delivered for one transaction and collection, or None."""
        for data in self.private_data or ():
            if (data.tx_index, data.namespace, data.collection) == (
                tx_index,
                namespace,
                collection,
            ):
                return data
        return None


# --- decoding -----------------------------------------------------------------------------


class _Undecodable(Exception):
    """Internal: a part of an envelope that does not parse (the message says which)."""


def _parse(message_type: Any, data: bytes, what: str) -> Any:
    message = message_type()
    try:
        message.ParseFromString(data)
    except Exception as error:
        raise _Undecodable(f"{what} does not parse: {error}") from error
    return message


def _as_message(message_type: Any, message: Any, what: str) -> Any:
    if isinstance(message, bytes | bytearray | memoryview):
        try:
            return _parse(message_type, bytes(message), what)
        except _Undecodable as error:
            raise MalformedMessageError(str(error)) from error
    if not isinstance(message, message_type):
        raise TypeError(f"expected {what} (bytes or message), got {type(message).__name__}")
    return message


def _version(message: Any, present: bool) -> Version | None:
    if not present:
        return None
    return Version(int(message.block_num), int(message.tx_num))


def _entries(entries: Iterable[Any]) -> tuple[tuple[str, bytes], ...]:
    return tuple((str(entry.name), bytes(entry.value)) for entry in entries)


def _collection(message: Any) -> CollectionRWSet:
    name = str(message.collection_name)
    hashed = _parse(kv_rwset_pb2.HashedRWSet, message.hashed_rwset, f"hashed rwset of {name!r}")
    return CollectionRWSet(
        collection=name,
        reads=tuple(
            HashedRead(bytes(r.key_hash), _version(r.version, r.HasField("version")))
            for r in hashed.hashed_reads
        ),
        writes=tuple(
            HashedWrite(
                key_hash=bytes(w.key_hash),
                value_hash=bytes(w.value_hash),
                is_delete=bool(w.is_delete),
                is_purge=bool(w.is_purge),
            )
            for w in hashed.hashed_writes
        ),
        metadata_writes=tuple(
            HashedMetadataWrite(bytes(m.key_hash), _entries(m.entries))
            for m in hashed.metadata_writes
        ),
        private_rwset_hash=bytes(message.pvt_rwset_hash),
    )


def _namespace(message: Any) -> NamespaceRWSet:
    name = str(message.namespace)
    kv = _parse(kv_rwset_pb2.KVRWSet, message.rwset, f"rwset of namespace {name!r}")
    return NamespaceRWSet(
        namespace=name,
        reads=tuple(Read(str(r.key), _version(r.version, r.HasField("version"))) for r in kv.reads),
        writes=tuple(Write(str(w.key), bytes(w.value), bool(w.is_delete)) for w in kv.writes),
        metadata_writes=tuple(
            MetadataWrite(str(m.key), _entries(m.entries)) for m in kv.metadata_writes
        ),
        collections=tuple(_collection(c) for c in message.collection_hashed_rwset),
    )


def _msp_id(serialized_identity: bytes) -> tuple[str, bytes]:
    identity = _parse(identities_pb2.SerializedIdentity, serialized_identity, "identity")
    return str(identity.mspid), bytes(identity.id_bytes)


@dataclass
class _Actions:
    chaincode_name: str | None = None
    endorsers: tuple[str, ...] = ()
    namespaces: tuple[NamespaceRWSet, ...] = ()
    events: tuple[Any, ...] = ()  # peer.ChaincodeEvent messages


def _endorser_actions(data: bytes, found: _Actions, write_sets: bool) -> None:
    """Fill ``found`` action by action, so a failure keeps what decoded before it."""
    transaction = _parse(transaction_pb2.Transaction, data, "transaction")
    for index, action in enumerate(transaction.actions):
        where = f"action {index}"
        payload = _parse(transaction_pb2.ChaincodeActionPayload, action.payload, where)
        endorsed = payload.action
        found.endorsers += tuple(_msp_id(e.endorser)[0] for e in endorsed.endorsements)
        response = _parse(
            proposal_response_pb2.ProposalResponsePayload,
            endorsed.proposal_response_payload,
            f"{where} proposal response payload",
        )
        chaincode_action = _parse(
            proposal_pb2.ChaincodeAction, response.extension, f"{where} chaincode action"
        )
        if found.chaincode_name is None and chaincode_action.chaincode_id.name:
            found.chaincode_name = str(chaincode_action.chaincode_id.name)
        if chaincode_action.events:
            found.events += (_parse(chaincode_event_pb2.ChaincodeEvent, chaincode_action.events,
                                    f"{where} chaincode event"),)
        if not write_sets:
            continue
        rwset = _parse(rwset_pb2.TxReadWriteSet, chaincode_action.results, f"{where} rwset")
        for ns in rwset.ns_rwset:
            found.namespaces += (_namespace(ns),)


def decode_envelope(
    envelope: Any,
    *,
    block_number: int,
    tx_index: int,
    validation_code: int,
    write_sets: bool = True,
) -> BlockTransaction:
    """Decode one transaction envelope (``common.Envelope``, message or bytes).

    Never raises for bad bytes: what does not decode is named in ``malformed``. With
    ``write_sets=False`` the read-write sets are not decoded (``namespaces`` is empty): a
    reader of events alone saves most of the work.
    """
    malformed: str | None = None
    header_type = -1
    channel_id = transaction_id = creator_msp_id = ""
    creator = b""
    timestamp: datetime.datetime | None = None
    actions = _Actions()
    try:
        if isinstance(envelope, bytes | bytearray | memoryview):
            envelope = _parse(common_pb2.Envelope, bytes(envelope), "envelope")
        payload = _parse(common_pb2.Payload, envelope.payload, "payload")
        channel_header = _parse(
            common_pb2.ChannelHeader, payload.header.channel_header, "channel header"
        )
        header_type = int(channel_header.type)
        channel_id = str(channel_header.channel_id)
        transaction_id = str(channel_header.tx_id)
        if channel_header.HasField("timestamp"):
            timestamp = channel_header.timestamp.ToDatetime(tzinfo=datetime.UTC)
        signature_header = _parse(
            common_pb2.SignatureHeader, payload.header.signature_header, "signature header"
        )
        creator_msp_id, creator = _msp_id(signature_header.creator)
        if header_type == _ENDORSER_TRANSACTION:
            _endorser_actions(payload.data, actions, write_sets)
    except _Undecodable as error:
        malformed = str(error)
    return BlockTransaction(
        position=TxPosition(block_number, tx_index, transaction_id),
        header_type=header_type,
        header_type_name=_header_type_name(header_type),
        channel_id=channel_id,
        timestamp=timestamp,
        creator_msp_id=creator_msp_id,
        creator=creator,
        validation_code=validation_code,
        validation_code_name=validation_code_name(validation_code),
        chaincode_name=actions.chaincode_name,
        endorser_msp_ids=actions.endorsers,
        namespaces=actions.namespaces,
        malformed=malformed,
        chaincode_events=tuple(
            ChaincodeEvent(
                block_number=block_number,
                transaction_id=transaction_id,
                chaincode_name=str(event.chaincode_id),
                event_name=str(event.event_name),
                payload=bytes(event.payload),
            )
            for event in actions.events
        ),
    )


def _header_type_name(header_type: int) -> str:
    try:
        return str(common_pb2.HeaderType.Name(header_type))
    except ValueError:
        return f"UNKNOWN_{header_type}"


def decode_block(
    block: Any, private_data: Mapping[int, Any] | None = None, *, write_sets: bool = True
) -> Block:
    """Decode a ``common.Block`` (message or bytes).

    ``private_data`` maps a transaction index to its ``rwset.TxPvtReadWriteSet`` (message or
    bytes), as ``peer.BlockAndPrivateData.private_data_map`` does. ``write_sets=False``
    leaves every transaction's ``namespaces`` empty (see :func:`decode_envelope`). Raises
    :class:`MalformedMessageError` when the block itself does not parse or its transactions
    filter does not cover its transactions; a bad transaction only marks its own record.
    """
    block = _as_message(common_pb2.Block, block, "a common.Block")
    number = int(block.header.number)
    envelopes = list(block.data.data)
    metadata = list(block.metadata.metadata)
    codes = bytes(metadata[_TRANSACTIONS_FILTER]) if len(metadata) > _TRANSACTIONS_FILTER else b""
    if len(codes) != len(envelopes):
        raise MalformedMessageError(
            f"block {number}: its transactions filter has {len(codes)} codes "
            f"for {len(envelopes)} transactions"
        )
    transactions = tuple(
        decode_envelope(data, block_number=number, tx_index=index,
                        validation_code=codes[index], write_sets=write_sets)
        for index, data in enumerate(envelopes)
    )
    decoded_private: tuple[PrivateCollectionData, ...] | None = None
    if private_data is not None:
        decoded_private = tuple(
            item
            for tx_index in sorted(private_data)
            for item in _private_data(number, int(tx_index), private_data[tx_index])
        )
    return Block(
        number=number,
        previous_hash=bytes(block.header.previous_hash),
        data_hash=bytes(block.header.data_hash),
        transactions=transactions,
        private_data=decoded_private,
    )


def decode_block_and_private_data(message: Any) -> Block:
    """Decode a ``peer.BlockAndPrivateData`` (message or bytes), as Deliver sends it."""
    message = _as_message(events_pb2.BlockAndPrivateData, message, "a peer.BlockAndPrivateData")
    return decode_block(message.block, dict(message.private_data_map))


async def decoded_blocks(stream: AsyncIterable[Any]) -> AsyncIterator[Block]:
    """Decode each message of a Deliver stream as it comes: a ``common.Block`` (from
    ``network.block_events()``) or a ``peer.BlockAndPrivateData`` (from
    ``network.block_and_private_data_events()``). A filtered block carries no write sets and
    raises :class:`TypeError`. Closing the stream stays the caller's job (``async with``)."""
    async for message in stream:
        if isinstance(message, events_pb2.BlockAndPrivateData):
            yield decode_block_and_private_data(message)
        else:
            yield decode_block(message)


def _private_data(block_number: int, tx_index: int, tx_rwset: Any) -> list[PrivateCollectionData]:
    if isinstance(tx_rwset, bytes | bytearray | memoryview):
        try:
            tx_rwset = _parse(rwset_pb2.TxPvtReadWriteSet, bytes(tx_rwset), "private rwset")
        except _Undecodable as error:
            raise MalformedMessageError(
                f"block {block_number}: private data of transaction {tx_index}: {error}"
            ) from error
    found: list[PrivateCollectionData] = []
    for ns in tx_rwset.ns_pvt_rwset:
        for coll in ns.collection_pvt_rwset:
            raw = bytes(coll.rwset)
            writes: tuple[PrivateWrite, ...] = ()
            malformed: str | None = None
            try:
                kv = _parse(kv_rwset_pb2.KVRWSet, raw, "private rwset")
                writes = tuple(
                    PrivateWrite(str(w.key), bytes(w.value), bool(w.is_delete)) for w in kv.writes
                )
            except _Undecodable as error:
                malformed = str(error)
            found.append(
                PrivateCollectionData(
                    tx_index=tx_index,
                    namespace=str(ns.namespace),
                    collection=str(coll.collection_name),
                    writes=writes,
                    rwset_hash=hashlib.sha256(raw).digest(),
                    malformed=malformed,
                )
            )
    return found
