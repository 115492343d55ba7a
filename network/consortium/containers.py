"""Container deployments of the consortium: a Docker Compose file and Kubernetes manifests.

Our machines run the network natively (:mod:`consortium.network`). For users who have a
container engine, this module derives the same network from the same consortium file,
on Fabric's official images at the pinned version (``hyperledger/fabric-orderer``,
``fabric-peer``, ``fabric-tools``) and one image of ours for the Python chaincode servers:

* :func:`compose` returns the Compose document (a dict);
* :func:`kubernetes` returns the Kubernetes manifests (a list of dicts);
* :func:`bootstrap_script` returns the script a one-shot ``fabric-tools`` container runs
  (Compose service ``bootstrap``, Kubernetes Job ``bootstrap``): genesis block,
  ``osnadmin channel join``, ``peer channel join``, chaincode install, approve, commit and
  ``init_network``, as ``dtoken network up`` does natively; each step looks first;
* :func:`write_compose` and :func:`write_kubernetes` prepare a deployment folder
  (:func:`prepare`) and write the files into it.

A deployment folder is laid out like a native state folder, so the native code paths
apply to it unchanged (the crypto generator, chaincode packages, chaincode definition
and connection profiles)::

    crypto/<org>/...            CAs, MSPs, TLS (consortium.crypto)
    secrets/<org>.key           the organization's chaincode secret (0600)
    chaincode/<org>/*.tar.gz    the organization's ccaas package (address {{.cc0}})
    profiles/<org>.json         bank SDK connection profiles (127.0.0.1 and the port plan)
    image/Dockerfile            the chaincode server image: python:3.11-slim + this repository
    compose.yaml  bootstrap.sh  channel/        written by write_compose
    kubernetes.yaml                             written by write_kubernetes

Host names. Compose services are named after the nodes (``peer0.hkbank.dtoken.example``,
``chaincode.peer0.hkbank.dtoken.example``). Kubernetes Service names cannot hold dots,
so there the nodes are ``peer0-hkbank``, ``orderer0-ordering`` and
``chaincode-peer0-hkbank``. The crypto generated here puts the native SANs and both
targets' names into the TLS certificates, so one folder's crypto serves both targets
without re-signing anything. Every node listens on the port the config's port plan gives
it natively; Compose publishes those ports on the host.

This module writes files and starts nothing. Errors: :class:`NetworkError` for a
deployment folder that was not prepared or a source tree that is not this repository,
and :class:`consortium.errors.CryptoError` from the crypto generator.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import yaml

from consortium import channel as channel_cfg
from consortium import crypto
from consortium.binaries import FABRIC_VERSION
from consortium.config import Consortium, OrdererNode, Org, OrgKind, PeerNode
from consortium.errors import NetworkError
from consortium.network import BANK_USERS, REGULATOR_USERS, Deployment, Network

__all__ = [
    "CCAAS_BUILDER",
    "CHAINCODE_BASE_IMAGE",
    "ORDERER_IMAGE",
    "PEER_IMAGE",
    "TOOLS_IMAGE",
    "Target",
    "bootstrap_script",
    "chaincode_host",
    "compose",
    "container_view",
    "default_chaincode_image",
    "dockerfile",
    "ensure_crypto",
    "kubernetes",
    "node_host",
    "prepare",
    "tls_roots",
    "write_compose",
    "write_kubernetes",
]

ORDERER_IMAGE: Final = f"hyperledger/fabric-orderer:{FABRIC_VERSION}"
PEER_IMAGE: Final = f"hyperledger/fabric-peer:{FABRIC_VERSION}"
TOOLS_IMAGE: Final = f"hyperledger/fabric-tools:{FABRIC_VERSION}"
CHAINCODE_BASE_IMAGE: Final = "python:3.11-slim"
#: The chaincode-as-a-service builder built into the official peer image.
CCAAS_BUILDER: Final = "/opt/hyperledger/ccaas_builder"

# Paths inside the containers. Our files go under ROOT, away from the image's own
# FABRIC_CFG_PATH (/etc/hyperledger/fabric: core.yaml / orderer.yaml, a sample MSP).
ROOT: Final = "/etc/hyperledger/dtoken"
MSP_DIR: Final = f"{ROOT}/msp"  # the node's local MSP
TLS_DIR: Final = f"{ROOT}/tls"  # ca.crt server.crt server.key
ROOTS_DIR: Final = f"{ROOT}/roots"  # tls-roots.pem: every consortium TLS CA (peers)
CC_TLS_DIR: Final = f"{ROOT}/chaincode-tls"  # the chaincode server's TLS pair and client CA
CC_SECRET_DIR: Final = f"{ROOT}/secret"  # chaincode.key: the organization's chaincode secret
CRYPTO_DIR: Final = f"{ROOT}/crypto"  # bootstrap: the crypto tree (configtx.yaml paths)
CHANNEL_DIR: Final = f"{ROOT}/channel"  # bootstrap: configtx.yaml, collections JSON
PACKAGES_DIR: Final = f"{ROOT}/packages"  # bootstrap: <org>/<label>.tar.gz
BOOTSTRAP_DIR: Final = f"{ROOT}/bootstrap"  # bootstrap: bootstrap.sh
LEDGER_DIR: Final = "/var/hyperledger/production"  # a node's ledger (a named volume / PVC)
WORK_DIR: Final = "/var/hyperledger/bootstrap"  # bootstrap: genesis.block, markers

_SECRET_KEY: Final = re.compile(r"^[-._a-zA-Z0-9]+$")
_SAFE_WORD: Final = re.compile(r"^[\w./:-]+$")


class Target(StrEnum):
    """Where the generated network runs."""

    COMPOSE = "compose"
    KUBERNETES = "kubernetes"


# --------------------------------------------------------------------------- naming


def node_host(c: Consortium, name: str, target: Target) -> str:
    """The host name of node ``name`` (an orderer or a peer) on the target's network.

    Compose: the node name itself. Kubernetes: the name without the consortium's
    domain, dots turned to dashes (``peer0.hkbank.dtoken.example`` -> ``peer0-hkbank``),
    a valid Service name.
    """
    if target is Target.COMPOSE:
        return name
    suffix = f".{c.domain}"
    short = name[: -len(suffix)] if name.endswith(suffix) else name
    return short.replace(".", "-")


def chaincode_host(c: Consortium, p: PeerNode, target: Target) -> str:
    """The host name of the chaincode server peer ``p`` dials (its ``{{.cc0}}``)."""
    if target is Target.COMPOSE:
        return f"chaincode.{p.name}"  # the native server's node name
    return f"chaincode-{node_host(c, p.name, target)}"


def container_view(c: Consortium, target: Target) -> Consortium:
    """The consortium as the target's network sees it: each node's host is its host name.

    Ports are unchanged. The channel configuration rendered from this view names the
    container host names as consenters, orderer endpoints and anchor peers.
    """

    def org_view(org: Org) -> Org:
        peers = tuple(dataclasses.replace(p, host=node_host(c, p.name, target)) for p in org.peers)
        return dataclasses.replace(org, peers=peers)

    orderers = tuple(
        dataclasses.replace(o, host=node_host(c, o.name, target)) for o in c.ordering.orderers
    )
    return dataclasses.replace(
        c,
        ordering=dataclasses.replace(c.ordering, orderers=orderers),
        banks=tuple(org_view(b) for b in c.banks),
        regulator=org_view(c.regulator) if c.regulator else None,
    )


def default_chaincode_image(c: Consortium) -> str:
    """``<network>-chaincode:<chaincode version>``, the tag the Dockerfile is built as."""
    tag = re.sub(r"[^\w.-]", "-", c.chaincode.version)
    return f"{c.name}-chaincode:{tag if tag[0] not in '.-' else 'v' + tag}"


# --------------------------------------------------------------------------- crypto and folder


def _node_sans(c: Consortium, host: str, name: str) -> list[str]:
    # The native SANs (network._ensure_crypto) first, then the Kubernetes name; the
    # Compose name is the node name, already there.
    return list(dict.fromkeys([host, "localhost", name, node_host(c, name, Target.KUBERNETES)]))


def _chaincode_sans(c: Consortium, p: PeerNode) -> list[str]:
    return list(
        dict.fromkeys(
            [
                p.host,
                "localhost",
                chaincode_host(c, p, Target.COMPOSE),
                chaincode_host(c, p, Target.KUBERNETES),
            ]
        )
    )


def _ensure_random_file(path: Path, size: int = 32) -> None:
    """Create ``path`` with ``size`` random bytes, mode 0600, unless it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(os.urandom(size))


