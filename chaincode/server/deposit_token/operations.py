"""Transaction bodies: read state, apply :mod:`deposit_token.rules`, buffer the writes.

Owns: access control (MSP id and role attributes of the client; the serving organization of
this chaincode server), which keys each transaction reads and writes, and what it returns.
Every function takes a :class:`Tx` and a parsed request and either returns a JSON-able value
or raises a :class:`~deposit_token.errors.DepositTokenError`; writes are buffered in the
:class:`~deposit_token.ledger.Ledger` and sent by the caller only when the body returned.

What each write transaction reads and writes (``A`` the payer's bank, ``B`` the payee's):

* a debit point-reads the account key and the regulator's hold key before it writes;
* ``accept`` reads ``refund/<id>`` in ``pair-A-B``; ``refund`` reads ``dec/<id>`` in
  ``pair-B-A``; each writes the key the other reads, so MVCC lets at most one commit;
* supply records, history records, transfer records and their ``open/`` index entries are
  new keys nobody else writes;
* no public key is written except by ``init_network``.

Must not: put a private value in a return value of a write, an event or an error message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from .errors import (
    AlreadyExists,
    AlreadyInitialized,
    CorruptState,
    CurrencyMismatch,
    DuplicateReference,
    InvalidArgument,
    NotAuthorized,
    NotFound,
    NotInitialized,
    WrongEndorser,
)
from .keys import (
    REGISTRY_KEY,
    Deriver,
    account_key,
    acct_collection,
    decision_key,
    history_key,
    hold_key,
    holds_collection,
    opened_key,
    outgoing_key,
    pair_collection,
    prefix_range,
    reference_key,
    refund_key,
    settlement_key,
    supply_key,
    token_key,
    transfer_key,
)
from .ledger import Ledger
from .model import (
    BankInfo,
    Registry,
    canonical_json,
    day_of,
    format_ts,
    loads_object,
)
from .records import (
    Account,
    Decision,
    HistoryKind,
    HistoryRecord,
    Hold,
    Opened,
    Outcome,
    OutgoingRecord,
    ReferenceRecord,
    Refund,
    Settlement,
    SupplyKind,
    SupplyRecord,
    Transfer,
    decode,
)
from .requests import (
    AcceptRequest,
    AccountRef,
    AuditRequest,
    BatchPayment,
    BatchRequest,
    Direction,
    HistoryRequest,
    HoldRequest,
    InitiateRequest,
    ListAccountsRequest,
    MoveRequest,
    ObligationsRequest,
    OpenAccountRequest,
    PendingRequest,
    ReferenceRequest,
    RefundRequest,
    RejectRequest,
    ReleaseHoldRequest,
    SetLimitsRequest,
    SetStatusRequest,
    SettlementRequest,
    SupplyRequest,
    TransferLookup,
    TransferRequest,
)
from .rules import (
    DebitKind,
    Effect,
    LedgerPosition,
    Tally,
    TransferStatus,
    add_history,
    audit_report,
    change_status,
    check_accept,
    check_refund,
    check_reject,
    credit,
    debit,
    obligations_report,
    set_limits,
    tally_transfer,
    transfer_status,
)

__all__ = [
    "EVENT_DECIDED",
    "EVENT_PENDING",
    "ROLE_AUDITOR",
    "ROLE_MINTER",
    "ROLE_OPERATOR",
    "Caller",
    "Tx",
]

ROLE_MINTER = "minter"
ROLE_OPERATOR = "operator"
ROLE_AUDITOR = "auditor"
ROLES = (ROLE_MINTER, ROLE_OPERATOR, ROLE_AUDITOR)
#: Event of ``initiate_transfer`` and ``batch_payout``: payload ``{"payee_banks": [...]}``.
EVENT_PENDING = "TransferPending"
#: Event of ``accept_transfer`` and ``reject_transfer``: payload ``{"payer_bank": ...}``.
EVENT_DECIDED = "TransferDecided"


@dataclass(frozen=True)
class Caller:
    """The client that signed the proposal: its MSP id and the roles its certificate carries
    (a role is an attribute whose value is ``"true"``)."""

    msp_id: str
    roles: frozenset[str] = frozenset()

    @classmethod
    def from_identity(cls, msp_id: str, get_attribute: Callable[[str], str | None]) -> Caller:
        """Build from a ``ClientIdentity``-like pair."""
        return cls(msp_id, frozenset(r for r in ROLES if get_attribute(r) == "true"))


@dataclass
class Tx:
    """Everything a transaction body needs."""

    ledger: Ledger
    caller: Caller
    server_msp: str
    deriver: Deriver
    tx_id: str
    now: datetime
    #: The registry, if the server already read it from the ledger in an earlier transaction
    #: (it never changes after ``init_network``); set by :func:`load_registry` otherwise.
    registry: Registry | None = None
    _records: int = field(default=0, init=False)

    @property
    def at(self) -> str:
        """The transaction timestamp as stored."""
        return format_ts(self.now)

    def next_tag(self, purpose: str) -> str:
        """A fresh record tag: ``HMAC(secret, tx id, purpose, n)``."""
        self._records += 1
        return self.deriver.record_tag(self.tx_id, purpose, self._records)


def _done(tx: Tx) -> dict[str, object]:
    # What every write returns: nothing private, not even an opaque id (a return value is in
    # the block; an id there would let anyone compute the key hash of its records).
    return {"tx_id": tx.tx_id}


# --------------------------------------------------------------------------- registry


async def load_registry(tx: Tx) -> Registry:
    """The registry (``NOT_INITIALIZED`` before ``init_network``).

    Read from public state once per server and channel, then handed to every later
    transaction in ``tx.registry``: ``init_network`` writes it once and refuses a second time,
    so the committed value never changes. A transaction given a cached registry does not read
    the key (it is not in its read set, which no rule between banks relies on).
    """
    if tx.registry is not None:
        return tx.registry
    raw = await tx.ledger.get_public(REGISTRY_KEY)
    if raw is None:
        raise NotInitialized("init_network has not run")
    tx.registry = Registry.parse(loads_object(raw, "registry", CorruptState), CorruptState)
    return tx.registry


async def init_network(tx: Tx, argument: str) -> dict[str, object]:
    """Write the registry and every token definition, once, endorsed by every bank."""
    if await tx.ledger.get_public(REGISTRY_KEY) is not None:
        raise AlreadyInitialized("the registry exists already")
    registry = Registry.parse(loads_object(argument, "init_network argument", InvalidArgument),
                              InvalidArgument)
    if registry.bank_by_msp(tx.server_msp) is None and not registry.is_regulator(tx.server_msp):
        raise WrongEndorser("this server's organization is not in the registry")
    if registry.bank_by_msp(tx.caller.msp_id) is None and not registry.is_regulator(
        tx.caller.msp_id
    ):
        raise NotAuthorized("the client's organization is not in the registry")
    tx.ledger.put_public(REGISTRY_KEY, canonical_json(registry.to_json()))
    count = 0
    for token in registry.tokens():
        tx.ledger.put_public(token_key(token.issuer, token.currency),
                             canonical_json(token.to_json()))
        count += 1
    return {"tx_id": tx.tx_id, "banks": len(registry.banks), "tokens": count}


async def get_registry(tx: Tx) -> dict[str, object]:
    """The registry and the token definitions (public)."""
    registry = await load_registry(tx)
    return {**registry.to_json(), "tokens": [t.to_json() for t in registry.tokens()]}


# --------------------------------------------------------------------------- access control


def _serving_bank(tx: Tx, registry: Registry) -> BankInfo:
    bank = registry.bank_by_msp(tx.server_msp)
    if bank is None:
        raise WrongEndorser("this chaincode server does not serve a bank")
    return bank


def authorize_bank_write(tx: Tx, registry: Registry, role: str) -> BankInfo:
    """The serving bank, if the client is that bank's and has ``role``.

    A bank's chaincode server endorses only its own bank's writes: a client of another
    organization is refused here (an honest server's courtesy; the collection policies are
    what actually stop a dishonest one).
    """
    bank = _serving_bank(tx, registry)
    if tx.caller.msp_id != bank.msp_id:
        if registry.bank_by_msp(tx.caller.msp_id) or registry.is_regulator(tx.caller.msp_id):
            raise WrongEndorser(f"this server endorses only the writes of {bank.name}")
        raise NotAuthorized("the client's organization is not a member bank")
    if role not in tx.caller.roles:
        raise NotAuthorized(f"the {role} role is required")
    return bank


def authorize_regulator_write(tx: Tx, registry: Registry) -> str:
    """The regulator's MSP id, if the client is the regulator's auditor on its own server."""
    regulator = registry.regulator_msp_id
    if regulator is None:
        raise NotAuthorized("the network has no regulator")
    if tx.caller.msp_id != regulator:
        raise NotAuthorized("only the regulator writes holds")
    if tx.server_msp != regulator:
        raise WrongEndorser("only the regulator's server endorses holds")
    if ROLE_AUDITOR not in tx.caller.roles:
        raise NotAuthorized(f"the {ROLE_AUDITOR} role is required")
    return regulator


def authorize_read(tx: Tx, registry: Registry, banks: Sequence[BankInfo]) -> None:
    """Reading data shared by ``banks`` (one bank's collection, or a pair's two).

    Allowed to a client of one of those banks with any role, and to the regulator's auditor;
    served only by a peer that is a member (one of those banks, or the regulator).
    """
    caller = tx.caller
    if any(b.msp_id == caller.msp_id for b in banks):
        if not caller.roles:
            raise NotAuthorized("a role (operator, minter or auditor) is required")
    elif registry.is_regulator(caller.msp_id):
        if ROLE_AUDITOR not in caller.roles:
            raise NotAuthorized(f"the {ROLE_AUDITOR} role is required")
    else:
        raise NotAuthorized("only the banks concerned and the regulator read this")
    if not (any(b.msp_id == tx.server_msp for b in banks) or registry.is_regulator(tx.server_msp)):
        raise WrongEndorser("this peer is not a member of the collection")


def _target_bank(tx: Tx, registry: Registry, name: str | None) -> BankInfo:
    """The bank a read is about: named, or the caller's own."""
    if name is None:
        bank = registry.bank_by_msp(tx.caller.msp_id)
        if bank is None:
            raise InvalidArgument("request.bank is required for a client that is not a bank's")
        return bank
    return _member(registry, name, "bank")


