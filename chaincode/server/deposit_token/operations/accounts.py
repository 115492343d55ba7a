"""Account administration by the serving bank's operator.

Owns: ``open_account``, ``set_account_status`` and ``set_account_limits`` (a change of status
or limits is written to every balance lane of the account: a debit reads only its own lane).

Must not: move money.
"""

from __future__ import annotations

from dtoken_wire.requests import OpenAccountRequest, SetLimitsRequest, SetStatusRequest

from ..errors import (
    AlreadyExists,
    CurrencyMismatch,
)
from ..keys import (
    acct_collection,
)
from ..lanes import relimit
from ..records import (
    Account,
    HistoryKind,
)
from ..registry import day_of
from ..rules import (
    change_status,
    set_limits,
)
from .access import (
    ROLE_OPERATOR,
    Tx,
    authorize_bank_write,
    done,
    load_registry,
)
from .declare import declare
from .lanes import lanes_of, save_lanes
from .steps import (
    claim_reference,
    own_account_keys,
    read_account,
    record_history,
    save_account,
    write_reference,
)


@declare()
async def open_account(tx: Tx, req: OpenAccountRequest) -> dict[str, object]:
    """Open an account at the serving bank (operator)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    if not registry.issues(bank.name, req.currency):
        raise CurrencyMismatch("the bank issues no token in request.currency")
    ref_key = await claim_reference(tx, bank, req.reference,
                                     accounts=(req.account_id,) if req.account_id else ())
    account_id = req.account_id or tx.deriver.account_id(tx.tx_id)
    keys = await own_account_keys(tx, registry, bank)  # shared with the regulator at first
    if await tx.ledger.get(Account, acct_collection(bank.name), keys.account(account_id)):
        raise AlreadyExists("an account with that id exists")
    account = Account(account_id=account_id, bank=bank.name, currency=req.currency,
                      owner_ref=req.owner_ref, limits=req.limits, opened_at=tx.at)
    account = record_history(tx, bank, account, HistoryKind.OPENED, 0)
    save_account(tx, bank, account)
    write_reference(tx, bank, ref_key, "open_account", [account_id])
    return done(tx)


@declare()
async def set_account_status(tx: Tx, req: SetStatusRequest) -> dict[str, object]:
    """Freeze, unfreeze or close an account (the bank's operator)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    lanes = await lanes_of(tx, bank, await read_account(tx, bank, req.account_id))
    # every lane carries the status (a debit reads only its own lane); a closed account's
    # lanes must all be empty
    lanes = relimit([change_status(lane, req.status) for lane in lanes], day=day_of(tx.now))
    lanes[0] = record_history(tx, bank, lanes[0], HistoryKind.STATUS, 0,
                              detail=req.status.value)
    save_lanes(tx, bank, lanes)
    return done(tx)


@declare()
async def set_account_limits(tx: Tx, req: SetLimitsRequest) -> dict[str, object]:
    """Replace an account's single-payment and daily-outflow limits (the bank's operator)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    lanes = await lanes_of(tx, bank, await read_account(tx, bank, req.account_id))
    # every lane carries the limits, and the new daily limit is split over the lanes again
    lanes = relimit([set_limits(lane, req.limits) for lane in lanes], day=day_of(tx.now))
    lanes[0] = record_history(tx, bank, lanes[0], HistoryKind.LIMITS, 0)
    save_lanes(tx, bank, lanes)
    return done(tx)
