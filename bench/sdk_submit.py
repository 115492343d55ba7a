"""Submit latency and throughput of the bank SDK from one client process.

    .venv/bin/python bench/sdk_submit.py --base-port 7500          # own network, torn down
    .venv/bin/python bench/sdk_submit.py --state-dir STATE          # a network already up

Measures, with one Python process and one gRPC channel per bank:

* latency of one write at a time (``mint``: endorse, submit, commit status), p50/p95/max;
* throughput of concurrent writes that do not conflict (mints to distinct accounts, and
  internal transfers between distinct pairs of accounts) at a given concurrency;
* throughput of concurrent cross-bank initiates (distinct payer accounts);
* end-to-end latency of a cross-bank payment: initiate at the payer bank until the payee
  bank's listener has accepted it (two commits and an event).

Prints a JSON record and a Markdown table (the one in docs/sdk.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import fabgateway
import yaml
from consortium import config as config_mod
from consortium.network import Network
from dtoken.bank import Bank
from dtoken.listener import Handled, IncomingListener

REPO_ROOT = Path(__file__).resolve().parents[1]  # the bench runs from the checkout
RUN = secrets.token_hex(3)


def ref(tag: str) -> str:
    return f"bench-{tag}-{RUN}-{secrets.token_hex(4)}"


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


RETRIED: list[int] = []


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    result = await call()
    receipt = getattr(result, "receipt", result)
    if getattr(receipt, "attempt", 0):
        RETRIED.append(receipt.attempt)
    return time.perf_counter() - started


async def throughput(calls: list[Callable[[], Awaitable[Any]]], concurrency: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            latencies.append(await timed(call))

    RETRIED.clear()
    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    elapsed = time.perf_counter() - started
    return {
        "tx": len(calls),
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "tx_per_s": round(len(calls) / elapsed, 1),
        "retried": len(RETRIED),
        **quantiles(latencies),
    }


async def accounts(bank: Bank, n: int, amount: int) -> list[str]:
    opened = await asyncio.gather(
        *(bank.open_account("USD", f"B{i}", reference=ref("open")) for i in range(n))
    )
    ids = [o.account_id for o in opened]
    if amount:
        await asyncio.gather(*(bank.mint(a, amount, reference=ref("fund")) for a in ids))
    return ids


async def measure(state: Path, sequential: int, total: int, concurrency: int) -> dict[str, Any]:
    profiles = state / "profiles"
    async with (
        Bank.connect(profiles / "hkbank.json", identity="minter") as hk,
        Bank.connect(profiles / "usbank.json") as us,
    ):
        record: dict[str, Any] = {}
        (target,) = await accounts(hk, 1, 0)
        await hk.mint(target, 1, reference=ref("warm"))  # warm up the channel and the peer
        samples = [
            await timed(lambda: hk.mint(target, 1, reference=ref("seq"))) for _ in range(sequential)
        ]
        record["sequential_mint"] = quantiles(samples)

        minted = await accounts(hk, total, 0)
        record["concurrent_mint"] = await throughput(
            [partial(hk.mint, a, 100, reference=ref("mint")) for a in minted], concurrency
        )

        pairs = await accounts(hk, 2 * total, 1_000)
        record["concurrent_internal_transfer"] = await throughput(
            [
                partial(
                    hk.transfer, pairs[2 * i], "hkbank", pairs[2 * i + 1], 10, reference=ref("xfer")
                )
                for i in range(total)
            ],
            concurrency,
        )

        (payee,) = await accounts(us, 1, 0)
        payers = await accounts(hk, total, 1_000)
        record["concurrent_cross_bank_initiate"] = await throughput(
            [partial(hk.transfer, p, "usbank", payee, 10, reference=ref("init")) for p in payers],
            concurrency,
        )
        accepted: dict[str, asyncio.Event] = {}

        def handled(h: Handled) -> None:
            if h.action == "accepted":
                accepted.setdefault(h.transfer.transfer_id, asyncio.Event()).set()

        listener = IncomingListener(
            us, checkpointer=fabgateway.InMemoryCheckpointer(), on_handled=handled
        )
        await listener.process_pending()  # accept the initiates above before timing
        stop = asyncio.Event()
        task = asyncio.create_task(listener.run(stop=stop))
        await asyncio.sleep(0.5)
        end_to_end = []
        (payer,) = await accounts(hk, 1, 100_000)
        for _ in range(sequential // 2):
            started = time.perf_counter()
            sent = await hk.transfer(payer, "usbank", payee, 10, reference=ref("e2e"))
            assert sent.transfer_id is not None
            # Complete when the payee bank's accept has committed (on the payee's peer).
            await asyncio.wait_for(
                accepted.setdefault(sent.transfer_id, asyncio.Event()).wait(), 30
            )
            end_to_end.append(time.perf_counter() - started)
        stop.set()
        await task
        record["cross_bank_end_to_end"] = quantiles(end_to_end)
        return record


def table(record: dict[str, Any]) -> str:
    rows = [
        "| measurement | n | concurrency | tx/s | p50 ms | p95 ms | max ms | retried |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in record["results"].items():
        rows.append(
            f"| {name.replace('_', ' ')} | {m.get('tx', m['n'])} | "
            f"{m.get('concurrency', 1)} | {m.get('tx_per_s', '')} | {m['p50_ms']} | "
            f"{m['p95_ms']} | {m['max_ms']} | {m.get('retried', '')} |"
        )
    return "\n".join(rows)


def up(base_port: int, root: Path) -> Network:
    data = yaml.safe_load((REPO_ROOT / "config" / "consortium.yaml").read_text())
    data.update(name="dtokenbench", base_port=base_port)
    config = root / "consortium.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    network = Network(config_mod.load(config), root / "state", progress=lambda _m: None)
    network.up()
    return network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--state-dir", type=Path, help="a network that is up")
    where.add_argument("--base-port", type=int, help="bring a network up on these ports")
    parser.add_argument("--sequential", type=int, default=40)
    parser.add_argument("--total", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    network = None
    with tempfile.TemporaryDirectory(prefix="sdkbench-") as tmp:
        try:
            if args.base_port is not None:
                network = up(args.base_port, Path(tmp))
                state = network.state_dir
            else:
                state = args.state_dir
            results = asyncio.run(measure(state, args.sequential, args.total, args.concurrency))
        finally:
            if network is not None:
                network.down(purge=True)
    record = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_1m_after": os.getloadavg()[0],
        },
        "args": vars(args) | {"state_dir": str(args.state_dir)},
        "results": results,
    }
    print(json.dumps(record, indent=2, default=str))
    print(table(record))


if __name__ == "__main__":
    main()
