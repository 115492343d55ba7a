"""Payment versus payment: hash-locked cross-bank transfers (issue 17, item 2).

Owns: ``lock_transfer`` (the payer bank debits its customer into a transfer that the payee
bank can accept only with the preimage of its lock, before its deadline), ``claim_transfer``
(the payee bank accepts it with the preimage, which its decision then carries for every
reader to hash) and ``expire_lock`` (after the deadline, a transaction the payer's peer AND
the regulator's (or the payee's) endorse turns the lock ``expired``; only then does
``refund_transfer`` pay the payer's customer back). Two legs locked under one hash settle both
or neither (docs/token-model.md, "Payment versus payment", works out the deadlines).

Why each rule holds against a dishonest bank (its peer writes anything in its own
collections):

* the lock and the deadline are fields of the transfer, pinned to both banks at creation: a
  rewrite needs both peers (Fabric invalidates it);
* the ``lock/<id>`` record is pinned to the payer AND one of the payee or the regulator
  (:func:`deposit_token.placement.lock_pin`): a payee that refuses to co-sign the expiry
  cannot keep its leg claimable past the deadline (the regulator's peer co-signs instead),
  and neither the payee nor the regulator can touch the lock without the payer;
* a claim whose preimage does not open the lock, or written after the lock was expired,
  counts for nobody (``claim_without_preimage``, ``late_claim``:
  :func:`deposit_token.rules.gate_lock`, applied by every reader);
* a refund counts only once the pinned lock record says ``expired``; the co-signing server
  (the regulator's, or the payee's) endorses that only once the deadline passed **on its own
  clock** (the transaction timestamp is the payer's client's word) and it reads no claim (a
  claim committed first makes the expiry's read stale: MVCC invalidates it; a claim whose
  private data the co-signing peer lacks fails its read, and it refuses); a refund the
  payer's peer writes alone before that is ``refund_before_deadline``, counted by nobody.

Must not: decide through anything but :mod:`deposit_token.rules`; trust a timestamp a
counterparty's client chose for a deadline the counterparty gains from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from dtoken_wire.requests import ClaimRequest, ExpireLockRequest, LockRequest

from ..errors import InvalidState, NotAuthorized, WrongEndorser
from ..keys import lock_key, pair_collection
from ..placement import lock_pin
from ..records import LockRecord, LockState
from ..rules import check_expire
from .access import (
    ROLE_OPERATOR,
    Tx,
    done,
    load_registry,
    member_bank,
    other_bank,
)
from .crossbank import _payout, accept_one
from .declare import declare
from .steps import read_lock, transfer_records

__all__ = ["claim_transfer", "expire_lock", "lock_transfer", "wall_clock"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


#: This server's own clock (``expire_lock`` judges a deadline by it; tests replace it).
wall_clock: Callable[[], datetime] = _utc_now


@declare()
async def lock_transfer(tx: Tx, req: LockRequest) -> dict[str, object]:
    """One leg of a PvP at the payer's bank: a transfer only the lock's preimage can claim."""
    if tx.ledger.namespaced:
        # Its refund needs expire_lock, endorsed by two organizations' peers over one proposal,
        # which the layout cannot run yet: a leg nobody claims would stay locked for good.
        raise InvalidState("hash-locked transfers are not available under the namespace "
                           "layout yet (docs/architecture.md)")
    if (await load_registry(tx)).regulator_msp_id is None:
        # the regulator's peer is what co-signs an expiry the payee refuses (lock_pin):
        # without it the payee alone could keep the leg claimable past its deadline
        raise InvalidState("hash-locked transfers need a regulator (its peer co-signs a "
                             "lock's expiry): the network has none")
    return await _payout(tx, "lock_transfer", req.reference, req.payer_account,
                         (req.payment,), req.ttl_seconds, req.originator, cross_only=True,
                         lock=req.lock)


@declare()
async def claim_transfer(tx: Tx, req: ClaimRequest) -> dict[str, object]:
    """At the payee's bank: accept a hash-locked transfer with its lock's preimage."""
    return await accept_one(tx, req.payer_bank, req.transfer_id, req.preimage)


@declare()
async def expire_lock(tx: Tx, req: ExpireLockRequest) -> dict[str, object]:
    """After the deadline: turn a lock ``expired``, endorsed by the payer's peer and the
    regulator's (or the payee's), each judging the deadline on its own clock; the payer bank
    then refunds."""
    registry = await load_registry(tx)
    payer = member_bank(registry, req.payer_bank, "payer_bank")
    payee = other_bank(registry, payer, req.payee_bank, "payee_bank")
    if tx.server_msp not in (payer.msp_id, payee.msp_id) and not registry.is_regulator(
            tx.server_msp):
        raise WrongEndorser("only the payer's peer and the payee's or the regulator's "
                            "endorse a lock's expiry")
    if tx.caller.msp_id != payer.msp_id:
        raise NotAuthorized("only the payer bank expires its transfer's lock")
    if ROLE_OPERATOR not in tx.caller.roles:
        raise NotAuthorized(f"the {ROLE_OPERATOR} role is required")
    record, decision, _refund = await transfer_records(tx, payer, payee, req.transfer_id)
    lock = await read_lock(tx, payer, payee, req.transfer_id)
    # the earlier of the transaction's timestamp and this server's own clock: neither the
    # client nor a skewed peer can bring the deadline forward
    check_expire(record, decision, lock, min(tx.now, wall_clock()))
    assert lock is not None
    pair = pair_collection(payer.name, payee.name)
    key = lock_key(req.transfer_id)
    # Both endorsing peers must write the same bytes, so the salt cannot come from either's
    # secret; it is derived from the transaction id and the lock (a 256-bit value only the
    # banks of the legs and the regulator know), which keeps the stored hash unguessable to
    # everyone else.
    salt = hashlib.sha256(f"lock-salt/{tx.tx_id}/{pair}/{key}/{lock.lock}".encode()).hexdigest()
    tx.ledger.put(pair, key, LockRecord(
        transfer_id=lock.transfer_id, payer_bank=payer.name, payee_bank=payee.name,
        lock=lock.lock, deadline=lock.deadline, state=LockState.EXPIRED, at=tx.at,
        tx_id=tx.tx_id), pin=lock_pin(payer, payee, registry.regulator_msp_id),
        salt=salt[:32])
    return done(tx)
