"""Balance lanes on the ledger: an account's balance under several keys (docs/token-model.md,
"Balance lanes").

Owns: ``set_lanes`` and ``rebalance_lanes``, and the steps every transaction uses to debit or
credit a laned account: reading one lane (a point read of its own key, which carries the
lane count, the status and the limits), reading all of an account's lanes (point reads,
never a range query), the hold as one lane's debit must apply it, and the lane a credit
lands on. Lane 0 is the account record itself, so an account without lanes is read and
written exactly as before lanes existed.

What each reads and writes: a debit of lane ``k`` reads and writes that lane's key only (and
the regulator's hold key; all lanes when a hold holds an amount back); a credit reads the
account record (for the lane count) and writes the lane it lands on; ``set_lanes``,
``rebalance_lanes`` and every change of status or limits read and write every lane, so MVCC
orders them against any debit of any lane.

Must not: range-scan lanes in a transaction that writes; write a lane of another bank's
account; decide anything the pure rules of :mod:`deposit_token.lanes` decide.
"""

from __future__ import annotations

from collections.abc import Sequence

from dtoken_wire.requests import RebalanceRequest, SetLanesRequest

from ..errors import CorruptState, InvalidArgument
from ..keys import acct_collection
from ..lanes import credit_lane, lane_hold, open_lanes, rebalance
from ..records import Account, Hold, Lane
from ..registry import BankInfo, Registry, day_of
from .access import ROLE_OPERATOR, Tx, authorize_bank_write, done, load_registry
from .declare import declare
from .steps import _keys_or_absent, read_account, read_hold, save_account

__all__ = [
    "debit_hold",
    "lanes_of",
    "read_credit_lane",
    "read_lane",
    "rebalance_lanes",
    "save_lanes",
    "set_lanes",
]


def _check(lane: Account, account_id: str, bank: BankInfo, k: int) -> Account:
    if lane.account_id != account_id or lane.bank != bank.name or lane.lane != k:
        raise CorruptState("the lane record does not match its key")
    return lane


async def read_lane(tx: Tx, bank: BankInfo, account_id: str, lane: int,
                    role: str = "") -> Account:
    """Lane ``lane`` of an account of ``bank``: the account record for lane 0, else the lane's
    own record (one point read either way). ``INVALID_ARGUMENT`` if the account has no such
    lane."""
    if lane == 0:
        return await read_account(tx, bank, account_id, role)
    keys = await _keys_or_absent(tx, bank, role)
    found = await tx.ledger.get(Lane, acct_collection(bank.name), keys.lane(account_id, lane))
    if found is None:
        await read_account(tx, bank, account_id, role)  # NOT_FOUND if there is no account
        raise InvalidArgument("the lane is not a lane of the account (see set_lanes)")
    return _check(found, account_id, bank, lane)


async def lanes_of(tx: Tx, bank: BankInfo, account: Account) -> list[Account]:
    """Every lane of ``account`` (its record, lane 0), in lane order: point reads of the
    lane keys the record's count names."""
    if account.lanes <= 1:
        return [account]
    keys = await _keys_or_absent(tx, bank)
    found = await tx.ledger.get_many(
        Lane, acct_collection(bank.name),
        [keys.lane(account.account_id, k) for k in range(1, account.lanes)])
    out: list[Account] = [account]
    for k, lane in enumerate(found, start=1):
        if lane is None:
            raise CorruptState("a lane of the account is missing")
        out.append(_check(lane, account.account_id, bank, k))
    return out


def save_lanes(tx: Tx, bank: BankInfo, lanes: Sequence[Account]) -> None:
    for lane in lanes:
        save_account(tx, bank, lane)


async def debit_hold(tx: Tx, registry: Registry, bank: BankInfo, payer: Account) -> Hold | None:
    """The regulator's hold on ``payer``'s account as a debit of this lane must apply it:
    with an amount held back and several lanes, the other lanes are read (so their keys are
    in this transaction's read set) and what they hold counts toward the held amount."""
    hold = await read_hold(tx, registry, bank, payer.account_id)
    if hold is None or hold.held_amount == 0 or payer.lanes <= 1:
        return hold
    head = payer if payer.lane == 0 else await read_account(tx, bank, payer.account_id)
    others = [lane for lane in await lanes_of(tx, bank, head) if lane.lane != payer.lane]
    return lane_hold(hold, sum(lane.balance for lane in others))


async def read_credit_lane(tx: Tx, bank: BankInfo, account_id: str, role: str = "") -> Account:
    """The lane a credit of ``account_id`` by this transaction lands on (lane 0 for an account
    without lanes): credits are spread over the lanes by the transaction id."""
    account = await read_account(tx, bank, account_id, role)
    lane = credit_lane(tx.tx_id, account_id, account.lanes)
    return account if lane == 0 else await read_lane(tx, bank, account_id, lane, role)


@declare()
async def set_lanes(tx: Tx, req: SetLanesRequest) -> dict[str, object]:
    """Give an account more balance lanes (the bank's operator; 2 to ``MAX_LANES``, only ever
    more): new lanes start empty, the daily limit is split over all lanes again."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    account = await read_account(tx, bank, req.account_id)
    lanes = await lanes_of(tx, bank, account)
    if req.lanes == len(lanes):
        raise InvalidArgument("request.lanes is the account's lane count already")
    save_lanes(tx, bank, open_lanes(lanes, req.lanes, day=day_of(tx.now), at=tx.at))
    return done(tx)


@declare()
async def rebalance_lanes(tx: Tx, req: RebalanceRequest) -> dict[str, object]:
    """Bring one lane up to an amount of balance and of unspent daily limit, from the other
    lanes of the account (the bank's operator): what the SDK sends before a payment larger
    than its lane. Moves nothing into or out of the account."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    account = await read_account(tx, bank, req.account_id)
    lanes = await lanes_of(tx, bank, account)
    save_lanes(tx, bank, rebalance(lanes, req.lane, req.amount, day=day_of(tx.now)))
    return done(tx)