def _member(registry: Registry, name: str, field_name: str) -> BankInfo:
    bank = registry.bank(name)
    if bank is None:
        raise NotFound(f"request.{field_name} is not a member bank")
    return bank


def _other_bank(registry: Registry, own: BankInfo, name: str, field_name: str) -> BankInfo:
    other = _member(registry, name, field_name)
    if other.name == own.name:
        raise InvalidArgument(f"request.{field_name} must be another bank")
    return other


# --------------------------------------------------------------------------- shared steps


async def _claim_reference(
    tx: Tx, bank: BankInfo, reference: str, accounts: Sequence[str] = ()
) -> str:
    """The idempotency key of ``reference``; ``DUPLICATE_REFERENCE`` if it was applied.

    ``accounts`` (of the serving bank) are read in the same round trip: a transaction
    that goes on to read them then finds them in the ledger's cache.
    """
    key = reference_key(tx.deriver.reference_tag("payment", reference))
    acct = acct_collection(bank.name)
    await tx.ledger.prefetch(acct, {key: ReferenceRecord,
                                    **{account_key(a): Account for a in accounts}})
    if await tx.ledger.get(ReferenceRecord, acct, key) is not None:
        raise DuplicateReference("the client reference was applied already")
    return key


def _write_reference(tx: Tx, bank: BankInfo, key: str, kind: str, ids: Sequence[str]) -> None:
    tx.ledger.put(acct_collection(bank.name), key,
                  ReferenceRecord(kind=kind, tx_id=tx.tx_id, at=tx.at, ids=tuple(ids)))


