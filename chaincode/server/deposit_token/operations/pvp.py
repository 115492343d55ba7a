"""Payment versus payment: hash-locked cross-bank transfers (issue 17, item 2).

Owns: ``lock_transfer`` (the payer bank debits its customer into a transfer that the payee
bank can accept only with the preimage of its lock, before its deadline), ``claim_transfer``
(the payee bank accepts it with the preimage, which its decision then carries for every
reader to hash) and ``expire_lock`` (after the deadline, a transaction the payer's peer AND
the regulator's (or the payee's) endorse turns the lock ``expired``; only then does
``refund_transfer`` pay the payer's customer back). Two legs locked under one hash settle both
or neither (docs/token-model.md, "Payment versus payment", works out the deadlines).

Under the namespace layout the expiry's proposal starts in the pair namespace, where the
storage chaincode serves it with the same rule (:func:`expire_pinned_lock`, through
:func:`expire_lock_in_pair_namespace`, which takes the parties from the pins since no
registry lives there): docs/architecture.md, "PvP under the layout".

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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from dtoken_wire.codec import format_timestamp
from dtoken_wire.requests import ClaimRequest, ExpireLockRequest, LockRequest
from fabshim.statebased import parse_policy

from ..errors import InvalidState, NotAuthorized, WrongEndorser
from ..keys import lock_key, pair_collection, transfer_key
from ..ledger import Ledger
from ..placement import lock_pin, pair_pin
from ..records import LockRecord, LockState
from ..registry import BankInfo
from ..rules import check_expire
from .access import (
    ROLE_OPERATOR,
    Caller,
    Tx,
    done,
    load_registry,
    member_bank,
    other_bank,
)
from .crossbank import _payout, accept_one
from .declare import declare
from .steps import pair_records

__all__ = [
    "claim_transfer",
    "expire_lock",
    "expire_lock_in_pair_namespace",
    "expire_pinned_lock",
    "lock_transfer",
    "wall_clock",
]


def _utc_now() -> datetime:
    return datetime.now(UTC)


#: This server's own clock (``expire_lock`` judges a deadline by it; tests replace it).
wall_clock: Callable[[], datetime] = _utc_now


@declare()
async def lock_transfer(tx: Tx, req: LockRequest) -> dict[str, object]:
    """One leg of a PvP at the payer's bank: a transfer only the lock's preimage can claim."""
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
    then refunds. Under the namespace layout it runs at the top level of the pair namespace
    instead (:func:`expire_lock_in_pair_namespace`, served by the storage chaincode)."""
    if tx.ledger.namespaced:
        raise InvalidState("under the namespace layout expire_lock is invoked in the pair "
                           "namespace of the two banks (the storage chaincode runs it there, "
                           "on the payer's and the regulator's peers), not in a bank's own")
    registry = await load_registry(tx)
    payer = member_bank(registry, req.payer_bank, "payer_bank")
    payee = other_bank(registry, payer, req.payee_bank, "payee_bank")
    if tx.server_msp not in (payer.msp_id, payee.msp_id) and not registry.is_regulator(
            tx.server_msp):
        raise WrongEndorser("only the payer's peer and the payee's or the regulator's "
                            "endorse a lock's expiry")
    _check_asker(tx.caller, payer)
    await expire_pinned_lock(tx.ledger, payer, payee, registry.regulator_msp_id,
                             req.transfer_id, now=tx.now, tx_id=tx.tx_id)
    return done(tx)


def _check_asker(caller: Caller, payer: BankInfo) -> None:
    if caller.msp_id != payer.msp_id:
        raise NotAuthorized("only the payer bank expires its transfer's lock")
    if ROLE_OPERATOR not in caller.roles:
        raise NotAuthorized(f"the {ROLE_OPERATOR} role is required")


