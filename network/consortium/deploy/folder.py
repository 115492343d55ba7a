"""The deployment folder: what both container targets need, made once and kept.

A deployment folder is laid out like a native state folder (:mod:`consortium.layout`),
so the native code paths apply to it unchanged (the crypto generator, chaincode
packages, chaincode definition and connection profiles)::

    crypto/<org>/...            CAs, MSPs, TLS (consortium.crypto)
    secrets/<org>.key           the organization's chaincode secret (0600)
    chaincode/<org>/*.tar.gz    the organization's ccaas package (address {{.cc0}})
    profiles/<org>.json         bank SDK connection profiles (127.0.0.1 and the port plan)
    image/Dockerfile            the chaincode server image: python:3.11-slim + this repository

The crypto generated here puts the native SANs and both targets' names into the TLS
certificates, so one folder's crypto serves both targets without re-signing anything.

This module writes the folder and must not render either target's documents.
Errors: :class:`NetworkError` for a folder that was not prepared,
:class:`consortium.errors.CryptoError` from the crypto generator.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

from consortium import crypto
from consortium.chaincodes import Deployment
from consortium.config import Consortium, NamespaceLayout, OrgKind, PeerNode
from consortium.deploy.model import CHAINCODE_BASE_IMAGE, Target, chaincode_host, node_host
from consortium.errors import ConfigError, NetworkError
from consortium.identities import BANK_USERS, REGULATOR_USERS
from consortium.network import Network

__all__ = [
    "DOCKERIGNORE",
    "dockerfile",
    "ensure_crypto",
    "ensure_random_file",
    "main_deployment",
    "native_view",
    "package_ids",
    "prepare",
    "tls_roots",
    "write_text",
]


def _node_sans(c: Consortium, host: str, name: str) -> list[str]:
    # The native SANs (consortium.identities.ensure_crypto) first, then the Kubernetes name; the
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


def ensure_random_file(path: Path, size: int = 32) -> None:
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

    The same identities as the native network (``consortium.identities.ensure_crypto``): per
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
        ensure_random_file(folder / "secrets" / f"{org.name}.key")


def _quiet(_message: str) -> None:
    return None


def native_view(c: Consortium, crypto_dir: Path) -> Network:
    """The native view of a deployment folder (``crypto_dir`` is ``<folder>/crypto``)."""
    if crypto_dir.name != "crypto":
        raise NetworkError(
            f"{crypto_dir}: expected the 'crypto' folder of a deployment folder (<folder>/crypto)"
        )
    return Network(c, crypto_dir.parent, progress=_quiet)


def main_deployment(net: Network) -> Deployment:
    return net.deployments()[0]


def package_ids(net: Network) -> dict[str, str]:
    """Each application organization's package id; the packages must exist."""
    d = main_deployment(net)
    ids = {}
    for org in net.consortium.application_orgs:
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


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
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
    if c.chaincode.layout is NamespaceLayout.NAMESPACES:
        # the generated bootstrap installs, approves and commits one dtoken definition
        raise ConfigError(
            c.source, "chaincode.layout",
            "namespaces: the generated container deployments cannot bootstrap the namespace "
            "layout yet (their bootstrap commits one dtoken definition); generate from "
            "chaincode.layout: single, or run the layout with 'dtoken network up'",
        )
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    ensure_crypto(c, folder)
    net = Network(c, folder, progress=_quiet)
    d = main_deployment(net)
    for org in c.application_orgs:
        net.package_id(org, d)  # writes chaincode/<org>/<label>.tar.gz the first time
        # The bank SDK's profile: endpoints 127.0.0.1:<port plan>, TLS names the node names.
        ensure_random_file(folder / "secrets" / f"{org.name}.client.key")
        write_text(net.profile_path(org), json.dumps(net.profile(org), indent=2) + "\n")
    write_text(folder / "image" / "Dockerfile", dockerfile(c))
    write_text(folder / "image" / "Dockerfile.dockerignore", DOCKERIGNORE)
    return net
