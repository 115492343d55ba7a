"""The deposit-token contract's exceptions: one root, :class:`DepositTokenError`.

Every message starts with a stable code followed by ``": "`` so that the bank SDK can
map an error response back to a typed exception (:func:`error_from_message`). Messages
name fields and rules, never values: error messages are written into blocks that every
member of the channel holds, so an amount, an account id, an owner reference or a client
reference must never appear in one.

::

    DepositTokenError                         (code)
    ├── InvalidArgument (ValueError)          INVALID_ARGUMENT
    │   ├── InvalidAmount                     INVALID_AMOUNT
    │   └── CurrencyMismatch                  CURRENCY_MISMATCH
    ├── NotAuthorized (PermissionError)       NOT_AUTHORIZED
    │   └── WrongEndorser                     WRONG_ENDORSER
    ├── NotFound (LookupError)                NOT_FOUND
    ├── AlreadyExists                         ALREADY_EXISTS
    ├── DuplicateReference                    DUPLICATE_REFERENCE
    ├── InsufficientFunds (ValueError)        INSUFFICIENT_FUNDS
    ├── LimitExceeded                         LIMIT_EXCEEDED
    ├── AccountFrozen                         FROZEN
    ├── AccountClosed                         CLOSED
    ├── Expired                               EXPIRED
    ├── NotExpired                            NOT_EXPIRED
    ├── InvalidState                          INVALID_STATE
    ├── NotInitialized                        NOT_INITIALIZED
    ├── AlreadyInitialized                    ALREADY_INITIALIZED
    ├── CorruptState                          CORRUPT_STATE
    ├── ServerMisconfigured                   SERVER_MISCONFIGURED
    └── InternalError                         INTERNAL
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
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
    "WrongEndorser",
    "error_from_message",
]


class DepositTokenError(Exception):
    """Root of every exception the contract raises on purpose.

    ``str(exc)`` is ``"<CODE>: <detail>"``; ``exc.code`` and ``exc.detail`` hold the parts.
    The detail must be a fixed text or name only public things (field names, bank names,
    currency codes, role names): never an amount, an id or a reference.
    """

    code: ClassVar[str] = "DEPOSIT_TOKEN_ERROR"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"{self.code}: {detail}")


class InvalidArgument(DepositTokenError, ValueError):
    """The request is malformed: a missing field, a wrong type, a bad format."""

    code = "INVALID_ARGUMENT"


class InvalidAmount(InvalidArgument):
    """An amount is not a positive integer number of minor units within bounds."""

    code = "INVALID_AMOUNT"


class CurrencyMismatch(InvalidArgument):
    """Two accounts, or an account and a token, are in different currencies."""

    code = "CURRENCY_MISMATCH"


class NotAuthorized(DepositTokenError, PermissionError):
    """The client's organization or role does not allow the transaction."""

    code = "NOT_AUTHORIZED"


class WrongEndorser(NotAuthorized):
    """This chaincode server does not endorse writes for that organization's collections."""

    code = "WRONG_ENDORSER"


class NotFound(DepositTokenError, LookupError):
    """A record the transaction needs does not exist (or is not visible to this peer)."""

    code = "NOT_FOUND"


class AlreadyExists(DepositTokenError):
    """A record the transaction would create exists already."""

    code = "ALREADY_EXISTS"


class DuplicateReference(DepositTokenError):
    """The client reference was applied already: a reference moves money once."""

    code = "DUPLICATE_REFERENCE"


class InsufficientFunds(DepositTokenError, ValueError):
    """The available balance (balance less regulator holds) does not cover the debit."""

    code = "INSUFFICIENT_FUNDS"


class LimitExceeded(DepositTokenError):
    """A single-payment or daily-outflow limit of the account would be exceeded."""

    code = "LIMIT_EXCEEDED"


class AccountFrozen(DepositTokenError):
    """The account is frozen by its bank or by a regulator's hold."""

    code = "FROZEN"


class AccountClosed(DepositTokenError):
    """The account is closed."""

    code = "CLOSED"


class Expired(DepositTokenError):
    """The cross-bank transfer expired (by the transaction's timestamp)."""

    code = "EXPIRED"


class NotExpired(DepositTokenError):
    """A refund without a rejection must wait for the transfer's expiry."""

    code = "NOT_EXPIRED"


class InvalidState(DepositTokenError):
    """The record is not in a state that allows the transition (already decided ...)."""

    code = "INVALID_STATE"


class NotInitialized(DepositTokenError):
    """``init_network`` has not run: there is no registry in public state."""

    code = "NOT_INITIALIZED"


class AlreadyInitialized(DepositTokenError):
    """``init_network`` ran already: the registry is written once."""

    code = "ALREADY_INITIALIZED"


class CorruptState(DepositTokenError):
    """A stored record does not parse: the ledger holds something this contract never wrote."""

    code = "CORRUPT_STATE"


class ServerMisconfigured(DepositTokenError):
    """The chaincode server's configuration (its MSP id, its secret) is missing or invalid."""

    code = "SERVER_MISCONFIGURED"


class InternalError(DepositTokenError):
    """An unexpected failure; its original text is not returned because it may hold values."""

    code = "INTERNAL"


_BY_CODE: dict[str, type[DepositTokenError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        InvalidAmount,
        CurrencyMismatch,
        NotAuthorized,
        WrongEndorser,
        NotFound,
        AlreadyExists,
        DuplicateReference,
        InsufficientFunds,
        LimitExceeded,
        AccountFrozen,
        AccountClosed,
        Expired,
        NotExpired,
        InvalidState,
        NotInitialized,
        AlreadyInitialized,
        CorruptState,
        ServerMisconfigured,
        InternalError,
    )
}

#: Every stable code, for the SDK's mapping and for tests.
CODES: frozenset[str] = frozenset(_BY_CODE)


def error_from_message(message: str) -> DepositTokenError | None:
    """Rebuild the typed error from a chaincode error message, or ``None`` if it has no code.

    The peer may wrap the chaincode's message (``"chaincode response 500, CODE: ..."``), so the
    first ``CODE: `` found in the text counts.
    """
    best: tuple[int, type[DepositTokenError], str] | None = None
    for code, cls in _BY_CODE.items():
        marker = f"{code}: "
        at = message.find(marker)
        while at > 0 and (message[at - 1].isalnum() or message[at - 1] == "_"):
            at = message.find(marker, at + 1)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, cls, message[at + len(marker) :])
    if best is None:
        return None
    return best[1](best[2])
