"""Escrow until a condition (trade assurance), within a bank and across banks.

Owns: ``register_attester`` (a party the bank trusts to sign statements about its customers'
escrows), ``open_escrow`` (the payer's bank debits its customer into escrow),
``release_escrow`` (the payer's bank: the buyer confirmed, or the deadline released it),
``claim_escrow`` (the payee's bank credits its customer on the payer bank's release or on a
signed statement; ``claim_escrows``, many at once, credits summed per payee account),
``refund_escrow`` (the payer's bank credits its customer back after the
deadline or on the arbiter's ruling), and :func:`escrow_records` (the four records of one
escrow, which the reads in :mod:`.escrow_reads` show).

Each bank writes only its own records, each pinned to both banks at creation
(:mod:`deposit_token.placement`), and every reader decides what they amount to with the one
rule of :func:`deposit_token.conditions.resolve`; what the other bank cannot verify counts
for nobody. ``claim_escrow`` reads the release and refund keys; ``refund_escrow`` reads the
claim and release keys; ``release_escrow`` reads the refund and claim keys: when honest banks
race, MVCC lets the first to commit stand; a bank that skips those reads gets both committed,
and then the first in ledger order counts (``get_escrow`` takes ``ledger_order`` as the
obligations do; without it such an escrow is ``disputed``). Within one bank the same records
live in the bank's own ``acct-<bank>`` and a release or claim credits the payee at once.

Must not: decide an escrow's outcome except through :mod:`deposit_token.conditions`; put an
escrow id, an amount or an account into an event, an error or a write's return value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from dtoken_wire.codec import parse_timestamp
from dtoken_wire.conditional import (
    ClaimEscrowRequest,
    ClaimEscrowsRequest,
    ClaimItem,
    DeadlineAction,
    OpenEscrowRequest,
    RefundEscrowRequest,
    RegisterAttesterRequest,
    ReleaseEscrowRequest,
    Statement,
)
from dtoken_wire.events import EVENT_ESCROW
from fabshim.statebased import all_of_policy

from ..conditions import check_public_key, resolve, verified_statement
from ..errors import (
    AlreadyExists,
    CorruptState,
    CurrencyMismatch,
    InvalidArgument,
    InvalidState,
    NotExpired,
    NotFound,
)
from ..keys import (
    acct_collection,
    attester_key,
    escrow_claim_key,
    escrow_key,
    escrow_note_key,
    escrow_refund_key,
    escrow_release_key,
)
from ..placement import Anomaly, Place, pair_pin
from ..records import (
    Account,
    Attester,
    Escrow,
    EscrowClaim,
    EscrowNote,
    EscrowRefund,
    EscrowRelease,
    HistoryKind,
    SupplyKind,
)
from ..registry import BankInfo, day_of
from ..rules import credit, debit
from .access import (
    ROLE_OPERATOR,
    Tx,
    authorize_bank_write,
    done,
    load_registry,
    member_bank,
    other_bank,
)
from .declare import declare
from .lanes import debit_hold
from .payouts import each_on_its_own
from .steps import (
    claim_reference,
    read_account,
    record_history,
    record_supply,
    save_account,
    write_reference,
)
from .suspension import refuse_suspended

__all__ = [
    "MAX_ESCROW_DAYS",
    "EscrowRecords",
    "claim_escrow",
    "claim_escrows",
    "escrow_places",
    "escrow_records",
    "open_escrow",
    "refund_escrow",
    "register_attester",
    "release_escrow",
]

#: The furthest deadline an escrow may have.
MAX_ESCROW_DAYS = 366

EscrowRecords = tuple[Escrow, EscrowRelease | None, EscrowRefund | None, EscrowClaim | None]


def _own_pin(bank: BankInfo) -> bytes:
    # Within one bank the records are its own word; the pin (the bank's peers alone) only
    # satisfies the rule that these record types are always written with one.
    return all_of_policy([bank.msp_id])


def escrow_places(payer: BankInfo, payee: BankInfo) -> tuple[Place, Place]:
    """Where the payer bank's and the payee bank's escrow records live."""
    if payer.name == payee.name:
        own = Place.acct(payer.name)
        return own, own
    return Place.between(payer, payee), Place.between(payee, payer)


def _pin(writer: BankInfo, other: BankInfo) -> bytes:
    return _own_pin(writer) if writer.name == other.name else pair_pin(writer, other)


_R = TypeVar("_R")


def _or_none(found: _R | Anomaly | None) -> _R | None:
    return None if isinstance(found, Anomaly) else found


async def escrow_records(
    tx: Tx, payer: BankInfo, payee: BankInfo, escrow_id: str
) -> EscrowRecords:
    """The escrow and the release, refund and claim beside it (four point reads, all in the
    read set), each bound to where it lives; a release, refund or claim that is not valid
    there counts as absent (it can block nothing). An escrow that is not valid where it
    lives is refused, naming the collection."""
    there, back = escrow_places(payer, payee)
    found = await tx.ledger.get_bound(Escrow, there, escrow_key(escrow_id))
    if found is None:
        raise NotFound("the escrow does not exist (or has not reached this peer yet)")
    if isinstance(found, Anomaly):
        raise CorruptState(f"the escrow in {there.collection} is not valid there "
                           f"({found.what}): it counts for nobody")
    release = _or_none(await tx.ledger.get_bound(EscrowRelease, there,
                                                 escrow_release_key(escrow_id)))
    refund = _or_none(await tx.ledger.get_bound(EscrowRefund, there,
                                                escrow_refund_key(escrow_id)))
    claim = _or_none(await tx.ledger.get_bound(EscrowClaim, back, escrow_claim_key(escrow_id)))
    return found, release, refund, claim


async def _party_key(tx: Tx, bank: BankInfo, name: str | None, role: str) -> str:
    if name is None:
        return ""
    party = await tx.ledger.get(Attester, acct_collection(bank.name), attester_key(name))
    if party is None:
        raise NotFound(f"request.{role} is not a party this bank registered")
    return party.public_key_pem


async def _payer_account(tx: Tx, bank: BankInfo, escrow: Escrow) -> Account:
    """The payer's account: named by the escrow within a bank, by the bank's own note across
    banks (the pair's record never carries it)."""
    if escrow.payer_account is not None:
        return await read_account(tx, bank, escrow.payer_account, "payer")
    note = await tx.ledger.get(EscrowNote, acct_collection(bank.name),
                               escrow_note_key(escrow.escrow_id))
    if note is None:
        raise NotFound("the bank opened no such escrow")
    return await read_account(tx, bank, note.payer_account, "payer")


def _event(tx: Tx, own: BankInfo, other: BankInfo) -> None:
    if own.name != other.name:
        tx.ledger.set_event(EVENT_ESCROW, {"banks": [other.name]})


@declare()
async def register_attester(tx: Tx, req: RegisterAttesterRequest) -> dict[str, object]:
    """Trust a party's P-256 key to sign statements about this bank's customers' escrows."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    check_public_key(req.public_key_pem)
    coll, key = acct_collection(bank.name), attester_key(req.name)
    if await tx.ledger.get(Attester, coll, key) is not None:
        raise AlreadyExists("a party of that name is registered")
    tx.ledger.put(coll, key, Attester(name=req.name, public_key_pem=req.public_key_pem,
                                      registered_at=tx.at, tx_id=tx.tx_id))
    return done(tx)


@declare()
async def open_escrow(tx: Tx, req: OpenEscrowRequest) -> dict[str, object]:
    """Debit the payer into escrow: the payee is credited once the condition holds."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payee_bank = member_bank(registry, req.payee_bank, "payee_bank")
    within = payee_bank.name == bank.name
    await refuse_suspended(tx, registry, bank, [] if within else [payee_bank], "new payment")
    ref_key = await claim_reference(tx, bank, req.reference, accounts=(
        req.payer_account, *((req.payee_account,) if within else ())))
    payer = await read_account(tx, bank, req.payer_account, "payer")
    hold = await debit_hold(tx, registry, bank, payer)
    deadline = parse_timestamp(req.deadline)
    if deadline <= tx.now:
        raise InvalidArgument("request.deadline must be after the transaction's time")
    if deadline > tx.now + timedelta(days=MAX_ESCROW_DAYS):
        raise InvalidArgument(f"request.deadline must be within {MAX_ESCROW_DAYS} days")
    if within:
        payee = await read_account(tx, bank, req.payee_account, "payee")
        if payee.currency != payer.currency:
            raise CurrencyMismatch("the accounts are not in the same currency")
    elif not registry.issues(payee_bank.name, payer.currency):
        raise CurrencyMismatch("the payee bank issues no token in the payer's currency")
    attester_pem = await _party_key(tx, bank, req.attester, "attester")
    arbiter_pem = await _party_key(tx, bank, req.arbiter, "arbiter")
    escrow_id = req.escrow_id or tx.deriver.escrow_id(tx.tx_id)
    there, _ = escrow_places(bank, payee_bank)
    if await tx.ledger.get(Escrow, there.collection, escrow_key(escrow_id)) is not None:
        raise AlreadyExists("an escrow with that id exists")
    payer = debit(payer, [req.amount], day=day_of(tx.now), hold=hold)
    # Nothing below refuses.
    payer = record_history(tx, bank, payer, HistoryKind.ESCROW_OUT, -req.amount,
                           counterparty_bank=payee_bank.name,
                           counterparty_account=req.payee_account, transfer_id=escrow_id,
                           detail="in escrow")
    save_account(tx, bank, payer)
    tx.ledger.put(there.collection, escrow_key(escrow_id), Escrow(
        escrow_id=escrow_id, payer_bank=bank.name, payee_bank=payee_bank.name,
        payee_account=req.payee_account, amount=req.amount, currency=payer.currency,
        created_at=tx.at, deadline=req.deadline, on_deadline=req.on_deadline,
        attester=req.attester or "", attester_key=attester_pem, arbiter=req.arbiter or "",
        arbiter_key=arbiter_pem, remittance=req.remittance, originator=dict(req.originator),
        payer_account=req.payer_account if within else None, tx_id=tx.tx_id,
    ), pin=_pin(bank, payee_bank))
    if not within:
        tx.ledger.put(acct_collection(bank.name), escrow_note_key(escrow_id), EscrowNote(
            escrow_id=escrow_id, payer_account=req.payer_account, payee_bank=payee_bank.name,
            amount=req.amount, currency=payer.currency, tx_id=tx.tx_id))
        record_supply(tx, bank, payer.currency, SupplyKind.OUT, req.amount, payee_bank.name,
                      escrow_id)
    write_reference(tx, bank, ref_key, "open_escrow", [escrow_id])
    _event(tx, bank, payee_bank)
    return done(tx)


def _credit_payee(tx: Tx, bank: BankInfo, payee: Account, escrow: Escrow) -> Account:
    if payee.currency != escrow.currency:
        raise CurrencyMismatch("the payee account is not in the escrow's currency")
    payee = credit(payee, escrow.amount)
    return record_history(tx, bank, payee, HistoryKind.ESCROW_IN, escrow.amount,
                          counterparty_bank=escrow.payer_bank, transfer_id=escrow.escrow_id)


@declare()
async def release_escrow(tx: Tx, req: ReleaseEscrowRequest) -> dict[str, object]:
    """At the payer's bank: release the escrow to the payee (the buyer confirmed; or the
    deadline passed and the terms release). Within a bank the payee is credited at once."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payee_bank = member_bank(registry, req.payee_bank, "payee_bank")
    escrow, release, refund, claim = await escrow_records(tx, bank, payee_bank, req.escrow_id)
    if release is not None or claim is not None:
        raise InvalidState("the escrow was released already")
    if refund is not None:
        raise InvalidState("the escrow was paid back")
    due = tx.now >= parse_timestamp(escrow.deadline)
    cause = "deadline" if due and escrow.on_deadline is DeadlineAction.RELEASE else "buyer"
    payer = await _payer_account(tx, bank, escrow)
    within = payee_bank.name == bank.name
    payee = (await read_account(tx, bank, escrow.payee_account, "payee")) if within else None
    credited = _credit_payee(tx, bank, payee, escrow) if payee is not None else None
    # Nothing below refuses.
    payer = record_history(tx, bank, payer, HistoryKind.ESCROW_RELEASED, 0,
                           counterparty_bank=payee_bank.name,
                           counterparty_account=escrow.payee_account,
                           transfer_id=escrow.escrow_id, detail=cause)
    save_account(tx, bank, payer)
    if credited is not None:
        save_account(tx, bank, credited)
    there, _ = escrow_places(bank, payee_bank)
    tx.ledger.put(there.collection, escrow_release_key(escrow.escrow_id), EscrowRelease(
        escrow_id=escrow.escrow_id, payer_bank=bank.name, payee_bank=payee_bank.name,
        amount=escrow.amount, currency=escrow.currency, cause=cause, released_at=tx.at,
        tx_id=tx.tx_id), pin=_pin(bank, payee_bank))
    _event(tx, bank, payee_bank)
    return done(tx)


def _statement_refusal(escrow: Escrow, statement: Statement | None) -> None:
    if statement is not None and verified_statement(escrow, statement) is None:
        raise InvalidArgument("request.statement does not hold for this escrow (signer, "
                              "key, signature, verdict or time)")


@declare()
async def claim_escrow(tx: Tx, req: ClaimEscrowRequest) -> dict[str, object]:
    """At the payee's bank: credit the payee, on the payer bank's release or a signed
    statement that holds (the attester's delivery before the deadline, the arbiter's ruling)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payer_bank = member_bank(registry, req.payer_bank, "payer_bank")
    # a claim makes the payer's bank owe this one: none toward a suspended bank
    await refuse_suspended(tx, registry, bank, [] if payer_bank == bank else [payer_bank],
                           "accept")
    payees: dict[str, Account] = {}
    await _claim_one(tx, bank, payer_bank, req.escrow_id, req.statement, payees)
    for account in payees.values():
        save_account(tx, bank, account)
    _event(tx, bank, payer_bank)
    return done(tx)


@declare()
async def claim_escrows(tx: Tx, req: ClaimEscrowsRequest) -> dict[str, object]:
    """Claim many escrows of one payer bank; credits summed per payee account; one code per
    escrow (``OK`` or why it was skipped: a skipped escrow writes nothing)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payer_bank = other_bank(registry, bank, req.payer_bank, "payer_bank")
    await refuse_suspended(tx, registry, bank, [payer_bank], "accept")
    payees: dict[str, Account] = {}

    async def claim(item: ClaimItem) -> None:
        await _claim_one(tx, bank, payer_bank, item.escrow_id, item.statement, payees)

    results = await each_on_its_own(req.items, claim, "none of the escrows can be claimed")
    for account in payees.values():
        save_account(tx, bank, account)
    _event(tx, bank, payer_bank)
    return {"tx_id": tx.tx_id, "results": results}


async def _claim_one(
    tx: Tx, bank: BankInfo, payer_bank: BankInfo, escrow_id: str,
    statement: Statement | None, payees: dict[str, Account],
) -> None:
    """Check (raising before any write), then credit the payee account held in ``payees``
    (saved once, by the caller) and write the claim and its supply record."""
    within = payer_bank.name == bank.name
    escrow, release, refund, claim = await escrow_records(tx, payer_bank, bank, escrow_id)
    if claim is not None or (within and release is not None):
        raise InvalidState("the escrow was paid already")
    if refund is not None and (within or refund.cause == "statement") and resolve(
            escrow, release, refund, None, tx.now).refund_counts:
        # (a refund on a signed statement is final for an honest payee bank, as is any within
        # one bank; one on the payer bank's own word at the deadline can still be outranked
        # by a delivery attested in time: see deposit_token.conditions)
        raise InvalidState("the escrow was paid back")
    if within and statement is None:
        raise InvalidArgument("request.statement is required within a bank "
                              "(a release credits the payee at once)")
    candidate = EscrowClaim(
        escrow_id=escrow.escrow_id, payer_bank=payer_bank.name, payee_bank=bank.name,
        amount=escrow.amount, currency=escrow.currency,
        basis="statement" if statement is not None else "release", claimed_at=tx.at,
        statement=statement.to_json() if statement is not None else {}, tx_id=tx.tx_id)
    resolution = resolve(escrow, release, refund, candidate, tx.now)
    if not resolution.claim_counts:
        _statement_refusal(escrow, statement)
        raise InvalidState("the condition to pay the escrow out is not proven")
    payee = payees.get(escrow.payee_account)
    if payee is None:
        payee = await read_account(tx, bank, escrow.payee_account, "payee")
    payees[escrow.payee_account] = _credit_payee(tx, bank, payee, escrow)
    # Nothing below refuses.
    _, back = escrow_places(payer_bank, bank)
    tx.ledger.put(back.collection, escrow_claim_key(escrow.escrow_id), candidate,
                  pin=_pin(bank, payer_bank))
    if not within:
        record_supply(tx, bank, escrow.currency, SupplyKind.IN, escrow.amount,
                      payer_bank.name, escrow.escrow_id)


@declare()
async def refund_escrow(tx: Tx, req: RefundEscrowRequest) -> dict[str, object]:
    """At the payer's bank: credit the payer back, after the deadline if the terms say
    refund, or on the arbiter's signed refund ruling; never once a release is proven."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payee_bank = member_bank(registry, req.payee_bank, "payee_bank")
    escrow, release, refund, claim = await escrow_records(tx, bank, payee_bank, req.escrow_id)
    if refund is not None:
        raise InvalidState("the escrow was paid back already")
    if release is not None:
        raise InvalidState("the payer bank let the escrow go to the payee")
    if claim is not None and resolve(escrow, None, None, claim, tx.now).claim_counts:
        raise InvalidState("the escrow was paid to the payee")
    if req.statement is None:
        if tx.now < parse_timestamp(escrow.deadline):
            raise NotExpired("the escrow's deadline has not passed")
        if escrow.on_deadline is DeadlineAction.RELEASE:
            raise InvalidState("at its deadline the escrow goes to the payee (its terms)")
    candidate = EscrowRefund(
        escrow_id=escrow.escrow_id, payer_bank=bank.name, payee_bank=payee_bank.name,
        amount=escrow.amount, currency=escrow.currency,
        cause="statement" if req.statement is not None else "deadline", refunded_at=tx.at,
        statement=req.statement.to_json() if req.statement is not None else {},
        tx_id=tx.tx_id)
    resolution = resolve(escrow, release, candidate, claim, tx.now)
    if not resolution.refund_counts:
        _statement_refusal(escrow, req.statement)
        raise InvalidState("the escrow's condition to pay the payee is proven")
    payer = credit(await _payer_account(tx, bank, escrow), escrow.amount, refund=True)
    # Nothing below refuses.
    payer = record_history(tx, bank, payer, HistoryKind.ESCROW_REFUND, escrow.amount,
                           counterparty_bank=payee_bank.name, transfer_id=escrow.escrow_id,
                           detail=candidate.cause)
    save_account(tx, bank, payer)
    there, _ = escrow_places(bank, payee_bank)
    tx.ledger.put(there.collection, escrow_refund_key(escrow.escrow_id), candidate,
                  pin=_pin(bank, payee_bank))
    if payee_bank.name != bank.name:
        record_supply(tx, bank, escrow.currency, SupplyKind.REFUND, escrow.amount,
                      payee_bank.name, escrow.escrow_id)
    _event(tx, bank, payee_bank)
    return done(tx)
