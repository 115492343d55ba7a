"""Paginated scans over key ranges, with their cursor.

Owns: :class:`Segment` and :class:`ScanState` (where a scan stands; it travels in the cursor),
running one page of a scan, and the scanning reads: ``list_accounts``, ``get_supply``,
``get_pending``, ``get_obligations`` and the regulator's ``audit``.

Must not: write; trust a cursor (it comes from the client and is checked like any input).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from dtoken_wire.enums import Direction, TransferStatus
from dtoken_wire.requests import (
    AuditRequest,
    LedgerPosition,
    ListAccountsRequest,
    ObligationsRequest,
    PendingRequest,
    SupplyRequest,
)

from ..errors import (
    InvalidArgument,
    NotAuthorized,
    NotFound,
    WrongEndorser,
)
from ..keys import (
    acct_collection,
    decision_key,
    holds_collection,
    opened_key,
    pair_collection,
    prefix_range,
    refund_key,
    transfer_key,
)
from ..placement import (
    MAX_ANOMALY_DETAILS,
    Anomaly,
    Place,
    bind,
    decision_mismatch,
    missing_transfer,
    unpinned,
)
from ..records import (
    Account,
    Cap,
    Decision,
    Hold,
    Opened,
    Outcome,
    Record,
    Refund,
    Settlement,
    SupplyRecord,
    Transfer,
)
from ..registry import BankInfo, Registry
from ..rules import Effect, decision_matches, transfer_status
from ..tallies import Tally, audit_report, obligations_report, tally_transfer
from .access import (
    ROLE_AUDITOR,
    Tx,
    authorize_read,
    load_registry,
    member_bank,
    other_bank,
    target_bank,
)
from .declare import declare
from .steps import account_keys

_R = TypeVar("_R", bound=Record)


@dataclass(frozen=True)
class Segment:
    """One key range of one collection, and what to do with each entry of it."""

    collection: str
    prefix: str
    handle: Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]
    start: str | None = None  # the first key to read, inside the prefix's range


@dataclass
class ScanState:
    """Where a paginated scan stands; travels in the cursor between pages."""

    kind: str
    scope: str
    segment: int = 0
    after: str | None = None
    tally: Tally = field(default_factory=Tally)
    disputes: list[dict[str, object]] = field(default_factory=list)  # carried in the cursor
    anomalies: list[dict[str, object]] = field(default_factory=list)  # the first ones, ditto
    items: list[dict[str, object]] = field(default_factory=list)  # this page's results

    def to_cursor(self) -> dict[str, object]:
        return {"kind": self.kind, "scope": self.scope, "segment": self.segment,
                "after": self.after, "tally": self.tally.to_json(),
                "disputes": list(self.disputes), "anomalies": list(self.anomalies)}

    def note(self, anomaly: Anomaly) -> None:
        """Count a record that counts for nobody; describe the first ones."""
        self.tally.add(anomaly.tally_key(), 1)
        if len(self.anomalies) < MAX_ANOMALY_DETAILS:
            self.anomalies.append(anomaly.to_json())

    @classmethod
    def from_cursor(cls, kind: str, scope: str, cursor: Mapping[str, object] | None) -> ScanState:
        if cursor is None:
            return cls(kind, scope)
        if cursor.get("kind") != kind or cursor.get("scope") != scope:
            raise InvalidArgument("request.cursor belongs to another query")
        segment, after, tally = cursor.get("segment"), cursor.get("after"), cursor.get("tally")
        disputes = cursor.get("disputes", [])
        if not isinstance(disputes, list) or not all(isinstance(d, dict) for d in disputes):
            raise InvalidArgument("request.cursor.disputes is malformed")
        anomalies = cursor.get("anomalies", [])
        if (not isinstance(anomalies, list) or len(anomalies) > MAX_ANOMALY_DETAILS
                or not all(isinstance(d, dict) for d in anomalies)):
            raise InvalidArgument("request.cursor.anomalies is malformed")
        if type(segment) is not int or segment < 0:
            raise InvalidArgument("request.cursor.segment is malformed")
        if after is not None and not isinstance(after, str):
            raise InvalidArgument("request.cursor.after is malformed")
        if not isinstance(tally, dict):
            raise InvalidArgument("request.cursor.tally is malformed")
        return cls(kind, scope, segment, after, Tally.from_json(tally), list(disputes),
                   list(anomalies))


async def _scan(
    tx: Tx, state: ScanState, segments: Sequence[Segment], page_size: int
) -> bool:
    """Run the scan for one page; True when every segment is done."""
    budget = page_size
    while state.segment < len(segments) and budget > 0:
        seg = segments[state.segment]
        start, end = prefix_range(seg.prefix)
        if seg.start is not None:
            start = max(start, seg.start)
        if state.after is not None:
            start = state.after
        # One more than the budget tells whether the segment goes on; one more again when
        # resuming, because the range starts at the last key already counted.
        extra = 1 if state.after is None else 2
        rows = await tx.ledger.scan(seg.collection, start, end, budget + extra)
        if state.after is not None and rows and rows[0][0] == state.after:
            rows = rows[1:]
        chunk = rows[:budget]
        if chunk:
            await seg.handle(chunk)
            budget -= len(chunk)
        if len(rows) > len(chunk):
            state.after = chunk[-1][0]
            return False
        state.segment += 1
        state.after = None
    return state.segment >= len(segments)


def _paged(state: ScanState, done: bool, report: Mapping[str, object]) -> dict[str, object]:
    """One page's answer. ``anomaly_records`` describes the first records found so far that
    count for nobody (every one is counted in the report's ``anomalies`` where it has them)."""
    page = {**report, "anomaly_records": list(state.anomalies)}
    if done:
        return {"done": True, "cursor": None, **page}
    return {"done": False, "cursor": state.to_cursor(), **page}


async def _bound(
    tx: Tx, state: ScanState, kind: type[_R], place: Place, rows: Sequence[tuple[str, bytes]]
) -> list[_R]:
    """The rows of a scan that are valid records where they live (and pinned, if they must
    be); the others noted."""
    out: list[_R] = []
    for key, value in rows:
        found = bind(kind, place, key, value)
        if not isinstance(found, Anomaly) and not await tx.ledger.pinned(kind, place, key):
            found = unpinned(place, key)
        if isinstance(found, Anomaly):
            state.note(found)
        else:
            out.append(found)
    return out


def _valid(state: ScanState, found: _R | Anomaly | None) -> _R | None:
    """A point read's record, or ``None`` (noting it) when it counts for nobody."""
    if isinstance(found, Anomaly):
        state.note(found)
        return None
    return found


@declare(evaluate=True)
async def get_supply(tx: Tx, req: SupplyRequest) -> dict[str, object]:
    """A token's supply: the sum of the issuing bank's supply records (paginated)."""
    registry = await load_registry(tx)
    bank = target_bank(tx, registry, req.bank)
    authorize_read(tx, registry, [bank])
    if not registry.issues(bank.name, req.currency):
        raise NotFound("the bank issues no token in request.currency")
    state = ScanState.from_cursor("supply", f"{bank.name}/{req.currency}", req.cursor)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for rec in await _bound(tx, state, SupplyRecord, Place.acct(bank.name), rows):
            state.tally.add(("kind", rec.kind.value), rec.amount)
            state.tally.add(("supply",), rec.delta)

    done = await _scan(tx, state, [Segment(acct_collection(bank.name),
                                           f"sup/{req.currency}", handle)], req.page_size)
    by_kind = {k[1]: v for k, v in state.tally.items() if k[0] == "kind"}
    # a supply record is the bank's own word about itself: a bad one only misstates its own
    # supply, so it is reported here and left out of the sum
    return _paged(state, done, {"bank": bank.name, "currency": req.currency,
                                "supply": state.tally.get("supply"), "by_kind": by_kind})


@declare(evaluate=True, optional_request=True)
async def list_accounts(tx: Tx, req: ListAccountsRequest) -> dict[str, object]:
    """A bank's accounts (id, currency, owner reference, status, balance, the regulator's
    hold), paginated.

    The bank's own clients (any role) or the regulator's auditor naming the bank; both their
    peers are members of the bank's holds collection.
    """
    registry = await load_registry(tx)
    bank = target_bank(tx, registry, req.bank)
    authorize_read(tx, registry, [bank])
    scope = f"{bank.name}/{req.currency or '*'}"
    state = ScanState.from_cursor("accounts", scope, req.cursor)

    keys = await account_keys(tx, bank)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        place = Place.acct(bank.name, keys)
        accounts = [acc for acc in await _bound(tx, state, Account, place, rows)
                    if req.currency is None or acc.currency == req.currency]
        holds: Sequence[Hold | None] = [None] * len(accounts)
        if accounts and keys is not None and registry.regulator_msp_id is not None:
            holds = await tx.ledger.get_many(Hold, holds_collection(bank.name),
                                             [keys.hold(a.account_id) for a in accounts])
        for acc, hold in zip(accounts, holds, strict=True):
            state.items.append({
                "account_id": acc.account_id, "currency": acc.currency,
                "owner_ref": acc.owner_ref, "status": acc.status.value,
                "balance": acc.balance, "opened_at": acc.opened_at,
                "hold": hold.to_json() if hold else None,
            })

    done = await _scan(tx, state, [Segment(acct_collection(bank.name), "acct", handle)],
                       req.page_size)
    return _paged(state, done, {"bank": bank.name, "accounts": state.items})


async def _pair_lookups(
    tx: Tx, registry: Registry, state: ScanState, transfers: Sequence[Transfer]
) -> list[tuple[Transfer, Decision | None, Refund | None]]:
    """Decision and refund of each transfer, batched by collection, each bound to its place
    (one that counts for nobody is noted and read as absent)."""
    by_pair: dict[tuple[str, str], list[Transfer]] = {}
    for t in transfers:
        by_pair.setdefault((t.payer_bank, t.payee_bank), []).append(t)
    found: dict[str, tuple[Decision | None, Refund | None]] = {}
    for (payer, payee), group in by_pair.items():
        payer_info = member_bank(registry, payer, "payer_bank")
        payee_info = member_bank(registry, payee, "payee_bank")
        back, there = Place.between(payee_info, payer_info), Place.between(payer_info, payee_info)
        decisions = await tx.ledger.get_many_bound(
            Decision, back, [decision_key(t.transfer_id) for t in group])
        refunds = await tx.ledger.get_many_bound(
            Refund, there, [refund_key(t.transfer_id) for t in group])
        for t, d, r in zip(group, decisions, refunds, strict=True):
            decision = _valid(state, d)
            if decision is not None and not decision_matches(t, decision):
                state.note(decision_mismatch(t, back, decision_key(t.transfer_id)))
                decision = None
            found[t.transfer_id] = (decision, _valid(state, r))
    return [(t, *found[t.transfer_id]) for t in transfers]


@declare(evaluate=True)
async def get_pending(tx: Tx, req: PendingRequest) -> dict[str, object]:
    """Transfers waiting on a bank: incoming undecided ones, or outgoing ones not yet final
    (undecided, expired, or rejected and not refunded). Paginated.

    Without ``since`` every transfer of the pairs is read; with it, only those created at or
    after ``since``, found through the ``open/`` index (a transfer written before the index
    existed is found by a scan without ``since`` only).
    """
    registry = await load_registry(tx)
    bank = target_bank(tx, registry, req.bank)
    others = [b for b in registry.banks if b.name != bank.name
              and (req.counterparty is None or b.name == req.counterparty)]
    if req.counterparty is not None and not others:
        raise NotFound("request.counterparty is not another member bank")
    for other in others:
        authorize_read(tx, registry, [bank, other])
    scope = f"{bank.name}/{req.direction.value}/{req.counterparty or '*'}/{req.since or '*'}"
    state = ScanState.from_cursor("pending", scope, req.cursor)
    incoming = req.direction is Direction.INCOMING
    waiting = ({TransferStatus.PENDING, TransferStatus.EXPIRED} if incoming else
               {TransferStatus.PENDING, TransferStatus.EXPIRED, TransferStatus.REJECTED})

    async def handle(transfers: Sequence[Transfer]) -> None:
        for t, d, r in await _pair_lookups(tx, registry, state, transfers):
            status = transfer_status(t, d, r, tx.now)
            if status in waiting:
                state.items.append({"transfer": t.to_json(), "status": status.value})

    def handle_transfers(place: Place) -> Callable[[Sequence[tuple[str, bytes]]],
                                                   Awaitable[None]]:
        async def read(rows: Sequence[tuple[str, bytes]]) -> None:
            await handle(await _bound(tx, state, Transfer, place, rows))
        return read

    def handle_index(place: Place) -> Callable[[Sequence[tuple[str, bytes]]],
                                               Awaitable[None]]:
        async def read(rows: Sequence[tuple[str, bytes]]) -> None:
            entries = await _bound(tx, state, Opened, place, rows)
            keys = [transfer_key(o.transfer_id) for o in entries]
            found = await tx.ledger.get_many_bound(Transfer, place, keys)
            transfers: list[Transfer] = []
            for key, t in zip(keys, found, strict=True):
                if t is None:  # the payer's own index names a transfer it does not hold
                    state.note(Anomaly(place.collection, key, (place.writer,),
                                       "index_without_transfer"))
                elif (t := _valid(state, t)) is not None:
                    transfers.append(t)
            await handle(transfers)
        return read

    segments = []
    for o in others:
        place = Place.between(o, bank) if incoming else Place.between(bank, o)
        if req.since is None:
            segments.append(Segment(place.collection, "xfer", handle_transfers(place)))
        else:
            segments.append(Segment(place.collection, "open", handle_index(place),
                                    start=opened_key(req.since, "")))
    done = await _scan(tx, state, segments, req.page_size)
    return _paged(state, done, {"bank": bank.name, "direction": req.direction.value,
                                "transfers": state.items})


def _count(
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
                                _settlements_handler(tx, state,
                                                     Place.between(creditor, debtor))))
        segments.append(_caps_segment(tx, state, creditor, debtor))
    done = await _scan(tx, state, segments, req.page_size)
    report = obligations_report(state.tally, a.name, b.name) if done else {}
    return _paged(state, done, {**report, "disputes": state.disputes})


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
        decisions = await _bound(tx, state, Decision, back, rows)
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
            transfer = _valid(state, t)
            if transfer is None:
                continue
            if not decision_matches(transfer, d):
                state.note(decision_mismatch(transfer, back, key))
                continue
            _count(tx, state, transfer, d, _valid(state, r), order)

    return handle


