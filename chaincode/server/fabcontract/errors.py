"""The contract API's exceptions: one root, :class:`ContractAPIError`.

::

    ContractAPIError
    ├── ContractDefinitionError   a contract is malformed; raised when it is registered (TypeError)
    └── RoutingError              a request cannot be routed or decoded; message starts with a code
        ├── UnknownContract           "UNKNOWN_CONTRACT: ..."
        ├── UnknownTransaction        "UNKNOWN_TRANSACTION: ..."
        └── ArgumentError             "INVALID_ARGUMENT: ..." names the parameter (ValueError)

A ``RoutingError`` (like any exception a transaction raises) becomes an error response
whose message is ``str(exc)``. No name here is also a client-side name with another
meaning (``fabgateway.TransactionError`` is a gRPC failure, hence ``RoutingError``);
``UnknownTransaction`` carries the code ``UNKNOWN_TRANSACTION`` wherever the name is used.
"""

from __future__ import annotations


class ContractAPIError(Exception):
    """Root of every exception the contract API raises on purpose."""


class ContractDefinitionError(ContractAPIError, TypeError):
    """A contract or transaction is malformed (found when the chaincode is built)."""


class RoutingError(ContractAPIError):
    """A request the contract API refuses; ``str(exc)`` starts with a stable code."""

    code = "ROUTING_ERROR"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.code}: {detail}")
        self.detail = detail


class UnknownContract(RoutingError):
    """The request names a contract this chaincode does not have."""

    code = "UNKNOWN_CONTRACT"


class UnknownTransaction(RoutingError):
    """The request names a function the contract does not have."""

    code = "UNKNOWN_TRANSACTION"


class ArgumentError(RoutingError, ValueError):
    """Wrong number of arguments, or an argument that does not decode to its parameter type."""

    code = "INVALID_ARGUMENT"