def ensure_crypto(c: Consortium, folder: Path) -> None:
    """Create what is missing of the crypto material and chaincode secrets in ``folder``.

    The same identities as the native network (``Network._ensure_crypto``): per
    organization its CAs, node MSP and TLS pairs, Admin, the bank users (minter,
    operator) or the regulator's auditor, a TLS pair per chaincode server and the
    ``chaincode-client`` pair the peers present to them. The TLS certificates also name
    the container host names. Idempotent (existing keys are kept).
    """
    base = folder / "crypto"
    oo = c.orderer_org
    crypto.generate_org(
        base,
        org_name=oo.name,
        domain=oo.domain,
        nodes={o.name: _node_sans(c, o.host, o.name) for o in c.ordering.orderers},
        node_ou="orderer",
    )
    for org in c.application_orgs:
        users = BANK_USERS if org.kind is OrgKind.BANK else REGULATOR_USERS
        oc = crypto.generate_org(
            base,
            org_name=org.name,
            domain=org.domain,
            nodes={p.name: _node_sans(c, p.host, p.name) for p in org.peers},
            node_ou="peer",
            clients=users,
        )
        for p in org.peers:
            oc.issue_tls_server(f"chaincode.{p.name}", _chaincode_sans(c, p))
        oc.issue_tls_server("chaincode-client", ["chaincode-client"])
        _ensure_random_file(folder / "secrets" / f"{org.name}.key")


def _quiet(_message: str) -> None:
    return None


def _network(c: Consortium, crypto_dir: Path) -> Network:
    """The native view of a deployment folder (``crypto_dir`` is ``<folder>/crypto``)."""
    if crypto_dir.name != "crypto":
        raise NetworkError(
            f"{crypto_dir}: expected the 'crypto' folder of a deployment folder (<folder>/crypto)"
        )
    return Network(c, crypto_dir.parent, progress=_quiet)


def _main_deployment(net: Network) -> Deployment:
    return net.deployments()[0]


def _package_ids(net: Network) -> dict[str, str]:
    """Each application organization's package id; the packages must exist."""
    d = _main_deployment(net)
    ids = {}
    for org in net.c.application_orgs:
        path = net.package_path(org, d)
        if not path.is_file():
            raise NetworkError(
                f"{path}: the chaincode package is missing; prepare the deployment folder "
                f"first (containers.prepare, or dtoken network generate)"
            )
        ids[org.name] = net.package_id(org, d)
    return ids


def tls_roots(c: Consortium, crypto_dir: Path) -> str:
    """Every consortium TLS CA certificate, concatenated: a peer's TLS root bundle."""
    return "".join(
        (crypto_dir / org.name / "tlsca" / "tlsca-cert.pem").read_text() for org in c.orgs
    )