def _settlements_handler(
    tx: Tx, state: ScanState, place: Place
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    """Settlement confirmations: only from ``pair-<creditor>-<debtor>``, counted for those
    two banks whatever the record's own fields would say (they must agree, or it is noted)."""
    assert place.counterparty is not None
    creditor, debtor = place.writer, place.counterparty

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for s in await _bound(tx, state, Settlement, place, rows):
            state.tally.add(("settled", debtor, creditor, s.currency), s.amount)

    return handle


def _caps_segment(tx: Tx, state: ScanState, creditor: BankInfo, debtor: BankInfo) -> Segment:
    """The creditor's exposure caps on the debtor: only from ``pair-<creditor>-<debtor>``
    (a "cap" the debtor writes in its own collection is its cap on the creditor, and one
    naming other parties is noted). Keys sort by sequence number, so the last valid record
    of a currency read is the cap in force. Not pinned (the creditor's own limit)."""
    place = Place.pair(creditor.name, debtor.name)

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for cap in await _bound(tx, state, Cap, place, rows):
            state.tally.put(("cap", debtor.name, creditor.name, cap.currency), cap.cap)

    return Segment(place.collection, "cap", handle)


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
                                    _settlements_handler(tx, state, place)))
            segments.append(_caps_segment(tx, state, p, q))
    writers = {acct_collection(b.name): b.name for b in registry.banks}
    writers.update({pair_collection(p.name, q.name): p.name
                    for p in registry.banks for q in registry.banks if p.name != q.name})
    segments = [_hash_checked(tx, state, seg, writers[seg.collection]) for seg in segments]
    done = await _scan(tx, state, segments, req.page_size)
    report = audit_report(state.tally, registry.bank_names()) if done else {}
    return _paged(state, done, {**report, "disputes": state.disputes})


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
        for d in await _bound(tx, state, Decision, place, orphans):
            state.note(missing_transfer(place, decision_key(d.transfer_id)))

    return handle


