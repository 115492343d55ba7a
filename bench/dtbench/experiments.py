"""Experiments behind docs/benchmarks.md §"Hot paths" (not part of the suite's default run).

``python -m dtbench.experiments roundtrips`` (with ``PYTHONPATH=bench``) brings up the main
network and deploys the deposit-token contract three times side by side:

* ``dtoken``: as shipped (write batching and multi-key reads on);
* ``dtokennobatch``: the same code with write batching declined
  (``CHAINCODE_WRITE_BATCH=false``): one PUT_STATE round trip per write;
* ``dtokenfast``: :mod:`dtbench.fastpath` (registry cached, one GET_STATE_MULTIPLE);

then runs interleaved rounds of the same closed-loop transfer on each, and prints
throughput and CPU per transaction of the chaincode server and the gateway peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from consortium import channel as channel_cfg

from dtbench import loadgen
from dtbench.cluster import Cluster, Shape, new_run_root
from dtbench.meter import Meter
from dtbench.workloads import Ledger, open_client, transfer_op

VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "dtoken": ("", {}),
    "dtokennobatch": ("deposit_token.chaincode:chaincode", {"CHAINCODE_WRITE_BATCH": "false"}),
    "dtokenfast": ("dtbench.fastpath:chaincode", {}),
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def roundtrips(args: argparse.Namespace) -> dict[str, Any]:
    root = new_run_root()
    cluster = Cluster(root, name="benchexp", base_port=args.base_port, shape=Shape(), log=_log)
    try:
        cluster.up()
        for name, (module, env) in VARIANTS.items():
            if module:
                cluster.network.deploy(
                    name, module, policy=cluster.any_bank_policy(),
                    collections=channel_cfg.collections_config(cluster.consortium), env=env,
                )  # fmt: skip
        payer = await open_client(cluster, cluster.bank(0))
        payee = await open_client(cluster, cluster.bank(1))
        minter = await open_client(cluster, cluster.bank(0), "minter")
        ledgers = {}
        for name, (module, _env) in VARIANTS.items():
            if module:
                await payer.contract(name).submit(
                    "init_network", arguments=[json.dumps(cluster.registry())],
                    endorsing_organizations=[payer.msp_id],
                )  # fmt: skip
            ledgers[name] = Ledger(payer, payee, minter, currency="USD", chaincode=name)
            await ledgers[name].ensure_slots(args.concurrency)
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
        for r in range(args.repeats):
            for name, ledger in ledgers.items():
                meter = Meter(cluster, payer.org.peers[0].name)
                result = await loadgen.closed_loop(
                    transfer_op(ledger), concurrency=args.concurrency, duration=args.duration,
                    warmup=2.0, on_open=meter.open, on_close=meter.close,
                )  # fmt: skip
                summary = loadgen.summarize(result)
                cpu = meter.report(summary["committed_tx"])
                row = {
                    "tx_per_s": summary["tx_per_s"],
                    "p50_ms": summary["latency_ms"]["p50"],
                    "failures": summary["failures"],
                    "chaincode_ms": cpu["cpu_ms_per_tx"].get(f"chaincode:{name}"),
                    "gateway_peer_ms": cpu["cpu_ms_per_tx"].get("peer (gateway)"),
                    "total_ms": cpu["cpu_ms_per_tx_total"],
                }
                rows[name].append(row)
                _log(f"  round {r + 1} {name:<14} {json.dumps(row)}")
        for c in (payer, payee, minter):
            await c.close()
    finally:
        cluster.down()
    table: dict[str, Any] = {}
    for name, samples in rows.items():
        table[name] = {
            key: statistics.median(float(s[key]) for s in samples if s[key] is not None)
            for key in ("tx_per_s", "p50_ms", "chaincode_ms", "gateway_peer_ms", "total_ms")
        }
    return table


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtbench.experiments")
    p.add_argument("experiment", choices=["roundtrips"])
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--base-port", type=int, default=8500)
    args = p.parse_args(argv)
    table = asyncio.run(roundtrips(args))
    print(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
