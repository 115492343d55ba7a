"""The contract's refusals: one class per stable code, written once for both sides.

A chaincode error message starts with ``"<CODE>: "``. The classes below are the only ones of
their kind in the project: the contract (``deposit_token``) raises them, and the bank SDK
(``dtoken``) raises the same classes when it maps a refusal back from a message
(:func:`refusal_from_message`). Neither side writes a class of its own per code, so there is
nothing to keep equal, and mypy sees every class with its real bases (``InvalidAmount`` is an
``InvalidArgument`` and a ``ValueError``) on both sides.

:class:`DTokenError` is the root of every exception the deposit-token system raises on purpose;
the SDK hangs its own branches (usage errors, network faults) under it.

::

    DTokenError
    └── ContractError                        the contract refused: code, detail
        ├── InvalidArgument (ValueError)     INVALID_ARGUMENT
        │   ├── InvalidAmount                INVALID_AMOUNT
        │   └── CurrencyMismatch             CURRENCY_MISMATCH
        ├── NotAuthorized (PermissionError)  NOT_AUTHORIZED
        │   ├── WrongEndorser                WRONG_ENDORSER
        │   └── BankSuspended                SUSPENDED
        ├── NotFound (LookupError)           NOT_FOUND
        ├── AlreadyExists                    ALREADY_EXISTS
        ├── DuplicateReference               DUPLICATE_REFERENCE (+ original_tx_id, SDK side)
        ├── InsufficientFunds (ValueError)   INSUFFICIENT_FUNDS
        ├── LimitExceeded                    LIMIT_EXCEEDED
        ├── AccountFrozen                    FROZEN
        ├── AccountClosed                    CLOSED
        ├── Expired                          EXPIRED
        ├── NotExpired                       NOT_EXPIRED
        ├── InvalidState                     INVALID_STATE
        ├── NotInitialized                   NOT_INITIALIZED
        ├── AlreadyInitialized               ALREADY_INITIALIZED
        ├── CorruptState                     CORRUPT_STATE
        ├── ServerMisconfigured              SERVER_MISCONFIGURED
        ├── InternalError                    INTERNAL
        └── UnknownTransaction               UNKNOWN_TRANSACTION (raised by fabcontract)

:data:`ERROR_CODES` is the same tree as a table (code, class name, parent, builtin base, what it
means), read by tests and docs.

Also owns :class:`WireError`, what :mod:`.fields` raises when a JSON object does not have the
shape of a request: it carries a code of the table (``INVALID_ARGUMENT`` or ``INVALID_AMOUNT``),
and the contract turns it into the refusal of that code.

Must not: import anything outside the standard library; put a value (an amount, an id, a
reference) in a detail: error messages are written into blocks every channel member holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "CODES",
    "ERROR_CODES",
    "REFUSALS",
    "AccountClosed",
    "AccountFrozen",
    "AlreadyExists",
    "AlreadyInitialized",
    "BankSuspended",
    "ContractError",
    "CorruptState",
    "CurrencyMismatch",
    "DTokenError",
    "DuplicateReference",
    "ErrorCode",
    "Expired",
    "InsufficientFunds",
    "InternalError",
    "InvalidAmount",
    "InvalidArgument",
    "InvalidState",
    "LimitExceeded",
    "NotAuthorized",
    "NotExpired",
    "NotFound",
    "NotInitialized",
    "ServerMisconfigured",
    "UnknownTransaction",
    "WireError",
    "WrongEndorser",
    "refusal_from_message",
]


class DTokenError(Exception):
    """Root of every exception the deposit-token system (contract and SDK) raises on purpose."""


class ContractError(DTokenError):
    """The contract refused the transaction; it wrote nothing.

    ``str(exc)`` is ``"<CODE>: <detail>"``; ``code`` is the stable code, ``detail`` a fixed
    text or public names only (field, bank, currency, role names), ``transaction_id`` the
    refused proposal's id when the SDK knows it (the contract leaves it ``None``).
    """

    code: ClassVar[str] = ""

    def __init__(self, detail: str, *, transaction_id: str | None = None) -> None:
        self.detail = detail
        self.transaction_id = transaction_id
        super().__init__(f"{self.code}: {detail}" if self.code else detail)


class InvalidArgument(ContractError, ValueError):
    """The request is malformed: a missing field, a wrong type, a bad format."""

    code = "INVALID_ARGUMENT"


class InvalidAmount(InvalidArgument):
    """An amount is not a positive integer number of minor units within bounds."""

    code = "INVALID_AMOUNT"


class CurrencyMismatch(InvalidArgument):
    """Two accounts, or an account and a token, are in different currencies."""

    code = "CURRENCY_MISMATCH"


class NotAuthorized(ContractError, PermissionError):
    """The client's organization or role does not allow the transaction."""

    code = "NOT_AUTHORIZED"


class WrongEndorser(NotAuthorized):
    """The peer asked does not endorse writes for that organization's collections."""

    code = "WRONG_ENDORSER"


