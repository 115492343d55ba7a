"""Evaluate, endorse, submit, commit status against the fake Gateway; errors and their details."""

from __future__ import annotations

import asyncio
import hashlib

import fabgateway
import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from fabgateway import hashing
from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2, transaction_pb2
from unit.fabgateway.gw_fakes import (
    PEER_ADDRESS,
    PEER_MSP,
    ChaincodeFailure,
    FakePeer,
    Invocation,
    Result,
    make_certificate,
)

pytestmark = pytest.mark.timeout(60)

CODES = transaction_pb2.TxValidationCode


def echo(peer: FakePeer) -> None:
    @peer.function("echo")
    def _echo(inv: Invocation) -> Result:
        return Result(payload=b"|".join(inv.args[1:]))


async def test_evaluate_returns_the_result_and_sends_a_valid_proposal(
    peer: FakePeer, contract: fabgateway.Contract, identity: fabgateway.Identity
) -> None:
    echo(peer)
    result = await contract.evaluate_transaction("echo", "a", b"\x00\xffb")
    assert result == b"a|\x00\xffb"
    (request,) = peer.evaluate_requests
    assert request.channel_id == "mychannel"
    # The proposal, decoded independently of the client (the fake checked the signature,
    # the tx id derivation, the header type, epoch and chaincode ids).
    proposal = proposal_pb2.Proposal()
    proposal.ParseFromString(request.proposed_transaction.proposal_bytes)
    header = common_pb2.Header()
    header.ParseFromString(proposal.header)
    signature_header = common_pb2.SignatureHeader()
    signature_header.ParseFromString(header.signature_header)
    assert signature_header.creator == identity.serialize()
    assert len(signature_header.nonce) == 24


