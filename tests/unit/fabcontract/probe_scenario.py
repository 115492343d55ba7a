"""A run of shim_probe transactions with their expected results.

Used twice: against ``MemoryLedger`` (tests/unit/fabcontract) and over the real protocol
against the fake peer, batching on and off (tests/unit/fabshim), so both must agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fabshim import create_composite_key
from fabshim.testing import make_identity

IDENTITY = make_identity("BankA", "teller", attributes={"role": "operator"})
START = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)
ACCT_A1 = create_composite_key("acct", ["bankA", "1"])
ACCT_A2 = create_composite_key("acct", ["bankA", "2"])
ACCT_B1 = create_composite_key("acct", ["bankB", "1"])


@dataclass(frozen=True)
class Step:
    submit: bool
    function: str
    args: tuple[str, ...] = ()
    transient: Mapping[str, bytes] = field(default_factory=dict)
    expect: Any = None
    """Expected JSON result, or ``Error(...)``."""


@dataclass(frozen=True)
class Error:
    contains: str


def j(value: Any) -> str:
    return json.dumps(value)


def s(function: str, *args: str, expect: Any = None, **transient: bytes) -> Step:
    return Step(True, function, args, transient, expect)


def e(function: str, *args: str, expect: Any = None, **transient: bytes) -> Step:
    return Step(False, function, args, transient, expect)


def kv(key: str, value: str) -> dict[str, str]:
    return {"key": key, "value": value}


STEPS: list[Step] = [
    s("put_state", "k1", "v1"),
    s("put_states", j({"k2": "v2", "k3": "v3", "a": "x"}), expect=3),
    e("get_state", "k1", expect="v1"),
    e("get_state", "nope", expect=None),
    e("get_multiple_states", j(["k1", "nope", "k3"]), expect=["v1", None, "v3"]),
    e("get_state_by_range", "k", "", expect=[kv("k1", "v1"), kv("k2", "v2"), kv("k3", "v3")]),
    e("get_state_by_range_head", "", "", "1", expect=[kv("a", "x")]),
    e(
        "get_state_by_range_with_pagination",
        "",
        "",
        "2",
        expect={
            "results": [kv("a", "x"), kv("k1", "v1")],
            "fetched_records_count": 2,
            "bookmark": "k2",
        },
    ),
    e(
        "get_state_by_range_with_pagination",
        "",
        "",
        "2",
        "k2",
        expect={
            "results": [kv("k2", "v2"), kv("k3", "v3")],
            "fetched_records_count": 2,
            "bookmark": "",
        },
    ),
    s("put_composite", "acct", j(["bankA", "1"]), "100", expect=ACCT_A1),
    s("put_composite", "acct", j(["bankA", "2"]), "200", expect=ACCT_A2),
    s("put_composite", "acct", j(["bankB", "1"]), "300", expect=ACCT_B1),
    e(
        "get_state_by_partial_composite_key",
        "acct",
        j(["bankA"]),
        expect=[kv(ACCT_A1, "100"), kv(ACCT_A2, "200")],
    ),
    e(
        "get_state_by_partial_composite_key_with_pagination",
        "acct",
        "[]",
        "2",
        expect={
            "results": [kv(ACCT_A1, "100"), kv(ACCT_A2, "200")],
            "fetched_records_count": 2,
            "bookmark": ACCT_B1,
        },
    ),
    e("split_composite_key", ACCT_B1, expect={"object_type": "acct", "attributes": ["bankB", "1"]}),
    e(
        "get_state_by_range",
        "",
        "",
        expect=[kv("a", "x"), kv("k1", "v1"), kv("k2", "v2"), kv("k3", "v3")],
    ),
    s("del_state", "k1"),
    e("get_history_for_key", "k1", expect="HISTORY"),
    e(
        "get_query_result",
        '{"selector":{"a":1}}',
        expect=Error("ExecuteQuery not supported for leveldb"),
    ),
    e(
        "get_query_result_with_pagination",
        '{"selector":{"a":1}}',
        "5",
        expect=Error("ExecuteQueryWithMetadata not supported for leveldb"),
    ),
    s("put_private_data", "coll", "p1", value=b"secret1"),
    s("put_private_data", "coll", "p9", expect=Error("MISSING_TRANSIENT")),
    s("put_private_states", "coll", p2=b"secret2", p3=b"secret3", expect=2),
    s("put_private_states", "coll2", **{ACCT_A1: b"in-coll2"}, expect=1),
    e("get_private_data", "coll", "p1", expect="secret1"),
    e("get_private_data", "coll", "zz", expect=None),
    e(
        "get_multiple_private_data",
        "coll",
        j(["p1", "zz", "p3"]),
        expect=["secret1", None, "secret3"],
    ),
    e("get_private_data_hash", "coll", "p1", expect=hashlib.sha256(b"secret1").hexdigest()),
    e("get_private_data_hash", "coll", "zz", expect=None),
    e(
        "get_private_data_by_range",
        "coll",
        "p2",
        "",
        expect=[kv("p2", "secret2"), kv("p3", "secret3")],
    ),
    e(
        "get_private_data_by_partial_composite_key",
        "coll2",
        "acct",
        j(["bankA"]),
        expect=[kv(ACCT_A1, "in-coll2")],
    ),
    e(
        "get_private_data_query_result",
        "coll",
        '{"selector":{}}',
        expect=Error("ExecuteQuery not supported for leveldb"),
    ),
    s("del_private_data", "coll", "p2"),
    s("purge_private_data", "coll", "p3"),
    e("get_private_data_by_range", "coll", "", "", expect=[kv("p1", "secret1")]),
    s(
        "write_and_query",
        "write-first",
        "private-range",
        "coll",
        "w1",
        "x",
        expect=Error("Queries on pvt data is supported only in a read-only transaction"),
    ),
    s(
        "write_and_query",
        "query-first",
        "private-range",
        "coll",
        "w1",
        "x",
        expect=Error("already performed queries on pvt data. Writes are not allowed"),
    ),
    s(
        "write_and_query",
        "write-first",
        "paginated",
        "coll",
        "w1",
        "x",
        expect=Error("Paginated queries are supported only in a read-only transaction"),
    ),
    s(
        "write_and_query",
        "query-first",
        "paginated",
        "coll",
        "w1",
        "x",
        expect=Error("already performed a paginated query. Writes are not allowed"),
    ),
    e("get_state", "w1", expect=None),
    e("get_private_data", "", "p1", expect=Error("collection must be a non-empty string")),
    s("set_key_endorsement", "k2", j(["BankB", "BankA"])),
    e("get_key_endorsement", "k2", expect=["BankA", "BankB"]),
    e("get_key_endorsement", "k3", expect=None),
    s("set_private_key_endorsement", "coll", "p1", j(["BankA"]), "MEMBER"),
    e("get_private_key_endorsement", "coll", "p1", expect=["BankA"]),
    s("set_key_endorsement", "k3", j(["BankA"]), "BOSS", expect=Error("role type 'BOSS'")),
    s("set_event", "Moved", '{"n":1}'),
    e("whoami", expect={"msp_id": "BankA", "id": None, "attributes": {"role": "operator"}}),
    e("tx_info", salt=b"1", nonce=b"2", expect=None),
    e("no_such_function", expect=Error("UNKNOWN_TRANSACTION")),
    e("get_state", expect=Error("INVALID_ARGUMENT: get_state expects 1 argument(s) (key), got 0")),
]


def tx_id(index: int) -> str:
    return hashlib.sha256(f"probe-{index}".encode()).hexdigest()


def timestamp(index: int) -> datetime:
    return START + timedelta(seconds=index)


Runner = Callable[[Step, str, datetime], Awaitable[tuple[int, str, bytes]]]


async def run_scenario(run: Runner) -> list[tuple[int, str, bytes]]:
    """Run every step through ``run`` and check it; return the raw answers."""
    answers = []
    for index, step in enumerate(STEPS):
        status, message, payload = await run(step, tx_id(index), timestamp(index))
        answers.append((status, message, payload))
        where = f"step {index} {step.function}{step.args}"
        if isinstance(step.expect, Error):
            assert status == 500, f"{where}: expected an error, got {payload!r}"
            assert step.expect.contains in message, f"{where}: {message}"
            continue
        assert status == 200, f"{where}: {message}"
        result = json.loads(payload) if payload else None
        if step.function == "whoami":
            assert result["id"]
            result["id"] = None
        if step.expect == "HISTORY":
            writes = [i for i, st in enumerate(STEPS) if st.args[:1] == ("k1",) and st.submit]
            put, delete = writes
            assert result == [
                {
                    "tx_id": tx_id(delete),
                    "value": "",
                    "is_delete": True,
                    "timestamp": timestamp(delete).isoformat(),
                },
                {
                    "tx_id": tx_id(put),
                    "value": "v1",
                    "is_delete": False,
                    "timestamp": timestamp(put).isoformat(),
                },
            ], f"{where}: {result!r}"
            continue
        if step.function == "tx_info":
            assert result == {
                "tx_id": tx_id(index),
                "channel_id": "testchannel",
                "timestamp": timestamp(index).isoformat(),
                "function": "tx_info",
                "transient_keys": ["nonce", "salt"],
            }, where
            continue
        assert result == step.expect, f"{where}: {result!r}"
    return answers
