"""Build the ``SignedProposal`` a peer would pass with a transaction (unsigned)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from .. import _protos as pb


def build_signed_proposal(
    *,
    channel_id: str,
    tx_id: str,
    creator: bytes,
    args: Sequence[bytes],
    transient: Mapping[str, bytes] | None = None,
    timestamp: datetime,
    nonce: bytes | None = None,
    chaincode_name: str = "chaincode",
    epoch: int = 0,
) -> pb.Message:
    """A ``peer.SignedProposal`` with the fields the shim reads; the signature is empty.

    Without ``nonce``, one is derived from ``tx_id`` so the proposal is deterministic.
    """
    if nonce is None:
        nonce = hashlib.sha256(b"nonce:" + tx_id.encode("utf-8")).digest()[:24]
    stamp = Timestamp()
    stamp.FromDatetime(timestamp)
    channel_header = pb.common.ChannelHeader(
        type=pb.common.ENDORSER_TRANSACTION,
        channel_id=channel_id,
        tx_id=tx_id,
        timestamp=stamp,
        epoch=epoch,
    )
    signature_header = pb.common.SignatureHeader(creator=creator, nonce=nonce)
    header = pb.common.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=signature_header.SerializeToString(),
    )
    invocation = pb.chaincode.ChaincodeInvocationSpec(
        chaincode_spec=pb.chaincode.ChaincodeSpec(
            type=pb.chaincode.ChaincodeSpec.GOLANG,
            chaincode_id=pb.chaincode.ChaincodeID(name=chaincode_name),
            input=pb.chaincode.ChaincodeInput(args=list(args)),
        )
    )
    payload = pb.proposal.ChaincodeProposalPayload(
        input=invocation.SerializeToString(), TransientMap=dict(transient or {})
    )
    proposal = pb.proposal.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
    return pb.proposal.SignedProposal(proposal_bytes=proposal.SerializeToString(), signature=b"")
