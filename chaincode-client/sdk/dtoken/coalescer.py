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

Must not: send a second transaction debiting an account while one is in flight; answer an
item from anything but the ledger (a response, or the reference record).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
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


@dataclass
class _Item:
    wire: w.CoalescedItem
    future: asyncio.Future[Receipt]
    deadline: float
    unsure: bool = False
    """A batch carrying this item had an unknown outcome: if the item turns out applied, it
    was this call's own doing (not a replay)."""


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
    ) -> None:
        if not 1 <= max_batch <= w.MAX_BATCH:
            raise ValueError(f"max_batch must be 1 to {w.MAX_BATCH}")
        self._submitter = submitter
        self._msp_id = msp_id
        self._lookup = lookup
        self._single = single
        self._same_request = same_request
        self.max_batch = max_batch
        self._queues: dict[str, _Queue] = {}
        self.batches = 0
        """How many batch transactions were sent (for tests and benchmarks)."""

    async def pay(self, payer_account: str, item: w.CoalescedItem) -> Receipt:
        """Apply ``item`` once, debiting ``payer_account``; its receipt, or its refusal."""
        loop = asyncio.get_running_loop()
        entry = _Item(item, loop.create_future(),
                      time.monotonic() + self._submitter.policy.outcome_timeout)
        queue = self._queues.setdefault(payer_account, _Queue())
        queue.items.append(entry)
        if queue.runner is None:
            queue.runner = asyncio.create_task(self._run(payer_account, queue))
        return await asyncio.shield(entry.future)

    async def _run(self, payer: str, queue: _Queue) -> None:
        """Send the queue's items, one batch in flight at a time, until it is empty."""
        try:
            while queue.items:
                batch, queue.items = self._take(queue.items)
                if batch:
                    again = await self._send(payer, batch)
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
                queue.runner = asyncio.create_task(self._run(payer, queue))
            elif self._queues.get(payer) is queue:
                del self._queues[payer]

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

    async def _send(self, payer: str, batch: list[_Item]) -> list[_Item]:
        """One batch transaction; the items to send again."""
        request = w.CoalescedRequest(payer, tuple(i.wire for i in batch))
        digest = hashlib.sha256(canonical_json(request.to_json())).hexdigest()[:48]
        self.batches += 1
        try:
            receipt = await self._submitter.submit(
                TRANSACTION, request.to_json(), reference=f"coalesced-{digest}",
                endorsing_organizations=[self._msp_id],
            )
        except ContractError as refusal:
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
        codes = json.loads(receipt.result).get("results")
        if not isinstance(codes, list) or len(codes) != len(batch):
            raise NetworkFault(f"{TRANSACTION}: the response has no result per item")
        duplicates: list[Awaitable[None]] = []
        for entry, code in zip(batch, codes, strict=True):
            if code == "OK":
                entry.future.set_result(Receipt(
                    reference=entry.wire.reference, transaction=TRANSACTION,
                    tx_id=receipt.tx_id, block_number=receipt.block_number,
                    attempt=receipt.attempt, replayed=False))
            elif code == DuplicateReference.code:
                duplicates.append(self._applied_before(entry))
            else:
                entry.future.set_exception(contract_error(
                    f"{code}: refused inside a coalesced payout", transaction_id=receipt.tx_id))
        await asyncio.gather(*duplicates)
        return []

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
