"""``MemoryLedger`` and ``MemoryStub``: the stub API over dicts, with Fabric's rules.

One file of ~800 lines on purpose: the two classes are one model. :class:`MemoryStub` is the
in-memory twin of :class:`fabshim.stub.ChaincodeStub` (the same method groups, in the same
order, so the two read side by side), and it writes into :class:`MemoryLedger`'s private
tables, whose commit rules (MVCC, key-level endorsement, private-data hashes) it must see."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from .. import _protos as pb
from ..errors import (
    EndorsementPolicyFailureError,
    InvalidArgumentError,
    InvokeChaincodeError,
    MVCCReadConflictError,
    PeerError,
    ShimError,
)
from ..interfaces import Chaincode
from ..iterators import (
    KV,
    HistoryQueryIterator,
    KeyModification,
    Page,
    QueryIterator,
    QueryResponseMetadata,
    StateQueryIterator,
)
from ..keys import (
    COMPOSITE_KEY_NAMESPACE,
    MAX_UNICODE_RUNE,
    create_composite_key,
    partial_key_range,
    range_keys,
    split_composite_key,
    validate_collection,
    validate_key,
)
from ..response import ERROR_THRESHOLD, Response
from ..response import error as error_response
from ..statebased import RoleType, parse_policy
from ..stub import VALIDATION_PARAMETER, ProposalView, _Proposal
from ._identities import serialize_identity
from ._proposal import build_signed_proposal
from ._query import (
    LEVELDB_RICH_QUERY_ERROR,
    LEVELDB_RICH_QUERY_PAGED_ERROR,
    range_page,
    rich_query_page,
)

if TYPE_CHECKING:
    from ..interfaces import Stub

Version = tuple[int, int]
PUBLIC = ""
T = TypeVar("T")


@dataclass(slots=True)
class _Entry:
    value: bytes
    version: Version
    metadata: dict[str, bytes] = field(default_factory=dict)
    committed_hash: bytes | None = None  # set by ``hold_stale_private_data`` only


@dataclass(frozen=True, slots=True)
class ChaincodeEventRecord:
    """An event a committed transaction set."""

    tx_id: str
    name: str
    payload: bytes


class MemoryLedger:
    """Committed state shared by successive ``MemoryStub`` transactions.

    Holds public state and private collections with versions, public key history, key
    metadata (validation parameters), committed events and the chaincodes reachable with
    ``invoke_chaincode``. Each commit is one block. ``state_database`` is ``"leveldb"``
    (rich queries refused, as on our peers) or ``"couchdb"`` (a Mango subset).
    """

    def __init__(
        self,
        *,
        channel_id: str = "testchannel",
        state_database: str = "leveldb",
        query_batch_size: int = 100,
        collection_policies: Mapping[str, bytes] | None = None,
    ) -> None:
        if state_database not in ("leveldb", "couchdb"):
            raise InvalidArgumentError("state_database must be 'leveldb' or 'couchdb'")
        if query_batch_size <= 0:
            raise InvalidArgumentError("query_batch_size must be positive")
        self.channel_id = channel_id
        self.state_database = state_database
        self.query_batch_size = query_batch_size
        self._collections: dict[str, dict[str, _Entry]] = {PUBLIC: {}}
        self._history: dict[str, list[KeyModification]] = {}
        self._height = 0
        self._tx_ids: set[str] = set()
        self._tx_counter = itertools.count(1)
        self.events: list[ChaincodeEventRecord] = []
        self._chaincodes: dict[str, tuple[Chaincode, MemoryLedger]] = {}
        #: collection -> its endorsement policy (a ``SignaturePolicyEnvelope``, n out of
        #: peers): checked, when endorsers are named, for a written key without a parameter
        self.collection_policies: dict[str, bytes] = dict(collection_policies or {})

    # ------------------------------------------------------------------ inspection

    @property
    def height(self) -> int:
        """Blocks committed so far (one per transaction)."""
        return self._height

    def get_state(self, key: str) -> bytes | None:
        """The committed public value of ``key``."""
        entry = self._collections[PUBLIC].get(key)
        return entry.value if entry else None

    def get_private_data(self, collection: str, key: str) -> bytes | None:
        """The committed private value of ``key`` in ``collection``."""
        entry = self._collections.get(collection, {}).get(key)
        return entry.value if entry else None

    def get_metadata(self, collection: str, key: str) -> dict[str, bytes]:
        """The committed metadata of a key (``collection=""`` for public state)."""
        entry = self._collections.get(collection, {}).get(key)
        return dict(entry.metadata) if entry else {}

    def keys(self, collection: str = PUBLIC) -> list[str]:
        """Committed keys of public state or of a collection, sorted."""
        return sorted(self._collections.get(collection, {}))

    def history(self, key: str) -> list[KeyModification]:
        """The committed history of a public key, newest first (as Fabric returns it)."""
        return list(reversed(self._history.get(key, [])))

    def version(self, collection: str, key: str) -> Version | None:
        """The committed version of a key: ``(block, tx)``, or None."""
        entry = self._collections.get(collection, {}).get(key)
        return entry.version if entry else None

    def hold_stale_private_data(self, collection: str, key: str, value: bytes) -> None:
        """Make this peer hold ``value`` for a committed private key while the committed hash
        stays that of the committed value: a peer whose private data a writer withheld (it
        still holds an older value) or tampered with. Reads return ``value``;
        ``get_private_data_hash`` the committed hash, as a Fabric peer's hashed state does."""
        entry = self._collections.get(collection, {}).get(key)
        if entry is None:
            raise InvalidArgumentError(f"{collection}/{key} is not committed")
        if entry.committed_hash is None:
            entry.committed_hash = hashlib.sha256(entry.value).digest()
        entry.value = value

    # ------------------------------------------------------------------ seeding

    def seed(
        self,
        public: Mapping[str, bytes] | None = None,
        private: Mapping[str, Mapping[str, bytes]] | None = None,
    ) -> None:
        """Commit values directly, as one block, without running a chaincode."""
        stub = MemoryStub(self, tx_id=self.new_tx_id())
        for key, value in (public or {}).items():
            stub._write(PUBLIC, key, value)
        for collection, values in (private or {}).items():
            for key, value in values.items():
                stub._write(collection, key, value)
        stub.commit()

    def register_chaincode(
        self, name: str, chaincode: Chaincode, ledger: MemoryLedger | None = None
    ) -> MemoryLedger:
        """Make ``chaincode`` callable with ``invoke_chaincode(name, ...)``; returns its ledger
        (its own namespace: a fresh ``MemoryLedger`` unless one is given)."""
        target = ledger if ledger is not None else MemoryLedger(channel_id=self.channel_id)
        self._chaincodes[name] = (chaincode, target)
        return target

    def new_tx_id(self) -> str:
        """A fresh transaction id (hex SHA-256 of a counter)."""
        return hashlib.sha256(f"memory-tx-{next(self._tx_counter)}".encode()).hexdigest()

    # ------------------------------------------------------------------ running

    def stub(
        self,
        function: str = "",
        args: Sequence[str | bytes] = (),
        *,
        transient: Mapping[str, bytes] | None = None,
        creator: tuple[str, bytes] | None = None,
        tx_id: str | None = None,
        timestamp: datetime | None = None,
        init: bool = False,
        endorsers: Sequence[str] | None = None,
        chaincode_name: str = "chaincode",
    ) -> MemoryStub:
        """A ``MemoryStub`` for one transaction on this ledger (``endorsers``: see
        :class:`MemoryStub`; ``chaincode_name``: the name the proposal invokes)."""
        return MemoryStub(
            self,
            function=function,
            args=args,
            transient=transient,
            creator=creator,
            tx_id=tx_id,
            timestamp=timestamp,
            init=init,
            endorsers=endorsers,
            chaincode_name=chaincode_name,
        )

    async def invoke(
        self,
        chaincode: Chaincode,
        function: str = "",
        *args: str | bytes,
        transient: Mapping[str, bytes] | None = None,
        creator: tuple[str, bytes] | None = None,
        tx_id: str | None = None,
        timestamp: datetime | None = None,
        init: bool = False,
        endorsers: Sequence[str] | None = None,
        chaincode_name: str = "chaincode",
    ) -> Response:
        """Run one submitted transaction: call the chaincode, commit if it succeeded.

        Commits exactly when the response status is below 400, as a peer would endorse
        it; raises ``MVCCReadConflictError`` when the commit finds changed reads, and
        ``EndorsementPolicyFailureError`` when ``endorsers`` (MSP ids whose peers endorsed)
        are named and do not satisfy the key-level policy of a key it changes.
        """
        stub = MemoryStub(
            self,
            function=function,
            args=args,
            transient=transient,
            creator=creator,
            tx_id=tx_id,
            timestamp=timestamp,
            init=init,
            endorsers=endorsers,
            chaincode_name=chaincode_name,
        )
        response = await run_chaincode(chaincode, stub, init=init)
        if not response.is_error:
            stub.commit()
        return response

    async def evaluate(
        self,
        chaincode: Chaincode,
        function: str = "",
        *args: str | bytes,
        transient: Mapping[str, bytes] | None = None,
        creator: tuple[str, bytes] | None = None,
        tx_id: str | None = None,
        timestamp: datetime | None = None,
        chaincode_name: str = "chaincode",
    ) -> Response:
        """Run one evaluated transaction: call the chaincode, never commit."""
        stub = MemoryStub(
            self,
            function=function,
            args=args,
            transient=transient,
            creator=creator,
            tx_id=tx_id,
            timestamp=timestamp,
            chaincode_name=chaincode_name,
        )
        return await run_chaincode(chaincode, stub)

    # ------------------------------------------------------------------ internals

    def _entries(self, collection: str) -> dict[str, _Entry]:
        return self._collections.get(collection, {})

    def _validate(self, stub: MemoryStub) -> None:
        for (collection, key), version in stub._reads.items():
            if self.version(collection, key) != version:
                raise MVCCReadConflictError(
                    f"MVCC_READ_CONFLICT: a key read by transaction {stub.tx_id[:8]} changed"
                )
        if stub._endorsers is not None:
            self._validate_key_policies(stub, stub._endorsers)
        for collection, start, end, seen in stub._range_reads:
            entries = self._entries(collection)
            keys, _ = range_page(entries, start, end, None, "")
            now = [(k, entries[k].version) for k in keys]
            if now != seen:
                raise MVCCReadConflictError(
                    f"PHANTOM_READ_CONFLICT: a range read by transaction {stub.tx_id[:8]} changed"
                )

    def _validate_key_policies(self, stub: MemoryStub, endorsers: tuple[str, ...]) -> None:
        """Every key the transaction writes, deletes, purges or re-pins, and whose committed
        entry has a validation parameter, needs that policy satisfied by the endorsers'
        peers. A parameter written by this same transaction applies from the next one, and
        a key without one falls back to policies this fake does not model."""
        signers = [(msp_id, RoleType.PEER) for msp_id in endorsers]
        for collection, key in sorted({*stub._writes, *stub._metadata_writes}):
            entry = self._entries(collection).get(key)
            parameter = entry.metadata.get(VALIDATION_PARAMETER) if entry else None
            where = f"key {key!r}" + (f" of collection {collection!r}" if collection else "")
            if parameter is None:
                parameter = self.collection_policies.get(collection)
                if parameter is None:
                    continue
                where += " (the collection's policy)"
            try:
                policy = parse_policy(parameter)
            except InvalidArgumentError as exc:
                # Fabric v3.1.1 does not invalidate the transaction: block processing stops
                # on every peer (hyperledger/fabric#3105). Nothing sensible can follow.
                raise ShimError(
                    f"the validation parameter of {where} does not parse ({exc}): on Fabric "
                    "this halts block processing on every peer (hyperledger/fabric#3105)"
                ) from exc
            if not policy.is_satisfied_by(signers):
                raise EndorsementPolicyFailureError(
                    f"ENDORSEMENT_POLICY_FAILURE: transaction {stub.tx_id[:8]} changes {where}, "
                    f"whose policy needs {policy.describe()}; endorsed by "
                    f"{sorted(endorsers)}"
                )

    def _apply(self, stub: MemoryStub, version: Version) -> None:
        when = stub.tx_datetime
        for (collection, key), value in stub._writes.items():
            entries = self._collections.setdefault(collection, {})
            if value is None:
                entries.pop(key, None)
            else:
                previous = entries.get(key)
                metadata = previous.metadata if previous else {}
                entries[key] = _Entry(value, version, metadata)
            if collection == PUBLIC:
                self._history.setdefault(key, []).append(
                    KeyModification(
                        tx_id=stub.tx_id,
                        value=value or b"",
                        timestamp=when,
                        is_delete=value is None,
                    )
                )
        for (collection, key), metadata in stub._metadata_writes.items():
            entry = self._collections.get(collection, {}).get(key)
            if entry is None:
                continue  # Fabric drops metadata written to a key that does not exist
            entry.metadata = dict(metadata)
            entry.version = version
        if stub.event is not None:
            name, payload = stub.event
            self.events.append(ChaincodeEventRecord(stub.tx_id, name, payload))
        self._tx_ids.add(stub.tx_id)

    def _commit(self, stubs: Sequence[MemoryStub]) -> None:
        root = stubs[0]
        if root.tx_id in self._tx_ids:
            raise ShimError(f"DUPLICATE_TXID: transaction {root.tx_id[:8]} already committed")
        for stub in stubs:
            stub._ledger._validate(stub)
        ledgers: dict[int, MemoryLedger] = {}
        for stub in stubs:
            ledgers.setdefault(id(stub._ledger), stub._ledger)
        for ledger in ledgers.values():
            ledger._height += 1
        for stub in stubs:
            ledger = stub._ledger
            ledger._apply(stub, (ledger._height, 0))


