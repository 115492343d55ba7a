"""Property and fuzz tests of the contract's inputs, without a network (issue 6, item 4).

Every transaction, fed random transient bytes, random JSON and mutations of valid requests,
through the same :class:`deposit_token.service.Service` the chaincode server runs, over
``fabshim.testing.MemoryLedger``:

* it answers or refuses with a stable code (``CODE: ...``, a code the SDK maps), never another
  exception and never ``INTERNAL`` (a crash turned into an error);
* a refusal writes nothing and sets no event;
* a refusal's message quotes none of the request's values.
"""

from __future__ import annotations

import asyncio
import json
import string
from typing import Any

import pytest
from deposit_token.errors import CODES, DepositTokenError
from deposit_token.service import TRANSACTIONS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit.deposit_token.dt_harness import Net

NAMES = sorted(TRANSACTIONS)
ACCOUNT = "acct-fuzz-0001".ljust(24, "x")
OTHER = "acct-fuzz-0002".ljust(24, "x")
FIELDS = sorted(
    {"reference", "currency", "owner_ref", "account_id", "limits", "status", "single_payment",
     "daily_outflow", "amount", "from_account", "to_account", "payer_account", "payee_bank",
     "payee_account", "ttl_seconds", "originator", "remittance", "transfer_id", "payments",
     "payer_bank", "reason", "rtgs_reference", "debtor_bank", "bank", "frozen", "held_amount",
     "from_seq", "page_size", "cursor", "direction", "counterparty", "bank_a", "bank_b",
     "ledger_order"}
)  # fmt: skip
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from([ACCOUNT, OTHER, "hkbank", "usbank", "USD", "HKD", "frozen", "incoming"])
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
requests = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), json_value, max_size=8)


def _net() -> Net:
    async def build() -> Net:
        net = Net()
        await net.init()
        await net.open("hkbank", "USD", ACCOUNT)
        await net.open("hkbank", "USD", OTHER)
        await net.mint("hkbank", ACCOUNT, 10_000, "fuzz-mint")
        return net

    return asyncio.run(build())


async def _run(net: Net, org: str, name: str, raw: bytes | None) -> tuple[bool, str, Any]:
    """Run ``name`` with transient ``raw``; (refused?, message or result, stub)."""
    transient = None if raw is None else {"request": raw}
    stub = net.ledger.stub(transient=transient, tx_id=net.ledger.new_tx_id(), timestamp=net.now)
    try:
        result = await net.services[org].execute(stub, net.caller(org), name)
    except DepositTokenError as exc:
        return True, str(exc), stub
    return False, json.dumps(result), stub


def _check_refusal(message: str, stub: Any, values: list[str]) -> None:
    code = message.split(":", 1)[0]
    assert code in CODES, message
    assert code != "INTERNAL", f"an input crashed the transaction: {message}"
    assert stub.writes == {}, "a refused transaction wrote something"
    assert stub.event is None
    for value in values:
        assert value not in message, f"the refusal quotes an input value: {message!r}"


def _distinct_strings(obj: object) -> list[str]:
    """String values (not keys) long and odd enough not to occur in a fixed message."""
    out: list[str] = []
    if isinstance(obj, dict):
        for v in obj.values():
            out += _distinct_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            out += _distinct_strings(v)
    # (field names, of lowercase letters and "_", are quoted in fixed messages)
    elif isinstance(obj, str) and len(obj) >= 6 and not set(obj) <= set(
        string.ascii_lowercase + "_"
    ):
        out.append(obj)
    return out


@pytest.fixture(scope="module")
def net() -> Net:
    return _net()


@SETTINGS
@given(name=st.sampled_from(NAMES), raw=st.binary(max_size=64) | st.none())
def test_random_bytes_in_the_transient_map_are_refused_cleanly(
    net: Net, name: str, raw: bytes | None
) -> None:
    refused, text, stub = asyncio.run(_run(net, "hkbank", name, raw))
    if refused:
        _check_refusal(text, stub, [])
    else:
        spec = TRANSACTIONS[name]
        assert spec.request is None or spec.optional_request or raw is not None


@SETTINGS
@given(name=st.sampled_from(NAMES), value=json_value)
def test_any_json_value_is_answered_or_refused_with_a_code(
    net: Net, name: str, value: object
) -> None:
    refused, text, stub = asyncio.run(_run(net, "hkbank", name, json.dumps(value).encode()))
    if refused:
        _check_refusal(text, stub, _distinct_strings(value))


@SETTINGS
@given(name=st.sampled_from(NAMES), request=requests, org=st.sampled_from(["hkbank", "regulator"]))
def test_random_requests_with_real_field_names_are_answered_or_refused_with_a_code(
    net: Net, name: str, request: dict[str, Any], org: str
) -> None:
    refused, text, stub = asyncio.run(_run(net, org, name, json.dumps(request).encode()))
    if refused:
        _check_refusal(text, stub, _distinct_strings(request))
    else:
        # Only reads may succeed on such input, or a write that is valid by chance.
        assert stub.writes == {} or not TRANSACTIONS[name].evaluate


VALID: dict[str, dict[str, Any]] = {
    "mint": {"reference": "r-mint", "account_id": ACCOUNT, "amount": 5},
    "transfer": {"reference": "r-xfer", "from_account": ACCOUNT, "to_account": OTHER,
                 "amount": 5},
    "initiate_transfer": {"reference": "r-init", "payer_account": ACCOUNT,
                          "payee_bank": "usbank", "payee_account": "acct-payee-00".ljust(24, "y"),
                          "amount": 5, "originator": {"name": "Secret Name Ltd"}},
    "open_account": {"reference": "r-open", "currency": "USD", "owner_ref": "CIF-secret-77"},
}  # fmt: skip


@SETTINGS
@given(
    name=st.sampled_from(sorted(VALID)),
    field=st.sampled_from(FIELDS),
    value=json_value,
    drop=st.booleans(),
)
def test_one_field_of_a_valid_request_mutated(
    net: Net, name: str, field: str, value: object, drop: bool
) -> None:
    request = dict(VALID[name])
    if drop:
        request.pop(field, None)
    else:
        request[field] = value
    request["reference"] = f"{request.get('reference')}-{abs(hash((field, str(value), drop)))}"
    refused, text, stub = asyncio.run(_run(net, "hkbank", name, json.dumps(request).encode()))
    if refused:
        _check_refusal(text, stub, _distinct_strings({field: value}))


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_an_invalid_argument_not_a_crash(net: Net, depth: int) -> None:
    raw = b'{"reference":' + b"[" * depth + b"]" * depth + b"}"
    refused, text, stub = asyncio.run(_run(net, "hkbank", "mint", raw))
    assert refused
    assert text.startswith("INVALID_ARGUMENT: "), text
    _check_refusal(text, stub, [])


@pytest.mark.parametrize("size", [1025, 1 << 20, 8 << 20])
def test_oversized_strings_are_refused_by_length(net: Net, size: int) -> None:
    for name, request in VALID.items():
        for field in ("reference", "owner_ref", "remittance"):
            big = {**request, field: "Z" * size}
            refused, text, stub = asyncio.run(_run(net, "hkbank", name, json.dumps(big).encode()))
            assert refused, (name, field)
            _check_refusal(text, stub, ["Z" * 64])
