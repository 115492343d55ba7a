"""fabgateway: a Python client of the Hyperledger Fabric Gateway, shaped like fabric-gateway.

What it owns: the client side of a peer's Gateway gRPC service (Evaluate, Endorse, Submit,
CommitStatus, ChaincodeEvents), of its Deliver service (block events) and of its Endorser
service (ProcessProposal, for endorsement on peers the caller names): building and signing
proposals, transactions and requests exactly as a Fabric peer expects them, unpacking the
Gateway's errors, and resuming event listeners from checkpoints.

What it must not do: know any chaincode or business domain; open, own or close gRPC channels
on its own (the caller passes one to :func:`connect`); import anything from the chaincode
side; log payloads (they carry secrets).

Blocks: :mod:`fabgateway.blocks` decodes full blocks (and the private data delivered with them)
into typed records; :mod:`fabgateway.block_chaincode_events` follows the chaincode events of
several chaincodes over one block stream (``network.block_chaincode_events()``);
:mod:`fabgateway.ledger_order` finds the first valid writer of a value and checks private data
against the committed hashes; :mod:`fabgateway.validation_parameters` parses key-level
endorsement policies; :mod:`fabgateway.qscc` queries the ledger through the Gateway;
:mod:`fabgateway.endorsers` endorses on peers the caller names (their ``Endorser`` service)
and assembles the transaction that the Gateway then submits.

Shape: ``connect(channel, identity, signer) -> Gateway``; ``gateway.get_network(name) ->
Network``; ``network.get_contract(chaincode) -> Contract``. ``contract.submit_transaction()``
is ``new_proposal() → endorse() → submit() → get_status()``, each step public, each message
signable off-line (``bytes()``, ``digest()``, ``gateway.new_signed_*``). Async first, on
``grpc.aio``; :mod:`fabgateway.sync` is a blocking facade for scripts, made from these
classes by :mod:`fabgateway.blocking` (twins by construction, on one loop thread).

Errors::

    GatewayError                     root: everything this package raises on purpose
    ├── CallError                    a gRPC call failed: code, status_message, details
    │   │                            (list of ErrorDetail(address, msp_id, message)),
    │   │                            chaincode_status, chaincode_message,
    │   │                            is_duplicate_transaction
    │   ├── TransactionError         ... for one transaction: + transaction_id
    │   │   ├── EvaluateError
    │   │   │   └── NotInLedgerError no such transaction or block (qscc): function, argument
    │   │   ├── EndorseError
    │   │   ├── SubmitError
    │   │   └── CommitStatusError
    │   ├── ChaincodeEventsError
    │   └── BlockEventsError         (+ deliver_status)
    ├── CommitError                  committed but invalid: transaction_id, code, code_name
    ├── SigningError                 no signer, or the signer failed
    ├── MalformedMessageError        bytes that do not parse as the expected message (ValueError)
    └── CheckpointError              checkpoint file unreadable or unwritable (OSError)
"""

from fabgateway import hashing
from fabgateway.block_chaincode_events import (
    BlockChaincodeEventStream,
    ChaincodeNames,
    chaincode_events_in_block,
)
from fabgateway.blocks import (
    Block,
    BlockTransaction,
    CollectionRWSet,
    HashedMetadataWrite,
    HashedWrite,
    NamespaceRWSet,
    PrivateCollectionData,
    PrivateWrite,
    TxPosition,
    decode_block,
    decode_block_and_private_data,
    decoded_blocks,
)
from fabgateway.checkpoint import Checkpoint, Checkpointer, FileCheckpointer, InMemoryCheckpointer
from fabgateway.contract import Contract
from fabgateway.endorsers import Endorser, endorse_on_peers, evaluate_on_peer
from fabgateway.errors import (
    BlockEventsError,
    CallError,
    ChaincodeEventsError,
    CheckpointError,
    CommitError,
    CommitStatusError,
    EndorseError,
    ErrorDetail,
    EvaluateError,
    GatewayError,
    MalformedMessageError,
    NotInLedgerError,
    SigningError,
    SubmitError,
    TransactionError,
)
from fabgateway.events import (
    BlockEventsRequest,
    BlockEventStream,
    ChaincodeEvent,
    ChaincodeEventsRequest,
    ChaincodeEventStream,
)
from fabgateway.gateway import Gateway, connect, tls_channel
from fabgateway.hashing import Hash, sha256
from fabgateway.identity import (
    Identity,
    Signer,
    ecdsa_signer,
    ed25519_signer,
    identity_from_pem_file,
    load_msp_dir,
    private_key_signer,
    signer_from_pem_file,
)
from fabgateway.ledger_order import (
    PrivateDataMismatch,
    PrivateDataProblem,
    first_valid_writer,
    first_valid_writer_async,
    first_valid_writer_of_hash_async,
    private_data_mismatches,
    purged_keys,
    valid_writer_in,
    valid_writer_of_hash,
)
from fabgateway.network import Network
from fabgateway.proposal import Argument, Proposal, transaction_id_for
from fabgateway.qscc import ChainInfo, LedgerQueries, ProcessedTransaction
from fabgateway.transaction import Commit, Status, SubmittedTransaction, Transaction
from fabgateway.validation_parameters import (
    MalformedValidationParameter,
    ValidationParameter,
    malformed_validation_parameters,
    parse_validation_parameter,
    validation_parameter_matches,
)

__all__ = [
    "Argument",
    "Block",
    "BlockChaincodeEventStream",
    "BlockEventStream",
    "BlockEventsError",
    "BlockEventsRequest",
    "BlockTransaction",
    "CallError",
    "ChainInfo",
    "ChaincodeEvent",
    "ChaincodeEventStream",
    "ChaincodeEventsError",
    "ChaincodeEventsRequest",
    "ChaincodeNames",
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "CollectionRWSet",
    "Commit",
    "CommitError",
    "CommitStatusError",
    "Contract",
    "EndorseError",
    "Endorser",
    "ErrorDetail",
    "EvaluateError",
    "FileCheckpointer",
    "Gateway",
    "GatewayError",
    "Hash",
    "HashedMetadataWrite",
    "HashedWrite",
    "Identity",
    "InMemoryCheckpointer",
    "LedgerQueries",
    "MalformedMessageError",
    "MalformedValidationParameter",
    "NamespaceRWSet",
    "Network",
    "NotInLedgerError",
    "PrivateCollectionData",
    "PrivateDataMismatch",
    "PrivateDataProblem",
    "PrivateWrite",
    "ProcessedTransaction",
    "Proposal",
    "Signer",
    "SigningError",
    "Status",
    "SubmitError",
    "SubmittedTransaction",
    "Transaction",
    "TransactionError",
    "TxPosition",
    "ValidationParameter",
    "chaincode_events_in_block",
    "connect",
    "decode_block",
    "decode_block_and_private_data",
    "decoded_blocks",
    "ecdsa_signer",
    "ed25519_signer",
    "endorse_on_peers",
    "evaluate_on_peer",
    "first_valid_writer",
    "first_valid_writer_async",
    "first_valid_writer_of_hash_async",
    "hashing",
    "identity_from_pem_file",
    "load_msp_dir",
    "malformed_validation_parameters",
    "parse_validation_parameter",
    "private_data_mismatches",
    "private_key_signer",
    "purged_keys",
    "sha256",
    "signer_from_pem_file",
    "tls_channel",
    "transaction_id_for",
    "valid_writer_in",
    "valid_writer_of_hash",
    "validation_parameter_matches",
]
