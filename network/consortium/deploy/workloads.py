"""The nodes as containers: one :class:`Workload` per orderer, peer and chaincode server,
with the image, command, environment, ports and mounted files that Compose and
Kubernetes both derive their documents from.

The environments are the native configuration (:mod:`consortium.nodeconfig`,
:mod:`consortium.nodes`) written as ``ORDERER_*`` / ``CORE_*`` / ``CHAINCODE_*``
variables over the official images' sample configuration: keep the two in step.

This module reads the deployment folder's package ids and must not write anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from consortium.chaincodes import REGISTRY_PIN_ENV, registry_pin
from consortium.config import Consortium, OrdererNode, Org, PeerNode
from consortium.deploy.folder import package_ids
from consortium.deploy.model import (
    CC_SECRET_DIR,
    CC_TLS_DIR,
    CCAAS_BUILDER,
    LEDGER_DIR,
    MSP_DIR,
    ROOTS_DIR,
    TLS_DIR,
    FabricImages,
    Target,
    chaincode_host,
    container_view,
)
from consortium.network import Network

__all__ = ["Mount", "Workload", "chaincode_env", "orderer_env", "peer_env", "workloads"]


def orderer_env(c: Consortium, o: OrdererNode) -> dict[str, str]:
    """``orderer.yaml`` overrides: what :func:`consortium.nodeconfig.write_orderer_config`
    sets natively."""
    return {
        "FABRIC_LOGGING_SPEC": "INFO",
        "ORDERER_GENERAL_LISTENADDRESS": "0.0.0.0",  # noqa: S104 - in its own container
        "ORDERER_GENERAL_LISTENPORT": str(o.port),
        "ORDERER_GENERAL_LOCALMSPID": c.orderer_org.msp_id,
        "ORDERER_GENERAL_LOCALMSPDIR": MSP_DIR,
        "ORDERER_GENERAL_TLS_ENABLED": "true",
        "ORDERER_GENERAL_TLS_CERTIFICATE": f"{TLS_DIR}/server.crt",
        "ORDERER_GENERAL_TLS_PRIVATEKEY": f"{TLS_DIR}/server.key",
        "ORDERER_GENERAL_TLS_ROOTCAS": f"[{TLS_DIR}/ca.crt]",
        "ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED": "false",
        "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": f"{TLS_DIR}/server.crt",
        "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": f"{TLS_DIR}/server.key",
        "ORDERER_FILELEDGER_LOCATION": f"{LEDGER_DIR}/ledger",
        "ORDERER_CONSENSUS_WALDIR": f"{LEDGER_DIR}/etcdraft/wal",
        "ORDERER_CONSENSUS_SNAPDIR": f"{LEDGER_DIR}/etcdraft/snapshot",
        "ORDERER_OPERATIONS_LISTENADDRESS": f"0.0.0.0:{o.operations_port}",
        "ORDERER_OPERATIONS_TLS_ENABLED": "true",
        "ORDERER_OPERATIONS_TLS_CERTIFICATE": f"{TLS_DIR}/server.crt",
        "ORDERER_OPERATIONS_TLS_PRIVATEKEY": f"{TLS_DIR}/server.key",
        "ORDERER_METRICS_PROVIDER": "prometheus",
        "ORDERER_ADMIN_LISTENADDRESS": f"0.0.0.0:{o.admin_port}",
        "ORDERER_ADMIN_TLS_ENABLED": "true",
        "ORDERER_ADMIN_TLS_CERTIFICATE": f"{TLS_DIR}/server.crt",
        "ORDERER_ADMIN_TLS_PRIVATEKEY": f"{TLS_DIR}/server.key",
        "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
        "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{TLS_DIR}/ca.crt]",
        "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
    }


def peer_env(c: Consortium, p: PeerNode, chaincode_address: str) -> dict[str, str]:
    """``core.yaml`` overrides: what ``consortium.nodeconfig.write_peer_config`` sets natively."""
    org = c.org(p.org)
    others = [q.endpoint for q in org.peers if q is not p]
    return {
        "FABRIC_LOGGING_SPEC": "INFO",
        "CORE_PEER_ID": p.name,
        "CORE_PEER_NETWORKID": c.name,
        "CORE_PEER_LISTENADDRESS": f"0.0.0.0:{p.port}",
        "CORE_PEER_ADDRESS": p.endpoint,
        "CORE_PEER_CHAINCODELISTENADDRESS": f"0.0.0.0:{p.chaincode_listen_port}",
        "CORE_PEER_CHAINCODEADDRESS": f"{p.host}:{p.chaincode_listen_port}",
        "CORE_PEER_ADDRESSAUTODETECT": "false",
        "CORE_PEER_LOCALMSPID": org.msp_id,
        "CORE_PEER_MSPCONFIGPATH": MSP_DIR,
        "CORE_PEER_FILESYSTEMPATH": LEDGER_DIR,
        "CORE_PEER_GOSSIP_BOOTSTRAP": " ".join(others) or p.endpoint,
        "CORE_PEER_GOSSIP_EXTERNALENDPOINT": p.endpoint,
        "CORE_PEER_GOSSIP_USELEADERELECTION": "false",
        "CORE_PEER_GOSSIP_ORGLEADER": "true",
        "CORE_PEER_GOSSIP_RECONNECTINTERVAL": "1s",
        "CORE_PEER_GOSSIP_ALIVETIMEINTERVAL": "1s",
        "CORE_PEER_GOSSIP_ALIVEEXPIRATIONTIMEOUT": "10s",
        "CORE_PEER_GOSSIP_MEMBERSHIPTRACKERINTERVAL": "1s",
        "CORE_PEER_GOSSIP_PVTDATA_RECONCILESLEEPINTERVAL": "10s",
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_CERT_FILE": f"{TLS_DIR}/server.crt",
        "CORE_PEER_TLS_KEY_FILE": f"{TLS_DIR}/server.key",
        "CORE_PEER_TLS_ROOTCERT_FILE": f"{ROOTS_DIR}/tls-roots.pem",
        "CORE_PEER_TLS_CLIENTAUTHREQUIRED": "false",
        "CORE_PEER_TLS_CLIENTCERT_FILE": f"{TLS_DIR}/server.crt",
        "CORE_PEER_TLS_CLIENTKEY_FILE": f"{TLS_DIR}/server.key",
        "CORE_LEDGER_STATE_STATEDATABASE": "goleveldb",
        "CORE_LEDGER_SNAPSHOTS_ROOTDIR": f"{LEDGER_DIR}/snapshots",
        # No Docker daemon: chaincode runs only as a service, through the image's builder.
        "CORE_VM_ENDPOINT": "",
        "CORE_CHAINCODE_EXTERNALBUILDERS": (
            f"[{{name: ccaas_builder, path: {CCAAS_BUILDER}, "
            f"propagateEnvironment: [CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG]}}]"
        ),
        # The packages' connection.json says "address": "{{.cc0}}"; each peer fills in
        # its own chaincode server.
        "CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG": json.dumps({"cc0": chaincode_address}),
        "CORE_OPERATIONS_LISTENADDRESS": f"0.0.0.0:{p.operations_port}",
        "CORE_OPERATIONS_TLS_ENABLED": "true",
        "CORE_OPERATIONS_TLS_CERT_FILE": f"{TLS_DIR}/server.crt",
        "CORE_OPERATIONS_TLS_KEY_FILE": f"{TLS_DIR}/server.key",
        "CORE_OPERATIONS_TLS_CLIENTROOTCAS_FILES": f"{TLS_DIR}/ca.crt",
        "CORE_METRICS_PROVIDER": "prometheus",
    }


def chaincode_env(org: Org, p: PeerNode, package_id: str, pin: str) -> dict[str, str]:
    """The chaincode server's environment: what :meth:`consortium.nodes.NodeSet.chaincode`
    sets natively (``pin``: :func:`consortium.chaincodes.registry_pin`)."""
    return {
        "CHAINCODE_ID": package_id,
        "CHAINCODE_SERVER_ADDRESS": f"0.0.0.0:{p.chaincode_server_port}",
        "CHAINCODE_TLS_CERT": f"{CC_TLS_DIR}/server.crt",
        "CHAINCODE_TLS_KEY": f"{CC_TLS_DIR}/server.key",
        "CHAINCODE_CLIENT_CA_CERT": f"{CC_TLS_DIR}/ca.crt",
        "DTOKEN_BANK_MSP": org.msp_id,
        "DTOKEN_SECRET_FILE": f"{CC_SECRET_DIR}/chaincode.key",
        REGISTRY_PIN_ENV: pin,
        "PYTHONUNBUFFERED": "1",
    }


@dataclass(frozen=True)
class Mount:
    """Files a container sees in one directory, taken from the deployment folder.

    ``source`` is relative to the folder: a directory (mounted whole) or one file, which
    appears in ``target`` as ``file``.
    """

    volume: str
    source: Path
    target: str
    file: str | None = None


@dataclass(frozen=True)
class Workload:
    """One node as a container: what Compose and Kubernetes both derive from."""

    kind: str  # "orderer" | "peer" | "chaincode"
    name: str  # its host name on the target's network
    org: str
    image: str
    command: tuple[str, ...] | None
    env: Mapping[str, str]
    ports: tuple[tuple[str, int], ...]  # (name, port) from the port plan
    mounts: tuple[Mount, ...]
    probe_port: int
    ledger: bool
    bind_host: str  # the config's host of the node (where Compose publishes its ports)


def workloads(
    c: Consortium,
    net: Network,
    target: Target,
    chaincode_image: str,
    fabric_images: FabricImages | None = None,
) -> list[Workload]:
    fabric_images = fabric_images or FabricImages()
    view = container_view(c, target)
    ids = package_ids(net)
    oo = c.orderer_org.name
    out = []
    for o, ov in zip(c.ordering.orderers, view.ordering.orderers, strict=True):
        node = Path("crypto", oo, "nodes", o.name)
        out.append(
            Workload(
                kind="orderer",
                name=ov.host,
                org=oo,
                image=fabric_images.orderer,
                command=None,
                env=orderer_env(view, ov),
                ports=(
                    ("grpc", o.port),
                    ("admin", o.admin_port),
                    ("operations", o.operations_port),
                ),
                mounts=(Mount("msp", node / "msp", MSP_DIR), Mount("tls", node / "tls", TLS_DIR)),
                probe_port=o.operations_port,
                ledger=True,
                bind_host=o.host,
            )
        )
    for p, pv in zip(c.peers, view.peers, strict=True):
        node = Path("crypto", p.org, "nodes", p.name)
        cc_address = f"{chaincode_host(c, p, target)}:{p.chaincode_server_port}"
        out.append(
            Workload(
                kind="peer",
                name=pv.host,
                org=p.org,
                image=fabric_images.peer,
                command=None,
                env=peer_env(view, pv, cc_address),
                ports=(
                    ("grpc", p.port),
                    ("chaincode", p.chaincode_listen_port),
                    ("operations", p.operations_port),
                ),
                mounts=(
                    Mount("msp", node / "msp", MSP_DIR),
                    Mount("tls", node / "tls", TLS_DIR),
                    Mount("roots", Path("channel", "tls-roots.pem"), ROOTS_DIR, "tls-roots.pem"),
                ),
                probe_port=p.operations_port,
                ledger=True,
                bind_host=p.host,
            )
        )
    for p in c.peers:
        org = c.org(p.org)
        org_dir = Path("crypto", org.name)
        secret_file = Path("secrets", f"{org.name}.key")
        out.append(
            Workload(
                kind="chaincode",
                name=chaincode_host(c, p, target),
                org=org.name,
                image=chaincode_image,
                command=("python", "-m", "fabshim", "serve", c.chaincode.module),
                env=chaincode_env(org, p, ids[org.name], registry_pin(c)),
                ports=(("grpc", p.chaincode_server_port),),
                mounts=(
                    Mount("tls", org_dir / "servers" / f"chaincode.{p.name}", CC_TLS_DIR),
                    Mount("secret", secret_file, CC_SECRET_DIR, "chaincode.key"),
                ),
                probe_port=p.chaincode_server_port,
                ledger=False,
                bind_host=p.host,
            )
        )
    return out
