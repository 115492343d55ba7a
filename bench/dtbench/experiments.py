"""Experiments behind docs/benchmarks.md §"Hot paths" (not part of the suite's default run).

``python -m dtbench.experiments roundtrips`` (with ``PYTHONPATH=bench``) brings up the main
network and deploys the deposit-token contract four times side by side, next to the no-op:

* ``dtoken``: as shipped (registry kept per server, multi-key reads, write batching);
* ``dtokennobatch``: the same code with write batching declined
  (``CHAINCODE_WRITE_BATCH=false``): one PUT_STATE round trip per write;
* ``dtokennomulti``: multi-key reads declined (``CHAINCODE_MULTI_KEY_READS=false``);
* ``dtoken6``: as shipped, deployed with the ``acct-*`` and ``holds-*`` collections only
  (what a namespace without the ``pair-*`` collections would cost a transfer);

then runs interleaved rounds of the same closed-loop transfer on each, and prints
throughput and CPU per transaction of the chaincode server, the gateway peer and in total.

``python -m dtbench.experiments probe`` deploys :mod:`dtbench.privprobe` in namespaces with
1, 6 and 12 collections and measures key-access shapes against the no-op: the floor of a
private transfer (two private reads and writes in one collection), a public one, and the
contract's own shape with fewer keys or collections (docs/benchmarks.md, "The floor").

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
from consortium.chaincodes import registry_argument

from dtbench import loadgen
from dtbench.cluster import NOOP_PY, Cluster, Shape, new_run_root
from dtbench.meter import Meter
from dtbench.workloads import Ledger, noop_op, open_client, transfer_op

VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "dtoken": ("", {}),
    "dtokennobatch": ("deposit_token.chaincode:chaincode", {"CHAINCODE_WRITE_BATCH": "false"}),
    "dtokennomulti": ("deposit_token.chaincode:chaincode",
                      {"CHAINCODE_MULTI_KEY_READS": "false"}),
    # the same code deployed with only the acct-* and holds-* collections (no pair-*)
    "dtoken6": ("deposit_token.chaincode:chaincode", {"DTBENCH_COLLECTIONS": "acct,holds"}),
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def roundtrips(args: argparse.Namespace) -> dict[str, Any]:
    variants = VARIANTS
    root = new_run_root()
    cluster = Cluster(root, name="benchexp", base_port=args.base_port, shape=Shape(), log=_log)
    try:
        cluster.up()
        for name, (module, env) in variants.items():
            if module:
                kinds = env.get("DTBENCH_COLLECTIONS", "acct,pair,holds").split(",")
                collections = [c for c in channel_cfg.collections_config(cluster.consortium)
                               if c["name"].split("-")[0] in kinds]
                cluster.network.deploy(
                    name, module, policy=cluster.any_bank_policy(),
                    collections=collections, env=env,
                )  # fmt: skip
        cluster.deploy_noop()
        payer = await open_client(cluster, cluster.bank(0))
        payee = await open_client(cluster, cluster.bank(1))
        minter = await open_client(cluster, cluster.bank(0), "minter")
        # init_network: by an admin, with the argument every server pinned (docs/security.md)
        admin = await open_client(cluster, cluster.bank(0), "admin")
        ledgers: dict[str, Any] = {"noop": noop_op(payer, NOOP_PY)}
        for name, (module, _env) in variants.items():
            if module:
                await admin.contract(name).submit(
                    "init_network", arguments=[registry_argument(cluster.consortium)],
                    endorsing_organizations=[payer.msp_id],
                )  # fmt: skip
            ledgers[name] = Ledger(payer, payee, minter, currency="USD", chaincode=name)
            await ledgers[name].ensure_slots(args.concurrency)
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in ledgers}
        for r in range(args.repeats):
            for name, ledger in ledgers.items():
                meter = Meter(cluster, payer.org.peers[0].name)
                op = ledger if name == "noop" else transfer_op(ledger)
                result = await loadgen.closed_loop(
                    op, concurrency=args.concurrency, duration=args.duration,
                    warmup=2.0, on_open=meter.open, on_close=meter.close,
                )  # fmt: skip
                summary = loadgen.summarize(result)
                cpu = meter.report(summary["committed_tx"])
                row = {
                    "tx_per_s": summary["tx_per_s"],
                    "p50_ms": summary["latency_ms"]["p50"],
                    "failures": summary["failures"],
                    "chaincode_ms": cpu["cpu_ms_per_tx"].get(
                        f"chaincode:{NOOP_PY if name == 'noop' else name}"),
                    "gateway_peer_ms": cpu["cpu_ms_per_tx"].get("peer (gateway)"),
                    "total_ms": cpu["cpu_ms_per_tx_total"],
                }
                rows[name].append(row)
                _log(f"  round {r + 1} {name:<14} {json.dumps(row)}")
        for c in (payer, payee, minter, admin):
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


# ``probe``: namespaces of dtbench.privprobe with 1, 6 or 12 collections, and key shapes.
PROBE_NAMESPACES = {"probe1": ("acct-hkbank",), "probe6": ("acct", "holds"),
                    "probe12": ("acct", "pair", "holds"), "probe1np": ("acct-hkbank",),
                    "probe6np": ("acct", "holds")}  # np: maxPeerCount 0 (no push)
PROBE_SHAPES: dict[str, tuple[str, list[str]]] = {
    "public 2r2w": ("probe1", ["-:2:2:0"]),
    "private 2r2w, 1 coll": ("probe1", ["acct-hkbank:2:2:0"]),
    "private 2r2w, 6 coll": ("probe6", ["acct-hkbank:2:2:0"]),
    "private 2r2w, 12 coll": ("probe12", ["acct-hkbank:2:2:0"]),
    "lean: 3r2w+3new +hold, 6 coll": ("probe6", ["acct-hkbank:3:2:3", "holds-hkbank:1:0:0"]),
    "journal: 3r2w+1new +hold, 6 coll": ("probe6", ["acct-hkbank:3:2:1", "holds-hkbank:1:0:0"]),
    "journal: 3r2w+1new +hold, 12 coll": ("probe12", ["acct-hkbank:3:2:1", "holds-hkbank:1:0:0"]),
    "2r2w+1new +hold, 6 coll": ("probe6", ["acct-hkbank:2:2:1", "holds-hkbank:1:0:0"]),
    "private 2r2w, 1 coll, no push": ("probe1np", ["acct-hkbank:2:2:0"]),
    "journal: 3r2w+1new +hold, 6 coll, no push": ("probe6np",
                                                  ["acct-hkbank:3:2:1", "holds-hkbank:1:0:0"]),
}


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    root = new_run_root()
    cluster = Cluster(root, name="benchprobe", base_port=args.base_port, shape=Shape(), log=_log)
    try:
        cluster.up()
        everything = channel_cfg.collections_config(cluster.consortium)
        for name, kinds in PROBE_NAMESPACES.items():
            colls = [dict(c, maxPeerCount=0) if name.endswith("np") else c for c in everything
                     if c["name"] in kinds or c["name"].split("-")[0] in kinds]
            cluster.network.deploy(name, "dtbench.privprobe:chaincode",
                                   policy=cluster.any_bank_policy(), collections=colls)
        cluster.deploy_noop()
        client = await open_client(cluster, cluster.bank(0))
        orgs = [client.msp_id]

        def shape_op(namespace: str, specs: list[str]) -> Any:
            contract = client.contract(namespace)

            async def op(slot: int, n: int) -> str | None:
                await contract.submit("rw", arguments=[str(slot), str(n), *specs],
                                      endorsing_organizations=orgs)
                return None

            return op

        shapes = {k: v for k, v in PROBE_SHAPES.items() if not args.only or k in args.only}
        ops: dict[str, Any] = {"noop": noop_op(client, NOOP_PY)}
        ops.update({label: shape_op(ns, specs) for label, (ns, specs) in shapes.items()})
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in ops}
        for r in range(args.repeats):
            for name, op in ops.items():
                meter = Meter(cluster, client.org.peers[0].name)
                result = await loadgen.closed_loop(op, concurrency=args.concurrency,
                                                   duration=args.duration, warmup=2.0,
                                                   on_open=meter.open, on_close=meter.close)
                summary = loadgen.summarize(result)
                cpu = meter.report(summary["committed_tx"])
                row = {"tx_per_s": summary["tx_per_s"], "failures": summary["failures"],
                       "total_ms": cpu["cpu_ms_per_tx_total"], "by_role": cpu["cpu_ms_per_tx"]}
                rows[name].append(row)
                _log(f"  round {r + 1} {name:<36} {json.dumps(row)}")
        await client.close()
    finally:
        cluster.down()
    table: dict[str, Any] = {}
    noop = statistics.median(float(s["tx_per_s"]) for s in rows["noop"])
    noop_ms = statistics.median(float(s["total_ms"]) for s in rows["noop"])
    for name, samples in rows.items():
        tps = statistics.median(float(s["tx_per_s"]) for s in samples)
        ms = statistics.median(float(s["total_ms"]) for s in samples)
        table[name] = {"tx_per_s": tps, "total_ms": ms, "ratio": round(tps / noop, 3),
                       "cpu_ratio": round(noop_ms / ms, 3)}
    return table


PROFILED = ("hkbank", "usbank", "regulator")


async def peerprofile(args: argparse.Namespace) -> dict[str, Any]:
    import shutil

    import yaml
    from consortium import processes


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
        cluster.network.monitor.wait_gossip()
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
    p.add_argument("experiment", choices=["roundtrips", "probe", "peerprofile"])
    p.add_argument("--out", type=Path, default=Path("bench/results/peerprofile"))
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--base-port", type=int, default=8500)
    p.add_argument("--only", action="append", default=[], metavar="SHAPE",
                   help="probe: measure only this shape (repeatable; the labels of PROBE_SHAPES)")
    args = p.parse_args(argv)
    runner = {"peerprofile": peerprofile, "probe": probe}.get(args.experiment, roundtrips)
    table = asyncio.run(runner(args))
    print(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
