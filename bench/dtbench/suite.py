"""The suite: which networks, which points, in which order; the JSON record of a run.

Sections (``--sections``, all by default):

* ``ratios``: on the main network (the default consortium: 3 banks, the regulator, 3 Raft
  orderers, BatchTimeout 150 ms, MaxMessageCount 100), rounds of five closed-loop points at
  one concurrency, interleaved so that drift hits every point alike, ``repeats`` times:
  the Python no-op (our shim), the Node no-op (``fabric-shim``), the Python contract's
  ``transfer``, the Node anchor's transfer (same state-access pattern), both driven by our
  Python client, and the Python contract's ``transfer`` driven by the stock Node client.
  Ratios are medians over the rounds.
* ``workloads``: on the main network: load sweeps of the no-op and the transfer (closed
  loop at 8 .. 256 in flight), mint, cross-bank payments (open loop at several rates, the
  moderate one gives the latency target), mixed.
* ``batch``: the same consortium with other BatchTimeout / MaxMessageCount values: transfer
  throughput and cross-bank payment latency at the moderate rate.
* ``scaling``: 3 banks (the main network), 10 and 20 (``--scaling-banks``): network up
  time, idle CPU, memory by role (peers, chaincode servers, orderers) idle and after load;
  per size, the intra-bank private transfer (closed loop) with its CPU per transfer per
  peer with the idle CPU subtracted (:func:`dtbench.meter.idle_subtracted`, idle measured
  just before the points), and a cross-bank payment's latency at the moderate rate (open
  loop, from the call to the accept committed at the payee bank).

``--layout`` (``single`` or ``namespaces``, the consortium file's ``chaincode.layout``) is
applied to every network the run builds; each client sends its transactions to its own
bank's chaincode as its connection profile names it, and the payee's event listener follows
the payer's chaincode (docs/architecture.md, "Namespace layout").

One file of ~700 lines on purpose: it is the plan of a run (which networks, which points, in
which order) and reads as one; the measuring is :mod:`dtbench.loadgen` and
:mod:`dtbench.workloads`, the networks :mod:`dtbench.cluster`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from consortium.binaries import FABRIC_VERSION
from dtoken.models import format_timestamp

from dtbench import anchors, loadgen
from dtbench.cluster import (
    FLOOR_PY,
    LAYOUTS,
    NODE_ANCHOR,
    NOOP_PY,
    PORT_SPAN,
    Cluster,
    Shape,
    ephemeral_overlap,
    new_run_root,
)
from dtbench.meter import Meter
from dtbench.workloads import (
    Acceptor,
    BankClient,
    Ledger,
    floor_op,
    mint_op,
    mixed_op,
    noop_op,
    open_client,
    payment_op,
    request,
    transfer_op,
)

__all__ = ["SECTIONS", "Settings", "run_suite"]

SECTIONS = ("ratios", "workloads", "batch", "scaling", "marketplace")
SCHEMA = "dtbench/1"


@dataclass
class Settings:
    """What a run measures and for how long."""

    sections: tuple[str, ...] = SECTIONS
    duration: float = 10.0
    warmup: float = 2.0
    concurrency: int = 128
    repeats: int = 5
    sweep: tuple[int, ...] = (8, 32, 128, 256)
    payment_rates: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0)
    moderate_rate: float = 10.0
    batch_settings: tuple[tuple[int, int], ...] = ((50, 100), (100, 100), (250, 100),
                                                   (500, 100), (150, 10))  # fmt: skip
    scaling_banks: tuple[int, ...] = (10, 20)
    scaling_duration: float = 10.0
    scaling_concurrency: int = 64
    idle_seconds: float = 10.0  # the idle CPU measured before the scaling points
    layout: str = "single"  # of every network the run builds (Shape.layout)
    base_port: int = 8000
    node: bool = True
    quick: bool = False
    main_shape: Shape = field(default_factory=Shape)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse settings no run can honour, naming the setting."""
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        for name in ("duration", "scaling_duration", "idle_seconds", "moderate_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.scaling_concurrency < 1:
            raise ValueError(f"scaling_concurrency must be at least 1, "
                             f"got {self.scaling_concurrency}")  # fmt: skip
        clash = ephemeral_overlap(self.base_port, self.base_port + PORT_SPAN - 1)
        if clash is not None:
            raise ValueError(
                f"base_port {self.base_port}: the run's ports {self.base_port}-"
                f"{self.base_port + PORT_SPAN - 1} overlap the kernel's ports for outgoing "
                f"connections {clash[0]}-{clash[1]} (net.ipv4.ip_local_port_range), where "
                "nodes fail to bind at random; choose a base port outside it")
        small = [b for b in self.scaling_banks if b < 2]
        if small:
            raise ValueError(f"scaling_banks must each be at least 2, got {small}")
        if self.main_shape.layout != self.layout:
            self.main_shape = replace(self.main_shape, layout=self.layout)

    @classmethod
    def quick_mode(cls, base_port: int = 8600) -> Settings:
        """A few seconds of load per workload on a small network: proves the suite works."""
        return cls(
            sections=("ratios", "workloads"),
            duration=2.0,
            warmup=1.0,
            concurrency=8,
            repeats=1,
            sweep=(4, 8),
            payment_rates=(5.0,),
            moderate_rate=5.0,
            batch_settings=(),
            scaling_banks=(),
            scaling_duration=2.0,
            scaling_concurrency=8,
            idle_seconds=2.0,
            base_port=base_port,
            quick=True,
            main_shape=Shape(banks=2, regulator=False, orderers=1),
        )


Log = Callable[[str], None]


class Suite:
    """One run of the suite (see the module docstring)."""

    def __init__(self, settings: Settings, log: Log) -> None:
        self.s = settings
        self.log = log
        self.root = new_run_root()
        self.points: list[dict[str, Any]] = []
        self.networks: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.pending_scan: dict[str, Any] | None = None
        self.node_error: str | None = None
        self._next_port = settings.base_port

    # ------------------------------------------------------------------ networks

    def _port_block(self, shape: Shape) -> int:
        """The base port of the next network: blocks of 100 ports after the run's base
        port, starting again at it after :data:`PORT_SPAN` (one network runs at a time)."""
        size = ((shape.slots() * 10 + 99) // 100) * 100
        if size > PORT_SPAN:
            raise ValueError(f"a network of {shape.slots()} nodes needs {size} ports, more than "
                             f"the run's {PORT_SPAN} from --base-port")  # fmt: skip
        base = self._next_port
        self._next_port += size
        if self._next_port > self.s.base_port + PORT_SPAN:
            self._next_port = self.s.base_port  # networks never overlap in time
            base = self._next_port
            self._next_port += size
        return base

    def new_cluster(self, name: str, shape: Shape) -> Cluster:
        """A network of ``shape`` on the run's layout (``--layout`` applies to them all)."""
        shape = replace(shape, layout=self.s.layout)
        return Cluster(self.root, name=name, base_port=self._port_block(shape), shape=shape,
                       log=self.log)  # fmt: skip

    def bring_up(self, name: str, shape: Shape) -> Cluster:
        """A network of ``shape``, up (taken down again if it does not come up)."""
        cluster = self.new_cluster(name, shape)
        try:
            cluster.up()
        except BaseException:
            cluster.down()
            raise
        return cluster

    def _network_record(self, cluster: Cluster, **extra: Any) -> dict[str, Any]:
        return {
            "name": cluster.consortium.name,
            "shape": asdict(cluster.shape),
            "label": cluster.shape.label(),
            "base_port": cluster.consortium.base_port,
            "up_s": None if cluster.up_seconds is None else round(cluster.up_seconds, 2),
            "namespaces": cluster.namespace_facts(),
            **extra,
        }

    # ------------------------------------------------------------------ measuring

    async def measure(
        self,
        cluster: Cluster,
        *,
        point_id: str,
        section: str,
        workload: str,
        chaincode: str,
        client: str,
        gateway: BankClient,
        op: loadgen.Operation | None = None,
        concurrency: int | None = None,
        rate: float | None = None,
        slots: int = 0,
        duration: float | None = None,
        tx_per_op: float = 1.0,
        tx_per_label: dict[str, float] | None = None,
        node_config: dict[str, Any] | None = None,
        acceptor: Acceptor | None = None,
        idle: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Run one point and record it. With ``idle`` (``Cluster.idle_cpu()``), the point
        also carries its CPU with that idle CPU subtracted (``idle_subtracted``)."""
        duration = self.s.duration if duration is None else duration
        gateway_peer = gateway.org.peers[0].name
        meter = Meter(cluster, gateway_peer)
        client_cpu: float | None = None
        if acceptor is not None:
            acceptor.times.clear()
        if node_config is not None:
            cfg = {**node_config, "durationS": duration, "warmupS": self.s.warmup}
            result, client_cpu = await anchors.run_node_client(
                cfg, on_open=meter.open, on_close=meter.close,
                deadline_s=duration + self.s.warmup + 120,
            )  # fmt: skip
        elif rate is not None:
            assert op is not None
            result = await loadgen.open_loop(
                op, rate=rate, slots=slots, duration=duration, warmup=self.s.warmup,
                on_open=meter.open, on_close=meter.close,
            )  # fmt: skip
        else:
            assert op is not None
            assert concurrency is not None
            result = await loadgen.closed_loop(
                op, concurrency=concurrency, duration=duration, warmup=self.s.warmup,
                on_open=meter.open, on_close=meter.close,
            )  # fmt: skip
        if acceptor is not None:
            await acceptor.drain()
        summary = loadgen.summarize(result, tx_per_op=tx_per_op, tx_per_label=tx_per_label)
        point: dict[str, Any] = {
            "id": point_id,
            "section": section,
            "network": cluster.consortium.name,
            "batch": {
                "timeout_ms": cluster.shape.batch_timeout_ms,
                "max_message_count": cluster.shape.max_message_count,
            },
            "workload": workload,
            "chaincode": chaincode,
            "client": client,
            "loop": "open" if rate is not None else "closed",
            **summary,
            **meter.report(summary["committed_tx"], client_cpu_s=client_cpu,
                           idle_cores=None if idle is None else idle["by_node"]),
            **extra,
        }
        if acceptor is not None:
            point["acceptor"] = acceptor.stats()
            if acceptor.times:
                point["payment_phases_ms"] = _phases(acceptor.times)
        self.points.append(point)
        self._say_point(point)
        return point

    def _say_point(self, p: dict[str, Any]) -> None:
        lat = p["latency_ms"]
        load = (f"rate {p['offered_rate']:g}/s" if p["loop"] == "open"
                else f"{p.get('concurrency')} in flight")  # fmt: skip
        fails = f" failures {p['failures']}" if p["failures"] else ""
        cpu = p["cpu_ms_per_tx_total"]
        self.log(
            f"  {p['id']:<34} {load:>16}  {p['ops_per_s']:8.1f} op/s {p['tx_per_s']:8.1f} tx/s"
            f"  p50 {_f(lat['p50'])} p99 {_f(lat['p99'])} ms  cpu {cpu} ms/tx{fails}"
        )

    # ------------------------------------------------------------------ sections

    async def run(self) -> dict[str, Any]:
        started = time.time()
        t0 = time.monotonic()
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "command": " ".join(["bench/run", *sys.argv[1:]]),
            "mode": "quick" if self.s.quick else "full",
            "layout": self.s.layout,
            "settings": _settings_json(self.s),
            "machine": machine_info(),
        }
        if self.s.node:
            try:
                anchors.ensure_node_deps(self.log)
                record["machine"]["node"] = anchors.node_versions()
            except anchors.NodeUnavailable as exc:
                self.node_error = str(exc)
                self.notes.append(f"Node anchors skipped: {exc}")
                self.log(f"  ! Node anchors skipped: {exc}")
        else:
            self.node_error = "disabled (--no-node)"
        if {"ratios", "workloads", "scaling"} & set(self.s.sections):
            self.log(f"== main network: {self.s.main_shape.label()}")
            main = self.bring_up("benchmain", self.s.main_shape)
            try:
                await self.main_network(main)
            finally:
                self.log("  taking the main network down")
                main.down()
        if "marketplace" in self.s.sections:
            record["marketplace"] = await self.marketplace_section()
        if "batch" in self.s.sections:
            await self.batch_section()
        if "scaling" in self.s.sections:
            await self.scaling_section()
        record["networks"] = self.networks
        record["points"] = self.points
        record["pending_scan"] = self.pending_scan
        record["notes"] = self.notes
        record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        record["duration_s"] = round(time.monotonic() - t0, 1)
        record["machine"]["loadavg_end"] = _loadavg()
        from dtbench.report import derive

        record.update(derive(record))
        return record

    async def main_network(self, cluster: Cluster) -> None:
        s = self.s
        self.log(f"  up in {cluster.up_seconds or 0.0:.1f} s")
        idle = cluster.memory()
        idle_cpu = await asyncio.to_thread(cluster.idle_cpu, 3.0)
        # the anchors serve the ratios and workloads; a scaling-only run measures the
        # deposit-token network alone, as on the other sizes
        anchors_wanted = bool({"ratios", "workloads"} & set(s.sections))
        deploy_noop = cluster.deploy_noop() if anchors_wanted else None
        deploy_floor = cluster.deploy_floor() if anchors_wanted else None
        deploy_node = None
        node_ok = self.node_error is None and anchors_wanted
        if node_ok:
            try:
                deploy_node = cluster.deploy_node_anchor()
            except Exception as exc:
                node_ok = False
                self.node_error = f"deploying the Node chaincode failed: {exc}"
                self.notes.append(self.node_error)
                self.log(f"  ! {self.node_error}")
        payer_org, payee_org = cluster.bank(0), cluster.bank(1)
        payer = await open_client(cluster, payer_org)
        payee = await open_client(cluster, payee_org)
        minter = await open_client(cluster, payer_org, "minter")
        ledger = Ledger(payer, payee, minter, currency="USD")
        acceptor = Acceptor(payee, payer_org.name, events_chaincode=payer.chaincode)
        await acceptor.start()
        # open-loop payments take a free slot each: room for rate x latency in flight
        slots = max(s.concurrency, *s.sweep, 64) if not s.quick else max(s.concurrency, *s.sweep)
        try:
            setup = await ledger.ensure_slots(slots)
            self.log(f"  {slots} account slots opened and funded in {setup:.1f} s")
            node_setup = None
            if node_ok:
                node_setup = await ledger.ensure_node_slots(
                    max(s.concurrency, *s.sweep), cluster.registry()
                )
            await asyncio.wait_for(acceptor.connected.wait(), 30)
            self.networks.append(self._network_record(
                cluster, role="main", memory_idle=idle, idle_cpu=idle_cpu,
                deploy_s={"noop": _round(deploy_noop), "privfloor": _round(deploy_floor),
                          "nodecc": _round(deploy_node)},
                setup_s={"accounts": round(setup, 2),
                         "node_accounts": None if node_setup is None else round(node_setup, 2)},
            ))  # fmt: skip
            if "ratios" in s.sections:
                await self.ratios_section(cluster, ledger, node_ok)
            if "workloads" in s.sections:
                await self.workloads_section(cluster, ledger, acceptor)
            if "batch" in s.sections:
                tag = f"{cluster.shape.batch_timeout_ms}ms/{cluster.shape.max_message_count}"
                await self._batch_points(cluster, ledger, acceptor, tag)
            if "scaling" in s.sections:
                idle_before = await self._scaling_points(cluster, ledger, acceptor)
                self.networks[-1]["memory_loaded"] = cluster.memory()
                self.networks[-1]["idle_cpu_before_points"] = idle_before
        finally:
            await acceptor.stop()
            for c in (payer, payee, minter):
                await c.close()

    def _node_client_config(
        self,
        cluster: Cluster,
        client: BankClient,
        workload: str,
        ledger: Ledger,
        signer: str,
        chaincode: str,
    ) -> dict[str, Any]:
        profile = cluster.profile(client.org)
        ident = profile["identities"][client.identity]
        return {
            "endpoint": profile["gateway"]["endpoint"],
            "serverName": profile["gateway"]["server_name"],
            "tlsCaCertPath": profile["gateway"]["tls_ca_cert"],
            "mspId": client.msp_id,
            "certPath": ident["cert"],
            "keyPath": ident["key"],
            "channel": profile["channel"],
            "chaincode": chaincode,
            "workload": workload,
            "concurrency": self.s.concurrency,
            "signer": signer,
            "pairs": ledger.pairs[: self.s.concurrency],
            "refPrefix": f"bench-{ledger.run_id}-node-{len(self.points)}",
        }

    async def ratios_section(self, cluster: Cluster, ledger: Ledger, node_ok: bool) -> None:
        s = self.s
        c = s.concurrency
        payer = ledger.payer
        self.log(f"== ratios: {s.repeats} interleaved round(s) at {c} in flight, "
                 f"{s.duration:g} s each")  # fmt: skip
        stock_node = "node (@hyperledger/fabric-gateway, stock signer)"

        def node_client(workload: str, chaincode: str) -> Callable[[], dict[str, Any]]:
            # built just before its point: the config names the point's reference prefix
            return lambda: {"node_config": self._node_client_config(
                cluster, payer, workload, ledger, "stock", chaincode)}  # fmt: skip

        # (point, workload, chaincode, client, what drives it), in the order of a round
        contract = f"{ledger.chaincode_of(payer)} (Python contract)"
        plan: list[tuple[str, str, str, str, Callable[[], dict[str, Any]]]] = [
            ("noop-py", "noop", "noop (Python, our shim)", "python",
             lambda: {"op": noop_op(payer, NOOP_PY)}),
            ("noop-node", "noop", "nodecc (Node fabric-shim)", "python",
             lambda: {"op": noop_op(payer, NODE_ANCHOR)}),
            ("floor-py", "floor", "privfloor (Python probe, our shim, one collection)", "python",
             lambda: {"op": floor_op(payer, FLOOR_PY, f"acct-{payer.org.name}")}),
            ("transfer-py", "transfer", contract, "python",
             lambda: {"op": transfer_op(ledger)}),
            ("transfer-node", "transfer", "nodecc (Node fabric-shim)", "python",
             lambda: {"op": transfer_op(ledger, node_anchor=True)}),
            ("client-node", "transfer", contract, stock_node,
             node_client("transfer", ledger.chaincode_of(payer))),
            ("client-node-noop", "noop", "noop (Python, our shim)", stock_node,
             node_client("noop", NOOP_PY)),
        ]  # fmt: skip
        needs_node = {"noop-node", "transfer-node", "client-node", "client-node-noop"}
        for r in range(1, s.repeats + 1):
            common: dict[str, Any] = {"section": "ratios", "gateway": payer, "round": r}
            for name, workload, chaincode, client, drive in plan:
                if name in needs_node and not node_ok:
                    continue
                await self.measure(
                    cluster, point_id=f"ratios/{name}#{r}", workload=workload,
                    chaincode=chaincode, client=client, concurrency=c, **drive(), **common,
                )  # fmt: skip
        if node_ok:
            self.log("== reference points (once)")
            common = {"section": "reference", "gateway": payer}
            cfg = self._node_client_config(
                cluster, payer, "transfer", ledger, "node-crypto", ledger.chaincode_of(payer)
            )
            await self.measure(
                cluster,
                point_id="reference/client-node-tuned",
                workload="transfer",
                chaincode=contract,
                client="node (@hyperledger/fabric-gateway, node:crypto signer)",
                node_config=cfg,
                concurrency=c,
                **common,
            )

    async def workloads_section(self, cluster: Cluster, ledger: Ledger, acceptor: Acceptor) -> None:
        s = self.s
        payer = ledger.payer
        self.log("== workloads")
        common: dict[str, Any] = {"section": "workloads", "gateway": payer}
        for c in s.sweep:
            await self.measure(
                cluster,
                point_id=f"sweep/noop@{c}",
                workload="noop",
                chaincode="noop (Python, our shim)",
                client="python",
                op=noop_op(payer, NOOP_PY),
                concurrency=c,
                **common,
            )
        for c in s.sweep:
            await self.measure(
                cluster,
                point_id=f"sweep/transfer@{c}",
                workload="transfer",
                chaincode="dtoken",
                client="python",
                op=transfer_op(ledger),
                concurrency=c,
                **common,
            )
        await self.measure(
            cluster,
            point_id="workload/mint",
            workload="mint",
            chaincode="dtoken",
            client="python",
            op=mint_op(ledger),
            concurrency=s.concurrency,
            **{**common, "gateway": ledger.minter},
        )
        for rate in s.payment_rates:
            await self.measure(
                cluster,
                point_id=f"sweep/payment@{rate:g}/s",
                workload="payment",
                chaincode="dtoken",
                client="python",
                op=payment_op(ledger, acceptor),
                rate=rate,
                slots=len(ledger.payees),
                tx_per_op=2.0,
                acceptor=acceptor,
                **common,
            )
        if s.moderate_rate not in s.payment_rates:
            await self.measure(
                cluster,
                point_id=f"sweep/payment@{s.moderate_rate:g}/s",
                workload="payment",
                chaincode="dtoken",
                client="python",
                op=payment_op(ledger, acceptor),
                rate=s.moderate_rate,
                slots=len(ledger.payees),
                tx_per_op=2.0,
                acceptor=acceptor,
                **common,
            )
        await self.measure(
            cluster,
            point_id="workload/payment-closed",
            workload="payment",
            chaincode="dtoken",
            client="python",
            op=payment_op(ledger, acceptor),
            concurrency=s.concurrency,
            tx_per_op=2.0,
            acceptor=acceptor,
            **common,
        )
        await self.measure(
            cluster,
            point_id="workload/mixed",
            workload="mixed",
            chaincode="dtoken",
            client="python",
            op=mixed_op(ledger, acceptor),
            concurrency=s.concurrency,
            tx_per_label={"payment": 2.0},
            acceptor=acceptor,
            **common,
        )
        await acceptor.drain()
        self.pending_scan = await pending_scan(ledger, acceptor)
        self.log(f"  get_pending after {self.pending_scan['transfers_in_pair']} transfers: "
                 f"full {self.pending_scan['full_ms']:.0f} ms, last "
                 f"{self.pending_scan['window_s']:g} s {self.pending_scan['window_ms']:.0f} ms")

    async def marketplace_section(self) -> dict[str, Any]:
        """Issue 14: one payer account, 1,000 exporters, two paying processes
        (:mod:`dtbench.marketplace`), on a network of its own (the default shape)."""
        from dtbench.marketplace import MarketplaceSettings, run_marketplace

        shape = Shape()
        self.log(f"== marketplace: {replace(shape, layout=self.s.layout).label()}")
        cluster = self.bring_up("benchmarket", shape)
        try:
            settings = MarketplaceSettings()
            if self.s.quick:
                settings = MarketplaceSettings(rates=(20.0,), baseline_rates=(5.0,),
                                               duration=2.0, exporters=20, burst=100)
            result: dict[str, Any] = await run_marketplace(cluster, settings, self.log)
        finally:
            self.log("  taking the marketplace network down")
            cluster.down()
        self.networks.append(self._network_record(cluster, section="marketplace"))
        return result

    async def batch_section(self) -> None:
        s = self.s
        for timeout_ms, count in s.batch_settings:
            shape = Shape(banks=s.main_shape.banks, regulator=s.main_shape.regulator,
                          orderers=s.main_shape.orderers, batch_timeout_ms=timeout_ms,
                          max_message_count=count)  # fmt: skip
            await self._other_network(f"batch{timeout_ms}m{count}", shape, "batch")

    async def scaling_section(self) -> None:
        s = self.s
        for banks in s.scaling_banks:
            shape = Shape(banks=banks, regulator=s.main_shape.regulator,
                          orderers=s.main_shape.orderers,
                          batch_timeout_ms=s.main_shape.batch_timeout_ms,
                          max_message_count=s.main_shape.max_message_count)  # fmt: skip
            await self._other_network(f"scale{banks}banks", shape, "scaling")

    async def _other_network(self, name: str, shape: Shape, section: str) -> None:
        """Bring up a network of another shape, measure its section's points, take it down."""
        self.log(f"== {section}: {replace(shape, layout=self.s.layout).label()}")
        try:
            cluster = self.bring_up(name, shape)
        except Exception as exc:  # one size that never came up must not lose the others'
            note = f"{name} never came up: {type(exc).__name__}"
            self.notes.append(note)
            self.log(f"  ! {note}; its points are missing from the record")
            return
        try:
            self.log(f"  up in {cluster.up_seconds or 0.0:.1f} s")
            idle = cluster.memory()
            idle_cpu = await asyncio.to_thread(cluster.idle_cpu, 3.0)
            payer = await open_client(cluster, cluster.bank(0))
            payee = await open_client(cluster, cluster.bank(1))
            minter = await open_client(cluster, cluster.bank(0), "minter")
            ledger = Ledger(payer, payee, minter, currency="USD")
            acceptor = Acceptor(payee, cluster.bank(0).name, events_chaincode=payer.chaincode)
            await acceptor.start()
            try:
                slots = max(self.s.concurrency, self.s.scaling_concurrency, 64)
                setup = await ledger.ensure_slots(slots)
                self.log(f"  {slots} account slots opened and funded in {setup:.1f} s")
                await asyncio.wait_for(acceptor.connected.wait(), 30)
                idle_before = None
                if section == "batch":
                    tag = f"{shape.batch_timeout_ms}ms/{shape.max_message_count}"
                    await self._batch_points(cluster, ledger, acceptor, tag)
                else:
                    idle_before = await self._scaling_points(cluster, ledger, acceptor)
                self.networks.append(self._network_record(
                    cluster, role=section, memory_idle=idle, memory_loaded=cluster.memory(),
                    idle_cpu=idle_cpu, idle_cpu_before_points=idle_before,
                    setup_s={"accounts": round(setup, 2)},
                ))  # fmt: skip
            finally:
                await acceptor.stop()
                for c in (payer, payee, minter):
                    await c.close()
        finally:
            cluster.down()

    async def _batch_points(
        self, cluster: Cluster, ledger: Ledger, acceptor: Acceptor, tag: str
    ) -> None:
        """Transfer throughput at the suite's concurrency; payment latency at the moderate
        rate: what the batch settings trade against each other."""
        s = self.s
        common: dict[str, Any] = {
            "section": "batch",
            "gateway": ledger.payer,
            "chaincode": "dtoken",
            "client": "python",
        }
        await self.measure(
            cluster,
            point_id=f"batch/transfer@{tag}",
            workload="transfer",
            op=transfer_op(ledger),
            concurrency=s.concurrency,
            **common,
        )
        await self.measure(
            cluster,
            point_id=f"batch/payment@{tag}",
            workload="payment",
            op=payment_op(ledger, acceptor),
            rate=s.moderate_rate,
            slots=len(ledger.payees),
            tx_per_op=2.0,
            acceptor=acceptor,
            **common,
        )

    async def _scaling_points(
        self, cluster: Cluster, ledger: Ledger, acceptor: Acceptor
    ) -> dict[str, Any]:
        """One size of the scaling section: the network's idle CPU (measured here, after
        a short settle, with no load), then the intra-bank private transfer (closed loop)
        and the cross-bank payment at the moderate rate (open loop), each with its CPU with
        that idle CPU subtracted. Returns the idle measurement."""
        s = self.s
        banks = cluster.shape.banks
        await asyncio.sleep(min(3.0, s.idle_seconds))  # let the setup's last blocks settle
        idle = await asyncio.to_thread(cluster.idle_cpu, s.idle_seconds)
        self.log(f"  idle: {idle['cores']:.3f} cores ({idle['by_role']}) over "
                 f"{idle['seconds']:g} s")  # fmt: skip
        chaincode = ledger.chaincode_of(ledger.payer)
        common: dict[str, Any] = {"section": "scaling", "gateway": ledger.payer,
                                  "client": "python", "duration": s.scaling_duration,
                                  "idle": idle, "banks": banks,
                                  "layout": cluster.shape.layout}  # fmt: skip
        await self.measure(cluster, point_id=f"scaling/transfer@{banks}banks",
                           workload="transfer", chaincode=chaincode, op=transfer_op(ledger),
                           concurrency=s.scaling_concurrency, **common)  # fmt: skip
        await self.measure(cluster, point_id=f"scaling/payment@{banks}banks",
                           workload="payment", chaincode=chaincode,
                           op=payment_op(ledger, acceptor), rate=s.moderate_rate,
                           slots=len(ledger.payees), tx_per_op=2.0, acceptor=acceptor,
                           **common)  # fmt: skip
        for p in self.points[-2:]:
            sub = p.get("idle_subtracted", {})
            self.log(f"  {p['id']}: CPU per tx per peer, idle subtracted "
                     f"{sub.get('ms_per_tx_per_peer')} ms ({sub.get('peers')} peers); "
                     f"all processes {sub.get('ms_per_tx')} ms")  # fmt: skip
        return idle


async def pending_scan(ledger: Ledger, acceptor: Acceptor) -> dict[str, Any]:
    """What the payee bank's listener pays per pass once the pair has a history: one
    ``get_pending`` over every transfer of the pair, and one over the last ``window_s``
    seconds through the ``open/`` index (as ``dtoken.listener.PendingWindow`` asks)."""
    contract = ledger.payee.contract(ledger.chaincode_of(ledger.payee))
    window_s = 30.0

    async def timed(since: str | None) -> tuple[float, int]:
        req: dict[str, Any] = {"direction": "incoming", "page_size": 1000}
        if since is not None:
            req["since"] = since
        found, t0 = 0, time.monotonic()
        while True:
            page = json.loads(await contract.evaluate("get_pending", transient_data=request(req)))
            found += len(page["transfers"])
            if page["done"]:
                return (time.monotonic() - t0) * 1000, found
            req["cursor"] = page["cursor"]

    mark = format_timestamp(datetime.now(UTC) - timedelta(seconds=window_s))
    full_ms, waiting = await timed(None)
    window_ms, _ = await timed(mark)
    # every payment of the run went from the first bank to the second and was accepted
    return {"transfers_in_pair": len(acceptor.times), "still_waiting": waiting,
            "full_ms": round(full_ms, 1), "window_s": window_s,
            "window_ms": round(window_ms, 1)}


def _phases(times: list[Any]) -> dict[str, float | None]:
    def med(values: list[float]) -> float | None:
        return round(statistics.median(values) * 1000.0, 1) if values else None

    return {
        "initiate_committed_p50": med([t.initiate_committed for t in times]),
        "event_received_p50": med([t.event_received for t in times]),
        "accept_committed_p50": med([t.accept_committed for t in times]),
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _f(v: float | None) -> str:
    return "   -  " if v is None else f"{v:6.0f}"


def _settings_json(s: Settings) -> dict[str, Any]:
    out = asdict(s)
    out["main_shape"] = asdict(s.main_shape)
    return out


def _loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import grpc

    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "fabric": FABRIC_VERSION,
        "loadavg_start": _loadavg(),
    }


async def run_suite(settings: Settings, log: Log) -> dict[str, Any]:
    """Run the suite and return its record (see :mod:`dtbench.report` for the outputs)."""
    suite = Suite(settings, log)
    try:
        return await suite.run()
    finally:
        import shutil

        shutil.rmtree(suite.root, ignore_errors=True)
