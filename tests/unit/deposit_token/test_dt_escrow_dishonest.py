"""Escrow from the dishonest bank's side: what its own peer can get committed, and what the
honest bank and the regulator then see (invalidated by Fabric, or counted by nobody and
reported naming it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from deposit_token.keys import (
    escrow_claim_key,
    escrow_key,
    escrow_refund_key,
    escrow_release_key,
)
from deposit_token.records import Escrow, EscrowClaim, EscrowRefund, decode
from dtoken_wire.codec import format_timestamp
from fabshim.errors import EndorsementPolicyFailureError
from unit.deposit_token.escrow_fixtures import FUNDS, HK, PRICE, US, Signer, Trade, trade
from unit.deposit_token.test_dt_dishonest import forge

THERE, BACK = "pair-hkbank-usbank", "pair-usbank-hkbank"


async def obligations(t: Trade) -> tuple[int, dict[str, Any]]:
    page = await t.net.obligations(HK, US, org=HK)
    owed = {(o["debtor"], o["creditor"]): o["owed"] for o in page["obligations"]}
    return owed.get((HK, US), 0), page


def claim(escrow: dict[str, Any], **extra: Any) -> EscrowClaim:
    return EscrowClaim(**{
        "escrow_id": escrow["escrow_id"], "payer_bank": HK, "payee_bank": US,
        "amount": escrow["amount"], "currency": "USD", "basis": "release",
        "claimed_at": format_timestamp(escrow_time(escrow)), "tx_id": "forged", **extra})


def escrow_time(escrow: dict[str, Any]) -> Any:
    from dtoken_wire.codec import parse_timestamp
    return parse_timestamp(escrow["created_at"])


@pytest.mark.parametrize("how", ["no_release", "forged_statement", "late_attestation"])
async def test_the_payee_bank_cannot_take_the_escrow_before_the_condition(how: str) -> None:
    """usbank's modified server writes a claim (pinned, as honest ones are) without a
    condition that holds: hkbank owes nothing for it, the regulator names usbank, and
    hkbank still refunds its customer at the deadline."""
    t = await trade()
    escrow = await t.open(days=1)
    statement = {
        "no_release": {},
        "forged_statement": Signer("marketplace").sign(escrow, "release", t.net.now),
        "late_attestation": t.attester.sign(escrow, "release", t.net.now + timedelta(days=2)),
    }[how]
    await forge(t.net, BACK, escrow_claim_key(escrow["escrow_id"]), claim(
        escrow, basis="statement" if statement else "release", statement=statement))
    owed, page = await obligations(t)
    assert owed == 0
    assert page["anomalies"] == {"usbank/pair-usbank-hkbank/escrow_claim_unproven": 1}
    assert (await t.view(escrow["escrow_id"]))["anomalies"] == ["escrow_claim_unproven"]
    audit = await t.net.audit()
    assert not audit["ok"]
    assert audit["anomalies"] == {"usbank/pair-usbank-hkbank/escrow_claim_unproven": 1}
    t.net.advance(days=1)
    await t.refund(escrow)
    assert await t.balances() == (FUNDS, 0)
    assert (await obligations(t))[0] == 0


async def test_an_early_refund_does_not_undo_a_delivery_attested_in_time() -> None:
    """hkbank's modified server refunds its buyer before the deadline (it claims the deadline
    passed: its own word). The marketplace attested delivery before the deadline: usbank's
    honest server still pays the seller, hkbank owes it, and the refund counts for nobody
    (reported naming hkbank)."""
    t = await trade()
    escrow = await t.open(days=3)
    attested = t.attester.sign(escrow, "release", t.net.now + timedelta(hours=1))
    await forge(t.net, THERE, escrow_refund_key(escrow["escrow_id"]), EscrowRefund(
        escrow_id=escrow["escrow_id"], payer_bank=HK, payee_bank=US, amount=PRICE,
        currency="USD", cause="deadline", refunded_at=format_timestamp(t.net.now),
        tx_id="forged"))
    t.net.advance(hours=2)
    await t.claim(escrow, attested)
    assert (await t.balances())[1] == PRICE
    owed, page = await obligations(t)
    assert owed == PRICE
    assert page["anomalies"] == {}
    audit = await t.net.audit()
    assert audit["anomalies"] == {"hkbank/pair-hkbank-usbank/escrow_refund_against_release": 1}


async def test_a_refund_without_a_holding_cause_counts_for_nobody() -> None:
    """Terms that release at the deadline: hkbank's refund at the deadline is not its to make.
    It counts for nobody; hkbank's own release later still pays the seller."""
    t = await trade()
    escrow = await t.open(days=1, on_deadline="release")
    t.net.advance(days=2)
    await forge(t.net, THERE, escrow_refund_key(escrow["escrow_id"]), EscrowRefund(
        escrow_id=escrow["escrow_id"], payer_bank=HK, payee_bank=US, amount=PRICE,
        currency="USD", cause="deadline", refunded_at=format_timestamp(t.net.now),
        tx_id="forged"))
    view = await t.view(escrow["escrow_id"], US)
    assert (view["state"], view["anomalies"]) == ("due", ["escrow_refund_unproven"])
    audit = await t.net.audit()
    assert audit["anomalies"] == {"hkbank/pair-hkbank-usbank/escrow_refund_unproven": 1}


