"""The native nodes' configuration files: each orderer's ``orderer.yaml``, each peer's
``core.yaml``, and the peers' TLS root bundle.

Each file is Fabric's own sample configuration (from the pinned binaries' ``config``
folder) with the settings this network needs: listen and operations addresses from the
port plan, TLS everywhere (mutual TLS on the orderer admin endpoint), the node's local
MSP, ledger paths under the node's folder, fast gossip intervals, Prometheus metrics and
the chaincode-as-a-service builder. The container deployments (:mod:`consortium.deploy`)
set the same settings as environment variables; keep the two in step.

This module writes files under the state folder and must not start processes or run
Fabric's tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from consortium.binaries import FabricInstall
from consortium.config import Consortium, OrdererNode, PeerNode
from consortium.layout import StateLayout

__all__ = [
    "BUILDER_DIR",
    "write_orderer_config",
    "write_peer_config",
    "write_tls_roots_bundle",
]

#: The chaincode-as-a-service external builder the native peers run.
BUILDER_DIR = Path(__file__).resolve().parent / "ccaas_builder"


def write_orderer_config(
    consortium: Consortium, layout: StateLayout, fabric: FabricInstall, o: OrdererNode
) -> None:
    """Write ``nodes/<orderer>/config/orderer.yaml``."""
    home = layout.node_dir(o.name)
    ident = layout.org_crypto(consortium.orderer_org).node(o.name)
    tls = ident.tls_cert.parent
    cfg = yaml.safe_load((fabric.config_dir / "orderer.yaml").read_text())
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
    g["LocalMSPID"] = consortium.orderer_org.msp_id
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
    _write_yaml(home / "config" / "orderer.yaml", cfg)


def write_peer_config(
    consortium: Consortium, layout: StateLayout, fabric: FabricInstall, p: PeerNode
) -> None:
    """Write ``nodes/<peer>/config/core.yaml`` (and the TLS root bundle it names)."""
    home = layout.node_dir(p.name)
    org = consortium.org(p.org)
    ident = layout.org_crypto(org).node(p.name)
    tls = ident.tls_cert.parent
    cfg = yaml.safe_load((fabric.config_dir / "core.yaml").read_text())
    peer = cfg["peer"]
    peer["id"] = p.name
    peer["networkId"] = consortium.name
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
    # other's anchor peers fail; retry every second, not every 25 s. Liveness every 2 s
    # (Fabric: 5 s) and a full pull of the channel's state info every 10 s (Fabric: 4 s):
    # an idle peer's CPU is almost all gossip signature checks, N per alive round and 3N
    # per state-info pull, so N peers cost O(N^2). At 4 s / 1 s, 21 idle peers took 0.89
    # of our 2 cores; at 10 s / 2 s a peer's idle CPU halves (docs/benchmarks.md, "Idle
    # peers"), and a restarted network's membership still converges in about 15 s.
    gossip["reconnectInterval"] = "1s"
    gossip["aliveTimeInterval"] = "2s"
    gossip["aliveExpirationTimeout"] = "20s"
    gossip["requestStateInfoInterval"] = "10s"
    gossip["membershipTrackerInterval"] = "1s"  # how often the metric we wait on updates
    # Catch up on missed private data sooner than the 1 min default after a fault.
    gossip["pvtData"]["reconcileSleepInterval"] = "10s"
    peer["tls"].update(
        enabled=True,
        cert={"file": str(tls / "server.crt")},
        key={"file": str(tls / "server.key")},
        # Every consortium TLS CA, so a peer can dial another organization's peer
        # before the channel config (which lists them too) has been loaded.
        rootcert={"file": str(write_tls_roots_bundle(consortium, layout))},
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
    _write_yaml(home / "config" / "core.yaml", cfg)


def write_tls_roots_bundle(consortium: Consortium, layout: StateLayout) -> Path:
    """Write every consortium TLS CA certificate into one file; return its path."""
    bundle = layout.tls_roots_bundle
    pems = [layout.tlsca(org.name).read_text() for org in consortium.orgs]
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_text("".join(pems))
    return bundle


def _write_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)