class BankSuspended(NotAuthorized):
    """The regulator suspended a bank of the transaction: no new payment to or from it
    (refunds and settlements of what is in flight go on)."""

    code = "SUSPENDED"


class NotFound(ContractError, LookupError):
    """A record the transaction needs does not exist (or has not reached this peer)."""

    code = "NOT_FOUND"


class AlreadyExists(ContractError):
    """A record the transaction would create exists already."""

    code = "ALREADY_EXISTS"


class DuplicateReference(ContractError):
    """The client reference was applied already: a reference moves money once.

    ``original_tx_id`` is the transaction that applied it, when the SDK could look it up.
    """

    code = "DUPLICATE_REFERENCE"

    def __init__(
        self,
        detail: str,
        *,
        transaction_id: str | None = None,
        original_tx_id: str | None = None,
    ) -> None:
        self.original_tx_id = original_tx_id
        super().__init__(detail, transaction_id=transaction_id)


class InsufficientFunds(ContractError, ValueError):
    """The available balance (balance less regulator holds) does not cover the debit."""

    code = "INSUFFICIENT_FUNDS"


class LimitExceeded(ContractError):
    """A single-payment or daily-outflow limit of the account would be exceeded."""

    code = "LIMIT_EXCEEDED"


class AccountFrozen(ContractError):
    """The account is frozen by its bank or by a regulator's hold."""

    code = "FROZEN"


class AccountClosed(ContractError):
    """The account is closed."""

    code = "CLOSED"


class Expired(ContractError):
    """The cross-bank transfer expired (by the transaction's timestamp)."""

    code = "EXPIRED"


class NotExpired(ContractError):
    """A refund without a rejection must wait for the transfer's expiry."""

    code = "NOT_EXPIRED"


class InvalidState(ContractError):
    """The record is not in a state that allows the transition (already decided ...)."""

    code = "INVALID_STATE"


class NotInitialized(ContractError):
    """``init_network`` has not run: there is no registry in public state."""

    code = "NOT_INITIALIZED"


class AlreadyInitialized(ContractError):
    """``init_network`` ran already: the registry is written once."""

    code = "ALREADY_INITIALIZED"


class CorruptState(ContractError):
    """A stored record does not parse: the ledger holds something the contract never wrote."""

    code = "CORRUPT_STATE"


class ServerMisconfigured(ContractError):
    """The chaincode server's configuration (its MSP id, its secret) is missing or invalid."""

    code = "SERVER_MISCONFIGURED"


class InternalError(ContractError):
    """An unexpected failure; its original text is not returned because it may hold values."""

    code = "INTERNAL"


class UnknownTransaction(ContractError):
    """The chaincode has no such transaction (a client newer than the deployed contract);
    raised by the contract framework (``fabcontract``, under this code)."""

    code = "UNKNOWN_TRANSACTION"


#: Every refusal class, parents before children.
REFUSALS: tuple[type[ContractError], ...] = (
    InvalidArgument, InvalidAmount, CurrencyMismatch, NotAuthorized, WrongEndorser,
    BankSuspended, NotFound,
    AlreadyExists, DuplicateReference, InsufficientFunds, LimitExceeded, AccountFrozen,
    AccountClosed, Expired, NotExpired, InvalidState, NotInitialized, AlreadyInitialized,
    CorruptState, ServerMisconfigured, InternalError, UnknownTransaction,
)

_BY_CODE: dict[str, type[ContractError]] = {cls.code: cls for cls in REFUSALS}

#: Every stable code.
CODES: frozenset[str] = frozenset(_BY_CODE)


@dataclass(frozen=True)
class ErrorCode:
    """One row of the table: the code, the class name, its parent class name (``None``: a
    direct child of :class:`ContractError`), the builtin exception it also subclasses, and what
    it means (the class's docstring)."""

    code: str
    name: str
    parent: str | None
    builtin: type[Exception] | None
    doc: str


def _row(cls: type[ContractError]) -> ErrorCode:
    parent = cls.__bases__[0]
    builtins = [b for b in cls.__bases__[1:] if b.__module__ == "builtins"]
    return ErrorCode(
        cls.code,
        cls.__name__,
        None if parent is ContractError else parent.__name__,
        builtins[0] if builtins else None,
        " ".join((cls.__doc__ or "").split()),
    )


#: The tree above as a table, parents before children.
ERROR_CODES: tuple[ErrorCode, ...] = tuple(_row(cls) for cls in REFUSALS)

_CODE_AT_START = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z_]*[A-Z]): ")


def refusal_from_message(
    message: str, *, transaction_id: str | None = None
) -> ContractError | None:
    """The refusal a chaincode error message (``"CODE: detail"``) carries, or ``None``.

    The first known ``CODE: `` at the start of a word counts (the peer may wrap the message:
    ``"chaincode response 500, CODE: ..."``); the detail is the text after it.
    """
    for found in _CODE_AT_START.finditer(message):
        cls = _BY_CODE.get(found.group(1))
        if cls is not None:
            return cls(message[found.end() :], transaction_id=transaction_id)
    return None


class WireError(ValueError):
    """A JSON object does not have its wire shape; ``code`` is a code of the table."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")
