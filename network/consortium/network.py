"""The running network: bring it up from a consortium file, report, take it down.

``Network(consortium, state_dir).up()`` goes from empty folders to a committed
chaincode with every organization's chaincode servers running, and is
idempotent: each step first looks at what exists (keys, genesis block, live
processes, channel memberships, installed and committed chaincode) and does
only what is missing, so ``up`` on a healthy network changes nothing and ``up``
after ``down`` (or after a node died) brings the same ledger back.

:class:`Network` is a facade: it composes the modules that each do one job and keeps
the interface callers use (the CLI, the bank SDK's CLI, the benchmarks, the test
harness). What each part owns:

* :mod:`consortium.layout`: the paths of the state folder (its layout is written there);
* :mod:`consortium.identities`: crypto material, chaincode secrets, issued identities;
* :mod:`consortium.nodeconfig`: each node's ``orderer.yaml`` / ``core.yaml``;
* :mod:`consortium.nodes`: the nodes (handles, start, wait, stop), through a runtime:
  :mod:`consortium.runtime` (native processes) or :mod:`consortium.container_runtime`
  (a container per node, through the Docker Engine API);
* :mod:`consortium.admin`: Fabric's tools run as an organization's admin;
* :mod:`consortium.joins`: the genesis block and the channel joins;
* :mod:`consortium.chaincodes`: deployments and their ccaas packages;
* :mod:`consortium.lifecycle`: install, approve, commit, chaincode servers, ``init_network``;
* :mod:`consortium.profiles`: the bank SDK's connection profiles;
* :mod:`consortium.status`: the status report, peer metrics, gossip convergence;
* :mod:`consortium.joining`: a bank joining the running network (``add_bank``).

This module owns the order of ``up``, ``down`` and the state folder's fingerprint; it
must not grow steps of its own: a new step belongs in the module that owns its job.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from consortium import crypto, identities, metrics, namespaces
from consortium.admin import FabricAdmin
from consortium.binaries import FabricInstall, ensure_binaries
from consortium.chaincodes import ChaincodeCatalog, Deployment, registry
from consortium.config import Consortium, OrdererNode, Org, PeerNode
from consortium.errors import NetworkError
from consortium.joining import BankJoin, JoinReport
from consortium.joins import ChannelJoins
from consortium.layout import StateLayout
from consortium.lifecycle import ChaincodeLifecycle
from consortium.nodeconfig import BUILDER_DIR as BUILDER_DIR  # importable from here, as before
from consortium.nodes import NodeHandle, NodeSet
from consortium.profiles import ConnectionProfiles
from consortium.runtime import NATIVE, RUNTIMES, NativeRuntime, Runtime
from consortium.status import NetworkMonitor

__all__ = ["Network", "NodeHandle"]


class Network:
    """A consortium network rooted in a state folder."""

    def __init__(
        self,
        consortium: Consortium,
        state_dir: Path,
        *,
        progress: Callable[[str], None] | None = None,
        extra_pythonpath: Sequence[Path] = (),
        launcher: Callable[[str], Sequence[str]] | None = None,
        runtime: str | None = None,
    ) -> None:
        """``launcher(host)`` returns a command prefix that runs a node on that host
        and execs it there (tests use ``ip netns exec <ns>`` for multi-host networks).
        ``runtime`` is where the nodes run (:data:`consortium.runtime.RUNTIMES`); without it,
        the one the state folder was made with (native for a new one)."""
        self.consortium = consortium
        self.state_dir = state_dir.resolve()
        self.say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.extra_pythonpath = tuple(extra_pythonpath)
        self.launcher = launcher
        self._fabric: FabricInstall | None = None
        self.layout = StateLayout(self.state_dir)
        self.runtime = self._make_runtime(runtime or self._recorded_runtime() or NATIVE)
        self.chaincodes = ChaincodeCatalog(consortium, self.layout)
        self.node_set = NodeSet(
            consortium,
            self.chaincodes,
            lambda: self.fabric,
            extra_pythonpath=self.extra_pythonpath,
            launcher=launcher,
            runtime=self.runtime,
        )
        self.admin = FabricAdmin(consortium, self.layout, lambda: self.fabric, self.node_set)
        self.joins = ChannelJoins(consortium, self.admin, self.node_set.view)
        self.lifecycle = ChaincodeLifecycle(consortium, self.chaincodes, self.node_set, self.admin,
                                            progress=self.say)
        self.profiles = ConnectionProfiles(consortium, self.layout)
        self.monitor = NetworkMonitor(consortium, self.node_set)

    source_of = staticmethod(StateLayout.source_of)

    def _recorded_runtime(self) -> str | None:
        try:
            recorded = json.loads(self.layout.fingerprint_file.read_text()).get("runtime")
        except (OSError, ValueError):
            return None
        return recorded if isinstance(recorded, str) else NATIVE

    def _make_runtime(self, name: str) -> Runtime:
        if name == NATIVE:
            return NativeRuntime(lambda: self.fabric, self.launcher)
        if name == "containers":
            if self.launcher is not None:
                raise NetworkError("a launcher places native processes, not containers")
            from consortium.container_runtime import ContainerRuntime  # needs the docker package

            return ContainerRuntime(
                self.consortium, self.layout, lambda: self.fabric,
                extra_mounts=self.extra_pythonpath, progress=self.say,
            )  # fmt: skip
        raise NetworkError(f"unknown runtime {name!r}: one of {', '.join(RUNTIMES)}")

    @property
    def fabric(self) -> FabricInstall:
        """The pinned Fabric binaries (found, or built on first use)."""
        if self._fabric is None:
            self._fabric = ensure_binaries(self.say)
        return self._fabric

    # ------------------------------------------------------------------ paths

    @property
    def crypto_dir(self) -> Path:
        return self.layout.crypto_dir

    @property
    def channel_dir(self) -> Path:
        return self.layout.channel_dir

    @property
    def genesis_block(self) -> Path:
        return self.layout.genesis_block

    def node_dir(self, name: str) -> Path:
        return self.layout.node_dir(name)

    def profile_path(self, org: Org) -> Path:
        return self.layout.profile_path(org)

    def secret_file(self, org: Org) -> Path:
        return self.layout.secret_file(org)

    def tlsca(self, org_name: str) -> Path:
        """The TLS CA certificate of an organization."""
        return self.layout.tlsca(org_name)

    def org_crypto(self, org: Org) -> crypto.OrgCrypto:
        return self.layout.org_crypto(org)

    # ------------------------------------------------------------------ nodes

    def orderer_handle(self, o: OrdererNode) -> NodeHandle:
        return self.node_set.orderer(o)

    def peer_handle(self, p: PeerNode) -> NodeHandle:
        return self.node_set.peer(p)

    def chaincode_handle(self, p: PeerNode, d: Deployment | None = None) -> NodeHandle:
        """The chaincode server process of deployment ``d`` that peer ``p`` dials."""
        return self.node_set.chaincode(p, d)

    def nodes(self) -> list[NodeHandle]:
        """Every process of the network: orderers, peers, chaincode servers."""
        return self.node_set.all()

    def node(self, name: str) -> NodeHandle:
        return self.node_set.named(name)

    # ------------------------------------------------------------------ up / down

    def up(self) -> float:
        """Bring the network to a committed, initialized chaincode; return seconds."""
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._check_fingerprint()
        self.fabric  # noqa: B018 - build or find the binaries first
        step = self._step
        lifecycle = self.lifecycle
        step("crypto material", partial(identities.ensure_crypto, self.consortium, self.layout))
        step("genesis block", self.joins.ensure_genesis)
        step("orderers and peers", self.node_set.ensure_fabric_nodes)
        step("orderers join the channel", self.joins.join_orderers)
        step("peers join the channel", self.joins.join_peers)
        layout = self.chaincodes.namespaced
        for d in self.deployments():
            step(f"chaincode {d.name} installed", partial(lifecycle.install, d))
            step(f"chaincode {d.name} servers", partial(self.node_set.ensure_chaincode_servers, d))
            if not (layout and d.slot < 2):  # the layout's packages serve its definitions
                step(f"chaincode {d.name} approved and committed", partial(lifecycle.define, d))
        if layout:
            count = len(namespaces.definitions(self.consortium))
            step(f"namespaces approved and committed ({count} definitions)",
                 lifecycle.define_namespaces)
        step("chaincode initialized", lifecycle.initialize)
        step("connection profiles", self.profiles.write_all)
        step("gossip membership converged", self.monitor.wait_gossip)
        elapsed = time.monotonic() - started
        self.say(
            f"network {self.consortium.name} is up ({elapsed:.1f} s); state in {self.state_dir}"
        )
        return elapsed

    def _step(self, what: str, fn: Callable[[], object]) -> None:
        t0 = time.monotonic()
        fn()
        self.say(f"  ✓ {what} ({time.monotonic() - t0:.1f} s)")

    def add_bank(self, name: str, *, from_snapshot: bool = False) -> JoinReport:
        """Add the bank ``name`` of the consortium file's ``joined_banks`` to the running
        network (see :mod:`consortium.joining`); idempotent; the report of what it took."""
        started = time.monotonic()
        report = BankJoin(self, name, from_snapshot=from_snapshot).run()
        how = "from a snapshot" if from_snapshot else "by replay"
        self.say(f"bank {name} joined {self.consortium.name} "
                 f"({time.monotonic() - started:.1f} s; caught up with {report.chain_height} "
                 f"blocks {how} in {report.catch_up_seconds:.1f} s)")
        return report

    def fingerprint(self) -> dict[str, Any]:
        """What ``network.json`` records of the consortium file the network runs."""
        return self._fingerprint()

    def _fingerprint(self) -> dict[str, Any]:
        source = self.consortium.source
        return {
            "name": self.consortium.name,
            "source": str(source.resolve()),
            "config_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "runtime": self.runtime.name,
        }

    def _check_fingerprint(self) -> None:
        path = self.layout.fingerprint_file
        fingerprint = self._fingerprint()
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("config_sha256") != fingerprint["config_sha256"]:
                raise NetworkError(
                    f"{self.consortium.source} has changed since the network in "
                    f"{self.state_dir} was created from it; changing a running network is "
                    f"not supported (a bank added under joined_banks joins with "
                    f"`dtoken network add-bank NAME`): take it down with --purge first, or use "
                    f"another state folder"
                )
            if old.get("runtime", NATIVE) != self.runtime.name:
                raise NetworkError(
                    f"the network in {self.state_dir} runs on the {old.get('runtime', NATIVE)} "
                    f"runtime, not {self.runtime.name}: take it down with --purge first, or "
                    f"use another state folder"
                )
        else:
            path.write_text(json.dumps(fingerprint, indent=2) + "\n")

    def down(self, *, purge: bool = False) -> list[str]:
        """Stop every node this state folder started; with ``purge`` delete the state
        (and the runtime's ledger volumes)."""
        stopped = self.node_set.stop_all()
        self.runtime.close(purge=purge)
        if purge and self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        return stopped

    # ------------------------------------------------------------------ admin tools

    def admin_env(self, org: Org, peer: PeerNode | None = None) -> dict[str, str]:
        """Environment for Fabric's ``peer`` CLI acting as the org's admin."""
        return self.admin.admin_env(org, peer)

    def orderer_args(self) -> list[str]:
        """``peer`` CLI flags to reach the first live orderer over TLS."""
        return self.admin.orderer_args()

    def invoke(
        self, org: Org, chaincode: str, args: Sequence[str], endorsers: Sequence[Org]
    ) -> str:
        """Submit a transaction with Fabric's own ``peer chaincode invoke`` (admin tasks)."""
        return self.admin.invoke(org, chaincode, args, endorsers)

    # ------------------------------------------------------------------ chaincode

    def deployments(self) -> list[Deployment]:
        """The consortium's chaincode (slot 0), then any deployed with ``deploy``."""
        return self.chaincodes.deployments()

    def deployment(self, name: str) -> Deployment:
        return self.chaincodes.deployment(name)

    def deploy(
        self,
        name: str,
        module: str,
        *,
        policy: str | None = None,
        collections: list[dict[str, Any]] | None = None,
        version: str = "1.0",
        env: dict[str, str] | None = None,
        argv: list[str] | None = None,
    ) -> Deployment:
        """Deploy another chaincode as a service on the running network (idempotent)."""
        return self.lifecycle.deploy(
            name, module, policy=policy, collections=collections, version=version,
            env=env, argv=argv,
        )  # fmt: skip

    def package_label(self, org: Org, d: Deployment) -> str:
        return self.chaincodes.package_label(org, d)

    def package_path(self, org: Org, d: Deployment) -> Path:
        return self.chaincodes.package_path(org, d)

    def package_id(self, org: Org, d: Deployment | None = None) -> str:
        return self.chaincodes.package_id(org, d)

    def registry(self) -> dict[str, Any]:
        """The bootstrap data the chaincode's ``init_network`` receives."""
        return registry(self.consortium)

    # ------------------------------------------------------------------ identities

    def issue_identity(
        self, org: Org, name: str, attributes: dict[str, str], *, admin: bool = False
    ) -> crypto.IdentityFiles:
        """Issue a new client identity of ``org`` with Fabric CA attributes (roles such
        as ``minter``, ``operator``, ``auditor``) and list it in the org's profile."""
        files = identities.issue_identity(self.layout, org, name, attributes, admin=admin)
        if self.profile_path(org).exists():
            self.profiles.write_all()
        return files

    def profile(self, org: Org) -> dict[str, Any]:
        """The connection profile of an application organization (what the SDK loads)."""
        return self.profiles.profile(org)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """What ``dtoken network status --json`` prints."""
        return self.monitor.status()

    def peer_metrics(self, p: PeerNode, timeout: float = 2.0) -> list[metrics.Sample] | None:
        """``p``'s Prometheus samples; None if it does not answer."""
        return self.monitor.peer_metrics(p, timeout)

    def peer_counts(self, p: PeerNode) -> metrics.PeerCounts:
        """``p``'s shim-request and proposal counters; NodeError if it does not answer."""
        return self.monitor.peer_counts(p)

    def gossip_peers_known(self, p: PeerNode) -> int | None:
        """How many other peers of the channel ``p`` knows (its gossip metric)."""
        return self.monitor.gossip_peers_known(p)
