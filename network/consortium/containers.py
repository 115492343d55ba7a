"""Container deployments of the consortium (Docker Compose and Kubernetes): the names
callers import from here, re-exported from :mod:`consortium.deploy` where they live.

* :func:`compose` returns the Compose document (a dict); :func:`write_compose` writes it;
* :func:`kubernetes` returns the Kubernetes manifests; :func:`write_kubernetes` writes them;
* :func:`bootstrap_script` returns the script the one-shot ``fabric-tools`` container runs;
* :func:`prepare` makes a deployment folder.

This module must not define anything: new code goes into the ``consortium.deploy`` module
that owns its job.
"""

from __future__ import annotations

from consortium.deploy.bootstrap import bootstrap_script
from consortium.deploy.compose import compose, write_compose
from consortium.deploy.folder import (
    DOCKERIGNORE,
    dockerfile,
    ensure_crypto,
    prepare,
    tls_roots,
)
from consortium.deploy.kubernetes import kubernetes, write_kubernetes
from consortium.deploy.model import (
    BOOTSTRAP_DIR,
    CC_SECRET_DIR,
    CC_TLS_DIR,
    CCAAS_BUILDER,
    CHAINCODE_BASE_IMAGE,
    CHANNEL_DIR,
    CRYPTO_DIR,
    LEDGER_DIR,
    MSP_DIR,
    ORDERER_IMAGE,
    PACKAGES_DIR,
    PEER_IMAGE,
    ROOT,
    ROOTS_DIR,
    TLS_DIR,
    TOOLS_IMAGE,
    WORK_DIR,
    Target,
    chaincode_host,
    container_view,
    default_chaincode_image,
    node_host,
)

__all__ = [
    "BOOTSTRAP_DIR",
    "CCAAS_BUILDER",
    "CC_SECRET_DIR",
    "CC_TLS_DIR",
    "CHAINCODE_BASE_IMAGE",
    "CHANNEL_DIR",
    "CRYPTO_DIR",
    "DOCKERIGNORE",
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
