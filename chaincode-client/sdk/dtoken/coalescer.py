"""Coalescing: concurrent cross-bank payments from one account become batch transactions.

Why: every debit reads and writes the payer's balance key, so two transactions debiting one
account that are endorsed before either commits cannot both commit (MVCC). Sent one by one,
concurrent payments from one account mostly invalidate each other. Gathered, a block carries
hundreds of them in one debit.

How (docs/sdk.md, "Coalescing"): a **group commit ruled by MVCC**. Per payer account at most
one ``coalesced_payout`` transaction is in flight; payments that arrive meanwhile wait in
that account's queue and are sent together (at most :data:`~dtoken_wire.requests.MAX_BATCH`)
when it commits. Each payment keeps its own reference, its own receipt and its own
exactly-once guarantee: the contract claims each item's reference on its own (the record a
single ``initiate_transfer`` would write), so an item resent in a later batch after an
unknown outcome is recognized there (``DUPLICATE_REFERENCE``) and answered from the
reference record, never applied twice. A business refusal of one item is that caller's
typed error; its neighbours go through.

What a batch's fate means for its items:

* committed: each item's code in the response (``OK``, ``DUPLICATE_REFERENCE`` or a
  refusal);
* conflict, lost reply, unknown outcome, node fault: the items go back to the front of the
  queue and ride in the next batch (an item whose call has run out of time gets the fault:
  it is safe to call again with the same reference);
* found committed already (the same batch, resent after an unknown outcome, is a replay
  whose per-item codes are lost): each item is answered from its reference record, or, if
  it was not applied there (refused), sent alone for its own answer; never resent as the
  same batch, which would only replay again;
* refused as a whole (no item applicable, the payer account does not exist, access): each
  item is answered from its reference record if it was applied before, else sent on its own
  through ``initiate_transfer`` for its own answer (one malformed item cannot sink the
  others);
* committed invalid for a reason retrying cannot cure: every item gets that error.

**Balance lanes** (docs/sdk.md, "Balance lanes"): for a payer account with several lanes, the
queue is per ``(account, lane)`` and each batch debits this process's lane only (``lane_of``
says which), so processes on different lanes never invalidate each other. An item refused
for ``INSUFFICIENT_FUNDS`` or ``LIMIT_EXCEEDED`` by its lane is not refused yet: the coalescer
sends a ``rebalance_lanes`` (value and daily headroom from the account's other lanes into
this one, its own transaction, while no batch of this lane is in flight), first for all such
items of the batch together, then for each alone, and the item rides in the next batch; only
when the rebalance itself is refused (the account as a whole cannot pay it) is the refusal the
item's.

Must not: send a second transaction debiting an account's lane while one is in flight; answer
an item from anything but the ledger (a response, or the reference record).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dtoken_wire import canonical_json
from dtoken_wire import requests as w

from dtoken.errors import (
    CommitFailed,
    ContractError,
    DuplicateReference,
    NetworkFault,
    OutcomeUnknown,
    contract_error,
)
from dtoken.submitter import Receipt, Submitter

__all__ = ["TRANSACTION", "Coalescer"]

_log = logging.getLogger(__name__)

#: The contract transaction a coalesced batch is.
TRANSACTION = "coalesced_payout"

#: Looks up which transaction applied a reference: ``(kind, tx_id, ids)`` or ``None``.
Lookup = Callable[[str], Awaitable[tuple[str, str, tuple[str, ...]] | None]]
#: Sends one item on its own (``initiate_transfer``): the fallback of a batch refused whole.
Single = Callable[[str, w.CoalescedItem], Awaitable[Receipt]]
#: Whether the transfer an applied reference made is this item's (payee, amount ...).
SameRequest = Callable[[w.CoalescedItem], Awaitable[bool]]
#: ``(the lane this client debits, the account's lane count)`` of a payer account.
LaneOf = Callable[[str], Awaitable[tuple[int, int]]]
#: ``rebalance_lanes(account, lane, amount)``: raises the contract's refusal if it cannot.
Rebalance = Callable[[str, int, int], Awaitable[None]]

#: The refusals of a lane that a rebalance may cure (the account's other lanes may have it).
_LANE_SHORT = frozenset({"INSUFFICIENT_FUNDS", "LIMIT_EXCEEDED"})
#: Rebalances tried for the items of a batch refused whole (its per-item codes are lost, so
#: the items may be short on their lane, or refused for good: frozen ...) before they are
#: sent alone for their own answer.
_MAX_REBALANCES = 2


@dataclass
class _Item:
    wire: w.CoalescedItem
    future: asyncio.Future[Receipt]
    deadline: float
    unsure: bool = False
    """A batch carrying this item had an unknown outcome: if the item turns out applied, it
    was this call's own doing (not a replay)."""
    rebalanced: int = 0
    """How many rebalances of its lane were made for this item."""


