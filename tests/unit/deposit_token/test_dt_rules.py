"""Pure rules without any ledger: balances, limits, transfer states, ledger order, tallies.

Includes a pure model of Fabric's MVCC rule (of two transactions that read the same key
version, the first to commit wins; a write bumps the version) driving the two-phase
transfer rules, with honest and dishonest banks, checked against the conservation and
netting computations of :mod:`deposit_token.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from deposit_token import errors as e
from deposit_token.records import Account, Decision, Hold, Outcome, Refund, RefundCause, Transfer
from deposit_token.rules import (
    DebitKind,
    Effect,
    change_status,
    check_accept,
    check_amount,
    check_refund,
    check_reject,
    classify,
    credit,
    debit,
)
from deposit_token.tallies import Tally, audit_report, obligations_report, tally_transfer
from dtoken_wire import MAX_AMOUNT, AccountStatus, Limits
from dtoken_wire import format_timestamp as format_ts
from hypothesis import given, settings
from hypothesis import strategies as st

DAY = date(2025, 1, 6)
NOW = datetime(2025, 1, 6, 12, tzinfo=UTC)
ACC = Account(account_id="a" * 24, bank="hkbank", currency="USD", owner_ref="o")


def transfer(amount: int = 100, tid: str = "t" * 24, payer: str = "hkbank",
             payee: str = "usbank", ttl: int = 3600) -> Transfer:
    return Transfer(transfer_id=tid, payer_bank=payer, payee_bank=payee, payee_account="p" * 24,
                    amount=amount, currency="USD", created_at=format_ts(NOW),
                    expires_at=format_ts(NOW + timedelta(seconds=ttl)), tx_id="init")


def decision(t: Transfer, outcome: Outcome, tx: str = "acc") -> Decision:
    return Decision(transfer_id=t.transfer_id, outcome=outcome, payer_bank=t.payer_bank,
                    payee_bank=t.payee_bank, amount=t.amount, currency=t.currency,
                    decided_at=format_ts(NOW), tx_id=tx)


def refund(t: Transfer, tx: str = "ref") -> Refund:
    return Refund(transfer_id=t.transfer_id, payer_bank=t.payer_bank, payee_bank=t.payee_bank,
                  amount=t.amount, currency=t.currency, cause=RefundCause.EXPIRED,
                  refunded_at=format_ts(NOW), tx_id=tx)


# --------------------------------------------------------------------------- balances


@given(st.integers(0, 10**12), st.lists(st.integers(1, 10**9), min_size=1, max_size=5),
       st.integers(0, 10**9))
def test_debit_never_goes_below_zero_nor_into_a_hold(balance: int, amounts: list[int],
                                                     held: int) -> None:
    acc = replace(ACC, balance=balance)
    hold = Hold(account_id=ACC.account_id, held_amount=held)
    try:
        after = debit(acc, amounts, day=DAY, hold=hold)
    except e.InsufficientFunds:
        assert sum(amounts) > balance - held
        return
    assert after.balance == balance - sum(amounts) >= held
    assert after.outflow == sum(amounts)
    assert credit(after, sum(amounts)).balance == balance


@given(st.lists(st.integers(1, 500), min_size=1, max_size=20), st.integers(1, 400),
       st.integers(1, 2_000))
def test_limits_hold_over_any_sequence_of_payments_in_a_day(amounts: list[int], single: int,
                                                            daily: int) -> None:
    acc = replace(ACC, balance=10**9, limits=Limits(single, daily))
    paid = 0
    for a in amounts:
        try:
            acc = debit(acc, [a], day=DAY, hold=None)
            paid += a
        except e.LimitExceeded:
            assert a > single or paid + a > daily
    assert paid <= daily
    assert acc.outflow == paid
    # the next day starts afresh; a burn never counts
    nxt = debit(acc, [min(single, daily)], day=DAY + timedelta(days=1), hold=None)
    assert nxt.outflow == min(single, daily)
    burned = debit(nxt, [10**6], day=DAY + timedelta(days=1), hold=None, kind=DebitKind.BURN)
    assert burned.outflow == nxt.outflow


@given(st.lists(st.sampled_from([-1, 0, 1]), min_size=1, max_size=30))
def test_timestamps_dated_back_never_reset_the_daily_limit(offsets: list[int]) -> None:
    """A dishonest client alternates proposal dates around midnight (each endorser accepts a
    timestamp within its window): a payment dated before the account's current day counts
    in that day, so the account never pays more than the limit in any day it was charged."""
    daily = 1_000
    acc = replace(ACC, balance=10**9, limits=Limits(None, daily))
    paid, days = 0, set()
    for offset in offsets:
        try:
            acc = debit(acc, [400], day=DAY + timedelta(days=offset), hold=None)
        except e.LimitExceeded:
            continue
        paid += 400
        days.add(acc.outflow_day)
    assert paid <= daily * len(days)


def test_a_payment_dated_yesterday_counts_today() -> None:
    acc = replace(ACC, balance=10**6, limits=Limits(None, 1_000))
    today = debit(acc, [900], day=DAY, hold=None)
    with pytest.raises(e.LimitExceeded):
        debit(today, [900], day=DAY - timedelta(days=1), hold=None)
    late = debit(today, [100], day=DAY - timedelta(days=1), hold=None)
    assert (late.outflow_day, late.outflow) == (DAY.isoformat(), 1_000)


def test_statuses_and_amounts() -> None:
    frozen = change_status(replace(ACC, balance=5), AccountStatus.FROZEN)
    with pytest.raises(e.AccountFrozen):
        debit(frozen, [1], day=DAY, hold=None)
    with pytest.raises(e.AccountFrozen):
        credit(frozen, 1)
    assert credit(frozen, 1, refund=True).balance == 6
    with pytest.raises(e.AccountFrozen):
        debit(ACC, [1], day=DAY, hold=Hold(account_id=ACC.account_id, frozen=True))
    closed = change_status(ACC, AccountStatus.CLOSED)
    with pytest.raises(e.AccountClosed):
        debit(closed, [1], day=DAY, hold=None)
    with pytest.raises(e.InvalidState):
        change_status(closed, AccountStatus.ACTIVE)
    with pytest.raises(e.InvalidState):
        change_status(replace(ACC, balance=1), AccountStatus.CLOSED)
    for bad in (0, -1, 1.0, "1", True, MAX_AMOUNT + 1):
        with pytest.raises(e.InvalidAmount):
            check_amount(bad)
    with pytest.raises(e.InvalidAmount):
        credit(replace(ACC, balance=MAX_AMOUNT), 1)


# --------------------------------------------------------------------------- transfers


def test_transfer_transitions() -> None:
    t = transfer()
    check_accept(t, None, None, NOW)
    check_reject(t, None, None)
    with pytest.raises(e.NotExpired):
        check_refund(t, None, None, NOW)
    later = NOW + timedelta(hours=1)
    with pytest.raises(e.Expired):
        check_accept(t, None, None, later)
    assert check_refund(t, None, None, later) is RefundCause.EXPIRED
    rejected = decision(t, Outcome.REJECTED)
    assert check_refund(t, rejected, None, NOW) is RefundCause.REJECTED
    accepted = decision(t, Outcome.ACCEPTED)
    with pytest.raises(e.InvalidState):
        check_refund(t, accepted, None, later)
    with pytest.raises(e.InvalidState):
        check_accept(t, None, refund(t), NOW)
    with pytest.raises(e.InvalidState):
        check_accept(t, rejected, None, NOW)
    with pytest.raises(e.InvalidState):
        check_reject(t, None, refund(t))


@given(st.integers(0, 100), st.integers(0, 100))
def test_ledger_order_decides_between_an_accept_and_a_refund(pa: int, pr: int) -> None:
    t = transfer()
    d, r = decision(t, Outcome.ACCEPTED, "A"), refund(t, "R")
    if pa == pr:
        return
    # positions are keyed by the hash of each record's stored bytes ("A", "R" here)
    effect = classify(d, r, {"A": (pa, 0), "R": (pr, 0)}, ("A", "R"))
    assert effect is (Effect.ACCEPTED if pa < pr else Effect.REFUNDED)
    assert classify(d, r, {"A": (pa, 0)}, ("A", "R")) is Effect.DISPUTED
    # a tx_id field names nothing: without the hashes, the order is not used
    assert classify(d, r, {"A": (pa, 0), "R": (pr, 0)}) is Effect.DISPUTED
    assert classify(d, None) is Effect.ACCEPTED
    assert classify(None, r) is Effect.REFUNDED
    assert classify(decision(t, Outcome.REJECTED), None) is Effect.IN_FLIGHT


def test_tally_round_trips_through_a_cursor() -> None:
    t = Tally()
    t.add(("supply", "hkbank", "USD", "mint", "-"), 5)
    t.add(("xfer", "hkbank", "usbank", "USD", "accepted"), 3)
    assert Tally.from_json(t.to_json()) == t
    with pytest.raises(e.InvalidArgument):
        Tally.from_json({"a": "1"})


# --------------------------------------------------------------------------- MVCC model


@dataclass
class Ledger:
    """Keys with versions; a transaction commits only if what it read is unchanged."""

    versions: dict[str, int] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)
    height: int = 0

    def read(self, reads: dict[str, int], key: str) -> object:
        reads[key] = self.versions.get(key, 0)
        return self.values.get(key)

    def commit(self, reads: dict[str, int], writes: dict[str, object]) -> int | None:
        if any(self.versions.get(k, 0) != v for k, v in reads.items()):
            return None  # MVCC_READ_CONFLICT
        self.height += 1
        for k, v in writes.items():
            self.values[k] = v
            self.versions[k] = self.height
        return self.height


def simulate(ledger: Ledger, t: Transfer, kind: str, now: datetime, honest: bool):  # type: ignore[no-untyped-def]
    """Endorse a decision on ``t`` against the ledger's current state: (reads, writes)."""
    reads: dict[str, int] = {}
    dec = ledger.read(reads, "dec") if (kind == "accept" or honest) else None
    ref = ledger.read(reads, "refund") if (kind == "refund" or honest) else None
    assert dec is None or isinstance(dec, Decision)
    assert ref is None or isinstance(ref, Refund)
    try:
        if kind == "accept":
            check_accept(t, dec, ref, now)
            return reads, {"dec": decision(t, Outcome.ACCEPTED, f"acc@{now}")}
        if kind == "reject":
            check_reject(t, dec, ref)
            return reads, {"dec": decision(t, Outcome.REJECTED, f"rej@{now}")}
        check_refund(t, dec, ref, now)
        return reads, {"refund": refund(t, f"ref@{now}")}
    except e.DepositTokenError:
        return None


