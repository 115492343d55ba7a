"""Experiments behind docs/benchmarks.md §"Hot paths" (not part of the suite's default run).

``python -m dtbench.experiments roundtrips`` (with ``PYTHONPATH=bench``) brings up the main
network and deploys the deposit-token contract three times side by side:

* ``dtoken``: as shipped (write batching and multi-key reads on);
* ``dtokennobatch``: the same code with write batching declined
  (``CHAINCODE_WRITE_BATCH=false``): one PUT_STATE round trip per write;
* ``dtokenfast``: :mod:`dtbench.fastpath` (registry cached, one GET_STATE_MULTIPLE);

then runs interleaved rounds of the same closed-loop transfer on each, and prints
throughput and CPU per transaction of the chaincode server and the gateway peer.

``python -m dtbench.experiments peerprofile --out DIR`` brings up the main network with Go's
CPU profiler on in three peers (the gateway bank's, a bank that is not a member of its
collection, the regulator's), records 12 s of profile during a no-op load and during a
transfer load, and prints, per peer and workload, the CPU per transaction and the share
spent deserializing the chaincode definition (``lifecycle.(*Serializer).Deserialize``) and
validating (``TxValidator.validateTx``), using ``go tool pprof``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
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


PROFILED = ("hkbank", "usbank", "regulator")


async def peerprofile(args: argparse.Namespace) -> dict[str, Any]:
    import shutil

    import yaml
    from consortium import processes

    from dtbench.cluster import NOOP_PY
    from dtbench.workloads import noop_op

    out: Path = args.out
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    root = new_run_root()
    cluster = Cluster(root, name="benchpprof", base_port=args.base_port, shape=Shape(), log=_log)
    table: dict[str, Any] = {}
    try:
        cluster.up()
        ports: dict[str, int] = {}
        for i, org in enumerate(PROFILED):
            handle = cluster.network.node(cluster.consortium.org(org).peers[0].name)
            path = cluster.network.node_dir(handle.name) / "config" / "core.yaml"
            cfg = yaml.safe_load(path.read_text())
            port = args.base_port + 90 + i
            cfg["peer"]["profile"] = {"enabled": True, "listenAddress": f"127.0.0.1:{port}"}
            path.write_text(yaml.safe_dump(cfg, sort_keys=False))
            processes.stop(handle.spec)
            processes.start(handle.spec)
            assert handle.health_url is not None
            processes.wait_healthy(handle.spec, handle.health_url, ca_file=handle.tls_ca,
                                   timeout=60)  # fmt: skip
            ports[org] = port
        cluster.network._wait_gossip()
        cluster.deploy_noop()
        payer = await open_client(cluster, cluster.bank(0))
        payee = await open_client(cluster, cluster.bank(1))
        minter = await open_client(cluster, cluster.bank(0), "minter")
        ledger = Ledger(payer, payee, minter, currency="USD")
        await ledger.ensure_slots(args.concurrency)
        peer_bin = str(cluster.network.fabric.tool("peer"))
        for workload, op in (("noop", noop_op(payer, NOOP_PY)), ("transfer", transfer_op(ledger))):
            curls = [
                await asyncio.create_subprocess_exec(
                    "curl", "-s", "-o", str(out / f"{org}-{workload}.pb.gz"),
                    f"http://127.0.0.1:{port}/debug/pprof/profile?seconds=12",
                )
                for org, port in ports.items()
            ]  # fmt: skip
            result = await loadgen.closed_loop(op, concurrency=args.concurrency, duration=14,
                                               warmup=1.0)  # fmt: skip
            for curl in curls:
                await curl.wait()
            tx = loadgen.summarize(result)["tx_per_s"] * 12
            for org in PROFILED:
                table[f"{org}/{workload}"] = (
                    _pprof_summary(peer_bin, out / f"{org}-{workload}.pb.gz", tx)
                    if shutil.which("go")
                    else {"profile": str(out / f"{org}-{workload}.pb.gz")}
                )
        for c in (payer, payee, minter):
            await c.close()
    finally:
        cluster.down()
    return table


def _pprof_summary(peer_bin: str, profile: Path, tx: float) -> dict[str, Any]:
    import re
    import subprocess

    text = subprocess.run(["go", "tool", "pprof", "-top", "-cum", peer_bin, str(profile)],
                          capture_output=True, text=True, check=False).stdout  # fmt: skip

    def seconds(pattern: str) -> float:
        for line in text.splitlines():
            if re.search(pattern, line):
                value = line.split()[3]
                return float(value[:-2]) / 1000 if value.endswith("ms") else float(value[:-1])
        return 0.0

    total = re.search(r"Total samples = ([0-9.]+)(m?s)", text)
    total_s = 0.0
    if total:
        total_s = float(total.group(1)) / (1000 if total.group(2) == "ms" else 1)
    return {
        "cpu_ms_per_tx": round(total_s * 1000 / tx, 2) if tx else None,
        "deserialize_definition_ms_per_tx": round(
            seconds(r"lifecycle\.\(\*Serializer\)\.Deserialize$") * 1000 / tx, 2) if tx else None,
        "validate_tx_ms_per_tx": round(
            seconds(r"TxValidator\)\.validateTx$") * 1000 / tx, 2) if tx else None,
        "ecdsa_verify_ms_per_tx": round(
            seconds(r"crypto/ecdsa\.Verify$") * 1000 / tx, 2) if tx else None,
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dtbench.experiments")
    p.add_argument("experiment", choices=["roundtrips", "peerprofile"])
    p.add_argument("--out", type=Path, default=Path("bench/results/peerprofile"))
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--base-port", type=int, default=8500)
    args = p.parse_args(argv)
    runner = roundtrips if args.experiment == "roundtrips" else peerprofile
    table = asyncio.run(runner(args))
    print(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
