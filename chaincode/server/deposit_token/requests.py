"""Request schemas: what the bank SDK puts into the transient map, parsed strictly.

Owns: one frozen dataclass per transaction input, parsed from the JSON object under the
transient key ``"request"`` (:data:`TRANSIENT_KEY`). Private inputs (account ids, amounts,
references, owner references, originator data) travel only here: transient data reaches the
endorsing peers and never the block. These are wire types the SDK may share.

Must not: touch the ledger. Parse errors are ``INVALID_ARGUMENT`` / ``INVALID_AMOUNT`` and
name the field, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import InvalidArgument
from .keys import ACCOUNT_ID_RE, BANK_NAME_RE, CURRENCY_RE
from .model import AccountStatus, Fields, Limits, format_ts
from .rules import LedgerPosition

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TTL_SECONDS",
    "MAX_BATCH",
    "MAX_PAGE_SIZE",
    "MAX_TTL_SECONDS",
    "MIN_TTL_SECONDS",
    "TRANSIENT_KEY",
    "AcceptRequest",
    "AccountRef",
    "AuditRequest",
    "BatchPayment",
    "BatchRequest",
    "Direction",
    "HistoryRequest",
    "HoldRequest",
    "InitiateRequest",
    "ListAccountsRequest",
    "MoveRequest",
    "ObligationsRequest",
    "OpenAccountRequest",
    "PendingRequest",
    "ReferenceRequest",
    "RefundRequest",
    "RejectRequest",
    "ReleaseHoldRequest",
    "SetLimitsRequest",
    "SetStatusRequest",
    "SettlementRequest",
    "SupplyRequest",
    "TransferLookup",
    "TransferRequest",
]

#: The transient map key holding the request JSON.
TRANSIENT_KEY = "request"
DEFAULT_TTL_SECONDS = 24 * 3600
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 30 * 24 * 3600
#: Most payments in one batch payout (bounds the write set of one transaction).
MAX_BATCH = 500
DEFAULT_PAGE_SIZE = 500
#: Well under the peer's ``totalQueryLimit`` (100,000 by default).
MAX_PAGE_SIZE = 10_000


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
    return format_ts(f.ts(name))


def _cursor(f: Fields) -> Mapping[str, object] | None:
    return f.obj("cursor", optional=True)


def _ledger_order(f: Fields) -> dict[str, LedgerPosition]:
    raw = f.obj("ledger_order", optional=True)
    out: dict[str, LedgerPosition] = {}
    for tx_id, pos in (raw or {}).items():
        if (
            not isinstance(pos, list)
            or len(pos) != 2
            or any(type(p) is not int or p < 0 for p in pos)
            or not 0 < len(tx_id) <= 256
        ):
            f.fail("ledger_order", "must map transaction ids to [block number, index]")
        out[tx_id] = (pos[0], pos[1])
    return out


def _limits(f: Fields) -> Limits:
    raw = f.obj("limits", optional=True)
    if raw is None:
        return Limits()
    lf = Fields(raw, "request.limits")
    limits = Limits.read(lf)
    lf.done()
    return limits


def _ttl(f: Fields) -> int:
    ttl = f.opt_int("ttl_seconds", lo=MIN_TTL_SECONDS, hi=MAX_TTL_SECONDS)
    return DEFAULT_TTL_SECONDS if ttl is None else ttl


def reader(data: Mapping[str, object]) -> Fields:
    """A strict reader of a request object."""
    return Fields(data, "request", InvalidArgument)


# --------------------------------------------------------------------------- writes


@dataclass(frozen=True)
class OpenAccountRequest:
    """``open_account``: an account at the serving bank. ``account_id`` is drawn by the
    client (``secrets.token_urlsafe(24)``), or derived from the transaction id if absent."""

    reference: str
    currency: str
    owner_ref: str
    account_id: str | None = None
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> OpenAccountRequest:
        f = reader(data)
        out = cls(
            reference=_reference(f),
            currency=f.str_("currency", max_len=3, pattern=CURRENCY_RE,
                            rule="must be a currency code"),
            owner_ref=f.str_("owner_ref", max_len=256),
            account_id=_opt_account(f, "account_id"),
            limits=_limits(f),
        )
        f.done()
        return out


@dataclass(frozen=True)
class SetStatusRequest:
    """``set_account_status``: freeze, unfreeze or close an account (the bank's operator)."""

    account_id: str
    status: AccountStatus

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> SetStatusRequest:
        f = reader(data)
        out = cls(_account(f), f.enum("status", AccountStatus))
        f.done()
        return out


@dataclass(frozen=True)
class SetLimitsRequest:
    """``set_limits``: replace an account's limits (absent or null: no limit)."""

    account_id: str
    limits: Limits

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> SetLimitsRequest:
        f = reader(data)
        out = cls(_account(f), Limits.read(f))
        f.done()
        return out


@dataclass(frozen=True)
class MoveRequest:
    """``mint`` and ``burn``: one account, one amount, one client reference."""

    reference: str
    account_id: str
    amount: int

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> MoveRequest:
        f = reader(data)
        out = cls(_reference(f), _account(f), f.amount())
        f.done()
        return out


@dataclass(frozen=True)
class TransferRequest:
    """``transfer``: between two accounts of the serving bank, same currency."""

    reference: str
    from_account: str
    to_account: str
    amount: int

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> TransferRequest:
        f = reader(data)
        out = cls(_reference(f), _account(f, "from_account"), _account(f, "to_account"),
                  f.amount())
        f.done()
        if out.from_account == out.to_account:
            raise InvalidArgument("request.to_account must differ from request.from_account")
        return out


@dataclass(frozen=True)
class BatchPayment:
    """One payment of a batch payout (or the single payment of ``initiate_transfer``)."""

    payee_bank: str
    payee_account: str
    amount: int
    remittance: str = ""
    transfer_id: str | None = None

    @classmethod
    def read(cls, f: Fields) -> BatchPayment:
        return cls(
            payee_bank=_bank(f, "payee_bank"),
            payee_account=_account(f, "payee_account"),
            amount=f.amount(),
            remittance=f.opt_str("remittance", max_len=1024) or "",
            transfer_id=_opt_account(f, "transfer_id"),
        )


@dataclass(frozen=True)
class InitiateRequest:
    """``initiate_transfer``: phase one of a cross-bank transfer, at the payer's bank.

    ``originator`` is the travel-rule data the payee bank receives (name, address, account
    number as the bank shows it to customers ...). ``transfer_id`` may be drawn by the client;
    else it is derived from the transaction id and found with ``get_reference``.
    """

    reference: str
    payer_account: str
    payment: BatchPayment
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    originator: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> InitiateRequest:
        f = reader(data)
        out = cls(
            reference=_reference(f),
            payer_account=_account(f, "payer_account"),
            payment=BatchPayment.read(f),
            ttl_seconds=_ttl(f),
            originator=f.str_map("originator", max_len=1024),
        )
        f.done()
        return out


@dataclass(frozen=True)
class BatchRequest:
    """``batch_payout``: one debit of ``payer_account``, then one payment per item, to payees
    at other banks (a transfer each) or at the serving bank (credited at once)."""

    reference: str
    payer_account: str
    payments: tuple[BatchPayment, ...]
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    originator: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> BatchRequest:
        f = reader(data)
        reference = _reference(f)
        payer = _account(f, "payer_account")
        items = f.list_("payments", max_items=MAX_BATCH)
        if not items:
            f.fail("payments", "must hold at least one payment")
        payments: list[BatchPayment] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                f.fail(f"payments[{i}]", "must be an object")
            pf = Fields(item, f"request.payments[{i}]", InvalidArgument)
            payments.append(BatchPayment.read(pf))
            pf.done()
        ids = [p.transfer_id for p in payments if p.transfer_id is not None]
        if len(set(ids)) != len(ids):
            f.fail("payments", "must not repeat a transfer_id")
        out = cls(reference, payer, tuple(payments), _ttl(f),
                  f.str_map("originator", max_len=1024))
        f.done()
        return out


@dataclass(frozen=True)
class AcceptRequest:
    """``accept_transfer``: the payee bank credits its customer and records ``accepted``."""

    transfer_id: str
    payer_bank: str

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> AcceptRequest:
        f = reader(data)
        out = cls(_account(f, "transfer_id"), _bank(f, "payer_bank"))
        f.done()
        return out


@dataclass(frozen=True)
class RejectRequest:
    """``reject_transfer``: the payee bank records ``rejected`` (``reason`` stays private)."""

    transfer_id: str
    payer_bank: str
    reason: str = ""

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> RejectRequest:
        f = reader(data)
        out = cls(_account(f, "transfer_id"), _bank(f, "payer_bank"),
                  f.opt_str("reason", max_len=256) or "")
        f.done()
        return out


@dataclass(frozen=True)
class RefundRequest:
    """``refund_transfer``: the payer bank credits its customer back."""

    transfer_id: str
    payee_bank: str

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> RefundRequest:
        f = reader(data)
        out = cls(_account(f, "transfer_id"), _bank(f, "payee_bank"))
        f.done()
        return out


@dataclass(frozen=True)
class SettlementRequest:
    """``confirm_settlement``: the creditor bank confirms reserves arrived from the debtor."""

    rtgs_reference: str
    debtor_bank: str
    currency: str
    amount: int

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> SettlementRequest:
        f = reader(data)
        out = cls(
            _reference(f, "rtgs_reference"),
            _bank(f, "debtor_bank"),
            f.str_("currency", max_len=3, pattern=CURRENCY_RE, rule="must be a currency code"),
            f.amount(),
        )
        f.done()
        return out


@dataclass(frozen=True)
class HoldRequest:
    """``set_hold`` (regulator): freeze an account and/or hold an amount on it."""

    bank: str
    account_id: str
    frozen: bool
    held_amount: int
    reason: str = ""

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> HoldRequest:
        f = reader(data)
        out = cls(
            _bank(f, "bank"),
            _account(f),
            f.bool_("frozen", default=False),
            f.opt_int("held_amount") or 0,
            f.opt_str("reason", max_len=256) or "",
        )
        f.done()
        if not out.frozen and out.held_amount == 0:
            raise InvalidArgument("request must freeze or hold an amount (use release_hold)")
        return out


@dataclass(frozen=True)
class ReleaseHoldRequest:
    """``release_hold`` (regulator): remove the hold on an account."""

    bank: str
    account_id: str

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> ReleaseHoldRequest:
        f = reader(data)
        out = cls(_bank(f, "bank"), _account(f))
        f.done()
        return out


# --------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class AccountRef:
    """``get_account``: ``bank`` defaults to the caller's own (the regulator names one)."""

    account_id: str
    bank: str | None = None

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> AccountRef:
        f = reader(data)
        out = cls(_account(f), _opt_bank(f, "bank"))
        f.done()
        return out


@dataclass(frozen=True)
class HistoryRequest:
    """``get_history``: records numbered from ``from_seq``, at most ``page_size``."""

    account_id: str
    bank: str | None = None
    from_seq: int = 0
    page_size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> HistoryRequest:
        f = reader(data)
        out = cls(_account(f), _opt_bank(f, "bank"), f.opt_int("from_seq") or 0, _page_size(f))
        f.done()
        return out


@dataclass(frozen=True)
class SupplyRequest:
    """``get_supply``: the supply of one token (paginated: pass back ``cursor``)."""

    currency: str
    bank: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Mapping[str, object] | None = None

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> SupplyRequest:
        f = reader(data)
        out = cls(
            f.str_("currency", max_len=3, pattern=CURRENCY_RE, rule="must be a currency code"),
            _opt_bank(f, "bank"),
            _page_size(f),
            _cursor(f),
        )
        f.done()
        return out


@dataclass(frozen=True)
class ListAccountsRequest:
    """``list_accounts``: a bank's accounts, optionally of one currency (paginated)."""

    bank: str | None = None
    currency: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Mapping[str, object] | None = None

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> ListAccountsRequest:
        f = reader(data)
        out = cls(
            _opt_bank(f, "bank"),
            f.opt_str("currency", max_len=3, pattern=CURRENCY_RE, rule="must be a currency code"),
            _page_size(f),
            _cursor(f),
        )
        f.done()
        return out


class Direction(StrEnum):
    """Pending transfers coming in to, or going out of, a bank."""

    INCOMING = "incoming"
    OUTGOING = "outgoing"


@dataclass(frozen=True)
class PendingRequest:
    """``get_pending``: undecided or unrefunded transfers of a bank (paginated).

    ``since`` (a timestamp) reads only the transfers created at or after it, through the
    ``open/`` index, instead of every transfer of the pair.
    """

    direction: Direction
    bank: str | None = None
    counterparty: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Mapping[str, object] | None = None
    since: str | None = None

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> PendingRequest:
        f = reader(data)
        out = cls(
            f.enum("direction", Direction),
            _opt_bank(f, "bank"),
            _opt_bank(f, "counterparty"),
            _page_size(f),
            _cursor(f),
            _opt_ts(f, "since"),
        )
        f.done()
        return out


@dataclass(frozen=True)
class TransferLookup:
    """``get_transfer``: one transfer and its decision and refund, with its status."""

    transfer_id: str
    payer_bank: str
    payee_bank: str

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> TransferLookup:
        f = reader(data)
        out = cls(_account(f, "transfer_id"), _bank(f, "payer_bank"), _bank(f, "payee_bank"))
        f.done()
        return out


@dataclass(frozen=True)
class ReferenceRequest:
    """``get_reference``: what a client reference did (transaction id, ids it made)."""

    reference: str

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> ReferenceRequest:
        f = reader(data)
        out = cls(_reference(f))
        f.done()
        return out


@dataclass(frozen=True)
class ObligationsRequest:
    """``get_obligations``: what two banks owe each other (paginated)."""

    bank_a: str
    bank_b: str
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Mapping[str, object] | None = None
    ledger_order: Mapping[str, LedgerPosition] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> ObligationsRequest:
        f = reader(data)
        out = cls(_bank(f, "bank_a"), _bank(f, "bank_b"), _page_size(f), _cursor(f),
                  _ledger_order(f))
        f.done()
        if out.bank_a == out.bank_b:
            raise InvalidArgument("request.bank_b must differ from request.bank_a")
        return out


@dataclass(frozen=True)
class AuditRequest:
    """``audit`` (regulator): conservation over every collection (paginated)."""

    page_size: int = DEFAULT_PAGE_SIZE
    cursor: Mapping[str, object] | None = None
    ledger_order: Mapping[str, LedgerPosition] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> AuditRequest:
        f = reader(data)
        out = cls(_page_size(f), _cursor(f), _ledger_order(f))
        f.done()
        return out
