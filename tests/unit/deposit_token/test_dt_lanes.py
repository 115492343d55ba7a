"""Balance lanes: several processes debit one account without invalidating each other.

What matters: a debit of one lane reads and writes only that lane (two debits of different
lanes endorsed on the same state both commit; two of one lane do not), a rebalance reads
every lane (it races a debit and MVCC keeps one), the sums (balance, the day's outflow) and
the audit count every lane, the daily limit holds across lanes under any interleaving
(split per lane; a rebalance moves unspent headroom only), holds and freezes reach every
lane, and a lane record that a bank's own server wrote with garbage counts for nobody.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from deposit_token import errors as e
from deposit_token.keys import AccountKeys, Deriver
from deposit_token.lanes import open_lanes, rebalance, split_daily
from deposit_token.records import Account, Lane, decode, encode
from fabshim import MVCCReadConflictError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit.deposit_token.dt_harness import Net, account_keys, ids, msp_of
from unit.deposit_token.test_dt_dishonest import forge

HK, US = "hkbank", "usbank"
DAY = date(2025, 1, 6)
SALT = "0" * 32


def keys() -> AccountKeys:
    return account_keys(HK)


@pytest.fixture
async def net() -> Net:
    n = Net()
    await n.init()
    return n


async def laned(net: Net, funds: int, lanes: int, **limits: Any) -> tuple[str, list[str]]:
    (payer,) = ids("lnpay", 1)
    await net.open(HK, "USD", payer, limits=limits)
    if funds:
        await net.mint(HK, payer, funds, "dep-ln")
    await net.submit(HK, "set_lanes", {"account_id": payer, "lanes": lanes})
    payees = list(ids("lnexp", 3))
    for p in payees:
        await net.open(US, "USD", p)
    return payer, payees


def pay(payer: str, lane: int, payee: str, amount: int, ref: str) -> dict[str, Any]:
    return {"payer_account": payer, "payer_lane": lane, "items": [
        {"reference": ref, "payee_bank": US, "payee_account": payee, "amount": amount,
         "transfer_id": f"{ref}-tid".ljust(24, "x")}]}


async def lane_balances(net: Net, payer: str) -> list[int]:
    got = await net.evaluate(HK, "get_account", {"account_id": payer})
    return [int(b) for b in got["lane_balances"]]


# --------------------------------------------------------------------------- pure rules


@given(st.one_of(st.none(), st.integers(0, 10**6)),
       st.lists(st.integers(0, 10**6), min_size=1, max_size=16))
def test_shares_add_up_to_the_limit_and_cover_what_was_spent_while_they_can(
        limit: int | None, outflows: list[int]) -> None:
    shares = split_daily(limit, outflows)
    if limit is None:
        assert shares == [None] * len(outflows)
        return
    ints = [s for s in shares if s is not None]
    assert sum(ints) == limit
    if sum(outflows) <= limit:
        assert all(s >= o for s, o in zip(ints, outflows, strict=True))
    else:  # over the (lowered) limit: no lane can spend more today
        assert all(s <= o for s, o in zip(ints, outflows, strict=True))


def _account(balance: int, limit: int | None) -> Account:
    from dtoken_wire.requests import Limits
    return Account(account_id="a" * 24, bank=HK, currency="USD", owner_ref="o",
                   limits=Limits(None, limit), balance=balance, outflow_day=DAY.isoformat())


@given(st.integers(0, 10**6), st.integers(2, 16), st.integers(0, 10**6),
       st.integers(0, 15), st.integers(1, 2 * 10**6))
def test_a_rebalance_keeps_the_balance_and_the_limit(
        funds: int, count: int, limit: int, target: int, amount: int) -> None:
    lanes = open_lanes([_account(funds, limit)], count, day=DAY, at="t")
    target %= count
    try:
        after = rebalance(lanes, target, amount, day=DAY)
    except (e.InsufficientFunds, e.LimitExceeded):
        return
    assert sum(x.balance for x in after) == funds
    assert sum(x.share or 0 for x in after) == limit
    assert after[target].balance >= amount
    assert (after[target].share or 0) - after[target].outflow >= amount
    assert all(x.balance >= 0 and (x.share or 0) >= 0 for x in after)
    assert [type(x) for x in after] == [Account, *[Lane] * (count - 1)]


# --------------------------------------------------------------------------- the contract


async def test_an_account_without_lanes_is_stored_as_before(net: Net) -> None:
    (acc,) = ids("plain", 1)
    await net.open(HK, "USD", acc)
    await net.mint(HK, acc, 100, "plain-dep")
    raw = net.ledger.get_private_data(f"acct-{HK}", keys().account(acc))
    assert raw is not None
    assert b"lane" not in raw
    assert b"share" not in raw
    assert await lane_balances(net, acc) == [100]


async def test_debits_of_different_lanes_commit_together_and_of_one_lane_do_not(
        net: Net) -> None:
    payer, payees = await laned(net, 10_000, 4)
    # the credit of the mint landed on lane 0; spread it so lanes 1 and 2 have funds
    for lane in (1, 2):
        await net.submit(HK, "rebalance_lanes",
                         {"account_id": payer, "lane": lane, "amount": 2_000})
    one = await net.prepare(HK, "coalesced_payout", pay(payer, 1, payees[0], 500, "l1a"))
    two = await net.prepare(HK, "coalesced_payout", pay(payer, 2, payees[1], 700, "l2a"))
    same = await net.prepare(HK, "coalesced_payout", pay(payer, 1, payees[2], 100, "l1b"))
    one.commit()
    two.commit()  # another lane: its read set is untouched
    with pytest.raises(MVCCReadConflictError):
        same.commit()  # the same lane, endorsed on the state before ``one``
    assert sum(await lane_balances(net, payer)) == 10_000 - 1_200
    assert await net.balance(HK, payer) == 10_000 - 1_200
    audit = await net.audit()
    assert audit["ok"], audit["failures"]


async def test_a_rebalance_racing_a_debit_keeps_one_of_them(net: Net) -> None:
    payer, payees = await laned(net, 1_000, 3)
    debit = await net.prepare(HK, "coalesced_payout", pay(payer, 0, payees[0], 600, "race1"))
    move = await net.prepare(HK, "rebalance_lanes",
                             {"account_id": payer, "lane": 2, "amount": 900})
    first, second = random.Random(7).sample([debit, move], 2)
    first.commit()
    with pytest.raises(MVCCReadConflictError):
        second.commit()
    assert await net.balance(HK, payer) in (400, 1_000)
    audit = await net.audit()
    assert audit["ok"], audit["failures"]


async def test_a_payment_larger_than_its_lane_is_refused_by_the_lane_until_rebalanced(
        net: Net) -> None:
    payer, payees = await laned(net, 1_000, 2)
    with pytest.raises(e.InvalidState):  # lane 1 is empty: no item applicable on it
        await net.submit(HK, "coalesced_payout", pay(payer, 1, payees[0], 800, "big"))
    with pytest.raises(e.InsufficientFunds):  # the account as a whole cannot
        await net.submit(HK, "rebalance_lanes", {"account_id": payer, "lane": 1,
                                                 "amount": 1_001})
    await net.submit(HK, "rebalance_lanes", {"account_id": payer, "lane": 1, "amount": 800})
    assert await lane_balances(net, payer) == [200, 800]
    await net.submit(HK, "coalesced_payout", pay(payer, 1, payees[0], 800, "big"))
    assert await lane_balances(net, payer) == [200, 0]
    with pytest.raises(e.InvalidArgument):  # no lane 2
        await net.submit(HK, "coalesced_payout", pay(payer, 2, payees[0], 1, "nolane"))


async def test_lanes_are_only_added_and_bounded(net: Net) -> None:
    payer, _ = await laned(net, 10, 3)
    for bad in (2, 3):
        with pytest.raises(e.InvalidArgument):
            await net.submit(HK, "set_lanes", {"account_id": payer, "lanes": bad})
    with pytest.raises(e.InvalidArgument):
        await net.submit(HK, "set_lanes", {"account_id": payer, "lanes": 17})
    await net.submit(HK, "set_lanes", {"account_id": payer, "lanes": 5})
    assert await lane_balances(net, payer) == [10, 0, 0, 0, 0]


async def test_credits_are_spread_over_the_lanes(net: Net) -> None:
    payer, _ = await laned(net, 0, 4)
    for i in range(24):
        await net.mint(HK, payer, 1, f"spread-{i}")
    balances = await lane_balances(net, payer)
    assert sum(balances) == 24
    assert sum(1 for b in balances if b) >= 3
    history = await net.evaluate(HK, "get_history", {"account_id": payer, "page_size": 100})
    assert len([r for r in history["records"] if r["kind"] == "mint"]) == 24
    audit = await net.audit()
    assert audit["ok"], audit["failures"]


async def test_a_freeze_and_a_hold_reach_every_lane(net: Net) -> None:
    payer, payees = await laned(net, 1_000, 3)
    await net.submit(HK, "rebalance_lanes", {"account_id": payer, "lane": 2, "amount": 400})
    await net.submit(HK, "set_account_status", {"account_id": payer, "status": "frozen"})
    for lane in (0, 2):
        with pytest.raises(e.InvalidState):  # the item is refused (frozen): none applicable
            await net.submit(HK, "coalesced_payout", pay(payer, lane, payees[0], 1, f"fz{lane}"))
    await net.submit(HK, "set_account_status", {"account_id": payer, "status": "active"})
    # the regulator holds 700 back: lanes hold 600 and 400, so lane 2 may pay 300 at most,
    # and a debit reads the other lanes, so two concurrent debits under the hold race
    reg = Net.caller("regulator", "auditor")
    await net.submit("regulator", "set_hold", {"bank": HK, "account_id": payer,
                                               "held_amount": 700}, caller=reg)
    with pytest.raises(e.InvalidState):
        await net.submit(HK, "coalesced_payout", pay(payer, 2, payees[0], 301, "held1"))
    a = await net.prepare(HK, "coalesced_payout", pay(payer, 2, payees[0], 300, "held2"))
    b = await net.prepare(HK, "coalesced_payout", pay(payer, 0, payees[1], 300, "held3"))
    a.commit()
    with pytest.raises(MVCCReadConflictError):
        b.commit()
    assert await net.balance(HK, payer) == 700
    with pytest.raises(e.InvalidState):
        await net.submit(HK, "coalesced_payout", pay(payer, 0, payees[1], 1, "held4"))
    audit = await net.audit()
    assert audit["ok"], audit["failures"]
    # closing needs every lane empty
    with pytest.raises(e.InvalidState):
        await net.submit(HK, "set_account_status", {"account_id": payer, "status": "closed"})


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
async def test_the_daily_limit_holds_across_lanes_under_any_interleaving(data: Any) -> None:
    """Random debits and rebalances on random lanes, endorsed in random groups on the same
    state and committed in random order (MVCC drops the stale ones): the day's outflow never
    passes the limit, the balance is what was minted less what committed, the audit is OK."""
    net = Net()
    await net.init()
    limit = data.draw(st.integers(100, 3_000), label="limit")
    count = data.draw(st.integers(2, 5), label="lanes")
    payer, payees = await laned(net, 5_000, count, daily_outflow=limit)
    paid = 0
    n = 0
    for _round in range(data.draw(st.integers(1, 6), label="rounds")):
        group = []
        for _ in range(data.draw(st.integers(1, 4), label="group")):
            n += 1
            lane = data.draw(st.integers(0, count - 1), label="lane")
            amount = data.draw(st.integers(1, 1_500), label="amount")
            try:
                if data.draw(st.booleans(), label="rebalance"):
                    group.append((0, await net.prepare(HK, "rebalance_lanes", {
                        "account_id": payer, "lane": lane, "amount": amount})))
                else:
                    group.append((amount, await net.prepare(HK, "coalesced_payout", pay(
                        payer, lane, payees[n % 3], amount, f"lim{n}"))))
            except e.DepositTokenError:
                continue
        for amount, sub in data.draw(st.permutations(group), label="order"):
            try:
                sub.commit()
            except MVCCReadConflictError:
                continue
            paid += amount
        got = await net.evaluate(HK, "get_account", {"account_id": payer})
        assert got["outflow_today"] == paid <= limit
        assert got["balance"] == 5_000 - paid
    audit = await net.audit()
    assert audit["ok"], audit["failures"]


# --------------------------------------------------------------------------- a dishonest bank


@pytest.mark.parametrize("forged", ["garbage", "inflated", "elsewhere", "lane0", "beyond"])
async def test_a_forged_lane_counts_for_nobody_and_the_audit_names_it(
        net: Net, forged: str) -> None:
    """hkbank's own server rewrites lane 1 of its account (its peer alone endorses
    ``acct-hkbank``): with bytes that are no record, with a larger balance, or with the lane
    of another account. The audit counts none of it and fails naming hkbank."""
    payer, _ = await laned(net, 1_000, 2)
    await net.submit(HK, "rebalance_lanes", {"account_id": payer, "lane": 1, "amount": 300})
    key = keys().lane(payer, 1)
    stored = net.ledger.get_private_data(f"acct-{HK}", key)
    assert stored is not None
    good = decode(Lane, stored)
    assert good.balance == 300
    value: bytes | Lane = {
        "garbage": b"[1, 2, 3]",
        "inflated": replace(good, balance=10**9),
        "elsewhere": replace(good, account_id="z" * 24),
        "lane0": replace(good, lane=0),  # decodes, but no lane record is lane 0
        "beyond": replace(good, lane=5),
    }[forged]
    await forge(net, f"acct-{HK}", key, encode(value, SALT) if isinstance(value, Lane)
                else value)
    audit = await net.audit()
    assert not audit["ok"]
    if forged == "inflated":  # a valid lane: counted, and conservation fails on it
        assert audit["anomalies"] == {}
    else:
        (name,) = audit["anomalies"]
        assert name.startswith(f"hkbank/acct-{HK}/")
    # the other banks' figures are untouched: usbank's books balance
    assert not any("usbank" in f for f in audit["failures"]), audit["failures"]
    # and the honest code refuses to debit a lane it cannot trust
    if forged != "inflated":
        with pytest.raises(e.DepositTokenError):
            await net.submit(HK, "coalesced_payout", pay(payer, 1, _[0], 1, "after-forge"))


def test_a_lane_key_names_no_account_id() -> None:
    (acc,) = ids("keyed", 1)
    key = keys().lane(acc, 3)
    assert acc not in key
    assert key.startswith("lane/")
    assert key.endswith("/03")
    other = AccountKeys(Deriver(bytes(32)).derive("account-keys"))
    assert other.lane(acc, 3) != key
    assert msp_of(HK)
