"""The requests: one frozen dataclass per transaction input, as it travels in the transient map.

Owns: each request's fields, their defaults and bounds, :meth:`to_json` (what the bank SDK
sends, under :data:`~dtoken_wire.codec.TRANSIENT_KEY`, as canonical JSON) and :meth:`from_json`
(the contract's strict parse: a wrong field raises :class:`~dtoken_wire.errors.WireError` with
``INVALID_ARGUMENT`` or ``INVALID_AMOUNT``, naming the field, never its value). Every dataclass
field is a JSON field of the same name, so a request's fields are its schema (the chaincode's
``GetMetadata`` publishes it). ``to_json`` leaves out a field equal to its default: the
contract reads an absent field as its default.

Private inputs (account ids, amounts, references, owner references, originator data) travel
only here: transient data reaches the endorsing peers and never the block.

This module is one file of ~680 lines on purpose: it is the whole request half of the wire
contract, 22 small classes of one shape (fields, then ``_read``), read as one table.

Must not: import anything outside the standard library.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Self

from .codec import format_timestamp
from .enums import AccountStatus, Direction, Rounding
from .errors import WireError
from .fields import ACCOUNT_ID_RE, BANK_NAME_RE, CURRENCY_RE, Fields

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TTL_SECONDS",
    "MAX_BATCH",
    "MAX_LANES",
    "MAX_PAGE_SIZE",
    "MAX_QUOTE_RATE_TERM",
    "MAX_TTL_SECONDS",
    "MIN_TTL_SECONDS",
    "REQUESTS",
    "AcceptRequest",
    "AccountRef",
    "AuditRequest",
    "BatchPayment",
    "BatchRequest",
    "CapRequest",
    "ClaimRequest",
    "CoalescedItem",
    "CoalescedRequest",
    "DecideRequest",
    "DecisionItem",
    "ExpireLockRequest",
    "HistoryRequest",
    "HoldRequest",
    "InitiateRequest",
    "LedgerPosition",
    "Limits",
    "ListAccountsRequest",
    "LockRequest",
    "MoveRequest",
    "ObligationsRequest",
    "OfferQuoteRequest",
    "OpenAccountRequest",
    "PayWithQuoteRequest",
    "PendingRequest",
    "QuoteLookup",
    "RebalanceRequest",
    "ReferenceRequest",
    "RefundRequest",
    "RejectRequest",
    "ReleaseHoldRequest",
    "Request",
    "ResumeRequest",
    "SetExposureCapRequest",
    "SetLanesRequest",
    "SetLimitsRequest",
    "SetStatusRequest",
    "SettlementRequest",
    "SupplyRequest",
    "SuspendRequest",
    "TransferLookup",
    "TransferRequest",
]

DEFAULT_TTL_SECONDS = 24 * 3600
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 30 * 24 * 3600
#: Largest numerator or denominator of a quoted rate (a rate is an exact ratio of integers).
MAX_QUOTE_RATE_TERM = 10**12
#: Longest a quote may stay open for payment, and longest its payee bank may honour it
#: after that (the accept window).
MAX_QUOTE_SECONDS = 7 * 24 * 3600
#: Most payments in one batch payout (bounds the write set of one transaction).
MAX_BATCH = 500
#: The most balance lanes an account may have (docs/token-model.md, "Balance lanes").
MAX_LANES = 16
DEFAULT_PAGE_SIZE = 500
#: Well under the peer's ``totalQueryLimit`` (100,000 by default).
MAX_PAGE_SIZE = 10_000

#: Where a transaction stands in the ledger: ``(block number, index in the block)``.
LedgerPosition = tuple[int, int]

Cursor = Mapping[str, object]


def _plain(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Limits | BatchPayment | CoalescedItem | DecisionItem):
        return value.to_json()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _default(f: dataclasses.Field[Any]) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _fields_json(obj: object) -> dict[str, object]:
    assert dataclasses.is_dataclass(obj)
    out: dict[str, object] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value != _default(f):
            out[f.name] = _plain(value)
    return out


class Request:
    """What every request has: :meth:`to_json` from its fields, and :meth:`from_json`."""

    def to_json(self) -> dict[str, object]:
        """The JSON object to send, without the fields equal to their defaults."""
        return _fields_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        """Parse strictly; :class:`~dtoken_wire.errors.WireError` names what is wrong."""
        f = Fields(data, "request")
        out = cls._read(f)
        f.done()
        out._check()
        return out

    @classmethod
    def _read(cls, f: Fields) -> Self:
        raise NotImplementedError

    def _check(self) -> None:
        """Rules across fields, after every field parsed."""


# --------------------------------------------------------------------------- field readers


def _account(f: Fields, name: str = "account_id") -> str:
    return f.str_(name, max_len=64, min_len=22, pattern=ACCOUNT_ID_RE,
                  rule="must be 22 to 64 characters of [A-Za-z0-9_-]")


def _opt_account(f: Fields, name: str) -> str | None:
    if not f.has(name):
        f.opt_str(name)
        return None
    return _account(f, name)


def _bank(f: Fields, name: str) -> str:
    return f.str_(name, max_len=16, pattern=BANK_NAME_RE, rule="must be a bank name")


def _opt_bank(f: Fields, name: str) -> str | None:
    return f.opt_str(name, max_len=16, pattern=BANK_NAME_RE, rule="must be a bank name")


def _currency(f: Fields) -> str:
    return f.str_("currency", max_len=3, pattern=CURRENCY_RE, rule="must be a currency code")


def _reference(f: Fields, name: str = "reference") -> str:
    return f.str_(name, max_len=128)


def _page_size(f: Fields) -> int:
    size = f.opt_int("page_size", lo=1, hi=MAX_PAGE_SIZE)
    return DEFAULT_PAGE_SIZE if size is None else size


def _opt_ts(f: Fields, name: str) -> str | None:
    """An optional timestamp, normalized to the stored format (``None`` if absent or null)."""
    if not f.has(name):
        f.opt_str(name)  # counts a null as read
        return None
    return format_timestamp(f.ts(name))


def _cursor(f: Fields) -> Cursor | None:
    return f.obj("cursor", optional=True)


_VALUE_HASH = re.compile(r"^[0-9a-f]{64}$")


def _ledger_order(f: Fields) -> dict[str, LedgerPosition]:
    """``{SHA-256 hex of a record's stored bytes: [block number, index in block]}``: where the
    first valid transaction that wrote those bytes is (found by the caller in the blocks)."""
    raw = f.obj("ledger_order", optional=True)
    out: dict[str, LedgerPosition] = {}
    for value_hash, pos in (raw or {}).items():
        if (
            not isinstance(pos, list)
            or len(pos) != 2
            or any(type(p) is not int or p < 0 for p in pos)
            or not _VALUE_HASH.fullmatch(value_hash)
        ):
            f.fail("ledger_order", "must map value hashes (64 hex digits) to "
                   "[block number, index]")
        out[value_hash] = (pos[0], pos[1])
    return out


def _lane(f: Fields, name: str = "payer_lane") -> int:
    value = f.opt_int(name, hi=MAX_LANES - 1)
    return 0 if value is None else value


def _ttl(f: Fields) -> int:
    ttl = f.opt_int("ttl_seconds", lo=MIN_TTL_SECONDS, hi=MAX_TTL_SECONDS)
    return DEFAULT_TTL_SECONDS if ttl is None else ttl


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Limits:
    """Per-account limits in minor units; ``None`` is no limit. Stored in the account record
    as ``{"daily_outflow": ..., "single_payment": ...}`` (both keys, null for none)."""

    single_payment: int | None = None
    daily_outflow: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"single_payment": self.single_payment, "daily_outflow": self.daily_outflow}

    @classmethod
    def read(cls, f: Fields) -> Limits:
        """Read the two limit fields from ``f`` (absent or null: no limit)."""
        return cls(f.opt_int("single_payment"), f.opt_int("daily_outflow"))


@dataclass(frozen=True)
class BatchPayment:
    """One payment of a batch payout (or the single payment of ``initiate_transfer``)."""

    payee_bank: str
    payee_account: str
    amount: int
    remittance: str = ""
    transfer_id: str | None = None

    def to_json(self) -> dict[str, object]:
        return _fields_json(self)

    @classmethod
    def read(cls, f: Fields) -> BatchPayment:
        return cls(
            payee_bank=_bank(f, "payee_bank"),
            payee_account=_account(f, "payee_account"),
            amount=f.amount(),
            remittance=f.opt_str("remittance", max_len=1024) or "",
            transfer_id=_opt_account(f, "transfer_id"),
        )


# --------------------------------------------------------------------------- writes


@dataclass(frozen=True)
class OpenAccountRequest(Request):
    """``open_account``: an account at the serving bank. ``account_id`` is drawn by the
    client (``secrets.token_urlsafe(24)``), or derived from the transaction id if absent."""


    reference: str
    currency: str
    owner_ref: str
    account_id: str | None = None
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        reference = _reference(f)
        currency = _currency(f)
        owner_ref = f.str_("owner_ref", max_len=256)
        account_id = _opt_account(f, "account_id")
        raw = f.obj("limits", optional=True)
        limits = Limits()
        if raw is not None:
            lf = Fields(raw, "request.limits")
            limits = Limits.read(lf)
            lf.done()
        return cls(reference, currency, owner_ref, account_id, limits)


@dataclass(frozen=True)
class SetStatusRequest(Request):
    """``set_account_status``: freeze, unfreeze or close an account (the bank's operator)."""


    account_id: str
    status: AccountStatus

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f), f.enum("status", AccountStatus))


