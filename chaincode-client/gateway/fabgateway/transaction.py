"""An endorsed transaction, its submission and its commit status.

``Transaction`` (endorsed, ready to submit) → ``submit()`` → ``SubmittedTransaction`` (a
``Commit`` that also holds the result) → ``get_status()`` → ``Status``. Each object offers
``bytes()`` and ``digest()`` for off-line signing.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from fabgateway._client import GatewayClient, SigningIdentity
from fabgateway._protos import (
    common_pb2,
    gateway_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from fabgateway.errors import CommitError, MalformedMessageError, validation_code_name

__all__ = ["Commit", "Status", "SubmittedTransaction", "Transaction"]

_VALID = int(transaction_pb2.TxValidationCode.Value("VALID"))


@dataclass(frozen=True)
class Status:
    """The commit status of a transaction, as the peer's ledger recorded it."""

    code: int
    """The ``peer.TxValidationCode`` (0 is VALID)."""
    code_name: str
    block_number: int
    transaction_id: str

    @property
    def successful(self) -> bool:
        """True when the transaction committed as VALID."""
        return self.code == _VALID

    def raise_for_status(self) -> Status:
        """Raise :class:`CommitError` unless the transaction is VALID; return self otherwise."""
        if not self.successful:
            raise CommitError(self.transaction_id, self.code, self.code_name)
        return self


class Commit:
    """A request for the commit status of one transaction (a signed CommitStatusRequest)."""

    def __init__(
        self,
        client: GatewayClient,
        signing_id: SigningIdentity,
        transaction_id: str,
        signed_request: Any,
    ) -> None:
        self._client = client
        self._signing_id = signing_id
        self._transaction_id = transaction_id
        self._signed_request = signed_request

    @property
    def transaction_id(self) -> str:
        return self._transaction_id

    def bytes(self) -> builtins.bytes:
        """The serialized ``gateway.SignedCommitStatusRequest`` (for off-line signing)."""
        return builtins.bytes(self._signed_request.SerializeToString())

    def digest(self) -> builtins.bytes:
        """The digest to sign off-line."""
        return self._signing_id.hash(self._signed_request.request)

    def _set_signature(self, signature: builtins.bytes) -> None:
        self._signed_request.signature = signature

    async def get_status(self, *, timeout: float | None = None) -> Status:  # noqa: ASYNC109 - a gRPC deadline
        """Wait for the transaction to commit and return its status.

        Raises :class:`CommitStatusError` if the call fails (including its deadline: the
        transaction may still commit later).
        """
        if not self._signed_request.signature:
            self._set_signature(self._signing_id.sign(self.digest()))
        response = await self._client.commit_status(self._signed_request, timeout)
        code = int(response.result)
        return Status(
            code=code,
            code_name=validation_code_name(code),
            block_number=int(response.block_number),
            transaction_id=self._transaction_id,
        )


class SubmittedTransaction(Commit):
    """A transaction accepted for ordering: its endorsed result and its pending commit."""

    def __init__(
        self,
        client: GatewayClient,
        signing_id: SigningIdentity,
        transaction_id: str,
        signed_request: Any,
        result: builtins.bytes,
    ) -> None:
        super().__init__(client, signing_id, transaction_id, signed_request)
        self._result = result

    @property
    def result(self) -> builtins.bytes:
        """The chaincode's response payload, as endorsed."""
        return self._result


