"""The ``marketplace`` section (issue 14): one payer account paying 1,000 exporters.

Shape: one payer account at the first bank; 1,000 exporter accounts, half at each of two
other banks; payments offered **open-loop** at increasing rates through plain
``Bank.transfer()`` calls from **two processes** (each offers half the rate), the payee banks'
:class:`~dtoken.listener.IncomingListener` accepting. Per point it reports:

* committed payments/s end to end: payments credited to the exporter (accepted) divided by
  the time from the first call to the last credit;
* p50/p99 from the call to the payee's credit (the listener's accept committed);
* permanent failures (a contract refusal or a commit that retrying cannot cure) and retryable
  faults (``NetworkFault``: the paying process calls again with the same reference, once).

The same is measured for the one-payment-per-transaction baseline (``Bank.coalesce =
False``, each payment its own ``initiate_transfer``) in the same run, and a burst of 5,000
payments offered at once. Then again with **balance lanes** (issue 14 item 3): a second payer
account with two lanes, each paying process on its own lane (``DTOKEN_LANE``), so the two
processes' batches no longer contend for one balance key. Figures are printed and recorded,
never asserted.

``python -m dtbench.marketplace pay ...`` is the paying process (internal).

Must not: assert on timings; use anything but the SDK's public calls to pay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fabgateway
from dtoken.bank import Bank
from dtoken.errors import ContractError, NetworkFault
from dtoken.listener import Handled, IncomingListener

from dtbench.cluster import LAYOUTS, Cluster

__all__ = ["MarketplaceSettings", "run_marketplace"]

Log = Callable[[str], None]
AMOUNT = 100  # minor units per payment


class MarketplaceSettings:
    """Rates, durations and sizes of the section."""

    def __init__(
        self,
        *,
        rates: Sequence[float] = (50.0, 100.0, 200.0, 400.0),
        baseline_rates: Sequence[float] = (5.0, 10.0),
        duration: float = 10.0,
        exporters: int = 1_000,
        burst: int = 5_000,
        drain_timeout: float = 60.0,
        lane_rates: Sequence[float] | None = None,
        one_key: bool = True,
    ) -> None:
        self.rates = tuple(rates)
        self.lane_rates = tuple(rates if lane_rates is None else lane_rates)
        """Rates offered to the account with two lanes (empty: no lane points)."""
        self.one_key = one_key
        """Whether the coalesced points on the one-key account run too."""
        self.baseline_rates = tuple(baseline_rates)
        self.duration = duration
        self.exporters = exporters
        self.burst = burst
        self.drain_timeout = drain_timeout


# --------------------------------------------------------------------------- the payer process


async def _pay(profile: Path, payer: str, exporters: list[list[str]], rate: float,
               count: int, tag: str, coalesce: bool) -> tuple[list[dict[str, Any]], int, int]:
    """Offer ``count`` payments at ``rate``/s (0: all at once): a row each, how many payer
    transactions carried them and how many lane rebalances were sent."""
    async with Bank.connect(profile) as bank:
        bank.coalesce = coalesce
        started = time.time() + 0.5

        async def one(i: int) -> dict[str, Any]:
            if rate > 0:
                await asyncio.sleep(max(started + i / rate - time.time(), 0.0))
            payee_bank, account = exporters[i % len(exporters)]
            reference = f"{tag}-{i}"
            called = time.time()
            row: dict[str, Any] = {"ref": reference, "called": called}
            for attempt in range(2):
                try:
                    payment = await bank.transfer(payer, payee_bank, account, AMOUNT,
                                                  reference=reference)
                except ContractError as refusal:
                    row["permanent"] = refusal.code
                    break
                except NetworkFault as fault:
                    row["faults"] = row.get("faults", 0) + 1
                    if attempt == 1:
                        row["unfinished"] = type(fault).__name__
                    continue
                except Exception as error:
                    row["permanent"] = type(error).__name__
                    break
                row["transfer_id"] = payment.transfer_id
                row["returned"] = time.time()
                break
            return row

        rows = await asyncio.gather(*(one(i) for i in range(count)))
        batches = bank.coalescer.batches if coalesce else len(rows)
        rebalances = bank.coalescer.rebalances
    return list(rows), batches, rebalances


# --------------------------------------------------------------------------- the section


class _Credits:
    """When each transfer was credited (the listeners' accepts)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def handled(self, handled: Handled) -> None:
        if handled.action == "accepted":
            self.at.setdefault(handled.transfer.transfer_id, time.time())


async def _point(cluster: Cluster, payer: str, exporters: list[list[str]], credits: _Credits,
                 *, rate: float, count: int, coalesce: bool, label: str,
                 drain_timeout: float, log: Log, lanes: bool = False) -> dict[str, Any]:
    """One load point: two paying processes (with ``lanes``, each on its own lane of the
    payer account), then wait for the credits."""
    slug = "".join(c if c.isalnum() else "-" for c in label)
    tag = f"mk-{slug}-{secrets.token_hex(3)}"
    folder = cluster.dir / "marketplace"
    folder.mkdir(parents=True, exist_ok=True)
    profile = cluster.network.profile_path(cluster.bank(0))
    procs = []
    outs = []
    for p in range(2):
        out = folder / f"{tag}-{p}.jsonl"
        outs.append(out)
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dtbench.marketplace", "pay", str(profile), payer,
            json.dumps(exporters[p::2]), str(rate / 2), str(count // 2), f"{tag}-p{p}",
            "1" if coalesce else "0", str(out),
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "DTOKEN_LANE": str(p) if lanes else ""}))
    errors = [(await proc.communicate())[1] for proc in procs]
    rows: list[dict[str, Any]] = []
    batches = 0
    rebalances = 0
    for proc, out, err in zip(procs, outs, errors, strict=True):
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"a paying process failed: {err.decode()[-1500:]}")
        lines = [json.loads(line) for line in out.read_text().splitlines() if line]
        batches += int(lines[-1]["batches"])
        rebalances += int(lines[-1].get("rebalances", 0))
        rows.extend(lines[:-1])
    paid = {r["transfer_id"]: r for r in rows if "transfer_id" in r}
    deadline = time.monotonic() + drain_timeout
    for _ in range(int(drain_timeout / 0.2) + 1):
        if time.monotonic() > deadline or all(t in credits.at for t in paid):
            break
        await asyncio.sleep(0.2)
    credited = [credits.at[t] - r["called"] for t, r in paid.items() if t in credits.at]
    first = min(r["called"] for r in rows)
    last = max((credits.at[t] for t in paid if t in credits.at), default=first)
    latencies = sorted(credited)
    returned = sorted(r["returned"] - r["called"] for r in paid.values())
    result = {
        "label": label, "coalesce": coalesce, "lanes": lanes, "offered_rate": rate,
        "offered": len(rows),
        "credited": len(credited),
        "committed_per_s": round(len(credited) / max(last - first, 1e-9), 1),
        "p50_s": _pct(latencies, 0.5),
        "p99_s": _pct(latencies, 0.99),
        "payer_p50_s": _pct(returned, 0.5),
        "payer_p99_s": _pct(returned, 0.99),
        "permanent_failures": sum(1 for r in rows if "permanent" in r),
        "unfinished": sum(1 for r in rows if "unfinished" in r),
        "retryable_faults": sum(int(r.get("faults", 0)) for r in rows),
        "not_credited_in_time": len(paid) - len(credited),
        "payer_transactions": batches,
        "rebalances": rebalances,
    }
    log(f"    {label:>22}: offered {result['offered']:>5} at {rate:>6.0f}/s -> "
        f"{result['committed_per_s']:>6.1f}/s credited, p50 {result['p50_s']} s, "
        f"p99 {result['p99_s']} s (transfer() returned: p50 {result['payer_p50_s']} s), "
        f"permanent {result['permanent_failures']}, "
        f"unfinished {result['unfinished']}, payer txs {batches}, rebalances {rebalances}"
        f" (load {_load()})")
    return result