@dataclass(frozen=True)
class SetLimitsRequest(Request):
    """``set_account_limits``: replace an account's limits (absent or null: no limit)."""


    account_id: str
    single_payment: int | None = None
    daily_outflow: int | None = None

    @property
    def limits(self) -> Limits:
        return Limits(self.single_payment, self.daily_outflow)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        account_id = _account(f)
        limits = Limits.read(f)
        return cls(account_id, limits.single_payment, limits.daily_outflow)


@dataclass(frozen=True)
class SetLanesRequest(Request):
    """``set_lanes``: give an account ``lanes`` balance lanes (2 to :data:`MAX_LANES`; lanes
    are only added). Its balance stays where it is; its daily limit is split over the
    lanes."""

    account_id: str
    lanes: int

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f), f.int_("lanes", lo=1, hi=MAX_LANES))


@dataclass(frozen=True)
class RebalanceRequest(Request):
    """``rebalance_lanes``: bring lane ``lane`` of an account up to ``amount`` of balance
    (and of unspent daily limit), taken from its other lanes."""

    account_id: str
    lane: int
    amount: int

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f), f.int_("lane", hi=MAX_LANES - 1), f.amount())


@dataclass(frozen=True)
class MoveRequest(Request):
    """``mint`` and ``burn``: one account, one amount, one client reference."""


    reference: str
    account_id: str
    amount: int

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_reference(f), _account(f), f.amount())


