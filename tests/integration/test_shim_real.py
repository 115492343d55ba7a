"""Issue 3 on the real network: our Python shim (fabshim) behind real Fabric peers.

``tests/chaincodes/shim_probe.py`` (every stub call as a transaction) is deployed twice on
the session network: ``probe`` (write batching on: the peer offers it in READY) and
``probenb`` (its servers run with ``CHAINCODE_WRITE_BATCH=false``). Every client call goes
through fabgateway to the organization's own peer's Gateway, with the endorsing
organizations named explicitly.

What the peers themselves saw is read from their Prometheus metrics
(``chaincode_shim_requests_received`` per request type and chaincode package,
``endorser_proposal_duration_count`` per chaincode): that the requests were really
batched, or not, is the peer's count, not the shim's own word.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import fabgateway
import pytest
from consortium.metrics import PeerCounts
from fabshim import create_composite_key
from harness import TestNetwork
from harness.gateway import OrgClient, connected_clients, until_committed

BATCHED = "probe"
UNBATCHED = "probenb"
COLLECTION = "hk-us"
PEER_PAGE = 100  # results per QUERY_STATE_NEXT page from a Fabric peer


# ---------------------------------------------------------------------------- deployment


@dataclass(frozen=True)
class Probes:
    hk: str  # MSP ids: HarbourBank and LibertyTrust are members of COLLECTION,
    us: str  # PearlRiver is not.
    cn: str


@pytest.fixture(scope="module")
def probes(network: TestNetwork) -> Probes:
    c = network.consortium
    hk, us, cn = (c.org(name).msp_id for name in ("hkbank", "usbank", "cnbank"))
    collections = [
        {
            "name": COLLECTION,
            "policy": f"OR('{hk}.member', '{us}.member')",
            "requiredPeerCount": 0,
            "maxPeerCount": 1,
            "blockToLive": 0,
            # A non-member's *client* may ask: what it gets is decided by its peer, which
            # is not a member and holds only hashes.
            "memberOnlyRead": False,
            "memberOnlyWrite": True,
        }
    ]
    policy = f"OR('{hk}.peer', '{us}.peer', '{cn}.peer')"
    network.network.deploy(BATCHED, "shim_probe:chaincode", policy=policy, collections=collections)
    network.network.deploy(
        UNBATCHED,
        "shim_probe:chaincode",
        policy=policy,
        collections=collections,
        env={"CHAINCODE_WRITE_BATCH": "false"},
    )
    return Probes(hk, us, cn)


# ---------------------------------------------------------------------------- clients


class Client(OrgClient):
    """One organization's client identity on the probe chaincodes, through its own peer's
    Gateway."""

    async def submit(
        self,
        chaincode: str,
        function: str,
        *args: str,
        endorsers: Sequence[str],
        transient: Mapping[str, bytes] | None = None,
        nonce: bytes | None = None,
    ) -> tuple[fabgateway.Status, Any]:
        """Endorse, submit, wait for the commit; the status (valid or not) and the result."""
        proposal = self.network.get_contract(chaincode).new_proposal(
            function,
            arguments=args,
            transient_data=transient,
            endorsing_organizations=endorsers,
            nonce=nonce,
        )
        transaction = await proposal.endorse()
        submitted = await transaction.submit()
        return await submitted.get_status(), _decode(submitted.result)

    async def evaluate(
        self,
        chaincode: str,
        function: str,
        *args: str,
        target: str,
        transient: Mapping[str, bytes] | None = None,
    ) -> Any:
        result = await self.network.get_contract(chaincode).evaluate(
            function, arguments=args, transient_data=transient, endorsing_organizations=[target]
        )
        return _decode(result)


def _decode(payload: bytes) -> Any:
    return json.loads(payload) if payload else None


def clients(network: TestNetwork, *org_names: str) -> AbstractAsyncContextManager[list[Client]]:
    return connected_clients(Client, network, *org_names)


# ---------------------------------------------------------------------------- peer metrics


def peer_counts(network: TestNetwork, org_name: str) -> PeerCounts:
    """What the org's peer counted (shim requests, proposals), from its /metrics."""
    return network.network.peer_counts(network.consortium.org(org_name).peers[0])