def _accounts_handler(tx: Tx, state: ScanState, place: Place) -> Callable[
        [Sequence[tuple[str, bytes]]], Awaitable[None]]:
    """Balances per bank and currency; and each account's balance against the regulator's
    hold on it: a balance below the hold's floor (``Hold.floor``) means the bank's server paid
    out what the regulator held (it skipped the hold read), which the state shows and the
    audit names.
    (A debit of a fully frozen account leaves no such trace: only the block monitor sees it.)
    """
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        accounts = await _bound(tx, state, Account, place, rows)
        for acc in accounts:
            state.tally.add(("balance", place.writer, acc.currency), acc.balance)
            state.tally.add(("accounts", place.writer, acc.currency), 1)
        if not accounts or place.accounts is None:
            return
        keys = [place.accounts.hold(a.account_id) for a in accounts]
        holds = await tx.ledger.get_many(Hold, holds_collection(place.writer), keys)
        for acc, hold in zip(accounts, holds, strict=True):
            if hold is not None and acc.balance < hold.floor:
                state.note(Anomaly(place.collection, place.accounts.account(acc.account_id),
                                   (place.writer,), "held_amount_paid_out"))

    return handle


def _supply_handler(tx: Tx, state: ScanState, place: Place) -> Callable[
        [Sequence[tuple[str, bytes]]], Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for rec in await _bound(tx, state, SupplyRecord, place, rows):
            state.tally.add(("supply", place.writer, rec.currency, rec.kind.value,
                             rec.counterparty or "-"), rec.amount)

    return handle


def _transfers_handler(
    tx: Tx, registry: Registry, state: ScanState, place: Place,
    order: Mapping[str, LedgerPosition],
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        transfers = await _bound(tx, state, Transfer, place, rows)
        for t, d, r in await _pair_lookups(tx, registry, state, transfers):
            _count(tx, state, t, d, r, order)

    return handle
