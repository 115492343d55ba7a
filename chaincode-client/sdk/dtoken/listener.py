"""Payments in the background: the incoming listener and the outgoing sweeper.

:class:`IncomingListener` decides the transfers other banks send to this bank, so a cross-bank
payment completes without a person: for each undecided transfer it checks the payee account
(it exists, is active, is in the currency the transfer credits), asks the bank's rule, then
accepts or rejects. A converted transfer (paid with this bank's FX quote) is accepted like any
other: the contract applies the quote at accept (the payee is credited the quote's amount in
this bank's currency); one whose quote the contract refuses (altered, expired, used) is
rejected, so that its payer bank refunds at once. :class:`Sweeper` refunds this bank's
outgoing transfers that were rejected, or that expired undecided.

How nothing is missed and nothing decided twice:

* **The ledger is the truth, events are the trigger.** Events say only that something waits
  for a bank (``TransferPending {"payee_banks": [...]}``; no id, by design: an id in a block
  would let every member follow the transfer's key hashes). On each batch of events the
  listener reads the bank's pending incoming transfers from its own peer and decides each.
  The events come from :func:`dtoken.event_source.member_events`: the ``dtoken`` chaincode's
  events on the single namespace, every organization's namespace (one block stream) under
  the namespace layout, where a payer's event is in the payer's namespace. An event, even a
  forged one in a dishonest bank's own namespace, only makes the listener read again.
  It does so too when it starts, after a reconnect, and every ``rescan_interval`` seconds (a
  transfer whose private data reached the peer late, by reconciliation, is found then): due
  by the clock, however many events of other banks keep arriving. A pass that left a failure
  (a timeout, a peer fault) is retried after ``retry_delay`` seconds, doubling while the
  failures go on, up to ``rescan_interval``.
* **The checkpoint** (a :class:`fabgateway.FileCheckpointer`, by default
  ``<state>/listeners/<bank>.json``) is written after the batch it covers was processed (its
  pass and every earlier one), so a listener killed at any point resumes at the first event
  it had not finished; an event asking only for a window pass is checkpointed at once (that
  pass, and every (re)start's full pass, reads what it announced).
* **Passes read a window, not the whole history.** A pass asks only for the transfers created
  since a mark (:class:`PendingWindow`): the oldest transfer still open after the last pass,
  or that pass's start less a look-back. Full passes, at every (re)start and every
  ``full_interval``, catch what a window could miss (a transfer timestamped long before it
  was committed). So a pass costs what is recent, not every transfer the pair ever made.
* **Reading beside deciding.** An event's pass reads its transactions' transfers while the
  previous pass's decision commits, then decides after it: passes decide one at a time (two
  decisions crediting one payee balance key in flight would invalidate each other, and a
  pass's exposure budget must see what the last one accepted), and a transfer that a pass
  read before another pass's decision of it committed is not sent again; the sweeper's
  refunds take the same turn. The rescan runs beside the events' passes: under load it reads
  minutes of transfers, which took seconds during which no event was served (the marketplace
  benchmark's p99 came from it).
* **Exposure caps are kept.** Before accepting, a pass reads, once per payer bank, the
  headroom this bank's cap on that bank leaves (a read-only obligations query) and counts
  down what the pass accepts; a transfer that would exceed it is left pending (``held``, the
  reason says so and is logged), and accepted by a later pass once the payer bank's
  settlement is confirmed or the cap raised.
* **Decisions are idempotent.** An accept's reference is derived from the transfer
  (``<payer bank>/<transfer id>``), so a restarted listener that accepts again sends the very
  same transaction id, which Fabric executes at most once; and the contract refuses a second
  decision on a transfer anyway (``INVALID_STATE``), which the listener counts as done.

One file of ~900 lines on purpose: the listener's passes, its batch path, the exposure
budget of one pass and the sweeper share the same view of pending transfers and the same
rules about what is decided once; the seam for a split is the batch path (decisions in bulk)
with the exposure budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fabgateway
from dtoken_wire.events import EVENT_DECIDED, EVENT_PENDING

from dtoken.bank import Bank
from dtoken.errors import (
    AccountClosed,
    AccountFrozen,
    ContractError,
    CurrencyMismatch,
    DTokenError,
    Expired,
    InvalidArgument,
    InvalidState,
    NetworkFault,
    NotExpired,
    NotFound,
)
from dtoken.event_source import STREAM_ERRORS, member_events
from dtoken.models import Account, AccountStatus, Transfer, TransferStatus, parse_timestamp
from dtoken.money import Money
from dtoken.profile import Profile
from dtoken.submitter import Receipt

__all__ = [
    "EVENT_DECIDED",
    "EVENT_PENDING",
    "Handled",
    "IncomingListener",
    "PendingWindow",
    "Rule",
    "Sweeper",
    "Verdict",
    "accept_all",
    "default_checkpoint_path",
]

_log = logging.getLogger(__name__)

_BATCH_WINDOW = 0.05
_MAX_BATCH = 500
_PIPELINE = 2
"""Event passes running at once: one deciding, the next reading its transfers meanwhile."""
_SPAN = timedelta(seconds=2)
"""Event times at most this far apart are read as one range (one ``get_pending``)."""
_MAX_SPANS = 8
"""More ranges than this in one batch of events: read the window once instead (a dishonest
bank can put any time in its own events; an honest batch has a few)."""
_REMEMBERED = 65_536
"""Transfers this listener decided that it remembers, so that a pass which read them before
the decision committed does not send them again (the contract would refuse: skipped)."""


@dataclass(frozen=True)
class Verdict:
    """A rule's answer: accept, or reject with a reason (kept private to the two banks)."""

    accept: bool
    reason: str = ""

    @classmethod
    def accepted(cls) -> Verdict:
        return cls(True)

    @classmethod
    def rejected(cls, reason: str) -> Verdict:
        return cls(False, reason)


