"""fabcontract: the contract API on top of ``fabshim``, in the style of fabric-contract-api.

Owns: the ``Contract`` base class and its hooks, the ``@transaction`` decorator (submit or
evaluate-only), the transaction ``Context``, decoding typed parameters from string
arguments and encoding results as JSON (``fabcontract.serialization``), routing
``contract:function`` requests (``ContractChaincode``), and the
``org.hyperledger.fabric:GetMetadata`` system transaction.

Must not: know anything of a particular contract's domain, talk to the peer other than
through the ``fabshim`` stub, log arguments, results or transient data (only the
``[channel-txid]`` prefix, the function name and exception types), or put a float where
money goes (floats are refused in arguments and results).

Errors (all in ``fabcontract.errors``)::

    ContractAPIError
    ├── ContractDefinitionError   a contract is malformed; raised when it is registered (TypeError)
    └── RoutingError              a request cannot be routed or decoded; message starts with a code
        ├── UnknownContract           "UNKNOWN_CONTRACT: ..."
        ├── UnknownTransaction        "UNKNOWN_TRANSACTION: ..."
        └── ArgumentError             "INVALID_ARGUMENT: ..." names the parameter (ValueError)

Every exception raised in a transaction (these or the contract's own) becomes an error
response whose message is ``str(exc)``.
"""

from .chaincode import SYSTEM_CONTRACT_NAME, ContractChaincode, TransactionSpec
from .contract import Context, Contract, transaction
from .errors import (
    ArgumentError,
    ContractAPIError,
    ContractDefinitionError,
    RoutingError,
    UnknownContract,
    UnknownTransaction,
)
from .serialization import encode_result

__all__ = [
    "SYSTEM_CONTRACT_NAME",
    "ArgumentError",
    "Context",
    "Contract",
    "ContractAPIError",
    "ContractChaincode",
    "ContractDefinitionError",
    "RoutingError",
    "TransactionSpec",
    "UnknownContract",
    "UnknownTransaction",
    "encode_result",
    "transaction",
]