async def _account(tx: Tx, bank: BankInfo, account_id: str, role: str = "") -> Account:
    acc = await tx.ledger.get(Account, acct_collection(bank.name), account_key(account_id))
    if acc is None:
        raise NotFound(f"the {role + ' ' if role else ''}account does not exist")
    if acc.account_id != account_id or acc.bank != bank.name:
        raise CorruptState("the account record does not match its key")
    return acc


async def _hold(tx: Tx, registry: Registry, bank: BankInfo, account_id: str) -> Hold | None:
    """The regulator's hold on an account (none if the network has no regulator)."""
    if registry.regulator_msp_id is None:
        return None
    return await tx.ledger.get(Hold, holds_collection(bank.name), hold_key(account_id))


def _save(tx: Tx, bank: BankInfo, account: Account) -> None:
    tx.ledger.put(acct_collection(bank.name), account_key(account.account_id), account)


def _history(
    tx: Tx, bank: BankInfo, account: Account, kind: HistoryKind, delta: int, **extra: Any
) -> Account:
    account, record = add_history(account, kind, delta, tx_id=tx.tx_id, at=tx.at, **extra)
    tx.ledger.put(acct_collection(bank.name), history_key(record.account_id, record.seq), record)
    return account


def _supply(
    tx: Tx,
    bank: BankInfo,
    currency: str,
    kind: SupplyKind,
    amount: int,
    counterparty: str | None = None,
    transfer_id: str | None = None,
) -> None:
    record = SupplyRecord(currency=currency, kind=kind, amount=amount, counterparty=counterparty,
                          transfer_id=transfer_id, tx_id=tx.tx_id, at=tx.at)
    tx.ledger.put(acct_collection(bank.name), supply_key(currency, tx.next_tag("supply")), record)


# --------------------------------------------------------------------------- accounts


async def open_account(tx: Tx, req: OpenAccountRequest) -> dict[str, object]:
    """Open an account at the serving bank (operator)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    if not registry.issues(bank.name, req.currency):
        raise CurrencyMismatch("the bank issues no token in request.currency")
    ref_key = await _claim_reference(tx, bank, req.reference,
                                     accounts=(req.account_id,) if req.account_id else ())
    account_id = req.account_id or tx.deriver.account_id(tx.tx_id)
    if await tx.ledger.get(Account, acct_collection(bank.name), account_key(account_id)):
        raise AlreadyExists("an account with that id exists")
    account = Account(account_id=account_id, bank=bank.name, currency=req.currency,
                      owner_ref=req.owner_ref, limits=req.limits, opened_at=tx.at)
    account = _history(tx, bank, account, HistoryKind.OPENED, 0)
    _save(tx, bank, account)
    _write_reference(tx, bank, ref_key, "open_account", [account_id])
    return _done(tx)


async def set_account_status(tx: Tx, req: SetStatusRequest) -> dict[str, object]:
    """Freeze, unfreeze or close an account (the bank's operator)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    account = change_status(await _account(tx, bank, req.account_id), req.status)
    account = _history(tx, bank, account, HistoryKind.STATUS, 0, detail=req.status.value)
    _save(tx, bank, account)
    return _done(tx)


async def set_account_limits(tx: Tx, req: SetLimitsRequest) -> dict[str, object]:
    """Replace an account's single-payment and daily-outflow limits (the bank's operator)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    account = set_limits(await _account(tx, bank, req.account_id), req.limits)
    account = _history(tx, bank, account, HistoryKind.LIMITS, 0)
    _save(tx, bank, account)
    return _done(tx)


# --------------------------------------------------------------------------- money in one bank


async def mint(tx: Tx, req: MoveRequest) -> dict[str, object]:
    """A deposit arrived: credit an account with new tokens of the bank (minter)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_MINTER)
    ref_key = await _claim_reference(tx, bank, req.reference, accounts=(req.account_id,))
    account = credit(await _account(tx, bank, req.account_id), req.amount)
    account = _history(tx, bank, account, HistoryKind.MINT, req.amount)
    _save(tx, bank, account)
    _supply(tx, bank, account.currency, SupplyKind.MINT, req.amount)
    _write_reference(tx, bank, ref_key, "mint", [])
    return _done(tx)


async def burn(tx: Tx, req: MoveRequest) -> dict[str, object]:
    """A redemption: debit an account and retire the tokens (minter)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_MINTER)
    ref_key = await _claim_reference(tx, bank, req.reference, accounts=(req.account_id,))
    account = await _account(tx, bank, req.account_id)
    hold = await _hold(tx, registry, bank, req.account_id)
    account = debit(account, [req.amount], day=day_of(tx.now), hold=hold, kind=DebitKind.BURN)
    account = _history(tx, bank, account, HistoryKind.BURN, -req.amount)
    _save(tx, bank, account)
    _supply(tx, bank, account.currency, SupplyKind.BURN, req.amount)
    _write_reference(tx, bank, ref_key, "burn", [])
    return _done(tx)


async def transfer(tx: Tx, req: TransferRequest) -> dict[str, object]:
    """A payment between two accounts of the serving bank (operator)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    ref_key = await _claim_reference(tx, bank, req.reference,
                                     accounts=(req.from_account, req.to_account))
    payer = await _account(tx, bank, req.from_account, "payer")
    payee = await _account(tx, bank, req.to_account, "payee")
    if payee.currency != payer.currency:
        raise CurrencyMismatch("the accounts are not in the same currency")
    hold = await _hold(tx, registry, bank, payer.account_id)
    payer = debit(payer, [req.amount], day=day_of(tx.now), hold=hold)
    payee = credit(payee, req.amount)
    payer = _history(tx, bank, payer, HistoryKind.TRANSFER_OUT, -req.amount,
                     counterparty_bank=bank.name, counterparty_account=payee.account_id)
    payee = _history(tx, bank, payee, HistoryKind.TRANSFER_IN, req.amount,
                     counterparty_bank=bank.name, counterparty_account=payer.account_id)
    _save(tx, bank, payer)
    _save(tx, bank, payee)
    _write_reference(tx, bank, ref_key, "transfer", [])
    return _done(tx)