@dataclass(frozen=True)
class TransferRequest(Request):
    """``transfer``: between two accounts of the serving bank, same currency."""


    reference: str
    from_account: str
    to_account: str
    amount: int

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_reference(f), _account(f, "from_account"), _account(f, "to_account"),
                   f.amount())

    def _check(self) -> None:
        if self.from_account == self.to_account:
            raise WireError("INVALID_ARGUMENT",
                            "request.to_account must differ from request.from_account")


@dataclass(frozen=True)
class InitiateRequest(Request):
    """``initiate_transfer``: phase one of a cross-bank transfer, at the payer's bank.

    ``originator`` is the travel-rule data the payee bank receives (name, address, account
    number as the bank shows it to customers ...). ``transfer_id`` may be drawn by the client;
    else it is derived from the transaction id and found with ``get_reference``.
    """


    reference: str
    payer_account: str
    payee_bank: str
    payee_account: str
    amount: int
    remittance: str = ""
    transfer_id: str | None = None
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    originator: Mapping[str, str] = field(default_factory=dict)
    payer_lane: int = 0
    """The balance lane of ``payer_account`` to debit (0: the account record itself)."""

    @property
    def payment(self) -> BatchPayment:
        """The one payment, as a batch payout's item."""
        return BatchPayment(self.payee_bank, self.payee_account, self.amount, self.remittance,
                            self.transfer_id)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        reference = _reference(f)
        payer = _account(f, "payer_account")
        p = BatchPayment.read(f)
        return cls(reference, payer, p.payee_bank, p.payee_account, p.amount, p.remittance,
                   p.transfer_id, _ttl(f), f.str_map("originator", max_len=1024), _lane(f))


