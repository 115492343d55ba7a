"""Chaincode events, checkpointers (resume without missing or repeating), block events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import fabgateway
import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.gateway import gateway_pb2
from unit.fabgateway.gw_fakes import FakePeer, Invocation, Result

pytestmark = pytest.mark.timeout(60)

T = 5.0  # seconds: generous bound on any single wait in these tests


async def take(events: AsyncIterator[fabgateway.ChaincodeEvent], count: int) -> list[str]:
    """The transaction ids of the next ``count`` events."""
    out = []
    for _ in range(count):
        event = await asyncio.wait_for(anext(events), T)
        out.append(event.transaction_id)
    return out


def events_request(peer: FakePeer, index: int = -1) -> gateway_pb2.ChaincodeEventsRequest:
    inner = gateway_pb2.ChaincodeEventsRequest()
    inner.ParseFromString(peer.events_requests[index].request)
    return inner


async def ledger(peer: FakePeer) -> None:
    """Block 1: t1 t2 t3 (and o1 of another chaincode); block 2: nothing for us; block 3: t4."""
    await peer.add_event_block("basic", ("t1", "Minted"), ("t2", "Moved"))
    peer.blocks[1].transactions.insert(
        1, *(await peer.add_event_block("other", ("o1", "X"))).transactions
    )
    peer.blocks.pop()  # o1 was moved into block 1
    peer.blocks[1].transactions.append(
        (await peer.add_event_block("basic", ("t3", "Burned"))).transactions[0]
    )
    peer.blocks.pop()
    await peer.add_event_block("other", ("o2", "Y"))
    await peer.add_event_block("basic", ("t4", "Minted"))


async def test_events_from_a_start_block(peer: FakePeer, gateway: fabgateway.Gateway) -> None:
    await ledger(peer)
    network = gateway.get_network("mychannel")
    async with network.chaincode_events("basic", start_block=1) as events:
        first = await asyncio.wait_for(anext(events), T)
        assert first == fabgateway.ChaincodeEvent(
            block_number=1,
            transaction_id="t1",
            chaincode_name="basic",
            event_name="Minted",
            payload=b"Minted-payload",
        )
        assert await take(events, 3) == ["t2", "t3", "t4"]
    request = events_request(peer)
    assert request.channel_id == "mychannel"
    assert request.chaincode_id == "basic"
    assert request.start_position.specified.number == 1
    assert request.after_transaction_id == ""
    assert request.identity == gateway.identity.serialize()


async def test_events_after_a_transaction(peer: FakePeer, gateway: fabgateway.Gateway) -> None:
    await ledger(peer)
    network = gateway.get_network("mychannel")
    async with network.chaincode_events("basic", start_block=1, after_transaction_id="t2") as ev:
        assert await take(ev, 2) == ["t3", "t4"]
    assert events_request(peer).after_transaction_id == "t2"


async def test_events_default_to_the_next_commit(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    @peer.function("mint")
    def _mint(inv: Invocation) -> Result:
        return Result(payload=b"ok", event=("Minted", inv.args[1]))

    await ledger(peer)  # history that must not be delivered
    network = gateway.get_network("mychannel")
    contract = network.get_contract("basic")
    async with network.chaincode_events("basic") as events:
        pending = asyncio.ensure_future(anext(events))
        # "Next commit" is fixed when the peer reads the request: commit after that.
        await asyncio.wait_for(peer.events_started.wait(), T)
        assert not pending.done()
        await contract.submit_transaction("mint", "100")
        event = await asyncio.wait_for(pending, T)
        assert event.payload == b"100"
        assert event.event_name == "Minted"
        assert event.block_number == len(peer.blocks) - 1
    assert events_request(peer).start_position.WhichOneof("Type") == "next_commit"


async def test_file_checkpointer_resumes_inside_a_block(
    peer: FakePeer, gateway: fabgateway.Gateway, tmp_path: Path
) -> None:
    await ledger(peer)
    network = gateway.get_network("mychannel")
    path = tmp_path / "listener.checkpoint"

    checkpointer = fabgateway.FileCheckpointer(path)
    assert checkpointer.block_number is None
    seen = []
    async with network.chaincode_events(
        "basic", start_block=1, checkpoint=checkpointer
    ) as events:
        async for event in events:
            seen.append(event.transaction_id)
            checkpointer.checkpoint_chaincode_event(event)
            if event.transaction_id == "t2":
                break  # the listener stops (or crashes) after processing t2
    assert seen == ["t1", "t2"]
    assert json.loads(path.read_text()) == {"blockNumber": 1, "transactionId": "t2"}

    restarted = fabgateway.FileCheckpointer(path)
    assert (restarted.block_number, restarted.transaction_id) == (1, "t2")
    # start_block is ignored once a checkpoint exists.
    async with network.chaincode_events("basic", start_block=0, checkpoint=restarted) as events:
        assert await take(events, 2) == ["t3", "t4"]
    request = events_request(peer)
    assert request.start_position.specified.number == 1
    assert request.after_transaction_id == "t2"


async def test_client_skips_checkpointed_events_if_the_peer_does_not(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    await ledger(peer)
    peer.ignore_after_transaction_id = True
    checkpointer = fabgateway.InMemoryCheckpointer()
    checkpointer.checkpoint_transaction(1, "t2")
    network = gateway.get_network("mychannel")
    async with network.chaincode_events("basic", checkpoint=checkpointer) as events:
        assert await take(events, 2) == ["t3", "t4"]


async def test_client_never_drops_a_block_without_the_checkpointed_transaction(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    await ledger(peer)
    peer.ignore_after_transaction_id = True
    network = gateway.get_network("mychannel")
    async with network.chaincode_events(
        "basic", start_block=3, after_transaction_id="t2"
    ) as events:
        assert await take(events, 1) == ["t4"]


async def test_checkpoint_block_resumes_at_the_next_block(
    peer: FakePeer, gateway: fabgateway.Gateway, tmp_path: Path
) -> None:
    await ledger(peer)
    checkpointer = fabgateway.FileCheckpointer(tmp_path / "cp.json")
    checkpointer.checkpoint_block(1)
    assert (checkpointer.block_number, checkpointer.transaction_id) == (2, None)
    network = gateway.get_network("mychannel")
    async with network.chaincode_events("basic", checkpoint=checkpointer) as events:
        assert await take(events, 1) == ["t4"]
    assert events_request(peer).start_position.specified.number == 2


async def test_chaincode_events_error(peer: FakePeer, gateway: fabgateway.Gateway) -> None:
    peer.fail["chaincode_events"] = (
        grpc.StatusCode.PERMISSION_DENIED,
        "access denied",
        [("peer0:7051", "Org1MSP", "not a channel member")],
    )
    events = gateway.get_network("mychannel").chaincode_events("basic", start_block=0)
    with pytest.raises(fabgateway.ChaincodeEventsError) as caught:
        await asyncio.wait_for(anext(events), T)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details[0].message == "not a channel member"
    with pytest.raises(StopAsyncIteration):
        await anext(events)


async def test_closing_the_stream_ends_iteration(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    await ledger(peer)
    events = gateway.get_network("mychannel").chaincode_events("basic", start_block=1)
    assert await take(events, 1) == ["t1"]
    await events.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(events)


async def test_close_while_waiting_ends_iteration(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    events = gateway.get_network("mychannel").chaincode_events("basic")
    pending = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.05)
    await events.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, T)


async def test_off_line_signed_chaincode_events_request(
    peer: FakePeer,
    channel: grpc.aio.Channel,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    await ledger(peer)
    gateway = fabgateway.connect(channel, identity)  # no signer
    unsigned = gateway.get_network("mychannel").new_chaincode_events_request("basic", start_block=3)
    with pytest.raises(fabgateway.SigningError):
        unsigned.events()
    signature = fabgateway.ecdsa_signer(ec_key)(unsigned.digest())
    request = gateway.new_signed_chaincode_events_request(unsigned.bytes(), signature)
    async with request.events() as events:
        assert await take(events, 1) == ["t4"]


# --- checkpointers --------------------------------------------------------------------------


def test_in_memory_checkpointer() -> None:
    cp = fabgateway.InMemoryCheckpointer()
    assert (cp.block_number, cp.transaction_id) == (None, None)
    cp.checkpoint_chaincode_event(fabgateway.ChaincodeEvent(7, "tx", "cc", "E", b""))
    assert (cp.block_number, cp.transaction_id) == (7, "tx")
    cp.checkpoint_block(7)
    assert (cp.block_number, cp.transaction_id) == (8, None)
    assert isinstance(cp, fabgateway.Checkpointer)


def test_file_checkpointer_writes_atomically(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    cp = fabgateway.FileCheckpointer(path)
    assert not path.exists()  # nothing written until the first checkpoint
    for block in range(5):
        cp.checkpoint_transaction(block, f"tx{block}")
    assert json.loads(path.read_text()) == {"blockNumber": 4, "transactionId": "tx4"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cp.json"]  # no temp file left
    assert isinstance(cp, fabgateway.Checkpointer)


def test_file_checkpointer_reads_fabric_gateway_files(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_text('{"blockNumber":"12","transactionId":"abc"}')  # Node writes a string
    cp = fabgateway.FileCheckpointer(path)
    assert (cp.block_number, cp.transaction_id) == (12, "abc")
    path.write_text('{"blockNumber":3,"transactionId":""}')  # Go writes "" for none
    cp = fabgateway.FileCheckpointer(path)
    assert (cp.block_number, cp.transaction_id) == (3, None)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"blockNumber": "x"}', "blockNumber"),
        ('{"blockNumber": -1}', "negative"),
        ('{"blockNumber": 1, "transactionId": 5}', "transactionId"),
    ],
)
def test_file_checkpointer_refuses_bad_files(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    with pytest.raises(fabgateway.CheckpointError, match=problem) as caught:
        fabgateway.FileCheckpointer(path)
    assert str(path) in str(caught.value)


def test_file_checkpointer_write_failure(tmp_path: Path) -> None:
    cp = fabgateway.FileCheckpointer(tmp_path / "missing-folder" / "cp.json")
    with pytest.raises(fabgateway.CheckpointError, match="cannot write"):
        cp.checkpoint_block(1)
    assert cp.block_number is None  # the state did not move past what is on disk


# --- block events -----------------------------------------------------------------------------


async def test_filtered_block_events_with_checkpointer(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    await ledger(peer)
    network = gateway.get_network("mychannel")
    checkpointer = fabgateway.InMemoryCheckpointer()
    async with network.filtered_block_events(start_block=0, checkpoint=checkpointer) as blocks:
        numbers = []
        for _ in range(3):
            block = await asyncio.wait_for(anext(blocks), T)
            numbers.append(block.number)
            checkpointer.checkpoint_block(block.number)
        assert numbers == [0, 1, 2]
        assert [t.txid for t in block.filtered_transactions] == ["o2"]
    async with network.filtered_block_events(checkpoint=checkpointer) as blocks:
        block = await asyncio.wait_for(anext(blocks), T)
        assert block.number == 3
        assert [t.txid for t in block.filtered_transactions] == ["t4"]
        assert block.filtered_transactions[0].tx_validation_code == 0


async def test_block_events_from_next_commit(peer: FakePeer, gateway: fabgateway.Gateway) -> None:
    network = gateway.get_network("mychannel")
    async with network.block_events() as blocks:
        pending = asyncio.ensure_future(anext(blocks))
        # "Next commit" is fixed when the peer reads the request: add the block after that.
        await asyncio.wait_for(peer.deliver_started.wait(), T)
        await peer.add_event_block("basic", ("n1", "E"))
        block = await asyncio.wait_for(pending, T)
        assert block.header.number == 1
        assert list(block.data.data) == [b"n1"]


async def test_block_events_refused_by_the_peer(gateway: fabgateway.Gateway) -> None:
    async with gateway.get_network("nochannel").block_events(start_block=0) as blocks:
        with pytest.raises(fabgateway.BlockEventsError) as caught:
            await asyncio.wait_for(anext(blocks), T)
    assert caught.value.deliver_status == 404
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


async def test_off_line_signed_block_events_request(
    peer: FakePeer,
    channel: grpc.aio.Channel,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    gateway = fabgateway.connect(channel, identity)
    unsigned = gateway.get_network("mychannel").new_block_events_request(
        kind="filtered_block", start_block=0
    )
    signature = fabgateway.ecdsa_signer(ec_key)(unsigned.digest())
    request = gateway.new_signed_block_events_request(
        unsigned.bytes(), signature, kind="filtered_block"
    )
    async with request.events() as blocks:
        assert (await asyncio.wait_for(anext(blocks), T)).number == 0


async def test_a_consumer_timeout_does_not_break_the_stream(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    events = gateway.get_network("mychannel").chaincode_events("basic")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(events), 0.1)
    await peer.add_event_block("basic", ("x1", "E"))
    assert await take(events, 1) == ["x1"]
    await events.aclose()
