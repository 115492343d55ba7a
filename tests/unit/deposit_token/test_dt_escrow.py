"""Escrow until a condition: each flow within and across banks, each refusal, and what the
obligations and the audit count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from deposit_token import errors as e
from unit.deposit_token.dt_harness import account_keys
from unit.deposit_token.escrow_fixtures import CN, FUNDS, HK, PRICE, US, Signer, trade


async def history_kinds(t: Any, bank: str, account: str) -> list[str]:
    page = await t.net.evaluate(bank, "get_history", {"account_id": account})
    return [r["kind"] for r in page["records"]]


async def owed(t: Any) -> int:
    page = await t.net.obligations(t.payer_bank, t.payee_bank, org=t.payee_bank)
    amounts = {(o["debtor"], o["creditor"]): o["owed"] for o in page["obligations"]}
    assert page["anomalies"] == {}
    return amounts.get((t.payer_bank, t.payee_bank), 0)


async def test_delivery_attested_by_the_marketplace_releases_across_banks() -> None:
    t = await trade()
    escrow = await t.open()
    assert await t.balances() == (FUNDS - PRICE, 0)
    assert (await t.view(escrow["escrow_id"], US))["state"] == "held"
    assert "escrow_out" in await history_kinds(t, HK, t.buyer)
    audit = await t.net.audit()
    assert audit["ok"], audit["failures"]
    (pair,) = [p for p in audit["pairs"] if (p["payer"], p["payee"]) == (HK, US)]
    assert (pair["in_escrow"], pair["in_flight"]) == (PRICE, PRICE)
    assert await owed(t) == 0
    # the seller's bank cannot take it before the condition holds
    with pytest.raises(e.InvalidState, match="is not proven"):
        await t.claim(escrow)
    await t.claim(escrow, t.attester.sign(escrow, "release", t.net.now))
    assert await t.balances() == (FUNDS - PRICE, PRICE)
    assert "escrow_in" in await history_kinds(t, US, t.seller)
    assert (await t.view(escrow["escrow_id"]))["state"] == "paid"
    assert await owed(t) == PRICE
    audit = await t.net.audit()
    assert audit["ok"], audit["failures"]
    with pytest.raises(e.InvalidState, match="paid already"):
        await t.claim(escrow, t.attester.sign(escrow, "release", t.net.now))
    with pytest.raises(e.InvalidState):
        await t.refund(escrow)


async def test_the_buyers_confirmation_releases() -> None:
    t = await trade()
    escrow = await t.open(attester=None, arbiter=None)
    await t.release(escrow)
    assert (await t.view(escrow["escrow_id"], US))["state"] == "released"
    assert "escrow_released" in await history_kinds(t, HK, t.buyer)
    assert await owed(t) == 0  # released, not yet credited: still in flight
    await t.claim(escrow)
    assert await t.balances() == (FUNDS - PRICE, PRICE)
    assert await owed(t) == PRICE
    with pytest.raises(e.InvalidState, match="released already"):
        await t.release(escrow)


async def test_the_deadline_refunds_the_buyer_and_not_before() -> None:
    t = await trade()
    escrow = await t.open(days=2)
    with pytest.raises(e.NotExpired):
        await t.refund(escrow)
    t.net.advance(days=2)
    assert (await t.view(escrow["escrow_id"], US))["state"] == "due"
    # a delivery attested after the deadline proves nothing
    late = t.attester.sign(escrow, "release", t.net.now)
    with pytest.raises(e.InvalidArgument, match="does not hold"):
        await t.claim(escrow, late)
    await t.refund(escrow)
    assert await t.balances() == (FUNDS, 0)
    assert "escrow_refund" in await history_kinds(t, HK, t.buyer)
    assert (await t.view(escrow["escrow_id"], US))["state"] == "refunded"
    with pytest.raises(e.InvalidState):
        await t.claim(escrow)
    with pytest.raises(e.InvalidState, match="paid back already"):
        await t.refund(escrow)
    assert await owed(t) == 0
    assert (await t.net.audit())["ok"]


async def test_terms_that_release_at_the_deadline() -> None:
    t = await trade()
    escrow = await t.open(days=1, on_deadline="release")
    t.net.advance(days=1, seconds=1)
    with pytest.raises(e.InvalidState, match="goes to the payee"):
        await t.refund(escrow)
    await t.release(escrow)
    view = await t.view(escrow["escrow_id"], US)
    assert view["release"]["cause"] == "deadline"
    await t.claim(escrow)
    assert await t.balances() == (FUNDS - PRICE, PRICE)


@pytest.mark.parametrize("forgery", ["other_key", "unnamed_signer", "attester_refund",
                                     "altered_amount", "garbage_signature"])
async def test_a_statement_that_does_not_hold_releases_nothing(forgery: str) -> None:
    t = await trade()
    escrow = await t.open()
    now = t.net.now
    statement = {
        "other_key": lambda: Signer("marketplace").sign(escrow, "release", now),
        "unnamed_signer": lambda: Signer("courier").sign(escrow, "release", now),
        "attester_refund": lambda: t.attester.sign(escrow, "refund", now),
        "altered_amount": lambda: t.attester.sign({**escrow, "amount": 1}, "release", now),
        "garbage_signature": lambda: {**t.attester.sign(escrow, "release", now),
                                      "signature": "AAAAAAAAAAAAAAAAAAAAAAAA"},
    }[forgery]()
    with pytest.raises(e.InvalidArgument, match="does not hold"):
        await t.claim(escrow, statement)
    if forgery == "attester_refund":
        with pytest.raises(e.InvalidArgument, match="does not hold"):
            await t.refund(escrow, statement)
    assert await t.balances() == (FUNDS - PRICE, 0)


async def test_an_unregistered_party_cannot_be_named() -> None:
    t = await trade()
    with pytest.raises(e.NotFound, match="attester"):
        await t.open(attester="courier")
    # a party registered at the payee's bank only is not the payer bank's to trust
    await t.net.submit(US, "register_attester", {"name": "courier",
                                                 "public_key_pem": Signer("courier").pem})
    with pytest.raises(e.NotFound, match="arbiter"):
        await t.open(arbiter="courier")
    with pytest.raises(e.AlreadyExists):
        await t.net.submit(HK, "register_attester", {"name": "marketplace",
                                                     "public_key_pem": Signer("x").pem})
    other = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(e.InvalidArgument, match="P-256"):
        await t.net.submit(HK, "register_attester", {"name": "p384",
                                                     "public_key_pem": other.decode()})


async def test_the_arbiter_settles_a_dispute_either_way() -> None:
    t = await trade()
    refunded, paid = await t.open(), await t.open()
    ruling = t.arbiter.sign(refunded, "refund", t.net.now)
    with pytest.raises(e.InvalidState):
        await t.claim(refunded, ruling)  # a refund ruling proves no release
    await t.refund(refunded, ruling)  # before the deadline: the condition failed
    await t.claim(paid, t.arbiter.sign(paid, "release", t.net.now))
    assert await t.balances() == (FUNDS - PRICE, PRICE)
    assert await owed(t) == PRICE
    assert (await t.net.audit())["ok"]


async def test_the_earliest_statement_decides() -> None:
    """The arbiter ruled refund before the marketplace attested delivery: the refund stands
    and the later attestation proves nothing; and the payer bank cannot refund on a ruling
    once its escrow was paid."""
    t = await trade()
    escrow, paid = await t.open(), await t.open()
    ruling = t.arbiter.sign(escrow, "refund", t.net.now)
    attested = t.attester.sign(escrow, "release", t.net.now + timedelta(hours=1))
    t.net.advance(hours=2)
    await t.refund(escrow, ruling)
    with pytest.raises(e.InvalidState):
        await t.claim(escrow, attested)
    assert await t.balances() == (FUNDS - PRICE, 0)
    await t.claim(paid, t.attester.sign(paid, "release", t.net.now))
    with pytest.raises(e.InvalidState, match="paid to the payee"):
        await t.refund(paid, t.arbiter.sign(paid, "refund", t.net.now - timedelta(hours=2)))


async def test_escrow_within_one_bank() -> None:
    t = await trade(HK, HK)
    attested, confirmed, expired = await t.open(), await t.open(), await t.open(days=1)
    audit = await t.net.audit()
    assert audit["ok"], audit["failures"]
    (row,) = [b for b in audit["banks"] if (b["bank"], b["currency"]) == (HK, "USD")]
    assert row["escrowed"] == 3 * PRICE
    with pytest.raises(e.InvalidArgument, match="statement is required"):
        await t.claim(attested)
    await t.claim(attested, t.attester.sign(attested, "release", t.net.now))
    await t.release(confirmed)
    assert await t.balances() == (FUNDS - 3 * PRICE, 2 * PRICE)
    t.net.advance(days=1)
    await t.refund(expired)
    assert await t.balances() == (FUNDS - 2 * PRICE, 2 * PRICE)
    with pytest.raises(e.InvalidState):
        await t.claim(confirmed, t.attester.sign(confirmed, "release", t.net.now))
    page = await t.net.evaluate(HK, "list_escrows", {"payer_bank": HK, "payee_bank": HK})
    assert sorted(x["state"] for x in page["escrows"]) == ["paid", "paid", "refunded"]
    audit = await t.net.audit()
    assert audit["ok"], audit["failures"]
    assert [b["escrowed"] for b in audit["banks"] if b["bank"] == HK] == [0]


async def test_no_third_bank_reads_an_escrow() -> None:
    t = await trade()
    escrow = await t.open()
    with pytest.raises(e.NotAuthorized):
        await t.view(escrow["escrow_id"], CN)
    page = await t.net.evaluate("regulator", "get_escrow", {
        "escrow_id": escrow["escrow_id"], "payer_bank": HK, "payee_bank": US},
        caller=t.net.caller("regulator", "auditor"))
    assert page["state"] == "held"
    assert "attester_key" not in page["escrow"]


async def test_listing_pages_through_escrows() -> None:
    t = await trade()
    opened = {(await t.open(amount=1000 + i))["escrow_id"] for i in range(5)}
    seen: set[str] = set()
    after = None
    for _ in range(5):
        req: dict[str, Any] = {"payer_bank": HK, "payee_bank": US, "page_size": 2}
        if after:
            req["after"] = after
        page = await t.net.evaluate(US, "list_escrows", req)
        seen |= {x["escrow"]["escrow_id"] for x in page["escrows"]}
        after = page["next"]
        if after is None:
            break
    assert seen == opened


async def test_a_retried_open_is_refused_and_moves_nothing() -> None:
    t = await trade()
    await t.open()
    t.n -= 1  # the same client reference again
    with pytest.raises(e.DuplicateReference):
        await t.open()
    assert await t.balances() == (FUNDS - PRICE, 0)


async def test_the_attester_can_sign_that_the_deadline_passed_undelivered() -> None:
    """The strong deadline refund: the attester's signed ``refund`` (at or after the
    deadline). Before the deadline it proves nothing; after it, the payer bank refunds on it,
    and an honest payee bank does not contest it."""
    t = await trade()
    escrow = await t.open(days=1)
    with pytest.raises(e.InvalidArgument, match="does not hold"):
        await t.refund(escrow, t.attester.sign(escrow, "refund", t.net.now))
    t.net.advance(days=1)
    await t.refund(escrow, t.attester.sign(escrow, "refund", t.net.now))
    assert await t.balances() == (FUNDS, 0)
    with pytest.raises(e.InvalidState, match="paid back"):
        await t.claim(escrow, t.attester.sign(escrow, "release",
                                              t.net.now - timedelta(days=1)))


async def test_one_seller_claims_many_escrows_in_one_transaction() -> None:
    """claim_escrows: each escrow judged on its own (one unproven is skipped with its code and
    writes nothing), the seller's balance written once with the sum, each claim its own
    pinned record counted as owed."""
    t = await trade()
    escrows = [await t.open() for _ in range(5)]
    for x in escrows[:3]:
        await t.release(x)
    items: list[dict[str, Any]] = [{"escrow_id": x["escrow_id"]} for x in escrows[:3]]
    items.append({"escrow_id": escrows[3]["escrow_id"],
                  "statement": t.attester.sign(escrows[3], "release", t.net.now)})
    items.append({"escrow_id": escrows[4]["escrow_id"]})  # not released: skipped
    sub = await t.net.prepare(US, "claim_escrows", {"payer_bank": HK, "items": items})
    assert sub.result["results"] == ["OK", "OK", "OK", "OK", "INVALID_STATE"]
    seller_key = ("acct-usbank", account_keys(US).account(t.seller))
    assert seller_key in sub.stub.writes
    sub.commit()
    assert await t.balances() == (FUNDS - 5 * PRICE, 4 * PRICE)
    assert await owed(t) == 4 * PRICE
    assert [v["state"] for v in [await t.view(x["escrow_id"]) for x in escrows]] == [
        "paid", "paid", "paid", "paid", "held"]
    with pytest.raises(e.InvalidState, match="none of the escrows"):
        await t.net.submit(US, "claim_escrows", {"payer_bank": HK, "items": items[:2]})
    with pytest.raises(e.InvalidArgument, match="another bank"):
        await t.net.submit(US, "claim_escrows", {"payer_bank": US, "items": items[:1]})
    assert (await t.net.audit())["ok"]