class Transaction:
    """An endorsed transaction, ready to be signed and submitted for ordering."""

    def __init__(self, client: GatewayClient, signing_id: SigningIdentity, prepared: Any) -> None:
        self._client = client
        self._signing_id = signing_id
        self._prepared = prepared
        self._channel_name, self._result = _parse_envelope(prepared.envelope)

    @property
    def transaction_id(self) -> str:
        return str(self._prepared.transaction_id)

    @property
    def channel_name(self) -> str:
        return self._channel_name

    @property
    def result(self) -> builtins.bytes:
        """The chaincode's response payload, from the endorsed proposal response."""
        return self._result

    def bytes(self) -> builtins.bytes:
        """The serialized ``gateway.PreparedTransaction`` (for off-line signing)."""
        return builtins.bytes(self._prepared.SerializeToString())

    def digest(self) -> builtins.bytes:
        """The digest of the envelope payload, to sign off-line."""
        return self._signing_id.hash(self._prepared.envelope.payload)

    def _set_signature(self, signature: builtins.bytes) -> None:
        self._prepared.envelope.signature = signature

    def new_commit(self) -> Commit:
        """The commit-status request for this transaction, unsigned."""
        return new_commit(self._client, self._signing_id, self._channel_name, self.transaction_id)

    async def submit(self, *, timeout: float | None = None) -> SubmittedTransaction:  # noqa: ASYNC109 - a gRPC deadline
        """Send the signed transaction to the orderers through the Gateway.

        Raises :class:`SubmitError`. The returned object waits for the commit with
        ``get_status()``; its commit-status request is signed then, or off-line before.
        """
        if not self._prepared.envelope.signature:
            self._set_signature(self._signing_id.sign(self.digest()))
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel_name,
            prepared_transaction=self._prepared.envelope,
        )
        await self._client.submit(request, timeout)
        commit = self.new_commit()
        return SubmittedTransaction(
            self._client,
            self._signing_id,
            self.transaction_id,
            commit._signed_request,
            self._result,
        )


def new_commit(
    client: GatewayClient, signing_id: SigningIdentity, channel_name: str, transaction_id: str
) -> Commit:
    request = gateway_pb2.CommitStatusRequest(
        transaction_id=transaction_id, channel_id=channel_name, identity=signing_id.creator
    )
    signed = gateway_pb2.SignedCommitStatusRequest(request=request.SerializeToString())
    return Commit(client, signing_id, transaction_id, signed)


def parse_commit(client: GatewayClient, signing_id: SigningIdentity, data: bytes) -> Commit:
    signed = gateway_pb2.SignedCommitStatusRequest()
    request = gateway_pb2.CommitStatusRequest()
    try:
        signed.ParseFromString(data)
        request.ParseFromString(signed.request)
    except Exception as error:
        raise MalformedMessageError(f"not a SignedCommitStatusRequest: {error}") from error
    if not request.transaction_id:
        raise MalformedMessageError("commit status request has no transaction id")
    return Commit(client, signing_id, str(request.transaction_id), signed)


def parse_transaction(
    client: GatewayClient, signing_id: SigningIdentity, data: bytes
) -> Transaction:
    prepared = gateway_pb2.PreparedTransaction()
    try:
        prepared.ParseFromString(data)
    except Exception as error:
        raise MalformedMessageError(f"not a PreparedTransaction: {error}") from error
    return Transaction(client, signing_id, prepared)


def _parse_envelope(envelope: Any) -> tuple[str, bytes]:
    """The channel name and the chaincode result of a prepared transaction envelope."""
    try:
        payload = common_pb2.Payload()
        payload.ParseFromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader()
        channel_header.ParseFromString(payload.header.channel_header)
        transaction = transaction_pb2.Transaction()
        transaction.ParseFromString(payload.data)
    except Exception as error:
        raise MalformedMessageError(f"prepared transaction does not parse: {error}") from error
    problems: list[str] = []
    for action in transaction.actions:
        try:
            action_payload = transaction_pb2.ChaincodeActionPayload()
            action_payload.ParseFromString(action.payload)
            response_payload = proposal_response_pb2.ProposalResponsePayload()
            response_payload.ParseFromString(action_payload.action.proposal_response_payload)
            chaincode_action = proposal_pb2.ChaincodeAction()
            chaincode_action.ParseFromString(response_payload.extension)
        except Exception as error:
            problems.append(str(error))
            continue
        return str(channel_header.channel_id), builtins.bytes(chaincode_action.response.payload)
    raise MalformedMessageError(
        f"prepared transaction has no readable proposal response: {problems or 'no actions'}"
    )
