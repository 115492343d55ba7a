"""The handler over a real gRPC stream: handshake, KEEPALIVE, routing, errors, concurrency."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from fabshim import (
    ChaincodeServer,
    HandlerState,
    PeerError,
    PeerFeatures,
    Response,
    ServerConfig,
    Stub,
    TransactionClosedError,
    error,
    success,
)
from unit.fabshim.shim_fakepeer import CCM, FakePeer, T
from unit.fabshim.shim_harness import connected, wait_for

Body = Callable[[Stub], Awaitable[Response]]


class FnChaincode:
    """A chaincode whose init and invoke are given functions."""

    def __init__(self, invoke: Body, init: Body | None = None) -> None:
        self._invoke = invoke
        self._init = init

    async def init(self, stub: Stub) -> Response:
        if self._init is None:
            return success(b"init-ok")
        return await self._init(stub)

    async def invoke(self, stub: Stub) -> Response:
        return await self._invoke(stub)


async def echo_args(stub: Stub) -> Response:
    return success(b"|".join(stub.get_args()))


# ---------------------------------------------------------------------------- handshake


async def test_register_carries_the_chaincode_id_and_reaches_ready() -> None:
    async with connected(FnChaincode(echo_args), chaincode_id="bank:abc123") as (server, peer):
        assert peer.registered_name == "bank:abc123"
        (handler,) = server.handlers
        assert handler.state is HandlerState.READY
        assert handler.features == PeerFeatures()


async def test_ready_payload_turns_features_on_with_the_peer_maximums() -> None:
    peer = FakePeer(
        use_write_batch=True,
        max_size_write_batch=7,
        use_get_multiple_keys=True,
        max_size_get_multiple_keys=0,
    )
    async with connected(FnChaincode(echo_args), peer) as (server, _):
        (handler,) = server.handlers
        assert handler.features == PeerFeatures(True, 7, True, 100)


async def test_server_can_opt_out_of_peer_features() -> None:
    peer = FakePeer(use_write_batch=True, use_get_multiple_keys=True)
    async with connected(
        FnChaincode(echo_args), peer, write_batching=False, multi_key_reads=False
    ) as (server, _):
        (handler,) = server.handlers
        assert handler.features == PeerFeatures()


def test_unreadable_ready_payload_offers_nothing() -> None:
    assert PeerFeatures.from_ready_payload(b"\xff\xff\xff") == PeerFeatures()


async def test_keepalive_is_answered_in_ready_state() -> None:
    async with connected(FnChaincode(echo_args)) as (_, peer):
        await peer.send(CCM(type=T.Value("KEEPALIVE")))
        await asyncio.wait_for(peer.keepalive_seen.wait(), 5)
        assert peer.keepalive_replies == 1


async def test_keepalive_is_answered_before_registration_completes() -> None:
    peer = FakePeer()
    server = ChaincodeServer(
        FnChaincode(echo_args), ServerConfig("cc:1", "127.0.0.1:0", None), grace=0
    )
    port = await server.start()
    try:
        await peer.connect(f"127.0.0.1:{port}", handshake=False)
        peer.start_reader()
        await peer.send(CCM(type=T.Value("KEEPALIVE")))
        await asyncio.wait_for(peer.keepalive_seen.wait(), 5)
        (handler,) = server.handlers
        assert handler.state is HandlerState.CREATED
    finally:
        await peer.close()
        await server.stop(0)


async def test_a_transaction_before_registration_ends_the_stream_with_an_error() -> None:
    peer = FakePeer()
    server = ChaincodeServer(
        FnChaincode(echo_args), ServerConfig("cc:1", "127.0.0.1:0", None), grace=0
    )
    port = await server.start()
    try:
        await peer.connect(f"127.0.0.1:{port}", handshake=False)
        peer.start_reader()
        _, message = peer.begin("f")
        await peer.send(message)
        await asyncio.wait_for(peer.stream_ended.wait(), 5)
        errors = [m for m in peer.received if m.type == T.Value("ERROR")]
        assert len(errors) == 1
        assert b"cannot handle TRANSACTION in state created" in errors[0].payload
        await wait_for(lambda: not server.handlers)
    finally:
        await peer.close()
        await server.stop(0)


async def test_an_unexpected_message_in_ready_state_ends_the_stream() -> None:
    async with connected(FnChaincode(echo_args)) as (server, peer):
        await peer.send(CCM(type=T.Value("GET_STATE"), txid="t1", channel_id="ch"))
        await asyncio.wait_for(peer.stream_ended.wait(), 5)
        assert any(
            m.type == T.Value("ERROR") and b"cannot handle GET_STATE" in m.payload
            for m in peer.received
        )
        await wait_for(lambda: not server.handlers)


async def test_a_peer_error_during_registration_is_logged_and_ends_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = FakePeer()
    server = ChaincodeServer(
        FnChaincode(echo_args), ServerConfig("cc:1", "127.0.0.1:0", None), grace=0
    )
    port = await server.start()
    try:
        await peer.connect(f"127.0.0.1:{port}", handshake=False)
        peer.start_reader()
        await peer.send(CCM(type=T.Value("ERROR"), payload=b"chaincode not approved"))
        await asyncio.wait_for(peer.stream_ended.wait(), 5)
        assert "chaincode not approved" in caplog.text
    finally:
        await peer.close()
        await server.stop(0)


# ---------------------------------------------------------------------------- transactions


async def test_transaction_arguments_come_back_in_completed() -> None:
    async with connected(FnChaincode(echo_args)) as (_, peer):
        result = await peer.execute("fn", "a", b"\x00\xff")
        assert result.completed
        assert result.status == 200
        assert result.payload == b"fn|a|\x00\xff"
        assert result.message.txid
        assert result.message.channel_id == "testchannel"


async def test_init_runs_the_init_method() -> None:
    async with connected(FnChaincode(echo_args)) as (_, peer):
        result = await peer.execute("whatever", init=True)
        assert result.completed
        assert result.payload == b"init-ok"


async def test_init_error_response_becomes_an_error_message() -> None:
    async def failing_init(stub: Stub) -> Response:
        return error("INIT_REFUSED: not now")

    async with connected(FnChaincode(echo_args, init=failing_init)) as (_, peer):
        result = await peer.execute("init", init=True)
        assert not result.completed
        assert result.error_text == "INIT_REFUSED: not now"


async def test_error_response_of_a_transaction_is_completed_with_its_status() -> None:
    async def refuse(stub: Stub) -> Response:
        return Response(status=403, message="FORBIDDEN: no")

    async with connected(FnChaincode(refuse)) as (_, peer):
        result = await peer.execute("f")
        assert result.completed
        assert (result.status, result.error_text) == (403, "FORBIDDEN: no")


async def test_a_chaincode_exception_becomes_an_error_response_and_the_stream_survives() -> None:
    async def explode(stub: Stub) -> Response:
        if stub.function == "boom":
            raise RuntimeError("INSUFFICIENT_FUNDS: balance too low")
        return success(b"fine")

    async with connected(FnChaincode(explode)) as (server, peer):
        failed = await peer.execute("boom")
        assert (failed.status, failed.error_text) == (500, "INSUFFICIENT_FUNDS: balance too low")
        after = await peer.execute("other")
        assert after.payload == b"fine"
        assert len(server.handlers) == 1


async def test_a_chaincode_returning_no_response_gets_an_error_response() -> None:
    async def wrong(stub: Stub) -> Response:
        return "not a response"  # type: ignore[return-value]

    async with connected(FnChaincode(wrong)) as (_, peer):
        result = await peer.execute("f")
        assert result.status == 500
        assert "no Response" in result.error_text


async def test_a_response_with_wrongly_typed_fields_gets_an_error_response() -> None:
    async def wrong(stub: Stub) -> Response:
        return Response(200, payload="text, not bytes")  # type: ignore[arg-type]

    async with connected(FnChaincode(wrong)) as (_, peer):
        result = await peer.execute("f")
        assert (result.status, result.error_text) == (
            500,
            "chaincode returned a malformed Response",
        )
        assert (await peer.execute("g")).status == 500


async def test_a_peer_error_raises_in_the_chaincode() -> None:
    seen: list[BaseException] = []

    async def read(stub: Stub) -> Response:
        try:
            await stub.get_state("k")
        except PeerError as exc:
            seen.append(exc)
            raise
        return success(b"unreachable")

    async with connected(FnChaincode(read)) as (_, peer):
        peer.refusals["GET_STATE"] = "ledger is closed"
        result = await peer.execute("f")
        assert result.status == 500
        assert "GET_STATE failed" in result.error_text
        assert "ledger is closed" in result.error_text
        (exc,) = seen
        assert isinstance(exc, PeerError)
        assert exc.request == "GET_STATE"


async def test_transactions_run_concurrently() -> None:
    started: list[str] = []
    both_started = asyncio.Event()

    async def rendezvous(stub: Stub) -> Response:
        started.append(stub.tx_id)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 5)
        return success(stub.tx_id.encode())

    async with connected(FnChaincode(rendezvous)) as (_, peer):
        first, second = await asyncio.gather(peer.execute("a"), peer.execute("b"))
        assert {first.payload, second.payload} == {m.encode() for m in started}


async def test_same_txid_on_two_channels_are_routed_apart() -> None:
    async def read(stub: Stub) -> Response:
        value = await stub.get_state("k")
        return success((stub.channel_id + ":").encode() + (value or b"-"))

    peer = FakePeer(request_delay=0.01)
    peer.state[""]["k"] = b"v"
    async with connected(FnChaincode(read), peer) as (_, peer):
        one, two = await asyncio.gather(
            peer.execute("f", tx_id="same", channel_id="ch1"),
            peer.execute("f", tx_id="same", channel_id="ch2"),
        )
        assert (one.payload, two.payload) == (b"ch1:v", b"ch2:v")


async def test_a_duplicate_running_transaction_is_refused() -> None:
    release = asyncio.Event()
    running = asyncio.Event()

    async def slow(stub: Stub) -> Response:
        running.set()
        await release.wait()
        return success(b"done")

    async with connected(FnChaincode(slow)) as (_, peer):
        tx, message = peer.begin("f", tx_id="dup")
        await peer.send(message)
        await asyncio.wait_for(running.wait(), 5)
        duplicate = CCM()
        duplicate.CopyFrom(message)
        await peer.send(duplicate)
        refusal = await asyncio.wait_for(tx.done, 5)
        assert refusal.type == T.Value("ERROR")
        assert b"already running" in refusal.payload
        completion = peer.expect("dup")
        release.set()
        result = await asyncio.wait_for(completion.done, 5)
        assert result.type == T.Value("COMPLETED")


async def test_requests_of_one_transaction_are_serialized() -> None:
    async def many_reads(stub: Stub) -> Response:
        values = await asyncio.gather(*(stub.get_state(f"k{i}") for i in range(10)))
        return success(b",".join(v or b"-" for v in values))

    peer = FakePeer(request_delay=0.002)
    peer.state[""].update({f"k{i}": str(i).encode() for i in range(0, 10, 2)})
    async with connected(FnChaincode(many_reads), peer) as (_, peer):
        result = await peer.execute("f")
        assert result.payload == b"0,-,2,-,4,-,6,-,8,-"
        assert peer.violations == []


async def test_a_request_left_in_flight_fails_when_the_transaction_completes() -> None:
    strays: list[asyncio.Task[bytes | None]] = []

    async def leave_behind(stub: Stub) -> Response:
        strays.append(asyncio.create_task(stub.get_state("k")))
        await asyncio.sleep(0.01)  # the stray request is now waiting for the peer
        return success(b"done")

    peer = FakePeer(request_delay=0.2)
    async with connected(FnChaincode(leave_behind), peer) as (_, peer):
        assert (await peer.execute("f")).payload == b"done"
        with pytest.raises(TransactionClosedError):
            await asyncio.wait_for(strays[0], 5)


async def test_a_response_for_no_waiting_request_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with connected(FnChaincode(echo_args)) as (_, peer):
        await peer.send(CCM(type=T.Value("RESPONSE"), txid="ghost", channel_id="testchannel"))
        result = await peer.execute("still", "alive")
        assert result.payload == b"still|alive"
        assert "RESPONSE for no waiting request" in caplog.text


async def test_a_malformed_proposal_is_answered_with_error() -> None:
    async with connected(FnChaincode(echo_args)) as (_, peer):
        tx, message = peer.begin("f")
        message.proposal.proposal_bytes = b"\xff\xff"
        await peer.send(message)
        answer = await asyncio.wait_for(tx.done, 5)
        assert answer.type == T.Value("ERROR")
        assert b"cannot start the transaction" in answer.payload


async def test_event_is_sent_with_completed() -> None:
    async def emit(stub: Stub) -> Response:
        stub.set_event("first", b"1")
        stub.set_event("Transfer", b'{"to":"B"}')
        return success()

    async with connected(FnChaincode(emit)) as (_, peer):
        result = await peer.execute("f")
        assert result.event == ("Transfer", b'{"to":"B"}')


async def test_no_event_when_none_is_set() -> None:
    async with connected(FnChaincode(echo_args)) as (_, peer):
        assert (await peer.execute("f")).event is None


async def test_peer_closing_the_stream_fails_the_waiting_request() -> None:
    outcome: list[BaseException] = []
    waiting = asyncio.Event()

    async def hang(stub: Stub) -> Response:
        waiting.set()
        try:
            await stub.get_state("k")
        except BaseException as exc:
            outcome.append(exc)
            raise
        return success()

    peer = FakePeer(request_delay=10)
    async with connected(FnChaincode(hang), peer) as (server, peer):
        tx, message = peer.begin("f")
        await peer.send(message)
        await asyncio.wait_for(waiting.wait(), 5)
        await wait_for(lambda: peer.requests_of(tx.tx_id) == ["GET_STATE"])
        await peer.close()
        await wait_for(lambda: not server.handlers)
        await wait_for(lambda: bool(outcome))
        assert type(outcome[0]).__name__ in ("StreamClosedError", "CancelledError")


# ---------------------------------------------------------------------------- logging


async def test_logs_carry_the_txid_prefix_and_never_payloads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "s3cr3t-balance-991"

    async def handle(stub: Stub) -> Response:
        await stub.put_state("account", secret.encode())
        await stub.get_state("account")
        transient = stub.get_transient()
        stub.set_event("evt", transient["salt"])
        raise RuntimeError("INSUFFICIENT_FUNDS")

    caplog.set_level(logging.DEBUG, logger="fabshim")
    async with connected(FnChaincode(handle)) as (_, peer):
        result = await peer.execute(
            "pay", secret, tx_id="abcdef0123456789", transient={"salt": secret.encode()}
        )
        assert result.status == 500
    assert secret not in caplog.text
    assert "[testchannel-abcdef01]" in caplog.text
    assert "GET_STATE" in caplog.text


async def test_server_logs_the_listening_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fabshim")
    server = ChaincodeServer(FnChaincode(echo_args), ServerConfig("cc:1", "127.0.0.1:0", None))
    port = await server.start()
    try:
        assert f"chaincode server listening on 127.0.0.1:{port}" in caplog.messages
    finally:
        await server.stop(0)


async def test_a_stream_label_names_the_package(caplog: pytest.LogCaptureFixture) -> None:
    """One process may serve several packages (one listener each): every line about a
    stream says which package it serves."""
    caplog.set_level(logging.INFO, logger="fabshim")
    async with connected(FnChaincode(echo_args), chaincode_id="dtoken-storage_hk:ab12"):
        pass
    connected_lines = [m for m in caplog.messages if m.endswith("peer connected")]
    assert connected_lines
    assert connected_lines[0].startswith("[dtoken-storage_hk stream 1 ")


# ---------------------------------------------------------------------------- shutdown


async def test_graceful_stop_lets_running_transactions_finish_and_refuses_new_ones() -> None:
    release = asyncio.Event()
    running = asyncio.Event()

    async def slow(stub: Stub) -> Response:
        running.set()
        await release.wait()
        return success(b"finished")

    async with connected(FnChaincode(slow), grace=5) as (server, peer):
        tx, message = peer.begin("f")
        await peer.send(message)
        await asyncio.wait_for(running.wait(), 5)
        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0.05)
        late = await peer.execute("late")
        assert late.error_text == "chaincode server is shutting down"
        assert not stopping.done()
        release.set()
        finished = await asyncio.wait_for(tx.done, 5)
        assert finished.type == T.Value("COMPLETED")
        await asyncio.wait_for(stopping, 5)
        await asyncio.wait_for(peer.stream_ended.wait(), 5)
