"""The incoming listener and the sweeper, over a fake bank and a fake event stream.

The fake bank keeps transfers as the contract does (a decided transfer is no longer pending; a
second decision is INVALID_STATE), so the tests can count decisions.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fabgateway
import grpc
import pytest
from dtoken.errors import (
    AccountFrozen,
    Expired,
    InvalidArgument,
    InvalidState,
    NetworkFault,
    NotExpired,
    NotFound,
)
from dtoken.listener import (
    _MAX_SPANS,
    Handled,
    IncomingListener,
    PendingWindow,
    Sweeper,
    Verdict,
)
from dtoken.models import (
    Account,
    AccountLimits,
    AccountStatus,
    Obligation,
    Obligations,
    Transfer,
    TransferStatus,
    format_timestamp,
    parse_timestamp,
)
from dtoken.money import Money

CUR = {"USD": 2, "HKD": 2}


def usd(minor: int) -> Money:
    return Money(minor, "USD", 2)


def stamp(moment: datetime | None = None) -> str:
    """A timestamp as the contract writes them (default: now)."""
    return format_timestamp(moment or datetime.now(UTC))


def transfer(n: int, account: str = "payee-1", status: TransferStatus = TransferStatus.PENDING,
             amount: int = 1000, payer: str = "hkbank", payee: str = "usbank",
             created_at: str | None = None) -> Transfer:
    return Transfer(transfer_id=f"t{n:03d}".ljust(24, "x"), payer_bank=payer, payee_bank=payee,
                    payee_account=account, amount=usd(amount),
                    created_at=created_at or stamp(), expires_at="",
                    originator={}, remittance="", status=status)


class FakeEvents:
    """A chaincode event stream fed by the test; records where each stream started and
    which kind of stream was opened (``chaincode_events`` of a name, or
    ``block_chaincode_events`` of a test of names)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[fabgateway.ChaincodeEvent | Exception] = asyncio.Queue()
        self.starts: list[tuple[int | None, str | None]] = []
        self.opened: list[tuple[str, Any]] = []

    def chaincode_events(self, chaincode: str, *, start_block: int | None = None,
                         checkpoint: Any) -> Any:
        self.opened.append(("chaincode_events", chaincode))
        return self._stream(checkpoint)

    def block_chaincode_events(self, names: Any, *, start_block: int | None = None,
                               checkpoint: Any) -> Any:
        self.opened.append(("block_chaincode_events", names))
        return self._stream(checkpoint)

    def _stream(self, checkpoint: Any) -> Any:
        self.starts.append((checkpoint.block_number, checkpoint.transaction_id))
        queue = self.queue

        class Stream:
            async def __aenter__(self) -> Stream:
                return self

            async def __aexit__(self, *exc: object) -> None:
                return None

            def __aiter__(self) -> Stream:
                return self

            async def __anext__(self) -> fabgateway.ChaincodeEvent:
                item = await queue.get()
                if isinstance(item, Exception):
                    raise item
                return item

        return Stream()


class FakeBank:
    name = "usbank"

    def __init__(self) -> None:
        self.transfers: dict[str, Transfer] = {}
        self.accounts: dict[str, Account] = {}
        self.decided: list[tuple[str, str, str]] = []  # (action, transfer id, reason)
        self.accept_error: Exception | None = None
        self.network = FakeEvents()
        self.profile = SimpleNamespace(chaincode="dtoken", has_namespaces=False)
        self.incoming_calls = 0
        self.since: list[datetime | None] = []  # the window of every incoming and outgoing read
        self.until: list[datetime | None] = []  # the end of every incoming read
        self.caps: dict[tuple[str, str], int] = {}  # (payer bank, currency) -> cap, minor units
        self.obligation_reads: list[str] = []
        self.forced: list[bool] = []
        self.add_account("payee-1")

    def add_account(self, account_id: str, status: AccountStatus = AccountStatus.ACTIVE,
                    currency: str = "USD") -> None:
        zero = Money(0, currency, 2)
        self.accounts[account_id] = Account(
            account_id=account_id, bank=self.name, currency=currency, owner_ref="o",
            status=status, balance=zero, available=zero, limits=AccountLimits(), outflow_today=zero,
            hold=None, opened_at="", history_length=0)

    def add(self, t: Transfer) -> None:
        self.transfers[t.transfer_id] = t

    async def incoming(self, *, since: datetime | None = None,
                       until: datetime | None = None) -> list[Transfer]:
        self.incoming_calls += 1
        self.since.append(since)
        self.until.append(until)
        return [t for t in self.transfers.values()
                if t.payee_bank == self.name
                and (since is None or t.created_at >= format_timestamp(since))
                and (until is None or t.created_at <= format_timestamp(until))
                and t.status in (TransferStatus.PENDING, TransferStatus.EXPIRED)]

    async def outgoing(self, *, since: datetime | None = None) -> list[Transfer]:
        self.since.append(since)
        return [t for t in self.transfers.values() if t.payer_bank == self.name
                and (since is None or t.created_at >= format_timestamp(since))
                and t.status in (TransferStatus.PENDING, TransferStatus.EXPIRED,
                                 TransferStatus.REJECTED)]

    async def account(self, account_id: str) -> Account:
        if account_id not in self.accounts:
            raise NotFound("the account does not exist")
        return self.accounts[account_id]

    def _decide(self, transfer_id: str, status: TransferStatus, action: str, reason: str) -> Any:
        t = self.transfers[transfer_id]
        if t.status not in (TransferStatus.PENDING, TransferStatus.EXPIRED,
                            TransferStatus.REJECTED):
            raise InvalidState("the transfer was decided already")
        self.transfers[transfer_id] = replace(t, status=status)
        self.decided.append((action, transfer_id, reason))
        return SimpleNamespace(tx_id="tx-" + transfer_id, block_number=1, attempt=0,
                               replayed=False)

    async def exposure_cap(self, debtor_bank: str, currency: str) -> Money | None:
        cap = self.caps.get((debtor_bank, currency))
        return None if cap is None else Money(cap, currency, 2)

    async def obligations(self, other_bank: str) -> Obligations:
        """The pair's obligations as the contract reports them: ``caps`` (this bank's cap per
        payer bank and currency, in minor units) less what this bank accepted from it."""
        self.obligation_reads.append(other_bank)
        rows = []
        for (payer, cur), cap in self.caps.items():
            if payer != other_bank:
                continue
            owed = sum(t.amount.minor for t in self.transfers.values()
                       if t.payer_bank == payer and t.amount.currency == cur
                       and t.status is TransferStatus.ACCEPTED)
            zero = Money(0, cur, 2)
            rows.append(Obligation(payer, self.name, cur, Money(owed, cur, 2), zero, zero,
                                   Money(owed, cur, 2), Money(cap, cur, 2),
                                   Money(max(0, cap - owed), cur, 2)))
        return Obligations((self.name, other_bank), tuple(rows), {}, {}, ())

    async def accept(self, transfer_id: str, payer_bank: str, *, force: bool = False) -> Any:
        self.forced.append(force)
        if self.accept_error is not None:
            raise self.accept_error
        return self._decide(transfer_id, TransferStatus.ACCEPTED, "accept", "")

    async def reject(self, transfer_id: str, payer_bank: str, reason: str = "") -> Any:
        return self._decide(transfer_id, TransferStatus.REJECTED, "reject", reason)

    async def refund(self, transfer_id: str, payee_bank: str) -> Any:
        t = self.transfers[transfer_id]
        if t.status is TransferStatus.PENDING:
            raise NotExpired("the transfer has not expired")
        return self._decide(transfer_id, TransferStatus.REFUNDED, "refund", "")


