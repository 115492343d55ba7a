"""``coalesced_payout``: one debit for many payments, each with its own reference and outcome.

What matters: each item is applied exactly once (its reference is the one a single
``initiate_transfer`` claims, and a replayed item is skipped inside a later batch), a refused
item writes nothing while its neighbours go through, the response holds codes only, and the
audit stays OK.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from deposit_token import errors as e
from unit.deposit_token.dt_harness import Net, account_keys, ids

HK, US, CN = "hkbank", "usbank", "cnbank"


@pytest.fixture
async def net() -> Net:
    n = Net()
    await n.init()
    return n


def item(ref: str, bank: str, payee: str, amount: int, tid: str) -> dict[str, Any]:
    return {"reference": ref, "payee_bank": bank, "payee_account": payee, "amount": amount,
            "transfer_id": tid, "originator": {"name": "Marketplace Ltd"}}


async def setup(net: Net, funds: int) -> tuple[str, list[str]]:
    (payer,) = ids("mkpay", 1)
    await net.open(HK, "USD", payer)
    await net.mint(HK, payer, funds, "dep-mk")
    payees = list(ids("mkexp", 3))
    for p in payees:
        await net.open(US, "USD", p)
    return payer, payees


async def two_bank_batch(net: Net) -> tuple[str, list[str], list[str], list[dict[str, Any]]]:
    """A funded payer (50,000), three exporters at usbank and one at cnbank, and a batch of
    five items: four to usbank (1,000 to 1,003, the exporters in turn) with the cnbank one
    (7, the fifth transfer id) third, so that a batch's order crosses banks."""
    payer, payees = await setup(net, 50_000)
    (cn_exporter,) = ids("mkcnexp", 1)
    await net.open(CN, "USD", cn_exporter)
    tids = list(ids("mkbat", 5))
    items = [item(f"b{i}", US, payees[i % 3], 1_000 + i, tids[i]) for i in range(4)]
    items.insert(2, item("b4", CN, cn_exporter, 7, tids[4]))
    return payer, payees, tids, items


async def test_items_apply_on_their_own_and_a_refused_item_is_skipped(net: Net) -> None:
    payer, payees = await setup(net, 5_000)
    tids = list(ids("mktid", 4))
    items = [item("r1", US, payees[0], 2_000, tids[0]),
             item("r2", US, payees[1], 4_000, tids[1]),  # more than is left: refused
             item("r3", US, payees[2], 3_000, tids[2]),
             item("r4", "xxbank", payees[2], 1, tids[3])]  # no such bank: refused
    sub = await net.prepare(HK, "coalesced_payout", {"payer_account": payer, "items": items})
    assert sub.result["results"] == ["OK", "INSUFFICIENT_FUNDS", "OK", "NOT_FOUND"]
    assert sum(1 for _c, k in sub.writes if k == account_keys(HK).account(payer)) == 1
    sub.commit()
    assert await net.balance(HK, payer) == 0
    for ref, tid in (("r1", tids[0]), ("r3", tids[2])):
        got = await net.evaluate(HK, "get_reference", {"reference": ref})
        assert (got["kind"], got["ids"]) == ("initiate_transfer", [tid])
    with pytest.raises(e.NotFound):
        await net.evaluate(HK, "get_reference", {"reference": "r2"})
    # the refused item's reference is not spent: it goes through once funds arrive
    await net.mint(HK, payer, 4_000, "dep-mk2")
    again = await net.submit(HK, "coalesced_payout", {"payer_account": payer, "items": items})
    assert again["results"] == ["DUPLICATE_REFERENCE", "OK", "DUPLICATE_REFERENCE", "NOT_FOUND"]
    assert await net.balance(HK, payer) == 0
    pending = await net.evaluate(US, "get_pending", {"direction": "incoming"})
    for t in pending["transfers"]:
        await net.submit(US, "accept_transfer", {
            "transfer_id": t["transfer"]["transfer_id"], "payer_bank": HK})
    assert [await net.balance(US, p) for p in payees] == [2_000, 4_000, 3_000]
    audit = await net.audit()
    assert audit["ok"], audit["failures"]


