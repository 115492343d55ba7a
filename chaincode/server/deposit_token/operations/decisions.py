"""Decisions in bulk: the payee bank accepts or rejects many incoming transfers at once.

Owns: ``decide_transfers``, which the bank SDK's listener sends for a backlog (docs/sdk.md,
"Batch decisions"). All transfers come from one payer bank. Each transfer is decided as
``accept_transfer`` / ``reject_transfer`` would decide it, by the same rules, and its decision
is **its own immutable record**, pinned to both banks like a single decision's; but the
credits are summed per payee account: each payee account's balance key is written once per
transaction, however many transfers it receives (one exporter receiving hundreds of payments
is not a hot key). Per item:

* a transfer that cannot be decided (missing, decided or refunded already, expired for an
  accept, a payee account that refuses credit) is skipped, with its code in the response, and
  writes nothing; its neighbours go through;
* the response holds one code per decision, in order (``OK`` or the refusal's code): codes
  only, since a write's response is in the block.

Each accept reads the transfer's refund key, as a single accept does, so a refund that commits
first invalidates the whole transaction (MVCC): the SDK leaves a transfer close to its expiry
out of a batch for that reason.

Must not: decide a transfer's state except through :mod:`deposit_token.rules`; write anything
for a skipped item.
"""

from __future__ import annotations

from dtoken_wire.events import EVENT_DECIDED
from dtoken_wire.requests import DecideRequest

from ..errors import CurrencyMismatch, DepositTokenError, InvalidState
from ..records import Account, HistoryKind, Outcome, SupplyKind
from ..registry import BankInfo
from ..rules import check_accept, check_reject, credit
from .access import ROLE_OPERATOR, Tx, authorize_bank_write, load_registry, other_bank
from .declare import declare
from .payouts import OK
from .steps import (
    read_account,
    record_decision,
    record_history,
    record_supply,
    save_account,
    transfer_records,
)
from .suspension import refuse_suspended

__all__ = ["decide_one", "decide_transfers"]


@declare()
async def decide_transfers(tx: Tx, req: DecideRequest) -> dict[str, object]:
    """Accept or reject many transfers of one payer bank; credits summed per payee account."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payer = other_bank(registry, bank, req.payer_bank, "payer_bank")
    payees: dict[str, Account] = {}  # credited so far in this transaction
    results: list[str] = []
    for item in req.decisions:
        try:
            await decide_one(tx, bank, payer, item.transfer_id, item.accept,
                             item.reason, payees)
        except DepositTokenError as refusal:
            results.append(refusal.code)
            continue
        results.append(OK)
    if OK not in results:
        # nothing to write: a transaction writing nothing would commit invalid (the
        # chaincode-level policy judges it); refuse, the SDK decides item by item
        raise InvalidState("none of the transfers can be decided")
    for account in payees.values():
        save_account(tx, bank, account)
    tx.ledger.set_event(EVENT_DECIDED, {"payer_bank": payer.name})
    return {"tx_id": tx.tx_id, "results": results}


async def decide_one(
    tx: Tx, bank: BankInfo, payer: BankInfo, transfer_id: str, accept: bool, reason: str,
    payees: dict[str, Account],
) -> None:
    """Check (raising before any write), then write one decision and, for an accept, credit
    the payee account held in ``payees`` (saved once, by the caller). ``accept_transfer`` and
    ``reject_transfer`` are this with one transfer."""
    record, decision, refund = await transfer_records(tx, payer, bank, transfer_id)
    if accept:
        reason = ""
        # an accept makes the payer's bank owe this one: none toward a suspended bank
        await refuse_suspended(tx, await load_registry(tx), bank, [payer], "accept")
        check_accept(record, decision, refund, tx.now)
        payee = payees.get(record.payee_account)
        if payee is None:
            payee = await read_account(tx, bank, record.payee_account, "payee")
        if payee.currency != record.currency:
            raise CurrencyMismatch("the payee account is not in the transfer's currency")
        payee = credit(payee, record.amount)
        # Nothing below refuses.
        payees[record.payee_account] = record_history(
            tx, bank, payee, HistoryKind.PAYMENT_IN, record.amount,
            counterparty_bank=payer.name, transfer_id=record.transfer_id)
        record_supply(tx, bank, record.currency, SupplyKind.IN, record.amount, payer.name,
                      record.transfer_id)
        outcome = Outcome.ACCEPTED
    else:
        check_reject(record, decision, refund)
        outcome = Outcome.REJECTED
    record_decision(tx, bank, payer, record, outcome, reason)