def event(block: int, tx: str, name: str, payload: dict[str, Any]) -> fabgateway.ChaincodeEvent:
    return fabgateway.ChaincodeEvent(block, tx, "dtoken", name, json.dumps(payload).encode())


def pending_for(bank: str, block: int, tx: str) -> fabgateway.ChaincodeEvent:
    return event(block, tx, "TransferPending", {"payee_banks": [bank]})


@pytest.fixture
def bank() -> FakeBank:
    return FakeBank()


def listener(bank: FakeBank, **kwargs: Any) -> IncomingListener:
    kwargs.setdefault("checkpointer", fabgateway.InMemoryCheckpointer())
    return IncomingListener(bank, **kwargs)  # type: ignore[arg-type]


async def test_a_pass_accepts_what_the_payee_account_can_take_and_rejects_the_rest(
    bank: FakeBank,
) -> None:
    bank.add_account("frozen-1", AccountStatus.FROZEN)
    bank.add_account("hkd-1", currency="HKD")
    bank.add(transfer(1))
    bank.add(transfer(2, account="nobody"))
    bank.add(transfer(3, account="frozen-1"))
    bank.add(transfer(4, account="hkd-1"))
    bank.add(transfer(5, status=TransferStatus.EXPIRED))
    bank.add(transfer(6, amount=10_000_000))
    seen: list[Handled] = []

    def rule(t: Transfer) -> Verdict:
        return Verdict.rejected("too large") if t.amount > usd(1_000_000) else Verdict.accepted()

    handled = await listener(bank, rule=rule, on_handled=seen.append).process_pending()
    actions = {h.transfer.transfer_id[:4]: (h.action, h.reason) for h in handled}
    assert actions == {
        "t001": ("accepted", ""),
        "t002": ("rejected", "no such payee account"),
        "t003": ("rejected", "payee account is frozen"),
        "t004": ("rejected", "payee account is in another currency"),
        "t005": ("skipped", "expired: the payer bank refunds"),
        "t006": ("rejected", "too large"),
    }
    assert seen == handled
    assert [d[0] for d in bank.decided].count("accept") == 1
    again = await listener(bank).process_pending()  # nothing left but the expired one
    assert [(h.transfer.transfer_id[:4], h.action) for h in again] == [("t005", "skipped")]
    assert len(bank.decided) == 5


async def test_an_async_rule_and_a_refused_accept_become_rejections(bank: FakeBank) -> None:
    bank.add(transfer(1))

    async def rule(t: Transfer) -> Verdict:
        await asyncio.sleep(0)
        return Verdict.accepted()

    bank.accept_error = AccountFrozen("the account to credit is frozen by its bank")
    (handled,) = await listener(bank, rule=rule).process_pending()
    assert (handled.action, handled.reason) == ("rejected", "payee account refused (FROZEN)")


async def test_already_decided_is_skipped_and_a_fault_is_left_for_the_next_pass(
    bank: FakeBank,
) -> None:
    bank.add(transfer(1))
    bank.accept_error = InvalidState("the transfer was decided already")
    (handled,) = await listener(bank).process_pending()
    assert handled.action == "skipped"
    bank.accept_error = NetworkFault("peer unreachable")
    (handled,) = await listener(bank).process_pending()
    assert (handled.action, handled.reason) == ("failed", "NetworkFault")
    bank.accept_error = None
    (handled,) = await listener(bank).process_pending()
    assert handled.action == "accepted"


