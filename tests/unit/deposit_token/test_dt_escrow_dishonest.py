"""Escrow from the dishonest bank's side: what its own peer can get committed, and what the
honest bank and the regulator then see (invalidated by Fabric, or counted by nobody and
reported naming it)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from deposit_token.errors import DepositTokenError
from deposit_token.keys import (
    escrow_claim_key,
    escrow_key,
    escrow_refund_key,
    escrow_release_key,
)
from deposit_token.records import Escrow, EscrowClaim, EscrowRefund, decode
from dtoken_wire.codec import format_timestamp
from fabshim.errors import EndorsementPolicyFailureError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


def place_forged(t: Trade, collection: str, key: str) -> None:
    """Record where the forged record stands in ledger order (what the SDK proves from the
    blocks): after everything committed so far."""
    stored = t.net.ledger.get_private_data(collection, key)
    assert stored is not None
    t.net.order.setdefault(hashlib.sha256(stored).hexdigest(), (t.net.ledger.height, 0))


async def test_a_ruling_presented_after_the_seller_was_paid_undoes_nothing() -> None:
    """Issue 17 item 3, hole 2. hkbank chose the arbiter's key (its own). The marketplace
    attested delivery in time and usbank paid its seller; then hkbank's modified server
    refunds its buyer on a ``refund`` ruling signed with that key. The claim came first in
    ledger order, so it stands: hkbank owes the price, its refund counts for nobody and is
    reported naming it. A reader without the ledger order sees a dispute (neither counted),
    never the seller's claim as unproven."""
    t = await trade()
    escrow = await t.open(days=3)
    await t.claim(escrow, t.attester.sign(escrow, "release", t.net.now))
    assert (await obligations(t))[0] == PRICE
    ruling = t.arbiter.sign(escrow, "refund", t.net.now - timedelta(hours=1))
    key = escrow_refund_key(escrow["escrow_id"])
    await forge(t.net, THERE, key, EscrowRefund(
        escrow_id=escrow["escrow_id"], payer_bank=HK, payee_bank=US, amount=PRICE,
        currency="USD", cause="statement", refunded_at=format_timestamp(t.net.now),
        statement=ruling, tx_id="forged"))
    # without the ledger order: disputed, and both records listed for the SDK to place
    page = await t.net.obligations(HK, US, org=US, order=False)
    (ob,) = page["obligations"]
    assert (ob["owed"], ob["disputed"]) == (0, PRICE)
    (dispute,) = page["disputes"]
    assert (dispute["escrow_id"], dispute["accept"]["writer"],
            dispute["refund"]["writer"]) == (escrow["escrow_id"], US, HK)
    view = await t.view(escrow["escrow_id"], US)
    assert (view["state"], view["anomalies"]) == ("disputed", [])
    assert view["dispute"]["refund"]["key"] == key
    # with it (the forged refund committed after the claim): the claim counts
    place_forged(t, THERE, key)
    owed, page = await obligations(t)
    assert owed == PRICE
    assert page["disputes"] == []
    assert page["anomalies"] == {}  # (the refund is usbank's concern only in the audit)
    order = {k: list(v) for k, v in t.net.order.items()}
    view = await t.net.evaluate(US, "get_escrow", {
        "escrow_id": escrow["escrow_id"], "payer_bank": HK, "payee_bank": US,
        "ledger_order": order})
    assert (view["state"], view["anomalies"]) == ("paid", ["escrow_refund_after_claim"])
    audit = await t.net.audit()
    assert not audit["ok"]
    assert audit["anomalies"] == {"hkbank/pair-hkbank-usbank/escrow_refund_after_claim": 1}
    (pair,) = [p for p in audit["pairs"] if (p["payer"], p["payee"]) == (HK, US)]
    assert (pair["accepted"], pair["refunded"], pair["disputed"]) == (PRICE, 0, 0)


