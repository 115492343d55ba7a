"""Pure rules of the deposit-token model: plain functions over frozen dataclasses.

Owns: balance arithmetic (a debit never goes below zero), limits (single payment, daily
outflow by the transaction's UTC date), bank freezes and regulator holds, account status
transitions, the state machine of a cross-bank transfer (initiate, accept, reject, refund,
expiry by the transaction timestamp), the ledger-order rule that settles a dispute between an
accept and a refund. The tallies built on these rules are :mod:`deposit_token.tallies`.

Must not: touch the ledger, read a clock or draw randomness. Every function either returns a
new value or raises a :class:`~deposit_token.errors.DepositTokenError` whose message carries
no value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from enum import Enum, StrEnum

from dtoken_wire.codec import MAX_AMOUNT, parse_timestamp
from dtoken_wire.enums import AccountStatus, TransferStatus
from dtoken_wire.requests import LedgerPosition, Limits

from .errors import (
    AccountClosed,
    AccountFrozen,
    CurrencyMismatch,
    Expired,
    InsufficientFunds,
    InvalidAmount,
    InvalidArgument,
    InvalidState,
    LimitExceeded,
    NotExpired,
)
from .records import (
    Account,
    Decision,
    HistoryKind,
    HistoryRecord,
    Hold,
    LockRecord,
    LockState,
    Outcome,
    Refund,
    RefundCause,
    Transfer,
)

__all__ = [
    "DebitKind",
    "Effect",
    "LedgerPosition",
    "add_history",
    "change_status",
    "check_accept",
    "check_amount",
    "check_refund",
    "check_reject",
    "classify",
    "credit",
    "debit",
    "set_limits",
    "transfer_status",
]



def check_amount(amount: object, what: str = "amount") -> int:
    """``amount`` if it is a positive ``int`` of minor units within bounds (never a float)."""
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise InvalidAmount(f"{what} must be a positive integer of minor units")
    return amount


# --------------------------------------------------------------------------- accounts


class DebitKind(Enum):
    """A payment counts against the account's limits; a burn (a redemption) does not."""

    PAYMENT = "payment"
    BURN = "burn"


def debit(
    account: Account,
    amounts: Sequence[int],
    *,
    day: date,
    hold: Hold | None,
    kind: DebitKind = DebitKind.PAYMENT,
) -> Account:
    """The account after debiting ``sum(amounts)`` in one go (a batch is one debit).

    Checks, in this order: the account is open (a burn may drain a closed account: a refund can
    land on one) and not frozen by its bank; no regulator freeze; each amount within the
    single-payment limit and the day's outflow within the daily limit (payments only); the
    balance less the regulator's held amount covers the total.
    """
    if not amounts:
        raise InvalidArgument("a debit needs at least one amount")
    for a in amounts:
        check_amount(a)
    total = sum(amounts)
    if total > MAX_AMOUNT:
        raise InvalidAmount("the total of the amounts is too large")
    if account.status is AccountStatus.CLOSED and kind is not DebitKind.BURN:
        raise AccountClosed("the account to debit is closed")
    if account.status is AccountStatus.FROZEN:
        raise AccountFrozen("the account to debit is frozen by its bank")
    if hold is not None and hold.frozen:
        raise AccountFrozen("the account to debit is frozen by a regulator's hold")
    # The day is the proposal's timestamp, which each endorser accepts within its time window
    # of its own clock (15 min by default) and nothing checks at commit: a client can date a
    # proposal before midnight after the account has moved into the next day. Such a payment
    # counts in the account's current day; only a later day starts afresh (ISO dates sort).
    outflow_day = max(day.isoformat(), account.outflow_day or "")
    outflow = account.outflow if account.outflow_day == outflow_day else 0
    if kind is DebitKind.PAYMENT:
        limits = account.limits
        if limits.single_payment is not None and max(amounts) > limits.single_payment:
            raise LimitExceeded("the amount exceeds the account's single-payment limit")
        # a lane of a laned account spends its own share of the daily limit (the shares add
        # up to the limit: docs/token-model.md, "Balance lanes")
        daily = account.share if account.lanes > 1 else limits.daily_outflow
        if daily is not None and outflow + total > daily:
            raise LimitExceeded("the payment exceeds the account's daily outflow limit")
        outflow += total
    held = hold.held_amount if hold is not None else 0
    if total > account.balance - held:
        raise InsufficientFunds("the available balance does not cover the debit")
    return replace(
        account,
        balance=account.balance - total,
        outflow_day=outflow_day if kind is DebitKind.PAYMENT else account.outflow_day,
        outflow=outflow if kind is DebitKind.PAYMENT else account.outflow,
    )