async def test_an_item_applied_by_a_single_initiate_is_recognized(net: Net) -> None:
    payer, payees = await setup(net, 5_000)
    await net.initiate(HK, payer, US, payees[0], 1_000, "solo")
    (tid,) = ids("mktid", 1)
    # nothing applies: refused whole (a transaction writing nothing would commit invalid,
    # judged by the chaincode-level policy), the SDK then asks item by item
    with pytest.raises(e.InvalidState):
        await net.submit(HK, "coalesced_payout", {
            "payer_account": payer, "items": [item("solo", US, payees[0], 1_000, tid)]})
    assert await net.balance(HK, payer) == 4_000


async def test_limits_and_holds_count_item_by_item(net: Net) -> None:
    payer, payees = await setup(net, 10_000)
    await net.submit(HK, "set_account_limits", {"account_id": payer, "daily_outflow": 3_000,
                                                "single_payment": 2_500})
    tids = list(ids("mktid", 3))
    result = await net.submit(HK, "coalesced_payout", {"payer_account": payer, "items": [
        item("a", US, payees[0], 2_000, tids[0]),
        item("b", US, payees[1], 2_600, tids[1]),  # over the single-payment limit
        item("c", US, payees[2], 1_500, tids[2]),  # over the day's outflow left
    ]})
    assert result["results"] == ["OK", "LIMIT_EXCEEDED", "LIMIT_EXCEEDED"]
    assert await net.balance(HK, payer) == 8_000


async def test_whole_batch_refusals(net: Net) -> None:
    payer, payees = await setup(net, 1_000)
    (tid,) = ids("mktid", 1)
    with pytest.raises(e.NotFound):
        await net.submit(HK, "coalesced_payout", {
            "payer_account": ids("nobody", 1)[0],
            "items": [item("x", US, payees[0], 1, tid)]})
    with pytest.raises(e.InvalidArgument):
        await net.submit(HK, "coalesced_payout", {"payer_account": payer, "items": [
            item("x", US, payees[0], 1, tid), item("x", US, payees[1], 1, tid)]})
    with pytest.raises(e.InvalidArgument):
        await net.submit(HK, "coalesced_payout", {"payer_account": payer, "items": []})


async def test_a_batch_writes_one_supply_record_per_counterparty_and_the_audit_sums_it(
        net: Net) -> None:
    # every private key written costs each peer a decode of the collection package at
    # validation: a batch's movements of one kind toward one bank are one supply record
    payer, _payees, tids, items = await two_bank_batch(net)
    sub = await net.prepare(HK, "coalesced_payout", {"payer_account": payer, "items": items})
    supply = {k: json.loads(v or b"{}") for (_c, k), v in sub.writes.items()
              if k.startswith("sup/")}
    assert sorted((r["counterparty"], r["amount"], r.get("transfer_id"))
                  for r in supply.values()) == [
        ("cnbank", 7, tids[4]),  # one movement: its transfer id kept
        ("usbank", 4_006, None)]  # four summed: no single transfer id
    sub.commit()
    decisions = [{"transfer_id": t, "accept": True} for t in tids[:4]]
    sub = await net.prepare(US, "decide_transfers", {"payer_bank": HK, "decisions": decisions})
    assert len([k for _c, k in sub.writes if k.startswith("sup/")]) == 1
    sub.commit()
    supply_hk = await net.evaluate(HK, "get_supply", {"currency": "USD"})
    assert supply_hk["by_kind"]["out"] == 4_006 + 7
    supply_us = await net.evaluate(US, "get_supply", {"currency": "USD"})
    assert supply_us["by_kind"]["in"] == 4_006
    audit = await net.audit()
    assert audit["ok"], audit


