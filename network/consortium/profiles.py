"""Connection profiles: ``profiles/<org>.json``, what the bank SDK loads to reach the
network as one application organization (its gateway peer, TLS CA, client identities,
client secret, the other organizations and the currencies).

This module writes the profiles and each organization's client secret, and must not
create crypto material (:mod:`consortium.identities`) nor talk to the network.
"""

from __future__ import annotations

import json
from typing import Any

from dtoken_wire.namespaces import bank_namespace

from consortium import crypto
from consortium.config import Consortium, NamespaceLayout, Org
from consortium.identities import write_new_secret
from consortium.layout import StateLayout

__all__ = ["ConnectionProfiles"]


class ConnectionProfiles:
    """The connection profiles of one consortium's application organizations."""

    def __init__(self, consortium: Consortium, layout: StateLayout) -> None:
        self.consortium = consortium
        self.layout = layout

    def profile(self, org: Org) -> dict[str, Any]:
        """The connection profile of an application organization (what the SDK loads)."""
        c = self.consortium
        oc = self.layout.org_crypto(org)
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
            "network": c.name,
            "org": org.name,
            "display_name": org.display_name,
            "msp_id": org.msp_id,
            "kind": org.kind.value,
            "channel": c.channel,
            # under the namespace layout, the organization's own namespace: every
            # transaction it submits starts there (docs/architecture.md)
            "chaincode": (bank_namespace(c.chaincode.name, org.name)
                          if c.chaincode.layout is NamespaceLayout.NAMESPACES
                          else c.chaincode.name),
            "namespace_layout": c.chaincode.layout.value,
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
            "client_secret_file": str(self.layout.client_secret_file(org)),
            "organizations": {
                o.name: {"msp_id": o.msp_id, "kind": o.kind.value, "currencies": list(o.currencies)}
                for o in c.application_orgs
            },
            "currencies": dict(c.currencies),
        }

    def write_all(self) -> None:
        """Write every application organization's profile (and client secret, once)."""
        for org in self.consortium.application_orgs:
            client_secret = self.layout.client_secret_file(org)
            if not client_secret.exists():
                write_new_secret(client_secret)
            path = self.layout.profile_path(org)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.profile(org), indent=2) + "\n")
