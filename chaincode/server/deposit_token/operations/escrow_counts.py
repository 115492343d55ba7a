"""How escrows count in what two banks owe each other and in the regulator's audit.

Owns: the scan segments that :mod:`.netting` and :mod:`.conservation` add for escrows. A
cross-bank escrow is tallied in the same families as a transfer (``("xfer", payer, payee,
currency, ...)``, ``accepts``, ``refunds``; :mod:`deposit_token.tallies`), so obligations and
conservation need no second formula: opened is ``initiated``, a claim that counts is
``accepted`` (the payer bank owes it), a refund that counts is ``refunded``, and anything else
(held, released but not yet claimed, or decided by records that count for nobody) is
``in_flight``: debited from the payer, credited to nobody. Within one bank an escrow still
held is ``("escrowed", bank, currency)``: money the bank's balances no longer show but its
supply does. Each record :func:`deposit_token.conditions.resolve` rejects is an anomaly
naming the bank whose peer alone could have written it.

A claim and a refund on a statement that both hold on their own are decided by ledger order
(:func:`deposit_token.conditions.resolve`): :func:`claim_first` reads it from the caller's
``ledger_order`` (positions proven from the blocks, keyed by the SHA-256 of each record's
stored bytes), and without it the escrow counts as ``disputed`` and :func:`escrow_dispute`
lists both records in the shape of a transfer's dispute (``accept`` is the claim), so the
SDK proves their positions as it does for transfers and asks again.

Must not: write; count a record that is not valid where it lives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from dtoken_wire.requests import LedgerPosition

from ..conditions import Resolution, resolve
from ..keys import (
    escrow_claim_key,
    escrow_key,
    escrow_refund_key,
    escrow_release_key,
    pair_collection,
)
from ..placement import Anomaly, Place
from ..records import Escrow, EscrowClaim, EscrowRefund, EscrowRelease
from ..registry import BankInfo
from ..rules import Effect
from .access import Tx
from .scans import ScanState, Segment, bound_rows, valid

__all__ = [
    "CLAIM_WITHOUT_ESCROW",
    "claim_first",
    "escrow_claims_segment",
    "escrow_dispute",
    "escrows_segment",
    "orphan_claims_segment",
    "own_escrows_segment",
]

#: A claim naming an escrow that the payer's collection does not hold.
CLAIM_WITHOUT_ESCROW = "escrow_claim_without_escrow"

Handler = Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]
Order = Mapping[str, LedgerPosition]


def claim_first(tx: Tx, escrow: Escrow, order: Order) -> bool | None:
    """Whether the claim of ``escrow`` precedes its refund in ledger order, from ``order``
    and the hashes of the bytes this transaction read under both keys (each must have been
    read); ``None`` unless both positions are given."""
    payer, payee = escrow.payer_bank, escrow.payee_bank
    claim_hash = tx.ledger.value_hash(pair_collection(payee, payer),
                                      escrow_claim_key(escrow.escrow_id))
    refund_hash = tx.ledger.value_hash(pair_collection(payer, payee),
                                       escrow_refund_key(escrow.escrow_id))
    at_claim, at_refund = order.get(claim_hash or ""), order.get(refund_hash or "")
    if at_claim is None or at_refund is None:
        return None
    return tuple(at_claim) < tuple(at_refund)


def escrow_dispute(tx: Tx, escrow: Escrow, claim: EscrowClaim,
                   refund: EscrowRefund) -> dict[str, object]:
    """A disputed escrow as a transfer's dispute is listed: each record with where it lives,
    the hash of its stored bytes, its writer and the transaction it claims (never believed)."""
    payer, payee, eid = escrow.payer_bank, escrow.payee_bank, escrow.escrow_id
    back, there = pair_collection(payee, payer), pair_collection(payer, payee)
    ckey, rkey = escrow_claim_key(eid), escrow_refund_key(eid)
    return {
        "escrow_id": eid, "payer_bank": payer, "payee_bank": payee,
        "currency": escrow.currency, "amount": escrow.amount,
        "accept": {"collection": back, "key": ckey, "value_hash": tx.ledger.value_hash(
            back, ckey), "writer": payee, "claimed_tx_id": claim.tx_id},
        "refund": {"collection": there, "key": rkey, "value_hash": tx.ledger.value_hash(
            there, rkey), "writer": payer, "claimed_tx_id": refund.tx_id},
    }


def _resolved(tx: Tx, state: ScanState, escrow: Escrow, release: EscrowRelease | None,
              refund: EscrowRefund | None, claim: EscrowClaim | None,
              order: Order) -> Resolution:
    """:func:`resolve` with the ledger order; a dispute it cannot decide is listed."""
    res = resolve(escrow, release, refund, claim, tx.now, claim_first(tx, escrow, order))
    if res.disputed and claim is not None and refund is not None:
        state.disputes.append(escrow_dispute(tx, escrow, claim, refund))
    return res


async def _beside(
    tx: Tx, state: ScanState, escrow_id: str, there: Place, back: Place
) -> tuple[EscrowRelease | None, EscrowRefund | None, EscrowClaim | None]:
    """The release and refund beside an escrow (``there``) and the claim of it (``back``),
    each only if valid where it lives (an invalid one is noted and counts as absent)."""
    release = valid(state, await tx.ledger.get_bound(
        EscrowRelease, there, escrow_release_key(escrow_id)))
    refund = valid(state, await tx.ledger.get_bound(
        EscrowRefund, there, escrow_refund_key(escrow_id)))
    claim = valid(state, await tx.ledger.get_bound(
        EscrowClaim, back, escrow_claim_key(escrow_id)))
    return release, refund, claim


def escrow_claims_segment(tx: Tx, state: ScanState, debtor: BankInfo,
                          creditor: BankInfo, order: Order | None = None) -> Segment:
    """For ``get_obligations``: the creditor's (payee's) claims of the debtor's escrows, from
    ``pair-<creditor>-<debtor>`` only; each counts as ``accepted`` if the rule says so (with
    ``order``, the ledger order of a claim and a refund that both hold), as ``disputed`` if
    only that order could say."""
    back = Place.between(creditor, debtor)
    there = Place.between(debtor, creditor)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for claim in await bound_rows(tx, state, EscrowClaim, back, rows):
            eid = claim.escrow_id
            found = await tx.ledger.get_bound(Escrow, there, escrow_key(eid))
            if found is None:
                state.note(Anomaly(back.collection, escrow_claim_key(eid),
                                   (creditor.name, debtor.name), CLAIM_WITHOUT_ESCROW))
                continue
            escrow = valid(state, found)
            if escrow is None:
                continue
            release = valid(state, await tx.ledger.get_bound(
                EscrowRelease, there, escrow_release_key(eid)))
            refund = valid(state, await tx.ledger.get_bound(
                EscrowRefund, there, escrow_refund_key(eid)))
            res = _resolved(tx, state, escrow, release, refund, claim, order or {})
            if res.claim_counts or res.disputed:
                effect = Effect.ACCEPTED if res.claim_counts else Effect.DISPUTED
                state.tally.add(("xfer", debtor.name, creditor.name, escrow.currency,
                                 effect.value), escrow.amount)
            else:
                state.note(Anomaly(back.collection, escrow_claim_key(eid),
                                   (creditor.name,), res.claim_anomaly))

    return Segment(back.collection, "escclaim", handle)


def escrows_segment(tx: Tx, state: ScanState, payer: BankInfo, payee: BankInfo,
                    order: Order | None = None) -> Segment:
    """For the audit: every escrow ``payer`` opened toward ``payee`` (``pair-<payer>-<payee>``),
    counted as a transfer is (see the module docstring; a claim and a refund that both hold
    by ``order``, or ``disputed``), and the records that do not count noted."""
    there = Place.between(payer, payee)
    back = Place.between(payee, payer)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for escrow in await bound_rows(tx, state, Escrow, there, rows):
            eid = escrow.escrow_id
            release, refund, claim = await _beside(tx, state, eid, there, back)
            res = _resolved(tx, state, escrow, release, refund, claim, order or {})
            key = (payer.name, payee.name, escrow.currency)
            effect = (Effect.ACCEPTED if res.claim_counts else
                      Effect.REFUNDED if res.refund_counts else
                      Effect.DISPUTED if res.disputed else Effect.IN_FLIGHT)
            state.tally.add(("xfer", *key, "initiated"), escrow.amount)
            state.tally.add(("xfer", *key, effect.value), escrow.amount)
            state.tally.add(("escrow", *key, res.state.value), escrow.amount)
            if claim is not None:
                state.tally.add(("accepts", *key), claim.amount)
            if refund is not None:
                state.tally.add(("refunds", *key), refund.amount)
            if res.claim_anomaly:
                state.note(Anomaly(back.collection, escrow_claim_key(eid), (payee.name,),
                                   res.claim_anomaly))
            if res.refund_anomaly:
                state.note(Anomaly(there.collection, escrow_refund_key(eid), (payer.name,),
                                   res.refund_anomaly))

    return Segment(there.collection, "esc", handle)


def orphan_claims_segment(tx: Tx, state: ScanState, payer: BankInfo,
                          payee: BankInfo) -> Segment:
    """For the audit: claims in ``pair-<payee>-<payer>`` whose escrow the payer's collection
    lacks (the escrow scan cannot meet them)."""
    back = Place.between(payee, payer)
    there = Place.between(payer, payee)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for claim in await bound_rows(tx, state, EscrowClaim, back, rows):
            if await tx.ledger.get_bound(Escrow, there, escrow_key(claim.escrow_id)) is None:
                state.note(Anomaly(back.collection, escrow_claim_key(claim.escrow_id),
                                   (payee.name, payer.name), CLAIM_WITHOUT_ESCROW))

    return Segment(pair_collection(payee.name, payer.name), "escclaim", handle)


def own_escrows_segment(tx: Tx, state: ScanState, bank: BankInfo) -> Segment:
    """For the audit: the escrows within ``bank`` (``acct-<bank>``) still held, as
    ``("escrowed", bank, currency)``: the bank's balances plus these equal its supply."""
    own = Place.acct(bank.name)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for escrow in await bound_rows(tx, state, Escrow, own, rows):
            # Within a bank every record is the bank's own word and a release credits the
            # payee at once: any of the three means the money left the escrow (a false one
            # can only make the bank's own balances fall short of its supply).
            moved = any(await _beside(tx, state, escrow.escrow_id, own, own))
            state.tally.add(("escrowed", bank.name, escrow.currency),
                            0 if moved else escrow.amount)

    return Segment(own.collection, "esc", handle)
