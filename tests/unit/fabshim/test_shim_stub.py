"""Every stub call over the real protocol against the fake peer, batching on and off."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2
from fabshim import (
    InvalidArgumentError,
    InvokeChaincodeError,
    KeyEndorsementPolicy,
    PeerError,
    Response,
    Stub,
    TransactionClosedError,
    create_composite_key,
    success,
)
from fabshim.testing import make_identity
from unit.fabshim.shim_fakepeer import FakePeer, completed, errored
from unit.fabshim.shim_harness import connected

Body = Callable[[Stub], Awaitable[Any]]


class Script:
    """A chaincode running the coroutine registered for the function name; the result
    (bytes, str or None) becomes the payload."""

    def __init__(self, **bodies: Body) -> None:
        self.bodies = bodies

    async def init(self, stub: Stub) -> Response:
        return await self.invoke(stub)

    async def invoke(self, stub: Stub) -> Response:
        result = await self.bodies[stub.function](stub)
        if isinstance(result, Response):
            return result
        if isinstance(result, str):
            result = result.encode()
        return success(result or b"")


def batching_peer(**kwargs: Any) -> FakePeer:
    return FakePeer(use_write_batch=True, max_size_write_batch=1000, **kwargs)


PEERS = {
    "plain": lambda: FakePeer(),
    "batching": lambda: FakePeer(
        use_write_batch=True,
        max_size_write_batch=2,
        use_get_multiple_keys=True,
        max_size_get_multiple_keys=2,
    ),
}


@pytest.fixture(params=sorted(PEERS))
def peer(request: pytest.FixtureRequest) -> FakePeer:
    return PEERS[request.param]()


# ---------------------------------------------------------------------------- public state


async def test_put_get_delete_and_missing_keys(peer: FakePeer) -> None:
    async def write(stub: Stub) -> None:
        await stub.put_state("a", b"1")
        await stub.put_state("b", b"2")
        # Reads see committed state only: the write above is not visible yet.
        assert await stub.get_state("a") is None

    async def read(stub: Stub) -> str:
        values = [await stub.get_state(k) for k in ("a", "b", "zz")]
        return repr(values)

    async def delete(stub: Stub) -> None:
        await stub.del_state("a")
        await stub.put_state("b", b"")  # an empty value deletes (Fabric's rule)

    script = Script(write=write, read=read, delete=delete)
    async with connected(script, peer) as (_, peer):
        assert (await peer.execute("write")).status == 200
        assert (await peer.execute("read")).payload == b"[b'1', b'2', None]"
        assert (await peer.execute("delete")).status == 200
        assert (await peer.execute("read")).payload == b"[None, None, None]"
        assert peer.violations == []


async def test_get_multiple_states_uses_get_state_multiple_in_chunks_when_offered() -> None:
    keys = [f"k{i}" for i in range(5)]

    async def read(stub: Stub) -> str:
        return repr(await stub.get_multiple_states(keys))

    for peer, expected_requests in (
        (FakePeer(), ["GET_STATE"] * 5),
        (
            FakePeer(use_get_multiple_keys=True, max_size_get_multiple_keys=2),
            ["GET_STATE_MULTIPLE"] * 3,
        ),
    ):
        peer.state[""].update({"k1": b"one", "k4": b"four"})
        async with connected(Script(read=read), peer) as (_, peer):
            result = await peer.execute("read", tx_id=f"tx-{len(expected_requests)}")
            assert result.payload == b"[None, b'one', None, None, b'four']"
            assert peer.requests_of(f"tx-{len(expected_requests)}") == expected_requests


async def test_get_multiple_states_of_nothing_sends_nothing(peer: FakePeer) -> None:
    async def read(stub: Stub) -> str:
        return repr(await stub.get_multiple_states([]))

    async with connected(Script(read=read), peer) as (_, peer):
        result = await peer.execute("read", tx_id="t")
        assert result.payload == b"[]"
        assert peer.requests_of("t") == []


async def test_invalid_keys_are_refused_before_reaching_the_peer(peer: FakePeer) -> None:
    async def bad(stub: Stub) -> str:
        outcomes = []
        for call in (
            lambda: stub.put_state("", b"x"),
            lambda: stub.get_state(""),
            lambda: stub.put_private_data("", "k", b"x"),
            lambda: stub.get_state_by_range("\x00a", "b"),
            lambda: stub.get_multiple_states("abc"),  # type: ignore[arg-type]
            lambda: stub.get_state_by_range_with_pagination("a", "b", 0),
        ):
            try:
                await call()
            except InvalidArgumentError:
                outcomes.append("refused")
        return ",".join(outcomes)

    async with connected(Script(bad=bad), peer) as (_, peer):
        result = await peer.execute("bad", tx_id="t")
        assert result.payload == b",".join([b"refused"] * 6)
        assert peer.requests_of("t") == []


# ---------------------------------------------------------------------------- range queries


async def test_range_iteration_fetches_pages_lazily_and_needs_no_close_when_drained() -> None:
    peer = FakePeer(max_result_limit=3)
    peer.state[""].update({k: k.upper().encode() for k in "abcdefg"})
    snapshots: list[list[str]] = []

    async def scan(stub: Stub) -> str:
        iterator = await stub.get_state_by_range("b", "g")
        keys = []
        async for kv in iterator:
            keys.append(kv.key)
            if len(keys) == 2:
                snapshots.append(peer.requests_of(stub.tx_id))
        await iterator.aclose()
        return "".join(keys)

    async with connected(Script(scan=scan), peer) as (_, peer):
        result = await peer.execute("scan", tx_id="t")
        assert result.payload == b"bcdef"
        assert snapshots == [["GET_STATE_BY_RANGE"]]
        assert peer.requests_of("t") == ["GET_STATE_BY_RANGE", "QUERY_STATE_NEXT"]


async def test_closing_an_unfinished_iterator_tells_the_peer() -> None:
    peer = FakePeer(max_result_limit=2)
    peer.state[""].update({k: b"v" for k in "abcde"})

    async def first(stub: Stub) -> str:
        async with await stub.get_state_by_range("", "") as iterator:
            async for kv in iterator:
                return kv.key
        return "none"

    async with connected(Script(first=first), peer) as (_, peer):
        result = await peer.execute("first", tx_id="t")
        assert result.payload == b"a"
        assert peer.requests_of("t") == ["GET_STATE_BY_RANGE", "QUERY_STATE_CLOSE"]


async def test_empty_range_start_excludes_composite_keys(peer: FakePeer) -> None:
    peer.state[""].update({"a": b"1", create_composite_key("acct", ["x"]): b"2"})

    async def scan(stub: Stub) -> str:
        return ",".join([kv.key async for kv in await stub.get_state_by_range("", "")])

    async with connected(Script(scan=scan), peer) as (_, peer):
        assert (await peer.execute("scan")).payload == b"a"


async def test_paginated_range_walks_with_bookmarks(peer: FakePeer) -> None:
    peer.state[""].update({k: k.encode() for k in "abcde"})

    async def page(stub: Stub) -> str:
        bookmark = stub.parameters[0] if stub.parameters else ""
        iterator, meta = await stub.get_state_by_range_with_pagination("a", "", 2, bookmark)
        keys = "".join([kv.key async for kv in iterator])
        return f"{keys}/{meta.fetched_records_count}/{meta.bookmark}"

    async with connected(Script(page=page), peer) as (_, peer):
        assert (await peer.execute("page")).payload == b"ab/2/c"
        assert (await peer.execute("page", "c")).payload == b"cd/2/e"
        assert (await peer.execute("page", "e")).payload == b"e/1/"


async def test_partial_composite_key_queries(peer: FakePeer) -> None:
    keys = {
        create_composite_key("acct", ["bankA", "1"]): b"A1",
        create_composite_key("acct", ["bankA", "2"]): b"A2",
        create_composite_key("acct", ["bankB", "1"]): b"B1",
        create_composite_key("other", ["bankA"]): b"O",
    }
    peer.state[""].update(keys)

    async def query(stub: Stub) -> str:
        found = []
        async for kv in await stub.get_state_by_partial_composite_key("acct", ["bankA"]):
            object_type, attrs = stub.split_composite_key(kv.key)
            found.append(f"{object_type}:{'/'.join(attrs)}={kv.value.decode()}")
        iterator, meta = await stub.get_state_by_partial_composite_key_with_pagination(
            "acct", [], 2
        )
        page = [kv.value.decode() async for kv in iterator]
        return f"{','.join(found)}|{','.join(page)}|{meta.fetched_records_count}"

    async with connected(Script(query=query), peer) as (_, peer):
        result = await peer.execute("query")
        assert result.payload == b"acct:bankA/1=A1,acct:bankA/2=A2|A1,A2|2"


async def test_all_composite_keys_with_pagination(peer: FakePeer) -> None:
    peer.state[""].update(
        {"plain": b"p", create_composite_key("a", ["1"]): b"x", create_composite_key("b", []): b"y"}
    )

    async def query(stub: Stub) -> str:
        iterator, _ = await stub.get_all_states_composite_key_with_pagination(10)
        return ",".join([kv.value.decode() async for kv in iterator])

    async with connected(Script(query=query), peer) as (_, peer):
        assert (await peer.execute("query")).payload == b"x,y"


# ---------------------------------------------------------------------------- rich queries


async def test_rich_query_refused_by_a_leveldb_peer_raises_a_clear_error() -> None:
    async def query(stub: Stub) -> str:
        try:
            await stub.get_query_result('{"selector":{"owner":"x"}}')
        except PeerError as exc:
            return exc.message
        return "no error"

    async with connected(Script(query=query), FakePeer()) as (_, peer):
        result = await peer.execute("query")
        assert b"ExecuteQuery not supported for leveldb" in result.payload


async def test_rich_query_with_pagination_on_a_couchdb_peer() -> None:
    peer = FakePeer(couchdb=True, max_result_limit=2)
    peer.state[""].update(
        {
            "k1": b'{"owner":"alice","n":1}',
            "k2": b'{"owner":"bob","n":2}',
            "k3": b'{"owner":"alice","n":3}',
            "k4": b'{"owner":"alice","n":4}',
            "k5": b"not json",
        }
    )

    async def query(stub: Stub) -> str:
        selector = '{"selector":{"owner":"alice"}}'
        everything = [kv.key async for kv in await stub.get_query_result(selector)]
        return ",".join(everything)

    async def page(stub: Stub) -> str:
        bookmark = stub.parameters[0] if stub.parameters else ""
        iterator, meta = await stub.get_query_result_with_pagination(
            '{"selector":{"n":{"$gt":1}}}', 2, bookmark
        )
        return ",".join([kv.key async for kv in iterator]) + "/" + meta.bookmark

    async with connected(Script(query=query, page=page), peer) as (_, peer):
        assert (await peer.execute("query")).payload == b"k1,k3,k4"
        assert (await peer.execute("page")).payload == b"k2,k3/k3"
        assert (await peer.execute("page", "k3")).payload == b"k4/"


# ---------------------------------------------------------------------------- history


async def test_history_for_key_is_newest_first(peer: FakePeer) -> None:
    async def write(stub: Stub) -> None:
        await stub.put_state("k", stub.parameters[0].encode())

    async def delete(stub: Stub) -> None:
        await stub.del_state("k")

    async def history(stub: Stub) -> str:
        entries = [m async for m in await stub.get_history_for_key("k")]
        return ";".join(
            f"{m.tx_id}:{m.value.decode()}:{m.is_delete}:{m.timestamp is not None}" for m in entries
        )

    async with connected(Script(write=write, delete=delete, history=history), peer) as (_, p):
        await p.execute("write", "v1", tx_id="t1")
        await p.execute("write", "v2", tx_id="t2")
        await p.execute("delete", tx_id="t3")
        result = await p.execute("history")
        assert result.payload == b"t3::True:True;t2:v2:False:True;t1:v1:False:True"


async def test_long_history_is_paged_lazily() -> None:
    peer = FakePeer(max_result_limit=2)

    async def write(stub: Stub) -> None:
        await stub.put_state("k", stub.parameters[0].encode())

    async def history(stub: Stub) -> str:
        return ",".join([m.value.decode() async for m in await stub.get_history_for_key("k")])

    async with connected(Script(write=write, history=history), peer) as (_, p):
        for i in range(5):
            await p.execute("write", str(i))
        assert (await p.execute("history", tx_id="h")).payload == b"4,3,2,1,0"
        assert p.requests_of("h") == ["GET_HISTORY_FOR_KEY"] + ["QUERY_STATE_NEXT"] * 2


# ---------------------------------------------------------------------------- private data


async def test_private_data_calls(peer: FakePeer) -> None:
    async def write(stub: Stub) -> None:
        for key, value in stub.get_transient().items():
            await stub.put_private_data("coll", key, value)

    async def read(stub: Stub) -> str:
        one = await stub.get_private_data("coll", "a")
        many = await stub.get_multiple_private_data("coll", ["a", "b", "zz"])
        digest = await stub.get_private_data_hash("coll", "a")
        missing_hash = await stub.get_private_data_hash("coll", "zz")
        assert digest == hashlib.sha256(b"secret-a").digest()
        return repr((one, many, missing_hash))

    async def scan(stub: Stub) -> str:
        ranged = [kv.key async for kv in await stub.get_private_data_by_range("coll", "", "")]
        prefixed = [
            kv.value
            async for kv in await stub.get_private_data_by_partial_composite_key(
                "coll", "acct", ["x"]
            )
        ]
        return repr((ranged, prefixed))

    async def forget(stub: Stub) -> None:
        await stub.del_private_data("coll", "a")
        await stub.purge_private_data("coll", "b")

    script = Script(write=write, read=read, scan=scan, forget=forget)
    async with connected(script, peer) as (_, p):
        composite = create_composite_key("acct", ["x", "1"])
        transient = {"a": b"secret-a", "b": b"secret-b", composite: b"acct-x"}
        assert (await p.execute("write", transient=transient)).status == 200
        assert (await p.execute("read")).payload == (
            b"(b'secret-a', [b'secret-a', b'secret-b', None], None)"
        )
        assert (await p.execute("scan")).payload == b"(['a', 'b'], [b'acct-x'])"
        assert (await p.execute("forget")).status == 200
        assert set(p.state["coll"]) == {composite}


async def test_private_data_query_result_on_couchdb() -> None:
    peer = FakePeer(couchdb=True)
    peer.state["coll"] = {"k": b'{"a":1}', "j": b'{"a":2}'}

    async def query(stub: Stub) -> str:
        it = await stub.get_private_data_query_result("coll", '{"selector":{"a":2}}')
        return ",".join([kv.key async for kv in it])

    async with connected(Script(query=query), peer) as (_, peer):
        assert (await peer.execute("query")).payload == b"j"


async def test_private_data_is_refused_in_init(peer: FakePeer) -> None:
    async def setup(stub: Stub) -> str:
        try:
            await stub.get_private_data("coll", "k")
        except PeerError as exc:
            return exc.message
        return "allowed"

    async with connected(Script(setup=setup), peer) as (_, peer):
        result = await peer.execute("setup", init=True)
        assert b"private data APIs are not allowed in chaincode Init()" in result.payload


# ---------------------------------------------------------------------------- key-level policy


async def test_validation_parameters_for_public_and_private_keys(peer: FakePeer) -> None:
    policy = KeyEndorsementPolicy()
    policy.add_orgs("PEER", "BankA", "BankB")

    async def write(stub: Stub) -> None:
        await stub.put_state("pub", b"v")
        await stub.set_state_validation_parameter("pub", policy.policy())
        await stub.put_private_data("coll", "priv", b"v")
        await stub.set_private_data_validation_parameter("coll", "priv", policy.policy())

    async def read(stub: Stub) -> str:
        public = await stub.get_state_validation_parameter("pub")
        private = await stub.get_private_data_validation_parameter("coll", "priv")
        none = await stub.get_state_validation_parameter("nokey")
        assert public is not None
        assert private is not None
        return repr(
            (
                KeyEndorsementPolicy(public).list_orgs(),
                KeyEndorsementPolicy(private).list_orgs(),
                none,
            )
        )

    async with connected(Script(write=write, read=read), peer) as (_, peer):
        assert (await peer.execute("write")).status == 200
        assert (await peer.execute("read")).payload == (
            b"(['BankA', 'BankB'], ['BankA', 'BankB'], None)"
        )


# ---------------------------------------------------------------------------- invoke chaincode


async def test_invoke_chaincode(peer: FakePeer) -> None:
    calls: list[tuple[list[bytes]]] = []

    def other(args: list[bytes]) -> Any:
        calls.append((args,))
        return {
            b"ok": completed(200, b"hello"),
            b"refuse": completed(500, message="NOPE: refused"),
            b"crash": errored("called chaincode crashed"),
        }[args[0]]

    peer.chaincodes["other"] = other
    peer.chaincodes["other/ch2"] = lambda args: completed(200, b"cross-channel")

    async def call(stub: Stub) -> str:
        out = []
        ok = await stub.invoke_chaincode("other", ["ok", b"\x01"])
        out.append(ok.payload.decode())
        out.append((await stub.invoke_chaincode("other", ["ok"], channel="ch2")).payload.decode())
        try:
            await stub.invoke_chaincode("other", ["refuse"])
        except InvokeChaincodeError as exc:
            out.append(f"{exc.status}:{exc.message}")
        for target in ("other", "missing"):
            try:
                await stub.invoke_chaincode(target, ["crash"])
            except PeerError as exc:
                out.append(exc.message)
        return "|".join(out)

    async with connected(Script(call=call), peer) as (_, peer):
        result = await peer.execute("call")
        parts = result.payload.decode().split("|")
        assert parts[:4] == [
            "hello",
            "cross-channel",
            "500:NOPE: refused",
            "called chaincode crashed",
        ]
        assert "chaincode missing not found" in parts[4]
        assert calls[0] == ([b"ok", b"\x01"],)


# ---------------------------------------------------------------------------- write batching


async def mixed_writes(stub: Stub) -> None:
    for i in range(5):
        await stub.put_state(f"k{i}", f"v{i}".encode())
    await stub.put_state("k0", b"overwritten")
    await stub.del_state("k1")
    await stub.put_private_data("coll", "p", b"pv")
    await stub.set_state_validation_parameter("k2", b"policy")
    stub.set_event("done", b"")


async def test_write_batching_sends_one_batch_and_gives_the_same_state() -> None:
    outcomes = []
    for peer, tx in ((FakePeer(), "plain"), (batching_peer(), "batched")):
        async with connected(Script(write=mixed_writes), peer) as (_, p):
            result = await p.execute("write", tx_id=tx)
            assert result.status == 200
            assert result.event == ("done", b"")
            outcomes.append((p.state, p.metadata, p.requests_of(tx)))
    (plain_state, plain_meta, plain_requests), (batch_state, batch_meta, batch_requests) = outcomes
    assert batch_state == plain_state
    assert batch_meta == plain_meta
    assert plain_requests == ["PUT_STATE"] * 6 + ["DEL_STATE", "PUT_STATE", "PUT_STATE_METADATA"]
    assert batch_requests == ["WRITE_BATCH_STATE"]


async def test_write_batches_respect_the_peer_maximum() -> None:
    peer = FakePeer(use_write_batch=True, max_size_write_batch=3)
    async with connected(Script(write=mixed_writes), peer) as (_, p):
        assert (await p.execute("write", tx_id="t")).status == 200
        # 5 data keys (k0 deduplicated) + 1 private + 1 metadata = 7 records -> 3 batches.
        assert p.requests_of("t") == ["WRITE_BATCH_STATE"] * 3


async def test_init_does_not_batch() -> None:
    async with connected(Script(write=mixed_writes), batching_peer()) as (_, p):
        result = await p.execute("write", tx_id="t", init=True)
        assert not result.completed
        assert "not allowed in chaincode Init()" in result.error_text
        # Private data is refused in Init right at the write, as without batching.
        assert p.requests_of("t")[-1] == "PUT_STATE"
        assert "WRITE_BATCH_STATE" not in p.requests_of("t")


async def test_a_refused_batch_fails_the_transaction() -> None:
    peer = batching_peer()
    peer.refusals["WRITE_BATCH_STATE"] = "collection coll not defined"

    async with connected(Script(write=mixed_writes), peer) as (_, p):
        result = await p.execute("write")
        assert result.status == 500
        assert "collection coll not defined" in result.error_text
        assert p.state == {"": {}}


async def write_then_private_query(stub: Stub) -> str:
    await stub.put_state("k", b"v")
    try:
        await stub.get_private_data_by_range("coll", "", "")
    except PeerError as exc:
        return "query refused: " + exc.message.split(": ", 2)[-1]
    return "query allowed"


async def private_query_then_write(stub: Stub) -> str:
    await stub.get_private_data_by_range("coll", "", "")
    try:
        await stub.put_state("k", b"v")
    except PeerError as exc:
        return "write refused: " + exc.message.split(": ", 2)[-1]
    return "write allowed"


async def paginated_query_then_write(stub: Stub) -> str:
    await stub.get_state_by_range_with_pagination("", "", 5)
    try:
        await stub.put_private_data("coll", "k", b"v")
    except PeerError as exc:
        return "write refused: " + exc.message.split(": ", 2)[-1]
    return "write allowed"


@pytest.mark.parametrize(
    "body", [write_then_private_query, private_query_then_write, paginated_query_then_write]
)
async def test_read_only_rules_behave_the_same_with_and_without_batching(body: Body) -> None:
    answers = []
    for peer in (FakePeer(), batching_peer()):
        async with connected(Script(run=body), peer) as (_, p):
            answers.append((await p.execute("run")).payload)
    assert answers[0] == answers[1]
    assert b"refused" in answers[0]
    assert b"unsuppored transaction" in answers[0]


async def test_finish_write_batch_sends_now_and_start_resumes() -> None:
    snapshots: list[list[str]] = []

    async def body(stub: Stub) -> None:
        assert stub.write_batching
        await stub.put_state("a", b"1")
        await stub.finish_write_batch()
        snapshots.append(list(peer.requests_of(stub.tx_id)))
        assert not stub.write_batching
        await stub.put_state("b", b"2")
        stub.start_write_batch()
        await stub.put_state("c", b"3")

    peer = batching_peer()
    async with connected(Script(run=body), peer) as (_, p):
        assert (await p.execute("run", tx_id="t")).status == 200
        assert snapshots == [["WRITE_BATCH_STATE"]]
        assert p.requests_of("t") == ["WRITE_BATCH_STATE", "PUT_STATE", "WRITE_BATCH_STATE"]
        assert p.state[""] == {"a": b"1", "b": b"2", "c": b"3"}


async def test_invoke_chaincode_flushes_pending_writes_first() -> None:
    peer = batching_peer()
    peer.chaincodes["other"] = lambda args: completed(200, b"")

    async def body(stub: Stub) -> None:
        await stub.put_state("a", b"1")
        await stub.invoke_chaincode("other", ["f"])

    async with connected(Script(run=body), peer) as (_, p):
        assert (await p.execute("run", tx_id="t")).status == 200
        assert p.requests_of("t") == ["WRITE_BATCH_STATE", "INVOKE_CHAINCODE"]


async def test_error_response_does_not_send_the_batch() -> None:
    async def body(stub: Stub) -> Response:
        await stub.put_state("a", b"1")
        return Response(400, "BAD_REQUEST: no")

    async with connected(Script(run=body), batching_peer()) as (_, p):
        assert (await p.execute("run", tx_id="t")).status == 400
        assert p.requests_of("t") == []


# ---------------------------------------------------------------------------- proposal


async def test_proposal_fields_reach_the_stub(peer: FakePeer) -> None:
    identity = make_identity("BankA", "teller")
    when = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    seen: dict[str, Any] = {}

    async def inspect(stub: Stub) -> None:
        seen.update(
            creator=stub.get_creator(),
            transient=dict(stub.get_transient()),
            binding=stub.get_binding(),
            when=stub.tx_datetime,
            seconds=stub.get_tx_timestamp().seconds,
            proposal=stub.get_signed_proposal(),
            tx_id=stub.tx_id,
            channel=stub.channel_id,
            function=stub.get_function_and_parameters(),
            strings=stub.get_string_args(),
        )

    async with connected(Script(inspect=inspect), peer) as (_, p):
        await p.execute(
            "inspect",
            "x",
            tx_id="abc",
            channel_id="ch9",
            creator=identity.serialized(),
            transient={"salt": b"\x01\x02"},
            timestamp=when,
        )
    proposal = proposal_pb2.Proposal.FromString(seen["proposal"].proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    expected_binding = hashlib.sha256(
        signature_header.nonce + identity.serialized() + (0).to_bytes(8, "little")
    ).digest()
    assert seen["creator"] == identity.serialized()
    assert seen["transient"] == {"salt": b"\x01\x02"}
    assert seen["binding"] == expected_binding
    assert seen["when"] == when
    assert seen["seconds"] == int(when.timestamp())
    assert (seen["tx_id"], seen["channel"]) == ("abc", "ch9")
    assert seen["function"] == ("inspect", ["x"])
    assert seen["strings"] == ["inspect", "x"]


async def test_non_utf8_arguments_are_refused_as_strings(peer: FakePeer) -> None:
    async def inspect(stub: Stub) -> str:
        raw = stub.get_args()
        try:
            stub.get_string_args()
        except InvalidArgumentError as exc:
            return f"{len(raw)}:{exc}"
        return "decoded"

    class Raw(Script):
        async def invoke(self, stub: Stub) -> Response:
            return success((await inspect(stub)).encode())

    async with connected(Raw(), peer) as (_, p):
        result = await p.execute("f", b"\xff")
        assert result.payload == b"2:argument 1 is not valid UTF-8"


async def test_a_stub_used_after_its_transaction_is_closed(peer: FakePeer) -> None:
    kept: list[Stub] = []

    async def keep(stub: Stub) -> None:
        kept.append(stub)

    async with connected(Script(keep=keep), peer) as (_, p):
        await p.execute("keep")
        with pytest.raises(TransactionClosedError):
            await kept[0].get_state("k")


async def test_concurrent_calls_inside_one_transaction_are_serialized(peer: FakePeer) -> None:
    peer.request_delay = 0.001
    peer.state[""].update({f"k{i}": b"x" for i in range(6)})

    async def body(stub: Stub) -> str:
        results = await asyncio.gather(
            stub.get_state("k0"),
            stub.get_multiple_states(["k1", "k2", "k3"]),
            stub.put_state("w", b"1"),
            stub.get_private_data_hash("coll", "nothing"),
            stub.get_state_validation_parameter("k4"),
        )
        return repr(results)

    async with connected(Script(run=body), peer) as (_, p):
        result = await p.execute("run")
        assert result.payload == b"[b'x', [b'x', b'x', b'x'], None, None, None]"
        assert p.violations == []
