"""Where a network's state lives: every path of a state folder, and nothing else.

State folder layout (``state_dir``)::

    crypto/<org>/...                 MSPs and TLS material (consortium.crypto)
    channel/configtx.yaml, genesis.block, tls-roots.pem
    nodes/<node>/config/             core.yaml or orderer.yaml for that node
    nodes/<node>/data/               its ledger
    nodes/<node>/node.log, node.pid
    chaincode/<org>/                 that organization's ccaas package
    chaincodes.json                  chaincodes deployed after ``up`` (``Network.deploy``)
    secrets/<org>.key                32 random bytes: the organization's chaincode secret
    secrets/<org>.client.key         32 random bytes: the bank SDK's client secret
    profiles/<org>.json              the connection profile the bank SDK loads
    network.json                     what this state folder was made from
    initialized                      written once ``init_network`` has run

This module names paths and reads only ``network.json`` (:meth:`StateLayout.source_of`).
It must not create, write or delete anything, nor know how a file's content is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from consortium import crypto
from consortium.config import Org

__all__ = ["StateLayout"]


@dataclass(frozen=True)
class StateLayout:
    """The paths of one state folder (``state_dir`` is absolute)."""

    state_dir: Path

    @staticmethod
    def source_of(state_dir: Path) -> Path | None:
        """The consortium file a state folder was made from (None if it was not)."""
        try:
            source = json.loads((state_dir / "network.json").read_text()).get("source")
        except (OSError, ValueError):
            return None
        return Path(source) if isinstance(source, str) and Path(source).exists() else None

    @property
    def fingerprint_file(self) -> Path:
        return self.state_dir / "network.json"

    @property
    def crypto_dir(self) -> Path:
        return self.state_dir / "crypto"

    @property
    def channel_dir(self) -> Path:
        return self.state_dir / "channel"

    @property
    def genesis_block(self) -> Path:
        return self.channel_dir / "genesis.block"

    @property
    def tls_roots_bundle(self) -> Path:
        """Every consortium TLS CA in one file: the peers' TLS root bundle."""
        return self.channel_dir / "tls-roots.pem"

    @property
    def nodes_dir(self) -> Path:
        return self.state_dir / "nodes"

    def node_dir(self, name: str) -> Path:
        return self.nodes_dir / name

    @property
    def chaincodes_file(self) -> Path:
        """The chaincodes deployed after ``up`` (JSON list of deployments)."""
        return self.state_dir / "chaincodes.json"

    def package_dir(self, org: Org) -> Path:
        return self.state_dir / "chaincode" / org.name

    @property
    def initialized_marker(self) -> Path:
        return self.state_dir / "initialized"

    def profile_path(self, org: Org) -> Path:
        return self.state_dir / "profiles" / f"{org.name}.json"

    def secret_file(self, org: Org) -> Path:
        return self.state_dir / "secrets" / f"{org.name}.key"

    def client_secret_file(self, org: Org) -> Path:
        return self.state_dir / "secrets" / f"{org.name}.client.key"

    def tlsca(self, org_name: str) -> Path:
        """The TLS CA certificate of an organization."""
        return self.crypto_dir / org_name / "tlsca" / "tlsca-cert.pem"

    def admin_msp_dir(self, org_name: str) -> Path:
        return self.crypto_dir / org_name / "users" / "Admin" / "msp"

    def chaincode_server_dir(self, org_name: str, peer_name: str) -> Path:
        """The TLS pair of the chaincode server that peer ``peer_name`` dials."""
        return self.crypto_dir / org_name / "servers" / f"chaincode.{peer_name}"

    def org_crypto(self, org: Org) -> crypto.OrgCrypto:
        return crypto.load_org(self.crypto_dir, org.name)
