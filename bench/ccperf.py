"""CPU per payment of the deposit-token chaincode servers, without a Fabric network (issue 14).

    PYTHONPATH=bench:tests .venv/bin/python bench/ccperf.py [--items 500] [--repeats 3]
        [--mode contract|shim|both] [--base-port 14060] [--profile DIR]

A marketplace payment costs the chaincode servers one item of the payer bank's
``coalesced_payout`` and one item of the payee bank's ``decide_transfers`` (docs/sdk.md,
"Coalescing" and "Batch decisions"), plus its share of the listener's ``get_pending`` reads.
This script pays ``--items`` payees at usbank from one hkbank account in one batch, decides
them all in one batch, and prints CPU milliseconds per item:

* ``contract``: the contract alone, in the unit tests' harness (``tests/unit/deposit_token``:
  ``fabshim.testing.MemoryStub``, no protobuf, no gRPC): the contract's own Python;
* ``shim``: each bank's real chaincode server (``python -m fabshim serve
  deposit_token.chaincode:chaincode``, a subprocess, plaintext on ``--base-port`` and the next
  port) driven over gRPC by the unit tests' fake peer (``tests/unit/fabshim/shim_fakepeer``,
  in this process, write batching and multi-key reads on as the peer offers them); the
  servers' CPU is read from ``/proc`` before and after each step, so it is what a chaincode
  server process spends, shim, protobuf and gRPC included.

Figures, never a pass/fail: run it on a quiet machine and compare runs of the same script
(``git stash`` the change, run, unstash, run). ``--profile DIR`` writes a cProfile of each
contract-mode step there (``python -m pstats DIR/coalesced_payout.prof``) and runs the
shim-mode servers under cProfile (``DIR/server-usbank.prof``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for extra in ("tests",):  # the harness and the fake peer are test code
    if str(REPO_ROOT / extra) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / extra))

from dtbench.procstat import cpu_seconds  # noqa: E402

HK, US = "hkbank", "usbank"
STEPS = ("payout", "decide", "pending")


def _items(payees: Sequence[str], tids: Sequence[str]) -> list[dict[str, Any]]:
    return [{"reference": f"cc-{i}", "payee_bank": US, "payee_account": p, "amount": 100 + i,
             "transfer_id": t, "originator": {"name": "Marketplace Ltd"}}
            for i, (p, t) in enumerate(zip(payees, tids, strict=True))]


# ---------------------------------------------------------------------------- contract mode


async def contract_mode(n: int, repeats: int, profile: Path | None) -> dict[str, list[float]]:
    """CPU ms per item of each step, the contract alone (each step simulated ``repeats``
    times on the same state, then committed once)."""
    from unit.deposit_token.dt_harness import Net

    net = Net(layout=False)
    await net.init()
    payer, payees, tids = await net.marketplace("cc", n, 10**12)
    since = net.now

    async def step(org: str, name: str, request: dict[str, Any], write: bool) -> list[float]:
        out = []
        stub: Any = None
        for r in range(repeats + (1 if profile else 0)):
            stub = net._stub(request, net.ledger.new_tx_id(), net.now, org if write else None,
                             serving=org)
            prof = cProfile.Profile() if profile and r == repeats else None
            started = time.process_time()
            if prof:
                prof.enable()
            await net._execute(org, name, stub, net.caller(org), None)
            if prof:
                prof.disable()
                assert profile is not None
                prof.dump_stats(profile / f"{name}.prof")
            else:
                out.append((time.process_time() - started) * 1e3 / n)
        if write:
            stub.commit()
        return out

    from dtoken_wire.codec import format_timestamp

    return {
        "payout": await step(HK, "coalesced_payout",
                             {"payer_account": payer, "items": _items(payees, tids)}, True),
        "pending": await step(US, "get_pending", {"direction": "incoming",
                                                  "since": format_timestamp(since)}, False),
        "decide": await step(US, "decide_transfers", {"payer_bank": HK, "decisions": [
            {"transfer_id": t, "accept": True} for t in tids]}, True),
    }


# ---------------------------------------------------------------------------- shim mode


#: ``python -m fabshim`` under a profiler that counts CPU time (``process_time``), not wall time:
#: a chaincode server mostly waits for the peer, which a wall-clock profile shows as work.
_PROFILED = """
import cProfile, sys, time
from fabshim.cli import main
profile = cProfile.Profile(time.process_time)
out = sys.argv.pop(1)
try:
    profile.runcall(main, sys.argv[1:])
