"""One transaction id, several transactions on one stream: the chaincode-to-chaincode case.

Under the namespace layout one endorsement calls the storage chaincode several times (a read,
then the flush's write; two scans of one pair namespace), and the peer runs every one of
those calls on the *same* stream (it keys handlers by package id) with the *same* channel and
transaction id, one after the other: the next TRANSACTION can arrive as soon as the peer has
read the previous COMPLETED, before the task that sent that COMPLETED has resumed.

The peer side here is an in-memory stream that keeps Fabric v3.1.1's rules
(``core/chaincode/handler.go``): one transaction context per ``(channel, txid)`` on a handler
(``TXContexts``), created by ``Execute`` and deleted when COMPLETED arrives; at most one
request per ``(channel, txid)`` at a time (``ActiveTransactions``: a second one is dropped
without an answer, so the chaincode would wait until the execute timeout), removed before
the answer is sent. It records a violation where the real peer would drop or refuse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from fabshim import Handler, Response, Stub, success
from fabshim import _protos as pb
from unit.fabshim.shim_harness import wait_for

CCM = pb.CCM
CHANNEL = "payments"
TXID = "64c1c501" + "0" * 56
Answer = Callable[[pb.Message], Awaitable[None]]


class PeerSide:
    """The peer's end of one chaincode stream (see the module docstring)."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[pb.Message | None] = asyncio.Queue()
        self.sent: list[pb.Message] = []
        self.contexts: dict[tuple[str, str], asyncio.Future[pb.Message]] = {}
        self.active: set[tuple[str, str]] = set()
        self.violations: list[str] = []
        self.on_request: Answer | None = None  # default: answer at once
        self.on_completed: Answer | None = None  # runs while the chaincode's write "is on the wire"
        self.requests: asyncio.Queue[pb.Message] = asyncio.Queue()

    # the MessageStream the handler uses
    async def send(self, message: pb.Message) -> None:
        self.sent.append(message)
        key = (str(message.channel_id), str(message.txid))
        if message.type in (CCM.REGISTER, CCM.KEEPALIVE):
            return
        if message.type in (CCM.COMPLETED, CCM.ERROR):
            future = self.contexts.pop(key, None)  # Notify, then Execute's deferred Delete
            if future is None:
                self.violations.append(f"{pb.type_name(message.type)} for no context")
            else:
                future.set_result(message)
            if self.on_completed is not None:
                await self.on_completed(message)
            return
        if key not in self.contexts:
            self.violations.append(f"{pb.type_name(message.type)} with no context (refused)")
            return
        if key in self.active:  # registerTxid fails: dropped, never answered
            self.violations.append(f"{pb.type_name(message.type)} while another request of "
                                   "the transaction was active (dropped)")
            return
        self.active.add(key)
        self.requests.put_nowait(message)
        if self.on_request is None:
            self.answer(message, b"")
        else:
            await self.on_request(message)

    async def recv(self) -> pb.Message | None:
        return await self.inbox.get()

    # the peer's actions
    def answer(self, request: pb.Message, payload: bytes) -> None:
        key = (str(request.channel_id), str(request.txid))
        self.active.discard(key)  # ActiveTransactions.Remove, then serialSendAsync
        self.inbox.put_nowait(CCM(type=CCM.RESPONSE, payload=payload,
                                  txid=request.txid, channel_id=request.channel_id))

    def execute(self, *args: bytes) -> asyncio.Future[pb.Message]:
        key = (CHANNEL, TXID)
        if key in self.contexts:  # TXContexts.Create: "txid exists"
            raise AssertionError("the peer refuses a second context for one txid")
        future: asyncio.Future[pb.Message] = asyncio.get_running_loop().create_future()
        self.contexts[key] = future
        self.inbox.put_nowait(CCM(
            type=CCM.TRANSACTION, txid=TXID, channel_id=CHANNEL,
            payload=pb.chaincode.ChaincodeInput(args=list(args)).SerializeToString()))
        return future


class ReadOne:
    """Reads key ``k`` and answers the value: each storage call does a request like it."""

    async def init(self, stub: Stub) -> Response:
        return success()

    async def invoke(self, stub: Stub) -> Response:
        return success((await stub.get_state("k")) or b"-")


async def _serve(peer: PeerSide, chaincode: object = None) -> tuple[Handler, asyncio.Task[None]]:
    handler = Handler(peer, chaincode or ReadOne(), "dtoken-storage:abc", label="[storage]")
    peer.inbox.put_nowait(CCM(type=CCM.REGISTERED))
    peer.inbox.put_nowait(CCM(type=CCM.READY))
    return handler, asyncio.create_task(handler.run())


async def _stop(peer: PeerSide, run: asyncio.Task[None]) -> None:
    peer.inbox.put_nowait(None)
    await asyncio.wait_for(run, 5)


def _value(message: pb.Message) -> bytes:
    assert message.type == CCM.COMPLETED, pb.type_name(message.type)
    return bytes(pb.proposal_response.Response.FromString(message.payload).payload)


