"""Questions answered from decoded blocks: who first wrote a value, and does the private data
delivered with a block match what was committed.

What it owns: :func:`first_valid_writer` (the position, in ledger order, of the first VALID
transaction whose hashed write set holds a key with exactly a given value: an order that no
writer can choose, unlike any id a writer puts in its record) and
:func:`private_data_mismatches` (each private value delivered with a block hashed and compared
with the committed hash; values missing, unexpected or not matching).

What it must not do: re-serialize a value before hashing it (the hash is of the exact bytes
stored); count a write of an invalid transaction; read any chaincode's records.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, Collection, Iterable
from dataclasses import dataclass

from fabgateway.blocks import (
    Block,
    BlockTransaction,
    PrivateCollectionData,
    TxPosition,
    key_hash,
    value_hash,
)

__all__ = [
    "PrivateDataMismatch",
    "PrivateDataProblem",
    "first_valid_writer",
    "first_valid_writer_async",
    "first_valid_writer_of_hash_async",
    "private_data_mismatches",
    "purged_keys",
    "valid_writer_in",
    "valid_writer_of_hash",
]


def _matches(
    tx: BlockTransaction, namespace: str, collection: str, wanted_key: bytes, wanted_value: bytes
) -> bool:
    return any(
        write.key_hash == wanted_key and not write.is_delete and write.value_hash == wanted_value
        for write in tx.hashed_writes(namespace, collection)
    )


def valid_writer_in(
    block: Block, namespace: str, collection: str, key: str, value: bytes
) -> TxPosition | None:
    """The first VALID transaction of ``block`` that wrote ``value`` under ``key``, or None."""
    return valid_writer_of_hash(block, namespace, collection, key, value_hash(value))


def valid_writer_of_hash(
    block: Block, namespace: str, collection: str, key: str, hashed_value: bytes
) -> TxPosition | None:
    """:func:`valid_writer_in` for a caller that holds only the SHA-256 of the stored bytes
    (a chaincode's answer, say), not the bytes."""
    wanted_key = key_hash(key)
    for tx in block.transactions:
        if tx.is_valid and _matches(tx, namespace, collection, wanted_key, hashed_value):
            return tx.position
    return None


def first_valid_writer(
    blocks: Iterable[Block], namespace: str, collection: str, key: str, value: bytes
) -> TxPosition | None:
    """The position of the first VALID transaction that wrote exactly ``value`` under ``key``
    in ``collection`` of ``namespace``, or None if none of ``blocks`` holds one.

    ``blocks`` must be in ledger order (as Deliver sends them). ``value`` is the exact stored
    bytes: its SHA-256 is compared with the committed value hash, never a re-encoding of it.
    A delete or purge of the key is not a write of a value and never matches.
    """
    for block in blocks:
        found = valid_writer_in(block, namespace, collection, key, value)
        if found is not None:
            return found
    return None


async def first_valid_writer_async(
    blocks: AsyncIterable[Block],
    namespace: str,
    collection: str,
    key: str,
    value: bytes,
    *,
    last_block: int | None = None,
) -> TxPosition | None:
    """:func:`first_valid_writer` over an async stream of blocks (a Deliver stream mapped
    through :func:`fabgateway.blocks.decode_block`). It stops at the first match, or after
    block ``last_block`` (give it for a stream that never ends: e.g. the chain height less
    one, from ``LedgerQueries.get_chain_info()``), or when the stream ends.
    """
    return await first_valid_writer_of_hash_async(
        blocks, namespace, collection, key, value_hash(value), last_block=last_block)


async def first_valid_writer_of_hash_async(
    blocks: AsyncIterable[Block],
    namespace: str,
    collection: str,
    key: str,
    hashed_value: bytes,
    *,
    last_block: int | None = None,
) -> TxPosition | None:
    """:func:`first_valid_writer_async` for a caller that holds only the SHA-256 of the
    stored bytes."""
    async for block in blocks:
        found = valid_writer_of_hash(block, namespace, collection, key, hashed_value)
        if found is not None:
            return found
        if last_block is not None and block.number >= last_block:
            return None
    return None


class PrivateDataProblem(enum.Enum):
    """How the private data delivered with a block disagrees with the committed hashes."""

    MISSING = "missing"
    """A VALID transaction wrote the key in a collection the caller must hold; no value came
    (and the key was not purged since)."""
    VALUE_MISMATCH = "value_mismatch"
    """The delivered value (or delete) does not hash to the committed value hash."""
    UNEXPECTED = "unexpected"
    """A value came for a key that the committed hashed write set does not write."""
    RWSET_MISMATCH = "rwset_mismatch"
    """The delivered read-write set bytes do not hash to the committed ``pvt_rwset_hash`` (or
    the transaction wrote nothing in that collection)."""
    MALFORMED = "malformed"
    """The delivered read-write set does not decode."""


@dataclass(frozen=True)
class PrivateDataMismatch:
    """One disagreement; ``key`` is known when a value was delivered for it."""

    problem: PrivateDataProblem
    position: TxPosition
    namespace: str
    collection: str
    key_hash: bytes
    key: str | None = None


def purged_keys(blocks: Iterable[Block]) -> frozenset[tuple[str, str, bytes]]:
    """The ``(namespace, collection, key_hash)`` of every key a VALID transaction of ``blocks``
    purged: a purge erases, on every peer, the values of all earlier writes of that key."""
    return frozenset(
        (ns.namespace, coll.collection, write.key_hash)
        for block in blocks
        for tx in block.transactions
        if tx.is_valid
        for ns in tx.namespaces
        for coll in ns.collections
        for write in coll.writes
        if write.is_purge
    )


def private_data_mismatches(
    block: Block,
    *,
    collections: Collection[tuple[str, str]],
    purged: Collection[tuple[str, str, bytes]] = frozenset(),
) -> list[PrivateDataMismatch]:
    """Check the private data delivered with ``block`` against its committed hashes.

    ``collections`` are the ``(namespace, collection)`` pairs whose private data the caller's
    peer must hold: a committed write there with no delivered value is ``MISSING``; elsewhere
    only what was delivered is checked. ``purged`` are the keys purged since (see
    :func:`purged_keys` over the blocks up to the height the caller trusts): their values are
    erased on every peer by design, so they are never missing, and a read-write set that held
    one can no longer be checked against its hash. A purge itself never leaves a value.

    Only VALID transactions are checked: a peer may deliver the private data of an invalid
    transaction too, but it never reached the state. Raises :class:`ValueError` for a block
    decoded without private data.
    """
    if block.private_data is None:
        raise ValueError(f"block {block.number} was decoded without its private data")
    erased = set(purged)
    wanted = set(collections)
    delivered = {(d.tx_index, d.namespace, d.collection): d for d in block.private_data}
    found: list[PrivateDataMismatch] = []
    for tx in block.transactions:
        if not tx.is_valid:
            continue
        for (tx_index, namespace, collection), data in delivered.items():
            if tx_index == tx.tx_index:
                found.extend(
                    PrivateDataMismatch(problem, tx.position, namespace, collection, hashed, key)
                    for problem, hashed, key in _delivered_problems(tx, data, erased)
                )
        for ns in tx.namespaces:
            for coll in ns.collections:
                if (ns.namespace, coll.collection) not in wanted:
                    continue
                held = delivered.get((tx.tx_index, ns.namespace, coll.collection))
                present = {w.key_hash for w in held.writes} if held else set()
                found.extend(
                    PrivateDataMismatch(
                        PrivateDataProblem.MISSING,
                        tx.position,
                        ns.namespace,
                        coll.collection,
                        write.key_hash,
                    )
                    for write in coll.writes
                    if not write.is_purge
                    and write.key_hash not in present
                    and (ns.namespace, coll.collection, write.key_hash) not in erased
                )
    return found


def _delivered_problems(
    tx: BlockTransaction, data: PrivateCollectionData, erased: set[tuple[str, str, bytes]]
) -> list[tuple[PrivateDataProblem, bytes, str | None]]:
    """What is wrong with the private data delivered for one transaction and collection."""
    if data.malformed is not None:
        return [(PrivateDataProblem.MALFORMED, b"", None)]
    ns = tx.namespace(data.namespace)
    committed = ns.collection(data.collection) if ns else None
    if committed is None:
        return [(PrivateDataProblem.RWSET_MISMATCH, b"", None)]
    problems: list[tuple[PrivateDataProblem, bytes, str | None]] = []
    partly_erased = any(
        w.is_purge or (data.namespace, data.collection, w.key_hash) in erased
        for w in committed.writes
    )
    if not partly_erased and committed.private_rwset_hash != data.rwset_hash:
        problems.append((PrivateDataProblem.RWSET_MISMATCH, b"", None))
    writes = {w.key_hash: w for w in committed.writes}
    for write in data.writes:
        hashed = writes.get(write.key_hash)
        if hashed is None:
            problems.append((PrivateDataProblem.UNEXPECTED, write.key_hash, write.key))
        elif write.is_delete != hashed.is_delete or write.value_hash != hashed.value_hash:
            problems.append((PrivateDataProblem.VALUE_MISMATCH, write.key_hash, write.key))
    return problems
