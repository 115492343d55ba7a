"""The network's nodes: how each orderer, peer and chaincode server is launched,
starting them and waiting until they answer, and stopping them.

:class:`NodeHandle` is one node (for status, fault injection and logs); it starts, inspects
and stops through its :class:`~consortium.runtime.Runtime` (native processes, or containers).
:class:`NodeSet` makes the handles of a consortium's nodes from the state folder and the
runtime. Starting a node that runs already is a no-op, so the ``ensure_*`` steps are
idempotent. Handles carry the addresses clients on this machine use (``endpoint``,
``health_url``); a node's own configuration uses the runtime's view of the consortium.

This module must not run Fabric's command-line tools (channel joins, lifecycle) nor
write anything but the node configuration files (through :mod:`consortium.nodeconfig`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from consortium import nodeconfig, processes
from consortium.binaries import FabricInstall
from consortium.chaincodes import (
    MAX_CHAINCODES,
    REGISTRY_PIN_ENV,
    ChaincodeCatalog,
    Deployment,
    registry_pin,
)
from consortium.config import Consortium, OrdererNode, PeerNode
from consortium.errors import NodeError
from consortium.processes import ProcessSpec
from consortium.runtime import NativeRuntime, Runtime

__all__ = [
    "NodeHandle",
    "NodeSet",
    "chaincode_alias",
    "chaincode_node_name",
    "chaincode_server_endpoint",
]


@dataclass(frozen=True)
class NodeHandle:
    """One process of the network, for status, fault injection and logs."""

    name: str
    kind: str  # "orderer" | "peer" | "chaincode"
    org: str
    spec: ProcessSpec
    health_url: str | None  # operations /healthz (orderers and peers)
    tls_ca: Path
    endpoint: str  # where clients on this machine reach it
    runtime: Runtime = field(default_factory=lambda: NativeRuntime(_no_fabric), compare=False)
    #: Its host names on the runtime's network (containers), first one its own host name.
    aliases: tuple[str, ...] = ()
    #: The ports it serves (published by a container runtime).
    ports: tuple[int, ...] = ()
    #: Whether it keeps a ledger (``data/`` of its folder: a volume of its own in a container).
    ledger: bool = False

    @property
    def log_file(self) -> Path:
        return self.spec.log_file

    @property
    def home(self) -> Path:
        return self.spec.home

    def pid(self) -> int | None:
        return self.runtime.pid(self)

    def rss_mb(self) -> float | None:
        """Resident memory of the process in MiB (None if it is not running)."""
        return self.runtime.rss_mb(self)

    def start(self) -> None:
        """Start it unless it runs."""
        self.runtime.start(self)

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> bool:
        """Stop it (SIGKILL at once with ``kill``, as a crash would); True if it ran."""
        return self.runtime.stop(self, kill=kill, timeout=timeout)

    def ledger_dir(self) -> Path:
        """Its ledger on this machine (orderers and peers), for inspection."""
        return self.runtime.ledger_dir(self)

    def alive(self) -> bool:
        return self.pid() is not None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until its operations endpoint answers 200 (orderers, peers) and its gRPC
        port accepts connections; NodeError (with its log's end) if it dies or times out."""
        if self.health_url:
            processes.wait_healthy(
                self.spec, self.health_url, ca_file=self.tls_ca, timeout=timeout, alive=self.alive
            )
        host, port = self.endpoint.rsplit(":", 1)
        processes.wait_port(self.spec, host, int(port), timeout=timeout, alive=self.alive)

    def healthy(self) -> bool:
        if self.pid() is None:
            return False
        if self.health_url is None:
            host, port = self.endpoint.rsplit(":", 1)
            return processes.port_open(host, int(port))
        return processes.health(self.health_url, self.tls_ca)


def _no_fabric() -> FabricInstall:
    raise NodeError("this node handle was made without a runtime")


def chaincode_server_endpoint(p: PeerNode, slot: int) -> str:
    """Where clients on this machine reach the chaincode server in port slot ``slot``."""
    return f"{p.host}:{p.chaincode_server_port + slot}"


def chaincode_alias(p: PeerNode, slot: int) -> str:
    """The host name of peer ``p``'s chaincode server in port slot ``slot`` on a container
    network (``chaincode.<peer>``, then ``chaincode<slot>.<peer>``); its TLS certificate
    names every slot's."""
    return f"chaincode.{p.name}" if slot == 0 else f"chaincode{slot}.{p.name}"


