"""Endorsement on peers the caller names, through their ``Endorser`` service.

The Gateway's ``Endorse`` picks the endorsing peers from its own view of the channel (gossip
discovery); some callers know better which peers must endorse and cannot wait for gossip to
converge: a channel administrator approving a chaincode definition on its own peer, or
committing one with a peer of each approving organization. :func:`endorse_on_peers` sends a
signed proposal to each named peer's ``protos.Endorser/ProcessProposal`` concurrently, checks
that every answer succeeded and that all endorse the same result, and assembles the unsigned
transaction envelope exactly as Fabric's ``protoutil.CreateSignedTx`` does::

    Envelope{payload = Payload{header = the proposal's Header,
                               data = Transaction{actions = [TransactionAction{
                                   header  = the proposal's SignatureHeader,
                                   payload = ChaincodeActionPayload{
                                       chaincode_proposal_payload = the proposal payload
                                                                    without its transient map,
                                       action = ChaincodeEndorsedAction{
                                           proposal_response_payload, endorsements}}}]}}}

The result is an ordinary :class:`~fabgateway.transaction.Transaction` bound to the proposal's
Gateway: ``submit()`` sends it through that Gateway's ``Submit`` (which accepts any prepared
envelope) and ``get_status()`` waits for its commit there.

Must not: open or close gRPC channels (each :class:`Endorser` carries the caller's), choose
peers, retry, or know any chaincode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from fabgateway._client import effective_timeout
from fabgateway._protos import (
    common_pb2,
    gateway_pb2,
    peer_pb2_grpc,
    proposal_pb2,
    transaction_pb2,
)
from fabgateway.errors import EndorseError, ErrorDetail, EvaluateError
from fabgateway.proposal import Proposal
from fabgateway.transaction import Transaction

__all__ = ["Endorser", "endorse_on_peers", "evaluate_on_peer"]

_FAILED = "failed to endorse transaction, see attached details for more info"
_MISMATCH = "ProposalResponsePayloads do not match"


@dataclass(frozen=True)
class Endorser:
    """One peer to endorse on: the caller's gRPC channel to it, and how errors name it."""

    channel: grpc.aio.Channel
    address: str
    """The peer's ``host:port`` (only used to name it in errors)."""
    msp_id: str
    """The MSP id of the peer's organization (only used to name it in errors)."""


async def _process(endorser: Endorser, signed: Any, deadline: float | None) -> Any:
    stub = peer_pb2_grpc.EndorserStub(endorser.channel)
    return await stub.ProcessProposal(signed, timeout=deadline)


async def endorse_on_peers(
    proposal: Proposal,
    endorsers: Sequence[Endorser],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
) -> Transaction:
    """Endorse ``proposal`` on every peer of ``endorsers`` (concurrently); return the
    transaction to submit through the proposal's Gateway.

    The proposal is signed first if it is not yet. ``timeout`` is each call's deadline in
    seconds (default: the Gateway's endorse timeout). Raises :class:`EndorseError` (code
    ``ABORTED``, one :class:`ErrorDetail` per failing peer, ``chaincode response <status>,
    <message>`` for a refusal, as the Gateway reports it) when a peer fails or refuses, or
    when the peers' results differ (``ProposalResponsePayloads do not match``: a peer a block
    behind another, retry); :class:`ValueError` when ``endorsers`` is empty.
    """
    if not endorsers:
        raise ValueError("endorse_on_peers needs at least one endorser")
    proposal._sign()
    signed = proposal._proposed.proposal
    deadline = effective_timeout(timeout, proposal._client.timeouts.endorse)
    answers = await asyncio.gather(
        *(_process(e, signed, deadline) for e in endorsers), return_exceptions=True
    )
    failures: list[ErrorDetail] = []
    worst = grpc.StatusCode.ABORTED
    responses: list[Any] = []
    for endorser, answer in zip(endorsers, answers, strict=True):
        if isinstance(answer, grpc.aio.AioRpcError):
            failures.append(ErrorDetail(endorser.address, endorser.msp_id,
                                        f"{answer.code().name}: {answer.details() or ''}"))
            if answer.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                worst = answer.code()
            continue
        if isinstance(answer, BaseException):
            raise answer
        status = int(answer.response.status)
        if status < 200 or status >= 400:
            failures.append(ErrorDetail(endorser.address, endorser.msp_id,
                                        f"chaincode response {status}, {answer.response.message}"))
            continue
        responses.append((endorser, answer))
    transaction_id = proposal.transaction_id
    if failures:
        raise EndorseError(_FAILED, code=worst, transaction_id=transaction_id, details=failures)
    first = responses[0][1].payload
    if any(r.payload != first for _, r in responses[1:]):
        details = [ErrorDetail(e.address, e.msp_id,
                               "same result as the first peer" if r.payload == first
                               else "a different result from the first peer")
                   for e, r in responses]
        raise EndorseError(_MISMATCH, code=grpc.StatusCode.ABORTED, transaction_id=transaction_id,
                           details=details)
    if not any(r.HasField("endorsement") for _, r in responses):
        raise EndorseError(_FAILED, code=grpc.StatusCode.ABORTED, transaction_id=transaction_id,
                           details=[ErrorDetail(e.address, e.msp_id, "no endorsement in its answer")
                                    for e, _ in responses])
    envelope = _envelope(signed.proposal_bytes, [r for _, r in responses])
    prepared = gateway_pb2.PreparedTransaction(transaction_id=transaction_id, envelope=envelope)
    return Transaction(proposal._client, proposal._signing_id, prepared)


