"""The bank SDK's exceptions: one root, :class:`DTokenError`.

The contract's refusals come back as typed exceptions: a chaincode error message starts with a
stable code (``INSUFFICIENT_FUNDS: ...``), which :func:`contract_error` maps to the class below
that carries the same code. The classes under :class:`ContractError` are built from the wire
package's table (:data:`dtoken_wire.errors.ERROR_CODES`), the one the contract builds its own
from: the client side never imports the chaincode packages, and there is no copy to drift.

::

    DTokenError
    ├── UsageError (ValueError)            the caller's input is wrong before anything is sent
    │   ├── MoneyFormatError               an amount that does not parse ("1,250.00 USD")
    │   └── ProfileError                   the connection profile is missing or malformed
    ├── ContractError                      the contract refused: code, detail (nothing written)
    │   ├── InvalidArgument (ValueError)         INVALID_ARGUMENT
    │   │   ├── InvalidAmount                    INVALID_AMOUNT
    │   │   └── CurrencyMismatch                 CURRENCY_MISMATCH
    │   ├── NotAuthorized (PermissionError)      NOT_AUTHORIZED
    │   │   └── WrongEndorser                    WRONG_ENDORSER
    │   ├── NotFound (LookupError)               NOT_FOUND
    │   ├── AlreadyExists                        ALREADY_EXISTS
    │   ├── DuplicateReference                   DUPLICATE_REFERENCE (+ original_tx_id)
    │   ├── InsufficientFunds (ValueError)       INSUFFICIENT_FUNDS
    │   ├── LimitExceeded                        LIMIT_EXCEEDED
    │   ├── AccountFrozen                        FROZEN
    │   ├── AccountClosed                        CLOSED
    │   ├── Expired                              EXPIRED
    │   ├── NotExpired                           NOT_EXPIRED
    │   ├── InvalidState                         INVALID_STATE
    │   ├── NotInitialized                       NOT_INITIALIZED
    │   ├── AlreadyInitialized                   ALREADY_INITIALIZED
    │   ├── CorruptState                         CORRUPT_STATE
    │   ├── ServerMisconfigured                  SERVER_MISCONFIGURED
    │   ├── InternalError                        INTERNAL
    │   ├── UnknownTransaction                   UNKNOWN_TRANSACTION
    │   └── UnknownContractError                 any other code, or none
    ├── CommitFailed                       committed invalid for a reason retrying cannot cure
    └── NetworkFault                       the peer could not be reached or did not answer
        ├── OutcomeUnknown                 a write may or may not have been applied: retry it
        │                                  with the same reference, it cannot apply twice
        └── Contended                      every attempt this call sent lost a conflict; nothing
                                           was applied: call again with the same reference
"""

from __future__ import annotations

import re
from typing import ClassVar, Final

from dtoken_wire.errors import build_error_classes

__all__ = [
    "CODES",
    "AccountClosed",
    "AccountFrozen",
    "AlreadyExists",
    "AlreadyInitialized",
    "CommitFailed",
    "Contended",
    "ContractError",
    "CorruptState",
    "CurrencyMismatch",
    "DTokenError",
    "DuplicateReference",
    "Expired",
    "InsufficientFunds",
    "InternalError",
    "InvalidAmount",
    "InvalidArgument",
    "InvalidState",
    "LimitExceeded",
    "MoneyFormatError",
    "NetworkFault",
    "NotAuthorized",
    "NotExpired",
    "NotFound",
    "NotInitialized",
    "OutcomeUnknown",
    "ProfileError",
    "ServerMisconfigured",
    "UnknownContractError",
    "UnknownTransaction",
    "UsageError",
    "WrongEndorser",
    "contract_error",
]


class DTokenError(Exception):
    """Root of every exception the bank SDK raises on purpose."""


class UsageError(DTokenError, ValueError):
    """The caller's input is wrong; nothing was sent."""


class MoneyFormatError(UsageError):
    """An amount that does not parse (see :meth:`dtoken.money.Money.parse`)."""


