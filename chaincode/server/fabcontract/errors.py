"""The contract API's exceptions: one root, :class:`ContractError`.

::

    ContractError
    ├── ContractDefinitionError   a contract is malformed; raised when it is registered (TypeError)
    └── TransactionError          a request cannot be routed or decoded; message starts with a code
        ├── UnknownContractError      "UNKNOWN_CONTRACT: ..."
        ├── UnknownTransactionError   "UNKNOWN_TRANSACTION: ..."
        └── ArgumentError             "INVALID_ARGUMENT: ..." names the parameter (ValueError)

A ``TransactionError`` (like any exception a transaction raises) becomes an error response
whose message is ``str(exc)``.
"""

from __future__ import annotations


class ContractError(Exception):
    """Root of every exception the contract API raises on purpose."""


class ContractDefinitionError(ContractError, TypeError):
    """A contract or transaction is malformed (found when the chaincode is built)."""


class TransactionError(ContractError):
    """A request the contract API refuses; ``str(exc)`` starts with a stable code."""

    code = "TRANSACTION_ERROR"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.code}: {detail}")
        self.detail = detail


class UnknownContractError(TransactionError):
    """The request names a contract this chaincode does not have."""

    code = "UNKNOWN_CONTRACT"


class UnknownTransactionError(TransactionError):
    """The request names a function the contract does not have."""

    code = "UNKNOWN_TRANSACTION"


class ArgumentError(TransactionError, ValueError):
    """Wrong number of arguments, or an argument that does not decode to its parameter type."""

    code = "INVALID_ARGUMENT"