@dataclass(frozen=True)
class BatchRequest(Request):
    """``batch_payout``: one debit of ``payer_account``, then one payment per item, to payees
    at other banks (a transfer each) or at the serving bank (credited at once)."""


    reference: str
    payer_account: str
    payments: tuple[BatchPayment, ...]
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    originator: Mapping[str, str] = field(default_factory=dict)
    payer_lane: int = 0

    @classmethod
    def _read(cls, f: Fields) -> Self:
        reference = _reference(f)
        payer = _account(f, "payer_account")
        items = f.objects("payments", max_items=MAX_BATCH)
        if not items:
            f.fail("payments", "must hold at least one payment")
        payments: list[BatchPayment] = []
        for pf in items:
            payments.append(BatchPayment.read(pf))
            pf.done()
        ids = [p.transfer_id for p in payments if p.transfer_id is not None]
        if len(set(ids)) != len(ids):
            f.fail("payments", "must not repeat a transfer_id")
        return cls(reference, payer, tuple(payments), _ttl(f),
                   f.str_map("originator", max_len=1024), _lane(f))


@dataclass(frozen=True)
class CoalescedItem:
    """One payment of a coalesced payout: a cross-bank payment with its own reference (the
    one its ``transfer()`` call was given), its own transfer id, expiry and originator."""

    reference: str
    payee_bank: str
    payee_account: str
    amount: int
    transfer_id: str
    remittance: str = ""
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    originator: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return _fields_json(self)

    @classmethod
    def read(cls, f: Fields) -> CoalescedItem:
        return cls(
            reference=_reference(f),
            payee_bank=_bank(f, "payee_bank"),
            payee_account=_account(f, "payee_account"),
            amount=f.amount(),
            transfer_id=_account(f, "transfer_id"),
            remittance=f.opt_str("remittance", max_len=1024) or "",
            ttl_seconds=_ttl(f),
            originator=f.str_map("originator", max_len=1024),
        )


@dataclass(frozen=True)
class CoalescedRequest(Request):
    """``coalesced_payout``: cross-bank payments of ``payer_account`` gathered by the SDK from
    concurrent ``transfer()`` calls, one transaction. Unlike ``batch_payout`` each item is
    applied or refused on its own: it claims its own reference, and a business refusal of one
    item skips it (a per-item code in the response) while its neighbours go through."""

    payer_account: str
    items: tuple[CoalescedItem, ...]
    payer_lane: int = 0

    @classmethod
    def _read(cls, f: Fields) -> Self:
        payer = _account(f, "payer_account")
        raw = f.objects("items", max_items=MAX_BATCH)
        if not raw:
            f.fail("items", "must hold at least one payment")
        items: list[CoalescedItem] = []
        for pf in raw:
            items.append(CoalescedItem.read(pf))
            pf.done()
        if len({i.reference for i in items}) != len(items):
            f.fail("items", "must not repeat a reference")
        if len({i.transfer_id for i in items}) != len(items):
            f.fail("items", "must not repeat a transfer_id")
        return cls(payer, tuple(items), _lane(f))