def credit(account: Account, amount: int, *, refund: bool = False) -> Account:
    """The account after crediting ``amount``.

    A frozen or closed account takes no new money, except a refund of its own payment: money
    that left an account can always come back to it.
    """
    check_amount(amount)
    if not refund:
        if account.status is AccountStatus.CLOSED:
            raise AccountClosed("the account to credit is closed")
        if account.status is AccountStatus.FROZEN:
            raise AccountFrozen("the account to credit is frozen by its bank")
    if account.balance + amount > MAX_AMOUNT:
        raise InvalidAmount("the credit would exceed the largest balance")
    return replace(account, balance=account.balance + amount)


def check_same_currency(currency: str, *accounts: Account) -> None:
    """Refuse (``CURRENCY_MISMATCH``) if any account is not in ``currency``."""
    for acc in accounts:
        if acc.currency != currency:
            raise CurrencyMismatch("the accounts are not in the same currency")


_TRANSITIONS: Mapping[AccountStatus, frozenset[AccountStatus]] = {
    AccountStatus.ACTIVE: frozenset({AccountStatus.FROZEN, AccountStatus.CLOSED}),
    AccountStatus.FROZEN: frozenset({AccountStatus.ACTIVE, AccountStatus.CLOSED}),
    AccountStatus.CLOSED: frozenset(),
}


def change_status(account: Account, status: AccountStatus) -> Account:
    """The account in ``status``: active <-> frozen, either -> closed (zero balance only);
    closed is final."""
    if status not in _TRANSITIONS[account.status]:
        raise InvalidState(
            f"an account cannot go from {account.status.value} to {status.value}"
        )
    if status is AccountStatus.CLOSED and account.balance != 0:
        raise InvalidState("only an account with a zero balance can be closed")
    return replace(account, status=status)


def set_limits(account: Account, limits: Limits) -> Account:
    """The account with new limits; a closed account keeps its own."""
    if account.status is AccountStatus.CLOSED:
        raise AccountClosed("the account is closed")
    return replace(account, limits=limits)


def add_history(
    account: Account,
    kind: HistoryKind,
    delta: int,
    *,
    tx_id: str,
    at: str,
    counterparty_bank: str | None = None,
    counterparty_account: str | None = None,
    transfer_id: str | None = None,
    detail: str = "",
) -> tuple[Account, HistoryRecord]:
    """The next history record of ``account`` (numbered ``account.seq``) and the account with
    its sequence advanced. ``account.balance`` is the balance after the change."""
    record = HistoryRecord(
        account_id=account.account_id,
        seq=account.seq,
        kind=kind,
        delta=delta,
        balance_after=account.balance,
        counterparty_bank=counterparty_bank,
        counterparty_account=counterparty_account,
        transfer_id=transfer_id,
        detail=detail,
        tx_id=tx_id,
        at=at,
    )
    return replace(account, seq=account.seq + 1), record


# --------------------------------------------------------------------------- transfers


def _expired(transfer: Transfer, now: datetime) -> bool:
    return now >= parse_timestamp(transfer.expires_at)


def transfer_status(
    transfer: Transfer, decision: Decision | None, refund: Refund | None, now: datetime
) -> TransferStatus:
    """The status of ``transfer`` given its decision and refund records, at ``now``."""
    accepted = decision is not None and decision.outcome is Outcome.ACCEPTED
    if accepted and refund is not None:
        return TransferStatus.DISPUTED
    if accepted:
        return TransferStatus.ACCEPTED
    if refund is not None:
        return TransferStatus.REFUNDED
    if decision is not None:
        return TransferStatus.REJECTED
    return TransferStatus.EXPIRED if _expired(transfer, now) else TransferStatus.PENDING


