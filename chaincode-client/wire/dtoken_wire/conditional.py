"""The wire half of conditional payments: escrow until a condition, and payment requests.

Owns: the requests of the escrow transactions (``register_attester``, ``open_escrow``,
``release_escrow``, ``claim_escrow``, ``claim_escrows``, ``refund_escrow``, ``get_escrow``,
``list_escrows``) and of the payment-request transactions (``request_payment``, ``approve_request``,
``decline_request``, ``get_payment_request``, ``list_payment_requests``); their enums; and the
**statement** format: what an attester (a marketplace, a logistics company) or an arbiter signs
about one escrow, as canonical JSON bytes (:func:`statement_message`), so that the chaincode
that verifies a signature and the SDK that makes one build the very same bytes.

A statement names the escrow and its parties and amount, the verdict (``release``: the
condition holds, the money goes to the payee; ``refund``: it goes back to the payer), the
signer's name and the signer's own time. Its signature is ECDSA P-256 over SHA-256 (DER,
base64). Who may sign what is the chaincode's rule (docs/token-model.md, "Escrow").

Must not: import anything outside the standard library (or of the project but this package).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Self

from .codec import canonical_json, format_timestamp
from .errors import WireError
from .fields import Fields
from .requests import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_TTL_SECONDS,
    LedgerPosition,
    Request,
    _account,
    _bank,
    _currency,
    _ledger_order,
    _opt_account,
    _page_size,
    _reference,
    _ttl,
)

__all__ = [
    "CONDITIONAL_REQUESTS",
    "MAX_CLAIMS",
    "PARTY_NAME_RE",
    "STATEMENT_KIND",
    "ApproveRequestRequest",
    "ClaimEscrowRequest",
    "ClaimEscrowsRequest",
    "ClaimItem",
    "DeadlineAction",
    "DeclineRequestRequest",
    "EscrowLookup",
    "EscrowState",
    "ListEscrowsRequest",
    "ListPaymentRequestsRequest",
    "OpenEscrowRequest",
    "PaymentRequestLookup",
    "PaymentRequestStatus",
    "RefundEscrowRequest",
    "RegisterAttesterRequest",
    "ReleaseEscrowRequest",
    "RequestPaymentRequest",
    "Statement",
    "Verdict",
    "statement_message",
]

#: The name of an attester or an arbiter, as a bank registers it.
PARTY_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
#: What the first field of every signed statement says (a signature over anything else, a
#: transaction or another protocol's message, can never pass for a statement).
STATEMENT_KIND = "dtoken.escrow.statement/v1"
_SIGNATURE_RE = re.compile(r"^[A-Za-z0-9+/]{16,200}={0,2}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")


class DeadlineAction(StrEnum):
    """Where an escrow's money goes at its deadline if no condition decided it before."""

    REFUND = "refund"
    """Back to the payer (the buyer): the payer bank refunds after the deadline."""
    RELEASE = "release"
    """To the payee (the seller): the payer bank releases after the deadline."""


class Verdict(StrEnum):
    """What a signed statement says about an escrow."""

    RELEASE = "release"
    """The condition holds (delivered; or the arbiter found for the payee)."""
    REFUND = "refund"
    """The condition failed (only an arbiter may say so)."""


class EscrowState(StrEnum):
    """Where an escrow stands, as every bank of the pair computes it from what it reads."""

    HELD = "held"
    """Debited from the payer, credited to nobody: waiting on the condition or the deadline."""
    DUE = "due"
    """Held, and the deadline has passed: the payer bank acts as the terms say."""
    RELEASED = "released"
    """The release is proven; the payee bank has not credited its customer yet."""
    PAID = "paid"
    """Credited to the payee (the claim counts)."""
    REFUNDED = "refunded"
    """Credited back to the payer (the refund counts)."""
    DISPUTED = "disputed"
    """The payee bank's claim and the payer bank's refund on a signed statement both hold on
    their own: the first in ledger order counts, and the reader was not given that order
    (the SDK proves it from the blocks and asks again)."""


