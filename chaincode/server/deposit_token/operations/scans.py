"""Paginated scans over key ranges, with their cursor.

Owns: :class:`Segment` and :class:`ScanState` (where a scan stands; it travels in the cursor),
running one page of a scan, and the scanning reads: ``list_accounts``, ``get_supply``,
``get_pending``, ``get_obligations`` and the regulator's ``audit``.

Must not: write; trust a cursor (it comes from the client and is checked like any input).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
    CorruptState,
    InvalidArgument,
    NotAuthorized,
    NotFound,
    WrongEndorser,
)
from ..keys import (
    acct_collection,
    decision_key,
    hold_key,
    holds_collection,
    opened_key,
    pair_collection,
    prefix_range,
    refund_key,
    transfer_key,
)
from ..records import (
    Account,
    Decision,
    Hold,
    Opened,
    Outcome,
    Refund,
    Settlement,
    SupplyRecord,
    Transfer,
    decode,
)
from ..registry import BankInfo
from ..rules import Effect, transfer_status
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
    items: list[dict[str, object]] = field(default_factory=list)  # this page's results

    def to_cursor(self) -> dict[str, object]:
        return {"kind": self.kind, "scope": self.scope, "segment": self.segment,
                "after": self.after, "tally": self.tally.to_json(),
                "disputes": list(self.disputes)}

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
        if type(segment) is not int or segment < 0:
            raise InvalidArgument("request.cursor.segment is malformed")
        if after is not None and not isinstance(after, str):
            raise InvalidArgument("request.cursor.after is malformed")
        if not isinstance(tally, dict):
            raise InvalidArgument("request.cursor.tally is malformed")
        return cls(kind, scope, segment, after, Tally.from_json(tally), list(disputes))


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
    if done:
        return {"done": True, "cursor": None, **report}
    return {"done": False, "cursor": state.to_cursor(), **report}


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
        for _, value in rows:
            rec = decode(SupplyRecord, value)
            state.tally.add(("kind", rec.kind.value), rec.amount)
            state.tally.add(("supply",), rec.delta)

    done = await _scan(tx, state, [Segment(acct_collection(bank.name),
                                           f"sup/{req.currency}", handle)], req.page_size)
    by_kind = {k[1]: v for k, v in state.tally.items() if k[0] == "kind"}
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

    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        accounts = [acc for acc in (decode(Account, value) for _, value in rows)
                    if req.currency is None or acc.currency == req.currency]
        holds: Sequence[Hold | None] = [None] * len(accounts)
        if accounts and registry.regulator_msp_id is not None:
            holds = await tx.ledger.get_many(Hold, holds_collection(bank.name),
                                             [hold_key(a.account_id) for a in accounts])
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
    tx: Tx, transfers: Sequence[Transfer]
) -> list[tuple[Transfer, Decision | None, Refund | None]]:
    """Decision and refund of each transfer, batched by collection."""
    out: list[tuple[Transfer, Decision | None, Refund | None]] = []
    by_pair: dict[tuple[str, str], list[Transfer]] = {}
    for t in transfers:
        by_pair.setdefault((t.payer_bank, t.payee_bank), []).append(t)
    found: dict[str, tuple[Decision | None, Refund | None]] = {}
    for (payer, payee), group in by_pair.items():
        decisions = await tx.ledger.get_many(
            Decision, pair_collection(payee, payer), [decision_key(t.transfer_id) for t in group])
        refunds = await tx.ledger.get_many(
            Refund, pair_collection(payer, payee), [refund_key(t.transfer_id) for t in group])
        for t, d, r in zip(group, decisions, refunds, strict=True):
            found[t.transfer_id] = (d, r)
    for t in transfers:
        d, r = found[t.transfer_id]
        out.append((t, d, r))
    return out


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
        for t, d, r in await _pair_lookups(tx, transfers):
            status = transfer_status(t, d, r, tx.now)
            if status in waiting:
                state.items.append({"transfer": t.to_json(), "status": status.value})

    async def handle_transfers(rows: Sequence[tuple[str, bytes]]) -> None:
        await handle([decode(Transfer, value) for _, value in rows])

    def handle_index(collection: str) -> Callable[[Sequence[tuple[str, bytes]]],
                                                  Awaitable[None]]:
        async def read(rows: Sequence[tuple[str, bytes]]) -> None:
            ids = [decode(Opened, value).transfer_id for _, value in rows]
            found = await tx.ledger.get_many(Transfer, collection,
                                             [transfer_key(i) for i in ids])
            if any(t is None for t in found):
                raise CorruptState("an index entry names a transfer that does not exist")
            await handle([t for t in found if t is not None])
        return read

    segments = []
    for o in others:
        coll = (pair_collection(o.name, bank.name) if incoming
                else pair_collection(bank.name, o.name))
        if req.since is None:
            segments.append(Segment(coll, "xfer", handle_transfers))
        else:
            segments.append(Segment(coll, "open", handle_index(coll),
                                    start=opened_key(req.since, "")))
    done = await _scan(tx, state, segments, req.page_size)
    return _paged(state, done, {"bank": bank.name, "direction": req.direction.value,
                                "transfers": state.items})


def _note_dispute(state: ScanState, t: Transfer, d: Decision | None, r: Refund | None) -> None:
    state.disputes.append({"transfer_id": t.transfer_id, "payer_bank": t.payer_bank,
                        "payee_bank": t.payee_bank, "currency": t.currency,
                        "amount": t.amount, "accept_tx_id": d.tx_id if d else None,
                        "refund_tx_id": r.tx_id if r else None})


@declare(evaluate=True)
async def get_obligations(tx: Tx, req: ObligationsRequest) -> dict[str, object]:
    """What two banks owe each other per currency: accepted less settled, read-only from the
    directional collections (paginated). A transfer both accepted and refunded counts by
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
                                _settlements_handler(state)))
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
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        decisions = [decode(Decision, value) for _, value in rows]
        accepted = [d for d in decisions if d.outcome is Outcome.ACCEPTED]
        there = pair_collection(debtor.name, creditor.name)
        ids = [d.transfer_id for d in accepted]
        transfers = await tx.ledger.get_many(Transfer, there, [transfer_key(i) for i in ids])
        refunds = await tx.ledger.get_many(Refund, there, [refund_key(i) for i in ids])
        for d, t, r in zip(accepted, transfers, refunds, strict=True):
            if t is None:
                state.tally.add(("anomaly", debtor.name, creditor.name,
                                 "accept_without_transfer"), 1)
                continue
            if tally_transfer(state.tally, t, d, r, order) is Effect.DISPUTED:
                _note_dispute(state, t, d, r)

    return handle


