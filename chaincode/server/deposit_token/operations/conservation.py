"""The regulator's audit: conservation over every bank's and every pair's collections,
paginated, on the regulator's peer, with every scanned value checked against the committed
hash and every record bound to where it lives.

Must not: write; say OK while any record counts for nobody.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace

from dtoken_wire.requests import (
    AuditRequest,
    LedgerPosition,
)

from ..errors import (
    NotAuthorized,
    WrongEndorser,
)
from ..keys import (
    acct_collection,
    decision_key,
    holds_collection,
    pair_collection,
    transfer_key,
)
from ..placement import (
    Anomaly,
    Place,
    missing_transfer,
)
from ..records import (
    Account,
    Decision,
    Hold,
    Lane,
    SupplyRecord,
    Transfer,
)
from ..registry import Registry
from ..tallies import audit_report
from .access import (
    ROLE_AUDITOR,
    Tx,
    load_registry,
)
from .declare import declare
from .escrow_counts import escrows_segment, orphan_claims_segment, own_escrows_segment
from .netting import caps_segment, count_transfer, settlements_handler
from .scans import (
    ScanState,
    Segment,
    bound_rows,
    paged,
    pair_lookups,
    scan_page,
)
from .steps import account_keys


@declare(evaluate=True, optional_request=True)
async def audit(tx: Tx, req: AuditRequest) -> dict[str, object]:
    """The regulator's audit over every bank's and every pair's collections (paginated):
    balances against supply records, supply records against transfers, accepts and refunds,
    conservation per currency, obligations per pair (DESIGN §5, §7). Every record is bound
    to the collection it was read from; one that is not valid there is an anomaly (which
    fails the audit and names the bank whose peer alone could have written it)."""
    registry = await load_registry(tx)
    if not registry.is_regulator(tx.caller.msp_id) or ROLE_AUDITOR not in tx.caller.roles:
        raise NotAuthorized("only the regulator's auditor runs the audit")
    if tx.server_msp != registry.regulator_msp_id:
        raise WrongEndorser("the audit runs on the regulator's peer")
    state = ScanState.from_cursor("audit", "all", req.cursor)
    segments: list[Segment] = []
    for bank in registry.banks:
        own = Place.acct(bank.name, await account_keys(tx, bank))
        segments.append(Segment(own.collection, "acct", _accounts_handler(tx, state, own)))
        segments.append(Segment(own.collection, "sup", _supply_handler(tx, state, own)))
        segments.append(own_escrows_segment(tx, state, bank))
    for p in registry.banks:
        for q in registry.banks:
            if p.name == q.name:
                continue
            place = Place.between(p, q)
            segments.append(Segment(place.collection, "xfer",
                                    _transfers_handler(tx, registry, state, place,
                                                       req.ledger_order)))
            segments.append(Segment(place.collection, "dec", _orphans_handler(tx, state, place)))
            segments.append(Segment(place.collection, "settle",
                                    settlements_handler(tx, state, place)))
            segments.append(caps_segment(tx, state, p, q))
            segments.append(escrows_segment(tx, state, p, q, req.ledger_order))
            segments.append(orphan_claims_segment(tx, state, q, p))
    writers = {acct_collection(b.name): b.name for b in registry.banks}
    writers.update({pair_collection(p.name, q.name): p.name
                    for p in registry.banks for q in registry.banks if p.name != q.name})
    segments = [_hash_checked(tx, state, seg, writers[seg.collection]) for seg in segments]
    done = await scan_page(tx, state, segments, req.page_size)
    report = audit_report(state.tally, registry.bank_names()) if done else {}
    return paged(state, done, {**report, "disputes": state.disputes})


def _hash_checked(tx: Tx, state: ScanState, segment: Segment, writer: str) -> Segment:
    """``segment`` with its handler given only the rows whose value hashes to the committed
    hash.

    A range scan is answered from the peer's private store, never checked against the hashes
    the blocks committed: a peer that a bank withheld a write from (or gave a tampered value)
    answers with what it holds. A point read is safe (Fabric refuses a private value whose
    version is not the committed one); a scanned one is checked here with
    ``GetPrivateDataHash``, one peer call per record. A value that does not match counts for
    nobody and fails the audit (``hash_mismatch``, naming ``writer``: the bank whose peer
    alone writes the collection).
    """
    handle, collection = segment.handle, segment.collection

    async def checked(rows: Sequence[tuple[str, bytes]]) -> None:
        kept: list[tuple[str, bytes]] = []
        for key, value in rows:
            if await tx.ledger.committed_hash(collection, key) == hashlib.sha256(
                    value).digest():
                kept.append((key, value))
            else:
                state.note(Anomaly(collection, key, (writer,), "hash_mismatch"))
        await handle(kept)

    return replace(segment, handle=checked)


def _orphans_handler(
    tx: Tx, state: ScanState, place: Place
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    """Decisions in ``place`` (the payee's) whose transfer the payer's collection lacks: the
    transfer scan cannot meet them, so the audit looks for them from this side."""
    assert place.counterparty is not None
    there = Place.pair(place.counterparty, place.writer)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        # The transfer scan already met (and noted) every decision whose transfer exists:
        # only those under a key naming no transfer are this scan's to note.
        keys = [transfer_key(key.removeprefix("dec/")) for key, _ in rows]
        found = await tx.ledger.get_many_bound(Transfer, there, keys)
        orphans = [row for row, t in zip(rows, found, strict=True) if t is None]
        for d in await bound_rows(tx, state, Decision, place, orphans):
            state.note(missing_transfer(place, decision_key(d.transfer_id)))

    return handle


def _accounts_handler(tx: Tx, state: ScanState, place: Place) -> Callable[
        [Sequence[tuple[str, bytes]]], Awaitable[None]]:
    """Balances per bank and currency (an account's over its balance lanes); and each
    account's balance against the regulator's
    hold on it: a balance below the hold's floor (``Hold.floor``) means the bank's server paid
    out what the regulator held (it skipped the hold read), which the state shows and the
    audit names.
    (A debit of a fully frozen account leaves no such trace: only the block monitor sees it.)
    """
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        accounts = await bound_rows(tx, state, Account, place, rows)
        balances = [await _lanes_balance(tx, state, place, acc) for acc in accounts]
        for acc, balance in zip(accounts, balances, strict=True):
            state.tally.add(("balance", place.writer, acc.currency), balance)
            state.tally.add(("accounts", place.writer, acc.currency), 1)
        if not accounts or place.accounts is None:
            return
        keys = [place.accounts.hold(a.account_id) for a in accounts]
        holds = await tx.ledger.get_many(Hold, holds_collection(place.writer), keys)
        for acc, balance, hold in zip(accounts, balances, holds, strict=True):
            if hold is not None and balance < hold.floor:
                state.note(Anomaly(place.collection, place.accounts.account(acc.account_id),
                                   (place.writer,), "held_amount_paid_out"))

    return handle


async def _lanes_balance(tx: Tx, state: ScanState, place: Place, account: Account) -> int:
    """``account``'s balance over its balance lanes (point reads of the lanes its record
    counts, each bound to its place). A lane that is missing or not valid where it lives
    counts for nobody and is noted (``missing_lane``, or what :func:`bind` found)."""
    if account.lanes <= 1:
        return account.balance
    if place.accounts is None:  # the lanes' keys cannot be known: noted as missing
        state.note(Anomaly(place.collection, f"lane/?/{account.lanes - 1:02d}",
                           (place.writer,), "missing_lane"))
        return account.balance
    keys = [place.accounts.lane(account.account_id, k) for k in range(1, account.lanes)]
    total = account.balance
    for k, (key, lane) in enumerate(
            zip(keys, await tx.ledger.get_many_bound(Lane, place, keys), strict=True), start=1):
        if lane is None:
            state.note(Anomaly(place.collection, key, (place.writer,), "missing_lane"))
        elif isinstance(lane, Anomaly):
            state.note(lane)
        elif lane.account_id != account.account_id or lane.lane != k \
                or lane.currency != account.currency:
            state.note(Anomaly(place.collection, key, (place.writer,), "wrong_key"))
        else:
            total += lane.balance
    return total


def _supply_handler(tx: Tx, state: ScanState, place: Place) -> Callable[
        [Sequence[tuple[str, bytes]]], Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for rec in await bound_rows(tx, state, SupplyRecord, place, rows):
            state.tally.add(("supply", place.writer, rec.currency, rec.kind.value,
                             rec.counterparty or "-"), rec.amount)

    return handle


def _transfers_handler(
    tx: Tx, registry: Registry, state: ScanState, place: Place,
    order: Mapping[str, LedgerPosition],
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        transfers = await bound_rows(tx, state, Transfer, place, rows)
        for t, d, r in await pair_lookups(tx, registry, state, transfers):
            count_transfer(tx, state, t, d, r, order)

    return handle