# --------------------------------------------------------------------------- across banks


async def initiate_transfer(tx: Tx, req: InitiateRequest) -> dict[str, object]:
    """Phase one of a cross-bank transfer, endorsed by the payer's bank alone."""
    return await _payout(tx, "initiate_transfer", req.reference, req.payer_account,
                         (req.payment,), req.ttl_seconds, req.originator, cross_only=True)


async def batch_payout(tx: Tx, req: BatchRequest) -> dict[str, object]:
    """One debit of the payer, then a transfer to each payee (one transaction)."""
    return await _payout(tx, "batch_payout", req.reference, req.payer_account, req.payments,
                         req.ttl_seconds, req.originator, cross_only=False)


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
) -> dict[str, object]:
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    local = [p.payee_account for p in payments if p.payee_bank == bank.name]
    ref_key = await _claim_reference(tx, bank, reference, accounts=(payer_id, *local))
    payer = await _account(tx, bank, payer_id, "payer")
    hold = await _hold(tx, registry, bank, payer_id)
    acct = acct_collection(bank.name)
    expires_at = format_ts(tx.now + timedelta(seconds=ttl_seconds))

    # Validate every payment and read what it needs before debiting anything.
    plan: list[tuple[BatchPayment, str | None]] = []
    for i, p in enumerate(payments):
        if p.payee_bank == bank.name:
            if cross_only:
                raise InvalidArgument("request.payee_bank must be another bank (use transfer)")
            if p.payee_account == payer_id:
                raise InvalidArgument("a payment may not pay the payer's own account")
            payee = await _account(tx, bank, p.payee_account, "payee")
            if payee.currency != payer.currency:
                raise CurrencyMismatch("the accounts are not in the same currency")
            plan.append((p, None))
            continue
        other = _member(registry, p.payee_bank, "payee_bank")
        if not registry.issues(other.name, payer.currency):
            raise CurrencyMismatch("the payee bank issues no token in the payer's currency")
        transfer_id = p.transfer_id or tx.deriver.transfer_id(tx.tx_id, i)
        pair = pair_collection(bank.name, other.name)
        if (
            await tx.ledger.get(Transfer, pair, transfer_key(transfer_id)) is not None
            or await tx.ledger.get(OutgoingRecord, acct, outgoing_key(transfer_id)) is not None
        ):
            raise AlreadyExists("a transfer with that id exists")
        plan.append((p, transfer_id))

    after = debit(payer, [p.amount for p in payments], day=day_of(tx.now), hold=hold)
    running = replace(after, balance=payer.balance)
    ids: list[str] = []
    payee_banks: set[str] = set()
    for p, tid in plan:
        running = replace(running, balance=running.balance - p.amount)
        if tid is None:
            payee = credit(await _account(tx, bank, p.payee_account, "payee"), p.amount)
            payee = _history(tx, bank, payee, HistoryKind.TRANSFER_IN, p.amount,
                             counterparty_bank=bank.name, counterparty_account=payer_id)
            _save(tx, bank, payee)
            running = _history(tx, bank, running, HistoryKind.TRANSFER_OUT, -p.amount,
                               counterparty_bank=bank.name, counterparty_account=p.payee_account)
            continue
        ids.append(tid)
        payee_banks.add(p.payee_bank)
        record = Transfer(
            transfer_id=tid, payer_bank=bank.name, payee_bank=p.payee_bank,
            payee_account=p.payee_account, amount=p.amount, currency=payer.currency,
            created_at=tx.at, expires_at=expires_at, originator=dict(originator),
            remittance=p.remittance, tx_id=tx.tx_id,
        )
        tx.ledger.put(pair_collection(bank.name, p.payee_bank), transfer_key(tid), record)
        tx.ledger.put(pair_collection(bank.name, p.payee_bank), opened_key(tx.at, tid),
                      Opened(transfer_id=tid, tx_id=tx.tx_id))
        tx.ledger.put(acct, outgoing_key(tid), OutgoingRecord(
            transfer_id=tid, payer_account=payer_id, payee_bank=p.payee_bank,
            amount=p.amount, currency=payer.currency, tx_id=tx.tx_id))
        running = _history(tx, bank, running, HistoryKind.PAYMENT_OUT, -p.amount,
                           counterparty_bank=p.payee_bank, counterparty_account=p.payee_account,
                           transfer_id=tid)
        _supply(tx, bank, payer.currency, SupplyKind.OUT, p.amount, p.payee_bank, tid)
    assert running.balance == after.balance
    _save(tx, bank, running)
    _write_reference(tx, bank, ref_key, kind, ids)
    if payee_banks:
        # Says only that something waits, and for whom (the collection names say as much).
        tx.ledger.set_event(EVENT_PENDING, {"payee_banks": sorted(payee_banks)})
    return _done(tx)


async def _transfer_records(
    tx: Tx, payer: BankInfo, payee: BankInfo, transfer_id: str
) -> tuple[Transfer, Decision | None, Refund | None]:
    """The transfer, its decision and its refund: three point reads (all in the read set)."""
    there = pair_collection(payer.name, payee.name)
    back = pair_collection(payee.name, payer.name)
    record = await tx.ledger.get(Transfer, there, transfer_key(transfer_id))
    if record is None:
        raise NotFound("the transfer does not exist (or has not reached this peer yet)")
    if (record.transfer_id, record.payer_bank, record.payee_bank) != (
        transfer_id, payer.name, payee.name
    ):
        raise CorruptState("the transfer record does not match its key")
    decision = await tx.ledger.get(Decision, back, decision_key(transfer_id))
    refund = await tx.ledger.get(Refund, there, refund_key(transfer_id))
    return record, decision, refund