def _settlements_handler(
    state: ScanState,
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for _, value in rows:
            s = decode(Settlement, value)
            state.tally.add(("settled", s.debtor_bank, s.creditor_bank, s.currency), s.amount)

    return handle


@declare(evaluate=True, optional_request=True)
async def audit(tx: Tx, req: AuditRequest) -> dict[str, object]:
    """The regulator's audit over every bank's and every pair's collections (paginated):
    balances against supply records, supply records against transfers, accepts and refunds,
    conservation per currency, obligations per pair (DESIGN §5, §7)."""
    registry = await load_registry(tx)
    if not registry.is_regulator(tx.caller.msp_id) or ROLE_AUDITOR not in tx.caller.roles:
        raise NotAuthorized("only the regulator's auditor runs the audit")
    if tx.server_msp != registry.regulator_msp_id:
        raise WrongEndorser("the audit runs on the regulator's peer")
    state = ScanState.from_cursor("audit", "all", req.cursor)
    segments: list[Segment] = []
    for bank in registry.banks:
        segments.append(Segment(acct_collection(bank.name), "acct", _accounts_handler(state)))
        segments.append(Segment(acct_collection(bank.name), "sup",
                                _supply_handler(state, bank.name)))
    for p in registry.banks:
        for q in registry.banks:
            if p.name == q.name:
                continue
            segments.append(Segment(pair_collection(p.name, q.name), "xfer",
                                    _transfers_handler(tx, state, req.ledger_order)))
            segments.append(Segment(pair_collection(p.name, q.name), "settle",
                                    _settlements_handler(state)))
    done = await _scan(tx, state, segments, req.page_size)
    report = audit_report(state.tally, registry.bank_names()) if done else {}
    return _paged(state, done, {**report, "disputes": state.disputes})


def _accounts_handler(state: ScanState) -> Callable[[Sequence[tuple[str, bytes]]],
                                                    Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for _, value in rows:
            acc = decode(Account, value)
            state.tally.add(("balance", acc.bank, acc.currency), acc.balance)
            state.tally.add(("accounts", acc.bank, acc.currency), 1)

    return handle


def _supply_handler(state: ScanState, bank: str) -> Callable[[Sequence[tuple[str, bytes]]],
                                                              Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        for _, value in rows:
            rec = decode(SupplyRecord, value)
            state.tally.add(("supply", bank, rec.currency, rec.kind.value,
                             rec.counterparty or "-"), rec.amount)

    return handle


def _transfers_handler(
    tx: Tx, state: ScanState, order: Mapping[str, LedgerPosition]
) -> Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]:
    async def handle(rows: Sequence[tuple[str, bytes]]) -> None:
        transfers = [decode(Transfer, value) for _, value in rows]
        for t, d, r in await _pair_lookups(tx, transfers):
            if tally_transfer(state.tally, t, d, r, order) is Effect.DISPUTED:
                _note_dispute(state, t, d, r)

    return handle