def _hex32(f: Fields, name: str) -> str:
    return f.str_(name, max_len=64, min_len=64, pattern=_VALUE_HASH,
                  rule="must be 64 lowercase hex digits (32 bytes)")


@dataclass(frozen=True)
class LockRequest(Request):
    """``lock_transfer``: one leg of a payment-versus-payment, at the payer's bank.

    An ``initiate_transfer`` whose transfer the payee bank can accept only with the preimage
    of ``lock`` (SHA-256, hex), before the deadline ``ttl_seconds`` from now; after it, the
    payer's and the regulator's peers expire the lock (``expire_lock``) and the payer bank
    refunds (docs/token-model.md, "Payment versus payment").
    """

    reference: str
    payer_account: str
    payee_bank: str
    payee_account: str
    amount: int
    lock: str
    ttl_seconds: int
    remittance: str = ""
    transfer_id: str | None = None
    originator: Mapping[str, str] = field(default_factory=dict)

    @property
    def payment(self) -> BatchPayment:
        """The one payment, as a batch payout's item."""
        return BatchPayment(self.payee_bank, self.payee_account, self.amount, self.remittance,
                            self.transfer_id)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        reference = _reference(f)
        payer = _account(f, "payer_account")
        p = BatchPayment.read(f)
        lock = _hex32(f, "lock")
        ttl = f.int_("ttl_seconds", lo=MIN_TTL_SECONDS, hi=MAX_TTL_SECONDS)
        return cls(reference, payer, p.payee_bank, p.payee_account, p.amount, lock, ttl,
                   p.remittance, p.transfer_id, f.str_map("originator", max_len=1024))


@dataclass(frozen=True)
class ClaimRequest(Request):
    """``claim_transfer``: the payee bank accepts a hash-locked transfer with its preimage
    (hex of 32 bytes), which the decision then carries for every reader to check."""

    transfer_id: str
    payer_bank: str
    preimage: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "transfer_id"), _bank(f, "payer_bank"), _hex32(f, "preimage"))


@dataclass(frozen=True)
class ExpireLockRequest(Request):
    """``expire_lock``: the payer bank, after the deadline, asks its own and the regulator's
    peers to turn a hash-locked transfer's lock ``expired`` (then ``refund_transfer`` pays its
    customer back). The lock is pinned to the payer AND the payee or the regulator: the
    regulator's server (or the payee's) judges the deadline on its own clock."""

    transfer_id: str
    payer_bank: str
    payee_bank: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "transfer_id"), _bank(f, "payer_bank"), _bank(f, "payee_bank"))