async def accept_transfer(tx: Tx, req: AcceptRequest) -> dict[str, object]:
    """Phase two at the payee's bank: record ``accepted`` and credit the payee."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payer = _other_bank(registry, bank, req.payer_bank, "payer_bank")
    record, decision, refund = await _transfer_records(tx, payer, bank, req.transfer_id)
    check_accept(record, decision, refund, tx.now)
    payee = await _account(tx, bank, record.payee_account, "payee")
    if payee.currency != record.currency:
        raise CurrencyMismatch("the payee account is not in the transfer's currency")
    payee = credit(payee, record.amount)
    payee = _history(tx, bank, payee, HistoryKind.PAYMENT_IN, record.amount,
                     counterparty_bank=payer.name, transfer_id=record.transfer_id)
    _save(tx, bank, payee)
    tx.ledger.put(pair_collection(bank.name, payer.name), decision_key(record.transfer_id),
                  Decision(transfer_id=record.transfer_id, outcome=Outcome.ACCEPTED,
                           payer_bank=payer.name, payee_bank=bank.name, amount=record.amount,
                           currency=record.currency, decided_at=tx.at, tx_id=tx.tx_id))
    _supply(tx, bank, record.currency, SupplyKind.IN, record.amount, payer.name,
            record.transfer_id)
    tx.ledger.set_event(EVENT_DECIDED, {"payer_bank": payer.name})
    return _done(tx)


async def reject_transfer(tx: Tx, req: RejectRequest) -> dict[str, object]:
    """Phase two at the payee's bank: record ``rejected`` (the payer's bank then refunds)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payer = _other_bank(registry, bank, req.payer_bank, "payer_bank")
    record, decision, refund = await _transfer_records(tx, payer, bank, req.transfer_id)
    check_reject(record, decision, refund)
    tx.ledger.put(pair_collection(bank.name, payer.name), decision_key(record.transfer_id),
                  Decision(transfer_id=record.transfer_id, outcome=Outcome.REJECTED,
                           payer_bank=payer.name, payee_bank=bank.name, amount=record.amount,
                           currency=record.currency, decided_at=tx.at, reason=req.reason,
                           tx_id=tx.tx_id))
    tx.ledger.set_event(EVENT_DECIDED, {"payer_bank": payer.name})
    return _done(tx)


async def refund_transfer(tx: Tx, req: RefundRequest) -> dict[str, object]:
    """At the payer's bank, after a rejection or after expiry undecided: credit the payer."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payee_bank = _other_bank(registry, bank, req.payee_bank, "payee_bank")
    out = await tx.ledger.get(OutgoingRecord, acct_collection(bank.name),
                              outgoing_key(req.transfer_id))
    if out is None or out.payee_bank != payee_bank.name:
        raise NotFound("the bank initiated no such transfer")
    record, decision, refund = await _transfer_records(tx, bank, payee_bank, req.transfer_id)
    cause = check_refund(record, decision, refund, tx.now)
    payer = credit(await _account(tx, bank, out.payer_account, "payer"), record.amount,
                   refund=True)
    payer = _history(tx, bank, payer, HistoryKind.REFUND, record.amount,
                     counterparty_bank=payee_bank.name, transfer_id=record.transfer_id,
                     detail=cause.value)
    _save(tx, bank, payer)
    tx.ledger.put(pair_collection(bank.name, payee_bank.name), refund_key(record.transfer_id),
                  Refund(transfer_id=record.transfer_id, payer_bank=bank.name,
                         payee_bank=payee_bank.name, amount=record.amount,
                         currency=record.currency, cause=cause, refunded_at=tx.at,
                         tx_id=tx.tx_id))
    _supply(tx, bank, record.currency, SupplyKind.REFUND, record.amount, payee_bank.name,
            record.transfer_id)
    return _done(tx)


async def confirm_settlement(tx: Tx, req: SettlementRequest) -> dict[str, object]:
    """The creditor bank confirms the debtor's reserves arrived (RTGS reference, once)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    debtor = _other_bank(registry, bank, req.debtor_bank, "debtor_bank")
    if registry.decimals(req.currency) is None:
        raise InvalidArgument("request.currency is not a currency of the network")
    pair = pair_collection(bank.name, debtor.name)
    key = settlement_key(tx.deriver.reference_tag("rtgs", req.rtgs_reference))
    if await tx.ledger.get(Settlement, pair, key) is not None:
        raise DuplicateReference("the RTGS reference was confirmed already")
    tx.ledger.put(pair, key, Settlement(
        debtor_bank=debtor.name, creditor_bank=bank.name, currency=req.currency,
        amount=req.amount, rtgs_reference=req.rtgs_reference, settled_at=tx.at,
        tx_id=tx.tx_id))
    return _done(tx)


# --------------------------------------------------------------------------- regulator


async def set_hold(tx: Tx, req: HoldRequest) -> dict[str, object]:
    """The regulator freezes an account or holds an amount on it (its own collection)."""
    registry = await load_registry(tx)
    authorize_regulator_write(tx, registry)
    bank = _member(registry, req.bank, "bank")
    await _account(tx, bank, req.account_id)
    tx.ledger.put(holds_collection(bank.name), hold_key(req.account_id), Hold(
        account_id=req.account_id, frozen=req.frozen, held_amount=req.held_amount,
        reason=req.reason, set_at=tx.at, tx_id=tx.tx_id))
    return _done(tx)


async def release_hold(tx: Tx, req: ReleaseHoldRequest) -> dict[str, object]:
    """The regulator removes its hold on an account."""
    registry = await load_registry(tx)
    authorize_regulator_write(tx, registry)
    bank = _member(registry, req.bank, "bank")
    coll, key = holds_collection(bank.name), hold_key(req.account_id)
    if await tx.ledger.get(Hold, coll, key) is None:
        raise NotFound("there is no hold on the account")
    tx.ledger.delete(coll, key)
    return _done(tx)


