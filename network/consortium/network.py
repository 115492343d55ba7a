"""The running network: bring it up from a consortium file, report, take it down.

``Network(consortium, state_dir).up()`` goes from empty folders to a committed
chaincode with every organization's chaincode servers running, and is
idempotent: each step first looks at what exists (keys, genesis block, live
processes, channel memberships, installed and committed chaincode) and does
only what is missing, so ``up`` on a healthy network changes nothing and ``up``
after ``down`` (or after a node died) brings the same ledger back.

State folder layout (``state_dir``)::

    crypto/<org>/...                 MSPs and TLS material (consortium.crypto)
    channel/configtx.yaml, genesis.block
    nodes/<node>/config/             core.yaml or orderer.yaml for that node
    nodes/<node>/data/               its ledger
    nodes/<node>/node.log, node.pid
    chaincode/<org>/                 that organization's ccaas package
    secrets/<org>.key                32 random bytes: the organization's chaincode secret
    profiles/<org>.json              the connection profile the bank SDK loads
    network.json                     what this state folder was made from
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

from consortium import channel as channel_cfg
from consortium import crypto, metrics, processes
from consortium.binaries import FabricInstall, ensure_binaries
from consortium.config import Consortium, OrdererNode, Org, OrgKind, PeerNode
from consortium.errors import FabricCommandError, NetworkError, NodeError
from consortium.processes import ProcessSpec

__all__ = ["Network", "NodeHandle"]

BUILDER_DIR = Path(__file__).resolve().parent / "ccaas_builder"
T = TypeVar("T")

#: Client identities every bank gets at bootstrap: name -> (role, attributes).
BANK_USERS: dict[str, dict[str, str]] = {
    "minter": {"minter": "true", "operator": "true"},
    "operator": {"operator": "true"},
}
REGULATOR_USERS: dict[str, dict[str, str]] = {"auditor": {"auditor": "true"}}


@dataclass(frozen=True)
class NodeHandle:
    """One process of the network, for status, fault injection and logs."""

    name: str
    kind: str  # "orderer" | "peer" | "chaincode"
    org: str
    spec: ProcessSpec
    health_url: str | None  # operations /healthz (orderers and peers)
    tls_ca: Path
    endpoint: str

    @property
    def log_file(self) -> Path:
        return self.spec.log_file

    def pid(self) -> int | None:
        return processes.running_pid(self.spec)

    def rss_mb(self) -> float | None:
        """Resident memory of the process in MiB (None if it is not running)."""
        pid = self.pid()
        return None if pid is None else processes.rss_mb(pid)

    def healthy(self) -> bool:
        if self.pid() is None:
            return False
        if self.health_url is None:
            host, port = self.endpoint.rsplit(":", 1)
            return processes.port_open(host, int(port))
        return processes.health(self.health_url, self.tls_ca)


MAX_CHAINCODES = 7  # a peer's port slot has room for 7 chaincode servers (+3 .. +9)


@dataclass(frozen=True)
class Deployment:
    """A chaincode the network runs as a service: one server per peer.

    ``slot`` 0 is the consortium's own chaincode; its servers listen on the
    peer's ``chaincode_server_port``, slot *n* on that port + *n*.
    """

    name: str
    version: str
    module: str
    slot: int
    policy: str
    collections_json: str | None
    init_function: str | None
    env_json: str | None = None  # extra environment for its servers (JSON object)
    argv_json: str | None = None  # a server command of another language (JSON list)


def chaincode_server_endpoint(p: PeerNode, slot: int) -> str:
    return f"{p.host}:{p.chaincode_server_port + slot}"


def chaincode_node_name(p: PeerNode, d: Deployment) -> str:
    return f"chaincode.{p.name}" if d.slot == 0 else f"chaincode-{d.name}.{p.name}"


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
    ) -> None:
        """``launcher(host)`` returns a command prefix that runs a node on that host
        and execs it there (tests use ``ip netns exec <ns>`` for multi-host networks)."""
        self.c = consortium
        self.state_dir = state_dir.resolve()
        self.say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.extra_pythonpath = tuple(extra_pythonpath)
        self.launcher = launcher
        self._fabric: FabricInstall | None = None

    @staticmethod
    def source_of(state_dir: Path) -> Path | None:
        """The consortium file a state folder was made from (None if it was not)."""
        try:
            source = json.loads((state_dir / "network.json").read_text()).get("source")
        except (OSError, ValueError):
            return None
        return Path(source) if isinstance(source, str) and Path(source).exists() else None

    # ------------------------------------------------------------------ paths

    @property
    def crypto_dir(self) -> Path:
        return self.state_dir / "crypto"

    @property
    def channel_dir(self) -> Path:
        return self.state_dir / "channel"

    @property
    def genesis_block(self) -> Path:
        return self.channel_dir / "genesis.block"

    def node_dir(self, name: str) -> Path:
        return self.state_dir / "nodes" / name

    def profile_path(self, org: Org) -> Path:
        return self.state_dir / "profiles" / f"{org.name}.json"

    def secret_file(self, org: Org) -> Path:
        return self.state_dir / "secrets" / f"{org.name}.key"

    def tlsca(self, org_name: str) -> Path:
        """The TLS CA certificate of an organization."""
        return self.crypto_dir / org_name / "tlsca" / "tlsca-cert.pem"

    def org_crypto(self, org: Org) -> crypto.OrgCrypto:
        return crypto.load_org(self.crypto_dir, org.name)

    @property
    def fabric(self) -> FabricInstall:
        if self._fabric is None:
            self._fabric = ensure_binaries(self.say)
        return self._fabric

    # ------------------------------------------------------------------ nodes

    def _launcher(self, host: str) -> tuple[str, ...]:
        return tuple(self.launcher(host)) if self.launcher else ()

    def orderer_handle(self, o: OrdererNode) -> NodeHandle:
        home = self.node_dir(o.name)
        spec = ProcessSpec(
            name=o.name,
            argv=[str(self.fabric.tool("orderer"))],
            home=home,
            env={"FABRIC_CFG_PATH": str(home / "config")},
            launcher=self._launcher(o.host),
        )
        org = self.c.orderer_org
        return NodeHandle(
            name=o.name,
            kind="orderer",
            org=org.name,
            spec=spec,
            health_url=f"https://{o.host}:{o.operations_port}/healthz",
            tls_ca=self.tlsca(org.name),
            endpoint=o.endpoint,
        )

    def peer_handle(self, p: PeerNode) -> NodeHandle:
        home = self.node_dir(p.name)
        spec = ProcessSpec(
            name=p.name,
            argv=[str(self.fabric.tool("peer")), "node", "start"],
            home=home,
            env={
                "FABRIC_CFG_PATH": str(home / "config"),
                "CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG": json.dumps(
                    {
                        f"cc{slot}": chaincode_server_endpoint(p, slot)
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
            tls_ca=self.tlsca(p.org),
            endpoint=p.endpoint,
        )

    def chaincode_handle(self, p: PeerNode, d: Deployment | None = None) -> NodeHandle:
        """The chaincode server process of deployment ``d`` that peer ``p`` dials."""
        d = d or self.deployments()[0]
        org = self.c.org(p.org)
        name = chaincode_node_name(p, d)
        home = self.node_dir(name)
        server_dir = self.crypto_dir / org.name / "servers" / f"chaincode.{p.name}"
        pythonpath = [str(x) for x in self.extra_pythonpath]
        if os.environ.get("PYTHONPATH"):
            pythonpath.append(os.environ["PYTHONPATH"])
        endpoint = chaincode_server_endpoint(p, d.slot)
        spec = ProcessSpec(
            name=name,
            # Our Python shim by default; another server (e.g. a Node fabric-shim one,
            # for benchmarks) gets the same CHAINCODE_* environment.
            argv=json.loads(d.argv_json)
            if d.argv_json
            else [sys.executable, "-m", "fabshim", "serve", d.module],
            home=home,
            env={
                # Known once the package exists (it is made before servers start).
                "CHAINCODE_ID": (
                    self.package_id(org, d) if self.package_path(org, d).exists() else ""
                ),
                "CHAINCODE_SERVER_ADDRESS": endpoint,
                "CHAINCODE_TLS_CERT": str(server_dir / "server.crt"),
                "CHAINCODE_TLS_KEY": str(server_dir / "server.key"),
                "CHAINCODE_CLIENT_CA_CERT": str(self.tlsca(org.name)),
                "DTOKEN_BANK_MSP": org.msp_id,
                "DTOKEN_SECRET_FILE": str(self.secret_file(org)),
                "PYTHONPATH": os.pathsep.join(pythonpath),
                "PYTHONUNBUFFERED": "1",
                **(json.loads(d.env_json) if d.env_json else {}),
            },
            launcher=self._launcher(p.host),
        )
        return NodeHandle(
            name=name,
            kind="chaincode",
            org=org.name,
            spec=spec,
            health_url=None,
            tls_ca=self.tlsca(org.name),
            endpoint=endpoint,
        )

    def nodes(self) -> list[NodeHandle]:
        """Every process of the network: orderers, peers, chaincode servers."""
        out = [self.orderer_handle(o) for o in self.c.ordering.orderers]
        out += [self.peer_handle(p) for p in self.c.peers]
        out += [self.chaincode_handle(p, d) for d in self.deployments() for p in self.c.peers]
        return out

    def node(self, name: str) -> NodeHandle:
        for handle in self.nodes():
            if handle.name == name:
                return handle
        raise KeyError(f"no node named {name!r}")

    # ------------------------------------------------------------------ up

    def up(self) -> float:
        """Bring the network to a committed, initialized chaincode; return seconds."""
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._check_fingerprint()
        self.fabric  # noqa: B018 - build or find the binaries first
        step = self._step
        step("crypto material", self._ensure_crypto)
        step("genesis block", self._ensure_genesis)
        step("orderers and peers", self._ensure_fabric_nodes)
        step("orderers join the channel", self._join_orderers)
        step("peers join the channel", self._join_peers)
        for d in self.deployments():
            step(f"chaincode {d.name} installed", partial(self._install_chaincode, d))
            step(f"chaincode {d.name} servers", partial(self._ensure_chaincode_servers, d))
            step(f"chaincode {d.name} approved and committed", partial(self._define_chaincode, d))
        step("chaincode initialized", self._init_chaincode)
        step("connection profiles", self._write_profiles)
        step("gossip membership converged", self._wait_gossip)
        elapsed = time.monotonic() - started
        self.say(f"network {self.c.name} is up ({elapsed:.1f} s); state in {self.state_dir}")
        return elapsed

    def _step(self, what: str, fn: Callable[[], object]) -> None:
        t0 = time.monotonic()
        fn()
        self.say(f"  ✓ {what} ({time.monotonic() - t0:.1f} s)")

    def _fingerprint(self) -> dict[str, Any]:
        return {
            "name": self.c.name,
            "source": str(self.c.source.resolve()),
            "config_sha256": hashlib.sha256(self.c.source.read_bytes()).hexdigest(),
        }

    def _check_fingerprint(self) -> None:
        path = self.state_dir / "network.json"
        fingerprint = self._fingerprint()
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("config_sha256") != fingerprint["config_sha256"]:
                raise NetworkError(
                    f"{self.c.source} has changed since the network in {self.state_dir} was "
                    f"created from it; changing a running network is not supported: "
                    f"take it down with --purge first, or use another state folder"
                )
        else:
            path.write_text(json.dumps(fingerprint, indent=2) + "\n")

    def _ensure_crypto(self) -> None:
        base = self.crypto_dir
        oo = self.c.orderer_org
        orderers = {o.name: [o.host, "localhost", o.name] for o in self.c.ordering.orderers}
        crypto.generate_org(
            base, org_name=oo.name, domain=oo.domain, nodes=orderers, node_ou="orderer"
        )
        for org in self.c.application_orgs:
            users = BANK_USERS if org.kind is OrgKind.BANK else REGULATOR_USERS
            oc = crypto.generate_org(
                base,
                org_name=org.name,
                domain=org.domain,
                nodes={p.name: [p.host, "localhost", p.name] for p in org.peers},
                node_ou="peer",
                clients=users,
            )
            for p in org.peers:
                oc.issue_tls_server(f"chaincode.{p.name}", [p.host, "localhost"])
            oc.issue_tls_server("chaincode-client", ["chaincode-client"])
            secret = self.secret_file(org)
            if not secret.exists():
                secret.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(32))

    def _ensure_genesis(self) -> None:
        if self.genesis_block.exists():
            return
        channel_cfg.write_configtx(self.c, self.crypto_dir, self.channel_dir)
        tmp = self.genesis_block.with_suffix(".tmp")
        self._run(
            [
                str(self.fabric.tool("configtxgen")),
                "-profile",
                channel_cfg.PROFILE,
                "-outputBlock",
                str(tmp),
                "-channelID",
                self.c.channel,
                "-configPath",
                str(self.channel_dir),
            ],
            env={},
        )
        tmp.replace(self.genesis_block)

    # --- node configuration files

    def _write_orderer_config(self, o: OrdererNode) -> None:
        home = self.node_dir(o.name)
        ident = self.org_crypto(self.c.orderer_org).node(o.name)
        tls = ident.tls_cert.parent
        cfg = yaml.safe_load((self.fabric.config_dir / "orderer.yaml").read_text())
        g = cfg["General"]
        g["ListenAddress"] = o.host
        g["ListenPort"] = o.port
        g["TLS"].update(
            Enabled=True,
            PrivateKey=str(tls / "server.key"),
            Certificate=str(tls / "server.crt"),
            RootCAs=[str(tls / "ca.crt")],
            ClientAuthRequired=False,
        )
        g["Cluster"].update(
            ClientCertificate=str(tls / "server.crt"),
            ClientPrivateKey=str(tls / "server.key"),
        )
        g["LocalMSPDir"] = str(ident.msp_dir)
        g["LocalMSPID"] = self.c.orderer_org.msp_id
        data = home / "data"
        cfg["FileLedger"]["Location"] = str(data / "ledger")
        cfg["Consensus"] = {
            "WALDir": str(data / "etcdraft" / "wal"),
            "SnapDir": str(data / "etcdraft" / "snapshot"),
        }
        cfg["Operations"]["ListenAddress"] = f"{o.host}:{o.operations_port}"
        cfg["Operations"]["TLS"].update(
            Enabled=True,
            Certificate=str(tls / "server.crt"),
            PrivateKey=str(tls / "server.key"),
        )
        cfg["Metrics"]["Provider"] = "prometheus"
        cfg["Admin"]["ListenAddress"] = o.admin_endpoint
        cfg["Admin"]["TLS"].update(
            Enabled=True,
            Certificate=str(tls / "server.crt"),
            PrivateKey=str(tls / "server.key"),
            ClientAuthRequired=True,
            ClientRootCAs=[str(tls / "ca.crt")],
        )
        cfg["ChannelParticipation"]["Enabled"] = True
        self._write_yaml(home / "config" / "orderer.yaml", cfg)

    def _write_peer_config(self, p: PeerNode) -> None:
        home = self.node_dir(p.name)
        org = self.c.org(p.org)
        ident = self.org_crypto(org).node(p.name)
        tls = ident.tls_cert.parent
        cfg = yaml.safe_load((self.fabric.config_dir / "core.yaml").read_text())
        peer = cfg["peer"]
        peer["id"] = p.name
        peer["networkId"] = self.c.name
        peer["listenAddress"] = p.endpoint
        peer["address"] = p.endpoint
        peer["chaincodeListenAddress"] = f"{p.host}:{p.chaincode_listen_port}"
        peer["chaincodeAddress"] = f"{p.host}:{p.chaincode_listen_port}"
        peer["addressAutoDetect"] = False
        gossip = peer["gossip"]
        gossip["bootstrap"] = " ".join(q.endpoint for q in org.peers if q is not p) or p.endpoint
        gossip["externalEndpoint"] = p.endpoint
        gossip["useLeaderElection"] = False
        gossip["orgLeader"] = True
        # Peers join the channel at the same moment, so their first dials to each
        # other's anchor peers fail; retry every second, not every 25 s, and announce
        # liveness every second so membership converges in about two seconds.
        gossip["reconnectInterval"] = "1s"
        gossip["aliveTimeInterval"] = "1s"
        gossip["aliveExpirationTimeout"] = "10s"
        gossip["membershipTrackerInterval"] = "1s"  # how often the metric we wait on updates
        # Catch up on missed private data sooner than the 1 min default after a fault.
        gossip["pvtData"]["reconcileSleepInterval"] = "10s"
        peer["tls"].update(
            enabled=True,
            cert={"file": str(tls / "server.crt")},
            key={"file": str(tls / "server.key")},
            # Every consortium TLS CA, so a peer can dial another organization's peer
            # before the channel config (which lists them too) has been loaded.
            rootcert={"file": str(self._tls_roots_bundle())},
            clientAuthRequired=False,
            clientCert={"file": str(tls / "server.crt")},
            clientKey={"file": str(tls / "server.key")},
        )
        peer["mspConfigPath"] = str(ident.msp_dir)
        peer["localMspId"] = org.msp_id
        peer["fileSystemPath"] = str(home / "data")
        cfg["vm"]["endpoint"] = ""
        cfg["chaincode"]["externalBuilders"] = [
            {
                "name": "ccaas",
                "path": str(BUILDER_DIR),
                "propagateEnvironment": ["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"],
            }
        ]
        cfg["ledger"]["snapshots"]["rootDir"] = str(home / "data" / "snapshots")
        cfg["operations"]["listenAddress"] = f"{p.host}:{p.operations_port}"
        cfg["operations"]["tls"].update(
            clientRootCAs={"files": [str(tls / "ca.crt")]},
            enabled=True,
            cert={"file": str(tls / "server.crt")},
            key={"file": str(tls / "server.key")},
        )
        cfg["metrics"]["provider"] = "prometheus"
        self._write_yaml(home / "config" / "core.yaml", cfg)

    def _tls_roots_bundle(self) -> Path:
        bundle = self.channel_dir / "tls-roots.pem"
        pems = [self.tlsca(org.name).read_text() for org in self.c.orgs]
        bundle.parent.mkdir(parents=True, exist_ok=True)
        bundle.write_text("".join(pems))
        return bundle

    @staticmethod
    def _write_yaml(path: Path, data: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        tmp.replace(path)

    def _ensure_fabric_nodes(self) -> None:
        handles: list[NodeHandle] = []
        for o in self.c.ordering.orderers:
            self._write_orderer_config(o)
            handles.append(self.orderer_handle(o))
        for p in self.c.peers:
            self._write_peer_config(p)
            handles.append(self.peer_handle(p))
        for h in handles:
            processes.start(h.spec)
        for h in handles:
            assert h.health_url is not None
            processes.wait_healthy(h.spec, h.health_url, ca_file=h.tls_ca, timeout=60)
        # /healthz answers before the gRPC (and orderer admin) listeners are up.
        for o in self.c.ordering.orderers:
            spec = self.orderer_handle(o).spec
            processes.wait_port(spec, o.host, o.port, timeout=60)
            processes.wait_port(spec, o.host, o.admin_port, timeout=60)
        for p in self.c.peers:
            processes.wait_port(self.peer_handle(p).spec, p.host, p.port, timeout=60)

    # --- channel

    def _orderer_admin_args(self, o: OrdererNode) -> list[str]:
        admin = self.org_crypto(self.c.orderer_org).user("Admin")
        return [
            "-o",
            o.admin_endpoint,
            "--ca-file",
            str(admin.tls_ca),
            "--client-cert",
            str(admin.tls_cert),
            "--client-key",
            str(admin.tls_key),
        ]

    def _join_orderers(self) -> None:
        osnadmin = str(self.fabric.tool("osnadmin"))

        def join(o: OrdererNode) -> None:
            listing = self._run([osnadmin, "channel", "list", *self._orderer_admin_args(o)], env={})
            if f'"name": "{self.c.channel}"' in listing or f'"{self.c.channel}"' in listing:
                return
            self._run(
                [
                    osnadmin,
                    "channel",
                    "join",
                    "--channelID",
                    self.c.channel,
                    "--config-block",
                    str(self.genesis_block),
                    *self._orderer_admin_args(o),
                ],
                env={},
            )

        self._parallel(join, self.c.ordering.orderers)

    def admin_env(self, org: Org, peer: PeerNode | None = None) -> dict[str, str]:
        """Environment for Fabric's ``peer`` CLI acting as the org's admin."""
        peer = peer or org.peers[0]
        admin = self.org_crypto(org).user("Admin")
        return {
            "FABRIC_CFG_PATH": str(self.fabric.config_dir),
            "FABRIC_LOGGING_SPEC": "warning",
            "CORE_PEER_LOCALMSPID": org.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(admin.msp_dir),
            "CORE_PEER_ADDRESS": peer.endpoint,
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_ROOTCERT_FILE": str(self.tlsca(org.name)),
        }

    def orderer_args(self) -> list[str]:
        """``peer`` CLI flags to reach the first live orderer over TLS."""
        o = self.c.ordering.orderers[0]
        for cand in self.c.ordering.orderers:
            if self.orderer_handle(cand).pid() is not None:
                o = cand
                break
        ca = self.tlsca(self.c.orderer_org.name)
        return ["-o", o.endpoint, "--tls", "--cafile", str(ca)]

    def _join_peers(self) -> None:
        peer_bin = str(self.fabric.tool("peer"))

        def join(p: PeerNode) -> None:
            env = self.admin_env(self.c.org(p.org), p)
            listing = self._run([peer_bin, "channel", "list"], env=env)
            if self.c.channel in listing.split():
                return
            self._run([peer_bin, "channel", "join", "-b", str(self.genesis_block)], env=env)

        self._parallel(join, self.c.peers)

    def peer_metrics(self, p: PeerNode, timeout: float = 2.0) -> list[metrics.Sample] | None:
        """``p``'s Prometheus samples (its operations endpoint, with the peer's own TLS
        client certificate); None if it does not answer."""
        tls = self.org_crypto(self.c.org(p.org)).node(p.name)
        text = processes.fetch(
            f"https://{p.host}:{p.operations_port}/metrics",
            ca_file=tls.tls_ca, cert_file=tls.tls_cert, key_file=tls.tls_key, timeout=timeout,
        )  # fmt: skip
        return None if text is None else list(metrics.parse(text))

    def peer_counts(self, p: PeerNode) -> metrics.PeerCounts:
        """``p``'s shim-request and proposal counters; NodeError if it does not answer."""
        samples = self.peer_metrics(p, timeout=10.0)
        if samples is None:
            raise NodeError(f"{p.name}: the operations endpoint does not answer")
        return metrics.peer_counts(samples)

    def gossip_peers_known(self, p: PeerNode) -> int | None:
        """How many other peers of the channel ``p`` knows (its gossip metric)."""
        samples = self.peer_metrics(p)
        if samples is None:
            return None
        for s in samples:
            if (s.name == "gossip_membership_total_peers_known"
                    and s.labels.get("channel") == self.c.channel):
                return int(s.value)
        return 0

    def _wait_gossip(self, timeout: float = 90.0) -> None:
        """Wait until every peer knows every other peer: until then the Gateway cannot
        find another organization's endorsers, nor push private data to it."""
        others = len(self.c.peers) - 1
        deadline = time.monotonic() + timeout
        lagging = list(self.c.peers)
        while lagging:
            lagging = [p for p in lagging if (self.gossip_peers_known(p) or 0) < others]
            if not lagging:
                return
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in lagging)
                raise NodeError(f"gossip did not converge within {timeout:.0f} s: {names}")
            time.sleep(0.25)

    # --- chaincode

    def deployments(self) -> list[Deployment]:
        """The consortium's chaincode (slot 0), then any deployed with ``deploy``."""
        main = Deployment(
            name=self.c.chaincode.name,
            version=self.c.chaincode.version,
            module=self.c.chaincode.module,
            slot=0,
            policy=channel_cfg.chaincode_policy(self.c),
            collections_json=channel_cfg.collections_json(self.c),
            init_function="init_network",
        )
        extra_file = self.state_dir / "chaincodes.json"
        extras = []
        if extra_file.exists():
            extras = [Deployment(**d) for d in json.loads(extra_file.read_text())]
        return [main, *extras]

    def deployment(self, name: str) -> Deployment:
        for d in self.deployments():
            if d.name == name:
                return d
        raise KeyError(f"no chaincode named {name!r} is deployed on {self.c.name}")

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
        """Deploy another chaincode as a service on the running network (idempotent).

        Every organization installs its own package, approves, and the definition
        is committed; one server per peer runs ``python -m fabshim serve module``.
        """
        existing = {d.name: d for d in self.deployments()}
        if name in existing:
            d = existing[name]
        else:
            slot = len(existing)
            if slot > MAX_CHAINCODES - 1:
                raise NetworkError(f"at most {MAX_CHAINCODES} chaincodes per network")
            d = Deployment(
                name=name,
                version=version,
                module=module,
                slot=slot,
                policy=policy or channel_cfg.chaincode_policy(self.c),
                collections_json=json.dumps(collections) if collections else None,
                init_function=None,
                env_json=json.dumps(env) if env else None,
                argv_json=json.dumps(argv) if argv else None,
            )
            extra_file = self.state_dir / "chaincodes.json"
            extras = [x for x in self.deployments()[1:]] + [d]
            extra_file.write_text(json.dumps([x.__dict__ for x in extras], indent=2))
        self._deploy(d)
        return d

    def _deploy(self, d: Deployment) -> None:
        self._install_chaincode(d)
        self._ensure_chaincode_servers(d)
        self._define_chaincode(d)

    def package_label(self, org: Org, d: Deployment) -> str:
        return f"{d.name}_{org.name}_{d.version}"

    def package_path(self, org: Org, d: Deployment) -> Path:
        return self.state_dir / "chaincode" / org.name / f"{self.package_label(org, d)}.tar.gz"

    def package_id(self, org: Org, d: Deployment | None = None) -> str:
        d = d or self.deployments()[0]
        data = self._package_bytes(org, d)
        return f"{self.package_label(org, d)}:{hashlib.sha256(data).hexdigest()}"

    def _package_bytes(self, org: Org, d: Deployment) -> bytes:
        path = self.package_path(org, d)
        if path.exists():
            return path.read_bytes()
        oc = self.org_crypto(org)
        client_dir = oc.org_dir / "servers" / "chaincode-client"
        connection = {
            # Each peer expands this from its CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG,
            # so one package per organization serves all of its peers.
            "address": "{{.cc" + str(d.slot) + "}}",
            "dial_timeout": "10s",
            "tls_required": True,
            "client_auth_required": True,
            "client_key": (client_dir / "server.key").read_text(),
            "client_cert": (client_dir / "server.crt").read_text(),
            "root_cert": oc.tlsca_cert.read_text(),
        }
        code = _deterministic_tgz({"connection.json": json.dumps(connection, indent=2).encode()})
        metadata = json.dumps({"type": "ccaas", "label": self.package_label(org, d)}).encode()
        package = _deterministic_tgz({"code.tar.gz": code, "metadata.json": metadata})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(package)
        return package

    def _install_chaincode(self, d: Deployment) -> None:
        peer_bin = str(self.fabric.tool("peer"))

        def install(p: PeerNode) -> None:
            org = self.c.org(p.org)
            env = self.admin_env(org, p)
            installed = self._run(
                [peer_bin, "lifecycle", "chaincode", "queryinstalled", "--output", "json"], env=env
            )
            if self.package_id(org, d) in installed:
                return
            self._run(
                [peer_bin, "lifecycle", "chaincode", "install", str(self.package_path(org, d))],
                env=env,
            )

        self._parallel(install, self.c.peers)

    def _definition_args(self, d: Deployment) -> list[str]:
        args = [
            "--channelID", self.c.channel, "--name", d.name, "--version", d.version,
            "--sequence", "1", "--signature-policy", d.policy,
        ]  # fmt: skip
        if d.collections_json:
            collections = self.channel_dir / f"collections-{d.name}.json"
            collections.write_text(d.collections_json)
            args += ["--collections-config", str(collections)]
        return args

    def _committed(self, d: Deployment) -> bool:
        org = self.c.application_orgs[0]
        proc = subprocess.run(
            [
                str(self.fabric.tool("peer")), "lifecycle", "chaincode", "querycommitted",
                "--channelID", self.c.channel, "--name", d.name, "--output", "json",
            ],
            env={**os.environ, **self.admin_env(org)},
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        return proc.returncode == 0 and '"sequence": 1' in proc.stdout

    def _define_chaincode(self, d: Deployment) -> None:
        if self._committed(d):
            return
        peer_bin = str(self.fabric.tool("peer"))
        definition = self._definition_args(d)

        def approve(org: Org) -> None:
            self._run_retrying(
                [
                    peer_bin, "lifecycle", "chaincode", "approveformyorg", *self.orderer_args(),
                    *definition, "--package-id", self.package_id(org, d), "--waitForEvent",
                ],
                env=self.admin_env(org),
            )  # fmt: skip

        self._parallel(approve, self.c.application_orgs)
        org = self.c.application_orgs[0]
        self._run_retrying(
            [
                peer_bin, "lifecycle", "chaincode", "commit", *self.orderer_args(), *definition,
                *self._peer_targets(self.c.application_orgs), "--waitForEvent",
            ],
            env=self.admin_env(org),
        )  # fmt: skip

    def _peer_targets(self, orgs: Iterable[Org]) -> list[str]:
        args: list[str] = []
        for org in orgs:
            p = org.peers[0]
            args += ["--peerAddresses", p.endpoint, "--tlsRootCertFiles", str(self.tlsca(org.name))]
        return args

    def _ensure_chaincode_servers(self, d: Deployment) -> None:
        handles = [self.chaincode_handle(p, d) for p in self.c.peers]
        for h in handles:
            processes.start(h.spec)
        for h in handles:
            host, port = h.endpoint.rsplit(":", 1)
            processes.wait_port(h.spec, host, int(port), timeout=30)

    def registry(self) -> dict[str, Any]:
        """The bootstrap data the chaincode's ``init_network`` receives."""
        return {
            "banks": [
                {"name": b.name, "msp_id": b.msp_id, "currencies": list(b.currencies)}
                for b in self.c.banks
            ],
            "regulator_msp_id": self.c.regulator.msp_id if self.c.regulator else None,
            "currencies": dict(self.c.currencies),
        }

    def invoke(
        self, org: Org, chaincode: str, args: Sequence[str], endorsers: Sequence[Org]
    ) -> str:
        """Submit a transaction with Fabric's own ``peer chaincode invoke`` (admin tasks)."""
        ctor = json.dumps({"Args": list(args)})
        return self._run_retrying(
            [
                str(self.fabric.tool("peer")), "chaincode", "invoke", *self.orderer_args(),
                "-C", self.c.channel, "-n", chaincode, "-c", ctor,
                *self._peer_targets(endorsers), "--waitForEvent",
            ],
            env=self.admin_env(org),
        )  # fmt: skip

    def _init_chaincode(self) -> None:
        marker = self.state_dir / "initialized"
        d = self.deployments()[0]
        if marker.exists() or d.init_function is None:
            return
        try:
            self.invoke(
                self.c.banks[0], d.name, [d.init_function, json.dumps(self.registry())],
                self.c.banks,
            )  # fmt: skip
        except FabricCommandError as exc:
            if "ALREADY_INITIALIZED" not in exc.output:
                raise
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))

    # --- profiles

    def issue_identity(
        self, org: Org, name: str, attributes: dict[str, str], *, admin: bool = False
    ) -> crypto.IdentityFiles:
        """Issue a new client identity of ``org`` with Fabric CA attributes (roles such
        as ``minter``, ``operator``, ``auditor``) and list it in the org's profile."""
        files = self.org_crypto(org).issue_user(
            name, role="admin" if admin else "client", attributes=attributes
        )
        if self.profile_path(org).exists():
            self._write_profiles()
        return files

    def profile(self, org: Org) -> dict[str, Any]:
        """The connection profile of an application organization (what the SDK loads)."""
        oc = self.org_crypto(org)
        identities = {}
        users_dir = oc.org_dir / "users"
        for user in sorted(p.name for p in users_dir.iterdir() if p.is_dir()):
            files = oc.user(user)
            identities[user.lower()] = {
                "msp_dir": str(files.msp_dir),
                "cert": str(files.cert),
                "key": str(files.key),
                "tls_cert": str(files.tls_cert),
                "tls_key": str(files.tls_key),
                "attributes": crypto.read_attributes(files.cert.read_bytes()),
            }
        gateway = org.peers[0]
        return {
            "network": self.c.name,
            "org": org.name,
            "display_name": org.display_name,
            "msp_id": org.msp_id,
            "kind": org.kind.value,
            "channel": self.c.channel,
            "chaincode": self.c.chaincode.name,
            "gateway": {
                "endpoint": gateway.endpoint,
                "server_name": gateway.name,
                "tls_ca_cert": str(oc.tlsca_cert),
            },
            "peers": [
                {"name": p.name, "endpoint": p.endpoint, "tls_ca_cert": str(oc.tlsca_cert)}
                for p in org.peers
            ],
            "identities": identities,
            "client_secret_file": str(self.state_dir / "secrets" / f"{org.name}.client.key"),
            "organizations": {
                o.name: {"msp_id": o.msp_id, "kind": o.kind.value, "currencies": list(o.currencies)}
                for o in self.c.application_orgs
            },
            "currencies": dict(self.c.currencies),
        }

    def _write_profiles(self) -> None:
        for org in self.c.application_orgs:
            client_secret = self.state_dir / "secrets" / f"{org.name}.client.key"
            if not client_secret.exists():
                fd = os.open(client_secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(32))
            path = self.profile_path(org)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.profile(org), indent=2) + "\n")

    # ------------------------------------------------------------------ down / status

    def down(self, *, purge: bool = False) -> list[str]:
        """Stop every process this state folder started; with ``purge`` delete the state."""
        stopped = []
        handles = self.nodes() if (self.state_dir / "nodes").exists() else []
        # Chaincode servers first, then peers, then orderers.
        for h in sorted(handles, key=lambda h: ["chaincode", "peer", "orderer"].index(h.kind)):
            if processes.stop(h.spec):
                stopped.append(h.name)
        if purge and self.state_dir.exists():
            _remove_tree(self.state_dir)
        return stopped

    def status(self) -> dict[str, Any]:
        """What ``dtoken network status --json`` prints."""
        handles = {h.name: h for h in self.nodes()}
        health = dict(
            zip(handles, self._parallel(lambda h: h.healthy(), list(handles.values())), strict=True)
        )
        orgs = []
        for org in self.c.orgs:
            entry: dict[str, Any] = {
                "name": org.name,
                "display_name": org.display_name,
                "msp_id": org.msp_id,
                "kind": org.kind.value,
                "peers": [
                    {
                        "name": p.name,
                        "endpoint": p.endpoint,
                        "healthy": health[p.name],
                        "rss_mb": handles[p.name].rss_mb(),
                        "tls_ca_cert": str(self.tlsca(org.name)),
                        "chaincode_server": {
                            "endpoint": p.chaincode_server_endpoint,
                            "running": health[chaincode_node_name(p, self.deployments()[0])],
                            "rss_mb": handles[
                                chaincode_node_name(p, self.deployments()[0])
                            ].rss_mb(),
                        },
                    }
                    for p in org.peers
                ],
            }
            admin_dir = self.crypto_dir / org.name / "users" / "Admin" / "msp"
            entry["admin"] = {
                "msp_dir": str(admin_dir),
                "cert": str(admin_dir / "signcerts" / "cert.pem"),
                "key": str(admin_dir / "keystore" / "priv_sk"),
            }
            if org.kind is not OrgKind.ORDERER:
                entry["connection_profile"] = str(self.profile_path(org))
            orgs.append(entry)
        return {
            "name": self.c.name,
            "state_dir": str(self.state_dir),
            "config": str(self.c.source.resolve()),
            "channel": self.c.channel,
            "chaincode": self.c.chaincode.name,
            "orgs": orgs,
            "orderers": [
                {
                    "name": o.name,
                    "endpoint": o.endpoint,
                    "admin_endpoint": o.admin_endpoint,
                    "healthy": health[o.name],
                    "rss_mb": handles[o.name].rss_mb(),
                    "tls_ca_cert": str(self.tlsca(self.c.orderer_org.name)),
                }
                for o in self.c.ordering.orderers
            ],
        }

    # ------------------------------------------------------------------ helpers

    def _run(self, cmd: Sequence[str], *, env: dict[str, str]) -> str:
        proc = subprocess.run(
            list(cmd),
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
            cwd=self.state_dir,
        )
        if proc.returncode != 0:
            raise FabricCommandError(" ".join(cmd[:4]), proc.returncode, proc.stdout + proc.stderr)
        return proc.stdout + proc.stderr

    def _run_retrying(self, cmd: Sequence[str], *, env: dict[str, str], attempts: int = 20) -> str:
        """Run a command that talks to the orderer, retrying while Raft elects a leader
        or gossip has not yet spread the channel membership."""
        transient = (
            "SERVICE_UNAVAILABLE",
            "no Raft leader",
            "failed to connect",
            "connection refused",
            "chaincode registration failed",
            "could not launch chaincode",
            "error sending",
            "UNAVAILABLE",
        )
        for attempt in range(attempts):
            try:
                return self._run(cmd, env=env)
            except FabricCommandError as exc:
                if attempt == attempts - 1 or not any(t in exc.output for t in transient):
                    raise
                time.sleep(0.25 * (attempt + 1))
        raise AssertionError("unreachable")

    @staticmethod
    def _parallel(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        if len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
            return list(pool.map(fn, items))


def _deterministic_tgz(files: dict[str, bytes]) -> bytes:
    """A .tar.gz whose bytes depend only on the files (so package ids are stable)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    import gzip

    return gzip.compress(raw.getvalue(), mtime=0)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def iter_logs(network: Network) -> Iterator[tuple[str, Path]]:
    for h in network.nodes():
        yield h.name, h.log_file
