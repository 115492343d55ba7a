"""Payment requests: an exporter's bank asks a buyer's bank to pay an invoice; paid once,
declined, or expired; seen by both banks and nobody else; a second payment impossible for a
retrying client and for a dishonest payer bank."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from deposit_token import errors as e
from deposit_token.keys import transfer_key
from deposit_token.records import Transfer, decode
from dtoken_wire.codec import format_timestamp
from fabshim.errors import EndorsementPolicyFailureError, MVCCReadConflictError
from unit.deposit_token.dt_harness import Net, ids
from unit.deposit_token.test_dt_dishonest import forge

HK, US, CN = "hkbank", "usbank", "cnbank"
AMOUNT = 987_654
FUNDS = 5_000_000


async def setup() -> tuple[Net, str, str]:
    """usbank's exporter invoices hkbank's buyer (USD)."""
    net = Net()
    await net.init()
    (buyer,) = ids("hkbuyer", 1)
    (exporter,) = ids("usexporter", 1)
    await net.open(HK, "USD", buyer)
    await net.mint(HK, buyer, FUNDS, "dep-buyer")
    await net.open(US, "USD", exporter)
    return net, buyer, exporter


async def send(net: Net, buyer: str, exporter: str, ref: str = "inv-req-1",
               days: float = 30) -> str:
    await net.submit(US, "request_payment", {
        "reference": ref, "payer_bank": HK, "payer_account": buyer,
        "payee_account": exporter, "amount": AMOUNT, "currency": "USD",
        "invoice_ref": "INV-2025-0042", "due": format_timestamp(net.now + timedelta(days=days)),
    })
    got = await net.evaluate(US, "get_reference", {"reference": ref})
    (rid,) = got["ids"]
    return str(rid)


async def status(net: Net, rid: str, org: str) -> dict[str, Any]:
    return await net.evaluate(org, "get_payment_request", {
        "request_id": rid, "payer_bank": HK, "payee_bank": US})


async def approve(net: Net, rid: str, ref: str = "pay-req-1") -> None:
    await net.submit(HK, "approve_request", {"reference": ref, "payee_bank": US,
                                             "request_id": rid})


async def test_an_invoice_paid_by_request() -> None:
    net, buyer, exporter = await setup()
    rid = await send(net, buyer, exporter)
    page = await net.evaluate(HK, "list_payment_requests", {"payer_bank": HK,
                                                            "payee_bank": US})
    (item,) = page["requests"]
    assert (item["status"], item["request"]["invoice_ref"]) == ("pending", "INV-2025-0042")
    await approve(net, rid)
    assert await net.balance(HK, buyer) == FUNDS - AMOUNT
    for org in (HK, US):
        seen = await status(net, rid, org)
        assert (seen["status"], seen["payment_status"]) == ("paid", "pending")
    # the payment is a transfer whose id is the request's: the payee bank accepts it as any
    await net.submit(US, "accept_transfer", {"transfer_id": rid, "payer_bank": HK})
    assert await net.balance(US, exporter) == AMOUNT
    assert (await status(net, rid, US))["payment_status"] == "accepted"
    assert (await net.audit())["ok"]


async def test_no_third_bank_sees_a_request() -> None:
    net, buyer, exporter = await setup()
    rid = await send(net, buyer, exporter)
    with pytest.raises(e.NotAuthorized):
        await status(net, rid, CN)
    with pytest.raises(e.NotAuthorized):
        await net.evaluate(CN, "list_payment_requests", {"payer_bank": HK, "payee_bank": US})


async def test_a_retrying_client_pays_once() -> None:
    net, buyer, exporter = await setup()
    rid = await send(net, buyer, exporter)
    await approve(net, rid)
    with pytest.raises(e.DuplicateReference):
        await approve(net, rid)  # the same reference again
    with pytest.raises(e.AlreadyExists, match="paid already"):
        await approve(net, rid, "pay-req-2")  # a new reference: the request is still paid
    assert await net.balance(HK, buyer) == FUNDS - AMOUNT


async def test_two_approvals_in_one_block_pay_once() -> None:
    """Two clients approve at once (different references): both simulate against the same
    state; the first to commit wins, the second is invalidated (it read the transfer key)."""
    net, buyer, exporter = await setup()
    rid = await send(net, buyer, exporter)
    first = await net.prepare(HK, "approve_request", {"reference": "a", "payee_bank": US,
                                                      "request_id": rid})
    second = await net.prepare(HK, "approve_request", {"reference": "b", "payee_bank": US,
                                                       "request_id": rid})
    first.commit()
    with pytest.raises(MVCCReadConflictError):
        second.commit()
    assert await net.balance(HK, buyer) == FUNDS - AMOUNT


@pytest.mark.parametrize("how", ["rewrite_amount", "delete"])
async def test_a_dishonest_payer_bank_cannot_pay_twice_under_the_request(how: str) -> None:
    """hkbank's modified server writes the payment under the request's id again (to pay and
    debit again, or to change what it paid): the key was pinned to both banks by the first
    payment, so Fabric invalidates it."""
    net, buyer, exporter = await setup()
    rid = await send(net, buyer, exporter)
    await approve(net, rid)
    key = transfer_key(rid)
    stored = net.ledger.get_private_data("pair-hkbank-usbank", key)
    assert stored is not None
    value = None if how == "delete" else replace(decode(Transfer, stored), amount=1)
    with pytest.raises(EndorsementPolicyFailureError):
        await forge(net, "pair-hkbank-usbank", key, value)
    assert net.ledger.get_private_data("pair-hkbank-usbank", key) == stored


async def test_a_payment_that_does_not_match_is_reported() -> None:
    """hkbank's modified server pays the request's id with a smaller amount (a first write,
    which its peer alone can make): the request shows mismatched to both banks."""
    net, buyer, exporter = await setup()
    rid = await send(net, buyer, exporter)
    await forge(net, "pair-hkbank-usbank", transfer_key(rid), Transfer(
        transfer_id=rid, payer_bank=HK, payee_bank=US, payee_account=exporter, amount=1,
        currency="USD", created_at=format_timestamp(net.now),
        expires_at=format_timestamp(net.now + timedelta(days=1)), tx_id="forged"))
    seen = await status(net, rid, US)
    assert (seen["status"], seen["anomalies"]) == ("mismatched", ["request_payment_mismatch"])


async def test_declined_and_expired_requests_cannot_be_paid() -> None:
    net, buyer, exporter = await setup()
    declined = await send(net, buyer, exporter, "r1")
    expiring = await send(net, buyer, exporter, "r2", days=1)
    await net.submit(HK, "decline_request", {"payee_bank": US, "request_id": declined,
                                             "reason": "goods not ordered"})
    with pytest.raises(e.InvalidState, match="declined"):
        await approve(net, declined)
    with pytest.raises(e.InvalidState, match="declined already"):
        await net.submit(HK, "decline_request", {"payee_bank": US, "request_id": declined})
    assert (await status(net, declined, US))["status"] == "declined"
    net.advance(days=1)
    assert (await status(net, expiring, US))["status"] == "expired"
    with pytest.raises(e.Expired):
        await approve(net, expiring, "p2")
    assert await net.balance(HK, buyer) == FUNDS


async def test_a_paid_request_cannot_be_declined() -> None:
    net, buyer, exporter = await setup()
    rid = await send(net, buyer, exporter)
    await approve(net, rid)
    with pytest.raises(e.InvalidState, match="was paid"):
        await net.submit(HK, "decline_request", {"payee_bank": US, "request_id": rid})


async def test_bad_requests_are_refused_with_the_field_named() -> None:
    net, buyer, exporter = await setup()
    base = {"reference": "x", "payer_bank": HK, "payer_account": buyer,
            "payee_account": exporter, "amount": AMOUNT, "currency": "USD",
            "invoice_ref": "INV-1", "due": format_timestamp(net.now + timedelta(days=1))}
    with pytest.raises(e.InvalidArgument, match=r"request\.due"):
        await net.submit(US, "request_payment", {**base, "due": format_timestamp(net.now)})
    with pytest.raises(e.InvalidArgument, match="payer_bank"):
        await net.submit(US, "request_payment", {**base, "payer_bank": US})
    with pytest.raises(e.CurrencyMismatch):
        await net.submit(US, "request_payment", {**base, "currency": "HKD"})
    with pytest.raises(e.InvalidAmount):
        await net.submit(US, "request_payment", {**base, "amount": 1.5})
    with pytest.raises(e.NotFound):
        await approve(net, "z" * 24)
