"""Paginated scans over key ranges, with their cursor, and the scanning reads of one bank.

Owns: :class:`Segment` and :class:`ScanState` (where a scan stands; it travels in the cursor),
running one page of a scan (:func:`scan_page`), binding scanned rows to their place
(:func:`bound_rows`), and ``list_accounts``, ``get_supply`` and ``get_pending``. The netting
(:mod:`.netting`) and the regulator's audit (:mod:`.conservation`) are built on them.

Must not: write; trust a cursor (it comes from the client and is checked like any input).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from dtoken_wire.enums import Direction, TransferStatus
from dtoken_wire.requests import (
    ListAccountsRequest,
    PendingRequest,
    SupplyRequest,
)

from ..conversion import matches_quote
from ..errors import (
    CorruptState,
    InvalidArgument,
    NotFound,
)
from ..keys import (
    acct_collection,
    decision_key,
    holds_collection,
    lock_key,
    opened_key,
    prefix_range,
    quote_key,
    refund_key,
    transfer_key,
)
from ..placement import (
    MAX_ANOMALY_DETAILS,
    Anomaly,
    Place,
    bind,
    decision_mismatch,
    lock_anomaly,
    unpinned,
)
from ..records import (
    Account,
    Decision,
    Hold,
    Lane,
    LockRecord,
    Opened,
    Outcome,
    Quote,
    Record,
    Refund,
    SupplyRecord,
    Transfer,
    decode,
)
from ..registry import Registry
from ..rules import decision_matches, gate_lock, transfer_status
from ..tallies import Tally
from .access import (
    Tx,
    authorize_read,
    load_registry,
    member_bank,
    target_bank,
)
from .declare import declare
from .steps import account_keys

_R = TypeVar("_R", bound=Record)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Segment:
    """One key range of one collection, and what to do with each entry of it."""

    collection: str
    prefix: str
    handle: Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]
    start: str | None = None  # the first key to read, inside the prefix's range
    end: str | None = None  # the key the range stops before, inside the prefix's range
    #: How much of a page one row takes (``None``: one each). An ``open/`` index row names
    #: all the transfers one transaction opened toward one bank, up to a batch's 500.
    weigh: Callable[[tuple[str, bytes]], int] | None = None


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


async def scan_page(
    tx: Tx, state: ScanState, segments: Sequence[Segment], page_size: int
) -> bool:
    """Run the scan for one page; True when every segment is done."""
    budget = page_size
    while state.segment < len(segments) and budget > 0:
        seg = segments[state.segment]
        start, end = prefix_range(seg.prefix)
        if seg.start is not None:
            start = max(start, seg.start)
        if seg.end is not None:
            end = min(end, seg.end)
        if state.after is not None:
            start = state.after
        # One more than the budget tells whether the segment goes on; one more again when
        # resuming, because the range starts at the last key already counted.
        extra = 1 if state.after is None else 2
        rows = await tx.ledger.scan(seg.collection, start, end, budget + extra)
        if state.after is not None and rows and rows[0][0] == state.after:
            rows = rows[1:]
        chunk: Sequence[tuple[str, bytes]] = rows[:budget]
        used = len(chunk)
        if seg.weigh is not None:
            chunk, used = fitting(chunk, budget, seg.weigh)
        if chunk:
            await seg.handle(chunk)
            budget -= used
        if len(rows) > len(chunk):
            state.after = chunk[-1][0]
            return False
        state.segment += 1
        state.after = None
    return state.segment >= len(segments)


def fitting(
    items: Iterable[_T], budget: int, weight: Callable[[_T], int]
) -> tuple[list[_T], int]:
    """The first ``items`` whose weights fit in ``budget`` (at least one, so a page always
    moves on), and their weight; ``items`` is read no further than the first that does not
    fit. A page of ``get_pending`` weighs an ``open/`` entry by the transfers it names, a page
    of ``get_history`` a record by its events."""
    taken: list[_T] = []
    used = 0
    for item in items:
        w = weight(item)
        if taken and used + w > budget:
            break
        taken.append(item)
        used += w
    return taken, used


def opened_weight(row: tuple[str, bytes]) -> int:
    """How many transfers an ``open/`` index row names (one if it is not an entry: the
    handler then notes it as an anomaly). Read with the records' own decoder, whose cache
    then serves the handler's read of the same bytes."""
    try:
        return len(decode(Opened, row[1]).transfer_ids)
    except CorruptState:
        return 1


