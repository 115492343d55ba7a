"""A bank suspended by the regulator, and resumed: no new payment to or from it meanwhile.

Owns: ``suspend_bank`` and ``resume_bank`` (the regulator's server only), ``get_suspensions``
(what the serving bank has been told), and :func:`refuse_suspended`, the check every bank's
contract makes before a new cross-bank payment or an accept.

Where the flag lives, and why: in **every bank's** ``holds-<bank>`` collection, under
``suspension/<suspended bank>``. Only the regulator's peers endorse writes there (the
collection's endorsement policy, which Fabric validates: the suspended bank's peer cannot
write, rewrite or delete the flag, in its own holds collection or another's), and each bank's
contract reads its *own* holds collection, which it already reads before any debit. Public
state would not do: a new public key falls back to the chaincode-level policy, which the
regulator alone does not satisfy. One ``suspend_bank`` writes the flag into every bank's holds
collection at once, so every honest bank refuses from the same block on.

What an honest bank's contract refuses while a bank is suspended (code ``SUSPENDED``):

* a new cross-bank payment (``initiate_transfer``, ``batch_payout``, ``coalesced_payout``)
  whose payee bank is suspended, or made by a suspended serving bank;
* an accept of a transfer whose payer bank is suspended (an accept creates an obligation of
  the payer's bank): the payee bank may still reject it, and the payer then refunds.

What goes on: rejects, refunds, settlement confirmations, reads, the obligations scan and the
audit: the suspended bank's obligations stay visible and settle. Every check reads the flag's
key, so a suspension committed while a payment is endorsed invalidates it (MVCC).

Must not: change a balance, or refuse a refund or a settlement because of a suspension.
"""

from __future__ import annotations

from dtoken_wire.requests import ResumeRequest, SuspendRequest

from ..errors import BankSuspended, InvalidState, NotFound
from ..keys import holds_collection, suspension_key
from ..records import Suspension
from ..registry import BankInfo, Registry
from .access import (
    Tx,
    authorize_read,
    authorize_regulator_write,
    done,
    load_registry,
    member_bank,
    serving_bank,
)
from .declare import declare

__all__ = ["get_suspensions", "refuse_suspended", "resume_bank", "suspend_bank"]


async def _write_everywhere(tx: Tx, bank: BankInfo, suspended: bool, reason: str) -> None:
    registry = await load_registry(tx)
    record = Suspension(bank=bank.name, suspended=suspended, reason=reason, set_at=tx.at,
                        tx_id=tx.tx_id)  # fmt: skip
    for informed in registry.banks:
        tx.ledger.put(holds_collection(informed.name), suspension_key(bank.name), record)


@declare()
async def suspend_bank(tx: Tx, req: SuspendRequest) -> dict[str, object]:
    """The regulator suspends a bank: every bank's contract refuses new payments to or from it."""
    registry = await load_registry(tx)
    authorize_regulator_write(tx, registry)
    bank = member_bank(registry, req.bank, "bank")
    await _write_everywhere(tx, bank, True, req.reason)
    return done(tx)


@declare()
async def resume_bank(tx: Tx, req: ResumeRequest) -> dict[str, object]:
    """The regulator lifts its suspension of a bank."""
    registry = await load_registry(tx)
    authorize_regulator_write(tx, registry)
    bank = member_bank(registry, req.bank, "bank")
    told = await tx.ledger.get(Suspension, holds_collection(bank.name), suspension_key(bank.name))
    if told is None or not told.suspended:
        raise InvalidState("the bank is not suspended")
    await _write_everywhere(tx, bank, False, "")
    return done(tx)


@declare(evaluate=True)
async def get_suspensions(tx: Tx) -> dict[str, object]:
    """The suspensions the serving bank has been told of (its own holds collection)."""
    registry = await load_registry(tx)
    if registry.regulator_msp_id is None:
        return {"suspended": []}
    if registry.is_regulator(tx.server_msp):
        raise NotFound("the regulator's server keeps no suspension of its own: ask a bank")
    bank = serving_bank(tx, registry)
    authorize_read(tx, registry, [bank])
    suspended = []
    for other in registry.banks:
        told = await tx.ledger.get(Suspension, holds_collection(bank.name),
                                   suspension_key(other.name))  # fmt: skip
        if told is not None and told.suspended:
            suspended.append({"bank": other.name, "since": told.set_at, "reason": told.reason})
    return {"suspended": suspended}


async def refuse_suspended(
    tx: Tx, registry: Registry, serving: BankInfo, others: list[BankInfo], what: str
) -> None:
    """Raise ``SUSPENDED`` if the serving bank or one of ``others`` is suspended, as the
    regulator told the serving bank (in its own holds collection; none without a regulator)."""
    if registry.regulator_msp_id is None:
        return
    banks = [serving, *others]
    told = await tx.ledger.get_many(Suspension, holds_collection(serving.name),
                                    [suspension_key(b.name) for b in banks])  # one round trip
    for bank, flag in zip(banks, told, strict=True):
        if flag is not None and flag.suspended:
            raise BankSuspended(f"bank {bank.name} is suspended by the regulator: no {what}")