Rule = Callable[[Transfer], "Verdict | Awaitable[Verdict]"]
"""The bank's rule for an incoming transfer (sync or async). Alone, a transfer is put to it
after its payee account's checks; in a batch, before them (the contract checks the account of
each accept, and a transfer it refuses is decided alone, its account checked then)."""


def accept_all(transfer: Transfer) -> Verdict:
    """The default rule: accept every transfer whose payee account can take it."""
    return Verdict.accepted()


@dataclass(frozen=True)
class Handled:
    """What the listener or the sweeper did with one transfer.

    ``action`` is ``accepted``, ``rejected``, ``refunded``, ``skipped`` (nothing to do: decided
    or refunded already, expired), ``held`` (left pending: accepting would exceed this bank's
    exposure cap on the payer bank; ``reason`` says so) or ``failed`` (left for the next
    pass; ``error`` says why).
    """

    transfer: Transfer
    action: str
    reason: str = ""
    receipt: Receipt | None = None
    error: DTokenError | None = None


def _expires_after(transfer: Transfer, moment: datetime) -> bool:
    """Whether ``transfer`` expires after ``moment`` (an unreadable expiry: no)."""
    try:
        return parse_timestamp(transfer.expires_at) > moment
    except ValueError:
        return False


def _spans(times: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """``times`` as ranges to read: each range starts at a time and takes the later times
    within ``_SPAN`` of its start (never one range across a minute of other transfers)."""
    spans: list[tuple[datetime, datetime]] = []
    for t in sorted(times):
        if spans and t - spans[-1][0] <= _SPAN:
            spans[-1] = (spans[-1][0], t)
        else:
            spans.append((t, t))
    return spans


class PendingWindow:
    """Which transfers a pass must read: all of them, or those created since a mark.

    :meth:`since` is ``None`` (a full pass) before the first pass, after :meth:`reset` and
    once ``full_interval`` seconds have passed since the last full pass; otherwise it is the
    mark. :meth:`passed` moves the mark to the older of the creation time of the oldest
    transfer still open after the pass and the pass's start less ``lookback`` (a transfer
    reaches the peer a little after its timestamp; more than ``lookback`` later, only the
    next full pass finds it).

    ``lookback`` is 60 s: a transaction commits seconds after its timestamp, even through a
    burst, and the events' passes read each transaction's transfers anyway; what the window
    is for is private data that reached this peer late. Every rescan (each
    ``rescan_interval``) reads ``rescan_interval + lookback`` seconds of transfers, decided or
    not: with 300 s, under 100 payments/s per payee bank, that was 33,000 transfers every
    30 s, 3-9 s of this bank's chaincode server and peer (docs/benchmarks.md).
    """

    def __init__(
        self,
        *,
        lookback: float = 60.0,
        full_interval: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._lookback = timedelta(seconds=lookback)
        self._full_interval = full_interval
        self._clock = clock
        self._wall = wall
        self._mark: datetime | None = None
        self._last_full: float | None = None

    @property
    def lookback(self) -> timedelta:
        """How far before a pass's start the next pass reads again."""
        return self._lookback

    def reset(self) -> None:
        """Make the next pass a full one."""
        self._mark = None
        self._last_full = None

    def since(self) -> datetime | None:
        """The mark for the next pass, or ``None`` for a full pass."""
        if self._mark is None or self._last_full is None:
            return None
        if self._clock() - self._last_full >= self._full_interval:
            return None
        return self._mark

    def start(self) -> tuple[datetime | None, datetime]:
        """Begin a pass: its ``since`` and its start time (give both to :meth:`passed`)."""
        return self.since(), self._wall()

    def passed(
        self, since: datetime | None, started: datetime, still_open: Iterable[Transfer]
    ) -> None:
        """Record a pass that read from ``since`` and left ``still_open`` open."""
        if since is None:
            self._last_full = self._clock()
        try:
            created = [parse_timestamp(t.created_at) for t in still_open]
        except ValueError:  # not the contract's format: no safe mark, read everything next
            self.reset()
            return
        self._mark = min([started - self._lookback, *created])


def default_checkpoint_path(profile: Profile) -> Path:
    """``<state>/listeners/<org>.json``."""
    return profile.state_dir / "listeners" / f"{profile.org}.json"


class Sweeper:
    """Refunds this bank's outgoing transfers that were rejected or expired undecided."""

    def __init__(
        self,
        bank: Bank,
        *,
        on_handled: Callable[[Handled], None] | None = None,
        window: PendingWindow | None = None,
    ) -> None:
        self._bank = bank
        self._on_handled = on_handled
        self._window = window or PendingWindow()

    @property
    def window(self) -> PendingWindow:
        return self._window

    async def sweep_once(self) -> list[Handled]:
        """One pass over the outgoing transfers (those of the window); refunds one by one
        (they may credit the same account, so concurrent refunds would only conflict)."""
        since, started = self._window.start()
        done: list[Handled] = []
        still_open: list[Transfer] = []
        for transfer in await self._bank.outgoing(since=since):
            if transfer.status not in (TransferStatus.EXPIRED, TransferStatus.REJECTED):
                still_open.append(transfer)  # undecided: it may be rejected or expire
                continue
            try:
                if transfer.lock and transfer.status is TransferStatus.EXPIRED:
                    # a hash-locked leg: this bank's and the regulator's peers expire its
                    # lock first (the regulator's refuses while its own clock says the
                    # deadline has not passed, or once the payee claimed)
                    await self._bank.expire_lock(transfer.transfer_id, transfer.payee_bank)
                receipt = await self._bank.refund(transfer.transfer_id, transfer.payee_bank)
                handled = Handled(transfer, "refunded", transfer.status.value, receipt)
            except (InvalidState, NotExpired) as error:
                handled = Handled(transfer, "skipped", error.code, error=error)
                if isinstance(error, NotExpired):
                    still_open.append(transfer)
            except DTokenError as error:
                handled = Handled(transfer, "failed", type(error).__name__, error=error)
                still_open.append(transfer)
            done.append(handled)
            if self._on_handled is not None:
                self._on_handled(handled)
        self._window.passed(since, started, still_open)
        return done

    async def run(self, *, interval: float = 60.0, stop: asyncio.Event | None = None) -> None:
        """Sweep every ``interval`` seconds until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.sweep_once()
            except DTokenError as error:
                _log.warning("sweep failed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


class _Headroom:
    """One pass's exposure budget: per payer bank and currency, the headroom this bank's cap
    leaves (read once, before deciding), less what the pass has accepted so far. Taking and
    giving back happen without an ``await`` in between, so concurrent decisions of one pass
    cannot both spend the same headroom."""

    def __init__(self, bank_name: str, room: dict[tuple[str, str], Money | None]) -> None:
        self._bank_name = bank_name
        self._room = {k: None if v is None else v.minor for k, v in room.items()}
        self._taken: set[str] = set()

    @classmethod
    async def read(cls, bank: Bank, transfers: Iterable[Transfer]) -> _Headroom:
        """The headroom of every payer bank and currency among ``transfers`` still pending:
        first the caps (a short read each); one obligations query per payer bank that has a
        cap (it scans every transfer of the pair, which a bank without caps need not pay)."""
        wanted: dict[str, set[str]] = {}
        for t in transfers:
            if t.status is TransferStatus.PENDING:
                wanted.setdefault(t.payer_bank, set()).add(t.amount.currency)
        room: dict[tuple[str, str], Money | None] = {}
        for payer, currencies in sorted(wanted.items()):
            caps = [await bank.exposure_cap(payer, c) for c in sorted(currencies)]
            if all(cap is None for cap in caps):
                room.update({(payer, c): None for c in currencies})
                continue
            obligations = await bank.obligations(payer)
            for currency in currencies:
                room[(payer, currency)] = obligations.headroom(payer, currency)
        return cls(bank.name, room)

    def take(self, transfer: Transfer) -> str | None:
        """Reserve the transfer's amount; ``None`` if it fits (or there is no cap), else the
        reason it is left pending."""
        key = (transfer.payer_bank, transfer.amount.currency)
        left = self._room.get(key)
        if left is None:
            return None
        amount = transfer.amount.minor
        if amount > left:
            shown = Money(left, transfer.amount.currency, transfer.amount.decimals)
            return (f"exposure cap: {self._bank_name}'s cap on {transfer.payer_bank} leaves "
                    f"{shown} in this pass, the transfer is {transfer.amount}")
        self._room[key] = left - amount
        self._taken.add(transfer.transfer_id)
        return None

    def give_back(self, transfer: Transfer) -> None:
        """Return a reservation whose accept was refused (nothing written); after any other
        error the reservation stays spent for this pass: the cautious side."""
        key = (transfer.payer_bank, transfer.amount.currency)
        left = self._room.get(key)
        if left is not None and transfer.transfer_id in self._taken:
            self._taken.discard(transfer.transfer_id)
            self._room[key] = left + transfer.amount.minor


class IncomingListener:
    """Follows the chaincode events and decides the transfers sent to ``bank``.

    ``rule`` is the bank's policy for a transfer whose payee account can take it (default:
    accept). ``sweeper``, if given, also runs when this bank's transfers get decided and on
    every rescan. ``on_handled`` sees every decision (the CLI prints them); ``on_ready`` is
    called after each (re)start's first full pass, with the event stream open.
    ``preimages`` gives the preimage of a hash-locked incoming leg when this bank knows it
    (:class:`dtoken.pvp.PreimageBook`): such legs are claimed, never decided by ``rule``.
    """

    batch_decisions: bool = True
    """Decide a pass's transfers in ``decide_transfers`` batches (``False``: one transaction
    per transfer, the baseline)."""
    expiry_margin: float = 120.0
    """Seconds before its expiry from which a transfer is decided alone, not in a batch."""

    def __init__(
        self,
        bank: Bank,
        *,
        checkpointer: fabgateway.Checkpointer | None = None,
        rule: Rule = accept_all,
        sweeper: Sweeper | None = None,
        rescan_interval: float = 30.0,
        retry_delay: float = 2.0,
        concurrency: int = 8,
        reconnect_delay: float = 1.0,
        on_handled: Callable[[Handled], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        window: PendingWindow | None = None,
        preimages: Callable[[Transfer], Awaitable[str | None]] | None = None,
    ) -> None:
        self._bank = bank
        self._preimages = preimages
        self._on_ready = on_ready
        self._window = window or PendingWindow()
        if checkpointer is None:
            path = default_checkpoint_path(bank.profile)
            path.parent.mkdir(parents=True, exist_ok=True)
            checkpointer = fabgateway.FileCheckpointer(path)
        self._checkpointer = checkpointer
        self._rule = rule
        self._sweeper = sweeper
        self._rescan_interval = rescan_interval
        self._retry_delay = retry_delay
        self._retry_wait: float | None = None  # the current retry delay while passes fail
        self._limit = asyncio.Semaphore(concurrency)
        self._reconnect_delay = reconnect_delay
        self._on_handled = on_handled
        self._early: asyncio.Future[fabgateway.ChaincodeEvent] | None = None
        # Passes read concurrently, decide one at a time: two batches crediting the same
        # payee balance key in flight would invalidate one another (MVCC), and a pass's
        # exposure budget must see what the previous pass accepted.
        self._deciding = asyncio.Lock()
        self._decided: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._rescan: asyncio.Task[bool] | None = None

    @property
    def checkpointer(self) -> fabgateway.Checkpointer:
        return self._checkpointer

    # --- one pass ---------------------------------------------------------------------------

    @property
    def window(self) -> PendingWindow:
        return self._window

    async def process_pending(self, *, full: bool = False) -> list[Handled]:
        """Decide every transfer waiting for this bank (one pass): those of the window, or
        every one when ``full`` or when the window asks for a full pass."""
        if full:
            self._window.reset()
        since, started = self._window.start()
        handled = await self._decide_incoming(await self._bank.incoming(since=since))
        # Still open: undecided and not expired (an expired one is the payer bank's to refund).
        self._window.passed(since, started, [
            h.transfer for h in handled
            if h.action in ("failed", "held") and h.transfer.status is TransferStatus.PENDING
        ])  # fmt: skip
        return handled

    async def process_created(self, times: Iterable[datetime]) -> list[Handled]:
        """Decide the transfers waiting for this bank created at ``times`` (the moments the
        transactions' ``TransferPending`` events said): times within ``_SPAN`` of each other
        are read as one range, the ranges concurrently. The window stays where it is: a
        transfer this leaves open is read again by the next pass over the window (at the next
        rescan, or sooner after a failure)."""
        parts = await asyncio.gather(*(self._bank.incoming(since=first, until=last)
                                       for first, last in _spans(times)))
        return await self._decide_incoming([t for part in parts for t in part])

    async def _decide_incoming(self, incoming: list[Transfer]) -> list[Handled]:
        """Decide ``incoming`` (read by the caller, outside the lock): one pass at a time."""
        async with self._deciding:
            handled = await self._decide_read(incoming)
        for h in handled:
            # only what this listener decided: a skip may be "no preimage known yet" (a locked
            # leg, claimed once it is), and one decided elsewhere is no longer listed anyway
            if h.action in ("accepted", "rejected"):
                self._decided[(h.transfer.payer_bank, h.transfer.transfer_id)] = None
        while len(self._decided) > _REMEMBERED:
            self._decided.popitem(last=False)
        return handled

    async def _decide_read(self, incoming: list[Transfer]) -> list[Handled]:
        # once each, whatever a listing repeats (a batch decision refuses a repeated id), and
        # none this listener decided since the listing was read
        incoming = [t for t in {(t.payer_bank, t.transfer_id): t for t in incoming}.values()
                    if (t.payer_bank, t.transfer_id) not in self._decided]
        by_account: dict[str, list[Transfer]] = {}
        locked = [t for t in incoming if t.lock]
        incoming = [t for t in incoming if not t.lock]
        for transfer in incoming:
            by_account.setdefault(transfer.payee_account, []).append(transfer)
        claimed = [await self._claim(t) for t in locked]
        budget = await _Headroom.read(self._bank, incoming)
        if self.batch_decisions:
            handled = await self._decide_in_batches(by_account, budget)
        else:
            # One account at a time (accepts crediting the same account would conflict),
            # several accounts at once.
            groups = await asyncio.gather(*(self._decide_all(ts, budget)
                                            for ts in by_account.values()))
            handled = [h for group in groups for h in group]
        handled.extend(claimed)
        return handled

    async def _decide_in_batches(
        self, by_account: dict[str, list[Transfer]], budget: _Headroom
    ) -> list[Handled]:
        """Decide a pass's transfers with ``decide_transfers``: one batch per payer bank (at
        most 500 a transaction), sent one after the other so that at most one transaction
        crediting a payee balance key is in flight. Each transfer is still decided by
        :meth:`_verdict` (the payee account's checks, then the bank's rule). Left to the one by
        one path: transfers not pending, those within ``expiry_margin`` of their expiry (a
        refund of one, which the payer bank may send then, would invalidate the whole batch),
        and every item a batch could not settle."""
        margin = timedelta(seconds=self.expiry_margin)
        soon = datetime.now(UTC) + margin
        by_payer: dict[str, list[Transfer]] = {}
        alone: list[Transfer] = []
        for transfers in by_account.values():
            for transfer in transfers:
                if transfer.status is TransferStatus.PENDING and _expires_after(transfer, soon):
                    by_payer.setdefault(transfer.payer_bank, []).append(transfer)
                else:
                    alone.append(transfer)
        handled: list[Handled] = []
        for transfers in by_payer.values():
            for start in range(0, len(transfers), _MAX_BATCH):
                chunk = transfers[start:start + _MAX_BATCH]
                done, rest = await self._decide_batch(chunk, budget)
                handled.extend(done)
                alone.extend(rest)
        for handled_one in handled:
            if self._on_handled is not None:
                self._on_handled(handled_one)
        grouped: dict[str, list[Transfer]] = {}
        for transfer in alone:
            grouped.setdefault(transfer.payee_account, []).append(transfer)
        groups = await asyncio.gather(*(self._decide_all(ts, budget)
                                        for ts in grouped.values()))
        return handled + [h for group in groups for h in group]

    async def _decide_batch(
        self, transfers: Sequence[Transfer], budget: _Headroom
    ) -> tuple[list[Handled], list[Transfer]]:
        """One ``decide_transfers``: what it settled, and the transfers to decide alone. An
        accept the exposure cap's headroom cannot take is held, as on the single path.

        The payee accounts are not read first: ``decide_transfers`` checks each accept's payee
        account itself (it exists, takes credits, is in the transfer's currency) and answers
        a refused item with its code; such an item is then decided alone, where its account
        is read and the transfer rejected with the reason. (Reading every payee account of a
        batch cost one query per exporter: most of a pass, for checks the contract makes.)
        """

        async def verdict(transfer: Transfer) -> Verdict | DTokenError:
            async with self._limit:
                try:
                    return await self._rule_verdict(transfer)
                except DTokenError as error:
                    return error

        verdicts = await asyncio.gather(*(verdict(t) for t in transfers))
        handled: list[Handled] = []
        decide: list[tuple[Transfer, Verdict]] = []
        for transfer, v in zip(transfers, verdicts, strict=True):
            if isinstance(v, DTokenError):
                handled.append(Handled(transfer, "failed", type(v).__name__, error=v))
            elif v.accept and (held := budget.take(transfer)) is not None:
                _log.warning("transfer %s… held by the exposure cap", transfer.transfer_id[:8])
                handled.append(Handled(transfer, "held", held))
            else:
                decide.append((transfer, v))
        if not decide:
            return handled, []
        payer_bank = decide[0][0].payer_bank
        codes = None
        try:
            receipt, codes = await self._bank.decide(
                payer_bank, [(t.transfer_id, v.accept, v.reason) for t, v in decide])
        except DTokenError as error:
            _log.info("batch decision of %d refused or failed (%s): one by one",
                      len(decide), type(error).__name__)
        if codes is None:  # refused, failed, or a replay of this exact batch: one by one
            for t, v in decide:
                if v.accept:
                    budget.give_back(t)  # the single path reserves it again
            return handled, [t for t, _v in decide]
        rest: list[Transfer] = []
        for transfer, v in decide:
            code = codes[transfer.transfer_id]
            if code == "OK":
                action = "accepted" if v.accept else "rejected"
                handled.append(Handled(transfer, action, v.reason, receipt))
            elif code in (InvalidState.code, Expired.code) and not (
                    transfer.quote_id and code == Expired.code):
                handled.append(Handled(transfer, "skipped", code))
            else:  # the payee account refused the credit ...: the single path decides
                if v.accept:
                    budget.give_back(transfer)
                rest.append(transfer)
        return handled, rest

    async def _decide_all(self, transfers: Sequence[Transfer], budget: _Headroom
                          ) -> list[Handled]:
        async with self._limit:
            out = []
            for transfer in transfers:
                handled = await self._decide(transfer, budget)
                out.append(handled)
                if self._on_handled is not None:
                    self._on_handled(handled)
            return out

    async def _claim(self, transfer: Transfer) -> Handled:
        """A hash-locked leg is never accepted by the rule: it is claimed with its preimage
        when ``preimages`` knows it (the exporter's bank drew it; the dealer's bank read it in
        the claim of the other leg), else left pending (its payer refunds after the deadline)."""
        preimage = None
        if self._preimages is not None and transfer.status is TransferStatus.PENDING:
            preimage = await self._preimages(transfer)
        if preimage is None:
            handled = Handled(transfer, "skipped", "locked: no preimage known")
        else:
            try:
                receipt = await self._bank.claim(transfer.transfer_id, transfer.payer_bank,
                                                 preimage)
                handled = Handled(transfer, "accepted", "claimed", receipt)
            except (InvalidState, Expired) as error:
                handled = Handled(transfer, "skipped", error.code, error=error)
            except DTokenError as error:
                handled = Handled(transfer, "failed", type(error).__name__, error=error)
        if self._on_handled is not None:
            self._on_handled(handled)
        return handled

    async def _decide(self, transfer: Transfer, budget: _Headroom) -> Handled:
        if transfer.status is not TransferStatus.PENDING:
            return Handled(transfer, "skipped", f"{transfer.status.value}: the payer bank refunds")
        try:
            verdict = await self._verdict(transfer)
            if verdict.accept:
                held = budget.take(transfer)
                if held is not None:
                    _log.warning("transfer %s… left pending by the exposure cap",
                                 transfer.transfer_id[:8])
                    return Handled(transfer, "held", held)
                try:
                    # the headroom was checked above, for this whole pass
                    receipt = await self._bank.accept(transfer.transfer_id, transfer.payer_bank,
                                                      force=True)
                    return Handled(transfer, "accepted", receipt=receipt)
                except (AccountFrozen, AccountClosed, NotFound, CurrencyMismatch) as error:
                    budget.give_back(transfer)
                    # The account changed since it was checked: reject rather than leave it.
                    verdict = Verdict.rejected(f"payee account refused ({error.code})")
                except (InvalidArgument, Expired) as error:
                    if not transfer.quote_id:
                        raise
                    budget.give_back(transfer)
                    # The contract refused the transfer's quote (altered, expired, used):
                    # reject it, so that the payer bank refunds its customer at once.
                    verdict = Verdict.rejected(f"quote refused ({error.code})")
            receipt = await self._bank.reject(
                transfer.transfer_id, transfer.payer_bank, verdict.reason
            )
            return Handled(transfer, "rejected", verdict.reason, receipt)
        except (InvalidState, Expired) as error:
            return Handled(transfer, "skipped", error.code, error=error)
        except DTokenError as error:
            # the accept may have applied (OutcomeUnknown): its reservation stays spent
            _log.warning("transfer %s…: %s", transfer.transfer_id[:8], type(error).__name__)
            return Handled(transfer, "failed", type(error).__name__, error=error)

    async def _verdict(
        self, transfer: Transfer, accounts: Mapping[str, Account | None] | None = None
    ) -> Verdict:
        """The payee account's checks, then the bank's rule. ``accounts`` holds the payee
        accounts read once for a whole batch (``None``: no such account)."""
        if accounts is not None and transfer.payee_account in accounts:
            account = accounts[transfer.payee_account]
            if account is None:
                return Verdict.rejected("no such payee account")
        else:
            try:
                account = await self._bank.account(transfer.payee_account)
            except NotFound:
                return Verdict.rejected("no such payee account")
        if account.status is not AccountStatus.ACTIVE:
            return Verdict.rejected(f"payee account is {account.status.value}")
        if account.currency != transfer.credit.currency:
            # (a converted transfer is credited in the quote's currency, not the payer's)
            return Verdict.rejected("payee account is in another currency")
        return await self._rule_verdict(transfer)

    async def _rule_verdict(self, transfer: Transfer) -> Verdict:
        """The bank's rule on ``transfer`` (sync or async)."""
        verdict = self._rule(transfer)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if not isinstance(verdict, Verdict):
            raise TypeError("a rule must return a Verdict")
        return verdict

    async def _work(
        self, incoming: bool, sweep: bool, *, full: bool = False,
        created: Sequence[datetime] = (),
    ) -> bool:
        """Pass and/or sweep; True when some decision or refund failed (left for a retry).
        Without a pass (``incoming`` false), the transfers ``created`` at the moments the
        events said are decided (:meth:`process_created`)."""
        handled: list[Handled] = []
        if incoming:
            handled += await self.process_pending(full=full)
        elif created:
            handled += await self.process_created(created)
        if sweep and self._sweeper is not None:
            # one write in flight: a refund may credit the account an accept credits
            async with self._deciding:
                if full:
                    self._sweeper.window.reset()
                handled += await self._sweeper.sweep_once()
        return any(h.action == "failed" for h in handled)

    def _next_wait(self, failed: bool) -> float:
        """How long until the next rescan: ``rescan_interval``, or after a pass that left a
        failure, ``retry_delay`` doubling up to ``rescan_interval`` while failures go on (a
        timeout under load should not wait a whole rescan interval for its retry)."""
        if not failed:
            self._retry_wait = None
            return self._rescan_interval
        wait = self._retry_delay if self._retry_wait is None else self._retry_wait * 2
        self._retry_wait = min(wait, self._rescan_interval)
        return self._retry_wait

    # --- following the events ---------------------------------------------------------------

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Follow the events until ``stop`` is set (or the task is cancelled).

        A failing stream or peer is retried after ``reconnect_delay``; every (re)start begins
        with a full pass, then resumes the events at the checkpoint.
        """
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self._follow(stop)
            except (*STREAM_ERRORS, NetworkFault) as error:
                _log.warning("listener: %s; reconnecting", str(error).splitlines()[0])
            except ContractError as error:
                _log.warning("listener: %s; retrying", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._reconnect_delay)

    async def _follow(self, stop: asyncio.Event) -> None:
        passes: deque[tuple[asyncio.Task[bool] | None, fabgateway.ChaincodeEvent]] = deque()
        try:
            await self._follow_stream(stop, passes)
        finally:
            early, self._early = self._early, None
            if early is not None and not early.done():
                early.cancel()
            # after a fault, every unfinished pass is dropped: the reconnect's full pass
            # reads everything again (decisions are idempotent)
            rescan, self._rescan = self._rescan, None
            tasks = [t for t, _e in passes if t is not None]
            if rescan is not None:
                tasks.append(rescan)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow_stream(
        self, stop: asyncio.Event,
        passes: deque[tuple[asyncio.Task[bool] | None, fabgateway.ChaincodeEvent]],
    ) -> None:
        """Open the stream, make the first full pass, then follow the events.

        Work runs in tasks, so that reading never waits for deciding: an event's pass (its
        transactions' transfers) starts when its batch of events arrives, reads while the
        previous pass decides, and decides after it (``_deciding``); at most ``_PIPELINE``
        are in flight, and an event is checkpointed once its pass and every earlier one are
        done. A pass over the window (the rescan, due by the clock, or asked for by an event
        without a usable time) runs beside them: reading a few minutes of transfers under
        load takes seconds, which the events' passes no longer wait for.
        """
        stream = member_events(self._bank.network, self._bank.profile,
                               checkpoint=self._checkpointer)
        async with stream:
            # Open the stream before the first pass, so that nothing committed in between is
            # left to the next rescan: the first read is what sends the request.
            first = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0)
            try:
                failed = await self._work(incoming=True, sweep=True, full=True)
            except BaseException:
                first.cancel()
                raise
            if self._on_ready is not None:
                self._on_ready()
            self._early = first
            clock = asyncio.get_running_loop().time
            due = clock() + self._next_wait(failed)  # the rescan due by the clock
            retry: float | None = None  # sooner: a pass left a failure
            window_asked = False  # an event asked for a window pass (no sweep)
            rescan_sweeps = False  # the running window pass is a rescan (it sweeps too)
            while not stop.is_set():
                if self._finished(passes):
                    soon = clock() + self._next_wait(True)
                    retry = soon if retry is None else min(retry, soon)
                rescan = self._rescan
                if rescan is not None and rescan.done():
                    self._rescan = None
                    failed = rescan.result()
                    if rescan_sweeps:  # the next rescan is due from now
                        due = clock() + self._next_wait(failed)
                    elif failed:
                        soon = clock() + self._next_wait(True)
                        retry = soon if retry is None else min(retry, soon)
                # The rescan is due by the clock, not by a quiet interval: under the layout
                # every bank's events arrive here, and a busy channel must not starve it.
                if self._rescan is None:
                    now = clock()
                    rescan_sweeps = now >= due or (retry is not None and now >= retry)
                    if rescan_sweeps or window_asked:
                        self._rescan = asyncio.create_task(
                            self._work(incoming=True, sweep=rescan_sweeps))
                        window_asked = False
                        if rescan_sweeps:  # set again when it ends
                            due, retry = now + self._rescan_interval, None
                next_at = due if retry is None else min(due, retry)
                in_flight = {t for t, _e in passes if t is not None and not t.done()}
                if self._rescan is not None or in_flight:
                    wait = _BATCH_WINDOW  # work to collect: poll for it, never spin
                else:
                    wait = max(0.0, next_at - clock())
                if len(in_flight) >= _PIPELINE:
                    await asyncio.wait(in_flight, timeout=wait,
                                       return_when=asyncio.FIRST_COMPLETED)
                    continue
                batch = await self._next_batch(stream, stop, wait)
                if batch is None:
                    break  # stopped
                if not batch:
                    continue
                sweep = False
                created: list[datetime] = []
                window = False
                for event in batch:
                    kind, at = self._relevance(event)
                    if kind == EVENT_PENDING:
                        # the transactions' own transfers, not the whole window again: a pass
                        # over the window re-read every transfer of the last ``lookback``
                        # seconds, decided or not, at every event (quadratic in a burst)
                        if at is None:
                            window = True
                        else:
                            created.append(at)
                    sweep = sweep or kind == EVENT_DECIDED
                if len(_spans(created)) > _MAX_SPANS:
                    window, created = True, []  # times no batch of transactions has
                # An event asking only for the window is checkpointed at once: that pass,
                # and every (re)start's full pass, reads what it announced.
                window_asked = window_asked or window
                if created or sweep:
                    task = asyncio.create_task(self._work(False, sweep, created=created))
                    passes.append((task, batch[-1]))
                elif passes and passes[-1][0] is None:
                    passes[-1] = (None, batch[-1])  # nothing to wait for: one entry
                else:
                    passes.append((None, batch[-1]))
            # stopped: let the work in flight end (its decisions may be committing)
            rest = [t for t, _e in passes if t is not None]
            if self._rescan is not None:
                rest.append(self._rescan)
            for result in await asyncio.gather(*rest, return_exceptions=True):
                if isinstance(result, Exception):
                    _log.warning("listener: a pass failed while stopping: %s", result)
            with contextlib.suppress(Exception):  # logged just above
                self._finished(passes)

    def _finished(
        self, passes: deque[tuple[asyncio.Task[bool] | None, fabgateway.ChaincodeEvent]],
    ) -> bool:
        """Checkpoint the events whose passes (and every earlier one) are done; True if one
        of those passes left a failure (to retry soon). A pass's error is raised here."""
        failed = False
        while passes and (passes[0][0] is None or passes[0][0].done()):
            task, last = passes.popleft()
            if task is not None and task.result():
                failed = True
            self._checkpointer.checkpoint_chaincode_event(last)
        return failed

    def _relevance(self, event: fabgateway.ChaincodeEvent) -> tuple[str | None, datetime | None]:
        """Which work an event asks for: a pass over incoming transfers (``EVENT_PENDING``,
        with the time it says its transaction's transfers were created, ``None`` if it says
        none this bank can read: then a pass over the window finds them), a sweep
        (``EVENT_DECIDED``) or none. Any bank's peer can emit any bytes in its own namespace:
        an event that is not the contract's shape asks for nothing, and none raises (a pass
        still decides only what this bank's own reads show)."""
        try:
            payload = json.loads(event.payload)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested to no end
            return None, None
        if not isinstance(payload, dict):
            return None, None
        me = self._bank.name
        payee_banks = payload.get("payee_banks")
        if (event.event_name == EVENT_PENDING and isinstance(payee_banks, list)
                and me in payee_banks):
            at = payload.get("at")
            try:
                return EVENT_PENDING, parse_timestamp(at) if isinstance(at, str) else None
            except ValueError:
                return EVENT_PENDING, None
        if event.event_name == EVENT_DECIDED and payload.get("payer_bank") == me:
            return EVENT_DECIDED, None
        return None, None

    async def _next_batch(
        self, stream: AsyncIterator[fabgateway.ChaincodeEvent], stop: asyncio.Event,
        seconds: float,
    ) -> list[fabgateway.ChaincodeEvent] | None:
        """The events that arrive within ``seconds`` (empty: none came), read until a short
        quiet gap; ``None`` when stopped."""
        early, self._early = self._early, None
        first = await self._read(stream, stop, seconds, early)
        if first is _STOPPED:
            return None
        if first is None:
            return []
        assert isinstance(first, fabgateway.ChaincodeEvent)
        batch = [first]
        while len(batch) < _MAX_BATCH:
            more = await self._read(stream, stop, _BATCH_WINDOW)
            if not isinstance(more, fabgateway.ChaincodeEvent):
                break
            batch.append(more)
        return batch

    @staticmethod
    async def _read(
        stream: AsyncIterator[fabgateway.ChaincodeEvent],
        stop: asyncio.Event,
        seconds: float,
        reading: asyncio.Future[fabgateway.ChaincodeEvent] | None = None,
    ) -> fabgateway.ChaincodeEvent | object | None:
        # fabgateway's stream reads are shielded: abandoning one here loses no event.
        if reading is None:
            reading = asyncio.ensure_future(anext(stream))
        stopping = asyncio.ensure_future(stop.wait())
        waiters: set[asyncio.Future[Any]] = {reading, stopping}
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (reading, stopping):
                if not task.done():
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(reading, stopping, return_exceptions=True)
        if reading in done:
            try:
                return reading.result()
            except StopAsyncIteration:
                raise NetworkFault("the chaincode event stream ended") from None
        if stopping in done:
            return _STOPPED
        return None


_STOPPED = object()