async def test_a_claim_presented_after_a_refund_on_a_ruling_undoes_nothing() -> None:
    """The same race from the other side: hkbank refunded its buyer on the arbiter's
    ``refund`` ruling; usbank's modified server then claims on a ``release`` ruling the
    arbiter signed earlier (by the statements' times alone it would win). The refund came
    first in ledger order: it stands, hkbank owes nothing, the claim is reported naming
    usbank."""
    t = await trade()
    escrow = await t.open(days=3)
    earlier = t.arbiter.sign(escrow, "release", t.net.now - timedelta(hours=2))
    await t.refund(escrow, t.arbiter.sign(escrow, "refund", t.net.now))
    key = escrow_claim_key(escrow["escrow_id"])
    await forge(t.net, BACK, key, claim(escrow, basis="statement", statement=earlier))
    place_forged(t, BACK, key)
    owed, page = await obligations(t)
    assert owed == 0
    assert page["anomalies"] == {"usbank/pair-usbank-hkbank/escrow_claim_after_refund": 1}
    view = await t.view(escrow["escrow_id"], US)
    assert view["state"] == "disputed"  # (no ledger order given)
    audit = await t.net.audit()
    assert audit["anomalies"] == {"usbank/pair-usbank-hkbank/escrow_claim_after_refund": 1}
    (pair,) = [p for p in audit["pairs"] if (p["payer"], p["payee"]) == (HK, US)]
    assert (pair["accepted"], pair["refunded"]) == (0, PRICE)


async def test_a_refund_at_the_deadline_is_no_race() -> None:
    """A refund on the payer bank's own word (no statement) is still outranked by a
    delivery attested in time whatever the order (rule 4): no dispute is listed."""
    t = await trade()
    escrow = await t.open(days=1)
    attested = t.attester.sign(escrow, "release", t.net.now)
    t.net.advance(days=1)
    await t.refund(escrow)
    await t.claim(escrow, attested)
    page = await t.net.obligations(HK, US, org=US, order=False)
    assert page["disputes"] == []
    assert [o["owed"] for o in page["obligations"]] == [PRICE]


async def test_the_payee_bank_sees_whose_keys_the_terms_carry() -> None:
    """Issue 17 item 3, hole 1. hkbank registers its own key under the name "marketplace"
    and opens an escrow naming it. usbank registered the marketplace's real key under that
    name: its ``get_escrow`` (and ``list_escrows``) show each party's key fingerprint and
    ``mismatch``, so its seller does not ship; with the real key, ``match``; a party usbank
    never registered, ``unregistered``; the regulator sees the fingerprints, unchecked, and
    no PEM."""
    real = Signer("marketplace")
    t = await trade()  # hkbank registered its own "marketplace" key (t.attester)
    await t.net.submit(US, "register_attester", {"name": "marketplace",
                                                 "public_key_pem": real.pem})
    escrow = await t.open()
    view = await t.view(escrow["escrow_id"], US)
    assert "attester_key" not in view["escrow"]
    assert [(p["role"], p["name"], p["here"]) for p in view["parties"]] == [
        ("attester", "marketplace", "mismatch"), ("arbiter", "arbiter-hk", "unregistered")]
    own = hashlib.sha256(serialization.load_pem_public_key(t.attester.pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()
    assert view["parties"][0]["key_sha256"] == own
    page = await t.net.evaluate(US, "list_escrows", {"payer_bank": HK, "payee_bank": US})
    assert [p["here"] for p in page["escrows"][0]["parties"]] == ["mismatch", "unregistered"]
    assert [p["here"] for p in (await t.view(escrow["escrow_id"], HK))["parties"]] == [
        "match", "match"]
    regulator = await t.net.evaluate("regulator", "get_escrow", {
        "escrow_id": escrow["escrow_id"], "payer_bank": HK, "payee_bank": US},
        caller=t.net.caller("regulator", "auditor"))
    assert [p["here"] for p in regulator["parties"]] == ["unchecked", "unchecked"]
    # an honest payer bank registered the keys the payee bank registered: match
    fair = await trade()
    for party in (fair.attester, fair.arbiter):
        await fair.net.submit(US, "register_attester", {"name": party.name,
                                                        "public_key_pem": party.pem})
    opened = await fair.open()
    assert [p["here"] for p in (await fair.view(opened["escrow_id"], US))["parties"]] == [
        "match", "match"]


RACE_OPS = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 30)),  # hours
    st.tuples(st.just("claim"), st.sampled_from(["attester", "arbiter"]),
              st.integers(-30, 30)),  # an honest claim on a statement signed at now + hours
    st.tuples(st.just("refund"), st.sampled_from(["attester", "arbiter"]),
              st.integers(-30, 30)),  # an honest refund on a statement
    st.tuples(st.just("forge_claim"), st.sampled_from(["attester", "arbiter"]),
              st.integers(-30, 30)),  # usbank's claim, skipping the refund read
    st.tuples(st.just("forge_refund"), st.integers(-30, 30)),  # hkbank's, on its arbiter
)