def _write_text(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    tmp.replace(path)


def dockerfile(c: Consortium) -> str:
    """The chaincode server image: ``python:3.11-slim`` with the chaincode server's
    distributions pip-installed (fabshim, dtoken-wire, dtoken-chaincode).

    Build context: the repository root. Only those distributions' folders are copied;
    ``Dockerfile.dockerignore`` beside it keeps the rest out of the context.
    """
    cmd = json.dumps(["python", "-m", "fabshim", "serve", c.chaincode.module])
    return f"""\
# Generated by `dtoken network generate` from the consortium file; do not edit.
# The chaincode servers of network {c.name}: `python -m fabshim serve MODULE:ATTR`,
# configured by the CHAINCODE_* and DTOKEN_* environment (see docs/deployment.md).
# Build context: the repository root.
FROM {CHAINCODE_BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/dtoken
COPY chaincode src/chaincode
COPY chaincode-client/wire src/wire
RUN pip install ./src/chaincode/shim ./src/wire ./src/chaincode/server && rm -rf src
CMD {cmd}
"""


DOCKERIGNORE: Final = """\
# Generated: the build context is the repository root; send only what the image copies.
*
!chaincode
!chaincode-client/wire
**/__pycache__
**/*.pyc
**/*.egg-info
"""


def prepare(c: Consortium, folder: Path) -> Network:
    """Make ``folder`` a deployment folder: crypto, secrets, packages, profiles, image.

    Idempotent: what exists is kept (keys, secrets, packages), so generating again, or
    for the other target, changes no identity and no package id.
    """
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    ensure_crypto(c, folder)
    net = Network(c, folder, progress=_quiet)
    d = _main_deployment(net)
    for org in c.application_orgs:
        net.package_id(org, d)  # writes chaincode/<org>/<label>.tar.gz the first time
        # The bank SDK's profile: endpoints 127.0.0.1:<port plan>, TLS names the node names.
        _ensure_random_file(folder / "secrets" / f"{org.name}.client.key")
        _write_text(net.profile_path(org), json.dumps(net.profile(org), indent=2) + "\n")
    _write_text(folder / "image" / "Dockerfile", dockerfile(c))
    _write_text(folder / "image" / "Dockerfile.dockerignore", DOCKERIGNORE)
    return net


# --------------------------------------------------------------------------- environment


def _orderer_env(c: Consortium, o: OrdererNode) -> dict[str, str]:
    """``orderer.yaml`` overrides: what ``Network._write_orderer_config`` sets natively."""
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


def _peer_env(c: Consortium, p: PeerNode, chaincode_address: str) -> dict[str, str]:
    """``core.yaml`` overrides: what ``Network._write_peer_config`` sets natively."""
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


def _chaincode_env(org: Org, p: PeerNode, package_id: str) -> dict[str, str]:
    """The chaincode server's environment: what ``Network.chaincode_handle`` sets natively."""
    return {
        "CHAINCODE_ID": package_id,
        "CHAINCODE_SERVER_ADDRESS": f"0.0.0.0:{p.chaincode_server_port}",
        "CHAINCODE_TLS_CERT": f"{CC_TLS_DIR}/server.crt",
        "CHAINCODE_TLS_KEY": f"{CC_TLS_DIR}/server.key",
        "CHAINCODE_CLIENT_CA_CERT": f"{CC_TLS_DIR}/ca.crt",
        "DTOKEN_BANK_MSP": org.msp_id,
        "DTOKEN_SECRET_FILE": f"{CC_SECRET_DIR}/chaincode.key",
        "PYTHONUNBUFFERED": "1",
    }


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class _Mount:
    """Files a container sees in one directory, taken from the deployment folder.

    ``source`` is relative to the folder: a directory (mounted whole) or one file, which
    appears in ``target`` as ``file``.
    """

    volume: str
    source: Path
    target: str
    file: str | None = None


@dataclass(frozen=True)
class _Workload:
    """One node as a container: what Compose and Kubernetes both derive from."""

    kind: str  # "orderer" | "peer" | "chaincode"
    name: str  # its host name on the target's network
    org: str
    image: str
    command: tuple[str, ...] | None
    env: Mapping[str, str]
    ports: tuple[tuple[str, int], ...]  # (name, port) from the port plan
    mounts: tuple[_Mount, ...]
    probe_port: int
    ledger: bool
    bind_host: str  # the config's host of the node (where Compose publishes its ports)


def _workloads(
    c: Consortium, net: Network, target: Target, chaincode_image: str
) -> list[_Workload]:
    view = container_view(c, target)
    ids = _package_ids(net)
    oo = c.orderer_org.name
    out = []
    for o, ov in zip(c.ordering.orderers, view.ordering.orderers, strict=True):
        node = Path("crypto", oo, "nodes", o.name)
        out.append(
            _Workload(
                kind="orderer",
                name=ov.host,
                org=oo,
                image=ORDERER_IMAGE,
                command=None,
                env=_orderer_env(view, ov),
                ports=(
                    ("grpc", o.port),
                    ("admin", o.admin_port),
                    ("operations", o.operations_port),
                ),
                mounts=(_Mount("msp", node / "msp", MSP_DIR), _Mount("tls", node / "tls", TLS_DIR)),
                probe_port=o.operations_port,
                ledger=True,
                bind_host=o.host,
            )
        )
    for p, pv in zip(c.peers, view.peers, strict=True):
        node = Path("crypto", p.org, "nodes", p.name)
        cc_address = f"{chaincode_host(c, p, target)}:{p.chaincode_server_port}"
        out.append(
            _Workload(
                kind="peer",
                name=pv.host,
                org=p.org,
                image=PEER_IMAGE,
                command=None,
                env=_peer_env(view, pv, cc_address),
                ports=(
                    ("grpc", p.port),
                    ("chaincode", p.chaincode_listen_port),
                    ("operations", p.operations_port),
                ),
                mounts=(
                    _Mount("msp", node / "msp", MSP_DIR),
                    _Mount("tls", node / "tls", TLS_DIR),
                    _Mount("roots", Path("channel", "tls-roots.pem"), ROOTS_DIR, "tls-roots.pem"),
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
            _Workload(
                kind="chaincode",
                name=chaincode_host(c, p, target),
                org=org.name,
                image=chaincode_image,
                command=("python", "-m", "fabshim", "serve", c.chaincode.module),
                env=_chaincode_env(org, p, ids[org.name]),
                ports=(("grpc", p.chaincode_server_port),),
                mounts=(
                    _Mount("tls", org_dir / "servers" / f"chaincode.{p.name}", CC_TLS_DIR),
                    _Mount("secret", secret_file, CC_SECRET_DIR, "chaincode.key"),
                ),
                probe_port=p.chaincode_server_port,
                ledger=False,
                bind_host=p.host,
            )
        )
    return out


def _publish_ip(host: str) -> str:
    """Publish on loopback when the config keeps the node on this machine, else everywhere."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        return "127.0.0.1" if ipaddress.ip_address(host).is_loopback else "0.0.0.0"  # noqa: S104
    except ValueError:
        return "0.0.0.0"  # noqa: S104 - a host name: the node is meant to be reached


def _rel(path: Path, start: Path) -> str:
    rel = Path(os.path.relpath(path, start)).as_posix()
    return rel if rel.startswith("../") else f"./{rel}"


def _bootstrap_crypto_files(c: Consortium) -> list[Path]:
    """What the bootstrap container needs of the crypto tree (relative to ``crypto/``):
    every verifying MSP and TLS CA, the admins' MSPs and TLS pairs (peer CLI, osnadmin),
    the consenters' TLS certificates (configtx.yaml)."""
    files: list[Path] = []
    for org in c.orgs:
        files += [
            Path(org.name, "msp", "cacerts", "ca-cert.pem"),
            Path(org.name, "msp", "tlscacerts", "tlsca-cert.pem"),
            Path(org.name, "msp", "config.yaml"),
            Path(org.name, "tlsca", "tlsca-cert.pem"),
        ]
        admin = Path(org.name, "users", "Admin")
        files += [
            admin / "msp" / "cacerts" / "ca-cert.pem",
            admin / "msp" / "tlscacerts" / "tlsca-cert.pem",
            admin / "msp" / "config.yaml",
            admin / "msp" / "signcerts" / "cert.pem",
            admin / "msp" / "keystore" / "priv_sk",
            admin / "tls" / "ca.crt",
            admin / "tls" / "client.crt",
            admin / "tls" / "client.key",
        ]
    for o in c.ordering.orderers:
        files.append(Path(c.orderer_org.name, "nodes", o.name, "tls", "server.crt"))
    return files


# --------------------------------------------------------------------------- bootstrap script


_SCRIPT_FUNCTIONS: Final = r"""
CRYPTO=${DTOKEN_CRYPTO:-/etc/hyperledger/dtoken/crypto}
CHANNEL_DIR=${DTOKEN_CHANNEL_DIR:-/etc/hyperledger/dtoken/channel}
PACKAGES=${DTOKEN_PACKAGES:-/etc/hyperledger/dtoken/packages}
WORK=${DTOKEN_WORK:-/var/hyperledger/bootstrap}
ATTEMPTS=${DTOKEN_ATTEMPTS:-150}
DELAY=${DTOKEN_DELAY:-2}
export FABRIC_LOGGING_SPEC=${FABRIC_LOGGING_SPEC:-warning}

say() { printf 'bootstrap: %s\n' "$*" >&2; }

# fail WHO OUTPUT: report the last line of a command's output; return 1.
fail() { say "$1: $(tail -n 1 <<<"$2")"; return 1; }

# retry CMD...: run CMD until it succeeds (nodes may still be starting).
retry() {
  local attempt
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    if "$@"; then return 0; fi
    sleep "$DELAY"
  done
  say "giving up after $ATTEMPTS attempts: $*"
  return 1
}

# as_admin ORG MSP_ID PEER: the peer CLI acts as ORG's admin against PEER (host:port).
as_admin() {
  export CORE_PEER_LOCALMSPID=$2
  export CORE_PEER_MSPCONFIGPATH=$CRYPTO/$1/users/Admin/msp
  export CORE_PEER_ADDRESS=$3
  export CORE_PEER_TLS_ENABLED=true
  export CORE_PEER_TLS_ROOTCERT_FILE=$CRYPTO/$1/tlsca/tlsca-cert.pem
}

# genesis: the channel's genesis block, made once (configtxgen output is not
# deterministic, and every node must join with the same block).
genesis() {
  [ -s "$WORK/genesis.block" ] && return 0
  local out
  mkdir -p "$WORK"
  out=$(configtxgen -profile "$PROFILE" -channelID "$CHANNEL" -configPath "$CHANNEL_DIR" \
    -outputBlock "$WORK/genesis.block.tmp" 2>&1) || { fail configtxgen "$out"; return 1; }
  mv "$WORK/genesis.block.tmp" "$WORK/genesis.block"
  say "genesis block of $CHANNEL made"
}

# join_orderer ADMIN_ADDRESS: osnadmin channel join, unless the orderer has the channel.
join_orderer() {
  local out
  out=$(osnadmin channel list -o "$1" "${OSNADMIN_TLS[@]}" 2>&1) || { fail "$1" "$out"; return 1; }
  grep -q 'Status: 200' <<<"$out" || { fail "$1" "$out"; return 1; }
  grep -q "\"name\": *\"$CHANNEL\"" <<<"$out" && return 0
  out=$(osnadmin channel join --channelID "$CHANNEL" --config-block "$WORK/genesis.block" \
    -o "$1" "${OSNADMIN_TLS[@]}" 2>&1) || { fail "$1" "$out"; return 1; }
  grep -q 'Status: 201' <<<"$out" || { fail "$1" "$out"; return 1; }
  say "$1 joined $CHANNEL"
}

# join_peer ORG MSP_ID PEER: peer channel join, unless the peer has the channel.
join_peer() {
  as_admin "$1" "$2" "$3"
  local out
  out=$(peer channel list 2>&1) || { fail "$3" "$out"; return 1; }
  grep -qx "$CHANNEL" <<<"$out" && return 0
  out=$(peer channel join -b "$WORK/genesis.block" 2>&1) || { fail "$3" "$out"; return 1; }
  say "$3 joined $CHANNEL"
}

# install_package ORG MSP_ID PEER PACKAGE_FILE PACKAGE_ID
install_package() {
  as_admin "$1" "$2" "$3"
  local out
  out=$(peer lifecycle chaincode queryinstalled --output json 2>&1) \
    || { fail "$3" "$out"; return 1; }
  grep -qF "\"$5\"" <<<"$out" && return 0
  out=$(peer lifecycle chaincode install "$PACKAGES/$4" 2>&1) || { fail "$3" "$out"; return 1; }
  say "$3 installed $5"
}

# committed ORG MSP_ID PEER: is the definition (sequence 1) committed?
committed() {
  as_admin "$1" "$2" "$3"
  peer lifecycle chaincode querycommitted --channelID "$CHANNEL" --name "$CC_NAME" \
    --output json 2>/dev/null | grep -q '"sequence": 1'
}

# approve ORG MSP_ID PEER PACKAGE_ID: approveformyorg, unless ORG has approved.
approve() {
  as_admin "$1" "$2" "$3"
  local out
  out=$(peer lifecycle chaincode checkcommitreadiness "${DEFINITION[@]}" --output json 2>&1) \
    || { fail "$3" "$out"; return 1; }
  grep -q "\"$2\": true" <<<"$out" && return 0
  out=$(peer lifecycle chaincode approveformyorg "${ORDERER_TLS[@]}" "${DEFINITION[@]}" \
    --package-id "$4" --waitForEvent 2>&1) || { fail "$3" "$out"; return 1; }
  say "$2 approved $CC_NAME"
}

# commit_definition ORG MSP_ID PEER
commit_definition() {
  committed "$1" "$2" "$3" && return 0
  local out
  out=$(peer lifecycle chaincode commit "${ORDERER_TLS[@]}" "${DEFINITION[@]}" \
    "${COMMIT_PEERS[@]}" --waitForEvent 2>&1) || { fail "$3" "$out"; return 1; }
  say "$CC_NAME committed on $CHANNEL"
}

# init_chaincode ORG MSP_ID PEER: the registry transaction, once.
init_chaincode() {
  [ -e "$WORK/initialized" ] && return 0
  as_admin "$1" "$2" "$3"
  local out
  if ! out=$(peer chaincode invoke "${ORDERER_TLS[@]}" -C "$CHANNEL" -n "$CC_NAME" \
    -c "$INIT_CTOR" "${INIT_PEERS[@]}" --waitForEvent 2>&1); then
    grep -q ALREADY_INITIALIZED <<<"$out" || { fail "$3" "$out"; return 1; }
  fi
  touch "$WORK/initialized"
  say "$CC_NAME initialized"
}
"""


def bootstrap_script(c: Consortium, crypto_dir: Path, target: Target) -> str:
    """The bash script the one-shot ``fabric-tools`` container runs (idempotent).

    It runs ``dtoken network up``'s channel and lifecycle steps against the target's
    host names: genesis block (``configtxgen``), ``osnadmin channel join`` for each
    orderer, ``peer channel join`` for each peer, install of each organization's package
    on its peers, ``approveformyorg`` for each organization, ``commit`` endorsed by each
    organization's first peer, then ``init_network`` with the registry, endorsed by
    the banks. The container paths can be overridden (``DTOKEN_CRYPTO``, ...).
    """
    net = _network(c, crypto_dir)
    view = container_view(c, target)
    d = _main_deployment(net)
    ids = _package_ids(net)
    q = shlex.quote

    def word(value: str) -> str:
        if not _SAFE_WORD.match(value):
            raise NetworkError(f"{value!r}: not a safe path or host name for the bootstrap script")
        return value

    def tlsca(org: Org) -> str:
        return f'"$CRYPTO/{word(org.name)}/tlsca/tlsca-cert.pem"'

    def peer_args(orgs: Iterable[Org]) -> str:
        return " ".join(
            f"--peerAddresses {word(org.peers[0].endpoint)} --tlsRootCertFiles {tlsca(org)}"
            for org in orgs
        )

    oo = view.orderer_org
    admin_tls = f"$CRYPTO/{word(oo.name)}/users/Admin/tls"
    ctor = json.dumps({"Args": [d.init_function or "init_network", json.dumps(net.registry())]})
    first = view.application_orgs[0]
    who = f"{first.name} {first.msp_id} {word(first.peers[0].endpoint)}"
    lines = [
        "#!/usr/bin/env bash",
        f"# Generated by `dtoken network generate {target.value}` from {c.source.name}; "
        "do not edit (generate again).",
        f"# Runs in {TOOLS_IMAGE}: joins the orderers and peers to channel {c.channel} and",
        f"# defines chaincode {d.name} as `dtoken network up` does natively. Every step looks",
        "# first and does only what is missing: running it again is safe.",
        "set -euo pipefail",
        _SCRIPT_FUNCTIONS.strip("\n"),
        "",
        f"PROFILE={q(channel_cfg.PROFILE)}",
        f"CHANNEL={q(c.channel)}",
        f"CC_NAME={q(d.name)}",
        f'OSNADMIN_TLS=(--ca-file "{admin_tls}/ca.crt" --client-cert "{admin_tls}/client.crt" '
        f'--client-key "{admin_tls}/client.key")',
        f"ORDERER_TLS=(-o {word(view.ordering.orderers[0].endpoint)} --tls --cafile {tlsca(oo)})",
        "DEFINITION=(",
        f"  --channelID {q(c.channel)} --name {q(d.name)} --version {q(d.version)} --sequence 1",
        f"  --signature-policy {q(d.policy)}",
        f'  --collections-config "$CHANNEL_DIR/collections-{word(d.name)}.json"',
        ")",
        f"COMMIT_PEERS=({peer_args(view.application_orgs)})",
        f"INIT_PEERS=({peer_args(view.banks)})",
        f"INIT_CTOR={q(ctor)}",
        "",
        "retry genesis",
    ]
    lines += [f"retry join_orderer {word(o.admin_endpoint)}" for o in view.ordering.orderers]
    for p in view.peers:
        org = view.org(p.org)
        lines.append(f"retry join_peer {org.name} {org.msp_id} {word(p.endpoint)}")
    for p in view.peers:
        org = view.org(p.org)
        package = f"{org.name}/{net.package_path(org, d).name}"
        lines.append(
            f"retry install_package {org.name} {org.msp_id} {word(p.endpoint)} "
            f"{word(package)} {q(ids[org.name])}"
        )
    lines.append(f"if committed {who}; then")
    lines.append('  say "$CC_NAME is already committed on $CHANNEL"')
    lines.append("else")
    for org in view.application_orgs:
        lines.append(
            f"  retry approve {org.name} {org.msp_id} {word(org.peers[0].endpoint)} "
            f"{q(ids[org.name])}"
        )
    lines.append(f"  retry commit_definition {who}")
    lines.append("fi")
    bank = view.banks[0]
    lines.append(f"retry init_chaincode {bank.name} {bank.msp_id} {word(bank.peers[0].endpoint)}")
    lines.append('say "network $CHANNEL is bootstrapped"')
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- compose


def _tcp_probe_test(kind: str, port: int) -> list[str]:
    if kind == "chaincode":  # python:3.11-slim has no bash /dev/tcp guarantee; use Python
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), 2).close()"
        return ["CMD", "python", "-c", code]
    return ["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"]  # Ubuntu-based images


def compose(
    c: Consortium,
    crypto_dir: Path,
    *,
    chaincode_image: str | None = None,
    source_dir: Path = Path(),
) -> dict[str, Any]:
    """The Compose document of the consortium; ``compose.yaml`` lives in ``crypto_dir.parent``.

    One service per orderer, peer and chaincode server, named after the nodes; a named
    volume per orderer and peer for its ledger; the one-shot ``bootstrap`` service. Host
    paths are relative to the deployment folder. ``source_dir`` is the repository the
    chaincode image is built from (the build context; default: the current directory). The
    folder must be prepared (:func:`prepare`); ``channel/`` and ``bootstrap.sh`` are written by
    :func:`write_compose`.
    """
    net = _network(c, crypto_dir)
    folder = net.state_dir
    image = chaincode_image or default_chaincode_image(c)
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    build = {
        "context": _rel(source_dir.resolve(), folder),
        "dockerfile": os.path.relpath(folder / "image" / "Dockerfile", source_dir.resolve()),
    }
    for w in _workloads(c, net, Target.COMPOSE, image):
        binds: list[dict[str, Any]] = [
            {
                "type": "bind",
                "source": f"./{m.source.as_posix()}",
                "target": f"{m.target}/{m.file}" if m.file else m.target,
                "read_only": True,
            }
            for m in w.mounts
        ]
        if w.ledger:
            volumes[w.name] = {}
            binds.append({"type": "volume", "source": w.name, "target": LEDGER_DIR})
        service: dict[str, Any] = {"image": w.image}
        if w.kind == "chaincode":
            service["build"] = dict(build)
        service["hostname"] = w.name
        if w.command:
            service["command"] = list(w.command)
        service["environment"] = dict(w.env)
        ip = _publish_ip(w.bind_host)
        service["ports"] = [
            {"target": port, "published": str(port), "host_ip": ip, "protocol": "tcp"}
            for _name, port in w.ports
        ]
        service["volumes"] = binds
        service["healthcheck"] = {
            "test": _tcp_probe_test(w.kind, w.probe_port),
            "interval": "2s",
            "timeout": "2s",
            "retries": 90,
        }
        service["restart"] = "unless-stopped"
        services[w.name] = service

    def bind(source: str, target: str) -> dict[str, Any]:
        return {"type": "bind", "source": source, "target": target, "read_only": True}

    volumes["bootstrap"] = {}
    services["bootstrap"] = {
        "image": TOOLS_IMAGE,
        "command": ["bash", f"{BOOTSTRAP_DIR}/bootstrap.sh"],
        "depends_on": {name: {"condition": "service_healthy"} for name in services},
        "volumes": [
            bind("./crypto", CRYPTO_DIR),
            bind("./channel", CHANNEL_DIR),
            bind("./chaincode", PACKAGES_DIR),
            bind("./bootstrap.sh", f"{BOOTSTRAP_DIR}/bootstrap.sh"),
            {"type": "volume", "source": "bootstrap", "target": WORK_DIR},
        ],
        "restart": "no",
    }
    return {"name": c.name, "services": services, "volumes": volumes}


def _header(c: Consortium, what: str) -> str:
    return (
        f"# Generated by `dtoken network generate {what}` from {c.source.name} "
        f"(network {c.name}, Fabric {FABRIC_VERSION}); do not edit: generate again.\n"
        "# See docs/deployment.md.\n"
    )


def write_compose(
    c: Consortium,
    folder: Path,
    *,
    chaincode_image: str | None = None,
    source_dir: Path = Path(),
) -> Path:
    """Prepare ``folder`` and write ``compose.yaml``, ``bootstrap.sh`` and ``channel/``.

    ``channel/`` holds the genesis inputs with the Compose host names (``configtx.yaml``,
    whose crypto paths are the bootstrap container's), the collections JSON and the
    peers' TLS root bundle. Returns the path of ``compose.yaml``.
    """
    if not (source_dir / "pyproject.toml").is_file():
        raise NetworkError(
            f"{source_dir.resolve()}: not a checkout of this repository (no pyproject.toml); "
            f"the chaincode image is built from it: run from the repository's root"
        )
    net = prepare(c, folder)
    folder = net.state_dir
    crypto_dir = folder / "crypto"
    view = container_view(c, Target.COMPOSE)
    channel_dir = folder / "channel"
    channel_cfg.write_configtx(view, Path(CRYPTO_DIR), channel_dir)
    d = _main_deployment(net)
    _write_text(channel_dir / f"collections-{d.name}.json", channel_cfg.collections_json(c))
    _write_text(channel_dir / "tls-roots.pem", tls_roots(c, crypto_dir))
    _write_text(folder / "bootstrap.sh", bootstrap_script(c, crypto_dir, Target.COMPOSE), 0o755)
    doc = compose(c, crypto_dir, chaincode_image=chaincode_image, source_dir=source_dir)
    path = folder / "compose.yaml"
    _write_text(path, _header(c, "compose") + yaml.safe_dump(doc, sort_keys=False, width=120))
    return path


# --------------------------------------------------------------------------- kubernetes


def _secret_key(rel: str) -> str:
    key = rel.replace("/", "__")
    if not _SECRET_KEY.match(key):
        raise NetworkError(f"{rel!r}: cannot be a Secret or ConfigMap key")
    return key


def _files_of(folder: Path, m: _Mount) -> dict[str, bytes]:
    """The mount's files: path relative to its target -> content."""
    source = folder / m.source
    if m.file is not None:
        return {m.file: source.read_bytes()}
    if not source.is_dir():
        raise NetworkError(f"{source}: missing; prepare the deployment folder first")
    return {
        p.relative_to(source).as_posix(): p.read_bytes()
        for p in sorted(source.rglob("*"))
        if p.is_file()
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class _Manifests:
    """Builds the documents of one namespace: names, labels, Secrets, ConfigMaps."""

    network: str
    namespace: str

    def labels(self, name: str, component: str, org: str | None = None) -> dict[str, str]:
        out = {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": self.network,
            "app.kubernetes.io/component": component,
        }
        if org:
            out["dtoken/org"] = org
        return out

    def selector(self, name: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": self.network}

    def meta(self, name: str, component: str, org: str | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(name, component, org),
        }

    def secret(
        self, name: str, component: str, files: Mapping[str, bytes], source: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A Secret of ``files`` (relative path -> content) and the volume source that lays
        them out again at those paths. ``source`` (annotation) names where they came from."""
        meta = self.meta(name, component)
        meta["annotations"] = {"dtoken/source": source}
        doc = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": "Opaque",
            "data": {_secret_key(rel): _b64(data) for rel, data in files.items()},
        }
        items = [{"key": _secret_key(rel), "path": rel} for rel in files]
        return doc, {"secretName": name, "defaultMode": 0o400, "items": items}

    def config_map(self, name: str, files: Mapping[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.meta(name, "config"),
            "data": {_secret_key(k): v for k, v in files.items()},
        }


def _k8s_node(
    m: _Manifests, w: _Workload, folder: Path, storage: str
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """One node: its Secrets, its Service, its StatefulSet (ledger) or Deployment."""
    secrets: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for mount in w.mounts:
        if mount.volume == "roots":  # the same public bundle for every peer
            volumes.append({"name": mount.volume, "configMap": {"name": "tls-roots"}})
        else:
            files = _files_of(folder, mount)
            doc, source = m.secret(
                f"{w.name}-{mount.volume}", w.kind, files, mount.source.as_posix()
            )
            secrets.append(doc)
            volumes.append({"name": mount.volume, "secret": source})
        mounts.append({"name": mount.volume, "mountPath": mount.target, "readOnly": True})
    if w.ledger:
        mounts.append({"name": "ledger", "mountPath": LEDGER_DIR})
    container: dict[str, Any] = {"name": w.kind, "image": w.image}
    if w.kind == "chaincode":
        container["imagePullPolicy"] = "IfNotPresent"
    if w.command:
        container["command"] = list(w.command)
    container["env"] = [{"name": k, "value": v} for k, v in w.env.items()]
    container["ports"] = [{"name": n, "containerPort": port} for n, port in w.ports]
    container["volumeMounts"] = mounts
    container["readinessProbe"] = {"tcpSocket": {"port": w.probe_port}, "periodSeconds": 5}
    pod = {
        "metadata": {"labels": m.labels(w.name, w.kind, w.org)},
        "spec": {
            "enableServiceLinks": False,  # the environment is exactly the one above
            "containers": [container],
            "volumes": volumes,
        },
    }
    selector = m.selector(w.name)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": m.meta(w.name, w.kind, w.org),
        "spec": {
            "selector": selector,
            "ports": [
                {"name": n, "port": port, "targetPort": port, "protocol": "TCP"}
                for n, port in w.ports
            ],
        },
    }
    spec: dict[str, Any] = {"replicas": 1, "selector": {"matchLabels": selector}, "template": pod}
    if w.ledger:
        spec = {"serviceName": w.name, **spec}
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "ledger"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": storage}},
                },
            }
        ]
    workload = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet" if w.ledger else "Deployment",
        "metadata": m.meta(w.name, w.kind, w.org),
        "spec": spec,
    }
    return secrets, service, workload


def _k8s_bootstrap(
    m: _Manifests, c: Consortium, net: Network
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The bootstrap Job, its Secrets (the crypto it needs, the packages) and its PVC."""
    d = _main_deployment(net)
    crypto_files = {
        rel.as_posix(): (net.crypto_dir / rel).read_bytes() for rel in _bootstrap_crypto_files(c)
    }
    crypto_secret, crypto_source = m.secret("bootstrap-crypto", "bootstrap", crypto_files, "crypto")
    packages = {
        f"{org.name}/{net.package_path(org, d).name}": net.package_path(org, d).read_bytes()
        for org in c.application_orgs
    }
    packages_secret, packages_source = m.secret(
        "chaincode-packages", "bootstrap", packages, "chaincode"
    )
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": m.meta("bootstrap", "bootstrap"),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
    }
    container = {
        "name": "bootstrap",
        "image": TOOLS_IMAGE,
        "command": ["bash", f"{BOOTSTRAP_DIR}/bootstrap.sh"],
        "volumeMounts": [
            {"name": "crypto", "mountPath": CRYPTO_DIR, "readOnly": True},
            {"name": "channel", "mountPath": CHANNEL_DIR, "readOnly": True},
            {"name": "packages", "mountPath": PACKAGES_DIR, "readOnly": True},
            {"name": "script", "mountPath": BOOTSTRAP_DIR, "readOnly": True},
            {"name": "work", "mountPath": WORK_DIR},
        ],
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": m.meta("bootstrap", "bootstrap"),
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": m.labels("bootstrap", "bootstrap")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "enableServiceLinks": False,
                    "containers": [container],
                    "volumes": [
                        {"name": "crypto", "secret": crypto_source},
                        {"name": "channel", "configMap": {"name": "channel"}},
                        {"name": "packages", "secret": packages_source},
                        {"name": "script", "configMap": {"name": "bootstrap"}},
                        {"name": "work", "persistentVolumeClaim": {"claimName": "bootstrap"}},
                    ],
                },
            },
        },
    }
    return [crypto_secret, packages_secret], claim, job


