"""Chaincode events of several chaincodes, read from one stream of full blocks.

A peer's Gateway ``ChaincodeEvents`` serves the events of *one* chaincode name. A client that
must follow the events of several (one application spread over several namespaces, where a
transaction's top level may be any of them) would need one stream per name, each with its own
checkpoint. This module reads one stream of full blocks (``Deliver``, which any channel member
may read) instead and takes from it what ``ChaincodeEvents`` would have given for each name,
in ledger order, as the same :class:`~fabgateway.events.ChaincodeEvent` records:

* only transactions the block's ``TRANSACTIONS_FILTER`` marks VALID count (an invalid
  transaction's event is never delivered), and only endorser transactions carry events (a
  configuration block yields nothing);
* an event is taken when its ``chaincode_id`` (the transaction's top-level chaincode, which
  the endorsing peer writes) is one of the wanted names;
* resuming is exact: from a checkpoint ``(block, transaction id)`` the stream starts at that
  block and drops the events of that transaction and of the transactions before it in the
  block; the events after it are delivered. If the block does not hold that transaction,
  nothing of the block is dropped (an event is never skipped on a guess). A checkpointer
  advanced with ``checkpoint_chaincode_event(event)`` after each event works unchanged.

What it must not do: know any chaincode or what an event means; deliver an event of an
invalid transaction; swallow a block that does not decode (that raises
:class:`~fabgateway.errors.MalformedMessageError`: the peer sent something that is not a
block, which a caller must not mistake for a quiet ledger).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Collection
from typing import Any, Protocol

from fabgateway.blocks import Block, decode_block
from fabgateway.events import ChaincodeEvent, ClosingIterator, after_index

__all__ = [
    "BlockChaincodeEventStream",
    "ChaincodeNames",
    "chaincode_events_in_block",
    "wanted_chaincodes",
]

ChaincodeNames = Collection[str] | Callable[[str], bool]
"""Which chaincodes' events to take: a collection of names, or a test of a name (for names
that follow a rule, such as every namespace of an application, including ones defined after
the stream started)."""


class _BlockSource(Protocol):
    """A stream of blocks (``common.Block`` messages or bytes) that can be closed."""

    async def __anext__(self) -> Any: ...

    async def aclose(self) -> None: ...


def wanted_chaincodes(names: ChaincodeNames) -> Callable[[str], bool]:
    """The test of a chaincode name that ``names`` describes.

    Raises ``TypeError`` for a single string (a common slip for a one-name collection, which
    would otherwise test single characters) and ``ValueError`` for an empty collection (a
    stream that can never deliver anything is a mistake, not a choice).
    """
    if isinstance(names, str | bytes):
        raise TypeError("chaincode names must be a collection of names or a test, not one string")
    if callable(names):
        return names
    chosen = frozenset(names)
    if not chosen:
        raise ValueError("no chaincode names given: the stream would deliver nothing")
    if not all(isinstance(name, str) and name for name in chosen):
        raise TypeError("every chaincode name must be a non-empty string")
    return chosen.__contains__


def chaincode_events_in_block(
    block: Block, wanted: ChaincodeNames, *, after_transaction_id: str | None = None
) -> list[ChaincodeEvent]:
    """The events of ``block``'s valid transactions whose chaincode is ``wanted``, in block
    order; with ``after_transaction_id``, only those of the transactions after it (all of
    them if the block does not hold it)."""
    test = wanted_chaincodes(wanted)
    transactions = block.transactions
    if after_transaction_id is not None:
        ids = [tx.transaction_id for tx in transactions]
        transactions = transactions[after_index(ids, after_transaction_id) :]
    return [
        event
        for tx in transactions
        if tx.is_valid
        for event in tx.chaincode_events
        if test(event.chaincode_name)
    ]


class BlockChaincodeEventStream(ClosingIterator):
    """The chaincode events of the wanted chaincodes, in ledger order, from a block stream.

    An async iterator (and async context manager) like
    :class:`~fabgateway.events.ChaincodeEventStream`: close it with ``aclose()`` or ``async
    with``. ``after`` is the checkpoint to resume from: ``(block number, transaction id)``;
    the stream of blocks must start at that block (:meth:`fabgateway.Network.
    block_chaincode_events` makes both agree).

    Reading is as safe to abandon as the block stream's own: a consumer that stops waiting
    (a timeout, a cancelled task) loses nothing, because a block is turned into its events
    with no ``await`` in between, and the block stream keeps an unfinished read for the next
    call.
    """

    def __init__(
        self,
        blocks: _BlockSource,
        wanted: ChaincodeNames,
        *,
        after: tuple[int, str] | None = None,
    ) -> None:
        self._blocks = blocks
        self._wanted = wanted_chaincodes(wanted)
        self._after = after
        self._pending: collections.deque[ChaincodeEvent] = collections.deque()

    async def aclose(self) -> None:
        """Stop the stream (closes the block stream)."""
        self._pending.clear()
        await self._blocks.aclose()

    async def __anext__(self) -> ChaincodeEvent:
        while not self._pending:
            message = await anext(self._blocks)  # StopAsyncIteration ends this stream too
            block = decode_block(message, write_sets=False)  # events only: write sets unread
            after = None
            if self._after is not None:
                number, transaction_id = self._after
                self._after = None
                if block.number == number:
                    after = transaction_id
            self._pending.extend(
                chaincode_events_in_block(block, self._wanted, after_transaction_id=after)
            )
        return self._pending.popleft()
