"""fabshim: a Python chaincode shim for Hyperledger Fabric (chaincode as a service).

Owns the chaincode side of Fabric's shim protocol: the gRPC server the peer dials
(``Chaincode.Connect``), the per-stream handler and its state machine, the transaction stub
(state, private data, queries, key-level endorsement, events, chaincode-to-chaincode
calls, write batching and multi-key reads when the peer offers them), the client identity,
key-level policies, and an in-memory stub for unit tests (``fabshim.testing``).

Must not: know anything of a particular chaincode's domain (no import from contract code),
log payloads or transient data (logs carry a ``[channel-txid]`` prefix and message types
only), turn a peer's ERROR into data, or read the environment outside ``fabshim.config``.

Errors (all in ``fabshim.errors``)::

    ShimError
    ├── ConfigError                 server configuration missing or invalid (names the source)
    ├── InvalidArgumentError        a bad key, collection, composite-key part, role ... (ValueError)
    ├── ProtocolError               the peer broke the shim protocol
    ├── StreamClosedError           the stream to the peer ended while a request waited
    ├── TransactionClosedError      the stub was used after its transaction finished
    ├── PeerError                   the peer answered a request with ERROR
    ├── InvokeChaincodeError        a called chaincode answered with an error status
    ├── IdentityError               the creator is not an X.509 identity we can read
    │   └── AttributeAssertionError an attribute is missing or has another value (PermissionError)
    ├── MVCCReadConflictError       (fabshim.testing only) a read changed before commit
    └── EndorsementPolicyFailureError (fabshim.testing only) a write breaks a key-level policy

Run a chaincode: ``python -m fabshim serve MODULE:ATTR`` (see ``docs/shim.md``).
"""

from .config import ServerConfig, TLSMaterial
from .errors import (
    AttributeAssertionError,
    ConfigError,
    EndorsementPolicyFailureError,
    IdentityError,
    InvalidArgumentError,
    InvokeChaincodeError,
    MVCCReadConflictError,
    PeerError,
    ProtocolError,
    ShimError,
    StreamClosedError,
    TransactionClosedError,
)
from .handler import Handler, HandlerState, PeerFeatures
from .identity import ClientIdentity
from .interfaces import Chaincode, Stub
from .iterators import (
    KV,
    HistoryQueryIterator,
    KeyModification,
    QueryIterator,
    QueryResponseMetadata,
    StateQueryIterator,
)
from .keys import create_composite_key, split_composite_key
from .response import ERROR, ERROR_THRESHOLD, OK, Response, error, success
from .server import ChaincodeServer
from .statebased import (
    KeyEndorsementPolicy,
    PolicyTree,
    RoleType,
    SignaturePolicy,
    all_and_one_of_policy,
    all_of_policy,
    n_out_of_policy,
    parse_n_out_of,
    parse_policy,
)
from .stub import ChaincodeStub

__all__ = [
    "ERROR",
    "ERROR_THRESHOLD",
    "KV",
    "OK",
    "AttributeAssertionError",
    "Chaincode",
    "ChaincodeServer",
    "ChaincodeStub",
    "ClientIdentity",
    "ConfigError",
    "EndorsementPolicyFailureError",
    "Handler",
    "HandlerState",
    "HistoryQueryIterator",
    "IdentityError",
    "InvalidArgumentError",
    "InvokeChaincodeError",
    "KeyEndorsementPolicy",
    "KeyModification",
    "MVCCReadConflictError",
    "PeerError",
    "PeerFeatures",
    "PolicyTree",
    "ProtocolError",
    "QueryIterator",
    "QueryResponseMetadata",
    "Response",
    "RoleType",
    "ServerConfig",
    "ShimError",
    "SignaturePolicy",
    "StateQueryIterator",
    "StreamClosedError",
    "Stub",
    "TLSMaterial",
    "TransactionClosedError",
    "all_and_one_of_policy",
    "all_of_policy",
    "create_composite_key",
    "error",
    "n_out_of_policy",
    "parse_n_out_of",
    "parse_policy",
    "split_composite_key",
    "success",
]