def check_accept(
    transfer: Transfer, decision: Decision | None, refund: Refund | None, now: datetime
) -> None:
    """Refuse an accept unless the transfer is undecided, unrefunded and not yet expired.

    The contract reads the refund key and the decision key before this (point reads), so a
    refund that commits first invalidates the accept by MVCC, and vice versa.
    """
    if refund is not None:
        raise InvalidState("the transfer was refunded")
    if decision is not None:
        raise InvalidState("the transfer was decided already")
    if _expired(transfer, now):
        raise Expired("the transfer expired before the accept")


def check_reject(transfer: Transfer, decision: Decision | None, refund: Refund | None) -> None:
    """Refuse a reject of a decided or refunded transfer (an expired one may be rejected)."""
    if refund is not None:
        raise InvalidState("the transfer was refunded")
    if decision is not None:
        raise InvalidState("the transfer was decided already")


def check_refund(
    transfer: Transfer, decision: Decision | None, refund: Refund | None, now: datetime
) -> RefundCause:
    """Why a refund is allowed: the payee bank rejected, or the transfer expired undecided."""
    if refund is not None:
        raise InvalidState("the transfer was refunded already")
    if decision is not None:
        if decision.outcome is Outcome.ACCEPTED:
            raise InvalidState("the payee bank accepted the transfer")
        return RefundCause.REJECTED
    if not _expired(transfer, now):
        raise NotExpired("the transfer is undecided and has not expired")
    return RefundCause.EXPIRED


class Effect(StrEnum):
    """What a transfer amounts to once the ledger has spoken."""

    IN_FLIGHT = "in_flight"  # debited at the payer, not credited anywhere yet
    ACCEPTED = "accepted"  # credited at the payee: the payer bank owes the payee bank
    REFUNDED = "refunded"  # credited back at the payer
    DISPUTED = "disputed"  # accept and refund both recorded, ledger order not supplied


def classify(
    decision: Decision | None,
    refund: Refund | None,
    order: Mapping[str, LedgerPosition] | None = None,
    hashes: tuple[str | None, str | None] = (None, None),
) -> Effect:
    """The effect of a transfer given its decision and refund records.

    If both an accept and a refund exist (possible only if a bank skipped the read its
    contract makes), ledger order decides: the earlier of the two transactions counts. The
    positions come from blocks: ``order`` maps the SHA-256 (hex) of a record's exact stored
    bytes to the (block, index) of the first valid transaction that wrote them, and
    ``hashes`` are those of this decision's and this refund's stored bytes. No field a bank
    wrote (its ``tx_id``) decides anything. Without both positions the transfer is
    ``DISPUTED``.
    """
    accepted = decision is not None and decision.outcome is Outcome.ACCEPTED
    if accepted and refund is not None:
        decision_hash, refund_hash = hashes
        pos_accept = (order or {}).get(decision_hash or "")
        pos_refund = (order or {}).get(refund_hash or "")
        if pos_accept is None or pos_refund is None:
            return Effect.DISPUTED
        return Effect.ACCEPTED if pos_accept < pos_refund else Effect.REFUNDED
    if accepted:
        return Effect.ACCEPTED
    if refund is not None:
        return Effect.REFUNDED
    return Effect.IN_FLIGHT


def decision_matches(transfer: Transfer, decision: Decision) -> bool:
    """Whether a decision is about exactly this transfer (banks, amount, currency)."""
    return (
        decision.transfer_id == transfer.transfer_id
        and decision.payer_bank == transfer.payer_bank
        and decision.payee_bank == transfer.payee_bank
        and decision.amount == transfer.amount
        and decision.currency == transfer.currency
    )


# --------------------------------------------------------------------------- hash locks (PvP)


def lock_of(preimage: str) -> str:
    """The lock a preimage opens: SHA-256 of its bytes (hex in, hex out)."""
    try:
        raw = bytes.fromhex(preimage)
    except ValueError:
        raise InvalidArgument("request.preimage must be 64 hex digits") from None
    if len(raw) != 32:
        raise InvalidArgument("request.preimage must be 64 hex digits")
    return hashlib.sha256(raw).hexdigest()


