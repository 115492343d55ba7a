"""Round trips per transaction and transactions per second of the Python shim, with and
without write batching, on a real Fabric network.

    .venv/bin/python bench/shim_roundtrips.py [--base-port 6800] [--transactions 1200]
        [--in-flight 64] [--repeats 3] [--json out.json] [--keep]

Brings up the default consortium (3 banks, the regulator, 3 Raft orderers, BatchTimeout
150 ms, MaxMessageCount 100) in its own state folder on its own ports, deploys the probe
chaincode (``tests/chaincodes/shim_probe.py``, a thin put/get contract) twice, ``rt``
(write batching on: the peer offers it in READY) and ``rtnb`` (its servers run with
``CHAINCODE_WRITE_BATCH=false``), each endorsed by HarbourBank's peer alone, and measures:

* round trips per transaction, **counted by the peer**: the TRANSACTION/COMPLETED exchange
  plus every shim request (``chaincode_shim_requests_received`` on the peer's metrics
  endpoint, per request type), divided by the proposals the peer received
  (``endorser_proposal_duration_count``);
* committed transactions per second in a closed loop (``--in-flight`` submits waiting for
  their commit), and the CPU seconds the endorsing peer's chaincode server spent per
  transaction (``/proc/<pid>/stat``).

Workloads: ``put`` (one ``put_state``), ``put10`` (``put_states`` of 10 keys) and ``get``
(an evaluated ``get_state``). Points are interleaved (on, off, on, off ...) so drift hits
both alike; the table gives medians over ``--repeats``. The network is taken down (and
its state deleted) at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fabgateway
import yaml
from consortium import config as config_mod
from consortium.metrics import PeerCounts
from consortium.network import Network

REPO_ROOT = Path(__file__).resolve().parents[1]  # the bench runs from the checkout
BATCHED, UNBATCHED = "rt", "rtnb"
BANK = "hkbank"
KEYS_PER_PUT10 = 10


# ---------------------------------------------------------------------------- network


def bring_up(base_port: int, state_dir: Path) -> Network:
    data = yaml.safe_load((REPO_ROOT / "config" / "consortium.yaml").read_text())
    data.update(name=f"shimrt{base_port}", base_port=base_port)
    state_dir.mkdir(parents=True, exist_ok=True)
    config_path = state_dir / "consortium.yaml"
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    net = Network(
        config_mod.load(config_path),
        state_dir / "state",
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        extra_pythonpath=[REPO_ROOT / "tests" / "chaincodes"],
    )
    net.up()
    policy = f"OR('{net.consortium.org(BANK).msp_id}.peer')"
    net.deploy(BATCHED, "shim_probe:chaincode", policy=policy)
    no_batching = {"CHAINCODE_WRITE_BATCH": "false"}
    net.deploy(UNBATCHED, "shim_probe:chaincode", policy=policy, env=no_batching)
    return net


# ---------------------------------------------------------------------------- the peer's counts


def peer_counts(net: Network) -> PeerCounts:
    """What the bank's peer counted (shim requests, proposals), from its /metrics."""
    return net.peer_counts(net.consortium.org(BANK).peers[0])


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- load


@dataclass
class Point:
    workload: str
    chaincode: str
    transactions: int
    seconds: float
    failures: int
    round_trips: float  # per transaction, from the peer's counts
    requests: dict[str, int]  # shim requests the peer received, by type
    proposals: int
    chaincode_cpu_ms: float  # per transaction, the endorsing peer's chaincode server

    @property
    def tps(self) -> float:
        return (self.transactions - self.failures) / self.seconds


@dataclass
class Client:
    contract_for: Callable[[str], fabgateway.Contract]
    msp_id: str
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


def operation(client: Client, workload: str, chaincode: str) -> Callable[[int], Awaitable[Any]]:
    contract = client.contract_for(chaincode)
    orgs = [client.msp_id]
    key = f"{client.prefix}-{workload}"
    if workload == "put":
        return lambda i: contract.submit(
            "put_state", arguments=[f"{key}-{i}", f"value-{i}"], endorsing_organizations=orgs
        )
    if workload == "put10":
        return lambda i: contract.submit(
            "put_states",
            arguments=[
                json.dumps({f"{key}-{i}-{k}": f"value-{i}-{k}" for k in range(KEYS_PER_PUT10)})
            ],
            endorsing_organizations=orgs,
        )
    if workload == "get":
        return lambda i: contract.evaluate(
            "get_state", arguments=[f"{client.prefix}-put-{i % 100}"], endorsing_organizations=orgs
        )
    raise ValueError(workload)