# --------------------------------------------------------------------------- reads


async def get_account(tx: Tx, req: AccountRef) -> dict[str, object]:
    """An account with its balance, status, limits, today's outflow and any hold."""
    registry = await load_registry(tx)
    bank = _target_bank(tx, registry, req.bank)
    authorize_read(tx, registry, [bank])
    account = await _account(tx, bank, req.account_id)
    hold = await _hold(tx, registry, bank, req.account_id)
    today = day_of(tx.now).isoformat()
    held = hold.held_amount if hold else 0
    return {
        **account.to_json(),
        "outflow_today": account.outflow if account.outflow_day == today else 0,
        "hold": hold.to_json() if hold else None,
        "available": 0 if (hold and hold.frozen) else max(0, account.balance - held),
    }


async def get_history(tx: Tx, req: HistoryRequest) -> dict[str, object]:
    """An account's history records from ``from_seq`` (a range scan: read-only)."""
    registry = await load_registry(tx)
    bank = _target_bank(tx, registry, req.bank)
    authorize_read(tx, registry, [bank])
    start = history_key(req.account_id, req.from_seq)
    _, end = prefix_range(f"hist/{req.account_id}")
    rows = await tx.ledger.scan(acct_collection(bank.name), start, end, req.page_size + 1)
    records = [decode(HistoryRecord, value) for _, value in rows[: req.page_size]]
    return {
        "records": [r.to_json() for r in records],
        "next_seq": records[-1].seq + 1 if len(rows) > req.page_size and records else None,
    }


async def get_reference(tx: Tx, req: ReferenceRequest) -> dict[str, object]:
    """What a client reference did: its transaction, its kind and the ids it created."""
    registry = await load_registry(tx)
    bank = _target_bank(tx, registry, None)
    authorize_read(tx, registry, [bank])
    key = reference_key(tx.deriver.reference_tag("payment", req.reference))
    record = await tx.ledger.get(ReferenceRecord, acct_collection(bank.name), key)
    if record is None:
        raise NotFound("the reference was not applied")
    return record.to_json()


async def get_transfer(tx: Tx, req: TransferLookup) -> dict[str, object]:
    """A transfer with its decision, refund and status (either bank, or the regulator)."""
    registry = await load_registry(tx)
    payer = _member(registry, req.payer_bank, "payer_bank")
    payee = _other_bank(registry, payer, req.payee_bank, "payee_bank")
    authorize_read(tx, registry, [payer, payee])
    record, decision, refund = await _transfer_records(tx, payer, payee, req.transfer_id)
    return {
        "transfer": record.to_json(),
        "decision": decision.to_json() if decision else None,
        "refund": refund.to_json() if refund else None,
        "status": transfer_status(record, decision, refund, tx.now).value,
    }


# --------------------------------------------------------------------------- paginated scans


@dataclass(frozen=True)
class Segment:
    """One key range of one collection, and what to do with each entry of it."""

    collection: str
    prefix: str
    handle: Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]
    start: str | None = None  # the first key to read, inside the prefix's range


@dataclass
class ScanState:
    """Where a paginated scan stands; travels in the cursor between pages."""

    kind: str
    scope: str
    segment: int = 0
    after: str | None = None
    tally: Tally = field(default_factory=Tally)
    disputes: list[dict[str, object]] = field(default_factory=list)  # carried in the cursor
    items: list[dict[str, object]] = field(default_factory=list)  # this page's results

    def to_cursor(self) -> dict[str, object]:
        return {"kind": self.kind, "scope": self.scope, "segment": self.segment,
                "after": self.after, "tally": self.tally.to_json(),
                "disputes": list(self.disputes)}

    @classmethod
    def from_cursor(cls, kind: str, scope: str, cursor: Mapping[str, object] | None) -> ScanState:
        if cursor is None:
            return cls(kind, scope)
        if cursor.get("kind") != kind or cursor.get("scope") != scope:
            raise InvalidArgument("request.cursor belongs to another query")
        segment, after, tally = cursor.get("segment"), cursor.get("after"), cursor.get("tally")
        disputes = cursor.get("disputes", [])
        if not isinstance(disputes, list) or not all(isinstance(d, dict) for d in disputes):
            raise InvalidArgument("request.cursor.disputes is malformed")
        if type(segment) is not int or segment < 0:
            raise InvalidArgument("request.cursor.segment is malformed")
        if after is not None and not isinstance(after, str):
            raise InvalidArgument("request.cursor.after is malformed")
        if not isinstance(tally, dict):
            raise InvalidArgument("request.cursor.tally is malformed")
        return cls(kind, scope, segment, after, Tally.from_json(tally), list(disputes))


async def _scan(
    tx: Tx, state: ScanState, segments: Sequence[Segment], page_size: int
) -> bool:
    """Run the scan for one page; True when every segment is done."""
    budget = page_size
    while state.segment < len(segments) and budget > 0:
        seg = segments[state.segment]
        start, end = prefix_range(seg.prefix)
        if seg.start is not None:
            start = max(start, seg.start)
        if state.after is not None:
            start = state.after
        # One more than the budget tells whether the segment goes on; one more again when
        # resuming, because the range starts at the last key already counted.
        extra = 1 if state.after is None else 2
        rows = await tx.ledger.scan(seg.collection, start, end, budget + extra)
        if state.after is not None and rows and rows[0][0] == state.after:
            rows = rows[1:]
        chunk = rows[:budget]
        if chunk:
            await seg.handle(chunk)
            budget -= len(chunk)
        if len(rows) > len(chunk):
            state.after = chunk[-1][0]
            return False
        state.segment += 1
        state.after = None
    return state.segment >= len(segments)