def opens(lock: str, preimage: str) -> bool:
    """Whether ``preimage`` opens ``lock`` (never raises: a reader judges what others wrote)."""
    try:
        return hmac.compare_digest(lock_of(preimage), lock)
    except InvalidArgument:
        return False


def lock_expired(lock: LockRecord | None) -> bool:
    """Whether the lock was expired (by its payer's peer and the regulator's or the payee's:
    the pin; a missing or set-aside record: no)."""
    return lock is not None and lock.state is LockState.EXPIRED


def gate_lock(
    transfer: Transfer, decision: Decision | None, refund: Refund | None,
    lock: LockRecord | None,
) -> tuple[Decision | None, Refund | None, tuple[str, ...]]:
    """What of a hash-locked transfer's decision and refund counts, and the anomaly code of
    each record set aside (an ordinary transfer passes through unchanged).

    * an accept counts only if its preimage opens the lock (``claim_without_preimage``) and
      the lock was not expired (``late_claim``: the expiry, endorsed by the payer's peer and
      the regulator's (or the payee's) after its server read that no decision existed and
      the deadline had passed on its own clock, came first);
    * a refund counts only after the payee rejected or the lock was expired
      (``refund_before_deadline``: the payer's peer alone wrote it).

    ``lock`` is the ``lock/<id>`` record, already bound to its place and pin-checked.
    """
    if not transfer.lock:
        return decision, refund, ()
    problems: list[str] = []
    expired = lock_expired(lock)
    if decision is not None and decision.outcome is Outcome.ACCEPTED:
        if not opens(transfer.lock, decision.preimage):
            problems.append("claim_without_preimage")
            decision = None
        elif expired:
            problems.append("late_claim")
            decision = None
    rejected = decision is not None and decision.outcome is Outcome.REJECTED
    if refund is not None and not expired and not rejected:
        problems.append("refund_before_deadline")
        refund = None
    return decision, refund, tuple(problems)


def check_claim(
    transfer: Transfer, decision: Decision | None, refund: Refund | None,
    lock: LockRecord | None, preimage: str, now: datetime,
) -> None:
    """Refuse a claim (the accept of a hash-locked transfer) unless the preimage opens the
    lock, the lock stands ``locked`` and the transfer may be accepted (before its deadline)."""
    if not transfer.lock:
        raise InvalidState("the transfer is not hash-locked (accept it)")
    if not preimage:
        raise InvalidState("the transfer is hash-locked: only a claim with its preimage takes it")
    if not hmac.compare_digest(lock_of(preimage), transfer.lock):
        raise InvalidArgument("request.preimage does not open the transfer's lock")
    if lock is None or lock.state is not LockState.LOCKED:
        raise InvalidState("the transfer's lock is not standing")
    check_accept(transfer, decision, refund, now)


def check_expire(
    transfer: Transfer, decision: Decision | None, lock: LockRecord | None, now: datetime,
) -> None:
    """Refuse to expire a lock before its deadline (by ``now``: each endorsing bank passes its
    own clock), once decided, or if it does not stand ``locked``."""
    if not transfer.lock:
        raise InvalidState("the transfer is not hash-locked")
    if lock is None or lock.state is not LockState.LOCKED:
        raise InvalidState("the transfer's lock is not standing")
    if decision is not None:
        raise InvalidState("the payee bank decided the transfer")
    if not _expired(transfer, now):
        raise NotExpired("the lock's deadline has not passed")


def check_lock_refund(
    transfer: Transfer, decision: Decision | None, lock: LockRecord | None
) -> None:
    """A hash-locked transfer is refunded only once rejected or its lock expired (the
    transaction timestamp, which the payer's client sets, decides nothing here)."""
    if not transfer.lock:
        return
    if decision is not None and decision.outcome is Outcome.REJECTED:
        return
    if not lock_expired(lock):
        raise NotExpired("the lock has not been expired yet (expire_lock)")