async def test_a_batch_writes_one_history_record_and_one_index_entry_per_pair(
        net: Net) -> None:
    # every private key written costs each peer a decode at validation: a batch's events on
    # the payer are one history record (items in order), its transfers toward one bank one
    # ``open/`` index entry; statements and the pending window still see each one
    payer, payees, tids, items = await two_bank_batch(net)
    sub = await net.prepare(HK, "coalesced_payout", {"payer_account": payer, "items": items})
    written = {(c, k.split("/")[0]) for c, k in sub.writes}
    counts = {w: sum(1 for c, k in sub.writes if (c, k.split("/")[0]) == w) for w in written}
    assert counts[("acct-hkbank", "hist")] == 1
    assert counts[("pair-hkbank-usbank", "open")] == counts[("pair-hkbank-cnbank", "open")] == 1
    assert counts[("pair-hkbank-usbank", "xfer")] == 4
    sub.commit()
    history = (await net.evaluate(HK, "get_history", {"account_id": payer}))["records"]
    batch = [h for h in history if h["kind"] == "payment_out"]
    assert [(h["transfer_id"], h["delta"], h["item"]) for h in batch] == [
        (i["transfer_id"], -i["amount"], n) for n, i in enumerate(items)]
    assert len({h["seq"] for h in batch}) == 1  # one record: one number, each event its place
    balances = [h["balance_after"] for h in batch]
    assert balances == [50_000 - sum(i["amount"] for i in items[:n + 1]) for n in range(5)]
    assert balances[-1] == await net.balance(HK, payer)
    # the pending window names every transfer of the batch, at either bank
    window = await net.evaluate(US, "get_pending", {
        "direction": "incoming", "since": "2000-01-01T00:00:00.000000Z"})
    assert sorted(t["transfer"]["transfer_id"] for t in window["transfers"]) == sorted(
        tids[:4])
    out = await net.evaluate(HK, "get_pending", {
        "direction": "outgoing", "since": "2000-01-01T00:00:00.000000Z"})
    assert sorted(t["transfer"]["transfer_id"] for t in out["transfers"]) == sorted(tids)
    # accepting two transfers to one payee in one batch: one history record of two items
    twice = [i["transfer_id"] for i in items if i["payee_account"] == payees[0]]
    assert len(twice) == 2
    decided = await net.submit(US, "decide_transfers", {"payer_bank": HK, "decisions": [
        {"transfer_id": t, "accept": True} for t in twice]})
    assert decided["results"] == ["OK", "OK"]
    got = (await net.evaluate(US, "get_history", {"account_id": payees[0]}))["records"]
    credits = [h for h in got if h["kind"] == "payment_in"]
    assert [(h["transfer_id"], h["item"]) for h in credits] == [(twice[0], 0), (twice[1], 1)]
    assert credits[-1]["balance_after"] == await net.balance(US, payees[0])
    audit = await net.audit()
    assert audit["ok"], audit


async def test_the_pending_window_pages_by_transfers_not_index_entries(net: Net) -> None:
    # an index entry names up to a batch's 500 transfers: a page of ``page_size`` holds
    # about that many transfers (at least one entry, so a page always moves on)
    payer, payees = await setup(net, 50_000)
    tids = list(ids("mkpage", 9))
    for b in range(3):
        batch = [item(f"p{b}{i}", US, payees[i], 10, tids[3 * b + i]) for i in range(3)]
        await net.submit(HK, "coalesced_payout", {"payer_account": payer, "items": batch})
    seen: list[list[str]] = []
    cursor = None
    while True:
        page = await net.evaluate(US, "get_pending", {
            "direction": "incoming", "since": "2000-01-01T00:00:00.000000Z",
            "page_size": 4, **({"cursor": cursor} if cursor else {})})
        seen.append([t["transfer"]["transfer_id"] for t in page["transfers"]])
        if page["done"]:
            break
        cursor = page["cursor"]
    assert [len(p) for p in seen] == [3, 3, 3]  # a second entry of 3 would make 6 > 4
    assert sorted(t for p in seen for t in p) == sorted(tids)
    one = await net.evaluate(US, "get_pending", {
        "direction": "incoming", "since": "2000-01-01T00:00:00.000000Z", "page_size": 1})
    assert len(one["transfers"]) == 3
    assert not one["done"]