@dataclass(frozen=True)
class OfferQuoteRequest(Request):
    """``offer_quote``: the payee bank's firm rate to a payer bank for one payment.

    The payee bank will credit, for ``amount`` minor units of ``from_currency`` paid by a
    customer of ``payer_bank`` with this quote, ``amount`` converted at ``rate_numerator /
    rate_denominator`` units of ``to_currency`` per unit of ``from_currency`` (**major**
    units, as rates are quoted: ``7.1234`` CNH per USD is ``71234 / 10000``); the contract
    converts with each currency's decimals from the network's registry and rounds to the
    payee currency's minor unit as ``rounding`` says. The payer bank may pay with it for
    ``ttl_seconds``; the payee bank accepts such a payment until ``accept_seconds`` after that.
    ``quote_id`` is drawn by the client (22 to 64 URL-safe characters).
    """

    quote_id: str
    payer_bank: str
    from_currency: str
    to_currency: str
    amount: int
    rate_numerator: int
    rate_denominator: int
    ttl_seconds: int = 600
    accept_seconds: int = 3600
    rounding: Rounding = Rounding.BANK

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(
            _account(f, "quote_id"), _bank(f, "payer_bank"),
            f.str_("from_currency", pattern=CURRENCY_RE),
            f.str_("to_currency", pattern=CURRENCY_RE),
            f.amount(),
            f.int_("rate_numerator", lo=1, hi=MAX_QUOTE_RATE_TERM),
            f.int_("rate_denominator", lo=1, hi=MAX_QUOTE_RATE_TERM),
            f.opt_int("ttl_seconds", lo=MIN_TTL_SECONDS, hi=MAX_QUOTE_SECONDS) or 600,
            f.opt_int("accept_seconds", lo=MIN_TTL_SECONDS, hi=MAX_QUOTE_SECONDS) or 3600,
            f.enum("rounding", Rounding) if f.has("rounding") else Rounding.BANK,
        )

    def _check(self) -> None:
        if self.from_currency == self.to_currency:
            raise WireError("INVALID_ARGUMENT",
                            "request.to_currency must differ from request.from_currency")


@dataclass(frozen=True)
class PayWithQuoteRequest(Request):
    """``pay_with_quote``: a cross-bank transfer at the payer's bank, converted at the payee
    bank's quote ``quote_id``: the payer is debited ``amount`` (which must be the quote's) in
    its currency, the transfer carries the quote and the payee amount, and the payee bank
    credits that amount in its currency when it accepts."""

    reference: str
    payer_account: str
    payee_bank: str
    payee_account: str
    amount: int
    quote_id: str
    remittance: str = ""
    transfer_id: str | None = None
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    originator: Mapping[str, str] = field(default_factory=dict)

    @property
    def payment(self) -> BatchPayment:
        """The one payment, as a batch payout's item."""
        return BatchPayment(self.payee_bank, self.payee_account, self.amount, self.remittance,
                            self.transfer_id)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        reference = _reference(f)
        payer = _account(f, "payer_account")
        p = BatchPayment.read(f)
        quote_id = _account(f, "quote_id")
        return cls(reference, payer, p.payee_bank, p.payee_account, p.amount, quote_id,
                   p.remittance, p.transfer_id, _ttl(f), f.str_map("originator", max_len=1024))


@dataclass(frozen=True)
class QuoteLookup(Request):
    """``get_quote``: one quote, as the payee bank wrote it (either bank of the pair reads
    it), with the payee amount it gives."""

    quote_id: str
    payee_bank: str
    payer_bank: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "quote_id"), _bank(f, "payee_bank"), _bank(f, "payer_bank"))


@dataclass(frozen=True)
class AcceptRequest(Request):
    """``accept_transfer``: the payee bank credits its customer and records ``accepted``."""


    transfer_id: str
    payer_bank: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "transfer_id"), _bank(f, "payer_bank"))


@dataclass(frozen=True)
class RejectRequest(Request):
    """``reject_transfer``: the payee bank records ``rejected`` (``reason`` stays private)."""


    transfer_id: str
    payer_bank: str
    reason: str = ""

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "transfer_id"), _bank(f, "payer_bank"),
                   f.opt_str("reason", max_len=256) or "")


@dataclass(frozen=True)
class DecisionItem:
    """One decision of ``decide_transfers``: accept ``transfer_id``, or reject it with
    ``reason`` (private, as a single reject's)."""

    transfer_id: str
    accept: bool
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        return _fields_json(self)

    @classmethod
    def read(cls, f: Fields) -> DecisionItem:
        return cls(_account(f, "transfer_id"), f.bool_("accept"),
                   f.opt_str("reason", max_len=256) or "")


