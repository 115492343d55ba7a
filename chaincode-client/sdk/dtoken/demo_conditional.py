"""The demo's conditional-payment chapters: an order paid into escrow and released by the
marketplace's signed delivery; an exporter's invoice paid by request, once.

Each chapter is one function over the demo's story (:class:`dtoken.demo._Story`: its
connected banks, output, run id and result), played by ``_Story.play`` while the banks'
listeners run (so the payment of the request is accepted by the exporter bank's listener).
Each opens its own accounts, so the main story's balances are untouched; the amounts join
the hkbank/usbank obligations that the story nets and settles afterwards.

Must not: read anything a bank could not read through its own SDK client.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dtoken.conditional import Attester
from dtoken.errors import ContractError

if TYPE_CHECKING:
    from dtoken.demo import _Story

__all__ = ["conditional_chapters", "escrow_until_delivery", "invoice_paid_by_request"]


async def _open(story: _Story, bank: str, key: str, owner: str, deposit: str | None) -> str:
    opened = await story.banks[bank].open_account("USD", f"{owner}-{story.run}",
                                                  reference=story.ref(f"open-{key}"))
    if deposit:
        teller = story.tellers[bank]
        await teller.mint(opened.account_id, teller.money(deposit),
                          reference=story.ref(f"deposit-{key}"))
    story.result.accounts[key] = (bank, opened.account_id)
    return opened.account_id


async def escrow_until_delivery(story: _Story) -> None:
    """Kowloon Retail (hkbank) orders bikes from Liberty Bikes (usbank) on Harbour
    Marketplace: paid into escrow, released by the marketplace's signed delivery."""
    story.step("An order paid into escrow, released by the marketplace's delivery")
    hk, us = story.banks["hkbank"], story.banks["usbank"]
    buyer = await _open(story, "hkbank", "retail", "RETAIL", "2,000.00 USD")
    seller = await _open(story, "usbank", "bikes", "BIKES", None)
    market = Attester.generate(f"harbour-market-{story.run}")
    await hk.register_attester(market.name, market.public_key_pem)
    story.say(f"hkbank registers the marketplace's delivery key as {market.name} (P-256)")
    opened = await hk.escrow(
        buyer, "usbank", seller, hk.money("1,200.00 USD"), reference=story.ref("order-1"),
        deadline=datetime.now(UTC) + timedelta(days=14), attester=market.name,
        remittance=f"order {story.run}-1")
    story.say(f"Kowloon Retail @ hkbank pays 1,200.00 USD into escrow "
              f"{opened.escrow_id[:10]}… for Liberty Bikes @ usbank (deadline in 14 days: "
              "else refunded)")
    kinds = [h.kind for h in await hk.history(buyer)]
    story.say(f"the buyer's history shows it in escrow: {' -> '.join(kinds)}; balance "
              f"{await hk.balance(buyer)}")
    await us.wait_for_commit(opened.receipt.tx_id)
    escrow = await us.get_escrow(opened.escrow_id, "hkbank", "usbank")
    story.say(f"usbank reads the escrow: {escrow.amount}, {escrow.state.value}, attester "
              f"{escrow.attester}")
    try:
        await us.claim_escrow(escrow.escrow_id, "hkbank")
    except ContractError as refused:
        story.say(f"usbank tries to take it before delivery: refused ({refused.code})")
    statement = market.attest(escrow)
    story.say(f"the marketplace signs: delivered ({statement.signed_at})")
    receipt = await us.claim_escrow(escrow.escrow_id, "hkbank", statement)
    await hk.wait_for_commit(receipt.tx_id)
    final = await hk.get_escrow(escrow.escrow_id, "hkbank", "usbank")
    story.result.escrows["order"] = final.state
    story.say(f"usbank presents it and credits Liberty Bikes: {await us.balance(seller)} "
              f"(block {receipt.block_number}); hkbank reads the escrow {final.state.value}")


async def invoice_paid_by_request(story: _Story) -> None:
    """Liberty Bikes (usbank) invoices Kowloon Retail (hkbank) by a payment request;
    hkbank approves it; usbank's listener accepts the payment; a retry pays nothing more."""
    story.step("An exporter's invoice paid by request, once")
    hk, us = story.banks["hkbank"], story.banks["usbank"]
    buyer, seller = story.result.accounts["retail"][1], story.result.accounts["bikes"][1]
    invoice = f"INV-{story.run}-R1"
    asked = await us.request_payment(
        "hkbank", buyer, seller, us.money("450.00 USD"), invoice_ref=invoice,
        due=datetime.now(UTC) + timedelta(days=30), reference=story.ref("request-1"))
    story.say(f"usbank asks hkbank to pay {invoice}: 450.00 USD from Kowloon Retail "
              f"(request {asked.request_id[:10]}…); cnbank sees nothing of it")
    await hk.wait_for_commit(asked.receipt.tx_id)
    waiting = [r for r in await hk.payment_requests("usbank")
               if r.request_id == asked.request_id]
    story.say(f"hkbank's incoming requests: {invoice} {waiting[0].status.value}")
    paid = await hk.approve_request(asked.request_id, "usbank")
    again = await hk.approve_request(asked.request_id, "usbank")
    story.say(f"hkbank approves: paid by transfer {asked.request_id[:10]}… (the request's own "
              f"id; block {paid.block_number}); a retry pays nothing more "
              f"({'already applied' if again.replayed else 'NEW PAYMENT'})")
    deadline = time.monotonic() + 30
    while True:
        seen = await us.get_payment_request(asked.request_id, "hkbank", "usbank")
        if seen.payment_status == "accepted" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    story.result.requests["invoice"] = seen.status
    story.say(f"usbank's listener accepts the payment: request {seen.status.value}, payment "
              f"{seen.payment_status}; Liberty Bikes holds {await us.balance(seller)}")


async def conditional_chapters(story: _Story) -> None:
    """Both chapters, in order."""
    await escrow_until_delivery(story)
    await invoice_paid_by_request(story)