async def test_the_next_call_with_the_same_txid_is_answered_when_the_first_resumes_late() -> None:
    """The hang of docs/architecture.md ("A storage call that hangs"): the peer reads the
    first storage call's COMPLETED and sends the next call of the same transaction, which the
    handler registers, before the first call's task resumes from its write (gRPC completes
    the read first under load). The first call's clean-up must not unregister the second,
    or the peer's answer to the second call's request is dropped and the peer waits out its
    30 s execute timeout."""
    peer = PeerSide()
    handler, run = await _serve(peer)
    second: list[asyncio.Future[pb.Message]] = []
    second_sent = asyncio.Event()

    async def next_call_before_the_write_returns(message: pb.Message) -> None:
        peer.on_completed = None
        second.append(peer.execute(b"read"))  # the contract's next storage call
        second_sent.set()
        await wait_for(lambda: handler.active_transactions == 1)  # registered
        for _ in range(10):  # and its task waits for the stream, behind this write
            await asyncio.sleep(0)

    peer.on_completed = next_call_before_the_write_returns
    try:
        first = peer.execute(b"read")
        assert _value(await asyncio.wait_for(first, 5)) == b"-"
        await asyncio.wait_for(second_sent.wait(), 5)
        assert _value(await asyncio.wait_for(second[0], 5)) == b"-"
        assert peer.violations == []
        assert handler.active_transactions == 0
    finally:
        await _stop(peer, run)


async def test_a_request_left_in_flight_is_answered_before_completed() -> None:
    """A request still in flight when the chaincode returns: the stray fails at once, but
    COMPLETED waits for the peer's answer. Sent earlier, the peer would take the next call
    of the same txid while the stray is still active there and drop that call's request,
    and the stray's late answer would reach the next call as if it were its own."""
    peer = PeerSide()
    strays: list[asyncio.Task[bytes | None]] = []
    pending: list[pb.Message] = []

    class LeaveBehind:
        async def init(self, stub: Stub) -> Response:
            return success()

        async def invoke(self, stub: Stub) -> Response:
            if not strays:
                strays.append(asyncio.create_task(stub.get_state("stray")))
                await asyncio.sleep(0.01)
                return success(b"done")
            return success((await stub.get_state("k")) or b"-")

    async def hold_first(request: pb.Message) -> None:
        if not pending:
            pending.append(request)
        else:
            peer.answer(request, b"mine")

    peer.on_request = hold_first
    _, run = await _serve(peer, LeaveBehind())
    try:
        first = peer.execute(b"f")
        await asyncio.sleep(0.1)
        assert not first.done(), "COMPLETED was sent with a request still in flight"
        with pytest.raises(Exception, match="completed"):
            await asyncio.wait_for(strays[0], 5)
        peer.answer(pending[0], b"late")
        assert _value(await asyncio.wait_for(first, 5)) == b"done"
        second = peer.execute(b"f")
        assert _value(await asyncio.wait_for(second, 5)) == b"mine"
        assert peer.violations == []
    finally:
        await _stop(peer, run)


async def test_a_dropped_answer_names_the_handler_and_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The warning says which stream (the server's label names the package) dropped what,
    and what the transaction last asked, so the next occurrence is diagnosable."""
    peer = PeerSide()
    _, run = await _serve(peer)
    try:
        with caplog.at_level(logging.WARNING, logger="fabshim.handler"):
            assert _value(await asyncio.wait_for(peer.execute(b"read"), 5)) == b"-"
            peer.inbox.put_nowait(CCM(type=CCM.RESPONSE, txid=TXID, channel_id=CHANNEL))
            peer.inbox.put_nowait(CCM(type=CCM.ERROR, txid="ghost", channel_id=CHANNEL))
            await asyncio.sleep(0.05)
        lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(lines) == 2
        assert "[storage]" in lines[0]
        assert "RESPONSE" in lines[0]
        assert "GET_STATE" in lines[0]  # the finished transaction's last request
        assert "[storage]" in lines[1]
        assert "ERROR" in lines[1]
        assert "no transaction" in lines[1]
    finally:
        await _stop(peer, run)


async def test_a_request_abandoned_by_its_caller_holds_the_next_one_until_answered() -> None:
    """A chaincode that stops waiting for a request (``asyncio.wait_for`` around a stub call)
    and asks again: the second request goes out only after the peer answered the first
    (the peer would drop it otherwise), and gets its own answer, not the first one's."""
    peer = PeerSide()
    held: list[pb.Message] = []

    class Impatient:
        async def init(self, stub: Stub) -> Response:
            return success()

        async def invoke(self, stub: Stub) -> Response:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(stub.get_state("slow"), 0.01)
            return success((await stub.get_state("k")) or b"-")

    async def hold_the_slow_one(request: pb.Message) -> None:
        if pb.shim.GetState.FromString(request.payload).key == "slow":
            held.append(request)
            asyncio.get_running_loop().call_later(0.1, peer.answer, request, b"slow-value")
        else:
            peer.answer(request, b"k-value")

    peer.on_request = hold_the_slow_one
    _, run = await _serve(peer, Impatient())
    try:
        assert _value(await asyncio.wait_for(peer.execute(b"f"), 5)) == b"k-value"
        assert held
        assert peer.violations == []
    finally:
        await _stop(peer, run)
