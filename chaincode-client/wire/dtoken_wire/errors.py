"""The error-code table: every stable code the contract may answer with, written once.

A chaincode error message starts with ``"<CODE>: "``. Both sides build their exception classes
from :data:`ERROR_CODES` with :func:`build_error_classes`: the contract
(``deposit_token.errors``, root ``DepositTokenError``) to raise them, the bank SDK
(``dtoken.errors``, root ``ContractError``) to map a refusal back to the same class name. A
class either side writes by hand (to subclass it statically, or to carry more data) is checked
against its row, so the two sides cannot drift.

Also owns :class:`WireError`, what :mod:`.fields` raises when a JSON object does not have the
shape of a request: it carries the table code (``INVALID_ARGUMENT`` or ``INVALID_AMOUNT``),
and the contract turns it into its own class of that code.

Must not: import anything outside the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "ERROR_CODES",
    "ErrorCode",
    "WireError",
    "build_error_classes",
]

_E = TypeVar("_E", bound=Exception)


@dataclass(frozen=True)
class ErrorCode:
    """One row: the code, the class name on both sides, its parent row (``None``: the side's
    root), the builtin exception it also subclasses, and what it means."""

    code: str
    name: str
    parent: str | None
    builtin: type[Exception] | None
    doc: str


#: Parents before children (:func:`build_error_classes` relies on it).
ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode("INVALID_ARGUMENT", "InvalidArgument", None, ValueError,
              "The request is malformed: a missing field, a wrong type, a bad format."),
    ErrorCode("INVALID_AMOUNT", "InvalidAmount", "InvalidArgument", None,
              "An amount is not a positive integer number of minor units within bounds."),
    ErrorCode("CURRENCY_MISMATCH", "CurrencyMismatch", "InvalidArgument", None,
              "Two accounts, or an account and a token, are in different currencies."),
    ErrorCode("NOT_AUTHORIZED", "NotAuthorized", None, PermissionError,
              "The client's organization or role does not allow the transaction."),
    ErrorCode("WRONG_ENDORSER", "WrongEndorser", "NotAuthorized", None,
              "The peer asked does not endorse writes for that organization's collections."),
    ErrorCode("NOT_FOUND", "NotFound", None, LookupError,
              "A record the transaction needs does not exist (or has not reached this peer)."),
    ErrorCode("ALREADY_EXISTS", "AlreadyExists", None, None,
              "A record the transaction would create exists already."),
    ErrorCode("DUPLICATE_REFERENCE", "DuplicateReference", None, None,
              "The client reference was applied already: a reference moves money once."),
    ErrorCode("INSUFFICIENT_FUNDS", "InsufficientFunds", None, ValueError,
              "The available balance (balance less regulator holds) does not cover the debit."),
    ErrorCode("LIMIT_EXCEEDED", "LimitExceeded", None, None,
              "A single-payment or daily-outflow limit of the account would be exceeded."),
    ErrorCode("FROZEN", "AccountFrozen", None, None,
              "The account is frozen by its bank or by a regulator's hold."),
    ErrorCode("CLOSED", "AccountClosed", None, None, "The account is closed."),
    ErrorCode("EXPIRED", "Expired", None, None,
              "The cross-bank transfer expired (by the transaction's timestamp)."),
    ErrorCode("NOT_EXPIRED", "NotExpired", None, None,
              "A refund without a rejection must wait for the transfer's expiry."),
    ErrorCode("INVALID_STATE", "InvalidState", None, None,
              "The record is not in a state that allows the transition (already decided ...)."),
    ErrorCode("NOT_INITIALIZED", "NotInitialized", None, None,
              "``init_network`` has not run: there is no registry in public state."),
    ErrorCode("ALREADY_INITIALIZED", "AlreadyInitialized", None, None,
              "``init_network`` ran already: the registry is written once."),
    ErrorCode("CORRUPT_STATE", "CorruptState", None, None,
              "A stored record does not parse: the ledger holds something the contract never "
              "wrote."),
    ErrorCode("SERVER_MISCONFIGURED", "ServerMisconfigured", None, None,
              "The chaincode server's configuration (its MSP id, its secret) is missing or "
              "invalid."),
    ErrorCode("INTERNAL", "InternalError", None, None,
              "An unexpected failure; its original text is not returned because it may hold "
              "values."),
    ErrorCode("UNKNOWN_TRANSACTION", "UnknownTransaction", None, None,
              "The chaincode has no such transaction (a client newer than the deployed "
              "contract); raised by the contract framework."),
)


class WireError(ValueError):
    """A JSON object does not have its wire shape; ``code`` is a row of the table."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


def build_error_classes(
    root: type[_E], module: str, written: Mapping[str, type[_E]] | None = None
) -> dict[str, type[_E]]:
    """One subclass of ``root`` per row of :data:`ERROR_CODES`, by class name.

    A class in ``written`` (hand-written by the caller) is used as it is, after checking that
    its name, ``code``, parent and builtin base are its row's (``TypeError`` otherwise). The
    others are created with the row's docstring and ``code``, in ``module``.
    """
    written = dict(written or {})
    out: dict[str, type[_E]] = {}
    for row in ERROR_CODES:
        parent = root if row.parent is None else out[row.parent]
        bases: tuple[type, ...] = (parent,) if row.builtin is None else (parent, row.builtin)
        cls = written.pop(row.name, None)
        if cls is None:
            made = type(row.name, bases, {"__doc__": row.doc, "__module__": module,
                                          "code": row.code})
            cls = made
        elif (cls.__name__ != row.name or getattr(cls, "code", None) != row.code
              or not all(issubclass(cls, b) for b in bases)):
            raise TypeError(f"{module}.{cls.__name__} does not match its row {row.code}")
        out[row.name] = cls
    if written:
        raise TypeError(f"{module} writes classes the table does not have: {sorted(written)}")
    return out