class PaymentRequestStatus(StrEnum):
    """Where a payment request stands, as both banks of the pair compute it."""

    PENDING = "pending"
    PAID = "paid"
    """The payer bank paid it: a transfer whose id is the request's id."""
    DECLINED = "declined"
    EXPIRED = "expired"
    """Unanswered past its due time: it can no longer be paid."""
    MISMATCHED = "mismatched"
    """A transfer under the request's id that does not pay what it asks (counted as a plain
    payment; reported)."""


def statement_message(
    *,
    escrow_id: str,
    payer_bank: str,
    payee_bank: str,
    amount: int,
    currency: str,
    verdict: Verdict,
    signer: str,
    signed_at: str,
) -> bytes:
    """The exact bytes a statement's signature covers (canonical JSON, sorted keys)."""
    return canonical_json({
        "kind": STATEMENT_KIND, "escrow_id": escrow_id, "payer_bank": payer_bank,
        "payee_bank": payee_bank, "amount": amount, "currency": currency,
        "verdict": verdict.value, "signer": signer, "signed_at": signed_at,
    })


@dataclass(frozen=True)
class Statement:
    """A signed statement about one escrow, as it travels in a claim or a refund (the escrow's
    own facts come from the escrow record: only these four fields travel)."""

    signer: str
    verdict: Verdict
    signed_at: str
    signature: str

    def to_json(self) -> dict[str, str]:
        return {"signer": self.signer, "verdict": self.verdict.value,
                "signed_at": self.signed_at, "signature": self.signature}

    @classmethod
    def read(cls, f: Fields) -> Self:
        return cls(
            f.str_("signer", max_len=32, pattern=PARTY_NAME_RE, rule="must be a party name"),
            f.enum("verdict", Verdict),
            format_timestamp(f.ts("signed_at")),
            f.str_("signature", max_len=200, pattern=_SIGNATURE_RE,
                   rule="must be a base64 DER signature"),
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], where: str = "statement") -> Self:
        """Parse strictly (:class:`WireError` names the field)."""
        f = Fields(data, where)
        out = cls.read(f)
        f.done()
        return out


def _statement(f: Fields) -> Statement | None:
    raw = f.obj("statement", optional=True)
    if raw is None:
        return None
    return Statement.from_mapping(raw, "request.statement")


def _party(f: Fields, name: str) -> str | None:
    return f.opt_str(name, max_len=32, pattern=PARTY_NAME_RE, rule="must be a party name")


def _after(f: Fields) -> str | None:
    return f.opt_str("after", max_len=64, pattern=_KEY_ID, rule="must be an id")


def _differ(a: str, b: str, field_b: str, field_a: str) -> None:
    if a == b:
        raise WireError("INVALID_ARGUMENT", f"request.{field_b} must differ from "
                                            f"request.{field_a}")


# --------------------------------------------------------------------------- escrow


@dataclass(frozen=True)
class RegisterAttesterRequest(Request):
    """``register_attester``: the serving bank trusts ``name``'s P-256 public key (PEM) to
    attest deliveries, or to arbitrate, for the escrows its customers fund. Once per name."""

    name: str
    public_key_pem: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(f.str_("name", max_len=32, pattern=PARTY_NAME_RE, rule="must be a party name"),
                   f.str_("public_key_pem", max_len=1024))


