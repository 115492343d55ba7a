"""Endorsement on named peers (``endorse_on_peers``): the envelope is Fabric's
``CreateSignedTx`` of the proposal and the answers; refusals, failures and disagreeing peers
raise ``EndorseError`` naming each peer; the transaction then goes through the Gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fabgateway
import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2, transaction_pb2
from unit.fabgateway.gw_fakes import (
    Answer,
    FakeEndorser,
    FakePeer,
    Invocation,
    Server,
    endorsing_server,
    named_peer_channel,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def endorser(peer: FakePeer) -> FakeEndorser:
    return FakeEndorser(ledger=peer)


@pytest.fixture
async def both(peer: FakePeer, endorser: FakeEndorser) -> AsyncIterator[Server]:
    async with endorsing_server(peer, endorser) as running:
        yield running


@pytest.fixture
async def peers(both: Server) -> AsyncIterator[list[fabgateway.Endorser]]:
    channels = [named_peer_channel(both.address, name) for name in ("peerA", "peerB")]
    yield [fabgateway.Endorser(channels[0], "a.example:7051", "AMSP"),
           fabgateway.Endorser(channels[1], "b.example:7051", "BMSP")]
    for channel in channels:
        await channel.close()


@pytest.fixture
async def gw(both: Server, identity: fabgateway.Identity,
             ec_key: ec.EllipticCurvePrivateKey) -> AsyncIterator[fabgateway.Gateway]:
    async with grpc.aio.insecure_channel(both.address) as channel:
        yield fabgateway.connect(channel, identity, fabgateway.ecdsa_signer(ec_key))


def proposal(gw: fabgateway.Gateway) -> fabgateway.Proposal:
    contract = gw.get_network("mychannel").get_contract("_lifecycle")
    return contract.new_proposal("Approve", arguments=[b"\x00args"],
                                 transient_data={"secret": b"never in the block"})


async def test_the_envelope_is_the_proposal_and_every_endorsement(
    gw: fabgateway.Gateway, peers: list[fabgateway.Endorser], endorser: FakeEndorser,
    peer: FakePeer,
) -> None:
    p = proposal(gw)
    tx = await fabgateway.endorse_on_peers(p, peers)
    assert tx.transaction_id == p.transaction_id
    assert tx.result == b"ok"
    assert sorted(name for name, _ in endorser.calls) == ["peerA", "peerB"]
    assert {inv.transaction_id for _, inv in endorser.calls} == {p.transaction_id}

    _, inv = endorser.calls[0]
    envelope = tx._prepared.envelope
    payload = common_pb2.Payload.FromString(envelope.payload)
    channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    assert channel_header.tx_id == p.transaction_id
    assert channel_header.channel_id == "mychannel"
    transaction = transaction_pb2.Transaction.FromString(payload.data)
    assert len(transaction.actions) == 1
    action = transaction.actions[0]
    assert action.header == payload.header.signature_header
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
    cc_payload = proposal_pb2.ChaincodeProposalPayload.FromString(
        action_payload.chaincode_proposal_payload)
    assert not cc_payload.TransientMap  # transient data never reaches the block
    assert b"never in the block" not in envelope.payload
    assert [e.endorser for e in action_payload.action.endorsements] == [b"peerA", b"peerB"]
    assert inv.args == [b"Approve", b"\x00args"]

    submitted = await tx.submit()
    status = await submitted.get_status()
    assert status.successful
    assert peer.submit_requests[0].prepared_transaction.signature  # signed by the client


async def test_one_endorsement_per_endorser(
    gw: fabgateway.Gateway, both: Server, endorser: FakeEndorser
) -> None:
    async with named_peer_channel(both.address, "peerA") as channel:
        same = fabgateway.Endorser(channel, "a.example:7051", "AMSP")
        tx = await fabgateway.endorse_on_peers(proposal(gw), [same, same])
    payload = common_pb2.Payload.FromString(tx._prepared.envelope.payload)
    action = transaction_pb2.Transaction.FromString(payload.data).actions[0]
    endorsements = transaction_pb2.ChaincodeActionPayload.FromString(
        action.payload).action.endorsements
    assert [e.endorser for e in endorsements] == [b"peerA"]
    assert len(endorser.calls) == 2


async def test_a_refusal_names_the_peer_and_the_chaincode_message(
    gw: fabgateway.Gateway, peers: list[fabgateway.Endorser], endorser: FakeEndorser,
    peer: FakePeer,
) -> None:
    def refuse_on_b(inv: Invocation, name: str) -> Answer:
        if name == "peerB":
            return Answer(status=500, message="attempted to redefine uncommitted sequence")
        return Answer(payload=b"ok")

    endorser.handler = refuse_on_b
    p = proposal(gw)
    with pytest.raises(fabgateway.EndorseError) as refused:
        await fabgateway.endorse_on_peers(p, peers)
    error = refused.value
    assert error.transaction_id == p.transaction_id
    assert error.code == grpc.StatusCode.ABORTED
    assert [(d.address, d.msp_id) for d in error.details] == [("b.example:7051", "BMSP")]
    assert error.chaincode_status == 500
    assert error.chaincode_message == "attempted to redefine uncommitted sequence"
    assert peer.submit_requests == []


async def test_peers_that_disagree_are_refused(
    gw: fabgateway.Gateway, peers: list[fabgateway.Endorser], endorser: FakeEndorser
) -> None:
    endorser.handler = lambda inv, name: Answer(payload=name.encode())
    with pytest.raises(fabgateway.EndorseError, match="ProposalResponsePayloads do not match"
                       ) as refused:
        await fabgateway.endorse_on_peers(proposal(gw), peers)
    assert [d.message for d in refused.value.details] == [
        "same result as the first peer", "a different result from the first peer"]


async def test_an_unreachable_peer_is_named_with_its_grpc_status(
    gw: fabgateway.Gateway, peers: list[fabgateway.Endorser], endorser: FakeEndorser
) -> None:
    endorser.abort["peerA"] = (grpc.StatusCode.UNAVAILABLE, "peer is restarting")
    with pytest.raises(fabgateway.EndorseError) as refused:
        await fabgateway.endorse_on_peers(proposal(gw), peers)
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    [detail] = refused.value.details
    assert detail.address == "a.example:7051"
    assert detail.message == "UNAVAILABLE: peer is restarting"


async def test_an_answer_without_endorsement_is_refused(
    gw: fabgateway.Gateway, peers: list[fabgateway.Endorser], endorser: FakeEndorser
) -> None:
    endorser.handler = lambda inv, name: Answer(payload=b"ok", endorse=False)
    with pytest.raises(fabgateway.EndorseError, match="no endorsement"):
        await fabgateway.endorse_on_peers(proposal(gw), peers[:1])


async def test_no_endorser_is_a_caller_error(gw: fabgateway.Gateway) -> None:
    with pytest.raises(ValueError, match="at least one endorser"):
        await fabgateway.endorse_on_peers(proposal(gw), [])
