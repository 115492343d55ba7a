"""Handles on the generated protobuf modules, typed ``Any`` in one place.

``hyperledger-fabric-protos`` ships generated modules without type information, so mypy
cannot see their classes. This module is the one place where they enter the shim as
``Any``; the rest of the shim converts their fields to typed Python values at its edges.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from fabric_protos.common import common_pb2 as _common_pb2
from fabric_protos.common import policies_pb2 as _policies_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2 as _kv_pb2
from fabric_protos.msp import identities_pb2 as _identities_pb2
from fabric_protos.msp import msp_principal_pb2 as _msp_principal_pb2
from fabric_protos.peer import chaincode_event_pb2 as _event_pb2
from fabric_protos.peer import chaincode_pb2 as _chaincode_pb2
from fabric_protos.peer import chaincode_shim_pb2 as _shim_pb2
from fabric_protos.peer import chaincode_shim_pb2_grpc as _shim_grpc
from fabric_protos.peer import proposal_pb2 as _proposal_pb2
from fabric_protos.peer import proposal_response_pb2 as _proposal_response_pb2
from google.protobuf.message import DecodeError as DecodeError

Message: TypeAlias = Any
"""A generated protobuf message (no static type information is available)."""

common: Any = _common_pb2
policies: Any = _policies_pb2
kv: Any = _kv_pb2
identities: Any = _identities_pb2
msp_principal: Any = _msp_principal_pb2
event: Any = _event_pb2
chaincode: Any = _chaincode_pb2
shim: Any = _shim_pb2
shim_grpc: Any = _shim_grpc
proposal: Any = _proposal_pb2
proposal_response: Any = _proposal_response_pb2

CCM: Any = shim.ChaincodeMessage
"""``ChaincodeMessage``: its ``Type`` values are attributes (``CCM.GET_STATE`` ...)."""


def type_name(msg_type: int) -> str:
    """The name of a ``ChaincodeMessage.Type`` value, for logs and errors."""
    try:
        return str(CCM.Type.Name(msg_type))
    except ValueError:
        return f"UNKNOWN_TYPE_{msg_type}"