def paged(state: ScanState, done: bool, report: Mapping[str, object]) -> dict[str, object]:
    """One page's answer. ``anomaly_records`` describes the first records found so far that
    count for nobody (every one is counted in the report's ``anomalies`` where it has them)."""
    page = {**report, "anomaly_records": list(state.anomalies)}
    if done:
        return {"done": True, "cursor": None, **page}
    return {"done": False, "cursor": state.to_cursor(), **page}


async def bound_rows(
    tx: Tx, state: ScanState, kind: type[_R], place: Place, rows: Sequence[tuple[str, bytes]]
) -> list[_R]:
    """The rows of a scan that are valid records where they live (and pinned, if they must
    be); the others noted."""
    return [record for _key, record in await bound_entries(tx, state, kind, place, rows)]


async def bound_entries(
    tx: Tx, state: ScanState, kind: type[_R], place: Place, rows: Sequence[tuple[str, bytes]]
) -> list[tuple[str, _R]]:
    """:func:`bound_rows`, each with its key."""
    out: list[tuple[str, _R]] = []
    for key, value in rows:
        found = bind(kind, place, key, value)
        if not isinstance(found, Anomaly) and not await tx.ledger.pinned(kind, place, key):
            found = unpinned(place, key)
        if isinstance(found, Anomaly):
            state.note(found)
        else:
            out.append((key, found))
    return out


