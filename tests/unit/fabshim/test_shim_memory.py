"""fabshim.testing: MemoryLedger / MemoryStub keep Fabric's rules."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from fabshim import (
    InvalidArgumentError,
    MVCCReadConflictError,
    PeerError,
    Response,
    ShimError,
    Stub,
    create_composite_key,
    error,
    success,
)
from fabshim.testing import MemoryLedger, MemoryStub, make_identity


async def test_writes_apply_on_commit_and_reads_see_committed_state() -> None:
    ledger = MemoryLedger()
    stub = ledger.stub()
    await stub.put_state("a", b"1")
    await stub.put_private_data("c", "p", b"secret")
    assert await stub.get_state("a") is None
    assert ledger.get_state("a") is None
    stub.commit()
    assert ledger.get_state("a") == b"1"
    assert ledger.get_private_data("c", "p") == b"secret"
    assert ledger.height == 1
    with pytest.raises(ShimError, match="already committed"):
        stub.commit()


async def test_empty_value_deletes() -> None:
    ledger = MemoryLedger()
    ledger.seed({"a": b"1", "b": b"2"})
    stub = ledger.stub()
    await stub.put_state("a", b"")
    await stub.del_state("b")
    stub.commit()
    assert ledger.keys() == []


async def test_mvcc_conflict_on_a_changed_read() -> None:
    ledger = MemoryLedger()
    ledger.seed({"balance": b"10"})
    first, second = ledger.stub(), ledger.stub()
    for stub in (first, second):
        value = int(await stub.get_state("balance") or b"0")
        await stub.put_state("balance", str(value - 5).encode())
    first.commit()
    with pytest.raises(MVCCReadConflictError, match="MVCC_READ_CONFLICT"):
        second.commit()
    assert ledger.get_state("balance") == b"5"


async def test_phantom_read_conflict_on_a_range() -> None:
    ledger = MemoryLedger()
    ledger.seed({"k1": b"1"})
    reader = ledger.stub()
    _ = [kv async for kv in await reader.get_state_by_range("k", "l")]
    await reader.put_state("total", b"1")
    writer = ledger.stub()
    await writer.put_state("k2", b"2")
    writer.commit()
    with pytest.raises(MVCCReadConflictError, match="PHANTOM"):
        reader.commit()


async def test_private_hash_reads_are_versioned() -> None:
    ledger = MemoryLedger()
    ledger.seed(private={"coll": {"k": b"v"}})
    checker = ledger.stub()
    assert await checker.get_private_data_hash("coll", "k") == hashlib.sha256(b"v").digest()
    await checker.put_state("seen", b"1")
    changer = ledger.stub()
    await changer.put_private_data("coll", "k", b"w")
    changer.commit()
    with pytest.raises(MVCCReadConflictError):
        checker.commit()


async def test_duplicate_transaction_id() -> None:
    ledger = MemoryLedger()
    ledger.stub(tx_id="same").commit()
    with pytest.raises(ShimError, match="DUPLICATE_TXID"):
        ledger.stub(tx_id="same").commit()


async def test_read_only_rules() -> None:
    ledger = MemoryLedger()
    writer = ledger.stub(tx_id="w")
    await writer.put_state("a", b"1")
    with pytest.raises(PeerError, match="Queries on pvt data is supported only in a read-only"):
        await writer.get_private_data_by_range("coll", "", "")
    with pytest.raises(PeerError, match="Paginated queries are supported only in a read-only"):
        await writer.get_state_by_range_with_pagination("", "", 10)

    reader = ledger.stub(tx_id="r")
    await reader.get_private_data_by_partial_composite_key("coll", "t", [])
    with pytest.raises(PeerError, match="already performed queries on pvt data") as caught:
        await reader.put_state("a", b"1")
    assert caught.value.message.startswith("PUT_STATE failed: transaction ID: r: ")

    pager = ledger.stub()
    await pager.get_state_by_partial_composite_key_with_pagination("t", [], 5)
    with pytest.raises(PeerError, match="already performed a paginated query"):
        await pager.set_state_validation_parameter("a", b"p")


async def test_private_data_refused_in_init() -> None:
    stub = MemoryLedger().stub(init=True)
    await stub.put_state("public-is-fine", b"1")
    for call in (
        stub.get_private_data("c", "k"),
        stub.put_private_data("c", "k", b"v"),
        stub.get_private_data_hash("c", "k"),
        stub.get_private_data_validation_parameter("c", "k"),
    ):
        with pytest.raises(PeerError, match="not allowed in chaincode Init"):
            await call


async def test_rich_queries_depend_on_the_state_database() -> None:
    level = MemoryLedger().stub()
    with pytest.raises(PeerError, match="ExecuteQuery not supported for leveldb"):
        await level.get_query_result('{"selector":{}}')
    couch = MemoryLedger(state_database="couchdb")
    couch.seed(
        {
            "a": b'{"bank":"A","n":1}',
            "b": b'{"bank":"B","n":2}',
            "c": b'{"bank":"A","n":3,"tags":{"vip":true}}',
        }
    )
    stub = couch.stub()
    found = [kv.key async for kv in await stub.get_query_result('{"selector":{"bank":"A"}}')]
    assert found == ["a", "c"]
    nested = await stub.get_query_result('{"selector":{"tags.vip":true}}')
    assert [kv.key async for kv in nested] == ["c"]
    either = await stub.get_query_result('{"selector":{"$or":[{"n":{"$lt":2}},{"n":{"$gte":3}}]}}')
    assert [kv.key async for kv in either] == ["a", "c"]
    with pytest.raises(InvalidArgumentError, match="selector"):
        await stub.get_query_result('{"fields":[]}')
    paged = couch.stub()
    iterator, meta = await paged.get_query_result_with_pagination(
        '{"selector":{"n":{"$in":[1,2,3]}}}', 2
    )
    assert ([kv.key async for kv in iterator], meta.bookmark) == (["a", "b"], "b")
    iterator, meta = await paged.get_query_result_with_pagination(
        '{"selector":{"n":{"$in":[1,2,3]}}}', 2, "b"
    )
    assert ([kv.key async for kv in iterator], meta.bookmark) == (["c"], "")


async def test_paging_and_lazy_iteration() -> None:
    ledger = MemoryLedger(query_batch_size=2)
    ledger.seed({f"k{i}": str(i).encode() for i in range(5)})
    stub = ledger.stub()
    keys = [kv.key async for kv in await stub.get_state_by_range("k1", "k4")]
    assert keys == ["k1", "k2", "k3"]
    iterator = await stub.get_state_by_range("", "")
    first = await iterator.__anext__()
    await iterator.aclose()
    assert first.key == "k0"
    assert [kv async for kv in iterator] == []
    await iterator.aclose()
    pages = []
    bookmark = ""
    while True:
        page_stub = ledger.stub()
        it, meta = await page_stub.get_state_by_range_with_pagination("", "", 2, bookmark)
        pages.append([kv.key for kv in await it.to_list()])
        bookmark = meta.bookmark
        if not bookmark:
            break
    assert pages == [["k0", "k1"], ["k2", "k3"], ["k4"]]


async def test_history_events_and_metadata() -> None:
    ledger = MemoryLedger()
    for value in (b"1", b"2"):
        stub = ledger.stub(timestamp=datetime(2026, 1, 1, tzinfo=UTC))
        await stub.put_state("k", value)
        stub.set_event("changed", value)
        stub.commit()
    stub = ledger.stub()
    await stub.set_state_validation_parameter("k", b"policy")
    await stub.set_state_validation_parameter("ghost", b"policy")
    stub.commit()
    assert ledger.get_metadata("", "k") == {"VALIDATION_PARAMETER": b"policy"}
    assert ledger.get_metadata("", "ghost") == {}  # dropped: the key does not exist
    stub = ledger.stub()
    await stub.put_state("k", b"3")
    stub.commit()
    assert await ledger.stub().get_state_validation_parameter("k") == b"policy"
    stub = ledger.stub()
    await stub.del_state("k")
    stub.commit()
    assert ledger.get_metadata("", "k") == {}
    history = [m async for m in await ledger.stub().get_history_for_key("k")]
    assert [(m.value, m.is_delete) for m in history] == [
        (b"", True),
        (b"3", False),
        (b"2", False),
        (b"1", False),
    ]
    assert [(e.name, e.payload) for e in ledger.events] == [("changed", b"1"), ("changed", b"2")]


class Counter:
    async def init(self, stub: Stub) -> Response:
        return success()

    async def invoke(self, stub: Stub) -> Response:
        if stub.function == "boom":
            raise ValueError("BOOM: failed")
        current = int(await stub.get_state("n") or b"0")
        await stub.put_state("n", str(current + 1).encode())
        if stub.function == "refuse":
            return error("REFUSED: nope")
        return success(str(current + 1).encode())


async def test_invoke_commits_only_successes_and_evaluate_never() -> None:
    ledger = MemoryLedger()
    counter = Counter()
    assert (await ledger.invoke(counter, "inc")).payload == b"1"
    assert (await ledger.evaluate(counter, "inc")).payload == b"2"
    assert (await ledger.invoke(counter, "refuse")).message == "REFUSED: nope"
    assert (await ledger.invoke(counter, "boom")).message == "BOOM: failed"
    assert ledger.get_state("n") == b"1"
    assert (await ledger.invoke(counter, "inc")).payload == b"2"


async def test_proposal_fields() -> None:
    identity = make_identity("BankB")
    when = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    stub = MemoryStub(
        function="f",
        args=["a", b"\x01"],
        transient={"k": b"v"},
        creator=identity.creator,
        tx_id="tx1",
        channel_id="ch",
        timestamp=when,
    )
    assert stub.get_args() == [b"f", b"a", b"\x01"]
    assert (stub.tx_id, stub.channel_id, stub.tx_datetime) == ("tx1", "ch", when)
    assert stub.get_creator() == identity.serialized()
    assert dict(stub.get_transient()) == {"k": b"v"}
    assert len(stub.get_binding()) == 32
    assert stub.get_signed_proposal() is not None
    with pytest.raises(InvalidArgumentError, match="timezone"):
        MemoryStub(timestamp=datetime(2026, 1, 1))


async def test_private_paging_is_ignored_like_fabric() -> None:
    ledger = MemoryLedger()
    ledger.seed(private={"c": {create_composite_key("t", [str(i)]): b"v" for i in range(3)}})
    stub = ledger.stub()
    found = await stub.get_private_data_by_partial_composite_key("c", "t", [])
    assert len(await found.to_list()) == 3


def test_memory_stub_answers_the_proposal_exactly_as_the_real_stub() -> None:
    """Both inherit ``ProposalView``: same accessors, same errors."""
    from fabshim.stub import ChaincodeStub, ProposalView

    stub = MemoryStub(function="pay", args=["a", b"\xff"], transient={"k": b"v"})
    assert isinstance(stub, ProposalView)
    assert issubclass(ChaincodeStub, ProposalView)
    assert stub.get_args() == [b"pay", b"a", b"\xff"]
    assert stub.get_transient() == {"k": b"v"}
    assert len(stub.get_binding()) == 32
    with pytest.raises(InvalidArgumentError, match="argument 2 is not valid UTF-8"):
        stub.get_function_and_parameters()
