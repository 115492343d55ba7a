"""Coalesced payouts: many cross-bank payments of one payer account, each on its own terms.

Owns: ``coalesced_payout``, the transaction the bank SDK's coalescer sends for concurrent
``transfer()`` calls from one account (docs/sdk.md, "Coalescing"). One debit of the payer's
balance key per transaction (so one transaction's worth of MVCC contention for many payments;
the key is the payer's balance lane ``payer_lane``, docs/token-model.md "Balance lanes"),
but each item is what ``initiate_transfer`` would have been:

* it claims its **own reference** (the same record ``initiate_transfer`` writes, of kind
  ``initiate_transfer`` with the transfer id): an item applied before, by a single initiate or
  an earlier batch, is recognized and skipped (``DUPLICATE_REFERENCE``), so resending an item
  in a later batch can never apply it twice;
* a **business refusal** of one item (insufficient funds, frozen, limit, unknown payee bank,
  an existing transfer id ...) skips that item, checked before it writes anything, and its
  neighbours go through: items are applied in order against the running balance;
* the response holds one code per item, in order (``OK`` or the refusal's code): codes only,
  since a write's response is written into the block.

What refuses the whole transaction: access, the payer account missing or not an account of
the serving bank, a malformed request, and no item applicable (``INVALID_STATE``: a
transaction writing nothing would be judged by the chaincode-level policy and commit
invalid).

Must not: decide a transfer's state except through :mod:`deposit_token.rules`; write anything
for a refused item.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import TypeVar

from dtoken_wire.codec import format_timestamp
from dtoken_wire.requests import CoalescedItem, CoalescedRequest

from ..errors import (
    CurrencyMismatch,
    DepositTokenError,
    DuplicateReference,
    InvalidArgument,
    InvalidState,
)
from ..keys import (
    acct_collection,
    pair_collection,
    reference_key,
    transfer_key,
)
from ..records import (
    Account,
    Hold,
    Lane,
    ReferenceRecord,
    Transfer,
)
from ..registry import BankInfo, Registry, day_of
from ..rules import debit
from .access import (
    ROLE_OPERATOR,
    Tx,
    authorize_bank_write,
    load_registry,
    member_bank,
)
from .declare import declare
from .lanes import debit_hold, read_lane
from .steps import (
    announce_pending,
    check_new_transfer_id,
    save_account,
    write_outgoing_transfer,
    write_reference,
)
from .suspension import refuse_suspended

__all__ = ["OK", "coalesced_payout", "each_on_its_own"]

#: The per-item result of an applied item.
OK = "OK"

_I = TypeVar("_I")


async def each_on_its_own(
    items: Iterable[_I], apply: Callable[[_I], Awaitable[None]], nothing: str
) -> list[str]:
    """Apply each item of a batch: ``OK``, or the code of the refusal that skipped it (an
    item's checks all come before its writes, so a skipped item wrote nothing) while its
    neighbours go on. If no item applies the whole transaction is refused (``nothing``): one
    that writes nothing is judged by the chaincode-level policy, which the acting bank alone
    does not satisfy, so it would commit invalid; the SDK then asks item by item."""
    results: list[str] = []
    for item in items:
        try:
            await apply(item)
        except DepositTokenError as refusal:
            results.append(refusal.code)
            continue
        results.append(OK)
    if OK not in results:
        raise InvalidState(nothing)
    return results


@declare()
async def coalesced_payout(tx: Tx, req: CoalescedRequest) -> dict[str, object]:
    """Cross-bank payments of one payer, each with its own reference and outcome."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    acct = acct_collection(bank.name)
    ref_keys = [reference_key(tx.deriver.reference_tag("payment", i.reference))
                for i in req.items]
    keys = tx.deriver.account_keys()  # the serving bank's own
    # Every key the items point-read, in one round trip per collection (what the items then
    # read costs nothing): the payer, the references, and the transfer ids in each payee
    # bank's pair collection.
    await tx.ledger.prefetch(acct, {
        (keys.account(req.payer_account) if req.payer_lane == 0
         else keys.lane(req.payer_account, req.payer_lane)):
            Account if req.payer_lane == 0 else Lane,
        **dict.fromkeys(ref_keys, ReferenceRecord)})
    by_pair: dict[str, list[str]] = {}
    for i in req.items:
        if i.payee_bank != bank.name and registry.bank(i.payee_bank) is not None:
            by_pair.setdefault(pair_collection(bank.name, i.payee_bank), []).append(
                transfer_key(i.transfer_id))
    for collection, transfer_keys in by_pair.items():
        await tx.ledger.prefetch(collection, dict.fromkeys(transfer_keys, Transfer))
    payer = await read_lane(tx, bank, req.payer_account, req.payer_lane, "payer")
    hold = await debit_hold(tx, registry, bank, payer)
    payee_banks: set[str] = set()

    async def pay(entry: tuple[CoalescedItem, str]) -> None:
        nonlocal payer
        item, ref_key = entry
        payer = await _apply(tx, registry, bank, payer, hold, item, ref_key)
        payee_banks.add(item.payee_bank)

    results = await each_on_its_own(zip(req.items, ref_keys, strict=True), pay,
                                    "none of the payments can be applied")
    save_account(tx, bank, payer)
    announce_pending(tx, payee_banks)
    return {"tx_id": tx.tx_id, "results": results}


async def _apply(
    tx: Tx,
    registry: Registry,
    bank: BankInfo,
    payer: Account,
    hold: Hold | None,
    item: CoalescedItem,
    ref_key: str,
) -> Account:
    """Check ``item`` (raising its refusal before any write), then write it as
    ``initiate_transfer`` would; the payer after it."""
    acct = acct_collection(bank.name)
    if await tx.ledger.get(ReferenceRecord, acct, ref_key) is not None:
        raise DuplicateReference("the client reference was applied already")
    if item.payee_bank == bank.name:
        raise InvalidArgument("request.payee_bank must be another bank (use transfer)")
    other = member_bank(registry, item.payee_bank, "payee_bank")
    await refuse_suspended(tx, registry, bank, [other], "new payment")
    if not registry.issues(other.name, payer.currency):
        raise CurrencyMismatch("the payee bank issues no token in the payer's currency")
    tid = item.transfer_id
    await check_new_transfer_id(tx, bank, other, tid)
    after = debit(payer, [item.amount], day=day_of(tx.now), hold=hold)
    # Nothing below refuses: the item's writes.
    after = write_outgoing_transfer(
        tx, bank, other, after, tid, ref_key=ref_key, payee_account=item.payee_account,
        amount=item.amount,
        expires_at=format_timestamp(tx.now + timedelta(seconds=item.ttl_seconds)),
        originator=item.originator, remittance=item.remittance)
    write_reference(tx, bank, ref_key, "initiate_transfer", (tid,), account=payer.account_id)
    return after