async def evaluate_on_peer(
    proposal: Proposal,
    endorser: Endorser,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
) -> bytes:
    """Send ``proposal`` to one peer's ``ProcessProposal`` and return the payload of its
    answer; nothing is submitted.

    For what an organization's admin asks of its own peer outside any transaction: a
    proposal on no channel (``Gateway.get_network("")``) to a system chaincode, such as
    ``cscc``'s ``JoinChain`` or ``_lifecycle``'s ``InstallChaincode``, which the Gateway
    service cannot carry (it serves one channel). The proposal is signed first if it is not
    yet. Raises :class:`EvaluateError` naming the peer: with the gRPC code when the call
    fails, with ``chaincode response <status>, <message>`` when the peer answers an error.
    """
    proposal._sign()
    deadline = effective_timeout(timeout, proposal._client.timeouts.evaluate)
    transaction_id = proposal.transaction_id
    try:
        answer = await _process(endorser, proposal._proposed.proposal, deadline)
    except grpc.aio.AioRpcError as error:
        detail = ErrorDetail(endorser.address, endorser.msp_id,
                             f"{error.code().name}: {error.details() or ''}")
        raise EvaluateError(f"{error.code().name}: {error.details() or ''}", code=error.code(),
                            transaction_id=transaction_id, details=[detail]) from error
    status = int(answer.response.status)
    if status < 200 or status >= 400:
        message = f"chaincode response {status}, {answer.response.message}"
        raise EvaluateError(message, code=grpc.StatusCode.ABORTED, transaction_id=transaction_id,
                            details=[ErrorDetail(endorser.address, endorser.msp_id, message)])
    return bytes(answer.response.payload)


def _envelope(proposal_bytes: bytes, responses: list[Any]) -> Any:
    """The unsigned transaction envelope of a proposal and its successful responses."""
    proposal = proposal_pb2.Proposal()
    proposal.ParseFromString(proposal_bytes)
    header = common_pb2.Header()
    header.ParseFromString(proposal.header)
    payload = proposal_pb2.ChaincodeProposalPayload()
    payload.ParseFromString(proposal.payload)
    endorsements = []
    seen: set[bytes] = set()
    for response in responses:  # one endorsement per endorser, as Fabric keeps them
        if not response.HasField("endorsement") or response.endorsement.endorser in seen:
            continue
        seen.add(bytes(response.endorsement.endorser))
        endorsements.append(response.endorsement)
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=proposal_pb2.ChaincodeProposalPayload(
            input=payload.input).SerializeToString(),
        action=transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=responses[0].payload, endorsements=endorsements),
    )
    transaction = transaction_pb2.Transaction(actions=[transaction_pb2.TransactionAction(
        header=header.signature_header, payload=action_payload.SerializeToString())])
    envelope_payload = common_pb2.Payload(header=header, data=transaction.SerializeToString())
    return common_pb2.Envelope(payload=envelope_payload.SerializeToString())
