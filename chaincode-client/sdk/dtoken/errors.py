"""The bank SDK's exceptions: one root, :class:`DTokenError`.

The contract's refusals come back as typed exceptions: a chaincode error message starts with a
stable code (``INSUFFICIENT_FUNDS: ...``), which :func:`contract_error` maps to the class below
that carries the same code. The table is duplicated here on purpose: the client side never
imports the chaincode packages (a unit test checks that both tables agree).

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
    │   ├── InsufficientFunds                    INSUFFICIENT_FUNDS
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
    ├── CommitFailed                       committed invalid (not retryable, or retries spent)
    └── NetworkFault                       the peer could not be reached or did not answer
        └── OutcomeUnknown                 a write may or may not have been applied: retry it
                                           with the same reference, it cannot apply twice
"""

from __future__ import annotations

import re
from typing import ClassVar

__all__ = [
    "CODES",
    "AccountClosed",
    "AccountFrozen",
    "AlreadyExists",
    "AlreadyInitialized",
    "CommitFailed",
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


class NotFound(ContractError, LookupError):
    """A record the transaction needs does not exist (or has not reached this peer yet)."""

    code = "NOT_FOUND"


class AlreadyExists(ContractError):
    """A record the transaction would create exists already."""

    code = "ALREADY_EXISTS"


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
    """The network's registry has not been written (``init_network`` has not run)."""

    code = "NOT_INITIALIZED"


class AlreadyInitialized(ContractError):
    """``init_network`` ran already."""

    code = "ALREADY_INITIALIZED"


class CorruptState(ContractError):
    """A stored record does not parse."""

    code = "CORRUPT_STATE"


class ServerMisconfigured(ContractError):
    """The bank's chaincode server is misconfigured (its MSP id or secret)."""

    code = "SERVER_MISCONFIGURED"


class InternalError(ContractError):
    """An unexpected failure inside the contract."""

    code = "INTERNAL"


class UnknownTransaction(ContractError):
    """The chaincode has no such transaction (an SDK newer than the deployed contract)."""

    code = "UNKNOWN_TRANSACTION"


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


_BY_CODE: dict[str, type[ContractError]] = {
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
        UnknownTransaction,
    )
}

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
