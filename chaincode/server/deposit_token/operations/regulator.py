"""The regulator's writes: holds on a bank's accounts.

Owns: ``set_hold`` (freeze an account, or hold an amount on it) and ``release_hold``, written
to the bank's holds collection by the regulator's server only.

Must not: change a balance.
"""

from __future__ import annotations

from dtoken_wire.requests import HoldRequest, ReleaseHoldRequest

from ..errors import (
    NotFound,
)
from ..keys import (
    holds_collection,
)
from ..records import (
    Hold,
)
from .access import (
    Tx,
    authorize_regulator_write,
    done,
    load_registry,
    member_bank,
)
from .declare import declare
from .steps import (
    account_keys,
    read_account,
)


@declare()
async def set_hold(tx: Tx, req: HoldRequest) -> dict[str, object]:
    """The regulator freezes an account or holds an amount on it (its own collection)."""
    registry = await load_registry(tx)
    authorize_regulator_write(tx, registry)
    bank = member_bank(registry, req.bank, "bank")
    account = await read_account(tx, bank, req.account_id)  # also learns the account keys
    keys = await account_keys(tx, bank)
    assert keys is not None  # read_account found the account under them
    tx.ledger.put(holds_collection(bank.name), keys.hold(req.account_id), Hold(
        account_id=req.account_id, frozen=req.frozen, held_amount=req.held_amount,
        reason=req.reason, set_at=tx.at, tx_id=tx.tx_id,
        floor=min(req.held_amount, account.balance)))
    return done(tx)


@declare()
async def release_hold(tx: Tx, req: ReleaseHoldRequest) -> dict[str, object]:
    """The regulator removes its hold on an account."""
    registry = await load_registry(tx)
    authorize_regulator_write(tx, registry)
    bank = member_bank(registry, req.bank, "bank")
    keys = await account_keys(tx, bank)
    if keys is None:
        raise NotFound("there is no hold on the account")
    coll, key = holds_collection(bank.name), keys.hold(req.account_id)
    if await tx.ledger.get(Hold, coll, key) is None:
        raise NotFound("there is no hold on the account")
    tx.ledger.delete(coll, key)
    return done(tx)
