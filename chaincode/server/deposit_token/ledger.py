"""Per-transaction ledger access: cached point reads, buffered salted writes, guarded scans.

Owns: how the contract talks to the stub. One :class:`Ledger` serves one transaction:

* point reads are cached, and a key this transaction has already changed reads as its
  changed value (Fabric's simulator has no read-your-writes; the contract never relies on it);
* writes are buffered and sent at :meth:`Ledger.flush`, after every check has passed, so a
  refused transaction sends no write at all ("errors leave state untouched");
* every private value is written through :func:`deposit_token.records.encode` with a salt
  ``HMAC(org secret, tx id, collection, key)``;
* the Fabric rule on private queries is enforced here, before the peer does: a transaction
  that ran a range scan may not write, and one that wrote may not scan (DESIGN §8);
* a record another bank wrote is read with :meth:`Ledger.get_bound`, which binds it to its
  place (:mod:`deposit_token.placement`) and answers an :class:`~deposit_token.placement.Anomaly`
  instead of raising when it does not decode or disagrees with where it lives;
* with a :class:`~deposit_token.routing.Router` (the namespace layout), each collection is
  reached where it lives: the transaction's own namespace directly, a pair namespace through
  its storage chaincode (:class:`~deposit_token.routing.PairStorage`: one call per multi-key
  read, one call per namespace for every buffered write at :meth:`Ledger.flush`). Callers
  keep naming collections; nothing else changes for them.

Must not: decide anything about money (that is :mod:`deposit_token.rules`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from dtoken_wire.codec import canonical_json

from .errors import InternalError
from .keys import Deriver
from .placement import PINNED, Anomaly, Place, bind, unpinned
from .records import Record, decode, encode
from .routing import PairStorage, Router

__all__ = ["KeyValue", "Ledger", "LedgerStub", "QueryOrderError"]

_R = TypeVar("_R", bound=Record)


class KeyValue(Protocol):
    """One result of a range query (``fabshim.iterators.KV``)."""

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> bytes: ...


class RangeIterator(Protocol):
    """An async iterator of range results with ``aclose``."""

    def __aiter__(self) -> AsyncIterator[KeyValue]: ...
    async def aclose(self) -> None: ...


class LedgerStub(Protocol):
    """The part of ``fabshim.interfaces.Stub`` the contract uses."""

    async def get_state(self, key: str) -> bytes | None: ...
    async def put_state(self, key: str, value: bytes) -> None: ...
    async def get_private_data(self, collection: str, key: str) -> bytes | None: ...
    async def get_multiple_private_data(
        self, collection: str, keys: Sequence[str]
    ) -> list[bytes | None]: ...
    async def put_private_data(self, collection: str, key: str, value: bytes) -> None: ...
    async def del_private_data(self, collection: str, key: str) -> None: ...
    async def set_private_data_validation_parameter(
        self, collection: str, key: str, policy: bytes
    ) -> None: ...
    async def get_private_data_validation_parameter(
        self, collection: str, key: str
    ) -> bytes | None: ...
    async def get_private_data_hash(self, collection: str, key: str) -> bytes | None: ...
    async def get_private_data_by_range(
        self, collection: str, start_key: str, end_key: str
    ) -> Any: ...
    def set_event(self, name: str, payload: bytes) -> None: ...
    async def invoke_chaincode(self, name: str, args: Sequence[bytes | str],
                               channel: str = "") -> Any: ...


class QueryOrderError(InternalError):
    """The contract tried to write after a private range scan, or to scan after a write."""


@dataclass
class _Pending:
    record: Record | None  # None: delete
    public: bytes | None = None
    pin: bytes | None = None  # a validation parameter set with the write
    salt: str | None = None  # given: a write several organizations endorse (same bytes)


_PUBLIC = ""  # the "collection" of public state in the cache


class Ledger:
    """One transaction's view of the ledger (see the module docstring)."""

    def __init__(
        self, stub: LedgerStub, tx_id: str, deriver: Deriver | None,
        router: Router | None = None,
    ) -> None:
        self._stub = stub
        self._router = router
        self._storages: dict[str, PairStorage] = {}
        self._tx_id = tx_id
        self._deriver = deriver
        self._public: dict[str, bytes | None] = {}
        self._raw: dict[tuple[str, str], bytes | None] = {}  # private bytes as read
        self._decoded: dict[tuple[str, str], object] = {}  # records decoded from them
        self._params: dict[tuple[str, str], bytes | None] = {}  # validation parameters read
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._scanned = False
        self._flushed = False
        self._event: tuple[str, bytes] | None = None

    @property
    def tx_id(self) -> str:
        """The transaction id."""
        return self._tx_id

    @property
    def namespaced(self) -> bool:
        """Whether collections are routed by the namespace layout (docs/architecture.md)."""
        return self._router is not None

    @property
    def storage_calls(self) -> int:
        """Chaincode-to-chaincode calls made to pair storage so far (0 without a layout)."""
        return sum(s.calls for s in self._storages.values())

    def _storage(self, collection: str) -> PairStorage | None:
        """The pair storage holding ``collection``, or None where it is this namespace's."""
        if self._router is None:
            return None
        ns = self._router.remote(collection)
        if ns is None:
            return None
        if ns not in self._storages:
            self._storages[ns] = PairStorage(self._stub, ns)
        return self._storages[ns]

    def _reader(self, collection: str) -> LedgerStub | PairStorage:
        return self._storage(collection) or self._stub

    # ---------------------------------------------------------------- reads

    async def get_public(self, key: str) -> bytes | None:
        """A public value (registry, token definitions)."""
        pend = self._pending.get((_PUBLIC, key))
        if pend is not None:
            return pend.public
        if key not in self._public:
            self._public[key] = await self._stub.get_state(key)
        return self._public[key]

    async def committed_hash(self, collection: str, key: str) -> bytes | None:
        """The committed hash of a private key's value (the peer's hashed state: what the
        block committed, whatever value this peer holds), or None if the key does not exist."""
        return await self._reader(collection).get_private_data_hash(collection, key)

    async def get(self, kind: type[_R], collection: str, key: str) -> _R | None:
        """A private record by point read (its key hash and version enter the read set).

        For the bank's own records: bytes that do not decode raise ``CORRUPT_STATE``.
        """
        ck = (collection, key)
        pend = self._pending.get(ck)
        if pend is not None:
            return self._as(kind, pend.record)
        if ck not in self._raw:
            self._raw[ck] = await self._reader(collection).get_private_data(collection, key)
        if ck not in self._decoded:
            raw = self._raw[ck]
            self._decoded[ck] = None if raw is None else decode(kind, raw)
        return self._as(kind, self._decoded[ck])

    async def get_bound(self, kind: type[_R], place: Place, key: str) -> _R | Anomaly | None:
        """A record another bank relies on, by point read, bound to ``place``: the record if it
        decodes and agrees with where it lives, else the :class:`Anomaly` (never raises on
        what was stored), ``None`` if the key is absent."""
        ck = (place.collection, key)
        pend = self._pending.get(ck)
        if pend is not None:
            return self._as(kind, pend.record)
        if ck not in self._raw:
            self._raw[ck] = await self._reader(place.collection).get_private_data(
                place.collection, key)
        raw = self._raw[ck]
        if raw is None:
            return None
        found = bind(kind, place, key, raw)
        if isinstance(found, Anomaly):
            return found
        if not await self.pinned(kind, place, key):
            return unpinned(place, key)
        self._decoded[ck] = found
        return found

    def value_hash(self, collection: str, key: str) -> str | None:
        """SHA-256 (hex) of the exact bytes this transaction read under ``key``: what the
        block's hashed write set holds for the transaction that wrote them (``None`` if the
        key was not read, or absent)."""
        raw = self._raw.get((collection, key))
        return None if raw is None else hashlib.sha256(raw).hexdigest()

    async def pinned(self, kind: type[Record], place: Place, key: str) -> bool:
        """Whether a record of ``kind`` under ``key`` carries the validation parameter its
        place requires, byte for byte (always true where none is required). The read puts
        the key's version in the read set, as the value's read does."""
        if place.pin is None or kind not in PINNED:
            return True
        return await self.parameter(place.collection, key) == place.pin

    async def parameter(self, collection: str, key: str) -> bytes | None:
        """A private key's committed validation parameter (``None``: none). The read puts the
        key's version in the read set, as the value's read does."""
        ck = (collection, key)
        if ck not in self._params:
            self._params[ck] = await self._reader(
                collection).get_private_data_validation_parameter(collection, key)
        return self._params[ck]

    async def get_many(
        self, kind: type[_R], collection: str, keys: Sequence[str]
    ) -> list[_R | None]:
        """Several point reads in one round trip (``GET_STATE_MULTIPLE`` when offered)."""
        await self.prefetch(collection, dict.fromkeys(keys, kind))
        return [await self.get(kind, collection, k) for k in keys]

    async def get_many_bound(
        self, kind: type[_R], place: Place, keys: Sequence[str]
    ) -> list[_R | Anomaly | None]:
        """:meth:`get_bound` of several keys in one round trip."""
        await self.prefetch(place.collection, dict.fromkeys(keys, kind))
        return [await self.get_bound(kind, place, k) for k in keys]

    async def prefetch(self, collection: str, keys: Mapping[str, type[Record]]) -> None:
        """Read several keys of one collection in one round trip into the cache.

        ``keys`` maps each key to the record class it holds. Keys already read or written
        by this transaction are skipped. The read set is what the same point reads with
        :meth:`get` would make; later :meth:`get` calls of these keys cost nothing. Nothing
        is decoded here: a record is decoded (and refused, or bound) when it is asked for.
        """
        missing = [
            k for k in keys
            if (collection, k) not in self._raw and (collection, k) not in self._pending
        ]  # fmt: skip
        if not missing:
            return
        raws = await self._reader(collection).get_multiple_private_data(collection, missing)
        for k, raw in zip(missing, raws, strict=True):
            self._raw[(collection, k)] = raw

    @staticmethod
    def _as(kind: type[_R], value: object) -> _R | None:
        if value is None:
            return None
        if not isinstance(value, kind):
            raise InternalError("a key was read as two different record types")
        return value

    async def scan(
        self, collection: str, start: str, end: str, limit: int
    ) -> list[tuple[str, bytes]]:
        """Up to ``limit`` entries of ``[start, end)``: a read-only transaction's range query.

        After this, the transaction may not write (Fabric refuses it); before it, nothing may
        have been written.
        """
        if self._pending or self._flushed:
            raise QueryOrderError("a range query after a write")
        self._scanned = True
        out: list[tuple[str, bytes]] = []
        if limit <= 0:
            return out
        storage = self._storage(collection)
        if storage is not None:
            iterator: Any = await storage.get_private_data_by_range(collection, start, end,
                                                                    limit)
        else:
            iterator = await self._stub.get_private_data_by_range(collection, start, end)
        try:
            async for kv in iterator:
                out.append((kv.key, kv.value))
                # what a scan read is what this read-only transaction saw of the key
                self._raw.setdefault((collection, kv.key), kv.value)
                if len(out) >= limit:
                    break
        finally:
            await iterator.aclose()
        return out

    # ---------------------------------------------------------------- writes

    def _check_writable(self) -> None:
        if self._scanned:
            raise QueryOrderError("a write after a range query")
        if self._flushed:
            raise InternalError("a write after the flush")

    def put(self, collection: str, key: str, record: Record, *, pin: bytes | None = None,
            salt: str | None = None) -> None:
        """Buffer a private write (sent, salted, at :meth:`flush`); with ``pin``, the key's
        validation parameter is set in the same transaction (the collection's policy governs
        a key without one, so its writer alone can create and pin it). ``salt`` is given only
        for a write two organizations' peers endorse: each derives its own salt from its own
        secret otherwise, and their write sets would differ."""
        self._check_writable()
        if self._deriver is None and salt is None:
            raise InternalError("no organization secret to salt a write")
        if pin is None and type(record) in PINNED:
            raise InternalError(f"a {record.TYPE} record is written with its pin")
        self._pending[(collection, key)] = _Pending(record, pin=pin, salt=salt)

    def delete(self, collection: str, key: str) -> None:
        """Buffer a private delete."""
        self._check_writable()
        self._pending[(collection, key)] = _Pending(None)

    def put_public(self, key: str, value: bytes) -> None:
        """Buffer a public write (only ``init_network`` makes one)."""
        self._check_writable()
        self._pending[(_PUBLIC, key)] = _Pending(None, public=value)

    def set_event(self, name: str, payload: Mapping[str, object]) -> None:
        """The transaction's event (one per transaction; sent at :meth:`flush`)."""
        self._check_writable()
        self._event = (name, canonical_json(payload))

    def _salt(self, collection: str, key: str, pend: _Pending) -> str:
        if pend.salt is not None:
            return pend.salt
        assert self._deriver is not None
        return self._deriver.salt(self._tx_id, collection, key)

    @property
    def writes(self) -> int:
        """Number of buffered writes."""
        return len(self._pending)

    async def flush(self) -> None:
        """Send every buffered write (in the order first made) and the event."""
        if self._flushed:
            raise InternalError("the ledger was flushed twice")
        self._flushed = True
        stub = self._stub
        local: list[tuple[tuple[str, str], _Pending]] = []
        remote: dict[str, list[tuple[str, str, bytes | None, bytes | None]]] = {}
        for (collection, key), pend in self._pending.items():
            storage = None if collection == _PUBLIC else self._storage(collection)
            if storage is None:
                local.append(((collection, key), pend))
                continue
            value = None
            if pend.record is not None:
                value = encode(pend.record, self._salt(collection, key, pend))
            remote.setdefault(storage.namespace, []).append((collection, key, value, pend.pin))
        start = getattr(stub, "start_write_batch", None)
        finish = getattr(stub, "finish_write_batch", None)
        if start is not None and finish is not None and local:
            start()
        for (collection, key), pend in local:
            if collection == _PUBLIC:
                assert pend.public is not None
                await stub.put_state(key, pend.public)
            elif pend.record is None:
                await stub.del_private_data(collection, key)
            else:
                salt = self._salt(collection, key, pend)
                await stub.put_private_data(collection, key, encode(pend.record, salt))
                if pend.pin is not None:
                    await stub.set_private_data_validation_parameter(collection, key, pend.pin)
        if start is not None and finish is not None and local:
            await finish()
        for namespace, ops in remote.items():
            # one call per pair namespace; a failure raises, so the transaction fails
            await self._storages[namespace].write(ops)
        if self._event is not None:
            stub.set_event(*self._event)