async def test_transfers_to_one_account_are_decided_one_at_a_time(bank: FakeBank) -> None:
    bank.add_account("payee-2")
    for n in range(4):
        bank.add(transfer(n, account="payee-1"))
        bank.add(transfer(10 + n, account="payee-2"))
    active: dict[str, int] = {"payee-1": 0, "payee-2": 0}
    most = {"payee-1": 0, "payee-2": 0}
    accept = bank.accept

    async def slow_accept(transfer_id: str, payer_bank: str, *, force: bool = False) -> Any:
        account = bank.transfers[transfer_id].payee_account
        active[account] += 1
        most[account] = max(most[account], active[account])
        await asyncio.sleep(0.01)
        active[account] -= 1
        return await accept(transfer_id, payer_bank)

    bank.accept = slow_accept  # type: ignore[method-assign]
    handled = await listener(bank).process_pending()
    assert [h.action for h in handled] == ["accepted"] * 8
    assert most == {"payee-1": 1, "payee-2": 1}


async def test_what_would_exceed_the_exposure_cap_is_left_pending_with_the_reason(
    bank: FakeBank, caplog: pytest.LogCaptureFixture,
) -> None:
    bank.add_account("payee-2")
    bank.caps[("hkbank", "USD")] = 2_500
    for n in range(3):  # 3 x 1,000 to two accounts, decided concurrently: 2 fit
        bank.add(transfer(n, account="payee-1" if n % 2 else "payee-2"))
    bank.add(transfer(7, payer="cnbank"))  # no cap on cnbank
    handled = await listener(bank).process_pending()
    actions = sorted(h.action for h in handled)
    assert actions == ["accepted", "accepted", "accepted", "held"]
    (held,) = [h for h in handled if h.action == "held"]
    assert held.transfer.payer_bank == "hkbank"
    assert held.reason == ("exposure cap: usbank's cap on hkbank leaves 5.00 USD in this pass, "
                           "the transfer is 10.00 USD")
    assert "left pending by the exposure cap" in caplog.text
    assert "USD" not in caplog.text  # amounts and headroom stay in the result, not the log
    # once per payer bank with a cap (cnbank's cap read says there is none: no scan)
    assert bank.obligation_reads == ["hkbank"]
    assert bank.forced == [True, True, True]  # the pass checked; accept need not read again
    assert bank.transfers[held.transfer.transfer_id].status is TransferStatus.PENDING

    again = await listener(bank).process_pending()  # nothing settled: still held
    assert [h.action for h in again] == ["held"]
    bank.caps[("hkbank", "USD")] = 3_000  # raised, or the payer bank's settlement confirmed
    last = await listener(bank).process_pending()
    assert [h.action for h in last] == ["accepted"]


async def test_a_refused_accept_gives_its_headroom_back(bank: FakeBank) -> None:
    bank.caps[("hkbank", "USD")] = 1_000
    bank.add(transfer(1))
    bank.add(transfer(2, account="payee-2"))
    bank.add_account("payee-2")
    calls = 0
    accept = bank.accept

    async def refuse_first(transfer_id: str, payer_bank: str, *, force: bool = False) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise AccountFrozen("frozen since")
        return await accept(transfer_id, payer_bank, force=force)

    bank.accept = refuse_first  # type: ignore[method-assign]
    handled = await listener(bank, concurrency=1).process_pending()
    # without the refused one's headroom given back, the second would be held
    assert sorted(h.action for h in handled) == ["accepted", "rejected"]