async def test_submit_transaction_runs_endorse_submit_commit(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    echo(peer)
    result = await contract.submit_transaction("echo", "x", "y")
    assert result == b"x|y"
    assert len(peer.endorse_requests) == 1
    assert len(peer.submit_requests) == 1
    tx_id = peer.endorse_requests[0].transaction_id
    assert peer.submit_requests[0].transaction_id == tx_id
    assert peer.blocks[-1].transactions[0][0] == tx_id


async def test_each_step_is_public(peer: FakePeer, contract: fabgateway.Contract) -> None:
    echo(peer)
    proposal = contract.new_proposal(
        "echo",
        arguments=["p"],
        transient_data={"secret": b"s3cr3t", "text": "t"},
        endorsing_organizations=["Org1MSP", "Org2MSP"],
    )
    transaction = await proposal.endorse()
    assert transaction.transaction_id == proposal.transaction_id
    assert transaction.result == b"p"
    assert transaction.channel_name == "mychannel"
    submitted = await transaction.submit()
    assert submitted.result == b"p"
    status = await submitted.get_status()
    assert status.successful
    assert status.code == 0
    assert status.code_name == "VALID"
    assert status.block_number == 1
    assert status.transaction_id == proposal.transaction_id

    request = peer.endorse_requests[0]
    assert list(request.endorsing_organizations) == ["Org1MSP", "Org2MSP"]
    invocation = peer.invocations[proposal.transaction_id]
    assert invocation.transient == {"secret": b"s3cr3t", "text": b"t"}
    assert invocation.args == [b"echo", b"p"]


async def test_transient_data_is_not_in_the_prepared_transaction(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    echo(peer)
    transaction = await contract.new_proposal(
        "echo", transient_data={"secret": b"s3cr3t-value"}
    ).endorse()
    assert b"s3cr3t-value" not in transaction.bytes()


async def test_contract_name_qualifies_the_transaction(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    @peer.function("Accounts:balance")
    def _balance(inv: Invocation) -> Result:
        return Result(payload=b"42")

    contract = gateway.get_network("mychannel").get_contract("basic", "Accounts")
    assert contract.contract_name == "Accounts"
    assert await contract.evaluate_transaction("balance") == b"42"


async def test_evaluate_target_organizations(peer: FakePeer, contract: fabgateway.Contract) -> None:
    echo(peer)
    await contract.evaluate_transaction("echo", endorsing_organizations=["Org2MSP"])
    assert list(peer.evaluate_requests[0].target_organizations) == ["Org2MSP"]


async def test_given_nonce_fixes_the_transaction_id(
    peer: FakePeer, contract: fabgateway.Contract, identity: fabgateway.Identity
) -> None:
    nonce = hashlib.sha256(b"order reference 123").digest()[:24]
    first = contract.new_proposal("echo", nonce=nonce)
    again = contract.new_proposal("echo", nonce=nonce)
    other = contract.new_proposal("echo")
    expected = hashlib.sha256(nonce + identity.serialize()).hexdigest()
    assert first.transaction_id == again.transaction_id == expected
    assert other.transaction_id != expected
    echo(peer)
    await first.endorse()  # the fake checks the derivation from the header's nonce
    with pytest.raises(ValueError, match="nonce"):
        contract.new_proposal("echo", nonce=b"")


async def test_submit_transaction_accepts_a_nonce(
    peer: FakePeer, contract: fabgateway.Contract, identity: fabgateway.Identity
) -> None:
    echo(peer)
    nonce = b"n" * 24
    await contract.submit_transaction("echo", nonce=nonce)
    assert peer.submit_requests[0].transaction_id == fabgateway.transaction_id_for(
        nonce, identity.serialize()
    )


@pytest.mark.parametrize(
    "code_name", ["MVCC_READ_CONFLICT", "ENDORSEMENT_POLICY_FAILURE", "DUPLICATE_TXID"]
)
async def test_invalid_commit_raises_commit_error(
    peer: FakePeer, contract: fabgateway.Contract, identity: fabgateway.Identity, code_name: str
) -> None:
    echo(peer)
    nonce = b"k" * 24
    tx_id = fabgateway.transaction_id_for(nonce, identity.serialize())
    peer.commit_codes[tx_id] = CODES.Value(code_name)
    with pytest.raises(fabgateway.CommitError) as caught:
        await contract.submit_transaction("echo", nonce=nonce)
    error = caught.value
    assert error.transaction_id == tx_id
    assert error.code == CODES.Value(code_name)
    assert error.code_name == code_name
    assert code_name in str(error)
    assert isinstance(error, fabgateway.GatewayError)


async def test_get_status_reports_invalid_without_raising(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    echo(peer)
    proposal = contract.new_proposal("echo")
    peer.commit_codes[proposal.transaction_id] = CODES.Value("MVCC_READ_CONFLICT")
    status = await (await (await proposal.endorse()).submit()).get_status()
    assert not status.successful
    assert status.code_name == "MVCC_READ_CONFLICT"
    with pytest.raises(fabgateway.CommitError):
        status.raise_for_status()


async def test_endorse_error_carries_details_and_chaincode_message(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    @peer.function("transfer")
    def _transfer(inv: Invocation) -> Result:
        raise ChaincodeFailure(500, "INSUFFICIENT_FUNDS: balance too low")

    proposal = contract.new_proposal("transfer", arguments=["a", "b", "10"])
    with pytest.raises(fabgateway.EndorseError) as caught:
        await proposal.endorse()
    error = caught.value
    assert error.transaction_id == proposal.transaction_id
    assert error.code == grpc.StatusCode.ABORTED
    assert "failed to endorse" in error.status_message
    assert error.details == [
        fabgateway.ErrorDetail(
            address=PEER_ADDRESS,
            msp_id=PEER_MSP,
            message="chaincode response 500, INSUFFICIENT_FUNDS: balance too low",
        )
    ]
    assert error.chaincode_status == 500
    assert error.chaincode_message == "INSUFFICIENT_FUNDS: balance too low"
    assert PEER_ADDRESS in str(error)
    assert proposal.transaction_id in str(error)
    assert isinstance(error, fabgateway.TransactionError)


async def test_submit_transaction_raises_endorse_error_before_submitting(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    @peer.function("fail")
    def _fail(inv: Invocation) -> Result:
        raise ChaincodeFailure(400, "BAD: nope")

    with pytest.raises(fabgateway.EndorseError) as caught:
        await contract.submit_transaction("fail")
    assert caught.value.chaincode_message == "BAD: nope"
    assert peer.submit_requests == []


async def test_evaluate_error(peer: FakePeer, contract: fabgateway.Contract) -> None:
    @peer.function("query")
    def _query(inv: Invocation) -> Result:
        raise ChaincodeFailure(500, "NOT_FOUND: no such account")

    with pytest.raises(fabgateway.EvaluateError) as caught:
        await contract.evaluate_transaction("query", "acct")
    error = caught.value
    assert error.code == grpc.StatusCode.UNKNOWN
    assert error.chaincode_message == "NOT_FOUND: no such account"
    assert error.details[0].msp_id == PEER_MSP
    assert error.transaction_id == peer.evaluate_requests[0].transaction_id


async def test_error_without_chaincode_message(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    peer.fail["endorse"] = (grpc.StatusCode.UNAVAILABLE, "no peers available", [])
    with pytest.raises(fabgateway.EndorseError) as caught:
        await contract.submit_transaction("echo")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details == []
    assert caught.value.chaincode_message is None
    assert caught.value.chaincode_status is None


async def test_submit_error_with_orderer_details(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    echo(peer)
    peer.fail["submit"] = (
        grpc.StatusCode.UNAVAILABLE,
        "insufficient number of orderers could successfully process transaction",
        [
            ("orderer0:7050", "OrdererMSP", "SERVICE_UNAVAILABLE: no Raft leader"),
            ("orderer1:7050", "OrdererMSP", "connection refused"),
        ],
    )
    transaction = await contract.new_proposal("echo").endorse()
    with pytest.raises(fabgateway.SubmitError) as caught:
        await transaction.submit()
    error = caught.value
    assert error.transaction_id == transaction.transaction_id
    assert [d.address for d in error.details] == ["orderer0:7050", "orderer1:7050"]
    assert error.details[0].message == "SERVICE_UNAVAILABLE: no Raft leader"


async def test_commit_status_error(peer: FakePeer, contract: fabgateway.Contract) -> None:
    echo(peer)
    peer.fail["commit_status"] = (
        grpc.StatusCode.PERMISSION_DENIED,
        "access denied",
        [("peer0:7051", "Org1MSP", "creator is not a member")],
    )
    submitted = await (await contract.new_proposal("echo").endorse()).submit()
    with pytest.raises(fabgateway.CommitStatusError) as caught:
        await submitted.get_status()
    assert caught.value.transaction_id == submitted.transaction_id
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details[0].message == "creator is not a member"


async def test_commit_status_timeout(peer: FakePeer, contract: fabgateway.Contract) -> None:
    echo(peer)
    peer.commit_delay = 30.0
    submitted = await (await contract.new_proposal("echo").endorse()).submit()
    with pytest.raises(fabgateway.CommitStatusError) as caught:
        await submitted.get_status(timeout=0.2)
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.transaction_id == submitted.transaction_id


async def test_default_timeouts_apply_and_per_call_timeouts_override(
    peer: FakePeer,
    channel: grpc.aio.Channel,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    echo(peer)
    peer.endorse_delay = 0.5
    gateway = fabgateway.connect(
        channel, identity, fabgateway.ecdsa_signer(ec_key), endorse_timeout=0.1
    )
    contract = gateway.get_network("mychannel").get_contract("basic")
    with pytest.raises(fabgateway.EndorseError) as caught:
        await contract.new_proposal("echo").endorse()
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    transaction = await contract.new_proposal("echo", arguments=["ok"]).endorse(timeout=5)
    assert transaction.result == b"ok"


async def test_submit_transaction_timeout_bounds_the_whole_call(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    echo(peer)
    peer.commit_delay = 30.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(fabgateway.CommitStatusError) as caught:
        await contract.submit_transaction("echo", timeout=0.3)
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert loop.time() - started < 2.0


async def test_new_commit_for_a_known_transaction_id(
    peer: FakePeer, contract: fabgateway.Contract, gateway: fabgateway.Gateway
) -> None:
    echo(peer)
    submitted = await (await contract.new_proposal("echo").endorse()).submit()
    await submitted.get_status()
    status = (
        await gateway.get_network("mychannel").new_commit(submitted.transaction_id).get_status()
    )
    assert status.successful
    assert status.transaction_id == submitted.transaction_id


async def test_hundreds_of_transactions_in_flight_on_one_channel(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    echo(peer)
    count = 300
    # The fake peer answers no endorsement until all of them are in flight (it gives up after
    # 10 s): if anything serialized the calls, fewer would ever be in flight at once.
    peer.hold_until_in_flight = count
    results = await asyncio.gather(
        *(contract.submit_transaction("echo", str(i)) for i in range(count))
    )
    assert results == [str(i).encode() for i in range(count)]
    assert len({r.transaction_id for r in peer.submit_requests}) == count
    assert peer.max_in_flight == count


async def test_off_line_signing(
    peer: FakePeer,
    channel: grpc.aio.Channel,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    echo(peer)
    gateway = fabgateway.connect(channel, identity)  # no signer
    contract = gateway.get_network("mychannel").get_contract("basic")
    sign = fabgateway.ecdsa_signer(ec_key)  # stands for an HSM or a remote signer

    unsigned = contract.new_proposal("echo", arguments=["off-line"])
    with pytest.raises(fabgateway.SigningError):
        await unsigned.endorse()
    proposal = gateway.new_signed_proposal(unsigned.bytes(), sign(unsigned.digest()))
    assert proposal.transaction_id == unsigned.transaction_id
    assert proposal.channel_name == "mychannel"
    unsigned_tx = await proposal.endorse()
    assert unsigned_tx.result == b"off-line"

    transaction = gateway.new_signed_transaction(unsigned_tx.bytes(), sign(unsigned_tx.digest()))
    assert transaction.result == b"off-line"
    submitted = await transaction.submit()
    with pytest.raises(fabgateway.SigningError):
        await submitted.get_status()
    commit = gateway.new_signed_commit(submitted.bytes(), sign(submitted.digest()))
    assert commit.transaction_id == proposal.transaction_id
    status = await commit.get_status()
    assert status.successful

    # The digests are the SHA-256 of exactly the bytes the peer verifies.
    assert (
        unsigned.digest()
        == hashlib.sha256(peer.endorse_requests[0].proposed_transaction.proposal_bytes).digest()
    )


async def test_off_line_signature_must_be_right(
    peer: FakePeer,
    channel: grpc.aio.Channel,
    identity: fabgateway.Identity,
) -> None:
    echo(peer)
    gateway = fabgateway.connect(channel, identity)
    contract = gateway.get_network("mychannel").get_contract("basic")
    unsigned = contract.new_proposal("echo")
    other_key = ec.generate_private_key(ec.SECP256R1())
    wrong = gateway.new_signed_proposal(
        unsigned.bytes(), fabgateway.ecdsa_signer(other_key)(unsigned.digest())
    )
    with pytest.raises(fabgateway.EndorseError) as caught:
        await wrong.endorse()
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "signature does not verify" in caught.value.status_message
    peer.problems.clear()  # the fake rightly refused it


async def test_malformed_off_line_bytes(gateway: fabgateway.Gateway) -> None:
    with pytest.raises(fabgateway.MalformedMessageError):
        gateway.new_signed_proposal(b"\xff\xff not a proposal", b"sig")
    with pytest.raises(ValueError, match=r"(PreparedTransaction|prepared transaction)"):
        gateway.new_transaction(b"\x0a\x05junk!")
    with pytest.raises(fabgateway.MalformedMessageError):
        gateway.new_commit(b"")


async def test_signer_failure_is_a_signing_error(
    channel: grpc.aio.Channel, identity: fabgateway.Identity
) -> None:
    def broken(digest: bytes) -> bytes:
        raise RuntimeError("HSM offline")

    contract = (
        fabgateway.connect(channel, identity, broken).get_network("mychannel").get_contract("basic")
    )
    with pytest.raises(fabgateway.SigningError, match="HSM offline"):
        await contract.evaluate_transaction("echo")


async def test_ed25519_identity_with_hash_none(peer: FakePeer, channel: grpc.aio.Channel) -> None:
    echo(peer)
    key = ed25519.Ed25519PrivateKey.generate()
    identity = fabgateway.Identity("Org1MSP", make_certificate(key))
    gateway = fabgateway.connect(
        channel, identity, fabgateway.ed25519_signer(key), hash=hashing.none
    )
    contract = gateway.get_network("mychannel").get_contract("basic")
    assert await contract.submit_transaction("echo", "ed") == b"ed"


async def test_custom_hash_is_used_for_digests(
    channel: grpc.aio.Channel, identity: fabgateway.Identity, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    gateway = fabgateway.connect(
        channel, identity, fabgateway.ecdsa_signer(ec_key), hash=hashing.sha384
    )
    proposal = gateway.get_network("ch").get_contract("cc").new_proposal("f")
    digest = proposal.digest()
    assert len(digest) == 48
    signature = fabgateway.ecdsa_signer(ec_key)(digest)
    ec_key.public_key().verify(
        signature, proposal._proposed.proposal.proposal_bytes, ec.ECDSA(hashes.SHA384())
    )


async def test_arguments_must_be_str_or_bytes(contract: fabgateway.Contract) -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        contract.new_proposal("f", arguments=[42])  # type: ignore[list-item]


async def test_retry_of_a_committed_transaction_is_a_duplicate(
    peer: FakePeer, contract: fabgateway.Contract, gateway: fabgateway.Gateway
) -> None:
    echo(peer)
    nonce = b"order-42".ljust(24, b"\0")
    await contract.submit_transaction("echo", "pay", nonce=nonce)
    with pytest.raises(fabgateway.EndorseError) as caught:
        await contract.submit_transaction("echo", "pay", nonce=nonce)
    error = caught.value
    assert error.is_duplicate_transaction
    assert error.chaincode_message is None
    status = await gateway.get_network("mychannel").new_commit(error.transaction_id).get_status()
    assert status.successful


async def test_chaincode_failure_is_not_a_duplicate(
    peer: FakePeer, contract: fabgateway.Contract
) -> None:
    @peer.function("fail")
    def _fail(inv: Invocation) -> Result:
        raise ChaincodeFailure(500, "NOPE: no")

    with pytest.raises(fabgateway.EndorseError) as caught:
        await contract.submit_transaction("fail")
    assert not caught.value.is_duplicate_transaction
