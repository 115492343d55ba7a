"""The container deployments' shared model: images, paths inside the containers, the
two targets, and the host names the nodes have on each target's network.

Host names. Compose services are named after the nodes (``peer0.hkbank.dtoken.example``,
``chaincode.peer0.hkbank.dtoken.example``). Kubernetes Service names cannot hold dots,
so there the nodes are ``peer0-hkbank``, ``orderer0-ordering`` and
``chaincode-peer0-hkbank``.

This module is pure (no file is read or written) and must not know either target's
document format (:mod:`consortium.deploy.compose`, :mod:`consortium.deploy.kubernetes`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from consortium.binaries import FABRIC_VERSION
from consortium.config import Consortium, Org, PeerNode

__all__ = [
    "BOOTSTRAP_DIR",
    "CCAAS_BUILDER",
    "CC_SECRET_DIR",
    "CC_TLS_DIR",
    "CHAINCODE_BASE_IMAGE",
    "CHANNEL_DIR",
    "CRYPTO_DIR",
    "LEDGER_DIR",
    "MSP_DIR",
    "ORDERER_IMAGE",
    "PACKAGES_DIR",
    "PEER_IMAGE",
    "ROOT",
    "ROOTS_DIR",
    "TLS_DIR",
    "TOOLS_IMAGE",
    "WORK_DIR",
    "FabricImages",
    "Target",
    "chaincode_host",
    "container_view",
    "default_chaincode_image",
    "header",
    "node_host",
]

ORDERER_IMAGE: Final = f"hyperledger/fabric-orderer:{FABRIC_VERSION}"
PEER_IMAGE: Final = f"hyperledger/fabric-peer:{FABRIC_VERSION}"
TOOLS_IMAGE: Final = f"hyperledger/fabric-tools:{FABRIC_VERSION}"
CHAINCODE_BASE_IMAGE: Final = "python:3.11-slim"


@dataclass(frozen=True)
class FabricImages:
    """The Fabric images the documents name: Fabric's official ones at the pinned version by
    default; any images with the same contract serve (the binaries on ``PATH``, the sample
    configuration in ``FABRIC_CFG_PATH``, the peer's ccaas builder at :data:`CCAAS_BUILDER`,
    ``bash``, and the node's program as the orderer's and the peer's default command), such as
    the project's own (:func:`consortium.images.ensure_fabric_images`)."""

    orderer: str = ORDERER_IMAGE
    peer: str = PEER_IMAGE
    tools: str = TOOLS_IMAGE


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


class Target(StrEnum):
    """Where the generated network runs."""

    COMPOSE = "compose"
    KUBERNETES = "kubernetes"


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


def header(c: Consortium, what: str) -> str:
    return (
        f"# Generated by `dtoken network generate {what}` from {c.source.name} "
        f"(network {c.name}, Fabric {FABRIC_VERSION}); do not edit: generate again.\n"
        "# See docs/deployment.md.\n"
    )
