"""Payments across banks: the two-phase transfer and the settlement that follows.

Owns: ``initiate_transfer`` and ``batch_payout`` (phase one, endorsed by the payer's bank
alone), ``accept_transfer`` and ``reject_transfer`` (phase two, at the payee's bank),
``refund_transfer`` (the payer's bank, after a rejection or expiry) and
``confirm_settlement`` (the creditor bank records the RTGS reference). ``accept`` reads
``refund/<id>`` and ``refund`` reads ``dec/<id>``, each writing the key the other reads, so
MVCC lets at most one of them commit.

Must not: decide a transfer's state except through :mod:`deposit_token.rules`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

from dtoken_wire.codec import format_timestamp
from dtoken_wire.events import EVENT_DECIDED
from dtoken_wire.requests import (
    AcceptRequest,
    BatchPayment,
    BatchRequest,
    InitiateRequest,
    RefundRequest,
    RejectRequest,
    SettlementRequest,
)

from ..errors import (
    CurrencyMismatch,
    DuplicateReference,
    InvalidArgument,
)
from ..keys import (
    pair_collection,
    refund_key,
    settlement_key,
)
from ..placement import pair_pin
from ..records import (
    Account,
    HistoryKind,
    Quote,
    Refund,
    Settlement,
    SupplyKind,
)
from ..registry import day_of
from ..rules import (
    check_lock_refund,
    check_refund,
    credit,
    debit,
)
from .access import (
    ROLE_OPERATOR,
    Tx,
    authorize_bank_write,
    done,
    load_registry,
    member_bank,
    other_bank,
)
from .decisions import decide_one
from .declare import declare
from .lanes import debit_hold, read_credit_lane, read_lane
from .steps import (
    announce_pending,
    check_new_transfer_id,
    claim_reference,
    read_account,
    read_lock,
    record_history,
    record_supply,
    refund_account,
    save_account,
    transfer_records,
    write_outgoing_transfer,
    write_reference,
)
from .suspension import refuse_suspended


@declare()
async def initiate_transfer(tx: Tx, req: InitiateRequest) -> dict[str, object]:
    """Phase one of a cross-bank transfer, endorsed by the payer's bank alone."""
    return await _payout(tx, "initiate_transfer", req.reference, req.payer_account,
                         (req.payment,), req.ttl_seconds, req.originator, cross_only=True,
                         lane=req.payer_lane)


@declare()
async def batch_payout(tx: Tx, req: BatchRequest) -> dict[str, object]:
    """One debit of the payer, then a transfer to each payee (one transaction)."""
    return await _payout(tx, "batch_payout", req.reference, req.payer_account, req.payments,
                         req.ttl_seconds, req.originator, cross_only=False,
                         lane=req.payer_lane)


async def _payout(
    tx: Tx,
    kind: str,
    reference: str,
    payer_id: str,
    payments: Sequence[BatchPayment],
    ttl_seconds: int,
    originator: Mapping[str, str],
    *,
    cross_only: bool,
    lock: str = "",
    quote: Quote | None = None,
    lane: int = 0,
) -> dict[str, object]:
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    await refuse_suspended(tx, registry, bank, [
        member_bank(registry, name, "payee_bank")
        for name in sorted({p.payee_bank for p in payments if p.payee_bank != bank.name})
    ], "new payment")
    local = [p.payee_account for p in payments if p.payee_bank == bank.name]
    ref_key = await claim_reference(tx, bank, reference, accounts=(payer_id, *local))
    payer = await read_lane(tx, bank, payer_id, lane, "payer")
    hold = await debit_hold(tx, registry, bank, payer)
    expires_at = format_timestamp(tx.now + timedelta(seconds=ttl_seconds))

    # Validate every payment and read what it needs before debiting anything.
    plan: list[tuple[BatchPayment, str | None]] = []
    for i, p in enumerate(payments):
        if p.payee_bank == bank.name:
            if cross_only:
                raise InvalidArgument("request.payee_bank must be another bank (use transfer)")
            if p.payee_account == payer_id:
                raise InvalidArgument("a payment may not pay the payer's own account")
            payee = await read_account(tx, bank, p.payee_account, "payee")
            if payee.currency != payer.currency:
                raise CurrencyMismatch("the accounts are not in the same currency")
            plan.append((p, None))
            continue
        other = member_bank(registry, p.payee_bank, "payee_bank")
        if quote is not None:
            if not registry.issues(other.name, quote.to_currency):
                raise CurrencyMismatch("the payee bank issues no token in the quote's currency")
        elif not registry.issues(other.name, payer.currency):
            raise CurrencyMismatch("the payee bank issues no token in the payer's currency")
        transfer_id = p.transfer_id or tx.deriver.transfer_id(tx.tx_id, i)
        await check_new_transfer_id(tx, bank, other, transfer_id)
        plan.append((p, transfer_id))

    after = debit(payer, [p.amount for p in payments], day=day_of(tx.now), hold=hold)
    running = replace(after, balance=payer.balance)
    ids: list[str] = []
    payee_banks: set[str] = set()
    for p, tid in plan:
        running = replace(running, balance=running.balance - p.amount)
        if tid is None:
            payee = credit(await read_credit_lane(tx, bank, p.payee_account, "payee"),
                           p.amount)
            payee = record_history(tx, bank, payee, HistoryKind.TRANSFER_IN, p.amount,
                             counterparty_bank=bank.name, counterparty_account=payer_id)
            save_account(tx, bank, payee)
            running = record_history(tx, bank, running, HistoryKind.TRANSFER_OUT, -p.amount,
                               counterparty_bank=bank.name, counterparty_account=p.payee_account)
            continue
        ids.append(tid)
        payee_banks.add(p.payee_bank)
        running = write_outgoing_transfer(
            tx, bank, member_bank(registry, p.payee_bank, "payee_bank"), running, tid,
            ref_key=ref_key, payee_account=p.payee_account, amount=p.amount, expires_at=expires_at,
            originator=originator, remittance=p.remittance, lock=lock,
            regulator_msp_id=registry.regulator_msp_id, quote=quote)
    assert running.balance == after.balance
    save_account(tx, bank, running)
    write_reference(tx, bank, ref_key, kind, ids, account=payer_id if ids else None)
    if payee_banks:
        # Says only that something waits, and for whom (the collection names say as much).
        announce_pending(tx, payee_banks)
    return done(tx)


