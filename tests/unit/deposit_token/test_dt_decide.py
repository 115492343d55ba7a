"""``decide_transfers``: many decisions of one payer bank's transfers in one transaction.

What matters: each decision is its own pinned record, the credits are summed per payee account
(one write of its balance key per transaction), a transfer that cannot be decided is skipped
with its code while its neighbours go through, and the audit stays OK.
"""

from __future__ import annotations

import pytest
from deposit_token import errors as e
from deposit_token.keys import decision_key, pair_collection
from unit.deposit_token.dt_harness import Net, account_keys, ids

HK, US = "hkbank", "usbank"


@pytest.fixture
async def net() -> Net:
    n = Net()
    await n.init()
    return n


async def test_a_backlog_is_decided_in_one_transaction(net: Net) -> None:
    (payer,) = ids("dcpay", 1)
    await net.open(HK, "USD", payer)
    await net.mint(HK, payer, 100_000, "dep-dc")
    exporters = list(ids("dcexp", 2))
    for account in exporters:
        await net.open(US, "USD", account)
    tids = [await net.initiate(HK, payer, US, exporters[i % 2], 1_000 + i, f"dc-{i}")
            for i in range(6)]
    await net.submit(US, "accept_transfer", {"transfer_id": tids[5], "payer_bank": HK})
    decisions = [{"transfer_id": t, "accept": True} for t in tids[:4]]
    decisions += [{"transfer_id": tids[4], "accept": False, "reason": "sanctions hit"},
                  {"transfer_id": tids[5], "accept": True}]  # decided already
    sub = await net.prepare(US, "decide_transfers", {"payer_bank": HK, "decisions": decisions})
    assert sub.result["results"] == ["OK"] * 5 + ["INVALID_STATE"]
    for account in exporters:  # one write of each payee's balance key
        assert sum(1 for _c, k in sub.writes if k == account_keys(US).account(account)) == 1
    decided = {k for c, k in sub.writes if c == pair_collection(US, HK)}
    assert decided == {decision_key(t) for t in tids[:5]}
    sub.commit()
    assert await net.balance(US, exporters[0]) == 1_000 + 1_002  # 1_004 rejected
    assert await net.balance(US, exporters[1]) == 1_001 + 1_003 + 1_005
    statuses = [(await net.evaluate(US, "get_transfer", {
        "transfer_id": t, "payer_bank": HK, "payee_bank": US}))["status"] for t in tids]
    assert statuses == ["accepted"] * 4 + ["rejected", "accepted"]
    with pytest.raises(e.InvalidState):  # nothing decidable: refused whole, not an empty write
        await net.submit(US, "decide_transfers", {"payer_bank": HK, "decisions": decisions})
    await net.submit(HK, "refund_transfer", {"transfer_id": tids[4], "payee_bank": US})
    audit = await net.audit()
    assert audit["ok"], audit["failures"]


async def test_an_expired_transfer_is_skipped_and_bad_requests_refused(net: Net) -> None:
    (payer,) = ids("dcpay", 1)
    await net.open(HK, "USD", payer)
    await net.mint(HK, payer, 10_000, "dep-dc")
    (exporter,) = ids("dcexp", 1)
    await net.open(US, "USD", exporter)
    old = await net.initiate(HK, payer, US, exporter, 100, "old", ttl_seconds=60)
    net.advance(seconds=120)
    fresh = await net.initiate(HK, payer, US, exporter, 200, "fresh")
    result = await net.submit(US, "decide_transfers", {"payer_bank": HK, "decisions": [
        {"transfer_id": old, "accept": True}, {"transfer_id": fresh, "accept": True}]})
    assert result["results"] == ["EXPIRED", "OK"]
    assert await net.balance(US, exporter) == 200
    with pytest.raises(e.InvalidArgument):
        await net.submit(US, "decide_transfers", {"payer_bank": HK, "decisions": [
            {"transfer_id": fresh, "accept": True}, {"transfer_id": fresh, "accept": False}]})
    with pytest.raises(e.InvalidArgument):
        await net.submit(US, "decide_transfers", {"payer_bank": HK, "decisions": []})