def kubernetes(
    c: Consortium,
    crypto_dir: Path,
    *,
    chaincode_image: str | None = None,
    namespace: str | None = None,
    storage: str = "2Gi",
) -> list[dict[str, Any]]:
    """The Kubernetes manifests of the consortium, in the order to apply them.

    A Namespace (default: the network's name); per node a Service, Secrets holding its
    MSP and TLS files, and a StatefulSet with a ledger PVC of ``storage`` (orderers,
    peers) or a Deployment (chaincode servers, image ``chaincode_image``, to be pushed
    where the cluster can pull it); ConfigMaps with the genesis inputs, collections, TLS
    root bundle and bootstrap script; and the one-shot bootstrap Job with a small PVC
    keeping the genesis block. The folder must be prepared (:func:`prepare`).
    """
    net = _network(c, crypto_dir)
    m = _Manifests(network=c.name, namespace=namespace or c.name)
    view = container_view(c, Target.KUBERNETES)
    d = _main_deployment(net)
    configtx = yaml.safe_dump(channel_cfg.configtx(view, Path(CRYPTO_DIR)), sort_keys=False)
    config = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": m.namespace, "labels": {"app.kubernetes.io/part-of": c.name}},
        },
        m.config_map("tls-roots", {"tls-roots.pem": tls_roots(c, crypto_dir)}),
        m.config_map(
            "channel",
            {
                "configtx.yaml": configtx,
                f"collections-{d.name}.json": channel_cfg.collections_json(c),
            },
        ),
        m.config_map(
            "bootstrap", {"bootstrap.sh": bootstrap_script(c, crypto_dir, Target.KUBERNETES)}
        ),
    ]
    secrets: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    workloads: list[dict[str, Any]] = []
    image = chaincode_image or default_chaincode_image(c)
    for w in _workloads(c, net, Target.KUBERNETES, image):
        node_secrets, service, workload = _k8s_node(m, w, net.state_dir, storage)
        secrets += node_secrets
        services.append(service)
        workloads.append(workload)
    job_secrets, claim, job = _k8s_bootstrap(m, c, net)
    return [*config, *secrets, *job_secrets, *services, *workloads, claim, job]


def write_kubernetes(
    c: Consortium,
    folder: Path,
    *,
    chaincode_image: str | None = None,
    namespace: str | None = None,
    storage: str = "2Gi",
) -> Path:
    """Prepare ``folder`` and write ``kubernetes.yaml`` (every manifest, in apply order)."""
    net = prepare(c, folder)
    docs = kubernetes(
        c,
        net.crypto_dir,
        chaincode_image=chaincode_image,
        namespace=namespace,
        storage=storage,
    )
    path = net.state_dir / "kubernetes.yaml"
    body = yaml.safe_dump_all(docs, sort_keys=False, width=120, explicit_start=True)
    _write_text(path, _header(c, "kubernetes") + body, 0o600)  # it holds private keys
    return path