async def expire_pinned_lock(
    ledger: Ledger, payer: BankInfo, payee: BankInfo, regulator_msp_id: str | None,
    transfer_id: str, *, now: datetime, tx_id: str,
) -> None:
    """The expiry's rule, for both places it runs (the contract's :func:`expire_lock` and the
    pair namespace's :func:`expire_lock_in_pair_namespace`): read the transfer, its decision
    and its lock (bound and pin-checked), refuse unless :func:`deposit_token.rules.check_expire`
    allows it by the earlier of ``now`` (the transaction's timestamp) and this server's own
    clock, then buffer the ``expired`` lock record under the lock's pin."""
    record, decision, _refund, lock = await pair_records(
        ledger, payer, payee, transfer_id, _given(regulator_msp_id))
    # the earlier of the transaction's timestamp and this server's own clock: neither the
    # client nor a skewed peer can bring the deadline forward
    check_expire(record, decision, lock, min(now, wall_clock()))
    assert lock is not None
    pair = pair_collection(payer.name, payee.name)
    key = lock_key(transfer_id)
    # Both endorsing peers must write the same bytes, so the salt cannot come from either's
    # secret; it is derived from the transaction id and the lock (a 256-bit value only the
    # banks of the legs and the regulator know), which keeps the stored hash unguessable to
    # everyone else.
    salt = hashlib.sha256(f"lock-salt/{tx_id}/{pair}/{key}/{lock.lock}".encode()).hexdigest()
    ledger.put(pair, key, LockRecord(
        transfer_id=lock.transfer_id, payer_bank=payer.name, payee_bank=payee.name,
        lock=lock.lock, deadline=lock.deadline, state=LockState.EXPIRED,
        at=format_timestamp(now), tx_id=tx_id), pin=lock_pin(payer, payee, regulator_msp_id),
        salt=salt[:32])


def _given(value: str | None) -> Callable[[], Awaitable[str | None]]:
    async def get() -> str | None:
        return value
    return get


async def expire_lock_in_pair_namespace(
    ledger: Ledger, caller: Caller, server_msp: str, req: ExpireLockRequest, *,
    now: datetime, tx_id: str,
) -> dict[str, object]:
    """``expire_lock`` at the top level of a pair namespace (the namespace layout): the one
    transaction the storage chaincode runs for a client, on the payer's peer and the
    regulator's (or the payee's), with the rule of :func:`expire_pinned_lock`.

    No registry lives in a pair namespace (each organization's copy is public state of its
    own namespace, out of reach here). The parties' MSP ids come from the pins instead:
    the lock's validation parameter, ``AND(payer, OR(payee, regulator))``
    (:func:`deposit_token.placement.lock_pin`), names the payer and the two who may co-sign,
    and the transfer's, ``AND(payer, payee)`` (``pair_pin``), tells which of the two is the
    payee. A pin is only the payer's word at creation, but a lock or transfer whose pins do
    not name the parties the registry does counts for nobody at every honest reader (each
    compares the pins byte for byte with its registry's), so an expiry written under a pin
    that was read here can matter only where those pins are the true ones."""
    pair = pair_collection(req.payer_bank, req.payee_bank)
    lock_param = await ledger.parameter(pair, lock_key(req.transfer_id))
    transfer_param = await ledger.parameter(pair, transfer_key(req.transfer_id))
    parties = _parties_of(lock_param, transfer_param)
    if parties is None:
        # absent, or not pinned as a hash-locked leg is: no expiry of it counts anywhere
        raise InvalidState("the transfer's lock is not standing")
    payer_msp, payee_msp, regulator_msp = parties
    if server_msp not in parties:
        raise WrongEndorser("only the payer's peer and the payee's or the regulator's "
                            "endorse a lock's expiry")
    payer = BankInfo(req.payer_bank, payer_msp, ())
    payee = BankInfo(req.payee_bank, payee_msp, ())
    _check_asker(caller, payer)
    await expire_pinned_lock(ledger, payer, payee, regulator_msp, req.transfer_id, now=now,
                             tx_id=tx_id)
    return {"tx_id": tx_id}


def _parties_of(
    lock_param: bytes | None, transfer_param: bytes | None
) -> tuple[str, str, str] | None:
    """(payer, payee, regulator) MSP ids from a hash-locked leg's two pins, or ``None`` when
    they are not the pins :func:`lock_pin` and ``pair_pin`` make."""
    if lock_param is None or transfer_param is None:
        return None
    try:
        named = parse_policy(lock_param).msp_ids
    except ValueError:
        return None
    if len(named) != 3:
        return None
    payer, either = named[0], named[1:]
    for payee, regulator in ((either[0], either[1]), (either[1], either[0])):
        ends = BankInfo("payer", payer, ()), BankInfo("payee", payee, ())
        if (lock_pin(*ends, regulator) == lock_param
                and pair_pin(*ends) == transfer_param):
            return payer, payee, regulator
    return None
