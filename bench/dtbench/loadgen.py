"""The load generator: closed loop at a concurrency, open loop at a target rate.

An *operation* is a coroutine function ``op(slot, n)`` that performs one unit of work (a
transaction submitted and committed, or a cross-bank payment with both phases committed)
and raises on failure. ``slot`` names the resources the operation may touch (its accounts):
no two operations in flight ever hold the same slot, so two in-flight operations never
touch the same key and any MVCC conflict is a real one (DESIGN §9: unrelated payments must
not conflict).

* :func:`closed_loop`: ``concurrency`` workers, worker *i* owns slot *i* and runs one
  operation after another.
* :func:`open_loop`: operations start at a fixed rate whatever the latency; each takes a
  free slot from a pool (waiting for one counts in its latency, measured from its scheduled
  start, so a slow system shows as latency rather than as a lower offered load).

Only operations that *complete* inside the measurement window count (after ``warmup``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from fabgateway import (
    CommitError,
    CommitStatusError,
    EndorseError,
    GatewayError,
    SubmitError,
)

__all__ = [
    "Operation",
    "RunResult",
    "classify",
    "closed_loop",
    "committed_tx",
    "open_loop",
    "percentile",
    "summarize",
]

Operation = Callable[[int, int], Awaitable[str | None]]
"""``op(slot, n)``: one operation; returns an optional label (e.g. the kind in a mix)."""

MVCC_CODES = ("MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT")


@dataclass
class RunResult:
    """What one measurement window produced."""

    elapsed_s: float
    latencies_s: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    started: int = 0
    offered_rate: float | None = None
    concurrency: int | None = None
    dropped: int = 0

    @property
    def completed(self) -> int:
        return len(self.latencies_s)


def classify(exc: BaseException) -> str:
    """A short failure kind: ``mvcc``, ``endorse_<CODE>``, ``commit_<CODE>``, ``timeout`` ..."""
    if isinstance(exc, CommitError):
        return "mvcc" if exc.code_name in MVCC_CODES else f"commit_{exc.code_name}"
    if isinstance(exc, EndorseError):
        message = exc.chaincode_message or ""
        code = message.split(":", 1)[0] if ":" in message else ""
        if code.isupper():
            return f"endorse_{code}"
        text = str(exc)
        if "do not match" in text:
            return "endorse_mismatch"
        return f"endorse_{_grpc_name(exc.code)}"
    if isinstance(exc, SubmitError):
        return f"submit_{_grpc_name(exc.code)}"
    if isinstance(exc, CommitStatusError):
        return f"commit_status_{_grpc_name(exc.code)}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, GatewayError):
        return type(exc).__name__
    return f"other_{type(exc).__name__}"


def _grpc_name(code: Any) -> str:
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


Hook = Callable[[], None]


class _Window:
    """The measurement window: opens after warmup, closes after duration."""

    def __init__(self, on_open: Hook | None, on_close: Hook | None) -> None:
        self.open = False
        self.stopping = False
        self.result = RunResult(elapsed_s=0.0)
        self._on_open = on_open
        self._on_close = on_close

    def record(self, started: float, label: str | None) -> None:
        if self.open:
            self.result.latencies_s.append(time.monotonic() - started)
            self.result.labels.append(label or "")

    def fail(self, exc: BaseException) -> None:
        if self.open:
            self.result.failures[classify(exc)] += 1

    async def run(self, warmup: float, duration: float) -> None:
        await asyncio.sleep(warmup)
        if self._on_open is not None:
            self._on_open()
        self.open = True
        t0 = time.monotonic()
        await asyncio.sleep(duration)
        self.open = False
        self.result.elapsed_s = time.monotonic() - t0
        if self._on_close is not None:
            self._on_close()
        self.stopping = True


async def closed_loop(
    op: Operation,
    *,
    concurrency: int,
    duration: float,
    warmup: float = 2.0,
    on_open: Hook | None = None,
    on_close: Hook | None = None,
) -> RunResult:
    """``concurrency`` workers, each running ``op(worker, n)`` back to back.

    ``on_open`` and ``on_close`` run when the measurement window opens and closes.
    """
    window = _Window(on_open, on_close)
    window.result.concurrency = concurrency

    async def worker(slot: int) -> None:
        n = 0
        while not window.stopping:
            started = time.monotonic()
            try:
                label = await op(slot, n)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                window.fail(exc)
                await asyncio.sleep(0.05)  # do not spin on a persistent failure
            else:
                window.record(started, label)
            n += 1

    workers = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    try:
        await window.run(warmup, duration)
        await _drain(workers, grace=30.0)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return window.result


async def open_loop(
    op: Operation,
    *,
    rate: float,
    slots: int,
    duration: float,
    warmup: float = 2.0,
    max_in_flight: int = 2000,
    on_open: Hook | None = None,
    on_close: Hook | None = None,
) -> RunResult:
    """Start ``op`` ``rate`` times a second on a free slot, whatever the latency."""
    window = _Window(on_open, on_close)
    window.result.offered_rate = rate
    free: asyncio.Queue[int] = asyncio.Queue()
    for slot in range(slots):
        free.put_nowait(slot)
    tasks: set[asyncio.Task[None]] = set()
    counters = [0] * slots

    async def one(scheduled: float) -> None:
        slot = await free.get()
        n = counters[slot]
        counters[slot] += 1
        try:
            label = await op(slot, n)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            window.fail(exc)
        else:
            window.record(scheduled, label)
        finally:
            free.put_nowait(slot)

    async def arrivals() -> None:
        interval = 1.0 / rate
        start = time.monotonic()
        k = 0
        while not window.stopping:
            scheduled = start + k * interval
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            k += 1
            if len(tasks) >= max_in_flight:
                if window.open:
                    window.result.dropped += 1
                continue
            if window.open:
                window.result.started += 1
            task = asyncio.create_task(one(scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    source = asyncio.create_task(arrivals())
    try:
        await window.run(warmup, duration)
        await _drain([source, *tasks], grace=30.0)
    finally:
        source.cancel()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(source, *tasks, return_exceptions=True)
    return window.result


async def _drain(tasks: Sequence[asyncio.Task[Any]], grace: float) -> None:
    """Let in-flight operations finish (they no longer count) so the next run starts clean."""
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=grace)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def committed_tx(
    result: RunResult, tx_per_op: float = 1.0, tx_per_label: Mapping[str, float] | None = None
) -> float:
    """Transactions committed by the completed operations (a payment is two)."""
    if not tx_per_label:
        return result.completed * tx_per_op
    return sum(tx_per_label.get(label, tx_per_op) for label in result.labels)


def summarize(
    result: RunResult,
    *,
    tx_per_op: float = 1.0,
    tx_per_label: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Throughput, latency percentiles (ms) and failures of one run, JSON-ready."""
    lat = result.latencies_s
    elapsed = result.elapsed_s or 1e-9
    committed = committed_tx(result, tx_per_op, tx_per_label)

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000.0, 2)

    failures = dict(sorted(result.failures.items()))
    out: dict[str, Any] = {
        "elapsed_s": round(result.elapsed_s, 3),
        "completed": result.completed,
        "ops_per_s": round(result.completed / elapsed, 2),
        "committed_tx": committed,
        "tx_per_s": round(committed / elapsed, 2),
        "latency_ms": {
            "p50": ms(percentile(lat, 50)),
            "p95": ms(percentile(lat, 95)),
            "p99": ms(percentile(lat, 99)),
            "max": ms(max(lat) if lat else None),
            "mean": ms(sum(lat) / len(lat) if lat else None),
        },
        "failures": failures,
        "mvcc_conflicts": int(result.failures.get("mvcc", 0)),
        "other_failures": int(sum(v for k, v in result.failures.items() if k != "mvcc")),
    }
    if result.concurrency is not None:
        out["concurrency"] = result.concurrency
    if result.offered_rate is not None:
        out["offered_rate"] = result.offered_rate
        out["dropped"] = result.dropped
    labels = {label for label in result.labels if label}
    if labels:
        out["by_label"] = {
            label: {
                "completed": sum(1 for lb in result.labels if lb == label),
                "p50_ms": ms(
                    percentile(
                        [v for v, lb in zip(lat, result.labels, strict=True) if lb == label], 50
                    )
                ),
                "p99_ms": ms(
                    percentile(
                        [v for v, lb in zip(lat, result.labels, strict=True) if lb == label], 99
                    )
                ),
            }
            for label in sorted(labels)
        }
    return out