def valid(state: ScanState, found: _R | Anomaly | None) -> _R | None:
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
        for rec in await bound_rows(tx, state, SupplyRecord, Place.acct(bank.name), rows):
            state.tally.add(("kind", rec.kind.value), rec.amount)
            state.tally.add(("supply",), rec.delta)

    done = await scan_page(tx, state, [Segment(acct_collection(bank.name),
                                           f"sup/{req.currency}", handle)], req.page_size)
    by_kind = {k[1]: v for k, v in state.tally.items() if k[0] == "kind"}
    # a supply record is the bank's own word about itself: a bad one only misstates its own
    # supply, so it is reported here and left out of the sum
    return paged(state, done, {"bank": bank.name, "currency": req.currency,
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
        accounts = [acc for acc in await bound_rows(tx, state, Account, place, rows)
                    if req.currency is None or acc.currency == req.currency]
        holds: Sequence[Hold | None] = [None] * len(accounts)
        if accounts and keys is not None and registry.regulator_msp_id is not None:
            holds = await tx.ledger.get_many(Hold, holds_collection(bank.name),
                                             [keys.hold(a.account_id) for a in accounts])
        for acc, hold in zip(accounts, holds, strict=True):
            balance = acc.balance
            if acc.lanes > 1 and keys is not None:  # the balance lanes' sum (point reads)
                lanes = await tx.ledger.get_many(
                    Lane, acct_collection(bank.name),
                    [keys.lane(acc.account_id, k) for k in range(1, acc.lanes)])
                balance += sum(lane.balance for lane in lanes if lane is not None)
            state.items.append({
                "account_id": acc.account_id, "currency": acc.currency,
                "owner_ref": acc.owner_ref, "status": acc.status.value,
                "balance": balance, "opened_at": acc.opened_at,
                "hold": hold.to_json() if hold else None,
            })

    done = await scan_page(tx, state, [Segment(acct_collection(bank.name), "acct", handle)],
                       req.page_size)
    return paged(state, done, {"bank": bank.name, "accounts": state.items})


async def pair_lookups(
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
            decision = valid(state, d)
            if decision is not None and not decision_matches(t, decision):
                state.note(decision_mismatch(t, back, decision_key(t.transfer_id)))
                decision = None
            refund = valid(state, r)
            if (t.quote_id and decision is not None and decision.outcome is Outcome.ACCEPTED
                    and not matches_quote(t, valid(state, await tx.ledger.get_bound(
                        Quote, back, quote_key(t.quote_id))))):
                # an honest payee's accept refuses a transfer that does not state its quote;
                # one accepted anyway was written and accepted off the quote: both banks' peers
                # (the payer's transfer, the payee's accept). Reported; counted as written.
                state.note(Anomaly(back.collection, decision_key(t.transfer_id),
                                   (t.payer_bank, t.payee_bank), "accept_off_quote"))
            if t.lock:
                lock = valid(state, await tx.ledger.get_bound(
                    LockRecord, Place.lock(payer_info, payee_info, registry.regulator_msp_id),
                    lock_key(t.transfer_id)))
                decision, refund, problems = gate_lock(t, decision, refund, lock)
                for what in problems:
                    state.note(lock_anomaly(t, what))
            found[t.transfer_id] = (decision, refund)
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
    scope = (f"{bank.name}/{req.direction.value}/{req.counterparty or '*'}/{req.since or '*'}"
             f"/{req.until or '*'}")
    state = ScanState.from_cursor("pending", scope, req.cursor)
    incoming = req.direction is Direction.INCOMING
    waiting = ({TransferStatus.PENDING, TransferStatus.EXPIRED} if incoming else
               {TransferStatus.PENDING, TransferStatus.EXPIRED, TransferStatus.REJECTED})

    async def handle(transfers: Sequence[Transfer]) -> None:
        for t, d, r in await pair_lookups(tx, registry, state, transfers):
            status = transfer_status(t, d, r, tx.now)
            if status in waiting:
                state.items.append({"transfer": t.to_json(), "status": status.value})

    def handle_transfers(place: Place) -> Callable[[Sequence[tuple[str, bytes]]],
                                                   Awaitable[None]]:
        async def read(rows: Sequence[tuple[str, bytes]]) -> None:
            await handle(await bound_rows(tx, state, Transfer, place, rows))
        return read

    listed: set[tuple[str, str]] = set()  # the transfers this page's index entries named

    def handle_index(place: Place) -> Callable[[Sequence[tuple[str, bytes]]],
                                               Awaitable[None]]:
        async def read(rows: Sequence[tuple[str, bytes]]) -> None:
            entries = await bound_entries(tx, state, Opened, place, rows)
            named: list[tuple[str, str, str]] = []  # (transfer key, entry's time, its tx id)
            for entry_key, o in entries:
                at = entry_key.split("/")[1]
                for i in o.transfer_ids:
                    if (place.collection, i) in listed:  # a payer's own index, naming one twice
                        state.note(Anomaly(place.collection, transfer_key(i), (place.writer,),
                                           "index_repeats_transfer"))
                    else:
                        listed.add((place.collection, i))
                        named.append((transfer_key(i), at, o.tx_id))
            found = await tx.ledger.get_many_bound(Transfer, place, [k for k, _a, _t in named])
            transfers: list[Transfer] = []
            for (key, at, tx_id), t in zip(named, found, strict=True):
                if t is None:  # the payer's own index names a transfer it does not hold
                    state.note(Anomaly(place.collection, key, (place.writer,),
                                       "index_without_transfer"))
                elif (t := valid(state, t)) is None:
                    continue
                elif (t.tx_id, t.created_at) != (tx_id, at):
                    # only the entry its own transaction wrote counts: a transfer has one, so
                    # no page lists it twice, whatever else the payer's index names
                    state.note(Anomaly(place.collection, key, (place.writer,),
                                       "index_names_other_transaction"))
                else:
                    transfers.append(t)
            await handle(transfers)
        return read

    segments = []
    for o in others:
        place = Place.between(o, bank) if incoming else Place.between(bank, o)
        if req.since is None:
            segments.append(Segment(place.collection, "xfer", handle_transfers(place)))
        else:
            segments.append(Segment(
                place.collection, "open", handle_index(place), start=opened_key(req.since, ""),
                # ``until`` included: the range ends after every key of that moment
                end=None if req.until is None else prefix_range(
                    opened_key(req.until, "").rstrip("/"))[1],
                weigh=opened_weight))
    done = await scan_page(tx, state, segments, req.page_size)
    return paged(state, done, {"bank": bank.name, "direction": req.direction.value,
                                "transfers": state.items})
