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

Must not: write; count a record that is not valid where it lives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ..conditions import resolve
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
    "escrow_claims_segment",
    "escrows_segment",
    "orphan_claims_segment",
    "own_escrows_segment",
]

#: A claim naming an escrow that the payer's collection does not hold.
CLAIM_WITHOUT_ESCROW = "escrow_claim_without_escrow"

Handler = Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]


def escrow_claims_segment(tx: Tx, state: ScanState, debtor: BankInfo,
                          creditor: BankInfo) -> Segment:
    """For ``get_obligations``: the creditor's (payee's) claims of the debtor's escrows, from
    ``pair-<creditor>-<debtor>`` only; each counts as ``accepted`` if the rule says so."""
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
            res = resolve(escrow, release, refund, claim, tx.now)
            if res.claim_counts:
                state.tally.add(("xfer", debtor.name, creditor.name, escrow.currency,
                                 Effect.ACCEPTED.value), escrow.amount)
            else:
                state.note(Anomaly(back.collection, escrow_claim_key(eid),
                                   (creditor.name,), res.claim_anomaly))

    return Segment(back.collection, "escclaim", handle)


def escrows_segment(tx: Tx, state: ScanState, payer: BankInfo, payee: BankInfo) -> Segment:
    """For the audit: every escrow ``payer`` opened toward ``payee`` (``pair-<payer>-<payee>``),
    counted as a transfer is (see the module docstring), and the records that do not count
    noted."""
    there = Place.between(payer, payee)
    back = Place.between(payee, payer)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for escrow in await bound_rows(tx, state, Escrow, there, rows):
            eid = escrow.escrow_id
            release = valid(state, await tx.ledger.get_bound(
                EscrowRelease, there, escrow_release_key(eid)))
            refund = valid(state, await tx.ledger.get_bound(
                EscrowRefund, there, escrow_refund_key(eid)))
            claim = valid(state, await tx.ledger.get_bound(
                EscrowClaim, back, escrow_claim_key(eid)))
            res = resolve(escrow, release, refund, claim, tx.now)
            key = (payer.name, payee.name, escrow.currency)
            effect = (Effect.ACCEPTED if res.claim_counts else
                      Effect.REFUNDED if res.refund_counts else Effect.IN_FLIGHT)
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
            eid = escrow.escrow_id
            release = valid(state, await tx.ledger.get_bound(
                EscrowRelease, own, escrow_release_key(eid)))
            refund = valid(state, await tx.ledger.get_bound(
                EscrowRefund, own, escrow_refund_key(eid)))
            claim = valid(state, await tx.ledger.get_bound(
                EscrowClaim, own, escrow_claim_key(eid)))
            state.tally.add(("escrowed", bank.name, escrow.currency),
                            0 if (release or refund or claim) else escrow.amount)

    return Segment(own.collection, "esc", handle)
