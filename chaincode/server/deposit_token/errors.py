"""The deposit-token contract's exceptions: the wire package's refusal classes.

Every refusal is a class of :mod:`dtoken_wire.errors`, one per stable code; the contract raises
them and the bank SDK maps a refusal message back to the same class, so there is one class per
code in the whole project and nothing to keep equal. This module re-exports them under the
names the contract's modules import, with :data:`DepositTokenError` as the contract's name for
their root (:class:`dtoken_wire.errors.ContractError`). The tree is in that module's docstring.

Messages name fields and rules, never values: error messages are written into blocks that
every member of the channel holds, so an amount, an account id, an owner reference or a
client reference must never appear in one.
"""

from __future__ import annotations

from dtoken_wire.errors import (
    CODES,
    AccountClosed,
    AccountFrozen,
    AlreadyExists,
    AlreadyInitialized,
    ContractError,
    CorruptState,
    CurrencyMismatch,
    DuplicateReference,
    Expired,
    InsufficientFunds,
    InternalError,
    InvalidAmount,
    InvalidArgument,
    InvalidState,
    LimitExceeded,
    NotAuthorized,
    NotExpired,
    NotFound,
    NotInitialized,
    ServerMisconfigured,
    UnknownTransaction,
    WrongEndorser,
    refusal_from_message,
)

__all__ = [
    "CODES",
    "AccountClosed",
    "AccountFrozen",
    "AlreadyExists",
    "AlreadyInitialized",
    "CorruptState",
    "CurrencyMismatch",
    "DepositTokenError",
    "DuplicateReference",
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
    "WrongEndorser",
    "refusal_from_message",
]

#: Root of every exception the contract raises on purpose (``str(exc)`` is
#: ``"<CODE>: <detail>"``).
DepositTokenError = ContractError
