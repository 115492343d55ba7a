"""Who the network's members are: the crypto material of every organization, node and
bootstrap client identity, the organizations' chaincode secrets, and client identities
issued later.

The material itself is made by :mod:`consortium.crypto`; this module decides what a
consortium needs (which nodes, which users with which attributes, which TLS names).
Idempotent: existing keys and secrets are kept.

This module must not write connection profiles (:mod:`consortium.profiles`) nor start
anything.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from consortium import crypto
from consortium.chaincodes import MAX_CHAINCODES
from consortium.config import Consortium, Org, OrgKind
from consortium.layout import StateLayout
from consortium.nodes import chaincode_alias

__all__ = ["BANK_USERS", "REGULATOR_USERS", "ensure_crypto", "issue_identity", "write_new_secret"]

#: Client identities every bank gets at bootstrap: name -> (role, attributes).
BANK_USERS: dict[str, dict[str, str]] = {
    "minter": {"minter": "true", "operator": "true"},
    "operator": {"operator": "true"},
}
REGULATOR_USERS: dict[str, dict[str, str]] = {"auditor": {"auditor": "true"}}


def write_new_secret(path: Path) -> None:
    """Write 32 random bytes to ``path`` (mode 0600); FileExistsError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(32))


def ensure_crypto(consortium: Consortium, layout: StateLayout) -> None:
    """Create what is missing of the network's crypto material and chaincode secrets:
    per organization its CAs, node MSPs and TLS pairs, Admin, the bank users or the
    regulator's auditor, a TLS pair per chaincode server and the ``chaincode-client``
    pair the peers present to them."""
    base = layout.crypto_dir
    oo = consortium.orderer_org
    orderers = {o.name: [o.host, "localhost", o.name] for o in consortium.ordering.orderers}
    crypto.generate_org(base, org_name=oo.name, domain=oo.domain, nodes=orderers, node_ou="orderer")
    for org in consortium.application_orgs:
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
            # Its host names on a container network too, one per chaincode port slot.
            aliases = [chaincode_alias(p, slot) for slot in range(MAX_CHAINCODES)]
            oc.issue_tls_server(f"chaincode.{p.name}", [p.host, "localhost", *aliases])
        oc.issue_tls_server("chaincode-client", ["chaincode-client"])
        secret = layout.secret_file(org)
        if not secret.exists():
            secret.parent.mkdir(parents=True, exist_ok=True)
            write_new_secret(secret)


def issue_identity(
    layout: StateLayout, org: Org, name: str, attributes: dict[str, str], *, admin: bool = False
) -> crypto.IdentityFiles:
    """Issue a new client identity of ``org`` with Fabric CA attributes (roles such as
    ``minter``, ``operator``, ``auditor``)."""
    return layout.org_crypto(org).issue_user(
        name, role="admin" if admin else "client", attributes=attributes
    )