async def closed_loop(run: Callable[[int], Awaitable[Any]], count: int, in_flight: int) -> int:
    """Run ``count`` operations, ``in_flight`` at a time; return the number that failed."""
    queue = iter(range(count))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for i in queue:
            try:
                await run(i)
            except fabgateway.GatewayError as exc:
                failures += 1
                if failures <= 3:
                    print(f"  failure: {exc}", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return failures


async def measure(net: Network, args: argparse.Namespace) -> list[Point]:
    org = net.consortium.org(BANK)
    profile = net.profile(org)
    identity, signer = fabgateway.load_msp_dir(
        profile["msp_id"], profile["identities"]["operator"]["msp_dir"]
    )
    gateway_info = profile["gateway"]
    channel = fabgateway.tls_channel(
        gateway_info["endpoint"], args.tls_ca, gateway_info["server_name"]
    )
    servers = {
        d: net.chaincode_handle(org.peers[0], net.deployment(d)) for d in (BATCHED, UNBATCHED)
    }
    points: list[Point] = []
    try:
        network = fabgateway.connect(channel, identity, signer).get_network(profile["channel"])
        client = Client(network.get_contract, profile["msp_id"])
        # warm up both servers and seed the keys that "get" reads
        for chaincode in (BATCHED, UNBATCHED):
            await closed_loop(operation(client, "put", chaincode), 100, 20)
        for repeat in range(args.repeats):
            for workload in args.workloads:
                for chaincode in (BATCHED, UNBATCHED):
                    count = args.transactions * (3 if workload == "get" else 1)
                    run = operation(client, workload, chaincode)
                    before = peer_counts(net)
                    cpu0 = cpu_seconds(servers[chaincode].pid())
                    started = time.perf_counter()
                    failures = await closed_loop(run, count, args.in_flight)
                    seconds = time.perf_counter() - started
                    cpu = cpu_seconds(servers[chaincode].pid()) - cpu0
                    seen = peer_counts(net) - before
                    requests = dict(sorted(seen.of(chaincode).items()))
                    proposals = seen.proposals[chaincode]
                    point = Point(
                        workload=workload,
                        chaincode=chaincode,
                        transactions=count,
                        seconds=seconds,
                        failures=failures,
                        round_trips=(proposals + sum(requests.values())) / max(proposals, 1),
                        requests=requests,
                        proposals=proposals,
                        chaincode_cpu_ms=1000 * cpu / count,
                    )
                    points.append(point)
                    print(
                        f"  [{repeat + 1}/{args.repeats}] {workload:5} {chaincode:4}: "
                        f"{point.tps:6.0f} tx/s, {point.round_trips:.2f} round trips/tx, "
                        f"{point.chaincode_cpu_ms:.2f} ms chaincode CPU/tx, {failures} failed",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        await channel.close(None)
    return points


def table(points: list[Point]) -> str:
    label = {BATCHED: "on", UNBATCHED: "off"}
    lines = [
        "| workload | write batching | round trips / tx | shim requests / tx (peer's count) "
        "| committed tx/s, median (range) | chaincode CPU ms / tx, median |",
        "|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(p.workload, p.chaincode) for p in points}, key=lambda k: (k[0], k[1] != BATCHED)
    )
    for workload, chaincode in keys:
        mine = [p for p in points if (p.workload, p.chaincode) == (workload, chaincode)]
        per_tx = Counter[str]()
        for p in mine:
            per_tx.update(p.requests)
        total = sum(p.proposals for p in mine)
        shown = ", ".join(f"{t} {n / total:.2f}" for t, n in sorted(per_tx.items())) or "none"
        rate = "tx/s" if workload != "get" else "evaluations/s"
        tps = [p.tps for p in mine]
        lines.append(
            f"| {workload} | {label[chaincode]} "
            f"| {statistics.median(p.round_trips for p in mine):.2f} | {shown} "
            f"| {statistics.median(tps):.0f} {rate} ({min(tps):.0f}-{max(tps):.0f}) "
            f"| {statistics.median(p.chaincode_cpu_ms for p in mine):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-port", type=int, default=6800)
    parser.add_argument("--state-dir", type=Path, help="default: a new temporary folder")
    parser.add_argument("--transactions", type=int, default=1200, help="per point")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["put", "put10", "get"])
    parser.add_argument("--json", type=Path, help="write the points here")
    parser.add_argument("--keep", action="store_true", help="leave the network running")
    parser.add_argument("--table", type=Path, metavar="JSON", help="print the table of a run")
    args = parser.parse_args(argv)
    if args.table:
        fields = {f for f in Point.__dataclass_fields__}
        loaded = json.loads(args.table.read_text())
        print(table([Point(**{k: v for k, v in p.items() if k in fields}) for p in loaded]))
        return 0
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="shim-roundtrips-"))
    net = bring_up(args.base_port, state_dir)
    try:
        gateway = net.profile(net.consortium.org(BANK))["gateway"]
        args.tls_ca = Path(gateway["tls_ca_cert"]).read_bytes()
        points = asyncio.run(measure(net, args))
    finally:
        if not args.keep:
            net.down(purge=True)
            if args.state_dir is None:
                shutil.rmtree(state_dir, ignore_errors=True)
    print(table(points))
    print(
        f"\n{len(os.sched_getaffinity(0))} cores, {platform.python_implementation()} "
        f"{platform.python_version()}; {args.transactions} transactions per point "
        f"({3 * args.transactions} evaluations for get), {args.in_flight} in flight, "
        f"medians of {args.repeats}; load average at the end "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    if args.json:
        args.json.write_text(
            json.dumps([{**asdict(p), "tps": p.tps} for p in points], indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