@pytest.mark.parametrize("rewrite", ["attester_key", "delete", "deadline"])
async def test_the_payer_bank_cannot_rewrite_its_escrow(rewrite: str) -> None:
    """The escrow was pinned to both banks when it opened: hkbank alone can no longer swap
    the attester's key for its own, move the deadline or delete it."""
    t = await trade()
    escrow = await t.open()
    key = escrow_key(escrow["escrow_id"])
    stored = t.net.ledger.get_private_data(THERE, key)
    assert stored is not None
    record = decode(Escrow, stored)
    value = {
        "attester_key": replace(record, attester_key=Signer("mine").pem),
        "deadline": replace(record, deadline=format_timestamp(t.net.now)),
        "delete": None,
    }[rewrite]
    with pytest.raises(EndorsementPolicyFailureError):
        await forge(t.net, THERE, key, value)
    assert t.net.ledger.get_private_data(THERE, key) == stored


async def test_the_payer_bank_cannot_take_back_a_release() -> None:
    t = await trade()
    escrow = await t.open()
    await t.release(escrow)
    key = escrow_release_key(escrow["escrow_id"])
    with pytest.raises(EndorsementPolicyFailureError):
        await forge(t.net, THERE, key, None)
    await t.claim(escrow)
    assert (await obligations(t))[0] == PRICE


async def test_garbage_and_misplaced_escrows_block_nothing() -> None:
    t = await trade()
    good = await t.open()
    await forge(t.net, THERE, escrow_key("g" * 24), b"{not json")
    misplaced = decode(Escrow, t.net.ledger.get_private_data(THERE, escrow_key(
        good["escrow_id"])) or b"")
    await forge(t.net, THERE, escrow_key("m" * 24), replace(
        misplaced, escrow_id="m" * 24, payee_bank="cnbank"))
    page = await t.net.evaluate(US, "list_escrows", {"payer_bank": HK, "payee_bank": US})
    assert [x["escrow"]["escrow_id"] for x in page["escrows"]] == [good["escrow_id"]]
    assert sorted(a["what"] for a in page["anomaly_records"]) == ["undecodable",
                                                                   "wrong_parties"]
    audit = await t.net.audit()
    assert audit["anomalies"] == {"hkbank/pair-hkbank-usbank/undecodable": 1,
                                  "hkbank/pair-hkbank-usbank/wrong_parties": 1}
    await t.claim(good, t.attester.sign(good, "release", t.net.now))
    assert (await obligations(t))[0] == PRICE