@dataclass(frozen=True)
class OpenEscrowRequest(Request):
    """``open_escrow``: debit the payer now; credit the payee once the condition holds.

    ``attester`` and ``arbiter`` name parties the payer's bank registered
    (``register_attester``); the escrow carries their keys from then on. ``deadline`` is a
    timestamp; ``on_deadline`` says where the money goes if nothing decided it by then.
    """

    reference: str
    payer_account: str
    payee_bank: str
    payee_account: str
    amount: int
    deadline: str
    on_deadline: DeadlineAction = DeadlineAction.REFUND
    attester: str | None = None
    arbiter: str | None = None
    remittance: str = ""
    escrow_id: str | None = None
    originator: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        on_deadline = (f.enum("on_deadline", DeadlineAction) if f.has("on_deadline")
                       else DeadlineAction(f.opt_str("on_deadline") or "refund"))
        return cls(
            _reference(f), _account(f, "payer_account"), _bank(f, "payee_bank"),
            _account(f, "payee_account"), f.amount(), format_timestamp(f.ts("deadline")),
            on_deadline, _party(f, "attester"), _party(f, "arbiter"),
            f.opt_str("remittance", max_len=1024) or "",
            _opt_account(f, "escrow_id"), f.str_map("originator", max_len=1024),
        )

    def _check(self) -> None:
        if self.payee_account == self.payer_account:
            raise WireError("INVALID_ARGUMENT",
                            "request.payee_account must differ from request.payer_account")


@dataclass(frozen=True)
class ReleaseEscrowRequest(Request):
    """``release_escrow`` (the payer's bank): the buyer confirmed; or the deadline passed and
    the terms say the money goes to the payee."""

    escrow_id: str
    payee_bank: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "escrow_id"), _bank(f, "payee_bank"))


@dataclass(frozen=True)
class ClaimEscrowRequest(Request):
    """``claim_escrow`` (the payee's bank): credit the payee, on the payer bank's release or
    on a signed ``statement`` (the attester's delivery, the arbiter's ruling)."""

    escrow_id: str
    payer_bank: str
    statement: Statement | None = None

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "escrow_id"), _bank(f, "payer_bank"), _statement(f))

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"escrow_id": self.escrow_id, "payer_bank": self.payer_bank}
        if self.statement is not None:
            out["statement"] = self.statement.to_json()
        return out


@dataclass(frozen=True)
class ClaimItem:
    """One escrow of a ``claim_escrows`` batch, with the statement it is claimed on (none:
    on the payer bank's release)."""

    escrow_id: str
    statement: Statement | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"escrow_id": self.escrow_id}
        if self.statement is not None:
            out["statement"] = self.statement.to_json()
        return out


#: Most escrows claimed in one transaction (bounds its write set).
MAX_CLAIMS = 500


@dataclass(frozen=True)
class ClaimEscrowsRequest(Request):
    """``claim_escrows`` (the payee's bank): many escrows of one payer bank at once, each
    judged as ``claim_escrow`` judges one, the credits summed per payee account (one seller
    paid from many escrows is not a hot key)."""

    payer_bank: str
    items: tuple[ClaimItem, ...]

    @classmethod
    def _read(cls, f: Fields) -> Self:
        payer = _bank(f, "payer_bank")
        items: list[ClaimItem] = []
        for item in f.objects("items", max_items=MAX_CLAIMS):
            eid = _account(item, "escrow_id")
            st = _statement(item)
            item.done()
            items.append(ClaimItem(eid, st))
        if not items:
            f.fail("items", "must hold at least one escrow")
        if len({i.escrow_id for i in items}) != len(items):
            f.fail("items", "must name each escrow once")
        return cls(payer, tuple(items))

    def to_json(self) -> dict[str, object]:
        return {"payer_bank": self.payer_bank, "items": [i.to_json() for i in self.items]}


@dataclass(frozen=True)
class RefundEscrowRequest(Request):
    """``refund_escrow`` (the payer's bank): credit the payer back, after the deadline (if the
    terms say refund) or on the arbiter's signed ``refund`` ruling."""

    escrow_id: str
    payee_bank: str
    statement: Statement | None = None

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "escrow_id"), _bank(f, "payee_bank"), _statement(f))

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"escrow_id": self.escrow_id, "payee_bank": self.payee_bank}
        if self.statement is not None:
            out["statement"] = self.statement.to_json()
        return out


