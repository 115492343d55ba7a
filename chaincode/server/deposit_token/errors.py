"""The deposit-token contract's exceptions: one root, :class:`DepositTokenError`.

Every message starts with a stable code followed by ``": "`` so that the bank SDK can
map an error response back to a typed exception (:func:`error_from_message`). The classes
below the root are built from the wire package's table
(:data:`dtoken_wire.errors.ERROR_CODES`), from which the SDK builds its own: one table, two
roots, no copy to keep equal. Messages
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
    ├── InternalError                         INTERNAL
    └── UnknownTransaction                    UNKNOWN_TRANSACTION (raised by fabcontract)
"""

from __future__ import annotations

from typing import ClassVar, Final

from dtoken_wire.errors import build_error_classes

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


class InternalError(DepositTokenError):
    """An unexpected failure; its original text is not returned because it may hold values.

    Written here (and checked against its row) so that ``ledger.QueryOrderError`` can
    subclass it."""

    code = "INTERNAL"


_CLASSES = build_error_classes(DepositTokenError, __name__, {"InternalError": InternalError})

InvalidArgument: Final = _CLASSES["InvalidArgument"]
InvalidAmount: Final = _CLASSES["InvalidAmount"]
CurrencyMismatch: Final = _CLASSES["CurrencyMismatch"]
NotAuthorized: Final = _CLASSES["NotAuthorized"]
WrongEndorser: Final = _CLASSES["WrongEndorser"]
NotFound: Final = _CLASSES["NotFound"]
AlreadyExists: Final = _CLASSES["AlreadyExists"]
DuplicateReference: Final = _CLASSES["DuplicateReference"]
InsufficientFunds: Final = _CLASSES["InsufficientFunds"]
LimitExceeded: Final = _CLASSES["LimitExceeded"]
AccountFrozen: Final = _CLASSES["AccountFrozen"]
AccountClosed: Final = _CLASSES["AccountClosed"]
Expired: Final = _CLASSES["Expired"]
NotExpired: Final = _CLASSES["NotExpired"]
InvalidState: Final = _CLASSES["InvalidState"]
NotInitialized: Final = _CLASSES["NotInitialized"]
AlreadyInitialized: Final = _CLASSES["AlreadyInitialized"]
CorruptState: Final = _CLASSES["CorruptState"]
ServerMisconfigured: Final = _CLASSES["ServerMisconfigured"]
UnknownTransaction: Final = _CLASSES["UnknownTransaction"]

_BY_CODE: dict[str, type[DepositTokenError]] = {cls.code: cls for cls in _CLASSES.values()}

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