class ProfileError(UsageError):
    """The connection profile (or a file it names) is missing or malformed."""


class ContractError(DTokenError):
    """The contract refused the transaction; it wrote nothing.

    ``code`` is the contract's stable code, ``detail`` its fixed text (never a private value),
    ``transaction_id`` the refused proposal's id when known.
    """

    code: ClassVar[str] = ""

    def __init__(self, detail: str, *, transaction_id: str | None = None) -> None:
        self.detail = detail
        self.transaction_id = transaction_id
        super().__init__(f"{self.code}: {detail}" if self.code else detail)


class DuplicateReference(ContractError):
    """The reference was applied already, by another transaction than this call's attempts.

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


_CLASSES = build_error_classes(ContractError, __name__,
                               {"DuplicateReference": DuplicateReference})

InvalidArgument: Final = _CLASSES["InvalidArgument"]
InvalidAmount: Final = _CLASSES["InvalidAmount"]
CurrencyMismatch: Final = _CLASSES["CurrencyMismatch"]
NotAuthorized: Final = _CLASSES["NotAuthorized"]
WrongEndorser: Final = _CLASSES["WrongEndorser"]
NotFound: Final = _CLASSES["NotFound"]
AlreadyExists: Final = _CLASSES["AlreadyExists"]
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
InternalError: Final = _CLASSES["InternalError"]
UnknownTransaction: Final = _CLASSES["UnknownTransaction"]


class UnknownContractError(ContractError):
    """The chaincode failed with a message that carries no known code."""


class CommitFailed(DTokenError):
    """The transaction was ordered but committed invalid, and retrying cannot help (or the
    retries were spent). ``code_name`` is Fabric's validation code (``MVCC_READ_CONFLICT``,
    ``ENDORSEMENT_POLICY_FAILURE`` ...). Nothing was applied."""

    def __init__(self, message: str, *, transaction_id: str, code_name: str) -> None:
        self.transaction_id = transaction_id
        self.code_name = code_name
        super().__init__(message)


class NetworkFault(DTokenError):
    """The peer (or the orderers behind it) could not be reached or did not answer."""


class OutcomeUnknown(NetworkFault):
    """A write was sent but its fate is not known yet. Retrying with the same reference is
    safe: every retry carries the same transaction id, which Fabric executes at most once.
    ``transaction_ids`` are the attempts that may be in flight."""

    def __init__(self, message: str, *, reference: str, transaction_ids: tuple[str, ...]) -> None:
        self.reference = reference
        self.transaction_ids = transaction_ids
        super().__init__(message)


_BY_CODE: dict[str, type[ContractError]] = {cls.code: cls for cls in _CLASSES.values()}

#: Every code the SDK maps to its own class.
CODES: frozenset[str] = frozenset(_BY_CODE)

_CODE_AT_START = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z_]*[A-Z]): ")


def contract_error(message: str, *, transaction_id: str | None = None) -> ContractError:
    """The typed exception for a chaincode error message (``"CODE: detail"``).

    The first known ``CODE: `` in the text counts (the peer may wrap the message); a message
    without one becomes :class:`UnknownContractError` with the whole text as detail.
    """
    for found in _CODE_AT_START.finditer(message):
        cls = _BY_CODE.get(found.group(1))
        if cls is not None:
            return cls(message[found.end() :], transaction_id=transaction_id)
    return UnknownContractError(message, transaction_id=transaction_id)


class Contended(NetworkFault):
    """Every attempt this call sent was invalidated by a conflict (another transaction wrote
    what it read) until the call's time ran out. Nothing was applied, and the reference is not
    spent: a later call with the same reference walks past the invalidated attempts and goes
    on. ``transaction_id`` is the last invalidated attempt, ``next_attempt`` the one a later
    call will send."""

    def __init__(
        self, message: str, *, reference: str, transaction_id: str, next_attempt: int
    ) -> None:
        self.reference = reference
        self.transaction_id = transaction_id
        self.next_attempt = next_attempt
        super().__init__(message)