finally:
    profile.dump_stats(out)
"""


def _ids(prefix: str, n: int) -> list[str]:
    from unit.deposit_token.dt_harness import ids  # the tests' well-formed opaque ids

    return list(ids(prefix, n))


async def shim_mode(n: int, repeats: int, base_port: int,
                    profile: Path | None = None) -> dict[str, list[float]]:
    """CPU ms per item of each step, measured on the chaincode server processes (with
    ``profile``, each server runs under cProfile and writes ``<profile>/server-<org>.prof``
    when stopped: its CPU figures then include the profiler's cost)."""
    from fabshim.testing import make_identity
    from fabshim.testing._identities import serialize_identity
    from unit.deposit_token.dt_harness import BANKS, REGULATOR, init_payload, registry_pin
    from unit.fabshim.shim_fakepeer import FakePeer

    agreed = init_payload()
    work = Path(tempfile.mkdtemp(prefix="ccperf-"))
    orgs = {HK: base_port, US: base_port + 1}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    peers: dict[str, FakePeer] = {}
    try:
        for org, port in orgs.items():
            msp = BANKS[org][0]
            secret = work / f"{org}.secret"
            secret.write_bytes(hashlib.sha256(msp.encode()).digest())
            env = {**os.environ, "DTOKEN_BANK_MSP": msp, "DTOKEN_SECRET_FILE": str(secret),
                   "DTOKEN_REGISTRY_SHA256": registry_pin(agreed),
                   "CHAINCODE_TLS_DISABLED": "true", "CHAINCODE_ID": f"dtoken:{org}",
                   "CHAINCODE_SERVER_ADDRESS": f"127.0.0.1:{port}"}
            launch = (["-m", "fabshim"] if profile is None else
                      ["-c", _PROFILED, str(profile / f"server-{org}.prof")])
            procs[org] = subprocess.Popen(  # noqa: ASYNC220 (started once, before the timing)
                [sys.executable, *launch, "serve", "deposit_token.chaincode:chaincode",
                 "--log-level", "WARNING"], env=env,
                stderr=os.open(work / f"{org}.log", os.O_WRONLY | os.O_CREAT, 0o600))
        state: dict[str, dict[str, bytes]] = {"": {}}
        metadata: dict[tuple[str, str], dict[str, bytes]] = {}
        for org, port in orgs.items():
            peer = FakePeer(use_write_batch=True, max_size_write_batch=1000,
                            use_get_multiple_keys=True, max_size_get_multiple_keys=1000,
                            max_result_limit=1000)
            peer.state, peer.metadata = state, metadata  # one ledger, two peers
            for _ in range(100):
                try:
                    await peer.connect(f"127.0.0.1:{port}")
                    break
                except Exception:  # the server is still starting
                    await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"the {org} chaincode server did not come up ({work})")
            peers[org] = peer
        await asyncio.sleep(0.5)  # READY handled
        ident = {org: serialize_identity(BANKS[org][0], make_identity(
            BANKS[org][0], f"op-{org}", attributes={"operator": "true", "minter": "true"},
        ).certificate_pem) for org in orgs}
        admin = {org: serialize_identity(BANKS[org][0], make_identity(
            BANKS[org][0], f"admin-{org}", organizational_units=("admin",),
        ).certificate_pem) for org in orgs}
        clock = [datetime(2025, 1, 6, 9, tzinfo=UTC)]

        async def call(org: str, name: str, request: dict[str, Any] | None = None, *,
                       args: Sequence[str] = (), creator: bytes | None = None,
                       commit: bool = True) -> dict[str, Any]:
            clock[0] += timedelta(seconds=1)
            transient = {"request": json.dumps(request).encode()} if request is not None else None
            tx_id = peers[org].new_tx_id()
            if not commit:  # evaluated: the fake peer commits COMPLETED writes, there are none
                pass
            result = await peers[org].execute(
                f"DepositToken:{name}", *args, tx_id=tx_id, transient=transient,
                creator=creator or ident[org], timestamp=clock[0], wait=600)
            if result.status >= 400:
                raise RuntimeError(f"{name} on {org}: {result.status} {result.error_text}")
            return dict(json.loads(result.payload or b"{}"))

        # the fake peer keeps no per-namespace registry pin: both banks write the same bytes
        await call(HK, "init_network", args=[agreed], creator=admin[HK])
        del REGULATOR
        payer = _ids("ccpay", 1)[0]
        await call(HK, "open_account", {"reference": "open-pay", "account_id": payer,
                                        "currency": "USD", "owner_ref": "CIF-MK"})
        await call(HK, "mint", {"reference": "cc-dep", "account_id": payer, "amount": 10**12})
        payees = _ids("ccexp", n)

        async def measured(org: str, work_: Callable[[], Awaitable[Any]]) -> float:
            before = cpu_seconds(procs[org].pid) or 0.0
            await work_()
            await asyncio.sleep(0.05)
            return ((cpu_seconds(procs[org].pid) or 0.0) - before) * 1e3 / n

        async def open_all() -> None:
            for i, p in enumerate(payees):
                await call(US, "open_account", {"reference": f"open-{p}", "account_id": p,
                                                "currency": "USD", "owner_ref": f"CIF-{i}"})

        out: dict[str, list[float]] = {"open_account": [await measured(US, open_all)]}
        out.update({k: [] for k in STEPS})
        for r in range(repeats):
            tids = _ids(f"cc{r}t", n)
            items = _items(payees, tids)
            for i in items:
                i["reference"] += f"-{r}"
            since = clock[0] + timedelta(seconds=1)
            out["payout"].append(await measured(HK, lambda items=items: call(
                HK, "coalesced_payout", {"payer_account": payer, "items": items})))
            from dtoken_wire.codec import format_timestamp
            out["pending"].append(await measured(US, lambda since=since: call(
                US, "get_pending", {"direction": "incoming",
                                    "since": format_timestamp(since)})))
            out["decide"].append(await measured(US, lambda tids=tids: call(
                US, "decide_transfers", {"payer_bank": HK, "decisions": [
                    {"transfer_id": t, "accept": True} for t in tids]})))
        return out
    finally:
        for peer in peers.values():
            await peer.close()
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)  # a clean stop (the profiler then writes its file)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


# ---------------------------------------------------------------------------- report


def _report(label: str, figures: dict[str, list[float]]) -> dict[str, float]:
    med = {k: round(statistics.median(v), 4) for k, v in figures.items() if v}
    per_payment = med.get("payout", 0.0) + med.get("decide", 0.0)
    print(f"{label}: CPU ms per item (median of {max(len(v) for v in figures.values())}): "
          + ", ".join(f"{k} {v:.3f}" for k, v in med.items())
          + f"; payout + decide = {per_payment:.3f} ms per payment")
    return {**med, "per_payment": round(per_payment, 4)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=500, help="payments in the batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", choices=("contract", "shim", "both"), default="both")
    parser.add_argument("--base-port", type=int, default=14060,
                        help="the two chaincode servers' ports (this and the next)")
    parser.add_argument("--profile", type=Path, help="write cProfiles here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"items": args.items}
    if args.mode in ("contract", "both"):
        results["contract"] = _report("contract (harness)", asyncio.run(
            contract_mode(args.items, args.repeats, args.profile)))
    if args.mode in ("shim", "both"):
        results["shim"] = _report("chaincode server (real shim, fake peer)", asyncio.run(
            shim_mode(args.items, args.repeats, args.base_port, args.profile)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