def _paged(state: ScanState, done: bool, report: Mapping[str, object]) -> dict[str, object]:
    if done:
        return {"done": True, "cursor": None, **report}
    return {"done": False, "cursor": state.to_cursor(), **report}


async def get_supply(tx: Tx, req: SupplyRequest) -> dict[str, object]:
    """A token's supply: the sum of the issuing bank's supply records (paginated)."""
    registry = await load_registry(tx)
    bank = _target_bank(tx, registry, req.bank)
    authorize_read(tx, registry, [bank])
    if not registry.issues(bank.name, req.currency):
        raise NotFound("the bank issues no token in request.currency")
    state = ScanState.from_cursor("supply", f"{bank.name}/{req.currency}", req.cursor)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for _, value in rows:
            rec = decode(SupplyRecord, value)
            state.tally.add(("kind", rec.kind.value), rec.amount)
            state.tally.add(("supply",), rec.delta)

    done = await _scan(tx, state, [Segment(acct_collection(bank.name),
                                           f"sup/{req.currency}", handle)], req.page_size)
    by_kind = {k[1]: v for k, v in state.tally.items() if k[0] == "kind"}
    return _paged(state, done, {"bank": bank.name, "currency": req.currency,
                                "supply": state.tally.get("supply"), "by_kind": by_kind})


async def list_accounts(tx: Tx, req: ListAccountsRequest) -> dict[str, object]:
    """A bank's accounts (id, currency, owner reference, status, balance, the regulator's
    hold), paginated.

    The bank's own clients (any role) or the regulator's auditor naming the bank; both their
    peers are members of the bank's holds collection.
    """
    registry = await load_registry(tx)
    bank = _target_bank(tx, registry, req.bank)
    authorize_read(tx, registry, [bank])
    scope = f"{bank.name}/{req.currency or '*'}"
    state = ScanState.from_cursor("accounts", scope, req.cursor)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        accounts = [acc for acc in (decode(Account, value) for _, value in rows)
                    if req.currency is None or acc.currency == req.currency]
        holds: Sequence[Hold | None] = [None] * len(accounts)
        if accounts and registry.regulator_msp_id is not None:
            holds = await tx.ledger.get_many(Hold, holds_collection(bank.name),
                                             [hold_key(a.account_id) for a in accounts])
        for acc, hold in zip(accounts, holds, strict=True):
            state.items.append({
                "account_id": acc.account_id, "currency": acc.currency,
                "owner_ref": acc.owner_ref, "status": acc.status.value,
                "balance": acc.balance, "opened_at": acc.opened_at,
                "hold": hold.to_json() if hold else None,
            })

    done = await _scan(tx, state, [Segment(acct_collection(bank.name), "acct", handle)],
                       req.page_size)
    return _paged(state, done, {"bank": bank.name, "accounts": state.items})


async def _pair_lookups(
    tx: Tx, transfers: Sequence[Transfer]
) -> list[tuple[Transfer, Decision | None, Refund | None]]:
    """Decision and refund of each transfer, batched by collection."""
    out: list[tuple[Transfer, Decision | None, Refund | None]] = []
    by_pair: dict[tuple[str, str], list[Transfer]] = {}
    for t in transfers:
        by_pair.setdefault((t.payer_bank, t.payee_bank), []).append(t)
    found: dict[str, tuple[Decision | None, Refund | None]] = {}
    for (payer, payee), group in by_pair.items():
        decisions = await tx.ledger.get_many(
            Decision, pair_collection(payee, payer), [decision_key(t.transfer_id) for t in group])
        refunds = await tx.ledger.get_many(
            Refund, pair_collection(payer, payee), [refund_key(t.transfer_id) for t in group])
        for t, d, r in zip(group, decisions, refunds, strict=True):
            found[t.transfer_id] = (d, r)
    for t in transfers:
        d, r = found[t.transfer_id]
        out.append((t, d, r))
    return out


async def get_pending(tx: Tx, req: PendingRequest) -> dict[str, object]:
    """Transfers waiting on a bank: incoming undecided ones, or outgoing ones not yet final
    (undecided, expired, or rejected and not refunded). Paginated.

    Without ``since`` every transfer of the pairs is read; with it, only those created at or
    after ``since``, found through the ``open/`` index (a transfer written before the index
    existed is found by a scan without ``since`` only).
    """
    registry = await load_registry(tx)
    bank = _target_bank(tx, registry, req.bank)
    others = [b for b in registry.banks if b.name != bank.name
              and (req.counterparty is None or b.name == req.counterparty)]
    if req.counterparty is not None and not others:
        raise NotFound("request.counterparty is not another member bank")
    for other in others:
        authorize_read(tx, registry, [bank, other])
    scope = f"{bank.name}/{req.direction.value}/{req.counterparty or '*'}/{req.since or '*'}"
    state = ScanState.from_cursor("pending", scope, req.cursor)
    incoming = req.direction is Direction.INCOMING
    waiting = ({TransferStatus.PENDING, TransferStatus.EXPIRED} if incoming else
               {TransferStatus.PENDING, TransferStatus.EXPIRED, TransferStatus.REJECTED})

    async def handle(transfers: Sequence[Transfer]) -> None:
        for t, d, r in await _pair_lookups(tx, transfers):
            status = transfer_status(t, d, r, tx.now)
            if status in waiting:
                state.items.append({"transfer": t.to_json(), "status": status.value})

    async def handle_transfers(rows: Sequence[tuple[str, bytes]]) -> None:
        await handle([decode(Transfer, value) for _, value in rows])

    def handle_index(collection: str) -> Callable[[Sequence[tuple[str, bytes]]],
                                                  Awaitable[None]]:
        async def read(rows: Sequence[tuple[str, bytes]]) -> None:
            ids = [decode(Opened, value).transfer_id for _, value in rows]
            found = await tx.ledger.get_many(Transfer, collection,
                                             [transfer_key(i) for i in ids])
            if any(t is None for t in found):
                raise CorruptState("an index entry names a transfer that does not exist")
            await handle([t for t in found if t is not None])
        return read

    segments = []
    for o in others:
        coll = (pair_collection(o.name, bank.name) if incoming
                else pair_collection(bank.name, o.name))
        if req.since is None:
            segments.append(Segment(coll, "xfer", handle_transfers))
        else:
            segments.append(Segment(coll, "open", handle_index(coll),
                                    start=opened_key(req.since, "")))
    done = await _scan(tx, state, segments, req.page_size)
    return _paged(state, done, {"bank": bank.name, "direction": req.direction.value,
                                "transfers": state.items})