async def test_a_refund_credits_the_account_the_payments_reference_names(net: Net) -> None:
    # no ``out/`` note per transfer: the transfer points to its reference record (an HMAC
    # tag under the payer bank's secret), which names the payer account
    payer, payees = await setup(net, 10_000)
    (other,) = ids("mkother", 1)
    await net.open(HK, "USD", other)
    tids = list(ids("mkref", 2))
    sub = await net.prepare(HK, "coalesced_payout", {"payer_account": payer, "items": [
        item("f0", US, payees[0], 1_000, tids[0]), item("f1", US, payees[1], 2_000, tids[1])]})
    assert not [k for _c, k in sub.writes if k.startswith("out/")]
    sub.commit()
    transfer = await net.evaluate(US, "get_transfer", {
        "transfer_id": tids[1], "payer_bank": HK, "payee_bank": US})
    assert len(transfer["transfer"]["payer_ref"]) == 32
    assert payer not in json.dumps(transfer)  # what the payee bank sees names no payer account
    await net.submit(US, "reject_transfer", {"transfer_id": tids[1], "payer_bank": HK})
    await net.submit(HK, "refund_transfer", {"transfer_id": tids[1], "payee_bank": US})
    assert await net.balance(HK, payer) == 10_000 - 1_000
    assert await net.balance(HK, other) == 0
    with pytest.raises(e.InvalidState):  # refunded once
        await net.submit(HK, "refund_transfer", {"transfer_id": tids[1], "payee_bank": US})
    audit = await net.audit()
    assert audit["ok"], audit


async def test_a_pending_events_time_reads_exactly_that_transactions_transfers(
        net: Net) -> None:
    # the listener reads ``since`` = ``until`` = the event's ``at``: that transaction's
    # transfers, not the window of every transfer of the last minutes
    payer, payees = await setup(net, 50_000)
    tids = list(ids("mkat", 4))
    moments = []
    for b in range(2):
        sub = await net.prepare(HK, "coalesced_payout", {"payer_account": payer, "items": [
            item(f"a{b}{i}", US, payees[i], 10, tids[2 * b + i]) for i in range(2)]})
        moments.append(json.loads(sub.stub.event[1])["at"])
        sub.commit()
        net.advance(seconds=1)
    for b, at in enumerate(moments):
        got = await net.evaluate(US, "get_pending", {
            "direction": "incoming", "since": at, "until": at})
        assert sorted(t["transfer"]["transfer_id"] for t in got["transfers"]) == sorted(
            tids[2 * b:2 * b + 2])
    both = await net.evaluate(US, "get_pending", {
        "direction": "incoming", "since": moments[0], "until": moments[1]})
    assert len(both["transfers"]) == 4
    for bad in ({"until": moments[0]}, {"since": moments[1], "until": moments[0]}):
        with pytest.raises(e.InvalidArgument, match="until"):
            await net.evaluate(US, "get_pending", {"direction": "incoming", **bad})


async def test_a_history_page_counts_events_and_never_splits_a_record(net: Net) -> None:
    # page_size counts events: a record of a batch's many is one page's worth, kept whole
    payer, payees = await setup(net, 50_000)
    tids = list(ids("mkhp", 6))
    for b in range(2):
        await net.submit(HK, "coalesced_payout", {"payer_account": payer, "items": [
            item(f"hp{b}{i}", US, payees[i], 10, tids[3 * b + i]) for i in range(3)]})
    pages, seq = [], 0
    while seq is not None:
        page = await net.evaluate(HK, "get_history", {
            "account_id": payer, "from_seq": seq, "page_size": 2})
        pages.append([(h["kind"], h.get("item")) for h in page["records"]])
        seq = page["next_seq"]
    # opened + mint (2 events), then each batch (3 events: more than 2, alone on its page)
    assert pages == [[("opened", None), ("mint", None)],
                     [("payment_out", n) for n in range(3)],
                     [("payment_out", n) for n in range(3)]]