# ---------------------------------------------------------------------------- the scenario


@dataclass(frozen=True)
class Failed:
    """A step that failed, with the chaincode's message (transaction ids masked)."""

    message: str


def _mask(text: str) -> str:
    return re.sub(r"\b[0-9a-f]{64}\b", "<txid>", text)


async def run_scenario(
    client: Client, chaincode: str, other: str, prefix: str, endorser: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Call every probe transaction once or more; return the results by step name and the
    transaction ids of the submitted steps by step name."""
    results: dict[str, Any] = {}
    tx_ids: dict[str, str] = {}
    p, coll, obj = prefix, COLLECTION, f"{prefix}acct"

    async def submit(step: str, function: str, *args: str, **transient: bytes) -> None:
        contract = client.network.get_contract(chaincode)
        proposal = contract.new_proposal(
            function, arguments=args, transient_data=transient, endorsing_organizations=[endorser]
        )
        try:
            transaction = await proposal.endorse()
        except fabgateway.EndorseError as exc:
            results[step] = Failed(_mask(exc.chaincode_message or str(exc)))
            return
        submitted = await transaction.submit()
        status = await submitted.get_status()
        tx_ids[step] = proposal.transaction_id
        results[step] = (status.code_name, _decode(submitted.result))

    async def evaluate(step: str, function: str, *args: str, **transient: bytes) -> Any:
        try:
            results[step] = await client.evaluate(
                chaincode, function, *args, target=endorser, transient=transient
            )
        except fabgateway.EvaluateError as exc:
            results[step] = Failed(_mask(exc.chaincode_message or str(exc)))
        return results[step]

    # public state
    await submit("put k1", "put_state", f"{p}k1", "v1")
    await submit("put k1 again", "put_state", f"{p}k1", "v1b")
    await submit("put k2-k4", "put_states", json.dumps({f"{p}k{i}": f"v{i}" for i in (2, 3, 4)}))
    many = {f"{p}n{i:03d}": f"value-{i}" for i in range(150)}
    await submit("put 150", "put_states", json.dumps(many))
    await evaluate("get k1", "get_state", f"{p}k1")
    await evaluate("get missing", "get_state", f"{p}nope")
    await evaluate(
        "get multiple", "get_multiple_states", json.dumps([f"{p}k1", f"{p}nope", f"{p}k3"])
    )
    await evaluate("range 150", "get_state_by_range", f"{p}n", f"{p}o")
    await evaluate("range head", "get_state_by_range_head", f"{p}n", f"{p}o", "2")
    pages: list[Any] = []
    bookmark = ""
    while True:
        page = await evaluate(
            "page", "get_state_by_range_with_pagination", f"{p}n", f"{p}o", "64", bookmark
        )
        pages.append(page)
        bookmark = page["bookmark"]
        if not bookmark:
            break
    results["range 150 in pages of 64"] = pages
    del results["page"]
    # composite keys
    for owner, number, value in (("A", "1", "100"), ("A", "2", "200"), ("B", "1", "300")):
        owned = json.dumps([owner, number])
        await submit(f"composite {owner}/{number}", "put_composite", obj, owned, value)
    partial = "get_state_by_partial_composite_key"
    await evaluate("partial A", partial, obj, '["A"]')
    first = await evaluate("partial page 1", f"{partial}_with_pagination", obj, "[]", "2")
    await evaluate(
        "partial page 2", f"{partial}_with_pagination", obj, "[]", "2", first["bookmark"]
    )
    await evaluate("split", "split_composite_key", create_composite_key(obj, ["B", "1"]))
    # delete and history
    await submit("del k1", "del_state", f"{p}k1")
    await evaluate("get deleted k1", "get_state", f"{p}k1")
    await evaluate("history k1", "get_history_for_key", f"{p}k1")
    # private data
    composite = create_composite_key(obj, ["A", "9"])
    await submit("private p1", "put_private_data", coll, f"{p}p1", value=b"secret1")
    several = {f"{p}p2": b"secret2", f"{p}p3": b"secret3", composite: b"secret-composite"}
    await submit("private p2 p3", "put_private_states", coll, **several)
    await submit("private without value", "put_private_data", coll, f"{p}p9")
    await evaluate("private get p1", "get_private_data", coll, f"{p}p1")
    await evaluate("private get missing", "get_private_data", coll, f"{p}zz")
    keys = json.dumps([f"{p}p1", f"{p}zz", f"{p}p3"])
    await evaluate("private multiple", "get_multiple_private_data", coll, keys)
    await evaluate("private hash p1", "get_private_data_hash", coll, f"{p}p1")
    await evaluate("private hash missing", "get_private_data_hash", coll, f"{p}zz")
    await evaluate("private range", "get_private_data_by_range", coll, f"{p}p", f"{p}q")
    await evaluate(
        "private partial", "get_private_data_by_partial_composite_key", coll, obj, '["A"]'
    )
    await submit("private del p2", "del_private_data", coll, f"{p}p2")
    await submit("private purge p3", "purge_private_data", coll, f"{p}p3")
    await evaluate("private range after", "get_private_data_by_range", coll, f"{p}p", f"{p}q")
    await evaluate("private hash purged", "get_private_data_hash", coll, f"{p}p3")
    await evaluate("private get purged", "get_private_data", coll, f"{p}p3")
    # key-level endorsement policies
    both = json.dumps(["LibertyTrustMSP", "HarbourBankMSP"])
    await submit("policy k2", "set_key_endorsement", f"{p}k2", both)
    await evaluate("policy k2 read", "get_key_endorsement", f"{p}k2")
    await evaluate("policy k3 read", "get_key_endorsement", f"{p}k3")
    hk_only = json.dumps(["HarbourBankMSP"])
    await submit("private policy p1", "set_private_key_endorsement", coll, f"{p}p1", hk_only)
    await evaluate("private policy p1 read", "get_private_key_endorsement", coll, f"{p}p1")
    await submit("bad role", "set_key_endorsement", f"{p}k3", hk_only, "BOSS")
    # Fabric's read-only rules, in both orders, for private-range and paginated queries
    for order in ("write-first", "query-first"):
        for query in ("private-range", "paginated"):
            step = f"{order} {query}"
            await submit(step, "write_and_query", order, query, coll, f"{p}w", "x")
    await evaluate("rich query", "get_query_result", '{"selector":{}}')
    await evaluate("rich query paged", "get_query_result_with_pagination", '{"selector":{}}', "5")
    await evaluate("private rich query", "get_private_data_query_result", coll, '{"selector":{}}')
    # another chaincode in the same transaction
    await evaluate("invoke other", "invoke_chaincode", other, json.dumps(["get_state", f"{p}k3"]))
    failure = await evaluate("invoke other fails", "invoke_chaincode", other, '["no_such_tx"]')
    if isinstance(failure, Failed):  # names the other chaincode: the same text either way
        results["invoke other fails"] = Failed(failure.message.replace(other, "<other>"))
    # the event goes out with COMPLETED; the test reads it back from the block
    await submit("event", "set_event", f"{p}Moved", '{"n":1}')
    return results, tx_ids


def _normalize(results: dict[str, Any], tx_ids: dict[str, str]) -> dict[str, Any]:
    """Results with the transaction ids replaced by step names (they differ per chaincode)."""
    names = {tx: step for step, tx in tx_ids.items()}
    text = json.dumps(results, default=lambda f: {"failed": f.message}, sort_keys=True)
    for tx, step in names.items():
        text = text.replace(tx, f"<{step}>")
    out = json.loads(text)
    for entry in out["history k1"]:
        entry["timestamp"] = "<ts>"
    return dict(out)


def kv(key: str, value: str) -> dict[str, str]:
    return {"key": key, "value": value}


def _expected(prefix: str, other_result: Any) -> dict[str, Any]:
    p = prefix
    obj = f"{p}acct"
    a1, a2, b1 = (create_composite_key(obj, [o, n]) for o, n in ("A1", "A2", "B1"))
    many = [kv(f"{p}n{i:03d}", f"value-{i}") for i in range(150)]
    valid_none = ("VALID", None)
    return {
        "put k1": valid_none,
        "put k1 again": valid_none,
        "put k2-k4": ("VALID", 3),
        "put 150": ("VALID", 150),
        "get k1": "v1b",
        "get missing": None,
        "get multiple": ["v1b", None, "v3"],
        "range 150": many,
        "range head": many[:2],
        "range 150 in pages of 64": [
            {"results": many[:64], "fetched_records_count": 64, "bookmark": f"{p}n064"},
            {"results": many[64:128], "fetched_records_count": 64, "bookmark": f"{p}n128"},
            {"results": many[128:], "fetched_records_count": 22, "bookmark": ""},
        ],
        "composite A/1": ("VALID", a1),
        "composite A/2": ("VALID", a2),
        "composite B/1": ("VALID", b1),
        "partial A": [kv(a1, "100"), kv(a2, "200")],
        "partial page 1": {
            "results": [kv(a1, "100"), kv(a2, "200")],
            "fetched_records_count": 2,
            "bookmark": b1,
        },
        "partial page 2": {"results": [kv(b1, "300")], "fetched_records_count": 1, "bookmark": ""},
        "split": {"object_type": obj, "attributes": ["B", "1"]},
        "del k1": valid_none,
        "get deleted k1": None,
        "history k1": "checked apart",
        "private p1": valid_none,
        "private p2 p3": ("VALID", 3),
        "private without value": Failed(
            "MISSING_TRANSIENT: put the value in the transient map under 'value'"
        ),
        "private get p1": "secret1",
        "private get missing": None,
        "private multiple": ["secret1", None, "secret3"],
        "private hash p1": hashlib.sha256(b"secret1").hexdigest(),
        "private hash missing": None,
        "private range": [
            kv(f"{p}p1", "secret1"),
            kv(f"{p}p2", "secret2"),
            kv(f"{p}p3", "secret3"),
        ],
        "private partial": [kv(create_composite_key(obj, ["A", "9"]), "secret-composite")],
        "private del p2": valid_none,
        "private purge p3": valid_none,
        "private range after": [kv(f"{p}p1", "secret1")],
        "private hash purged": None,
        "private get purged": None,
        "policy k2": valid_none,
        "policy k2 read": ["HarbourBankMSP", "LibertyTrustMSP"],
        "policy k3 read": None,
        "private policy p1": valid_none,
        "private policy p1 read": ["HarbourBankMSP"],
        "bad role": Failed("role type 'BOSS'"),
        "write-first private-range": Failed(
            "GET_STATE_BY_RANGE failed: transaction ID: <txid>: txid [<txid>]: unsuppored "
            "transaction. Queries on pvt data is supported only in a read-only transaction"
        ),
        "write-first paginated": Failed(
            "GET_STATE_BY_RANGE failed: transaction ID: <txid>: txid [<txid>]: unsuppored "
            "transaction. Paginated queries are supported only in a read-only transaction"
        ),
        "query-first private-range": Failed(
            "PUT_STATE failed: transaction ID: <txid>: txid [<txid>]: unsuppored transaction. "
            "Transaction has already performed queries on pvt data. Writes are not allowed"
        ),
        "query-first paginated": Failed(
            "PUT_STATE failed: transaction ID: <txid>: txid [<txid>]: unsuppored transaction. "
            "Transaction has already performed a paginated query. Writes are not allowed"
        ),
        "rich query": Failed(
            "GET_QUERY_RESULT failed: transaction ID: <txid>: "
            "ExecuteQuery not supported for leveldb"
        ),
        "rich query paged": Failed(
            "GET_QUERY_RESULT failed: transaction ID: <txid>: "
            "ExecuteQueryWithMetadata not supported for leveldb"
        ),
        "private rich query": Failed(
            "GET_QUERY_RESULT failed: transaction ID: <txid>: "
            "ExecuteQuery not supported for leveldb"
        ),
        "invoke other": {"status": 200, "payload": '"v3"'},
        "invoke other fails": other_result,
        "event": valid_none,
    }


async def test_every_stub_call_through_the_peer_with_batching_on_and_off(
    network: TestNetwork, probes: Probes
) -> None:
    """The same run of every probe transaction on both deployments: the expected answers,
    the same answers and the same committed state either way, and the peer saw the writes
    batched for ``probe`` only."""
    prefix = f"s{uuid.uuid4().hex[:8]}-"
    before = peer_counts(network, "hkbank")
    started = datetime.now(UTC)
    async with clients(network, "hkbank") as (hk,):
        (on, on_tx), (off, off_tx) = await asyncio.gather(
            run_scenario(hk, BATCHED, UNBATCHED, prefix, probes.hk),
            run_scenario(hk, UNBATCHED, BATCHED, prefix, probes.hk),
        )
        on_state, off_state = await asyncio.gather(
            _dump(hk, BATCHED, prefix, probes.hk), _dump(hk, UNBATCHED, prefix, probes.hk)
        )
        events = await asyncio.gather(
            _event_of(hk, BATCHED, on_tx["event"]), _event_of(hk, UNBATCHED, off_tx["event"])
        )
    seen = peer_counts(network, "hkbank") - before

    # The answers are the expected ones, step by step.
    for results in (on, off):
        failed_call = results["invoke other fails"]
        assert isinstance(failed_call, Failed)
        assert "UNKNOWN_TRANSACTION" in failed_call.message
        expected = _expected(prefix, failed_call)
        for step, want in expected.items():
            if want == "checked apart":
                continue
            got = results[step]
            if isinstance(want, Failed):
                assert isinstance(got, Failed), f"{step}: expected a failure, got {got!r}"
                assert want.message in got.message, f"{step}: {got.message}"
            else:
                assert got == want, f"{step}: {got!r}"
        assert set(results) == set(expected)
    # History: newest first, the transactions that wrote the key, read from the real ledger.
    for results, tx_ids in ((on, on_tx), (off, off_tx)):
        history = results["history k1"]
        assert [(h["tx_id"], h["value"], h["is_delete"]) for h in history] == [
            (tx_ids["del k1"], "", True),
            (tx_ids["put k1 again"], "v1b", False),
            (tx_ids["put k1"], "v1", False),
        ]
        stamps = [datetime.fromisoformat(h["timestamp"]) for h in history]
        assert stamps == sorted(stamps, reverse=True)
        margin = timedelta(minutes=5)  # the clients' clocks: a sanity check, not a timing
        assert all(started - margin < t < datetime.now(UTC) + margin for t in stamps)

    # Batching on or off: the same answers and the same committed state.
    assert _normalize(on, on_tx) == _normalize(off, off_tx)
    assert on_state == off_state
    assert len(on_state["public"]) == 150 + 3  # not vacuous
    assert len(on_state["private"]) == 1
    # The event reached a client through the block, with what the chaincode set.
    for chaincode, event, tx_ids in ((BATCHED, events[0], on_tx), (UNBATCHED, events[1], off_tx)):
        assert (event.chaincode_name, event.event_name, event.payload) == (
            chaincode, f"{prefix}Moved", b'{"n":1}'
        )  # fmt: skip
        assert event.transaction_id == tx_ids["event"]

    # What the peer itself received: every kind of request, and the writes batched only
    # where batching is on.
    batched, unbatched = seen.of(BATCHED), seen.of(UNBATCHED)
    reads = {
        "GET_STATE", "GET_STATE_MULTIPLE", "GET_STATE_BY_RANGE", "QUERY_STATE_NEXT",
        "QUERY_STATE_CLOSE", "GET_HISTORY_FOR_KEY", "GET_QUERY_RESULT",
        "GET_PRIVATE_DATA_HASH", "GET_STATE_METADATA", "INVOKE_CHAINCODE",
    }  # fmt: skip
    direct_writes = {"PUT_STATE", "DEL_STATE", "PURGE_PRIVATE_DATA", "PUT_STATE_METADATA"}
    assert set(unbatched) == reads | direct_writes
    assert set(batched) == reads | {"WRITE_BATCH_STATE", "PUT_STATE"}
    # With batching, the only direct writes are the two made after a read-only query.
    assert batched["PUT_STATE"] == 2
    assert unbatched["PUT_STATE"] >= 150 + 3
    # 150 keys one page at a time over QUERY_STATE_NEXT (and the 150-key paged query).
    assert batched["QUERY_STATE_NEXT"] >= 150 // PEER_PAGE
    assert seen.proposals[BATCHED] == seen.proposals[UNBATCHED] > len(on_tx)


async def _dump(client: Client, chaincode: str, prefix: str, target: str) -> dict[str, Any]:
    """Everything the scenario left under ``prefix``, as the peer reads it back."""
    end = prefix + "~"
    public = await client.evaluate(chaincode, "get_state_by_range", prefix, end, target=target)
    composite = await client.evaluate(
        chaincode, "get_state_by_partial_composite_key", f"{prefix}acct", "[]", target=target
    )
    private = await client.evaluate(
        chaincode, "get_private_data_by_range", COLLECTION, prefix, prefix + "~", target=target
    )
    policies = {
        row["key"]: await client.evaluate(
            chaincode, "get_key_endorsement", row["key"], target=target
        )
        for row in public
        if not row["key"].startswith(f"{prefix}n")  # not the 150 keys of one write
    }
    private_policies = {
        row["key"]: await client.evaluate(
            chaincode, "get_private_key_endorsement", COLLECTION, row["key"], target=target
        )
        for row in private
    }
    return {
        "public": public,
        "composite": composite,
        "private": private,
        "policies": policies,
        "private_policies": private_policies,
    }


async def _event_of(client: Client, chaincode: str, tx_id: str) -> fabgateway.ChaincodeEvent:
    """The chaincode event of ``tx_id``, as the Gateway delivers it to a listening client."""
    status = await client.network.new_commit(tx_id).get_status()
    stream = client.network.chaincode_events(chaincode, start_block=status.block_number)
    async with stream:
        async with asyncio.timeout(60):
            async for event in stream:
                if event.transaction_id == tx_id:
                    return event
    raise AssertionError(f"no event for {tx_id}")


# ---------------------------------------------------------------------------- focused checks


async def test_write_batching_cuts_the_round_trips_the_peer_sees(
    network: TestNetwork, probes: Probes
) -> None:
    """One transaction writing 10 keys: one WRITE_BATCH_STATE instead of 10 PUT_STATE."""
    prefix = f"rt{uuid.uuid4().hex[:8]}-"
    entries = json.dumps({f"{prefix}{i}": str(i) for i in range(10)})
    async with clients(network, "hkbank") as (hk,):
        counts = {}
        for chaincode in (BATCHED, UNBATCHED):
            before = peer_counts(network, "hkbank")
            status, result = await hk.submit(
                chaincode, "put_states", entries, endorsers=[probes.hk]
            )
            assert (status.code_name, result) == ("VALID", 10)
            counts[chaincode] = peer_counts(network, "hkbank") - before
    assert counts[BATCHED].of(BATCHED) == Counter({"WRITE_BATCH_STATE": 1})
    assert counts[UNBATCHED].of(UNBATCHED) == Counter({"PUT_STATE": 10})
    assert counts[BATCHED].proposals[BATCHED] == counts[UNBATCHED].proposals[UNBATCHED] == 1


async def test_private_data_member_reads_a_non_member_is_refused_the_value_not_the_hash(
    network: TestNetwork, probes: Probes
) -> None:
    key, missing = f"m{uuid.uuid4().hex[:8]}", f"m{uuid.uuid4().hex[:8]}-missing"
    value = b"member-only-" + uuid.uuid4().hex.encode()
    async with clients(network, "hkbank", "usbank", "cnbank") as (hk, us, cn):

        async def read(client: Client, function: str, asked: str) -> Any:
            """``function`` on ``asked`` in the collection, run on the client's own peer."""
            return await client.evaluate(BATCHED, function, COLLECTION, asked, target=client.msp_id)

        status, _ = await hk.submit(
            BATCHED, "put_private_data", COLLECTION, key,
            endorsers=[probes.hk], transient={"value": value},
        )  # fmt: skip
        assert status.code_name == "VALID"
        # The endorsing member reads it on its own peer ...
        assert await read(hk, "get_private_data", key) == value.decode()
        # ... the other member's peer receives it by gossip ...
        async with asyncio.timeout(60):
            while True:
                try:
                    assert await read(us, "get_private_data", key) == value.decode()
                    break
                except fabgateway.EvaluateError as exc:  # not yet disseminated
                    if "not available" not in str(exc):
                        raise
                await asyncio.sleep(0.5)
        # ... the non-member's peer holds only the hash: the key that exists is refused
        # (which tells that it exists), a missing key reads as empty.
        await until_committed(cn, status.block_number)
        with pytest.raises(fabgateway.EvaluateError) as refused:
            await read(cn, "get_private_data", key)
        assert refused.value.chaincode_status == 500
        assert "private data matching public hash version is not available" in (
            refused.value.chaincode_message or ""
        )
        assert value not in str(refused.value).encode()
        assert await read(cn, "get_private_data", missing) is None
        # The hash is readable by the non-member.
        assert await read(cn, "get_private_data_hash", key) == hashlib.sha256(value).hexdigest()
        assert await read(cn, "get_private_data_hash", missing) is None


async def test_a_write_violating_a_key_level_policy_is_invalidated_at_commit(
    network: TestNetwork, probes: Probes
) -> None:
    """The chaincode policy lets any bank endorse; a key-level policy naming LibertyTrust
    (set through the shim, batched or not) then refuses HarbourBank alone, at commit."""

    async def run(hk: Client, chaincode: str) -> None:
        key = f"klp{uuid.uuid4().hex[:8]}"
        created, _ = await hk.submit(chaincode, "put_state", key, "first", endorsers=[probes.hk])
        us_only = json.dumps([probes.us])
        policy, _ = await hk.submit(
            chaincode, "set_key_endorsement", key, us_only, endorsers=[probes.hk]
        )
        assert (created.code_name, policy.code_name) == ("VALID", "VALID")
        policy_read = await hk.evaluate(chaincode, "get_key_endorsement", key, target=probes.hk)
        assert policy_read == [probes.us]
        # Endorsed (successfully) by HarbourBank alone, refused when the block is validated.
        refused, _ = await hk.submit(chaincode, "put_state", key, "by-hk", endorsers=[probes.hk])
        assert refused.code_name == "ENDORSEMENT_POLICY_FAILURE"
        assert await hk.evaluate(chaincode, "get_state", key, target=probes.hk) == "first"
        accepted, _ = await hk.submit(chaincode, "put_state", key, "by-us", endorsers=[probes.us])
        assert accepted.code_name == "VALID"
        assert await hk.evaluate(chaincode, "get_state", key, target=probes.hk) == "by-us"

    async with clients(network, "hkbank") as (hk,):
        await asyncio.gather(run(hk, BATCHED), run(hk, UNBATCHED))


async def test_identity_and_proposal_fields_come_from_the_real_proposal(
    network: TestNetwork, probes: Probes
) -> None:
    async with clients(network, "hkbank") as (hk,):
        who = await hk.evaluate(BATCHED, "whoami", target=probes.hk)
        proposal = hk.network.get_contract(BATCHED).new_proposal(
            "tx_info", transient_data={"salt": b"1", "nonce": b"2"},
            endorsing_organizations=[probes.hk],
        )  # fmt: skip
        info = _decode(await proposal.evaluate())
    assert who["msp_id"] == probes.hk
    assert who["attributes"] == hk.profile_identity["attributes"]
    assert base64.b64decode(who["id"]).decode().startswith("x509::CN=operator")
    assert info["tx_id"] == proposal.transaction_id
    assert info["channel_id"] == network.consortium.channel
    assert (info["function"], info["transient_keys"]) == ("tx_info", ["nonce", "salt"])
    assert abs(datetime.fromisoformat(info["timestamp"]) - datetime.now(UTC)) < timedelta(minutes=5)


async def test_messages_over_grpc_default_4_mib_cross_the_stream_both_ways(
    network: TestNetwork, probes: Probes
) -> None:
    """4.5 MiB in a TRANSACTION, in a PUT_STATE or WRITE_BATCH_STATE and in a COMPLETED:
    the server's 100 MiB message limits are in force on the real stream."""
    big = "x" * (4608 * 1024)
    huge_key = create_composite_key("big", [big])
    async with clients(network, "hkbank") as (hk,):
        for chaincode in (BATCHED, UNBATCHED):
            # evaluated, not submitted: the chaincode runs, nothing is ordered
            assert await hk.evaluate(chaincode, "put_state", "big", big, target=probes.hk) is None
            split = await hk.evaluate(chaincode, "split_composite_key", huge_key, target=probes.hk)
            assert split == {"object_type": "big", "attributes": [big]}


async def test_a_restarted_chaincode_server_is_dialled_again_by_the_peer(
    network: TestNetwork, probes: Probes
) -> None:
    """SIGTERM stops the server gracefully (it ends the peer's stream itself); the peer
    dials the new server on the next call."""
    server = network.node(f"chaincode-{UNBATCHED}.{network.consortium.org('hkbank').peers[0].name}")
    async with clients(network, "hkbank") as (hk,):
        key = f"restart{uuid.uuid4().hex[:8]}"
        status, _ = await hk.submit(UNBATCHED, "put_state", key, "before", endorsers=[probes.hk])
        assert status.code_name == "VALID"
        old_pid = server.pid()
        logged_before = server.log_file.stat().st_size
        network.stop(server)
        assert server.pid() is None
        with server.log_file.open() as log:
            log.seek(logged_before)
            stop_log = log.read()
        # The peer's stream was open (it just called): the server ended it itself.
        assert "stop signal received; stopping" in stop_log
        assert "stream closed by the server" in stop_log
        assert stop_log.rstrip().endswith("chaincode server stopped")
        assert "ERROR" not in stop_log
        network.restart(server)
        assert server.pid() not in (None, old_pid)
        assert await hk.evaluate(UNBATCHED, "get_state", key, target=probes.hk) == "before"
        status, _ = await hk.submit(UNBATCHED, "put_state", key, "after", endorsers=[probes.hk])
        assert status.code_name == "VALID"
        assert await hk.evaluate(UNBATCHED, "get_state", key, target=probes.hk) == "after"
