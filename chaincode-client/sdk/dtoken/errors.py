"""The bank SDK's exceptions: one root, :class:`DTokenError`.

The contract's refusals come back as typed exceptions: a chaincode error message starts with a
stable code (``INSUFFICIENT_FUNDS: ...``), which :func:`contract_error` maps to the class below
that carries the same code. :class:`DTokenError`, :class:`ContractError` and the classes under
it (but :class:`UnknownContractError`) are the wire package's (:mod:`dtoken_wire.errors`), the
very classes the contract raises: the client side never imports the chaincode packages, and
there is no copy to drift.

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
    │   │   ├── WrongEndorser                    WRONG_ENDORSER
    │   │   └── BankSuspended                    SUSPENDED
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
    ├── ExposureCapExceeded                an accept would take the payer bank over this
    │                                      bank's exposure cap (nothing sent; ``force=True``)
    ├── CommitFailed                       committed invalid for a reason retrying cannot cure
    └── NetworkFault                       the peer could not be reached or did not answer
        ├── OutcomeUnknown                 a write may or may not have been applied: retry it
        │                                  with the same reference, it cannot apply twice
        └── Contended                      every attempt this call sent lost a conflict; nothing
                                           was applied: call again with the same reference
"""

from __future__ import annotations

from dtoken_wire.errors import (
    CODES,
    AccountClosed,
    AccountFrozen,
    AlreadyExists,
    AlreadyInitialized,
    BankSuspended,
    ContractError,
    CorruptState,
    CurrencyMismatch,
    DTokenError,
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
    "BankSuspended",
    "CommitFailed",
    "Contended",
    "ContractError",
    "CorruptState",
    "CurrencyMismatch",
    "DTokenError",
    "DuplicateReference",
    "Expired",
    "ExposureCapExceeded",
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


class UsageError(DTokenError, ValueError):
    """The caller's input is wrong; nothing was sent."""


class MoneyFormatError(UsageError):
    """An amount that does not parse (see :meth:`dtoken.money.Money.parse`)."""


class ProfileError(UsageError):
    """The connection profile (or a file it names) is missing or malformed."""


class UnknownContractError(ContractError):
    """The chaincode failed with a message that carries no known code."""


class ExposureCapExceeded(DTokenError):
    """Accepting would let the payer bank owe this bank more than the cap this bank set on it
    (:meth:`dtoken.Bank.accept` checks before sending; ``force=True`` accepts anyway)."""

    def __init__(self, transfer_id: str, payer_bank: str, amount: object,
                 headroom: object) -> None:
        super().__init__(f"accepting transfer {transfer_id[:8]}… ({amount}) would exceed the "
                         f"exposure cap on {payer_bank} (headroom {headroom})")
        self.transfer_id = transfer_id
        self.payer_bank = payer_bank
        self.amount = amount
        self.headroom = headroom


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


def contract_error(message: str, *, transaction_id: str | None = None) -> ContractError:
    """The typed exception for a chaincode error message (``"CODE: detail"``).

    The first known ``CODE: `` in the text counts (the peer may wrap the message); a message
    without one becomes :class:`UnknownContractError` with the whole text as detail.
    """
    refusal = refusal_from_message(message, transaction_id=transaction_id)
    if refusal is None:
        return UnknownContractError(message, transaction_id=transaction_id)
    return refusal


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