@declare()
async def accept_transfer(tx: Tx, req: AcceptRequest) -> dict[str, object]:
    """Phase two at the payee's bank: record ``accepted`` and credit the payee."""
    return await accept_one(tx, req.payer_bank, req.transfer_id)


async def accept_one(tx: Tx, payer_bank: str, transfer_id: str,
                     preimage: str = "") -> dict[str, object]:
    """Accept one transfer of ``payer_bank`` and credit its payee (``preimage``: the lock's,
    for a hash-locked transfer)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payer = other_bank(registry, bank, payer_bank, "payer_bank")
    payees: dict[str, Account] = {}
    await decide_one(tx, bank, payer, transfer_id, True, "", payees, preimage=preimage)
    (payee,) = payees.values()
    save_account(tx, bank, payee)
    tx.ledger.set_event(EVENT_DECIDED, {"payer_bank": payer.name})
    return done(tx)


@declare()
async def reject_transfer(tx: Tx, req: RejectRequest) -> dict[str, object]:
    """Phase two at the payee's bank: record ``rejected`` (the payer's bank then refunds)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payer = other_bank(registry, bank, req.payer_bank, "payer_bank")
    await decide_one(tx, bank, payer, req.transfer_id, False, req.reason, {})
    tx.ledger.set_event(EVENT_DECIDED, {"payer_bank": payer.name})
    return done(tx)


@declare()
async def refund_transfer(tx: Tx, req: RefundRequest) -> dict[str, object]:
    """At the payer's bank, after a rejection or after expiry undecided: credit the payer."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payee_bank = other_bank(registry, bank, req.payee_bank, "payee_bank")
    record, decision, refund = await transfer_records(tx, bank, payee_bank, req.transfer_id)
    payer_account = await refund_account(tx, bank, record)
    cause = check_refund(record, decision, refund, tx.now)
    if record.lock:
        check_lock_refund(record, decision, await read_lock(tx, bank, payee_bank,
                                                            req.transfer_id))
    payer = credit(await read_credit_lane(tx, bank, payer_account, "payer"),
                   record.amount, refund=True)
    payer = record_history(tx, bank, payer, HistoryKind.REFUND, record.amount,
                     counterparty_bank=payee_bank.name, transfer_id=record.transfer_id,
                     detail=cause.value)
    save_account(tx, bank, payer)
    tx.ledger.put(pair_collection(bank.name, payee_bank.name), refund_key(record.transfer_id),
                  Refund(transfer_id=record.transfer_id, payer_bank=bank.name,
                         payee_bank=payee_bank.name, amount=record.amount,
                         currency=record.currency, cause=cause, refunded_at=tx.at,
                         tx_id=tx.tx_id),
                  pin=pair_pin(bank, payee_bank))
    record_supply(tx, bank, record.currency, SupplyKind.REFUND, record.amount, payee_bank.name,
            record.transfer_id)
    return done(tx)


@declare()
async def confirm_settlement(tx: Tx, req: SettlementRequest) -> dict[str, object]:
    """The creditor bank confirms the debtor's reserves arrived (RTGS reference, once)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    debtor = other_bank(registry, bank, req.debtor_bank, "debtor_bank")
    if registry.decimals(req.currency) is None:
        raise InvalidArgument("request.currency is not a currency of the network")
    pair = pair_collection(bank.name, debtor.name)
    key = settlement_key(tx.deriver.reference_tag("rtgs", req.rtgs_reference))
    if await tx.ledger.get(Settlement, pair, key) is not None:
        raise DuplicateReference("the RTGS reference was confirmed already")
    tx.ledger.put(pair, key, Settlement(
        debtor_bank=debtor.name, creditor_bank=bank.name, currency=req.currency,
        amount=req.amount, rtgs_reference=req.rtgs_reference, settled_at=tx.at,
        tx_id=tx.tx_id), pin=pair_pin(bank, debtor))
    return done(tx)