def chaincode_node_name(p: PeerNode, d: Deployment) -> str:
    return f"chaincode.{p.name}" if d.slot == 0 else f"chaincode-{d.name}.{p.name}"


#: The order ``stop_all`` stops nodes in: chaincode servers, then peers, then orderers.
_STOP_ORDER = ("chaincode", "peer", "orderer")


class NodeSet:
    """The nodes of one consortium in one state folder.

    ``fabric()`` returns the pinned binaries (found or built on first use); ``runtime`` runs
    the nodes (default: native processes, placed by ``launcher(host)``, a command prefix that
    runs a node on that host and execs it there: tests use ``ip netns exec <ns>`` for
    multi-host networks); ``chaincode_cwd`` is the chaincode servers' working directory
    (default: each server's node folder; the server is ``python -m fabshim`` from the
    installed packages, so it needs no particular one).
    """

    def __init__(
        self,
        consortium: Consortium,
        catalog: ChaincodeCatalog,
        fabric: Callable[[], FabricInstall],
        *,
        chaincode_cwd: Path | None = None,
        extra_pythonpath: Sequence[Path] = (),
        launcher: Callable[[str], Sequence[str]] | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.consortium = consortium
        self.catalog = catalog
        self.layout = catalog.layout
        self.fabric = fabric
        self.chaincode_cwd = chaincode_cwd
        self.extra_pythonpath = tuple(extra_pythonpath)
        self.launcher = launcher
        self.runtime: Runtime = runtime or NativeRuntime(fabric, launcher)
        #: The consortium as the nodes see each other (the runtime's host names).
        self.view = self.runtime.node_view(consortium)

    def _launcher(self, host: str) -> tuple[str, ...]:
        return tuple(self.launcher(host)) if self.launcher else ()

    def _view_orderer(self, o: OrdererNode) -> OrdererNode:
        return next(v for v in self.view.ordering.orderers if v.name == o.name)

    def _view_peer(self, p: PeerNode) -> PeerNode:
        return next(v for v in self.view.peers if v.name == p.name)

    # ------------------------------------------------------------------ handles

    def orderer(self, o: OrdererNode) -> NodeHandle:
        home = self.layout.node_dir(o.name)
        spec = ProcessSpec(
            name=o.name,
            argv=[self.runtime.fabric_tool("orderer")],
            home=home,
            env={"FABRIC_CFG_PATH": str(home / "config")},
            launcher=self._launcher(o.host),
        )
        org = self.consortium.orderer_org
        return NodeHandle(
            name=o.name,
            kind="orderer",
            org=org.name,
            spec=spec,
            health_url=f"https://{o.host}:{o.operations_port}/healthz",
            tls_ca=self.layout.tlsca(org.name),
            endpoint=o.endpoint,
            runtime=self.runtime,
            aliases=(self._view_orderer(o).host,),
            ports=(o.port, o.admin_port, o.operations_port),
            ledger=True,
        )

    def peer(self, p: PeerNode) -> NodeHandle:
        home = self.layout.node_dir(p.name)
        spec = ProcessSpec(
            name=p.name,
            argv=[self.runtime.fabric_tool("peer"), "node", "start"],
            home=home,
            env={
                "FABRIC_CFG_PATH": str(home / "config"),
                "CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG": json.dumps(
                    {
                        f"cc{slot}": f"{self.runtime.chaincode_host(p, slot)}:"
                        f"{p.chaincode_server_port + slot}"
                        for slot in range(MAX_CHAINCODES)
                    }
                ),
            },
            launcher=self._launcher(p.host),
        )
        return NodeHandle(
            name=p.name,
            kind="peer",
            org=p.org,
            spec=spec,
            health_url=f"https://{p.host}:{p.operations_port}/healthz",
            tls_ca=self.layout.tlsca(p.org),
            endpoint=p.endpoint,
            runtime=self.runtime,
            aliases=(self._view_peer(p).host,),
            ports=(p.port, p.chaincode_listen_port, p.operations_port),
            ledger=True,
        )

    def chaincode(self, p: PeerNode, d: Deployment | None = None) -> NodeHandle:
        """The chaincode server process of deployment ``d`` that peer ``p`` dials."""
        d = d or self.catalog.main()
        org = self.consortium.org(p.org)
        name = chaincode_node_name(p, d)
        home = self.layout.node_dir(name)
        server_dir = self.layout.chaincode_server_dir(org.name, p.name)
        pythonpath = [str(x) for x in self.extra_pythonpath]
        if os.environ.get("PYTHONPATH"):
            pythonpath.append(os.environ["PYTHONPATH"])
        endpoint = chaincode_server_endpoint(p, d.slot)
        host = self.runtime.chaincode_host(p, d.slot)
        spec = ProcessSpec(
            name=name,
            # Our Python shim by default; another server (e.g. a Node fabric-shim one,
            # for benchmarks) gets the same CHAINCODE_* environment.
            argv=json.loads(d.argv_json)
            if d.argv_json
            else [self.runtime.python(), "-m", "fabshim", "serve", d.module],
            home=home,
            env={
                # Known once the package exists (it is made before servers start).
                "CHAINCODE_ID": (
                    self.catalog.package_id(org, d)
                    if self.catalog.package_path(org, d).exists()
                    else ""
                ),
                "CHAINCODE_SERVER_ADDRESS": f"{host}:{p.chaincode_server_port + d.slot}",
                "CHAINCODE_TLS_CERT": str(server_dir / "server.crt"),
                "CHAINCODE_TLS_KEY": str(server_dir / "server.key"),
                "CHAINCODE_CLIENT_CA_CERT": str(self.layout.tlsca(org.name)),
                "DTOKEN_BANK_MSP": org.msp_id,
                "DTOKEN_SECRET_FILE": str(self.layout.secret_file(org)),
                # The init_network argument this organization's operator agreed to.
                REGISTRY_PIN_ENV: registry_pin(self.consortium),
                "PYTHONPATH": os.pathsep.join(pythonpath),
                "PYTHONUNBUFFERED": "1",
                **(json.loads(d.env_json) if d.env_json else {}),
            },
            cwd=self.chaincode_cwd,
            launcher=self._launcher(p.host),
        )
        return NodeHandle(
            name=name,
            kind="chaincode",
            org=org.name,
            spec=spec,
            health_url=None,
            tls_ca=self.layout.tlsca(org.name),
            endpoint=endpoint,
            runtime=self.runtime,
            aliases=(host,),
            ports=(p.chaincode_server_port + d.slot,),
        )

    def all(self) -> list[NodeHandle]:
        """Every node of the network: orderers, peers, chaincode servers."""
        c = self.consortium
        out = [self.orderer(o) for o in c.ordering.orderers]
        out += [self.peer(p) for p in c.peers]
        out += [self.chaincode(p, d) for d in self.catalog.deployments() for p in c.peers]
        return out

    def named(self, name: str) -> NodeHandle:
        for handle in self.all():
            if handle.name == name:
                return handle
        raise KeyError(f"no node named {name!r}")

    # ------------------------------------------------------------------ start / stop

    def ensure_fabric_nodes(self) -> None:
        """Write every orderer's and peer's configuration, start them, wait until they
        answer on their operations, gRPC and (orderers) admin ports."""
        c, view, fabric = self.consortium, self.view, self.fabric()
        handles: list[NodeHandle] = []
        for o in c.ordering.orderers:
            nodeconfig.write_orderer_config(view, self.layout, fabric, self._view_orderer(o))
            handles.append(self.orderer(o))
        for p in c.peers:
            nodeconfig.write_peer_config(view, self.layout, fabric, self._view_peer(p))
            handles.append(self.peer(p))
        for h in handles:
            h.start()
        # /healthz answers before the gRPC listener is up: wait_ready waits for both.
        for h in handles:
            h.wait_ready(timeout=60)
        for o in c.ordering.orderers:
            h = self.orderer(o)
            processes.wait_port(h.spec, o.host, o.admin_port, timeout=60, alive=h.alive)

    def ensure_chaincode_servers(self, d: Deployment) -> None:
        """Start deployment ``d``'s server for every peer; wait until each listens."""
        handles = [self.chaincode(p, d) for p in self.consortium.peers]
        for h in handles:
            h.start()
        for h in handles:
            h.wait_ready(timeout=30)

    def stop_all(self) -> list[str]:
        """Stop every node this state folder started; return the names stopped."""
        stopped = []
        handles = self.all() if self.layout.nodes_dir.exists() else []
        for h in sorted(handles, key=lambda h: _STOP_ORDER.index(h.kind)):
            if h.stop():
                stopped.append(h.name)
        return stopped
