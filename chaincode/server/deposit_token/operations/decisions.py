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
from dtoken_wire.requests import DecideRequest, DecisionItem

from ..conversion import check_quoted_accept
from ..errors import CurrencyMismatch, InvalidState
from ..keys import acct_collection, decision_key, pair_collection, refund_key, transfer_key
from ..placement import Anomaly, Place
from ..records import Account, Decision, HistoryKind, Outcome, Refund, SupplyKind, Transfer
from ..registry import BankInfo
from ..rules import check_accept, check_claim, check_reject, credit
from .access import ROLE_OPERATOR, Tx, authorize_bank_write, load_registry, other_bank
from .declare import declare
from .lanes import read_credit_lane
from .payouts import each_on_its_own
from .steps import (
    read_lock,
    read_quote,
    read_quote_use,
    record_decision,
    record_history,
    record_supply,
    save_account,
    transfer_records,
    write_quote_use,
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
    await _prefetch(tx, bank, payer, req)

    async def decide(item: DecisionItem) -> None:
        await decide_one(tx, bank, payer, item.transfer_id, item.accept, item.reason, payees)

    results = await each_on_its_own(req.decisions, decide,
                                    "none of the transfers can be decided")
    for account in payees.values():
        save_account(tx, bank, account)
    tx.ledger.set_event(EVENT_DECIDED, {"payer_bank": payer.name})
    return {"tx_id": tx.tx_id, "results": results}


async def _prefetch(tx: Tx, bank: BankInfo, payer: BankInfo, req: DecideRequest) -> None:
    """Read what the items will point-read in one round trip per collection (later reads
    of these keys cost nothing, and the read set is theirs): each transfer and its refund,
    each decision key, then the payee accounts of the accepts (lane 0: where a credit finds
    the lane count)."""
    ids = [d.transfer_id for d in req.decisions]
    there = Place.between(payer, bank)
    await tx.ledger.prefetch(there.collection, {
        **{transfer_key(i): Transfer for i in ids}, **{refund_key(i): Refund for i in ids}})
    await tx.ledger.prefetch(pair_collection(bank.name, payer.name),
                             {decision_key(i): Decision for i in ids})
    accepted = [transfer_key(d.transfer_id) for d in req.decisions if d.accept]
    found = await tx.ledger.get_many_bound(Transfer, there, accepted)
    keys = tx.deriver.account_keys()
    await tx.ledger.prefetch(acct_collection(bank.name), {
        keys.account(t.payee_account): Account
        for t in found if t is not None and not isinstance(t, Anomaly)})


async def decide_one(
    tx: Tx, bank: BankInfo, payer: BankInfo, transfer_id: str, accept: bool, reason: str,
    payees: dict[str, Account], preimage: str = "",
) -> None:
    """Check (raising before any write), then write one decision and, for an accept, credit
    the payee account held in ``payees`` (saved once, by the caller). ``accept_transfer`` and
    ``reject_transfer`` are this with one transfer; ``claim_transfer`` is this with the
    preimage of a hash-locked transfer (which no other accept may take). A converted
    transfer (paid with this bank's quote) is credited its ``payee_amount`` in its
    ``payee_currency`` once :func:`~deposit_token.conversion.check_quoted_accept` passes."""
    record, decision, refund = await transfer_records(tx, payer, bank, transfer_id)
    if accept:
        reason = ""
        if record.lock or preimage:
            check_claim(record, decision, refund, await read_lock(tx, payer, bank, transfer_id),
                        preimage, tx.now)
        # an accept makes the payer's bank owe this one: none toward a suspended bank
        await refuse_suspended(tx, await load_registry(tx), bank, [payer], "accept")
        check_accept(record, decision, refund, tx.now)
        if record.quote_id:
            # converted: the quote must be this bank's own, word for word (a payer bank's
            # server can write any rate into its transfer), and used once
            check_quoted_accept(record, await read_quote(tx, bank, payer, record.quote_id),
                                tx.now)
            used = await read_quote_use(tx, bank, record.quote_id)
            if used is not None:
                raise InvalidState("the transfer's quote was used by another transfer")
        payee = payees.get(record.payee_account)
        if payee is None:
            payee = await read_credit_lane(tx, bank, record.payee_account, "payee")
        if payee.currency != record.credit_currency:
            raise CurrencyMismatch("the payee account is not in the currency it is paid in")
        payee = credit(payee, record.credit_amount)
        # Nothing below refuses.
        payees[record.payee_account] = record_history(
            tx, bank, payee, HistoryKind.PAYMENT_IN, record.credit_amount,
            counterparty_bank=payer.name, transfer_id=record.transfer_id)
        # a converted transfer's credit is covered by an ``in`` record in the payee currency
        # (against the payer-currency claim on the payer bank): the audit pairs the two
        record_supply(tx, bank, record.credit_currency, SupplyKind.IN, record.credit_amount,
                      payer.name, record.transfer_id)
        if record.quote_id:
            write_quote_use(tx, bank, record.quote_id, record.transfer_id)
        outcome = Outcome.ACCEPTED
    else:
        check_reject(record, decision, refund)
        outcome = Outcome.REJECTED
    record_decision(tx, bank, payer, record, outcome, reason, preimage)