async def run_until(task: asyncio.Task[None], probe: Any, seconds: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not probe():
        if task.done():
            task.result()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not reached")
        await asyncio.sleep(0.01)


async def test_run_decides_on_events_and_checkpoints_after_processing(bank: FakeBank) -> None:
    checkpointer = fabgateway.InMemoryCheckpointer()
    stop = asyncio.Event()
    task = asyncio.create_task(listener(bank, checkpointer=checkpointer).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)  # the first full pass
    bank.add(transfer(1))
    await bank.network.queue.put(event(5, "tx-other", "TransferPending",
                                       {"payee_banks": ["cnbank"]}))
    await asyncio.sleep(0.2)
    assert bank.incoming_calls == 1  # an event for another bank triggers nothing
    assert (checkpointer.block_number, checkpointer.transaction_id) == (5, "tx-other")
    await bank.network.queue.put(pending_for("usbank", 6, "tx-a"))
    await run_until(task, lambda: len(bank.decided) == 1)
    await run_until(task, lambda: checkpointer.transaction_id == "tx-a")
    assert checkpointer.block_number == 6
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_a_restarted_listener_resumes_at_the_checkpoint_and_rescans(
    bank: FakeBank, tmp_path: Path
) -> None:
    path = tmp_path / "listeners" / "usbank.json"
    path.parent.mkdir()
    first_stop = asyncio.Event()
    first = asyncio.create_task(
        listener(bank, checkpointer=fabgateway.FileCheckpointer(path)).run(stop=first_stop))
    await run_until(first, lambda: bank.incoming_calls == 1)
    bank.add(transfer(1))
    await bank.network.queue.put(pending_for("usbank", 7, "tx-1"))
    await run_until(first, lambda: len(bank.decided) == 1)
    await run_until(first, lambda: path.exists())
    first.cancel()  # killed
    with pytest.raises(asyncio.CancelledError):
        await first
    bank.add(transfer(2))  # arrived while nobody listened; its event is lost to this stream
    stop = asyncio.Event()
    second = asyncio.create_task(
        listener(bank, checkpointer=fabgateway.FileCheckpointer(path)).run(stop=stop))
    await run_until(second, lambda: len(bank.decided) == 2)
    assert bank.network.starts[-1] == (7, "tx-1")
    assert [d[0] for d in bank.decided] == ["accept", "accept"]
    stop.set()
    await asyncio.wait_for(second, 2)


async def test_a_failed_stream_is_reopened_from_the_checkpoint(bank: FakeBank) -> None:
    checkpointer = fabgateway.InMemoryCheckpointer()
    checkpointer.checkpoint_transaction(3, "tx-3")
    stop = asyncio.Event()
    task = asyncio.create_task(
        listener(bank, checkpointer=checkpointer, reconnect_delay=0.01).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    await bank.network.queue.put(
        fabgateway.ChaincodeEventsError("stream broke", code=grpc.StatusCode.UNAVAILABLE))
    await run_until(task, lambda: len(bank.network.starts) == 2)
    assert bank.network.starts == [(3, "tx-3"), (3, "tx-3")]
    await run_until(task, lambda: bank.incoming_calls == 2)  # a full pass after reconnecting
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_a_quiet_interval_triggers_a_rescan(bank: FakeBank) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(listener(bank, rescan_interval=0.05).run(stop=stop))
    bank.add(transfer(1))
    await run_until(task, lambda: len(bank.decided) == 1)
    assert bank.incoming_calls >= 1
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_the_sweeper_refunds_rejected_and_expired_outgoing_transfers() -> None:
    bank = FakeBank()
    bank.name = "hkbank"
    bank.add(transfer(1, status=TransferStatus.REJECTED))
    bank.add(transfer(2, status=TransferStatus.EXPIRED))
    bank.add(transfer(3, status=TransferStatus.PENDING))
    bank.add(transfer(4, status=TransferStatus.ACCEPTED))
    handled = await Sweeper(bank).sweep_once()  # type: ignore[arg-type]
    assert [(h.transfer.transfer_id[:4], h.action, h.reason) for h in handled] == [
        ("t001", "refunded", "rejected"), ("t002", "refunded", "expired")]
    assert await Sweeper(bank).sweep_once() == []  # type: ignore[arg-type]


async def test_events_that_decide_this_banks_transfers_trigger_the_sweeper() -> None:
    bank = FakeBank()
    bank.name = "hkbank"
    stop = asyncio.Event()
    sweeps: list[Handled] = []
    sweeper = Sweeper(bank, on_handled=sweeps.append)  # type: ignore[arg-type]
    task = asyncio.create_task(listener(bank, sweeper=sweeper).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    bank.add(transfer(1, status=TransferStatus.REJECTED))
    await bank.network.queue.put(event(9, "tx-d", "TransferDecided", {"payer_bank": "hkbank"}))
    await run_until(task, lambda: len(sweeps) == 1)
    assert sweeps[0].action == "refunded"
    stop.set()
    await asyncio.wait_for(task, 2)


# --- the window of a pass ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def window(self, **kw: float) -> PendingWindow:
        return PendingWindow(clock=lambda: self.mono, wall=lambda: self.wall, **kw)


def test_the_window_starts_full_then_reads_from_its_mark() -> None:
    clock = Clock()
    win = clock.window(lookback=300, full_interval=600)
    since, started = win.start()
    assert since is None  # nothing known yet: a full pass
    win.passed(since, started, [])
    assert win.since() == clock.wall - timedelta(seconds=300)
    # The oldest transfer still open holds the mark back, whatever the look-back says.
    old = transfer(1, created_at=stamp(clock.wall - timedelta(hours=2)))
    win.passed(win.since(), clock.wall, [old, transfer(2)])
    assert win.since() == clock.wall - timedelta(hours=2)
    # It moves on once nothing older is open; a full pass comes back every full_interval.
    clock.wall += timedelta(minutes=1)
    win.passed(win.since(), clock.wall, [])
    assert win.since() == clock.wall - timedelta(seconds=300)
    clock.mono += 600
    assert win.since() is None
    win.reset()
    assert win.since() is None


async def test_event_passes_read_a_window_and_full_passes_find_late_transfers(
    bank: FakeBank,
) -> None:
    stop = asyncio.Event()
    window = PendingWindow(lookback=60, full_interval=3600)
    task = asyncio.create_task(listener(bank, window=window).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    assert bank.since == [None]  # the start is a full pass
    # A transfer timestamped an hour before it reached the peer: an event pass, reading only
    # the last minute or so, does not see it...
    bank.add(transfer(1, created_at=stamp(datetime.now(UTC) - timedelta(hours=1))))
    bank.add(transfer(2))
    await bank.network.queue.put(pending_for("usbank", 5, "tx-a"))
    await run_until(task, lambda: len(bank.decided) == 1)
    assert bank.since[-1] is not None
    assert [d[1][:4] for d in bank.decided] == ["t002"]
    # ...the next full pass (here: a forced one) does.
    await listener(bank, window=window).process_pending(full=True)
    assert sorted(d[1][:4] for d in bank.decided) == ["t001", "t002"]
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_the_sweeper_keeps_undecided_transfers_in_its_window() -> None:
    bank = FakeBank()
    bank.name = "hkbank"
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    bank.add(transfer(1, status=TransferStatus.PENDING, created_at=stamp(old)))
    sweeper = Sweeper(bank, window=PendingWindow(lookback=60))  # type: ignore[arg-type]
    assert await sweeper.sweep_once() == []
    assert bank.since == [None]
    # Undecided a day later: the window still starts at it, so its rejection is seen.
    assert sweeper.window.since() == old
    bank.transfers[transfer(1).transfer_id] = replace(
        bank.transfers[transfer(1).transfer_id], status=TransferStatus.REJECTED)
    handled = await sweeper.sweep_once()
    assert bank.since[-1] == old
    assert [(h.transfer.transfer_id[:4], h.action) for h in handled] == [("t001", "refunded")]


def test_a_transfer_without_a_readable_creation_time_makes_the_next_pass_full() -> None:
    clock = Clock()
    win = clock.window()
    win.passed(None, clock.wall, [])
    assert win.since() is not None
    win.passed(win.since(), clock.wall, [transfer(1, created_at="yesterday")])
    assert win.since() is None  # no safe mark: read everything


class BatchingBank(FakeBank):
    """A fake bank that also decides in batches, as ``decide_transfers`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.refuse_credit: set[str] = set()  # transfer ids whose payee refuses the credit
        self.account_reads = 0

    async def account(self, account_id: str) -> Account:
        self.account_reads += 1
        return await super().account(account_id)

    async def decide(self, payer_bank: str, decisions: Any) -> Any:
        self.batches.append([tid for tid, _a, _r in decisions])
        codes = {}
        for tid, accept, reason in decisions:
            if accept and tid in self.refuse_credit:
                codes[tid] = "FROZEN"
                continue
            try:
                status = TransferStatus.ACCEPTED if accept else TransferStatus.REJECTED
                self._decide(tid, status, "accept" if accept else "reject", reason)
                codes[tid] = "OK"
            except InvalidState:
                codes[tid] = "INVALID_STATE"
        return SimpleNamespace(tx_id="tx-batch", block_number=2), codes


async def test_a_backlog_is_decided_in_batches_and_near_expiry_ones_alone() -> None:
    bank = BatchingBank()
    later = stamp(datetime.now(UTC) + timedelta(hours=1))
    soon = stamp(datetime.now(UTC) + timedelta(seconds=30))
    backlog = [replace(transfer(n, account=f"payee-{n % 3}", amount=1000 + n),
                       expires_at=later) for n in range(1, 601)]
    for n in range(3):
        bank.add_account(f"payee-{n}")
    for t in backlog:
        bank.add(t)
    near = replace(transfer(900), expires_at=soon)
    bank.add(near)
    bank.refuse_credit.add(backlog[7].transfer_id)

    def rule(t: Transfer) -> Verdict:
        return Verdict.rejected("over the limit") if t.amount.minor == 1013 else Verdict.accepted()

    handled = await listener(bank, rule=rule).process_pending()
    assert [len(b) for b in bank.batches] == [500, 100]  # one in flight at a time, 500 max
    assert near.transfer_id not in {tid for b in bank.batches for tid in b}
    actions = {h.transfer.transfer_id: h.action for h in handled}
    assert actions[near.transfer_id] == "accepted"  # decided alone
    assert actions[backlog[12].transfer_id] == "rejected"  # the rule still decides each
    # the payee refused the credit inside the batch: the single path accepts it (the fake's
    # single accept does not refuse)
    assert actions[backlog[7].transfer_id] == "accepted"
    assert sum(1 for a in actions.values() if a == "accepted") == 600
    assert len(bank.decided) == 601  # each transfer decided once
    # a batch reads no payee account (the contract checks each accept's): only the 2
    # transfers decided alone had theirs read
    assert bank.account_reads == 2


async def test_a_converted_transfer_is_credited_in_its_quotes_currency_or_rejected(
    bank: FakeBank,
) -> None:
    """A transfer paid with this bank's FX quote is accepted into an account in the quote's
    currency (not the payer's); one whose quote the contract refuses at accept (altered,
    used, the accept window closed) is rejected, so its payer bank refunds at once; an
    ordinary transfer refused so is left for the next pass, as before."""
    bank.add_account("cnh-1", currency="CNH")
    converted = replace(transfer(1, account="cnh-1"), quote_id="q" * 22,
                        payee_amount=Money(7234, "CNH", 2))
    bank.add(converted)
    bank.add(replace(converted, transfer_id="t002".ljust(24, "x"), payee_account="payee-1"))
    handled = await listener(bank).process_pending()
    actions = {h.transfer.transfer_id[:4]: (h.action, h.reason) for h in handled}
    assert actions == {"t001": ("accepted", ""),
                       "t002": ("rejected", "payee account is in another currency")}
    bank.add(replace(converted, transfer_id="t003".ljust(24, "x")))
    bank.add(transfer(4))
    bank.accept_error = InvalidArgument("the transfer's payee_amount is not its quote's")
    handled = await listener(bank).process_pending()
    actions = {h.transfer.transfer_id[:4]: (h.action, h.reason) for h in handled}
    assert actions == {"t003": ("rejected", "quote refused (INVALID_ARGUMENT)"),
                       "t004": ("failed", "InvalidArgument")}
    bank.add(replace(converted, transfer_id="t005".ljust(24, "x")))
    bank.accept_error = Expired("the quote's accept window has closed")
    (last,) = [h for h in await listener(bank).process_pending()
               if h.transfer.transfer_id.startswith("t005")]
    assert (last.action, last.reason) == ("rejected", "quote refused (EXPIRED)")


# --- the namespace layout: events of every bank's namespace ----------------------------------


def layout_bank() -> FakeBank:
    bank = FakeBank()
    bank.profile = SimpleNamespace(chaincode="dtoken-usbank", chaincode_base="dtoken",
                                   has_namespaces=True)
    return bank


def in_namespace(namespace: str, block: int, tx: str, name: str,
                 payload: bytes) -> fabgateway.ChaincodeEvent:
    return fabgateway.ChaincodeEvent(block, tx, namespace, name, payload)


async def test_on_the_single_namespace_the_listener_follows_the_chaincode_events() -> None:
    bank = FakeBank()
    stop = asyncio.Event()
    task = asyncio.create_task(listener(bank).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    assert bank.network.opened == [("chaincode_events", "dtoken")]
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_under_the_layout_a_payers_event_in_its_own_namespace_wakes_the_payee() -> None:
    """The payer's TransferPending is in the payer's namespace (dtoken-hkbank): the listener
    reads one block stream for every organization's namespace, with no rescan to wait for."""
    bank = layout_bank()
    checkpointer = fabgateway.InMemoryCheckpointer()
    stop = asyncio.Event()
    task = asyncio.create_task(listener(bank, checkpointer=checkpointer,
                                        rescan_interval=600).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    ((kind, follows),) = bank.network.opened
    assert kind == "block_chaincode_events"
    assert [follows(n) for n in ("dtoken-hkbank", "dtoken-usbank", "dtoken-joinedlater",
                                 "dtoken-regulator")] == [True] * 4
    assert [follows(n) for n in ("dtoken", "dtoken-pairs-usbank-0", "other-hkbank",
                                 "dtokenx-hkbank", "dtoken-")] == [False] * 5
    bank.add(transfer(1))
    await bank.network.queue.put(in_namespace(
        "dtoken-hkbank", 8, "tx-p", "TransferPending", b'{"payee_banks": ["usbank"]}'))
    await run_until(task, lambda: len(bank.decided) == 1)
    await run_until(task, lambda: checkpointer.transaction_id == "tx-p")
    assert checkpointer.block_number == 8
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_forged_and_garbage_events_of_a_dishonest_bank_decide_nothing_and_crash_nothing(
) -> None:
    """A dishonest bank's peer can put any event in its own namespace (dtoken-evilbank).
    One naming this bank only makes it read its own pending transfers (none: nothing is
    decided); one of any other shape asks for nothing and breaks nothing; the listener then
    still decides a real transfer on a real event."""
    bank = layout_bank()
    checkpointer = fabgateway.InMemoryCheckpointer()
    stop = asyncio.Event()
    task = asyncio.create_task(listener(bank, checkpointer=checkpointer,
                                        rescan_interval=600).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    garbage = [b"\xff\xfe not json", b"[1, 2]", b"[" * 100_000, b'{"payee_banks": 5}',
               b'{"payee_banks": {"usbank": 1}}', b'{"payer_bank": ["usbank"]}', b"", b"null"]
    for n, payload in enumerate(garbage):
        for name in ("TransferPending", "TransferDecided"):
            await bank.network.queue.put(
                in_namespace("dtoken-evilbank", 20 + n, f"g{n}{name}", name, payload))
    await run_until(task, lambda: checkpointer.transaction_id == f"g{len(garbage) - 1}"
                                                                 "TransferDecided")
    assert bank.incoming_calls == 1  # none of them was taken for a pending transfer
    await bank.network.queue.put(in_namespace(
        "dtoken-evilbank", 40, "forged", "TransferPending", b'{"payee_banks": ["usbank"]}'))
    await run_until(task, lambda: bank.incoming_calls == 2)  # a read of its own: no decision
    await run_until(task, lambda: checkpointer.transaction_id == "forged")
    assert bank.decided == []
    assert not task.done()
    bank.add(transfer(1))
    await bank.network.queue.put(in_namespace(
        "dtoken-hkbank", 41, "real", "TransferPending", b'{"payee_banks": ["usbank"]}'))
    await run_until(task, lambda: len(bank.decided) == 1)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_an_events_time_reads_that_transactions_transfers_not_the_window() -> None:
    """A ``TransferPending`` event says when its transaction's transfers were created: the
    listener reads those (``since`` = ``until``), not every transfer of the last
    ``lookback`` seconds again (which made a burst quadratic). An event without a usable
    time, or events spanning more than ``lookback``, make it read the window, as before."""
    bank = layout_bank()
    stop = asyncio.Event()
    task = asyncio.create_task(listener(bank, rescan_interval=600).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)  # the first, full pass
    now = datetime.now(UTC)
    at = format_timestamp(now)
    bank.add(transfer(1, created_at=at))
    bank.add(transfer(2, created_at=format_timestamp(now + timedelta(seconds=1))))  # another
    await bank.network.queue.put(in_namespace(
        "dtoken-hkbank", 8, "tx-a", "TransferPending",
        json.dumps({"payee_banks": ["usbank"], "at": at}).encode()))
    await run_until(task, lambda: bank.incoming_calls == 2)
    assert (bank.since[-1], bank.until[-1]) == (parse_timestamp(at), parse_timestamp(at))
    await run_until(task, lambda: len(bank.decided) == 1)
    assert bank.decided[0][1] == transfer(1).transfer_id
    for n, payload in enumerate((
            {"payee_banks": ["usbank"]},  # no time (an older contract): the window
            {"payee_banks": ["usbank"], "at": "yesterday"},  # not a time: the window
    )):
        await bank.network.queue.put(in_namespace(
            "dtoken-hkbank", 9 + n, f"tx-{n}", "TransferPending", json.dumps(payload).encode()))
        await run_until(task, lambda n=n: bank.incoming_calls == 3 + n)
        assert bank.until[-1] is None
    assert {d[1] for d in bank.decided} == {transfer(1).transfer_id, transfer(2).transfer_id}
    # two events a day apart in one batch (a dishonest bank's, say): each moment is read
    # alone, never the day between them (nor the minute: a forged time beside an honest one
    # must not make the pass read every transfer in between, decided or not)
    calls = bank.incoming_calls
    day_ago = format_timestamp(now - timedelta(days=1))
    for n, when in enumerate((day_ago, at)):
        await bank.network.queue.put(in_namespace(
            "dtoken-evilbank", 20, f"e{n}", "TransferPending",
            json.dumps({"payee_banks": ["usbank"], "at": when}).encode()))
    await run_until(task, lambda: bank.incoming_calls == calls + 2)
    moments = [parse_timestamp(day_ago), parse_timestamp(at)]
    assert sorted(zip(bank.since[-2:], bank.until[-2:], strict=True)) == [
        (m, m) for m in moments]
    # more moments than any batch of transactions has: one read of the window instead
    for n in range(_MAX_SPANS + 1):
        await bank.network.queue.put(in_namespace(
            "dtoken-evilbank", 30, f"f{n}", "TransferPending", json.dumps({
                "payee_banks": ["usbank"],
                "at": format_timestamp(now - timedelta(seconds=5 * n))}).encode()))
    await run_until(task, lambda: bank.incoming_calls == calls + 3)
    assert bank.until[-1] is None
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_a_failed_block_stream_is_reopened_from_the_checkpoint() -> None:
    bank = layout_bank()
    checkpointer = fabgateway.InMemoryCheckpointer()
    checkpointer.checkpoint_transaction(3, "tx-3")
    stop = asyncio.Event()
    task = asyncio.create_task(
        listener(bank, checkpointer=checkpointer, reconnect_delay=0.01).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    await bank.network.queue.put(
        fabgateway.BlockEventsError("deliver broke", code=grpc.StatusCode.UNAVAILABLE))
    await run_until(task, lambda: len(bank.network.starts) == 2)
    await bank.network.queue.put(fabgateway.MalformedMessageError("block 4: not a block"))
    await run_until(task, lambda: len(bank.network.starts) == 3)
    assert bank.network.starts == [(3, "tx-3")] * 3
    stop.set()
    await asyncio.wait_for(task, 2)


# --- when the listener passes without an event: retries and rescans by the clock ---------------


async def test_a_failed_decision_is_retried_soon_not_at_the_next_rescan(bank: FakeBank) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(
        listener(bank, rescan_interval=600, retry_delay=0.05).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    bank.add(transfer(1))
    bank.accept_error = NetworkFault("the peer timed out")
    await bank.network.queue.put(pending_for("usbank", 6, "tx-a"))
    await run_until(task, lambda: bank.incoming_calls == 2)
    assert bank.decided == []
    bank.accept_error = None
    await run_until(task, lambda: len(bank.decided) == 1)  # no event came, rescans are 600 s
    stop.set()
    await asyncio.wait_for(task, 2)


def test_retries_back_off_up_to_the_rescan_interval() -> None:
    one = listener(FakeBank(), rescan_interval=30, retry_delay=2)
    assert [one._next_wait(True) for _ in range(6)] == [2, 4, 8, 16, 30, 30]
    assert one._next_wait(False) == 30  # a pass without failure ends the streak
    assert one._next_wait(True) == 2


async def test_a_busy_channel_does_not_starve_the_rescan(bank: FakeBank) -> None:
    """Under the layout every bank's events reach every listener; events for other banks
    arriving more often than the rescan interval must not postpone the rescan for ever."""
    stop = asyncio.Event()
    task = asyncio.create_task(listener(bank, rescan_interval=0.3).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    bank.add(transfer(1))  # its event was lost: only a rescan finds it
    for n in range(60):
        await bank.network.queue.put(event(10 + n, f"o{n}", "TransferPending",
                                           {"payee_banks": ["cnbank"]}))
        await asyncio.sleep(0.1)  # each its own batch (the batch window is 0.05 s)
        if bank.decided:
            break
    assert len(bank.decided) == 1
    stop.set()
    await asyncio.wait_for(task, 2)


# --- passes in flight: reading beside deciding --------------------------------------------------


class SlowBank(BatchingBank):
    """A batching bank whose window reads can be held (a rescan over minutes of transfers
    under load) and whose batch decisions take a while; it records how many decisions were
    ever in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_windows = False
        self.window_waiting = False
        self.release = asyncio.Event()
        self.deciding = 0
        self.most_deciding = 0
        self.decide_seconds = 0.05

    async def incoming(self, *, since: datetime | None = None,
                       until: datetime | None = None) -> list[Transfer]:
        listed = await super().incoming(since=since, until=until)
        if self.hold_windows and until is None:
            self.window_waiting = True
            await self.release.wait()
            self.window_waiting = False
        return listed

    async def decide(self, payer_bank: str, decisions: Any) -> Any:
        self.deciding += 1
        self.most_deciding = max(self.most_deciding, self.deciding)
        try:
            await asyncio.sleep(self.decide_seconds)
            return await super().decide(payer_bank, decisions)
        finally:
            self.deciding -= 1


def later(n: int, created: datetime) -> Transfer:
    """Transfer ``n`` created at ``created``, expiring in an hour (decided in a batch)."""
    return replace(transfer(n, created_at=stamp(created)),
                   expires_at=stamp(datetime.now(UTC) + timedelta(hours=1)))


def pending_at(block: int, tx: str, at: datetime) -> fabgateway.ChaincodeEvent:
    return event(block, tx, "TransferPending",
                 {"payee_banks": ["usbank"], "at": stamp(at)})


async def test_a_slow_rescan_does_not_hold_up_the_events_passes() -> None:
    """Under load a rescan reads minutes of transfers and takes seconds: the passes of the
    events arriving meanwhile read and decide their own transactions' transfers at once."""
    bank = SlowBank()
    stop = asyncio.Event()
    task = asyncio.create_task(listener(bank, rescan_interval=0.1).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)  # the first, full pass
    bank.hold_windows = True
    await run_until(task, lambda: bank.window_waiting)  # a rescan, held
    now = datetime.now(UTC)
    bank.add(later(1, now))
    await bank.network.queue.put(pending_at(5, "tx-a", now))
    await run_until(task, lambda: len(bank.decided) == 1)
    assert bank.window_waiting  # decided while the rescan still reads
    bank.hold_windows = False
    bank.release.set()
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_passes_read_side_by_side_but_decide_one_at_a_time_each_transfer_once() -> None:
    """Two batches crediting the same payee account in flight would invalidate one another:
    a pass reads while the previous one decides, and decides after it. A transfer that a
    later pass read before the earlier pass's decision committed is not sent again."""
    bank = SlowBank()
    bank.decide_seconds = 0.2  # the next events arrive while a decision is in flight
    handled: list[Handled] = []
    checkpointer = fabgateway.InMemoryCheckpointer()
    stop = asyncio.Event()
    task = asyncio.create_task(listener(
        bank, rescan_interval=600, on_handled=handled.append,
        checkpointer=checkpointer).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    now = datetime.now(UTC)
    for n in range(1, 7):
        bank.add(later(n, now + timedelta(milliseconds=n - 1)))
    # a batch of two events a pass: the first transfer's time and the n-th's, so every pass
    # reads the transfers the earlier passes are deciding too
    for n in range(1, 7):
        await bank.network.queue.put(pending_at(10 + n, f"tx-{n}a", now))
        await bank.network.queue.put(
            pending_at(10 + n, f"tx-{n}b", now + timedelta(milliseconds=n)))
        await asyncio.sleep(0.06)
    await run_until(task, lambda: len(bank.decided) == 6)
    await run_until(task, lambda: checkpointer.transaction_id == "tx-6b")
    assert bank.most_deciding == 1
    assert sorted(d[1] for d in bank.decided) == sorted(later(n, now).transfer_id
                                                        for n in range(1, 7))
    assert [h.action for h in handled] == ["accepted"] * 6  # none sent twice, none skipped
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_a_locked_leg_skipped_without_its_preimage_is_claimed_once_it_is_known() -> None:
    """Only what the listener decided is remembered: a hash-locked leg left pending because
    no preimage was known yet is claimed by a later pass, once the preimage is known."""
    bank = FakeBank()
    known: dict[str, str] = {}
    claims: list[str] = []

    async def claim(transfer_id: str, payer_bank: str, preimage: str) -> Any:
        claims.append(transfer_id)
        return bank._decide(transfer_id, TransferStatus.ACCEPTED, "claim", preimage)

    bank.claim = claim  # type: ignore[attr-defined]

    async def preimages(t: Transfer) -> str | None:
        return known.get(t.transfer_id)

    leg = replace(transfer(1), lock="ab" * 32)
    bank.add(leg)
    li = listener(bank, preimages=preimages)
    first = await li.process_pending(full=True)
    assert [(h.action, h.reason) for h in first] == [("skipped", "locked: no preimage known")]
    known[leg.transfer_id] = "cd" * 32
    second = await li.process_pending(full=True)
    assert [h.action for h in second] == ["accepted"]
    assert claims == [leg.transfer_id]


async def test_a_rescan_running_past_its_time_makes_the_loop_wait_not_spin() -> None:
    """While a rescan still reads when the next one falls due (a slow peer, a failed pass
    asking for a retry), the loop polls every batch window; it used to poll with a timeout
    of 0, thousands of times a second, until the rescan ended."""
    bank = SlowBank()
    stop = asyncio.Event()
    li = listener(bank, rescan_interval=0.2, retry_delay=0.05)
    polls: list[float] = []
    read = li._next_batch

    async def counted(stream: Any, stop_: asyncio.Event, seconds: float) -> Any:
        polls.append(seconds)
        return await read(stream, stop_, seconds)

    li._next_batch = counted  # type: ignore[method-assign]
    task = asyncio.create_task(li.run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    bank.hold_windows = True
    await run_until(task, lambda: bank.window_waiting)  # the rescan, held
    await asyncio.sleep(0.3)  # its successor's time passes while it still reads
    polls.clear()
    await asyncio.sleep(0.5)
    bank.hold_windows = False
    bank.release.set()
    stop.set()
    await asyncio.wait_for(task, 2)
    assert 0 < len(polls) <= 20, polls[:5]
    assert min(polls) > 0


async def test_a_retry_asked_while_a_rescan_reads_is_kept_when_it_ends() -> None:
    """A pass that fails while the rescan reads asks for a retry in ``retry_delay``; the
    rescan's end must not push that retry back to a whole ``rescan_interval``."""
    bank = SlowBank()
    stop = asyncio.Event()
    li = listener(bank, rescan_interval=0.2, retry_delay=0.05)
    task = asyncio.create_task(li.run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    bank.hold_windows = True
    await run_until(task, lambda: bank.window_waiting)  # the rescan has listed, and waits
    li._rescan_interval = 600  # no rescan by the clock from now on
    now = datetime.now(UTC)
    leg = later(1, now)
    bank.add(leg)
    bank.refuse_credit.add(leg.transfer_id)  # the batch refuses it: decided alone ...
    bank.accept_error = NetworkFault("the peer timed out")  # ... where the accept fails
    await bank.network.queue.put(pending_at(5, "tx-a", now))
    await run_until(task, lambda: len(bank.forced) == 1)
    bank.accept_error = None
    bank.hold_windows = False
    bank.release.set()  # the rescan ends, without a failure of its own
    await run_until(task, lambda: len(bank.decided) == 1, seconds=2)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_an_event_that_asks_for_nothing_takes_no_pipeline_slot() -> None:
    """Under the layout every bank's events reach every listener: an event for another bank
    must not keep the next pass from reading while the previous one decides."""
    bank = SlowBank()
    bank.decide_seconds = 1.0
    stop = asyncio.Event()
    task = asyncio.create_task(listener(bank, rescan_interval=600).run(stop=stop))
    await run_until(task, lambda: bank.incoming_calls == 1)
    now = datetime.now(UTC)
    bank.add(later(1, now))
    bank.add(later(2, now + timedelta(seconds=5)))
    await bank.network.queue.put(pending_at(5, "tx-a", now))
    await run_until(task, lambda: bank.deciding == 1)  # the first pass decides (1 s)
    await bank.network.queue.put(event(6, "o", "TransferPending", {"payee_banks": ["cnbank"]}))
    await asyncio.sleep(0.1)
    await bank.network.queue.put(pending_at(7, "tx-b", now + timedelta(seconds=5)))
    await run_until(task, lambda: bank.incoming_calls == 3)  # the next pass reads ...
    assert bank.decided == []  # ... while the first still decides
    await run_until(task, lambda: len(bank.decided) == 2)
    stop.set()
    await asyncio.wait_for(task, 5)
