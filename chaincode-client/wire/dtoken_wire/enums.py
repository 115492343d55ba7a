"""The states both sides name: account status, transfer status, pending direction.

Owns: the enums whose values travel in requests and answers. Must not: hold transition rules
(those are the chaincode's ``deposit_token.rules``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AccountStatus", "Direction", "Rounding", "TransferStatus"]


class AccountStatus(StrEnum):
    """Status of an account. ``closed`` is final."""

    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class TransferStatus(StrEnum):
    """Where a cross-bank transfer stands, as one bank sees the records."""

    PENDING = "pending"
    """Undecided, not expired: the payee bank may accept or reject it."""
    EXPIRED = "expired"
    """Undecided and expired: the payer bank may refund it."""
    REJECTED = "rejected"
    """Rejected, not yet refunded: the payer bank refunds it."""
    ACCEPTED = "accepted"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    """Both an accept and a refund exist (a dishonest bank skipped a read): ledger order
    decides."""


class Direction(StrEnum):
    """Pending transfers coming in to, or going out of, a bank."""

    INCOMING = "incoming"
    OUTGOING = "outgoing"


class Rounding(StrEnum):
    """Which way a quoted conversion rounds to the payee currency's minor unit (a field of
    each quote, chosen by the payee bank that gives it)."""

    PAYEE = "payee"
    """Up: the payee gets the last minor unit (the bank absorbs the fraction)."""
    BANK = "bank"
    """Down: the bank keeps the fraction."""
