"""Chaincode events of several chaincodes from one block stream: which events a block yields
(valid transactions only, the wanted chaincodes only, nothing from a configuration block),
and resuming from a checkpoint inside a block without a miss or a repeat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import fabgateway
import pytest
from fabgateway.blocks import decode_block
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_event_pb2
from unit.fabgateway.block_builder import BAD_PAYLOAD, MVCC, POLICY, VALID, Tx, block
from unit.fabgateway.gw_fakes import FakePeer, Invocation, Result

pytestmark = pytest.mark.timeout(60)

T = 5.0
WANTED = ("cc-hk", "cc-us")


def ev(chaincode: str, name: str = "Pending", payload: bytes = b"{}") -> tuple[str, str, bytes]:
    return (chaincode, name, payload)


def ledger() -> list[common_pb2.Block]:
    """Block 0: config. Block 1: events of both wanted namespaces, an invalid one, an
    unrelated one. Block 2: nothing wanted. Block 3: one wanted event."""
    return [
        block(0, [Tx("cfg", header_type="CONFIG")]),
        block(1, [
            Tx("a1", chaincode="cc-hk", event=ev("cc-hk", "Pending", b'{"n":1}')),
            Tx("x1", chaincode="cc-us", code=MVCC, event=ev("cc-us", "Pending")),
            Tx("a2", chaincode="cc-us", event=ev("cc-us", "Decided")),
            Tx("u1", chaincode="other", event=ev("other"), also_writes=("cc-hk",)),
            Tx("n1", chaincode="cc-hk"),  # a transaction that sets no event
            Tx("x2", chaincode="cc-hk", code=POLICY, event=ev("cc-hk")),
            Tx("a3", chaincode="cc-hk", event=ev("cc-hk", "Decided")),
        ]),
        block(2, [Tx("u2", chaincode="other", event=ev("other"))]),
        block(3, [Tx("a4", chaincode="cc-us", event=ev("cc-us"))]),
    ]


def ids(events: Iterable[fabgateway.ChaincodeEvent]) -> list[str]:
    return [e.transaction_id for e in events]


ALL = ["a1", "a2", "a3", "a4"]


class Blocks:
    """An in-memory block stream from ``start``, as Deliver sends it (messages)."""

    def __init__(self, blocks: list[common_pb2.Block], start: int = 0) -> None:
        self._blocks = iter(blocks[start:])
        self.closed = False

    def __aiter__(self) -> Blocks:
        return self

    async def __anext__(self) -> Any:
        await asyncio.sleep(0)
        try:
            return next(self._blocks)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed = True


async def drain(
    stream: AsyncIterator[fabgateway.ChaincodeEvent],
) -> list[fabgateway.ChaincodeEvent]:
    return [event async for event in stream]


# --- one block --------------------------------------------------------------------------------


def test_a_block_yields_the_valid_events_of_the_wanted_chaincodes_in_order() -> None:
    decoded = decode_block(ledger()[1])
    events = fabgateway.chaincode_events_in_block(decoded, WANTED)
    assert events == [
        fabgateway.ChaincodeEvent(1, "a1", "cc-hk", "Pending", b'{"n":1}'),
        fabgateway.ChaincodeEvent(1, "a2", "cc-us", "Decided", b"{}"),
        fabgateway.ChaincodeEvent(1, "a3", "cc-hk", "Decided", b"{}"),
    ]
    # the decoded transaction keeps the event of an invalid one, marked invalid
    invalid = decoded.transaction("x1")
    assert invalid is not None
    assert not invalid.is_valid
    assert ids(invalid.chaincode_events) == ["x1"]


def test_events_are_the_same_without_decoding_the_write_sets() -> None:
    full, light = decode_block(ledger()[1]), decode_block(ledger()[1], write_sets=False)
    assert all(tx.namespaces == () for tx in light.transactions)
    assert any(tx.namespaces for tx in full.transactions)
    assert [tx.chaincode_events for tx in light.transactions] == [
        tx.chaincode_events for tx in full.transactions]
    assert [tx.validation_code for tx in light.transactions] == [
        tx.validation_code for tx in full.transactions]


def test_an_event_is_taken_by_its_top_level_chaincode_not_by_what_the_transaction_wrote() -> None:
    decoded = decode_block(ledger()[1])
    # u1 wrote cc-hk (a chaincode-to-chaincode call) but its event is the top level's, "other"
    assert "u1" not in ids(fabgateway.chaincode_events_in_block(decoded, WANTED))
    assert ids(fabgateway.chaincode_events_in_block(decoded, ["other"])) == ["u1"]


def test_a_config_block_and_an_unrelated_block_yield_nothing() -> None:
    assert fabgateway.chaincode_events_in_block(decode_block(ledger()[0]), WANTED) == []
    assert fabgateway.chaincode_events_in_block(decode_block(ledger()[2]), WANTED) == []


def test_an_undecodable_transaction_hides_nothing_else() -> None:
    built = block(5, [Tx("g1", garbage=b"\xff\xff not a payload"),
                      Tx("b1", code=BAD_PAYLOAD, garbage=b"\x01"),
                      Tx("a5", chaincode="cc-hk", event=ev("cc-hk"))])
    assert ids(fabgateway.chaincode_events_in_block(decode_block(built), WANTED)) == ["a5"]


def test_names_may_be_a_test_of_a_name() -> None:
    decoded = decode_block(ledger()[1])
    events = fabgateway.chaincode_events_in_block(decoded, lambda n: n.startswith("cc-"))
    assert ids(events) == ["a1", "a2", "a3"]


@pytest.mark.parametrize(("names", "error"), [
    ("cc-hk", TypeError), ([], ValueError), (["cc-hk", ""], TypeError), ([3], TypeError)])
def test_bad_names_are_refused_with_the_reason(names: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        fabgateway.chaincode_events_in_block(decode_block(ledger()[1]), names)


def test_after_a_transaction_only_the_later_events_of_the_block() -> None:
    decoded = decode_block(ledger()[1])
    for after, expected in [("a1", ["a2", "a3"]), ("x1", ["a2", "a3"]), ("u1", ["a3"]),
                            ("a3", []), ("elsewhere", ["a1", "a2", "a3"])]:
        events = fabgateway.chaincode_events_in_block(decoded, WANTED, after_transaction_id=after)
        assert ids(events) == expected, after


# --- the stream and its checkpoints ---------------------------------------------------------


async def test_the_stream_yields_every_wanted_event_in_ledger_order() -> None:
    source = Blocks(ledger())
    async with fabgateway.BlockChaincodeEventStream(source, WANTED) as stream:
        events = await drain(stream)
    assert ids(events) == ALL
    assert [e.block_number for e in events] == [1, 1, 1, 3]
    assert source.closed


@pytest.mark.parametrize("cut", range(len(ALL) + 1))
async def test_a_checkpoint_resumes_after_the_last_processed_event_mid_block(cut: int) -> None:
    """Stop after ``cut`` processed events, then resume from the checkpoint: the events
    delivered are exactly the remaining ones (no miss, no repeat), whatever the cut."""
    checkpointer = fabgateway.InMemoryCheckpointer()
    seen: list[str] = []
    async with fabgateway.BlockChaincodeEventStream(Blocks(ledger()), WANTED) as stream:
        async for event in stream:
            if len(seen) == cut:
                break
            seen.append(event.transaction_id)
            checkpointer.checkpoint_chaincode_event(event)
    start = checkpointer.block_number or 0
    after = None
    if checkpointer.block_number is not None and checkpointer.transaction_id is not None:
        after = (checkpointer.block_number, checkpointer.transaction_id)
    async with fabgateway.BlockChaincodeEventStream(
        Blocks(ledger(), start), WANTED, after=after
    ) as resumed:
        seen += ids(await drain(resumed))
    assert seen == ALL


async def test_a_checkpoint_whose_transaction_is_not_in_the_block_skips_nothing() -> None:
    stream = fabgateway.BlockChaincodeEventStream(
        Blocks(ledger(), 1), WANTED, after=(1, "not-in-this-block"))
    assert ids(await drain(stream)) == ALL


async def test_the_after_position_applies_to_its_own_block_only() -> None:
    # a stream that starts past the checkpoint's block drops nothing of the later blocks
    stream = fabgateway.BlockChaincodeEventStream(Blocks(ledger(), 3), WANTED, after=(1, "a4"))
    assert ids(await drain(stream)) == ["a4"]


async def test_a_block_that_does_not_decode_is_an_error_not_silence() -> None:
    bad = common_pb2.Block()
    bad.header.number = 9
    bad.data.data.append(b"x")  # one transaction, no transactions filter
    stream = fabgateway.BlockChaincodeEventStream(Blocks([bad]), WANTED)
    with pytest.raises(fabgateway.MalformedMessageError, match="transactions filter"):
        await anext(stream)


# --- through the peer's Deliver service -------------------------------------------------------


async def test_network_block_chaincode_events_over_deliver_resumes_from_a_checkpointer(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    peer.full_blocks = True
    await peer.add_event_block("cc-hk", ("h1", "Pending"), ("h2", "Pending"))
    await peer.add_event_block("elsewhere", ("o1", "Pending"))
    await peer.add_event_block("cc-us", ("u1", "Decided"))
    network = gateway.get_network("mychannel")
    checkpointer = fabgateway.InMemoryCheckpointer()
    async with network.block_chaincode_events(
        WANTED, start_block=0, checkpoint=checkpointer
    ) as events:
        first = await asyncio.wait_for(anext(events), T)
        assert first == fabgateway.ChaincodeEvent(1, "h1", "cc-hk", "Pending", b"Pending-payload")
        checkpointer.checkpoint_chaincode_event(first)
    async with network.block_chaincode_events(WANTED, checkpoint=checkpointer) as events:
        rest = [await asyncio.wait_for(anext(events), T) for _ in range(2)]
    assert ids(rest) == ["h2", "u1"]
    envelope = peer.deliver_requests[-1]
    payload = common_pb2.Payload.FromString(envelope.payload)
    seek = ab_pb2.SeekInfo.FromString(payload.data)
    assert seek.start.specified.number == 1  # the checkpoint's block, not the start block


async def test_network_block_chaincode_events_from_the_next_commit_skip_invalid_commits(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    peer.full_blocks = True

    @peer.function("pay")
    def _pay(inv: Invocation) -> Result:
        return Result(payload=b"ok", event=("Pending", inv.args[1]))

    def event(tx_id: str, chaincode: str) -> chaincode_event_pb2.ChaincodeEvent:
        return chaincode_event_pb2.ChaincodeEvent(
            chaincode_id=chaincode, tx_id=tx_id, event_name="Pending", payload=b"forged")

    await peer.add_event_block("cc-hk", ("old", "Pending"))  # history: not delivered
    network = gateway.get_network("mychannel")
    async with network.block_chaincode_events(WANTED) as events:
        pending = asyncio.ensure_future(anext(events))
        await asyncio.wait_for(peer.deliver_started.wait(), T)
        await peer.add_block([("bad", MVCC, event("bad", "cc-hk")),
                              ("odd", VALID, event("odd", "cc-hkx"))])
        await network.get_contract("cc-us").submit_transaction("pay", "good")
        first = await asyncio.wait_for(pending, T)
    assert (first.chaincode_name, first.event_name, first.payload) == ("cc-us", "Pending", b"good")


def test_the_names_are_checked_before_any_request() -> None:
    network = fabgateway.Network(None, None, "mychannel")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        network.block_chaincode_events("cc-hk")