@dataclass
class _Queue:
    items: list[_Item] = field(default_factory=list)
    runner: asyncio.Task[None] | None = None


class Coalescer:
    """Gathers payments per payer account (see the module doc). One per :class:`Bank`."""

    def __init__(
        self,
        submitter: Submitter,
        msp_id: str,
        *,
        lookup: Lookup,
        single: Single,
        same_request: SameRequest | None = None,
        max_batch: int = w.MAX_BATCH,
        lane_of: LaneOf | None = None,
        rebalance: Rebalance | None = None,
    ) -> None:
        if not 1 <= max_batch <= w.MAX_BATCH:
            raise ValueError(f"max_batch must be 1 to {w.MAX_BATCH}")
        self._submitter = submitter
        self._msp_id = msp_id
        self._lookup = lookup
        self._single = single
        self._same_request = same_request
        self._lane_of = lane_of
        self._rebalance = rebalance
        self.max_batch = max_batch
        self._queues: dict[tuple[str, int], _Queue] = {}
        self.batches = 0
        """How many batch transactions were sent (for tests and benchmarks)."""
        self.rebalances = 0
        """How many lane rebalances were sent (for tests and benchmarks)."""

    async def pay(self, payer_account: str, item: w.CoalescedItem) -> Receipt:
        """Apply ``item`` once, debiting ``payer_account``; its receipt, or its refusal."""
        loop = asyncio.get_running_loop()
        entry = _Item(item, loop.create_future(),
                      time.monotonic() + self._submitter.policy.outcome_timeout)
        lane, count = (0, 1) if self._lane_of is None else await self._lane_of(payer_account)
        queue = self._queues.setdefault((payer_account, lane), _Queue())
        queue.items.append(entry)
        if queue.runner is None:
            queue.runner = asyncio.create_task(self._run(payer_account, lane, count, queue))
        return await asyncio.shield(entry.future)

    async def _run(self, payer: str, lane: int, count: int, queue: _Queue) -> None:
        """Send the queue's items, one batch in flight at a time, until it is empty."""
        try:
            while queue.items:
                batch, queue.items = self._take(queue.items)
                if batch:
                    again = await self._send(payer, lane, count, batch)
                    queue.items[:0] = again
        except BaseException as error:  # never leave a caller waiting
            for entry in queue.items:
                if not entry.future.done():
                    entry.future.set_exception(
                        error if isinstance(error, Exception) else asyncio.CancelledError())
            queue.items = []
            raise
        finally:
            queue.runner = None
            if queue.items:  # arrived while the runner was ending
                queue.runner = asyncio.create_task(self._run(payer, lane, count, queue))
            elif self._queues.get((payer, lane)) is queue:
                del self._queues[(payer, lane)]

    def _take(self, items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
        """The next batch (at most ``max_batch`` items, each reference once: a second call
        with a reference already in the batch waits for the next one) and what stays."""
        batch: list[_Item] = []
        rest: list[_Item] = []
        seen: set[str] = set()
        for entry in items:
            if entry.future.done():
                continue
            if len(batch) < self.max_batch and entry.wire.reference not in seen:
                seen.add(entry.wire.reference)
                batch.append(entry)
            else:
                rest.append(entry)
        return batch, rest

    async def _send(self, payer: str, lane: int, count: int, batch: list[_Item]) -> list[_Item]:
        """One batch transaction; the items to send again."""
        request = w.CoalescedRequest(payer, tuple(i.wire for i in batch), lane)
        digest = hashlib.sha256(canonical_json(request.to_json())).hexdigest()[:48]
        self.batches += 1
        try:
            receipt = await self._submitter.submit(
                TRANSACTION, request.to_json(), reference=f"coalesced-{digest}",
                endorsing_organizations=[self._msp_id],
            )
        except ContractError as refusal:
            if (refusal.code == "INVALID_STATE" and count > 1 and self._rebalance is not None
                    and all(e.rebalanced < _MAX_REBALANCES for e in batch)):
                # no item applicable on this lane: it may only be short (the codes are lost
                # with a refusal), so the lane is rebalanced for them before they go alone
                return await self._refill(payer, lane, batch)
            # Refused whole (no item applicable, the payer account missing ...): each item is
            # answered from its reference record if applied, else sent alone for its own
            # answer (one bad item cannot sink the others).
            _log.info("coalesced payout of %d refused whole (%s): item by item",
                      len(batch), refusal.code)
            await asyncio.gather(*(self._after_replay(payer, i) for i in batch))
            return []
        except CommitFailed as failed:
            for entry in batch:
                entry.future.set_exception(failed)
            return []
        except NetworkFault as fault:
            return await self._again(batch, fault)
        if not receipt.result:
            # This very batch had committed before (its outcome was unknown to this call):
            # its per-item codes are lost, so each item is asked for on its own.
            await asyncio.gather(*(self._after_replay(payer, entry) for entry in batch))
            return []
        codes = receipt.item_codes(len(batch), "item")
        duplicates: list[Awaitable[None]] = []
        short: list[_Item] = []
        for entry, code in zip(batch, codes, strict=True):
            if code == "OK":
                entry.future.set_result(Receipt(
                    reference=entry.wire.reference, transaction=TRANSACTION,
                    tx_id=receipt.tx_id, block_number=receipt.block_number,
                    attempt=receipt.attempt, replayed=False))
            elif code == DuplicateReference.code:
                duplicates.append(self._applied_before(entry))
            elif code in _LANE_SHORT and count > 1 and self._rebalance is not None:
                short.append(entry)
            else:
                entry.future.set_exception(contract_error(
                    f"{code}: refused inside a coalesced payout", transaction_id=receipt.tx_id))
        await asyncio.gather(*duplicates)
        return await self._refill(payer, lane, short)

    async def _refill(self, payer: str, lane: int, short: list[_Item]) -> list[_Item]:
        """Rebalance ``lane`` for the items its balance or daily share could not cover: the
        first time all of them together, then each alone; the items to send again. An item
        whose own rebalance is refused gets that refusal (the account as a whole cannot pay
        it); one whose time ran out while other lanes kept taking the funds back gets a
        fault (nothing applied: safe to call again with the same reference)."""
        if not short or self._rebalance is None:
            return []
        now = time.monotonic()
        for entry in short:
            if now >= entry.deadline:
                entry.future.set_exception(NetworkFault(
                    "the account's lanes kept contending for this payment's funds until its "
                    "time ran out; nothing was applied: call again with the same reference"))
        live = [e for e in short if not e.future.done()]
        again: list[_Item] = []
        first = [e for e in live if e.rebalanced == 0]
        if len(first) > 1:
            for entry in first:
                entry.rebalanced = 1
            try:
                self.rebalances += 1
                await self._rebalance(payer, lane, sum(e.wire.amount for e in first))
            except ContractError:
                pass  # too much together: each gets its own rebalance below
            except Exception as error:
                for entry in first:
                    entry.future.set_exception(error)
            else:
                again.extend(first)
        for entry in live:
            if entry in again or entry.future.done():
                continue
            entry.rebalanced += 1
            try:
                self.rebalances += 1
                await self._rebalance(payer, lane, entry.wire.amount)
            except Exception as error:
                entry.future.set_exception(error)
                continue
            again.append(entry)
        return again

    async def _again(self, batch: list[_Item], fault: NetworkFault) -> list[_Item]:
        """The batch's fate is unknown or it lost every conflict: its items go again, but
        those whose call has run out of time get the fault (safe to call again)."""
        now = time.monotonic()
        keep: list[_Item] = []
        for entry in batch:
            entry.unsure = entry.unsure or isinstance(fault, OutcomeUnknown)
            if now >= entry.deadline:
                entry.future.set_exception(fault)
            else:
                keep.append(entry)
        if keep:
            await asyncio.sleep(self._submitter.policy.backoff)
        return keep

    async def _alone(self, payer: str, entry: _Item) -> None:
        try:
            entry.future.set_result(await self._single(payer, entry.wire))
        except Exception as error:
            entry.future.set_exception(error)

    async def _after_replay(self, payer: str, entry: _Item) -> None:
        """An item of a batch that had committed before: applied (then its receipt comes from
        the reference record) or refused there (then it is sent alone, for its own answer)."""
        try:
            found = await self._lookup(entry.wire.reference)
        except Exception as error:
            entry.future.set_exception(error)
            return
        if found is None:
            await self._alone(payer, entry)
        else:  # a replay, unless this call had sent the batch (then ``unsure`` is set)
            await self._applied_before(entry)

    async def _applied_before(self, entry: _Item) -> None:
        """The item's reference is applied: by this very item (an earlier batch, or a call
        before a restart), or by another request that reused the reference."""
        try:
            found = await self._lookup(entry.wire.reference)
            if found is None or found[2] != (entry.wire.transfer_id,) or (
                self._same_request is not None and not await self._same_request(entry.wire)
            ):
                entry.future.set_exception(DuplicateReference(
                    "the client reference was applied to another request",
                    original_tx_id=None if found is None else found[1]))
                return
            kind, tx_id, _ids = found
            status = await self._submitter.status_of(tx_id)
            entry.future.set_result(Receipt(
                reference=entry.wire.reference, transaction=kind, tx_id=tx_id,
                block_number=status.block_number, attempt=0, replayed=not entry.unsure))
        except Exception as error:
            entry.future.set_exception(error)
