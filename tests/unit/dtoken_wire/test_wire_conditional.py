"""The conditional payments' wire requests: each round-trips through JSON, and a wrong field is
refused naming it (never its value); the statement's signed bytes are canonical."""

from __future__ import annotations

from typing import Any

import pytest
from dtoken_wire import conditional as c
from dtoken_wire.errors import WireError
from dtoken_wire.requests import Request

TS = "2025-03-01T12:00:00.000000Z"
ID = "e" * 32
ACCT = "a" * 24
STATEMENT = c.Statement("marketplace", c.Verdict.RELEASE, TS, "A" * 96)

EXAMPLES: list[Request] = [
    c.RegisterAttesterRequest("marketplace", "-----BEGIN PUBLIC KEY-----\n..."),
    c.OpenEscrowRequest("order-1", ACCT, "usbank", "b" * 24, 12_345, TS,
                        c.DeadlineAction.RELEASE, "marketplace", "arbiter-1", "order 1", ID,
                        {"name": "Kowloon Retail"}),
    c.OpenEscrowRequest("order-2", ACCT, "usbank", "b" * 24, 1, TS),
    c.ReleaseEscrowRequest(ID, "usbank"),
    c.ClaimEscrowRequest(ID, "hkbank", STATEMENT),
    c.ClaimEscrowRequest(ID, "hkbank"),
    c.ClaimEscrowsRequest("hkbank", (c.ClaimItem(ID, STATEMENT), c.ClaimItem("f" * 32))),
    c.RefundEscrowRequest(ID, "usbank", STATEMENT),
    c.EscrowLookup(ID, "hkbank", "usbank"),
    c.ListEscrowsRequest("hkbank", "usbank", 10, ID),
    c.RequestPaymentRequest("inv-1", "hkbank", ACCT, "b" * 24, 99, "USD", "INV-1", TS, ID),
    c.ApproveRequestRequest("pay-1", "usbank", ID, 3600, {"name": "x"}),
    c.DeclineRequestRequest("usbank", ID, "not ordered"),
    c.PaymentRequestLookup(ID, "hkbank", "usbank"),
    c.ListPaymentRequestsRequest("hkbank", "usbank"),
]


def test_every_request_type_has_an_example() -> None:
    assert {type(r) for r in EXAMPLES} == set(c.CONDITIONAL_REQUESTS)


@pytest.mark.parametrize("request_", EXAMPLES, ids=lambda r: type(r).__name__)
def test_each_request_round_trips(request_: Any) -> None:
    assert type(request_).from_json(request_.to_json()) == request_


@pytest.mark.parametrize(("kind", "data", "field"), [
    (c.OpenEscrowRequest, {"reference": "r", "payer_account": ACCT, "payee_bank": "usbank",
                           "payee_account": ACCT, "amount": 5, "deadline": TS},
     "payee_account"),
    (c.OpenEscrowRequest, {"reference": "r", "payer_account": ACCT, "payee_bank": "usbank",
                           "payee_account": "b" * 24, "amount": 5.5, "deadline": TS},
     "amount"),
    (c.OpenEscrowRequest, {"reference": "r", "payer_account": ACCT, "payee_bank": "usbank",
                           "payee_account": "b" * 24, "amount": 5, "deadline": "tomorrow"},
     "deadline"),
    (c.OpenEscrowRequest, {"reference": "r", "payer_account": ACCT, "payee_bank": "usbank",
                           "payee_account": "b" * 24, "amount": 5, "deadline": TS,
                           "on_deadline": "keep"}, "on_deadline"),
    (c.ClaimEscrowRequest, {"escrow_id": ID, "payer_bank": "hkbank",
                            "statement": {**STATEMENT.to_json(), "verdict": "maybe"}},
     "statement.verdict"),
    (c.ClaimEscrowRequest, {"escrow_id": ID, "payer_bank": "hkbank",
                            "statement": {**STATEMENT.to_json(), "signature": "<>"}},
     "statement.signature"),
    (c.ClaimEscrowsRequest, {"payer_bank": "hkbank", "items": []}, "items"),
    (c.ClaimEscrowsRequest, {"payer_bank": "hkbank",
                             "items": [{"escrow_id": ID}, {"escrow_id": ID}]}, "items"),
    (c.RegisterAttesterRequest, {"name": "Not A Name", "public_key_pem": "x"}, "name"),
    (c.RequestPaymentRequest, {"reference": "r", "payer_bank": "hkbank",
                               "payer_account": ACCT, "payee_account": ACCT, "amount": 5,
                               "currency": "usd", "invoice_ref": "I", "due": TS}, "currency"),
    (c.PaymentRequestLookup, {"request_id": ID, "payer_bank": "hkbank",
                              "payee_bank": "hkbank"}, "payee_bank"),
])
def test_a_wrong_field_is_named(kind: Any, data: dict[str, Any], field: str) -> None:
    with pytest.raises(WireError) as refused:
        kind.from_json(data)
    assert f"request.{field}" in str(refused.value)


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(WireError, match="unknown field amount"):
        c.ReleaseEscrowRequest.from_json({"escrow_id": ID, "payee_bank": "usbank",
                                          "amount": 1})


def test_the_signed_bytes_are_canonical_and_name_what_they_are() -> None:
    message = c.statement_message(escrow_id=ID, payer_bank="hkbank", payee_bank="usbank",
                                  amount=12_345, currency="USD", verdict=c.Verdict.RELEASE,
                                  signer="marketplace", signed_at=TS)
    assert message == (
        b'{"amount":12345,"currency":"USD","escrow_id":"' + ID.encode() + b'",'
        b'"kind":"dtoken.escrow.statement/v1","payee_bank":"usbank","payer_bank":"hkbank",'
        b'"signed_at":"' + TS.encode() + b'","signer":"marketplace","verdict":"release"}')
