"""A bank joins the running network: ``dtoken network add-bank NAME``.

The operator adds the bank's block under ``joined_banks:`` in the consortium file (its ports
come after every running node's, see :mod:`consortium.config`), then :meth:`BankJoin.run`:

1. the new organization's crypto material (its CAs, peer, admin and bank users);
2. the channel's current configuration block, fetched from the orderer;
3. the configuration update adding the organization (its MSP, policies and anchor peers),
   computed by :mod:`consortium.channel_update`, signed by a majority of the channel's
   application organizations' admins (``/Channel/Application/Admins`` is
   ``MAJORITY Admins``) and broadcast; then wait until the channel's config lists it;
4. its peers started, joined to the channel and gossiping with every other peer: from the
   genesis block, replaying the chain (the default), or with ``from_snapshot`` from a ledger
   snapshot that a founding bank's peer takes at its last block (``peer snapshot
   submitrequest``, then ``peer channel joinbysnapshot``); either is measured and reported;
5. its chaincode: each deployment's package installed on its peers and its chaincode
   servers started; on the namespace layout (``chaincode.layout: namespaces``) the
   definitions it adds (``consortium.namespaces.added_by``: its own namespace and the pair
   namespaces it brings) approved and committed, and ``init_network`` run in its namespace;
   then every other organization's contract servers restarted pinned to the registry that
   lists the bank (``DTOKEN_REGISTRY_SHA256``; only those still pinned to an older one) and
   ``admit_bank`` run in each other organization's own namespace by its administrator,
   endorsed by its own peer: each grows its own registry, so the founders pay and are paid
   by the bank. No existing definition is changed, so no sequence moves and no transaction
   in flight is invalidated;
6. the connection profiles written and the state folder's record of the consortium file
   updated, so ``up``, ``down`` and ``status`` know the bank.

Every step looks first and does only what is missing: running it again changes nothing.

Must not: change the configuration of anything but the application group (no orderer, no
channel-level value), upgrade a chaincode definition, or stop a running node (but restart a
contract server whose registry pin is out of date, one at a time).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consortium import chaincodes, identities, namespaces, processes
from consortium import channel_update as cu
from consortium.config import Org, PeerNode
from consortium.errors import ConfigError, FabricCommandError, NodeError

if TYPE_CHECKING:  # network.py builds a BankJoin: import it for types only
    from consortium.network import Network

__all__ = ["BankJoin", "JoinReport", "signatures_needed"]


def signatures_needed(members: int) -> int:
    """How many admins' signatures the channel's ``MAJORITY Admins`` needs among ``members``
    application organizations (Fabric: members / 2 + 1)."""
    return members // 2 + 1


@dataclass
class JoinReport:
    """What a join did and how long each step took (seconds)."""

    bank: str
    steps: dict[str, float] = field(default_factory=dict)
    signed_by: list[str] = field(default_factory=list)
    config_updated: bool = False
    chain_height: int = 0
    catch_up_seconds: float = 0.0
    from_snapshot: bool = False
    namespaces: list[str] = field(default_factory=list)
    #: Contract servers restarted with the registry pin that lists the bank.
    repinned: list[str] = field(default_factory=list)
    #: Organizations whose own registry lists the bank (``admit_bank`` run or already done).
    admitted_by: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "steps": {k: round(v, 2) for k, v in self.steps.items()},
            "signed_by": self.signed_by,
            "config_updated": self.config_updated,
            "chain_height": self.chain_height,
            "catch_up_seconds": round(self.catch_up_seconds, 2),
            "from_snapshot": self.from_snapshot,
            "namespaces": self.namespaces,
            "repinned": self.repinned,
            "admitted_by": self.admitted_by,
        }


class BankJoin:
    """Adds one bank of ``network.consortium.joined_banks`` to the running channel."""

    def __init__(self, network: Network, bank_name: str, *, from_snapshot: bool = False) -> None:
        self.network = network
        self.from_snapshot = from_snapshot
        c = network.consortium
        joined = {b.name: b for b in c.joined_banks}
        if bank_name not in joined:
            known = ", ".join(joined) or "none"
            raise ConfigError(c.source, "joined_banks",
                              f"{bank_name!r} is not listed there (listed: {known}); a bank "
                              f"joins a running network from its block there")
        self.bank: Org = joined[bank_name]
        self.report = JoinReport(bank_name)

    # ------------------------------------------------------------------ steps

    def run(self) -> JoinReport:
        """Every step in order (each a no-op when already done); the report."""
        net = self.network
        step = self._step
        step("crypto material", lambda: identities.ensure_crypto(net.consortium, net.layout))
        step("channel configuration update", self.update_channel)
        step("peers started", net.node_set.ensure_fabric_nodes)
        step("peers joined and caught up", self.join_and_catch_up)
        for d in net.deployments():
            step(f"chaincode {d.name} installed", partial(net.lifecycle.install, d))
            step(f"chaincode {d.name} servers", partial(net.node_set.ensure_chaincode_servers, d))
        if net.chaincodes.namespaced:
            step("its namespaces approved and committed", self.define_namespaces)
            step("its namespace initialized", self.initialize_namespace)
            step("other organizations' servers pinned to the new registry", self.repin_servers)
            step("other organizations' registries grown", self.admit_everywhere)
        step("connection profiles", net.profiles.write_all)
        step("state folder records the bank", self.record)
        step("gossip membership converged", net.monitor.wait_gossip)
        return self.report

    def _step(self, what: str, fn: Callable[[], object]) -> None:
        t0 = time.monotonic()
        fn()
        self.report.steps[what] = time.monotonic() - t0
        self.network.say(f"  ✓ {what} ({self.report.steps[what]:.1f} s)")

    def current_config(self) -> Any:
        """The channel's configuration, from its latest configuration block on the orderer."""
        net = self.network
        founder = net.consortium.founding_banks[0]
        with tempfile.TemporaryDirectory(dir=net.state_dir) as tmp:
            out = Path(tmp) / "config.block"
            net.admin.run_retrying(
                [net.admin.tool("peer"), "channel", "fetch", "config", str(out),
                 "-c", net.consortium.channel, *net.admin.orderer_args()],
                env=net.admin.admin_env(founder),
            )  # fmt: skip
            return cu.config_from_block(out.read_bytes())

    def update_channel(self) -> None:
        """Add the organization to the channel unless its configuration lists it already."""
        net, bank = self.network, self.bank
        config = self.current_config()
        members = cu.application_orgs(config)
        if bank.msp_id in members:
            return
        group = cu.application_org_group(
            bank.msp_id,
            net.layout.org_crypto(bank).msp_dir,
            [(p.host, p.port) for p in bank.peers],
        )
        updated = cu.with_application_org(config, bank.msp_id, group)
        update = cu.compute_update(net.consortium.channel, config, updated)
        signers = [self._admin_signer(net.consortium.org_by_msp(m)) for m in members]
        needed = signers[: signatures_needed(len(members))]
        signatures = [cu.sign_update(update, s) for s in needed]
        self.report.signed_by = [s.msp_id for s in needed]
        envelope = cu.update_envelope(update, signatures, needed[0])
        orderer = net.admin.orderer_args()[1]
        cu.broadcast(orderer, net.layout.tlsca(net.consortium.orderer_org.name), envelope)
        deadline = time.monotonic() + 60
        while bank.msp_id not in cu.application_orgs(self.current_config()):
            if time.monotonic() > deadline:
                raise NodeError(f"the channel's configuration does not list {bank.msp_id} "
                                f"60 s after the update was accepted")
            time.sleep(0.5)
        self.report.config_updated = True

    def _admin_signer(self, org: Org) -> cu.AdminSigner:
        admin = self.network.layout.org_crypto(org).user("Admin")
        return cu.AdminSigner.from_files(org.msp_id, admin.cert, admin.key)

    def height(self, p: PeerNode) -> int:
        """The channel's block height on peer ``p`` (its ``ledger_blockchain_height`` metric;
        0 before it has the channel). A joining peer cannot answer its own admin through
        ``peer channel getinfo`` until it has replayed the block that added its organization."""
        samples = self.network.monitor.peer_metrics(p, timeout=5.0)
        if samples is None:
            raise NodeError(f"{p.name}: the operations endpoint does not answer")
        for s in samples:
            if (s.name == "ledger_blockchain_height"
                    and s.labels.get("channel") == self.network.consortium.channel):
                return int(s.value)
        return 0

    def join_and_catch_up(self, timeout: float = 300.0) -> None:
        """Join the new peers (from the genesis block, or from a snapshot); wait until each
        has the chain up to the height a founding peer had when the join started."""
        net = self.network
        founder = net.consortium.founding_banks[0]
        target = self.height(founder.peers[0])
        t0 = time.monotonic()
        if self.from_snapshot:
            self._join_by_snapshot(founder, timeout)
        else:
            net.joins.join_peers()
        for p in self.bank.peers:
            while self.height(p) < target:
                if time.monotonic() - t0 > timeout:
                    raise NodeError(f"{p.name} did not reach height {target} in {timeout:.0f} s")
                time.sleep(0.2)
        self.report.chain_height = target
        self.report.catch_up_seconds = time.monotonic() - t0
        self.report.from_snapshot = self.from_snapshot

    def _join_by_snapshot(self, founder: Org, timeout: float) -> None:
        """A snapshot of the founder's first peer at its last block, copied to the state
        folder's ``channel/snapshots/`` (what the new bank is handed), joined by each new peer
        that is not in the channel yet."""
        net, channel = self.network, self.network.consortium.channel
        peer_bin = net.admin.tool("peer")
        pending = [p for p in self.bank.peers if not self._in_channel(p)]
        if not pending:
            return
        source = founder.peers[0]
        completed = (net.layout.node_dir(source.name) / "data" / "snapshots" / "completed"
                     / channel)  # fmt: skip
        before = set(completed.iterdir()) if completed.is_dir() else set()
        net.admin.run(
            [peer_bin, "snapshot", "submitrequest", "-c", channel, "-b", "0",
             "--peerAddress", source.endpoint,
             "--tlsRootCertFile", str(net.layout.tlsca(founder.name))],
            env=net.admin.admin_env(founder, source),
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not (made := set(completed.iterdir()) - before if completed.is_dir() else set()):
            if time.monotonic() > deadline:
                raise NodeError(f"{source.name} made no snapshot in {timeout:.0f} s")
            time.sleep(0.2)
        snapshot = max(made, key=lambda d: int(d.name))  # a block number; renamed in whole
        handed = net.layout.channel_dir / "snapshots" / snapshot.name
        if not handed.exists():
            shutil.copytree(snapshot, handed)
        for p in pending:
            net.admin.run([peer_bin, "channel", "joinbysnapshot", "--snapshotpath", str(handed)],
                          env=net.admin.admin_env(self.bank, p))

    def _in_channel(self, p: PeerNode) -> bool:
        net = self.network
        listing = net.admin.run([net.admin.tool("peer"), "channel", "list"],
                                env=net.admin.admin_env(self.bank, p))
        return net.consortium.channel in listing.split()

    def added(self) -> list[namespaces.Definition]:
        """The definitions the bank adds on the namespace layout, and nothing else."""
        return namespaces.added_by(self.network.consortium, self.bank.name)

    def define_namespaces(self) -> None:
        """Its own namespace and the pair namespaces it brings, approved by their approvers
        (each with the package it runs there) and committed; no existing definition moves."""
        self.report.namespaces = [d.name for d in self.added()]
        self.network.lifecycle.define_namespaces(self.added())

    def initialize_namespace(self) -> None:
        """``init_network`` in the bank's own namespace, endorsed by its own peer, with the
        registry that lists it (the argument its server is pinned to)."""
        net = self.network
        registry = chaincodes.registry_argument(net.consortium)
        for d in self.added():
            if d.contract_runner != self.bank.name:
                continue
            try:
                net.admin.invoke(self.bank, d.name, ["init_network", registry], [self.bank])
            except FabricCommandError as exc:
                if "ALREADY_INITIALIZED" not in exc.output:
                    raise

    def others(self) -> list[Org]:
        """Every organization that runs a contract, but the bank joining."""
        c = self.network.consortium
        orgs = [*c.banks, *([c.regulator] if c.regulator else [])]
        return [o for o in orgs if o.name != self.bank.name]

    def repin_servers(self) -> None:
        """Restart each other organization's contract server still pinned to an older
        registry, so it endorses ``admit_bank`` with the registry that lists the bank.

        The pin is read from the running process's environment; a server whose environment
        this machine cannot read (another runtime) is only started if it is not running."""
        net = self.network
        pin = chaincodes.registry_pin(net.consortium)
        for org in self.others():
            for p in org.peers:
                handle = net.node_set.chaincode(p)
                pid = handle.pid()
                env = processes.environment_of(pid) if pid is not None else None
                if env is not None and env.get(chaincodes.REGISTRY_PIN_ENV) != pin:
                    self.report.repinned.append(handle.name)
                    handle.stop()
                handle.start()
                handle.wait_ready(timeout=30)

    def admit_everywhere(self) -> None:
        """``admit_bank`` in each other organization's own namespace, submitted by its
        administrator and endorsed by its own peer alone (its namespace's policy), with the
        registry argument its server is now pinned to; a registry that lists the bank
        already (``ALREADY_INITIALIZED``) is left as it is."""
        net = self.network
        registry = chaincodes.registry_argument(net.consortium)
        own = {d.contract_runner: d.name for d in namespaces.definitions(net.consortium)
               if d.contract_runner is not None}
        for org in self.others():
            try:
                net.admin.invoke(org, own[org.name], ["admit_bank", registry], [org])
            except FabricCommandError as exc:
                if "ALREADY_INITIALIZED" not in exc.output:
                    raise
            self.report.admitted_by.append(org.name)

    def record(self) -> None:
        """The state folder now belongs to the consortium file that lists the bank."""
        net = self.network
        path = net.layout.fingerprint_file
        fingerprint = json.loads(path.read_text()) if path.exists() else {}
        fingerprint.update(net.fingerprint())
        joined = fingerprint.setdefault("joined_banks", [])
        if self.bank.name not in joined:
            joined.append(self.bank.name)
        path.write_text(json.dumps(fingerprint, indent=2) + "\n")