@dataclass(frozen=True)
class EscrowLookup(Request):
    """``get_escrow``: one escrow, its records and its state; ``ledger_order`` (as in
    ``get_obligations``) places a claim and a refund that both hold, which the earlier of
    decides."""

    escrow_id: str
    payer_bank: str
    payee_bank: str
    ledger_order: Mapping[str, LedgerPosition] = field(default_factory=dict)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "escrow_id"), _bank(f, "payer_bank"), _bank(f, "payee_bank"),
                   _ledger_order(f))


@dataclass(frozen=True)
class ListEscrowsRequest(Request):
    """``list_escrows``: the escrows ``payer_bank`` opened toward ``payee_bank`` (the same
    bank twice: within it), one page after the escrow id ``after``."""

    payer_bank: str
    payee_bank: str
    page_size: int = DEFAULT_PAGE_SIZE
    after: str | None = None

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_bank(f, "payer_bank"), _bank(f, "payee_bank"), _page_size(f), _after(f))


# --------------------------------------------------------------------------- payment requests


@dataclass(frozen=True)
class RequestPaymentRequest(Request):
    """``request_payment`` (the payee's bank, for its exporter): ask ``payer_bank`` to pay
    ``amount`` from its customer's ``payer_account`` into ``payee_account`` by ``due``."""

    reference: str
    payer_bank: str
    payer_account: str
    payee_account: str
    amount: int
    currency: str
    invoice_ref: str
    due: str
    request_id: str | None = None

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_reference(f), _bank(f, "payer_bank"), _account(f, "payer_account"),
                   _account(f, "payee_account"), f.amount(), _currency(f),
                   f.str_("invoice_ref", max_len=128), format_timestamp(f.ts("due")),
                   _opt_account(f, "request_id"))


@dataclass(frozen=True)
class ApproveRequestRequest(Request):
    """``approve_request`` (the payer's bank): pay the request, once: a cross-bank transfer
    whose id is the request's id."""

    reference: str
    payee_bank: str
    request_id: str
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    originator: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_reference(f), _bank(f, "payee_bank"), _account(f, "request_id"), _ttl(f),
                   f.str_map("originator", max_len=1024))


@dataclass(frozen=True)
class DeclineRequestRequest(Request):
    """``decline_request`` (the payer's bank): refuse the request (``reason`` for the payee
    bank)."""

    payee_bank: str
    request_id: str
    reason: str = ""

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_bank(f, "payee_bank"), _account(f, "request_id"),
                   f.opt_str("reason", max_len=256) or "")


@dataclass(frozen=True)
class PaymentRequestLookup(Request):
    """``get_payment_request``: one request and its status."""

    request_id: str
    payer_bank: str
    payee_bank: str

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_account(f, "request_id"), _bank(f, "payer_bank"), _bank(f, "payee_bank"))

    def _check(self) -> None:
        _differ(self.payer_bank, self.payee_bank, "payee_bank", "payer_bank")


@dataclass(frozen=True)
class ListPaymentRequestsRequest(Request):
    """``list_payment_requests``: what ``payee_bank`` asked ``payer_bank`` to pay, one page
    after the request id ``after``."""

    payer_bank: str
    payee_bank: str
    page_size: int = DEFAULT_PAGE_SIZE
    after: str | None = None

    @classmethod
    def _read(cls, f: Fields) -> Self:
        return cls(_bank(f, "payer_bank"), _bank(f, "payee_bank"), _page_size(f), _after(f))

    def _check(self) -> None:
        _differ(self.payer_bank, self.payee_bank, "payee_bank", "payer_bank")


#: Every request type of this module.
CONDITIONAL_REQUESTS: tuple[type[Request], ...] = (
    RegisterAttesterRequest, OpenEscrowRequest, ReleaseEscrowRequest, ClaimEscrowRequest,
    ClaimEscrowsRequest, RefundEscrowRequest, EscrowLookup, ListEscrowsRequest,
    RequestPaymentRequest, ApproveRequestRequest, DeclineRequestRequest, PaymentRequestLookup,
    ListPaymentRequestsRequest,
)
