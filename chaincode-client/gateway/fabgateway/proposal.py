"""Transaction proposals: how they are built, signed, evaluated and endorsed.

The proposal is exactly what a Fabric peer's endorser expects::

    Proposal
      header = Header
        channel_header   = ChannelHeader{type ENDORSER_TRANSACTION, channel_id, tx_id,
                             timestamp, epoch 0,
                             extension = ChaincodeHeaderExtension{chaincode_id}}
        signature_header = SignatureHeader{creator, nonce}
      payload = ChaincodeProposalPayload{input = ChaincodeInvocationSpec{chaincode_spec{
                    chaincode_id{name}, input{args = [transaction name, *arguments]}}},
                TransientMap}

and ``tx_id = hex(SHA-256(nonce || creator))``.
"""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import timestamp_pb2

from fabgateway._client import GatewayClient, SigningIdentity
from fabgateway._protos import chaincode_pb2, common_pb2, gateway_pb2, proposal_pb2
from fabgateway.errors import MalformedMessageError
from fabgateway.transaction import Transaction

__all__ = ["Argument", "Proposal", "transaction_id_for"]

Argument = str | bytes
"""A transaction argument: ``str`` is sent UTF-8 encoded, ``bytes`` as is."""

NONCE_LENGTH = 24


def transaction_id_for(nonce: bytes, creator: bytes) -> str:
    """The Fabric transaction id: hex SHA-256 of the nonce followed by the serialized creator."""
    return hashlib.sha256(nonce + creator).hexdigest()


def as_bytes(value: Argument) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"arguments must be str or bytes, not {type(value).__name__}")


class Proposal:
    """A transaction proposal, signed when it is first evaluated or endorsed (or off-line)."""

    def __init__(
        self,
        client: GatewayClient,
        signing_id: SigningIdentity,
        channel_name: str,
        proposed: Any,
    ) -> None:
        self._client = client
        self._signing_id = signing_id
        self._channel_name = channel_name
        self._proposed = proposed

    @property
    def transaction_id(self) -> str:
        return str(self._proposed.transaction_id)

    @property
    def channel_name(self) -> str:
        return self._channel_name

    @property
    def endorsing_organizations(self) -> list[str]:
        return [str(org) for org in self._proposed.endorsing_organizations]

    def bytes(self) -> builtins.bytes:
        """The serialized ``gateway.ProposedTransaction`` (for off-line signing)."""
        return builtins.bytes(self._proposed.SerializeToString())

    def digest(self) -> builtins.bytes:
        """The digest of the proposal bytes, to sign off-line."""
        return self._signing_id.hash(self._proposed.proposal.proposal_bytes)

    def _set_signature(self, signature: builtins.bytes) -> None:
        self._proposed.proposal.signature = signature

    def _sign(self) -> None:
        if not self._proposed.proposal.signature:
            self._set_signature(self._signing_id.sign(self.digest()))

    async def evaluate(self, *, timeout: float | None = None) -> builtins.bytes:  # noqa: ASYNC109 - a gRPC deadline
        """Run the transaction on one peer without ordering it; return its result.

        ``endorsing_organizations`` given to the proposal are the target organizations.
        Raises :class:`EvaluateError`.
        """
        self._sign()
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel_name,
            proposed_transaction=self._proposed.proposal,
            target_organizations=self._proposed.endorsing_organizations,
        )
        response = await self._client.evaluate(request, timeout)
        return builtins.bytes(response.result.payload)

    async def endorse(self, *, timeout: float | None = None) -> Transaction:  # noqa: ASYNC109 - a gRPC deadline
        """Collect endorsements through the Gateway; return the transaction to submit.

        Raises :class:`EndorseError`.
        """
        self._sign()
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel_name,
            proposed_transaction=self._proposed.proposal,
            endorsing_organizations=self._proposed.endorsing_organizations,
        )
        response = await self._client.endorse(request, timeout)
        prepared = gateway_pb2.PreparedTransaction(
            transaction_id=self.transaction_id, envelope=response.prepared_transaction
        )
        return Transaction(self._client, self._signing_id, prepared)


def build_proposal(
    client: GatewayClient,
    signing_id: SigningIdentity,
    channel_name: str,
    chaincode_name: str,
    transaction_name: str,
    *,
    arguments: Iterable[Argument] = (),
    transient_data: Mapping[str, Argument] | None = None,
    endorsing_organizations: Iterable[str] | None = None,
    nonce: bytes | None = None,
) -> Proposal:
    if nonce is None:
        nonce = os.urandom(NONCE_LENGTH)
    elif not isinstance(nonce, bytes) or not nonce:
        raise ValueError("nonce must be non-empty bytes")
    creator = signing_id.creator
    transaction_id = transaction_id_for(nonce, creator)

    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode_name)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.Value("ENDORSER_TRANSACTION"),
        channel_id=channel_name,
        tx_id=transaction_id,
        timestamp=timestamp,
        epoch=0,
        extension=proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_id
        ).SerializeToString(),
    )
    signature_header = common_pb2.SignatureHeader(creator=creator, nonce=nonce)
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=signature_header.SerializeToString(),
    )
    args = [as_bytes(transaction_name), *(as_bytes(a) for a in arguments)]
    invocation = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_id, input=chaincode_pb2.ChaincodeInput(args=args)
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=invocation.SerializeToString(),
        TransientMap={k: as_bytes(v) for k, v in (transient_data or {}).items()},
    )
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
    proposed = gateway_pb2.ProposedTransaction(
        transaction_id=transaction_id,
        proposal=proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString()),
        endorsing_organizations=list(endorsing_organizations or ()),
    )
    return Proposal(client, signing_id, channel_name, proposed)


def parse_proposal(client: GatewayClient, signing_id: SigningIdentity, data: bytes) -> Proposal:
    proposed = gateway_pb2.ProposedTransaction()
    try:
        proposed.ParseFromString(data)
        proposal = proposal_pb2.Proposal()
        proposal.ParseFromString(proposed.proposal.proposal_bytes)
        header = common_pb2.Header()
        header.ParseFromString(proposal.header)
        channel_header = common_pb2.ChannelHeader()
        channel_header.ParseFromString(header.channel_header)
    except Exception as error:
        raise MalformedMessageError(f"not a ProposedTransaction: {error}") from error
    if not proposed.transaction_id or not channel_header.channel_id:
        raise MalformedMessageError("proposed transaction has no transaction id or channel")
    return Proposal(client, signing_id, str(channel_header.channel_id), proposed)
