"""The Fabric protobuf modules this package uses, typed as ``Any``.

hyperledger-fabric-protos ships ``py.typed`` but no stubs, so mypy sees generated modules
without attributes; going through this module keeps ``mypy --strict`` meaningful elsewhere.
"""

from __future__ import annotations

import importlib
from typing import Any


def _load(name: str) -> Any:
    return importlib.import_module(f"fabric_protos.{name}")


ab_pb2: Any = _load("orderer.ab_pb2")
chaincode_event_pb2: Any = _load("peer.chaincode_event_pb2")
chaincode_pb2: Any = _load("peer.chaincode_pb2")
common_pb2: Any = _load("common.common_pb2")
events_pb2: Any = _load("peer.events_pb2")
events_pb2_grpc: Any = _load("peer.events_pb2_grpc")
gateway_pb2: Any = _load("gateway.gateway_pb2")
gateway_pb2_grpc: Any = _load("gateway.gateway_pb2_grpc")
identities_pb2: Any = _load("msp.identities_pb2")
kv_rwset_pb2: Any = _load("ledger.rwset.kvrwset.kv_rwset_pb2")
ledger_pb2: Any = _load("common.ledger_pb2")
msp_principal_pb2: Any = _load("msp.msp_principal_pb2")
peer_pb2_grpc: Any = _load("peer.peer_pb2_grpc")
policies_pb2: Any = _load("common.policies_pb2")
proposal_pb2: Any = _load("peer.proposal_pb2")
proposal_response_pb2: Any = _load("peer.proposal_response_pb2")
rwset_pb2: Any = _load("ledger.rwset.rwset_pb2")
transaction_pb2: Any = _load("peer.transaction_pb2")