@dataclass(frozen=True)
class DecideRequest(Request):
    """``decide_transfers``: the payee bank accepts or rejects many transfers of one payer bank
    in one transaction (credits summed per payee account; each decision its own record)."""

    payer_bank: str
    decisions: tuple[DecisionItem, ...]

    @classmethod
    def _read(cls, f: Fields) -> Self:
        payer = _bank(f, "payer_bank")
        raw = f.objects("decisions", max_items=MAX_BATCH)
        if not raw:
            f.fail("decisions", "must hold at least one decision")
        items: list[DecisionItem] = []
        for df in raw:
            items.append(DecisionItem.read(df))
            df.done()
        if len({i.transfer_id for i in items}) != len(items):
            f.fail("decisions", "must not repeat a transfer_id")
        return cls(payer, tuple(items))


@dataclass(frozen=True)
class RefundRequest(Request):
    """``refund_transfer``: the payer bank credits its customer back."""


    transfer_id: str
    payee_bank: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "transfer_id"), _bank(f, "payee_bank"))


@dataclass(frozen=True)
class SettlementRequest(Request):
    """``confirm_settlement``: the creditor bank confirms reserves arrived from the debtor."""


    rtgs_reference: str
    debtor_bank: str
    currency: str
    amount: int

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_reference(f, "rtgs_reference"), _bank(f, "debtor_bank"), _currency(f),
                   f.amount())


@dataclass(frozen=True)
class SetExposureCapRequest(Request):
    """``set_exposure_cap``: the creditor bank (the serving one) sets the most ``debtor_bank``
    may owe it unsettled in ``currency`` (minor units; 0 accepts nothing unsettled). Each
    change is a new record; the latest one is the cap."""


    debtor_bank: str
    currency: str
    cap: int

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_bank(f, "debtor_bank"), _currency(f), f.int_("cap"))


@dataclass(frozen=True)
class CapRequest(Request):
    """``get_exposure_cap``: the cap the serving bank set on ``debtor_bank`` in ``currency``
    (a short read, without the obligations' scan of every transfer)."""

    debtor_bank: str
    currency: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_bank(f, "debtor_bank"), _currency(f))


@dataclass(frozen=True)
class HoldRequest(Request):
    """``set_hold`` (regulator): freeze an account and/or hold an amount on it."""


    bank: str
    account_id: str
    frozen: bool = False
    held_amount: int = 0
    reason: str = ""

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(
            _bank(f, "bank"),
            _account(f),
            f.bool_("frozen", default=False),
            f.opt_int("held_amount") or 0,
            f.opt_str("reason", max_len=256) or "",
        )

    def _check(self) -> None:
        if not self.frozen and self.held_amount == 0:
            raise WireError("INVALID_ARGUMENT",
                            "request must freeze or hold an amount (use release_hold)")


@dataclass(frozen=True)
class ReleaseHoldRequest(Request):
    """``release_hold`` (regulator): remove the hold on an account."""


    bank: str
    account_id: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_bank(f, "bank"), _account(f))


@dataclass(frozen=True)
class SuspendRequest(Request):
    """``suspend_bank`` (regulator): no new payment to or from ``bank`` until it is resumed;
    what is in flight still refunds and settles."""


    bank: str
    reason: str = ""

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_bank(f, "bank"), f.opt_str("reason", max_len=256) or "")


@dataclass(frozen=True)
class ResumeRequest(Request):
    """``resume_bank`` (regulator): lift the suspension of ``bank``."""


    bank: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_bank(f, "bank"))


# --------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class AccountRef(Request):
    """``get_account``: ``bank`` defaults to the caller's own (the regulator names one)."""


    account_id: str
    bank: str | None = None

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f), _opt_bank(f, "bank"))


@dataclass(frozen=True)
class HistoryRequest(Request):
    """``get_history``: records numbered from ``from_seq``, at most ``page_size``."""


    account_id: str
    bank: str | None = None
    from_seq: int = 0
    page_size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f), _opt_bank(f, "bank"), f.opt_int("from_seq") or 0, _page_size(f))


