"""The wire contract: requests round-trip, bad ones are refused with the table's codes, the
encodings are stable, and both sides' error trees are the wire package's."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import dtoken.errors as sdk
import pytest
from deposit_token import errors as contract
from dtoken_wire import (
    ERROR_CODES,
    MAX_AMOUNT,
    TRANSIENT_KEY,
    WireError,
    canonical_json,
    format_timestamp,
    parse_timestamp,
)
from dtoken_wire import requests as w
from dtoken_wire.enums import AccountStatus, Direction, Rounding

ACCOUNT = "a" * 22
OTHER = "b" * 22

#: One filled-in instance of every request type (every optional field set).
EXAMPLES: list[w.Request] = [
    w.OpenAccountRequest("ref-1", "USD", "CIF-1", ACCOUNT, w.Limits(100, 1_000)),
    w.SetStatusRequest(ACCOUNT, AccountStatus.FROZEN),
    w.SetLimitsRequest(ACCOUNT, 5, None),
    w.SetLanesRequest(ACCOUNT, 4),
    w.RebalanceRequest(ACCOUNT, 3, 250),
    w.CapRequest("usbank", "USD"),
    w.MoveRequest("ref-2", ACCOUNT, 7),
    w.TransferRequest("ref-3", ACCOUNT, OTHER, 9),
    w.InitiateRequest("ref-4", ACCOUNT, "usbank", OTHER, 11, "inv 1", "t" * 22, 600,
                      {"name": "ACME"}),
    w.BatchRequest("ref-5", ACCOUNT, (w.BatchPayment("usbank", OTHER, 3, "", "u" * 22),
                                      w.BatchPayment("hkbank", OTHER, 4)), 120, {}),
    w.CoalescedRequest(ACCOUNT, (
        w.CoalescedItem("ref-7", "usbank", OTHER, 5, "v" * 22, "inv 2", 900, {"name": "M"}),
        w.CoalescedItem("ref-8", "cnbank", OTHER, 6, "w" * 22))),
    w.AcceptRequest("t" * 22, "hkbank"),
    w.DecideRequest("hkbank", (w.DecisionItem("t" * 22, True),
                               w.DecisionItem("u" * 22, False, "no such customer"))),
    w.RejectRequest("t" * 22, "hkbank", "no such customer"),
    w.RefundRequest("t" * 22, "usbank"),
    w.LockRequest("ref-9", ACCOUNT, "cnbank", OTHER, 13, "ab" * 32, 7200, "po 7", "t" * 22,
                  {"name": "Buyer Inc"}),
    w.ClaimRequest("t" * 22, "usbank", "0f" * 32),
    w.ExpireLockRequest("t" * 22, "usbank", "cnbank"),
    w.OfferQuoteRequest("q" * 22, "usbank", "USD", "CNH", 100, 72345, 10000, 900, 1800,
                        Rounding.PAYEE),
    w.PayWithQuoteRequest("ref-10", ACCOUNT, "cnbank", OTHER, 100, "q" * 22, "po 8", "t" * 22,
                          3600, {"name": "Buyer Inc"}),
    w.QuoteLookup("q" * 22, "cnbank", "usbank"),
    w.SettlementRequest("RTGS-1", "usbank", "USD", 50),
    w.SetExposureCapRequest("hkbank", "USD", 0),
    w.HoldRequest("hkbank", ACCOUNT, True, 12, "screening"),
    w.ReleaseHoldRequest("hkbank", ACCOUNT),
    w.SuspendRequest("usbank", "capital call missed"),
    w.ResumeRequest("usbank"),
    w.AccountRef(ACCOUNT, "hkbank"),
    w.HistoryRequest(ACCOUNT, None, 3, 10),
    w.SupplyRequest("USD", "hkbank", 20, {"kind": "supply"}),
    w.ListAccountsRequest("hkbank", "USD", 30, None),
    w.PendingRequest(Direction.OUTGOING, "hkbank", "usbank", 40, None,
                     format_timestamp(datetime(2025, 1, 6, tzinfo=UTC))),
    w.TransferLookup("t" * 22, "hkbank", "usbank"),
    w.ReferenceRequest("ref-6"),
    w.ObligationsRequest("hkbank", "usbank", 50, None, {"a" * 64: (3, 0)}),
    w.AuditRequest(60, {"kind": "audit"}, {"0123456789abcdef" * 4: (4, 1)}),
]


def test_every_request_type_has_an_example() -> None:
    assert {type(r) for r in EXAMPLES} == set(w.REQUESTS)


@pytest.mark.parametrize("request_", EXAMPLES, ids=lambda r: type(r).__name__)
def test_a_request_survives_the_wire(request_: w.Request) -> None:
    sent = canonical_json(request_.to_json())
    assert type(request_).from_json(json.loads(sent)) == request_


def test_fields_equal_to_their_defaults_are_left_out() -> None:
    assert w.HoldRequest("hkbank", ACCOUNT, held_amount=5).to_json() == {
        "bank": "hkbank", "account_id": ACCOUNT, "held_amount": 5}
    assert w.AuditRequest().to_json() == {}
    assert w.ListAccountsRequest.from_json({}) == w.ListAccountsRequest()
    initiate = w.InitiateRequest("r", ACCOUNT, "usbank", OTHER, 1)
    assert initiate.payment == w.BatchPayment("usbank", OTHER, 1)
    assert "ttl_seconds" not in initiate.to_json()


@pytest.mark.parametrize(
    ("kind", "data", "code", "detail"),
    [
        (w.MoveRequest, {"reference": "r", "account_id": ACCOUNT}, "INVALID_ARGUMENT",
         "request.amount is required"),
        (w.MoveRequest, {"reference": "r", "account_id": ACCOUNT, "amount": 0},
         "INVALID_AMOUNT", "request.amount must be a positive integer of minor units"),
        (w.MoveRequest, {"reference": "r", "account_id": ACCOUNT, "amount": True},
         "INVALID_AMOUNT", "request.amount must be a positive integer of minor units"),
        (w.MoveRequest, {"reference": "r", "account_id": ACCOUNT, "amount": MAX_AMOUNT + 1},
         "INVALID_AMOUNT", "request.amount must be a positive integer of minor units"),
        (w.MoveRequest, {"account_id": ACCOUNT, "amount": 1}, "INVALID_ARGUMENT",
         "request.reference is required"),
        (w.MoveRequest, {"reference": "r", "account_id": ACCOUNT, "amount": 1, "x": 1},
         "INVALID_ARGUMENT", "request has an unknown field x"),
        (w.TransferRequest, {"reference": "r", "from_account": ACCOUNT, "to_account": ACCOUNT,
                             "amount": 1}, "INVALID_ARGUMENT",
         "request.to_account must differ from request.from_account"),
        (w.HoldRequest, {"bank": "hkbank", "account_id": ACCOUNT}, "INVALID_ARGUMENT",
         "request must freeze or hold an amount (use release_hold)"),
        (w.BatchRequest, {"reference": "r", "payer_account": ACCOUNT,
                          "payments": [{"payee_bank": "usbank", "payee_account": OTHER,
                                        "amount": -5}]},
         "INVALID_AMOUNT", "request.payments[0].amount must be a positive integer of minor units"),
        (w.OpenAccountRequest, {"reference": "r", "currency": "USD", "owner_ref": "o",
                                "limits": {"single_payment": -1}}, "INVALID_ARGUMENT",
         "request.limits.single_payment must be between 0 and 9223372036854775807"),
        (w.BatchRequest, {"reference": "r", "payer_account": ACCOUNT, "payments": [7]},
         "INVALID_ARGUMENT", "request.payments[0] must be an object"),
        (w.BatchRequest, {"reference": "r", "payer_account": ACCOUNT, "payments": []},
         "INVALID_ARGUMENT", "request.payments must hold at least one payment"),
        (w.PendingRequest, {"direction": "sideways"}, "INVALID_ARGUMENT",
         "request.direction must be one of incoming, outgoing"),
    ],
)
def test_a_bad_request_names_its_field_with_a_code_of_the_table(
    kind: type[w.Request], data: dict[str, object], code: str, detail: str
) -> None:
    with pytest.raises(WireError) as caught:
        kind.from_json(data)
    assert (caught.value.code, caught.value.detail) == (code, detail)
    assert code in {row.code for row in ERROR_CODES}


def test_canonical_json_and_timestamps_are_fixed() -> None:
    assert TRANSIENT_KEY == "request"
    assert canonical_json({"b": 1, "a": ["é", 2]}) == '{"a":["é",2],"b":1}'.encode()
    moment = datetime(2025, 1, 6, 17, 0, 1, 5, tzinfo=timezone(timedelta(hours=8)))
    text = format_timestamp(moment)
    assert text == "2025-01-06T09:00:01.000005Z"
    assert parse_timestamp(text) == moment
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2025, 1, 6))


def test_both_sides_export_the_wire_classes_and_the_table_is_their_tree() -> None:
    import dtoken_wire.errors as wire

    assert [row.code for row in ERROR_CODES] == [cls.code for cls in wire.REFUSALS]
    assert len(wire.CODES) == len(ERROR_CODES)
    assert contract.DepositTokenError is wire.ContractError is sdk.ContractError
    for row in ERROR_CODES:
        cls = getattr(wire, row.name)
        assert getattr(contract, row.name) is cls is getattr(sdk, row.name)
        assert cls.code == row.code
        assert row.doc
        parent = wire.ContractError if row.parent is None else getattr(wire, row.parent)
        assert cls.__bases__[0] is parent
        assert row.builtin is None or issubclass(cls, row.builtin)
    assert ERROR_CODES[0].builtin is ValueError
    assert ERROR_CODES[1].parent == "InvalidArgument"


def test_a_refusal_is_read_from_the_first_code_at_a_word_start() -> None:
    import dtoken_wire.errors as wire

    found = wire.refusal_from_message("chaincode response 500, XFROZEN: a NOT_FOUND: b",
                                      transaction_id="t")
    assert type(found) is wire.NotFound
    assert (found.detail, found.transaction_id, str(found)) == ("b", "t", "NOT_FOUND: b")
    assert wire.refusal_from_message("no code here") is None


def test_the_wire_package_imports_only_the_standard_library() -> None:
    code = (
        "import sys, dtoken_wire, dtoken_wire.requests; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'dtoken', 'deposit_token', 'fabgateway', 'fabshim', 'fabcontract', 'consortium'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_requests_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.MoveRequest("r", ACCOUNT, 1).amount = 2  # type: ignore[misc]


@pytest.mark.parametrize(("field", "value"), [
    ("lock", "AB" * 32), ("lock", "ab" * 31), ("lock", "zz" * 32),
])
def test_a_lock_is_64_lowercase_hex_digits(field: str, value: str) -> None:
    good = w.LockRequest("ref-9", ACCOUNT, "cnbank", OTHER, 13, "ab" * 32, 7200).to_json()
    with pytest.raises(WireError, match=rf"request\.{field} "):
        w.LockRequest.from_json({**good, field: value})


def test_a_lock_request_needs_its_deadline() -> None:
    good = w.LockRequest("ref-9", ACCOUNT, "cnbank", OTHER, 13, "ab" * 32, 7200).to_json()
    del good["ttl_seconds"]
    with pytest.raises(WireError, match="ttl_seconds"):
        w.LockRequest.from_json(good)


@pytest.mark.parametrize(("field", "value"), [
    ("rate_numerator", 0), ("rate_denominator", 0), ("rate_numerator", 10**12 + 1),
    ("rate_numerator", 7.5), ("to_currency", "USD"), ("rounding", "nearest"),
    ("ttl_seconds", 10), ("amount", 0),
])
def test_a_quote_offer_states_an_exact_rate_and_a_window(field: str, value: object) -> None:
    """A rate is a ratio of two positive integers (never a float), the currencies differ,
    the rounding is one of the two the quote may state, the window is bounded."""
    good = w.OfferQuoteRequest("q" * 22, "usbank", "USD", "CNH", 100, 72345, 10000).to_json()
    assert w.OfferQuoteRequest.from_json(good).rounding is Rounding.BANK
    with pytest.raises(WireError, match=rf"request\.{field}|must differ"):
        w.OfferQuoteRequest.from_json({**good, field: value})
