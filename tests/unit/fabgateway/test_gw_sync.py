"""The blocking facade: the same flow, driven from a plain thread."""

from __future__ import annotations

import asyncio
import threading
from functools import partial

import fabgateway
import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fabgateway import sync
from unit.fabgateway.gw_fakes import ChaincodeFailure, FakePeer, Invocation, Result, Server

pytestmark = pytest.mark.timeout(60)


def _functions(peer: FakePeer) -> None:
    @peer.function("echo")
    def _echo(inv: Invocation) -> Result:
        return Result(payload=b"|".join(inv.args[1:]), event=("Echoed", b"e"))

    @peer.function("fail")
    def _fail(inv: Invocation) -> Result:
        raise ChaincodeFailure(500, "LIMIT_EXCEEDED: too much")


async def test_sync_facade_round_trip(
    peer: FakePeer,
    server: Server,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    _functions(peer)
    caller_threads: set[int] = set()

    def script() -> None:
        caller_threads.add(threading.get_ident())
        factory = partial(grpc.aio.insecure_channel, server.address)
        with sync.connect(factory, identity, fabgateway.ecdsa_signer(ec_key)) as gateway:
            network = gateway.get_network("mychannel")
            contract = network.get_contract("basic")
            assert contract.evaluate_transaction("echo", "q") == b"q"
            assert contract.submit_transaction("echo", "a", b"b") == b"a|b"
            assert isinstance(contract, sync.Contract)
            assert contract.chaincode_name == "basic"
            assert network.name == "mychannel"

            proposal = contract.new_proposal("echo", arguments=["step"])
            transaction = proposal.endorse()
            assert transaction.result == b"step"
            submitted = transaction.submit()
            status = submitted.get_status()
            assert status.successful
            assert status.transaction_id == proposal.transaction_id

            with pytest.raises(fabgateway.EndorseError) as caught:
                contract.submit_transaction("fail")
            assert caught.value.chaincode_message == "LIMIT_EXCEEDED: too much"

            checkpointer = fabgateway.InMemoryCheckpointer()
            with network.chaincode_events("basic", start_block=0, timeout=5) as events:
                for event in events:
                    assert event.block_number == 1  # the "a|b" transaction
                    checkpointer.checkpoint_chaincode_event(event)
                    break
            with network.chaincode_events("basic", checkpoint=checkpointer, timeout=5) as ev:
                assert isinstance(ev, sync.ChaincodeEventIterator)
                assert next(ev).transaction_id == proposal.transaction_id
            with network.filtered_block_events(start_block=0, timeout=5) as blocks:
                assert isinstance(blocks, sync.BlockEventIterator)
                assert next(blocks).number == 0
            assert contract.evaluate("echo", arguments=["k"]) == b"k"  # once missing here
            assert contract.submit("echo", arguments=["kw"]) == b"kw"
            # Once missing here; nothing is sent until the first next() (the fake has no
            # DeliverWithPrivateData), so closing at once is all this can check.
            with network.block_and_private_data_events(start_block=0) as private:
                assert isinstance(private, sync.BlockEventIterator)

    await asyncio.to_thread(script)
    assert threading.get_ident() not in caller_threads


async def test_sync_off_line_signing(
    peer: FakePeer,
    server: Server,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    _functions(peer)
    sign = fabgateway.ecdsa_signer(ec_key)

    def script() -> None:
        factory = partial(grpc.aio.insecure_channel, server.address)
        with sync.connect(factory, identity) as gateway:
            contract = gateway.get_network("mychannel").get_contract("basic")
            unsigned = contract.new_proposal("echo", arguments=["x"])
            proposal = gateway.new_signed_proposal(unsigned.bytes(), sign(unsigned.digest()))
            unsigned_tx = proposal.endorse()
            transaction = gateway.new_signed_transaction(
                unsigned_tx.bytes(), sign(unsigned_tx.digest())
            )
            submitted = transaction.submit()
            commit = gateway.new_signed_commit(submitted.bytes(), sign(submitted.digest()))
            assert commit.get_status().successful

            network = gateway.get_network("mychannel")
            unsigned_events = network.new_chaincode_events_request("basic", start_block=0)
            assert isinstance(unsigned_events, sync.ChaincodeEventsRequest)
            signed_events = gateway.new_signed_chaincode_events_request(
                unsigned_events.bytes(), sign(unsigned_events.digest())
            )
            with signed_events.events(timeout=5) as events:
                assert next(events).transaction_id == submitted.transaction_id

    await asyncio.to_thread(script)


def test_sync_connect_failure_stops_its_thread(identity: fabgateway.Identity) -> None:
    before = {t.name for t in threading.enumerate()}

    def factory() -> grpc.aio.Channel:
        raise OSError("no route")

    with pytest.raises(OSError, match="no route"):
        sync.connect(factory, identity)
    assert {t.name for t in threading.enumerate()} == before
