"""What two banks owe each other: ``get_obligations``, and the counting both it and the
audit use (a transfer with its decision and refund, bound to their places and ordered by
proven ledger positions; settlements; the creditor's exposure caps).

Must not: write; count a record that is not valid where it lives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from dtoken_wire.requests import (
    LedgerPosition,
    ObligationsRequest,
)

from ..keys import (
    decision_key,
    pair_collection,
    refund_key,
    transfer_key,
)
from ..placement import (
    Anomaly,
    Place,
    decision_mismatch,
    lock_anomaly,
    missing_transfer,
)
from ..records import (
    Cap,
    Decision,
    Outcome,
    Refund,
    Settlement,
    Transfer,
)
from ..registry import BankInfo
from ..rules import Effect, decision_matches, gate_lock
from ..tallies import obligations_report, tally_transfer
from .access import (
    Tx,
    authorize_read,
    load_registry,
    member_bank,
    other_bank,
)
from .declare import declare
from .escrow_counts import escrow_claims_segment
from .scans import (
    ScanState,
    Segment,
    bound_rows,
    paged,
    scan_page,
    valid,
)
from .steps import read_lock


def count_transfer(
    tx: Tx,
    state: ScanState,
    t: Transfer,
    d: Decision | None,
    r: Refund | None,
    order: Mapping[str, LedgerPosition],
) -> None:
    """Count one transfer; a transfer both accepted and refunded that ``order`` does not place
    is listed as a dispute, with where each record lives and the hash of its stored bytes (the
    SDK finds their positions in the blocks and asks again)."""
    back, there = pair_collection(t.payee_bank, t.payer_bank), pair_collection(
        t.payer_bank, t.payee_bank)
    dkey, rkey = decision_key(t.transfer_id), refund_key(t.transfer_id)
    hashes = (tx.ledger.value_hash(back, dkey) if d else None,
              tx.ledger.value_hash(there, rkey) if r else None)
    effect = tally_transfer(state.tally, t, d, r, order, hashes)
    if d is not None and r is not None and d.outcome is Outcome.ACCEPTED and (
        effect is not Effect.DISPUTED
    ):
        # Both stand: the later one's writer skipped the read its contract makes of the
        # other's key (honest banks cannot both commit: MVCC). It counts for nobody; say so.
        if effect is Effect.ACCEPTED:
            state.note(Anomaly(there, rkey, (t.payer_bank,), "late_refund"))
        else:
            state.note(Anomaly(back, dkey, (t.payee_bank,), "late_accept"))
    if effect is not Effect.DISPUTED:
        return
    assert d is not None
    assert r is not None
    state.disputes.append({
        "transfer_id": t.transfer_id, "payer_bank": t.payer_bank, "payee_bank": t.payee_bank,
        "currency": t.currency, "amount": t.amount,
        "accept": {"collection": back, "key": dkey, "value_hash": hashes[0],
                   "writer": t.payee_bank, "claimed_tx_id": d.tx_id},
        "refund": {"collection": there, "key": rkey, "value_hash": hashes[1],
                   "writer": t.payer_bank, "claimed_tx_id": r.tx_id},
    })


@declare(evaluate=True)
async def get_obligations(tx: Tx, req: ObligationsRequest) -> dict[str, object]:
    """What two banks owe each other per currency: accepted less settled, read-only from the
    directional collections (paginated); with each creditor's exposure cap on the other and
    the headroom it leaves. A transfer both accepted and refunded counts by
    ledger order if ``ledger_order`` places both transactions, else it is listed as disputed.
    """
    registry = await load_registry(tx)
    a = member_bank(registry, req.bank_a, "bank_a")
    b = other_bank(registry, a, req.bank_b, "bank_b")
    authorize_read(tx, registry, [a, b])
    state = ScanState.from_cursor("obligations", f"{a.name}/{b.name}", req.cursor)
    segments: list[Segment] = []
    for debtor, creditor in ((a, b), (b, a)):
        segments.append(Segment(pair_collection(creditor.name, debtor.name), "dec",
                                _decisions_handler(tx, state, debtor, creditor,
                                                   req.ledger_order)))
        segments.append(Segment(pair_collection(creditor.name, debtor.name), "settle",
                                settlements_handler(tx, state,
                                                     Place.between(creditor, debtor))))
        segments.append(caps_segment(tx, state, creditor, debtor))
        segments.append(escrow_claims_segment(tx, state, debtor, creditor, req.ledger_order))
    done = await scan_page(tx, state, segments, req.page_size)
    report = obligations_report(state.tally, a.name, b.name) if done else {}
    return paged(state, done, {**report, "disputes": state.disputes})


def _decisions_handler(
    tx: Tx,
    state: ScanState,
    debtor: BankInfo,
    creditor: BankInfo,
    order: Mapping[str, LedgerPosition],
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    """Accepts by ``creditor`` (the payee) of ``debtor``'s transfers: only from
    ``pair-<creditor>-<debtor>``, each matched with its transfer and refund from
    ``pair-<debtor>-<creditor>``."""
    back = Place.between(creditor, debtor)
    there = Place.between(debtor, creditor)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        decisions = await bound_rows(tx, state, Decision, back, rows)
        accepted = [d for d in decisions if d.outcome is Outcome.ACCEPTED]
        ids = [d.transfer_id for d in accepted]
        transfers = await tx.ledger.get_many_bound(Transfer, there,
                                                   [transfer_key(i) for i in ids])
        refunds = await tx.ledger.get_many_bound(Refund, there, [refund_key(i) for i in ids])
        for d, t, r in zip(accepted, transfers, refunds, strict=True):
            key = decision_key(d.transfer_id)
            if t is None:
                state.note(missing_transfer(back, key))
                continue
            transfer = valid(state, t)
            if transfer is None:
                continue
            if not decision_matches(transfer, d):
                state.note(decision_mismatch(transfer, back, key))
                continue
            decision, refund = await gated(tx, state, debtor, creditor, transfer, d,
                                           valid(state, r))
            if decision is None:
                continue
            count_transfer(tx, state, transfer, decision, refund, order)

    return handle


async def gated(
    tx: Tx, state: ScanState, payer: BankInfo, payee: BankInfo, transfer: Transfer,
    decision: Decision | None, refund: Refund | None,
) -> tuple[Decision | None, Refund | None]:
    """The decision and refund of ``transfer`` that count, once its hash lock (if any) is
    applied (:func:`deposit_token.rules.gate_lock`); what it sets aside is noted."""
    if not transfer.lock:
        return decision, refund
    lock = await read_lock(tx, payer, payee, transfer.transfer_id)
    decision, refund, problems = gate_lock(transfer, decision, refund, lock)
    for what in problems:
        state.note(lock_anomaly(transfer, what))
    return decision, refund


def settlements_handler(
    tx: Tx, state: ScanState, place: Place
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    """Settlement confirmations: only from ``pair-<creditor>-<debtor>``, counted for those
    two banks whatever the record's own fields would say (they must agree, or it is noted)."""
    assert place.counterparty is not None
    creditor, debtor = place.writer, place.counterparty

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for s in await bound_rows(tx, state, Settlement, place, rows):
            state.tally.add(("settled", debtor, creditor, s.currency), s.amount)

    return handle


def caps_segment(tx: Tx, state: ScanState, creditor: BankInfo, debtor: BankInfo) -> Segment:
    """The creditor's exposure caps on the debtor: only from ``pair-<creditor>-<debtor>``
    (a "cap" the debtor writes in its own collection is its cap on the creditor, and one
    naming other parties is noted). Keys sort by sequence number, so the last valid record
    of a currency read is the cap in force. Not pinned (the creditor's own limit)."""
    place = Place.pair(creditor.name, debtor.name)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for cap in await bound_rows(tx, state, Cap, place, rows):
            state.tally.put(("cap", debtor.name, creditor.name, cap.currency), cap.cap)

    return Segment(place.collection, "cap", handle)
