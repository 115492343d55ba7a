"""Pure rules of balance lanes: an account's balance split over several keys.

Owns: opening lanes (the new lane records and the split of the daily-outflow limit into
per-lane shares), moving value and limit headroom between an account's lanes (a rebalance),
the held amount a debit of one lane must leave given the other lanes, which lane a credit
lands on, and the sums (balance, the day's outflow) over lanes. The argument for why the
daily limit still holds across lanes is in docs/token-model.md ("Balance lanes"); these
functions keep its two invariants: the shares of an account's lanes add up to its daily
limit, and a share moves only between lanes brought to the same day, and only as far as the
giving lane has not spent it.

Must not: touch the ledger, read a clock or draw randomness (which lane a credit lands on is
a function of the transaction id), put a value into an error message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from dtoken_wire.enums import AccountStatus

from .errors import AccountClosed, InsufficientFunds, InvalidArgument, LimitExceeded
from .records import LANE_SEQ_BASE, MAX_LANES, Account, Hold, Lane

__all__ = [
    "MAX_LANES",
    "balance_of",
    "credit_lane",
    "lane_hold",
    "open_lanes",
    "outflow_of",
    "rebalance",
    "relimit",
    "split_daily",
    "to_day",
]


def split_daily(limit: int | None, outflows: Sequence[int]) -> list[int | None]:
    """Per-lane shares of a daily limit that add up to ``limit``, given each lane's outflow
    today: first each lane's spent outflow is covered (in lane order, while the limit lasts),
    then what is left is split evenly (the remainder to the first lanes). A lane whose
    outflow is above its share (a limit lowered below what was spent) can pay nothing more
    today. ``None`` (no limit): no shares."""
    if limit is None:
        return [None] * len(outflows)
    shares: list[int] = []
    left = limit
    for spent in outflows:
        given = min(spent, left)
        shares.append(given)
        left -= given
    n = len(outflows)
    for i in range(n):
        shares[i] += left // n + (1 if i < left % n else 0)
    return list(shares)


def _day(lanes: Sequence[Account], day: date) -> str:
    # the common day: the transaction's, or a later one a lane has already moved into (a
    # back-dated proposal counts in the account's current day, as for one balance key)
    return max([day.isoformat(), *(lane.outflow_day for lane in lanes)])


def to_day(lanes: Sequence[Account], day: date) -> list[Account]:
    """The lanes, each moved to their common day (an outflow of an earlier day counts no
    more)."""
    common = _day(lanes, day)
    return [lane if lane.outflow_day == common else replace(lane, outflow_day=common, outflow=0)
            for lane in lanes]


def _with_shares(lanes: Sequence[Account], count: int) -> list[Account]:
    shares = split_daily(lanes[0].limits.daily_outflow, [lane.outflow for lane in lanes])
    return [replace(lane, lanes=count, share=share if count > 1 else None)
            for lane, share in zip(lanes, shares, strict=True)]


def open_lanes(lanes: Sequence[Account], count: int, *, day: date, at: str) -> list[Account]:
    """The account's lanes after growing from ``len(lanes)`` to ``count`` (new lanes empty,
    every lane on the common day, the daily limit split again over all of them)."""
    if not 1 <= count <= MAX_LANES:
        raise InvalidArgument(f"request.lanes must be 1 to {MAX_LANES}")
    if count < len(lanes):
        raise InvalidArgument("request.lanes cannot be fewer than the account has (lanes "
                              "are only added)")
    account = lanes[0]
    if account.status is AccountStatus.CLOSED:
        raise AccountClosed("the account is closed")
    moved = to_day(lanes, day)
    common = moved[0].outflow_day
    for k in range(len(lanes), count):
        moved.append(Lane(
            account_id=account.account_id, bank=account.bank, currency=account.currency,
            owner_ref=account.owner_ref, status=account.status, limits=account.limits,
            outflow_day=common, seq=k * LANE_SEQ_BASE, opened_at=at, lane=k, lanes=count))
    return _with_shares(moved, count)


def relimit(lanes: Sequence[Account], *, day: date) -> list[Account]:
    """Every lane after a change of the account's limits or status (already applied to each
    lane): on the common day, the new daily limit split again. An account without lanes is
    left as it is."""
    if len(lanes) <= 1:
        return list(lanes)
    return _with_shares(to_day(lanes, day), len(lanes))


def rebalance(lanes: Sequence[Account], target: int, amount: int, *, day: date) -> list[Account]:
    """The lanes after bringing lane ``target`` up to ``amount`` of balance and, with a daily
    limit, ``amount`` of unspent share for today, taken from the other lanes (the fullest
    first). The account's balance and its shares' sum do not change.

    ``INSUFFICIENT_FUNDS`` if the account as a whole cannot cover ``amount`` in one lane,
    ``LIMIT_EXCEEDED`` if its unspent daily limit cannot; ``ACCOUNT_CLOSED`` for a closed
    account. (A frozen account may be rebalanced: it moves nothing out of the account.)
    """
    if not 0 <= target < len(lanes):
        raise InvalidArgument("request.lane is not a lane of the account")
    if lanes[0].status is AccountStatus.CLOSED:
        raise AccountClosed("the account is closed")
    out = to_day(lanes, day)
    others = sorted((i for i in range(len(out)) if i != target),
                    key=lambda i: (-out[i].balance, i))
    need = amount - out[target].balance
    if need > 0:
        if sum(out[i].balance for i in others) < need:
            raise InsufficientFunds("the account's balance does not cover the amount")
        for i in others:
            take = min(need, out[i].balance)
            out[i] = replace(out[i], balance=out[i].balance - take)
            out[target] = replace(out[target], balance=out[target].balance + take)
            need -= take
    if out[target].share is not None:
        spare = {i: (out[i].share or 0) - out[i].outflow for i in others}
        short = amount - ((out[target].share or 0) - out[target].outflow)
        if short > 0:
            if sum(max(0, s) for s in spare.values()) < short:
                raise LimitExceeded("the payment exceeds the account's daily outflow limit")
            for i in sorted(others, key=lambda i: (-spare[i], i)):
                take = min(short, max(0, spare[i]))
                out[i] = replace(out[i], share=(out[i].share or 0) - take)
                out[target] = replace(out[target], share=(out[target].share or 0) + take)
                short -= take
    return out


def lane_hold(hold: Hold | None, others_balance: int) -> Hold | None:
    """The hold as one lane's debit must apply it: the held amount less what the account's
    other lanes hold (read in the same transaction, so a concurrent debit of another lane
    invalidates one of the two: MVCC makes the check exact)."""
    if hold is None or hold.held_amount == 0:
        return hold
    return replace(hold, held_amount=max(0, hold.held_amount - others_balance))


def credit_lane(tx_id: str, account_id: str, lanes: int) -> int:
    """The lane a credit of ``account_id`` by transaction ``tx_id`` lands on: spread over the
    lanes by a hash both endorsers compute alike."""
    if lanes <= 1:
        return 0
    digest = hashlib.sha256(f"{tx_id}\0{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % lanes


def balance_of(lanes: Sequence[Account]) -> int:
    """The account's balance: the sum over its lanes."""
    return sum(lane.balance for lane in lanes)


def outflow_of(lanes: Sequence[Account], day: date) -> int:
    """What left the account by payments on ``day`` (ISO date), over its lanes."""
    iso = day.isoformat()
    return sum(lane.outflow for lane in lanes if lane.outflow_day == iso)