@dataclass(frozen=True)
class SupplyRequest(Request):
    """``get_supply``: the supply of one token (paginated: pass back ``cursor``)."""


    currency: str
    bank: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_currency(f), _opt_bank(f, "bank"), _page_size(f), _cursor(f))


@dataclass(frozen=True)
class ListAccountsRequest(Request):
    """``list_accounts``: a bank's accounts, optionally of one currency (paginated)."""


    bank: str | None = None
    currency: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(
            _opt_bank(f, "bank"),
            f.opt_str("currency", max_len=3, pattern=CURRENCY_RE, rule="must be a currency code"),
            _page_size(f),
            _cursor(f),
        )


@dataclass(frozen=True)
class PendingRequest(Request):
    """``get_pending``: undecided or unrefunded transfers of a bank (paginated).

    ``since`` (a timestamp) reads only the transfers created at or after it, through the
    ``open/`` index, instead of every transfer of the pair; ``until`` (with ``since``), only
    those created at or before it: ``since`` = ``until`` = a transaction's time (its
    ``TransferPending`` event says it) reads that transaction's transfers.
    """


    direction: Direction
    bank: str | None = None
    counterparty: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None
    since: str | None = None
    until: str | None = None

    @classmethod
    def _read(cls, f: Fields) -> Self:
        request = cls(
            f.enum("direction", Direction),
            _opt_bank(f, "bank"),
            _opt_bank(f, "counterparty"),
            _page_size(f),
            _cursor(f),
            _opt_ts(f, "since"),
            _opt_ts(f, "until"),
        )
        # both in the stored fixed-width format: they compare as strings
        if request.until is not None and (request.since is None or request.until < request.since):
            f.fail("until", "needs since, and may not be before it")
        return request


@dataclass(frozen=True)
class TransferLookup(Request):
    """``get_transfer``: one transfer and its decision and refund, with its status."""


    transfer_id: str
    payer_bank: str
    payee_bank: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "transfer_id"), _bank(f, "payer_bank"), _bank(f, "payee_bank"))


@dataclass(frozen=True)
class ReferenceRequest(Request):
    """``get_reference``: what a client reference did (transaction id, ids it made)."""


    reference: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_reference(f))


@dataclass(frozen=True)
class ObligationsRequest(Request):
    """``get_obligations``: what two banks owe each other (paginated)."""


    bank_a: str
    bank_b: str
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None
    ledger_order: Mapping[str, LedgerPosition] = field(default_factory=dict)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_bank(f, "bank_a"), _bank(f, "bank_b"), _page_size(f), _cursor(f),
                   _ledger_order(f))

    def _check(self) -> None:
        if self.bank_a == self.bank_b:
            raise WireError("INVALID_ARGUMENT", "request.bank_b must differ from request.bank_a")


@dataclass(frozen=True)
class AuditRequest(Request):
    """``audit`` (regulator): conservation over every collection (paginated)."""


    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None
    ledger_order: Mapping[str, LedgerPosition] = field(default_factory=dict)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_page_size(f), _cursor(f), _ledger_order(f))


#: Every request type.
REQUESTS: tuple[type[Request], ...] = (
    OpenAccountRequest, SetStatusRequest, SetLimitsRequest, SetLanesRequest, RebalanceRequest,
    MoveRequest, TransferRequest,
    InitiateRequest, BatchRequest, CoalescedRequest, AcceptRequest, DecideRequest,
    RejectRequest, RefundRequest, SettlementRequest, SetExposureCapRequest, CapRequest,
    HoldRequest, ReleaseHoldRequest, SuspendRequest, ResumeRequest, AccountRef,
    HistoryRequest, SupplyRequest, ListAccountsRequest,
    PendingRequest, TransferLookup, ReferenceRequest, ObligationsRequest, AuditRequest,
    LockRequest, ClaimRequest, ExpireLockRequest, OfferQuoteRequest, PayWithQuoteRequest,
    QuoteLookup,
)