async def race_step(t: Trade, escrow: dict[str, Any], op: tuple[Any, ...]) -> None:
    eid = escrow["escrow_id"]
    if op[0] == "advance":
        t.net.advance(hours=op[1])
        return
    if op[0] == "forge_refund":
        ruling = t.arbiter.sign(escrow, "refund", t.net.now + timedelta(hours=op[1]))
        record: EscrowRefund | EscrowClaim = EscrowRefund(
            escrow_id=eid, payer_bank=HK, payee_bank=US, amount=PRICE, currency="USD",
            cause="statement", refunded_at=format_timestamp(t.net.now), statement=ruling,
            tx_id="forged")
        where, key = THERE, escrow_refund_key(eid)
    else:
        party = t.attester if op[1] == "attester" else t.arbiter
        verdict = "refund" if op[0] == "refund" else "release"
        said = party.sign(escrow, verdict, t.net.now + timedelta(hours=op[2]))
        if op[0] != "forge_claim":
            with contextlib.suppress(DepositTokenError):  # an honest refusal is fine
                await (t.refund(escrow, said) if op[0] == "refund" else t.claim(escrow, said))
            return
        record = claim(escrow, basis="statement", statement=said,
                       claimed_at=format_timestamp(t.net.now))
        where, key = BACK, escrow_claim_key(eid)
    if t.net.ledger.get_private_data(where, key) is not None:
        return  # written once: a rewrite is invalidated (tested above)
    await forge(t.net, where, key, record)
    place_forged(t, where, key)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(RACE_OPS, min_size=1, max_size=8))
def test_a_claim_that_counts_is_final_whatever_either_bank_writes_later(
    ops: list[tuple[Any, ...]]
) -> None:
    """Honest claims and refunds on statements interleaved with each bank's modified server
    writing its record without reading the other's (hkbank refunding on a ruling of its own
    arbiter, usbank claiming on any statement). With the ledger order proven: once the
    seller's claim counts it keeps counting (and hkbank owes the price), once a refund on a
    statement counts it keeps counting; the obligations agree with the escrow's state."""

    async def run() -> None:
        t = await trade()
        escrow = await t.open(days=1)
        final: str | None = None
        for op in ops:
            await race_step(t, escrow, op)
            order = {k: list(v) for k, v in t.net.order.items()}
            view = await t.net.evaluate(US, "get_escrow", {
                "escrow_id": escrow["escrow_id"], "payer_bank": HK, "payee_bank": US,
                "ledger_order": order})
            state = view["state"]
            assert state != "disputed"
            if final is not None:
                assert state == final, (op, view)
            if state == "paid" or (state == "refunded"
                                   and view["refund"]["cause"] == "statement"):
                final = state
            owed, _ = await obligations(t)
            assert owed == (PRICE if state == "paid" else 0)

    asyncio.run(run())
