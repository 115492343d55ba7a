"""Property: in any interleaving of releases, claims, refunds, rulings and the deadline
passing, run by honest banks within or across banks, no customer loses money: the buyer is
debited the price once and gets it back only by a refund, the seller is credited it only by a
claim that counts, the payer bank owes exactly what the seller was paid, and the audit
balances.

One interleaving pays both customers, by the rule (docs/token-model.md, "Escrow"): the payer
bank refunded at the deadline on its own word, and the payee bank then presented a delivery
the attester had signed before the deadline. The buyer keeps the refund, the seller keeps the
payment, the payer bank owes the payee bank the price, and the refund is reported
(``escrow_refund_against_release``) for the payer bank to recover. Nothing else does."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from deposit_token.errors import DepositTokenError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit.deposit_token.escrow_fixtures import FUNDS, HK, PRICE, US, Trade, trade

OPS = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 60)),  # hours
    st.tuples(st.just("attest"), st.sampled_from(["release", "refund"]),
              st.integers(-30, 60)),  # signed at now + hours
    st.tuples(st.just("rule"), st.sampled_from(["release", "refund"]), st.integers(-30, 30)),
    st.tuples(st.just("release")),
    st.tuples(st.just("claim")),
    st.tuples(st.just("refund")),
)


async def step(t: Trade, escrow: dict[str, Any], op: tuple[Any, ...]) -> None:
    now = t.net.now
    with contextlib.suppress(DepositTokenError):  # an honest refusal is a fine outcome
        if op[0] == "advance":
            t.net.advance(hours=op[1])
        elif op[0] == "attest":
            said = t.attester.sign(escrow, op[1], now + timedelta(hours=op[2]))
            await (t.claim(escrow, said) if op[1] == "release" else t.refund(escrow, said))
        elif op[0] == "rule":
            ruling = t.arbiter.sign(escrow, op[1], now + timedelta(hours=op[2]))
            await (t.claim(escrow, ruling) if op[1] == "release" else t.refund(escrow, ruling))
        elif op[0] == "release":
            await t.release(escrow)
        elif op[0] == "claim":
            await t.claim(escrow)
        else:
            await t.refund(escrow)


async def check(t: Trade, escrow: dict[str, Any]) -> None:
    buyer, seller = await t.balances()
    view = await t.view(escrow["escrow_id"], t.payee_bank)
    state = view["state"]
    both = state == "paid" and view["refund"] is not None
    assert seller == (PRICE if state == "paid" else 0)
    if both:
        assert t.payer_bank != t.payee_bank
        assert view["refund"]["cause"] == "deadline"
        assert view["claim"]["basis"] == "statement"
        assert view["anomalies"] == ["escrow_refund_against_release"]
        assert buyer == FUNDS
    else:
        assert view["anomalies"] == []
        held = PRICE if state in ("held", "due", "released") else 0
        assert buyer + seller + held == FUNDS
        assert buyer == (FUNDS if state == "refunded" else FUNDS - PRICE)
    if t.payer_bank != t.payee_bank:
        page = await t.net.obligations(t.payer_bank, t.payee_bank, org=t.payer_bank)
        owed = {(o["debtor"], o["creditor"]): o["owed"] for o in page["obligations"]}
        assert owed.get((t.payer_bank, t.payee_bank), 0) == seller
        assert page["anomalies"] == {}
    audit = await t.net.audit(page_size=50)
    if both:
        assert audit["anomalies"] == {
            f"{t.payer_bank}/pair-{t.payer_bank}-{t.payee_bank}/escrow_refund_against_release": 1}
    else:
        assert audit["ok"], audit["failures"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=1, max_size=10), within=st.booleans(),
       on_deadline=st.sampled_from(["refund", "release"]))
def test_no_customer_loses_money_in_any_interleaving(
    ops: list[tuple[Any, ...]], within: bool, on_deadline: str
) -> None:
    async def run() -> None:
        t = await trade(HK, HK if within else US)
        escrow = await t.open(days=1, on_deadline=on_deadline)
        for op in ops:
            await step(t, escrow, op)
            await check(t, escrow)

    asyncio.run(run())