def _load() -> str:
    """The machine's load averages (1, 5, 15 min): other engineers share it."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _pct(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile of sorted ``values`` (nearest rank), in seconds, or ``None``."""
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * q))], 3)


async def run_marketplace(cluster: Cluster, settings: MarketplaceSettings,
                          log: Log) -> dict[str, Any]:
    """The section on an up network (its first bank pays, the next two receive)."""
    payer_org, *payee_orgs = (cluster.bank(i) for i in range(3))
    net = cluster.network
    async with (Bank.connect(net.profile_path(payer_org), identity="minter") as payer_bank,
                Bank.connect(net.profile_path(payee_orgs[0])) as b1,
                Bank.connect(net.profile_path(payee_orgs[1])) as b2):
        run = secrets.token_hex(3)
        payer = (await payer_bank.open_account("USD", "MARKETPLACE",
                                               reference=f"mk-{run}")).account_id
        await payer_bank.mint(payer, 10**12, reference=f"mk-dep-{run}")
        laned = (await payer_bank.open_account("USD", "MARKETPLACE-LANES",
                                               reference=f"mk-lanes-{run}")).account_id
        await payer_bank.mint(laned, 10**12, reference=f"mk-lanes-dep-{run}")
        await payer_bank.set_lanes(laned, 2)
        await payer_bank.rebalance_lanes(laned, 1, 10**12 // 2)  # both lanes funded
        log(f"  opening {settings.exporters} exporter accounts")
        semaphore = asyncio.Semaphore(64)

        async def exporter(i: int) -> list[str]:
            client = (b1, b2)[i % 2]
            async with semaphore:
                opened = await client.open_account("USD", f"EXP-{i}",
                                                   reference=f"mk-exp-{run}-{i}")
            return [client.name, opened.account_id]

        exporters = list(await asyncio.gather(*(exporter(i)
                                                for i in range(settings.exporters))))
        credits = _Credits()
        stop = asyncio.Event()
        listeners = [IncomingListener(b, checkpointer=fabgateway.InMemoryCheckpointer(),
                                      on_handled=credits.handled) for b in (b1, b2)]
        tasks = [asyncio.create_task(li.run(stop=stop)) for li in listeners]
        points: list[dict[str, Any]] = []
        try:
            await asyncio.sleep(1.0)
            for rate in settings.baseline_rates:
                points.append(await _point(
                    cluster, payer, exporters, credits, rate=rate,
                    count=max(int(rate * settings.duration), 2), coalesce=False,
                    label=f"baseline {rate:g}/s", drain_timeout=settings.drain_timeout,
                    log=log))
            for rate in settings.rates if settings.one_key else ():
                points.append(await _point(
                    cluster, payer, exporters, credits, rate=rate,
                    count=max(int(rate * settings.duration), 2), coalesce=True,
                    label=f"coalesced {rate:g}/s", drain_timeout=settings.drain_timeout,
                    log=log))
            if settings.one_key:
                points.append(await _point(
                    cluster, payer, exporters, credits, rate=0, count=settings.burst,
                    coalesce=True, label=f"burst {settings.burst}",
                    drain_timeout=settings.drain_timeout, log=log))
            for rate in settings.lane_rates:
                points.append(await _point(
                    cluster, laned, exporters, credits, rate=rate,
                    count=max(int(rate * settings.duration), 2), coalesce=True,
                    label=f"2 lanes {rate:g}/s", drain_timeout=settings.drain_timeout,
                    log=log, lanes=True))
            if settings.lane_rates:
                points.append(await _point(
                    cluster, laned, exporters, credits, rate=0, count=settings.burst,
                    coalesce=True, label=f"2 lanes burst {settings.burst}",
                    drain_timeout=settings.drain_timeout, log=log, lanes=True))
        finally:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
            except TimeoutError:  # a listener stuck in a query on a saturated machine
                log("  the listeners did not stop within 30 s: cancelled")
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    best_base = max((p["committed_per_s"] for p in points if not p["coalesce"]), default=0.0)
    best = max((p["committed_per_s"] for p in points if p["coalesce"] and not p["lanes"]),
               default=0.0)
    best_lanes = max((p["committed_per_s"] for p in points if p["lanes"]), default=0.0)
    return {"points": points, "best_baseline_per_s": best_base, "best_coalesced_per_s": best,
            "best_lanes_per_s": best_lanes,
            "ratio": round(best / best_base, 1) if best_base else None,
            "lanes_ratio": round(best_lanes / best_base, 1) if best_base else None}


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x)