async def run_chaincode(chaincode: Chaincode, stub: Stub, *, init: bool = False) -> Response:
    """Call ``init`` or ``invoke`` as the shim does: an exception becomes an error response."""
    try:
        response = await (chaincode.init(stub) if init else chaincode.invoke(stub))
    except Exception as exc:
        return error_response(str(exc) or type(exc).__name__)
    if not isinstance(response, Response):
        return error_response("chaincode returned no Response")
    return response


def _peer_error(request: str, tx_id: str, text: str) -> PeerError:
    # The peer wraps every refusal this way (core/chaincode/handler.go HandleTransaction).
    return PeerError(request, f"{request} failed: transaction ID: {tx_id}: {text}")


class MemoryStub(ProposalView):
    """The ``Stub`` API over a ``MemoryLedger``, for unit tests without a peer.

    Keeps Fabric's rules so contract tests catch what a peer would refuse: reads see the
    committed state only (no read-your-writes); an empty value deletes; private-data
    range/rich queries and paginated queries make the transaction read-only (a write after
    them, or such a query after a write, raises ``PeerError`` with the peer's text); private
    data is refused in ``init``; rich queries are refused on a ``leveldb`` ledger.

    Writes apply only when :meth:`commit` is called (``MemoryLedger.invoke`` commits a
    successful response itself); ``commit`` checks MVCC versions of every key and range read
    (a read of a key's validation parameter counts as a read of the key, as on a peer).

    Endorsement is modelled for key-level policies, and for the collection-level policies
    given to the ledger (``MemoryLedger.collection_policies``), only when ``endorsers`` (the
    MSP ids whose peers endorse) is given: then ``commit`` refuses, with
    ``EndorsementPolicyFailureError``, a write, delete, purge or new validation parameter
    on a key whose committed parameter (else its collection's policy) those peers do not
    satisfy. Chaincode-level policies are not modelled, and neither is who may read or
    write a collection.
    """

    def __init__(
        self,
        ledger: MemoryLedger | None = None,
        *,
        function: str = "",
        args: Sequence[str | bytes] = (),
        transient: Mapping[str, bytes] | None = None,
        creator: tuple[str, bytes] | None = None,
        tx_id: str | None = None,
        channel_id: str | None = None,
        timestamp: datetime | None = None,
        init: bool = False,
        endorsers: Sequence[str] | None = None,
        chaincode_name: str = "chaincode",
    ) -> None:
        self._ledger = ledger if ledger is not None else MemoryLedger()
        if isinstance(endorsers, str):
            raise InvalidArgumentError("endorsers must be a sequence of MSP ids, not a string")
        self._endorsers = None if endorsers is None else tuple(endorsers)
        self._tx_id = tx_id or self._ledger.new_tx_id()
        self._channel_id = channel_id or self._ledger.channel_id
        encoded = [a.encode("utf-8") if isinstance(a, str) else bytes(a) for a in args]
        self._args = ([function.encode("utf-8")] if function else []) + encoded
        when = timestamp or datetime.now(UTC)
        if when.tzinfo is None:
            raise InvalidArgumentError("timestamp must be timezone-aware")
        self._creator_pair = creator
        creator_bytes = serialize_identity(*creator) if creator else b""
        self._signed_proposal = build_signed_proposal(
            channel_id=self._channel_id,
            tx_id=self._tx_id,
            creator=creator_bytes,
            args=self._args,
            transient=transient,
            timestamp=when,
            chaincode_name=chaincode_name,
        )
        self._proposal = _Proposal(self._signed_proposal)
        self._init = init
        self._event: tuple[str, bytes] | None = None
        self._reads: dict[tuple[str, str], Version | None] = {}
        self._range_reads: list[tuple[str, str, str, list[tuple[str, Version]]]] = []
        self._writes: dict[tuple[str, str], bytes | None] = {}
        self._metadata_writes: dict[tuple[str, str], dict[str, bytes]] = {}
        self._write_performed = False
        self._private_query_performed = False
        self._paginated_query_performed = False
        self._children: list[MemoryStub] = []
        self._committed = False

    # ------------------------------------------------------------------ proposal

    @property
    def ledger(self) -> MemoryLedger:
        """The ledger this transaction reads and commits to."""
        return self._ledger

    def get_signed_proposal(self) -> pb.Message:
        return self._signed_proposal

    def get_decorations(self) -> Mapping[str, bytes]:
        return {}

    # ------------------------------------------------------------------ public state

    async def get_state(self, key: str) -> bytes | None:
        return self._read(PUBLIC, key, "GET_STATE")

    async def get_multiple_states(self, keys: Sequence[str]) -> list[bytes | None]:
        return self._read_many(PUBLIC, keys)

    async def put_state(self, key: str, value: bytes) -> None:
        self._check_write("PUT_STATE", PUBLIC, key)
        self._write(PUBLIC, key, value)

    async def del_state(self, key: str) -> None:
        self._check_write("DEL_STATE", PUBLIC, key)
        self._write(PUBLIC, key, b"")

    async def get_state_by_range(self, start_key: str, end_key: str) -> StateQueryIterator:
        start, end = range_keys(start_key, end_key)
        return self._range(PUBLIC, start, end, None, "")[0]

    async def get_state_by_range_with_pagination(
        self, start_key: str, end_key: str, page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        start, end = range_keys(start_key, end_key)
        return self._range(PUBLIC, start, end, _page_size(page_size), bookmark)

    async def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> StateQueryIterator:
        start, end = partial_key_range(object_type, attributes)
        return self._range(PUBLIC, start, end, None, "")[0]

    async def get_state_by_partial_composite_key_with_pagination(
        self, object_type: str, attributes: Sequence[str], page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        start, end = partial_key_range(object_type, attributes)
        return self._range(PUBLIC, start, end, _page_size(page_size), bookmark)

    async def get_all_states_composite_key_with_pagination(
        self, page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        start, end = COMPOSITE_KEY_NAMESPACE, COMPOSITE_KEY_NAMESPACE + MAX_UNICODE_RUNE
        return self._range(PUBLIC, start, end, _page_size(page_size), bookmark)

    def create_composite_key(self, object_type: str, attributes: Sequence[str]) -> str:
        return create_composite_key(object_type, attributes)

    def split_composite_key(self, composite_key: str) -> tuple[str, list[str]]:
        return split_composite_key(composite_key)

    async def get_query_result(self, query: str) -> StateQueryIterator:
        return self._rich(PUBLIC, query, None, "")[0]

    async def get_query_result_with_pagination(
        self, query: str, page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        return self._rich(PUBLIC, query, _page_size(page_size), bookmark)

    async def get_history_for_key(self, key: str) -> HistoryQueryIterator:
        validate_key(key)
        return self._iterator(self._ledger.history(key))

    # ------------------------------------------------------------------ private data

    async def get_private_data(self, collection: str, key: str) -> bytes | None:
        validate_collection(collection)
        return self._read(collection, key, "GET_STATE")

    async def get_multiple_private_data(
        self, collection: str, keys: Sequence[str]
    ) -> list[bytes | None]:
        validate_collection(collection)
        return self._read_many(collection, keys)

    async def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        validate_collection(collection)
        self._check_write("PUT_STATE", collection, key)
        self._write(collection, key, value)

    async def del_private_data(self, collection: str, key: str) -> None:
        validate_collection(collection)
        self._check_write("DEL_STATE", collection, key)
        self._write(collection, key, b"")

    async def purge_private_data(self, collection: str, key: str) -> None:
        validate_collection(collection)
        self._check_write("PURGE_PRIVATE_DATA", collection, key)
        self._write(collection, key, b"")

    async def get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        validate_collection(collection)
        validate_key(key)
        self._check_init("GET_PRIVATE_DATA_HASH")
        entry = self._ledger._entries(collection).get(key)
        self._reads.setdefault((collection, key), entry.version if entry else None)
        if entry is None:
            return None
        return entry.committed_hash or hashlib.sha256(entry.value).digest()

    async def get_private_data_by_range(
        self, collection: str, start_key: str, end_key: str
    ) -> StateQueryIterator:
        validate_collection(collection)
        start, end = range_keys(start_key, end_key)
        return self._range(collection, start, end, None, "")[0]

    async def get_private_data_by_partial_composite_key(
        self, collection: str, object_type: str, attributes: Sequence[str]
    ) -> StateQueryIterator:
        validate_collection(collection)
        start, end = partial_key_range(object_type, attributes)
        return self._range(collection, start, end, None, "")[0]

    async def get_private_data_query_result(
        self, collection: str, query: str
    ) -> StateQueryIterator:
        validate_collection(collection)
        return self._rich(collection, query, None, "")[0]

    # ------------------------------------------------------------ key-level endorsement

    async def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        self._check_write("PUT_STATE_METADATA", PUBLIC, key)
        self._metadata_writes[(PUBLIC, key)] = {VALIDATION_PARAMETER: bytes(policy)}

    async def get_state_validation_parameter(self, key: str) -> bytes | None:
        return self._read_metadata(PUBLIC, key).get(VALIDATION_PARAMETER)

    async def set_private_data_validation_parameter(
        self, collection: str, key: str, policy: bytes
    ) -> None:
        validate_collection(collection)
        self._check_write("PUT_STATE_METADATA", collection, key)
        self._metadata_writes[(collection, key)] = {VALIDATION_PARAMETER: bytes(policy)}

    async def get_private_data_validation_parameter(
        self, collection: str, key: str
    ) -> bytes | None:
        validate_collection(collection)
        self._check_init("GET_STATE_METADATA")
        return self._read_metadata(collection, key).get(VALIDATION_PARAMETER)

    # ------------------------------------------------------------------ events, calls

    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise InvalidArgumentError("event name must be a non-empty string")
        self._event = (name, bytes(payload))

    @property
    def event(self) -> tuple[str, bytes] | None:
        return self._event

    async def invoke_chaincode(
        self, name: str, args: Sequence[bytes | str], channel: str = ""
    ) -> Response:
        if not name:
            raise InvalidArgumentError("chaincode name must be a non-empty string")
        registered = self._ledger._chaincodes.get(name)
        if registered is None:
            raise _peer_error(
                "INVOKE_CHAINCODE", self._tx_id, f"chaincode {name} is not registered"
            )
        chaincode, ledger = registered
        child = MemoryStub(
            ledger,
            args=[a.encode("utf-8") if isinstance(a, str) else bytes(a) for a in args],
            transient=self._proposal.transient,
            creator=self._creator_pair,
            tx_id=self._tx_id,
            channel_id=channel or self._channel_id,
            timestamp=self.tx_datetime,
            endorsers=self._endorsers,
            chaincode_name=self.chaincode_name,  # a callee sees its caller's proposal
        )
        response = await run_chaincode(chaincode, child)
        if response.status >= ERROR_THRESHOLD:
            raise InvokeChaincodeError(name, response.status, response.message, response.payload)
        if not channel or channel == self._channel_id:
            self._children.append(child)  # writes on another channel are discarded
        return response

    @property
    def write_batching(self) -> bool:
        return False

    def start_write_batch(self) -> None:
        """No effect: the memory stub applies nothing before commit anyway."""

    async def finish_write_batch(self) -> None:
        """No effect (see ``start_write_batch``)."""

    # ------------------------------------------------------------------ commit

    @property
    def writes(self) -> dict[tuple[str, str], bytes | None]:
        """Pending writes: ``(collection, key) -> value`` (None deletes; "" is public)."""
        return dict(self._writes)

    def commit(self) -> None:
        """Validate reads (MVCC) and apply this transaction's writes, events and those of
        the chaincodes it called, as one block. A transaction commits at most once."""
        if self._committed:
            raise ShimError("transaction already committed")
        stubs = [self, *self._all_children()]
        self._ledger._commit(stubs)
        self._committed = True

    def _all_children(self) -> list[MemoryStub]:
        out: list[MemoryStub] = []
        for child in self._children:
            out.append(child)
            out.extend(child._all_children())
        return out

    # ------------------------------------------------------------------ internals

    def _check_init(self, request: str) -> None:
        if self._init:
            raise _peer_error(
                request, self._tx_id, "private data APIs are not allowed in chaincode Init()"
            )

    def _check_write(self, request: str, collection: str, key: str) -> None:
        validate_key(key)
        if collection:
            self._check_init(request)
        prefix = f"txid [{self._tx_id}]: unsuppored transaction. "
        if self._private_query_performed:
            raise _peer_error(
                request,
                self._tx_id,
                prefix + "Transaction has already performed queries on pvt data. "
                "Writes are not allowed",
            )
        if self._paginated_query_performed:
            raise _peer_error(
                request,
                self._tx_id,
                prefix + "Transaction has already performed a paginated query. "
                "Writes are not allowed",
            )
        self._write_performed = True

    def _write(self, collection: str, key: str, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise InvalidArgumentError("value must be bytes")
        self._writes[(collection, key)] = bytes(value) or None

    def _read(self, collection: str, key: str, request: str) -> bytes | None:
        validate_key(key)
        if collection:
            self._check_init(request)
        entry = self._ledger._entries(collection).get(key)
        self._reads.setdefault((collection, key), entry.version if entry else None)
        return entry.value if entry else None

    def _read_metadata(self, collection: str, key: str) -> dict[str, bytes]:
        # The peer reads the key's version with its metadata and records it (for private
        # data in the hashed read set), so a change of the key before commit is a conflict.
        validate_key(key)
        entry = self._ledger._entries(collection).get(key)
        self._reads.setdefault((collection, key), entry.version if entry else None)
        return dict(entry.metadata) if entry else {}

    def _read_many(self, collection: str, keys: Sequence[str]) -> list[bytes | None]:
        if isinstance(keys, str):
            raise InvalidArgumentError("keys must be a sequence of strings, not a string")
        return [self._read(collection, key, "GET_STATE_MULTIPLE") for key in keys]

    def _before_read_only_query(self, request: str, paginated: bool) -> None:
        kind = "Paginated queries are" if paginated else "Queries on pvt data is"
        if self._write_performed:
            raise _peer_error(
                request,
                self._tx_id,
                f"txid [{self._tx_id}]: unsuppored transaction. {kind} supported only in a "
                "read-only transaction",
            )
        if paginated:
            self._paginated_query_performed = True
        else:
            self._private_query_performed = True

    def _range(
        self, collection: str, start: str, end: str, page_size: int | None, bookmark: str
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        if collection:
            self._check_init("GET_STATE_BY_RANGE")
            self._before_read_only_query("GET_STATE_BY_RANGE", paginated=False)
        elif page_size is not None:
            self._before_read_only_query("GET_STATE_BY_RANGE", paginated=True)
        entries = self._ledger._entries(collection)
        # Fabric ignores paging on private data: every key in range comes back.
        effective_page = page_size if not collection else None
        keys, next_bookmark = range_page(entries, start, end, effective_page, bookmark)
        if not collection:
            # A page covers [start, next bookmark): a key inserted there is a phantom.
            covered_end = next_bookmark if next_bookmark else end
            seen = [(k, entries[k].version) for k in keys]
            self._range_reads.append((collection, bookmark or start, covered_end, seen))
        results = [KV(key=k, value=entries[k].value, namespace="") for k in keys]
        metadata = QueryResponseMetadata(len(results), next_bookmark)
        return self._iterator(results), metadata

    def _rich(
        self, collection: str, query: str, page_size: int | None, bookmark: str
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        if not query:
            raise InvalidArgumentError("query must be a non-empty string")
        if collection:
            self._check_init("GET_QUERY_RESULT")
            self._before_read_only_query("GET_QUERY_RESULT", paginated=False)
        elif page_size is not None:
            self._before_read_only_query("GET_QUERY_RESULT", paginated=True)
        if self._ledger.state_database == "leveldb":
            text = LEVELDB_RICH_QUERY_PAGED_ERROR if page_size else LEVELDB_RICH_QUERY_ERROR
            raise _peer_error("GET_QUERY_RESULT", self._tx_id, text)
        entries = self._ledger._entries(collection)
        values = {k: e.value for k, e in entries.items()}
        keys, next_bookmark = rich_query_page(values, query, page_size, bookmark)
        results = [KV(key=k, value=entries[k].value, namespace="") for k in keys]
        return self._iterator(results), QueryResponseMetadata(len(results), next_bookmark)

    def _iterator(self, results: Sequence[T]) -> QueryIterator[T]:
        size = self._ledger.query_batch_size
        pages = [list(results[i : i + size]) for i in range(0, len(results), size)] or [[]]
        query_id = f"memory-query-{id(results)}"

        async def fetch_next(_: str) -> Page[T]:
            pages.pop(0)
            return Page(pages[0], len(pages) > 1, query_id)

        async def close(_: str) -> None:
            pages.clear()
            pages.append([])

        return QueryIterator(Page(pages[0], len(pages) > 1, query_id), fetch_next, close)


def _page_size(page_size: int) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size <= 0:
        raise InvalidArgumentError("page_size must be a positive integer")
    return page_size


if TYPE_CHECKING:

    def _conforms(stub: MemoryStub) -> Stub:
        return stub