def _note_dispute(state: ScanState, t: Transfer, d: Decision | None, r: Refund | None) -> None:
    state.disputes.append({"transfer_id": t.transfer_id, "payer_bank": t.payer_bank,
                        "payee_bank": t.payee_bank, "currency": t.currency,
                        "amount": t.amount, "accept_tx_id": d.tx_id if d else None,
                        "refund_tx_id": r.tx_id if r else None})


async def get_obligations(tx: Tx, req: ObligationsRequest) -> dict[str, object]:
    """What two banks owe each other per currency: accepted less settled, read-only from the
    directional collections (paginated). A transfer both accepted and refunded counts by
    ledger order if ``ledger_order`` places both transactions, else it is listed as disputed.
    """
    registry = await load_registry(tx)
    a = _member(registry, req.bank_a, "bank_a")
    b = _other_bank(registry, a, req.bank_b, "bank_b")
    authorize_read(tx, registry, [a, b])
    state = ScanState.from_cursor("obligations", f"{a.name}/{b.name}", req.cursor)
    segments: list[Segment] = []
    for debtor, creditor in ((a, b), (b, a)):
        segments.append(Segment(pair_collection(creditor.name, debtor.name), "dec",
                                _decisions_handler(tx, state, debtor, creditor,
                                                   req.ledger_order)))
        segments.append(Segment(pair_collection(creditor.name, debtor.name), "settle",
                                _settlements_handler(state)))
    done = await _scan(tx, state, segments, req.page_size)
    report = obligations_report(state.tally, a.name, b.name) if done else {}
    return _paged(state, done, {**report, "disputes": state.disputes})


def _decisions_handler(
    tx: Tx,
    state: ScanState,
    debtor: BankInfo,
    creditor: BankInfo,
    order: Mapping[str, LedgerPosition],
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        decisions = [decode(Decision, value) for _, value in rows]
        accepted = [d for d in decisions if d.outcome is Outcome.ACCEPTED]
        there = pair_collection(debtor.name, creditor.name)
        ids = [d.transfer_id for d in accepted]
        transfers = await tx.ledger.get_many(Transfer, there, [transfer_key(i) for i in ids])
        refunds = await tx.ledger.get_many(Refund, there, [refund_key(i) for i in ids])
        for d, t, r in zip(accepted, transfers, refunds, strict=True):
            if t is None:
                state.tally.add(("anomaly", debtor.name, creditor.name,
                                 "accept_without_transfer"), 1)
                continue
            if tally_transfer(state.tally, t, d, r, order) is Effect.DISPUTED:
                _note_dispute(state, t, d, r)

    return handle


def _settlements_handler(
    state: ScanState,
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for _, value in rows:
            s = decode(Settlement, value)
            state.tally.add(("settled", s.debtor_bank, s.creditor_bank, s.currency), s.amount)

    return handle


async def audit(tx: Tx, req: AuditRequest) -> dict[str, object]:
    """The regulator's audit over every bank's and every pair's collections (paginated):
    balances against supply records, supply records against transfers, accepts and refunds,
    conservation per currency, obligations per pair (DESIGN §5, §7)."""
    registry = await load_registry(tx)
    if not registry.is_regulator(tx.caller.msp_id) or ROLE_AUDITOR not in tx.caller.roles:
        raise NotAuthorized("only the regulator's auditor runs the audit")
    if tx.server_msp != registry.regulator_msp_id:
        raise WrongEndorser("the audit runs on the regulator's peer")
    state = ScanState.from_cursor("audit", "all", req.cursor)
    segments: list[Segment] = []
    for bank in registry.banks:
        segments.append(Segment(acct_collection(bank.name), "acct", _accounts_handler(state)))
        segments.append(Segment(acct_collection(bank.name), "sup",
                                _supply_handler(state, bank.name)))
    for p in registry.banks:
        for q in registry.banks:
            if p.name == q.name:
                continue
            segments.append(Segment(pair_collection(p.name, q.name), "xfer",
                                    _transfers_handler(tx, state, req.ledger_order)))
            segments.append(Segment(pair_collection(p.name, q.name), "settle",
                                    _settlements_handler(state)))
    done = await _scan(tx, state, segments, req.page_size)
    report = audit_report(state.tally, registry.bank_names()) if done else {}
    return _paged(state, done, {**report, "disputes": state.disputes})


def _accounts_handler(state: ScanState) -> Callable[[Sequence[tuple[str, bytes]]],
                                                    Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for _, value in rows:
            acc = decode(Account, value)
            state.tally.add(("balance", acc.bank, acc.currency), acc.balance)
            state.tally.add(("accounts", acc.bank, acc.currency), 1)

    return handle


def _supply_handler(state: ScanState, bank: str) -> Callable[[Sequence[tuple[str, bytes]]],
                                                              Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for _, value in rows:
            rec = decode(SupplyRecord, value)
            state.tally.add(("supply", bank, rec.currency, rec.kind.value,
                             rec.counterparty or "-"), rec.amount)

    return handle


def _transfers_handler(
    tx: Tx, state: ScanState, order: Mapping[str, LedgerPosition]
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        transfers = [decode(Transfer, value) for _, value in rows]
        for t, d, r in await _pair_lookups(tx, transfers):
            if tally_transfer(state.tally, t, d, r, order) is Effect.DISPUTED:
                _note_dispute(state, t, d, r)

    return handle