steps = st.lists(
    st.tuples(st.sampled_from(["accept", "reject", "refund"]), st.integers(-7200, 7200),
              st.booleans()),
    min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**6), steps, st.booleans())
def test_two_phase_transfer_under_mvcc(amount: int, plan: list[tuple[str, int, bool]],
                                       honest: bool) -> None:
    """Random decisions on one transfer, each endorsed against the state when it runs; some
    pairs race (both endorsed on one snapshot, then committed). Honest: accept and refund
    never both stand. Dishonest (reads of the other bank's key skipped): if both stand,
    ledger order decides, and the books show exactly that amount too much."""
    t = transfer(amount)
    ledger = Ledger()
    order: dict[str, tuple[int, int]] = {}
    pending: list[tuple[dict[str, int], dict[str, object]]] = []
    for kind, offset, race in plan:
        sim = simulate(ledger, t, kind, NOW + timedelta(seconds=offset), honest)
        if sim is None:
            continue
        pending.append(sim)
        if race and len(pending) < 2:
            continue  # endorse another one on the same snapshot before committing
        for reads, writes in pending:
            height = ledger.commit(reads, writes)
            if height is not None:
                for v in writes.values():
                    order[getattr(v, "tx_id")] = (height, 0)  # noqa: B009
        pending.clear()
    dec = ledger.values.get("dec")
    ref = ledger.values.get("refund")
    assert dec is None or isinstance(dec, Decision)
    assert ref is None or isinstance(ref, Refund)
    both = dec is not None and dec.outcome is Outcome.ACCEPTED and ref is not None
    if honest:
        assert not both
    # in this model each value is written once, by its transaction: its tx id names it
    hashes = (dec.tx_id if dec else None, ref.tx_id if ref else None)
    effect = classify(dec, ref, order, hashes)
    assert effect is not Effect.DISPUTED
    if both:
        assert dec is not None
        assert ref is not None
        earlier_accept = order[dec.tx_id] < order[ref.tx_id]
        assert effect is (Effect.ACCEPTED if earlier_accept else Effect.REFUNDED)
    # the books: what each bank wrote, then the regulator's checks
    tally = Tally()
    tally.add(("supply", "hkbank", "USD", "mint", "-"), amount)
    tally.add(("supply", "hkbank", "USD", "out", "usbank"), amount)
    if ref is not None:
        tally.add(("supply", "hkbank", "USD", "refund", "usbank"), amount)
    if dec is not None and dec.outcome is Outcome.ACCEPTED:
        tally.add(("supply", "usbank", "USD", "in", "hkbank"), amount)
    tally.add(("balance", "hkbank", "USD"), amount if ref is not None else 0)
    tally.add(("balance", "usbank", "USD"), amount if dec is not None and
              dec.outcome is Outcome.ACCEPTED else 0)
    tally_transfer(tally, t, dec, ref, order, hashes)
    report = audit_report(tally, ["hkbank", "usbank"])
    (usd,) = report["currencies"]  # type: ignore[misc]
    assert usd["excess"] == (amount if both else 0)
    assert report["ok"] is (not both)
    ob = obligations_report(tally, "hkbank", "usbank")
    net = ob["net"]
    assert isinstance(net, dict)
    assert net.get("USD", 0) == (amount if effect is Effect.ACCEPTED else 0)