async def _run_alone(args: argparse.Namespace) -> dict[str, Any]:
    """The section on a network of its own (``run``): what ``bench/run --sections
    marketplace`` does, with its rates chosen on the command line."""
    import tempfile

    from dtbench.cluster import Shape

    root = Path(tempfile.mkdtemp(prefix="dtbench-market-"))
    cluster = Cluster(root, name="benchmarket", base_port=args.base_port,
                      shape=Shape(layout=args.layout, batch_timeout_ms=args.batch_timeout_ms),
                      log=print)
    settings = MarketplaceSettings(
        rates=args.rates, baseline_rates=args.baseline_rates, lane_rates=args.lane_rates,
        duration=args.duration, exporters=args.exporters, burst=args.burst,
        one_key=bool(args.rates))
    print(f"load before: {_load()}")
    try:
        cluster.up()
        return await run_marketplace(cluster, settings, print)
    finally:
        print(f"load after: {_load()}")
        cluster.down()


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["run"]:
        run = argparse.ArgumentParser(prog="python -m dtbench.marketplace run")
        run.add_argument("command")
        run.add_argument("--base-port", type=int, required=True)
        run.add_argument("--rates", type=_floats, default=(100.0, 200.0))
        run.add_argument("--lane-rates", type=_floats, default=(100.0, 200.0, 400.0))
        run.add_argument("--baseline-rates", type=_floats, default=(5.0, 10.0))
        run.add_argument("--duration", type=float, default=10.0)
        run.add_argument("--exporters", type=int, default=1_000)
        run.add_argument("--burst", type=int, default=5_000)
        run.add_argument("--out", type=Path)
        run.add_argument("--layout", choices=LAYOUTS, default=LAYOUTS[0],
                         help="the consortium's chaincode.layout (default: single)")
        run.add_argument("--batch-timeout-ms", type=int, default=150,
                         help="the orderers' BatchTimeout (default: 150, the network's)")
        result = asyncio.run(_run_alone(run.parse_args(argv)))
        text = json.dumps(result, indent=1)
        if run.parse_args(argv).out is not None:
            run.parse_args(argv).out.write_text(text)
        print(text)
        return 0
    parser = argparse.ArgumentParser(prog="python -m dtbench.marketplace")
    parser.add_argument("command", choices=["pay"])
    parser.add_argument("profile", type=Path)
    parser.add_argument("payer")
    parser.add_argument("exporters")
    parser.add_argument("rate", type=float)
    parser.add_argument("count", type=int)
    parser.add_argument("tag")
    parser.add_argument("coalesce")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    rows, batches, rebalances = asyncio.run(_pay(
        args.profile, args.payer, json.loads(args.exporters), args.rate, args.count, args.tag,
        args.coalesce == "1"))
    args.out.write_text("\n".join(json.dumps(r) for r in rows) + "\n" +
                        json.dumps({"batches": batches, "rebalances": rebalances}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
