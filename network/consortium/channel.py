"""The application channel: configtx.yaml rendered from the consortium, and policies.

The genesis block is made by Fabric's ``configtxgen`` from a ``configtx.yaml``
that this module writes; there is no system channel (orderers join through the
channel participation API). Every application organization's ``Endorsement``
policy names ``.peer`` so that only a peer can endorse on its behalf (DESIGN §4).
Capabilities: channel V3_0, orderer V2_0, application V2_5.

It also renders the chaincode's endorsement design (``collections_config`` and
``chaincode_policy``): the policies that protect one bank from another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from consortium.config import Consortium, Org
from consortium.policies import any_member, majority_of_peers

__all__ = [
    "chaincode_policy",
    "collection_entry",
    "collection_names",
    "collections_config",
    "configtx",
    "write_configtx",
]

PROFILE = "ConsortiumChannel"


def _signature(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _org_section(org: Org, msp_dir: Path) -> dict[str, Any]:
    section: dict[str, Any] = {
        "Name": org.msp_id,
        "ID": org.msp_id,
        "MSPDir": str(msp_dir),
        "Policies": {
            "Readers": _signature(f"OR('{org.msp_id}.member')"),
            "Writers": _signature(f"OR('{org.msp_id}.member')"),
            "Admins": _signature(f"OR('{org.msp_id}.admin')"),
        },
    }
    if org.peers:
        section["Policies"]["Endorsement"] = _signature(f"OR('{org.msp_id}.peer')")
        # Anchor peers go straight into the genesis block: gossip (and so private
        # data dissemination between organizations) needs them.
        section["AnchorPeers"] = [{"Host": p.host, "Port": p.port} for p in org.peers]
    return section


def configtx(c: Consortium, crypto_dir: Path) -> dict[str, Any]:
    """The configtx.yaml document for the consortium's application channel."""
    orderer_org = _org_section(c.orderer_org, crypto_dir / c.orderer_org.name / "msp")
    orderer_org["Policies"]["Readers"] = _signature(f"OR('{c.orderer_org.msp_id}.member')")
    orderer_org["OrdererEndpoints"] = [o.endpoint for o in c.ordering.orderers]
    app_orgs = [_org_section(org, crypto_dir / org.name / "msp") for org in c.application_orgs]
    app_msps = sorted(org.msp_id for org in c.application_orgs)
    ordering = c.ordering
    consenters = []
    for o in ordering.orderers:
        tls = crypto_dir / c.orderer_org.name / "nodes" / o.name / "tls"
        consenters.append(
            {
                "Host": o.host,
                "Port": o.port,
                "ClientTLSCert": str(tls / "server.crt"),
                "ServerTLSCert": str(tls / "server.crt"),
            }
        )
    implicit = {
        "Readers": {"Type": "ImplicitMeta", "Rule": "ANY Readers"},
        "Writers": {"Type": "ImplicitMeta", "Rule": "ANY Writers"},
        "Admins": {"Type": "ImplicitMeta", "Rule": "MAJORITY Admins"},
    }
    return {
        "Profiles": {
            PROFILE: {
                "Policies": implicit,
                "Capabilities": {"V3_0": True},
                "Orderer": {
                    "OrdererType": "etcdraft",
                    "BatchTimeout": f"{ordering.batch_timeout_ms}ms",
                    "BatchSize": {
                        "MaxMessageCount": ordering.max_message_count,
                        "AbsoluteMaxBytes": ordering.absolute_max_bytes,
                        "PreferredMaxBytes": ordering.preferred_max_bytes,
                    },
                    "EtcdRaft": {
                        "Consenters": consenters,
                        "Options": {
                            "TickInterval": f"{ordering.tick_interval_ms}ms",
                            "ElectionTick": 10,
                            "HeartbeatTick": 1,
                            "MaxInflightBlocks": 5,
                            "SnapshotIntervalSize": 16 * 2**20,
                        },
                    },
                    "Organizations": [orderer_org],
                    "Policies": {
                        **implicit,
                        "BlockValidation": {"Type": "ImplicitMeta", "Rule": "ANY Writers"},
                    },
                    "Capabilities": {"V2_0": True},
                },
                "Application": {
                    "Organizations": app_orgs,
                    "Policies": {
                        **implicit,
                        # ANY Readers / ANY Writers / MAJORITY Endorsement, each as one
                        # signature policy (a signature checked once, not once per
                        # organization: policies.any_member, majority_of_peers); a bank
                        # that joins rewrites them (channel_update.with_application_org)
                        "Readers": _signature(any_member(app_msps)),
                        "Writers": _signature(any_member(app_msps)),
                        "LifecycleEndorsement": _signature(majority_of_peers(app_msps)),
                        "Endorsement": {"Type": "ImplicitMeta", "Rule": "MAJORITY Endorsement"},
                    },
                    "Capabilities": {"V2_5": True},
                },
            }
        }
    }


def write_configtx(c: Consortium, crypto_dir: Path, out_dir: Path) -> Path:
    """Write ``configtx.yaml`` into ``out_dir`` (configtxgen's -configPath)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "configtx.yaml"
    path.write_text(yaml.safe_dump(configtx(c, crypto_dir), sort_keys=False))
    return path


# --- the chaincode's endorsement design (DESIGN §4) -------------------------


def collection_names(c: Consortium) -> list[str]:
    """Every private data collection, in a stable order."""
    return [entry["name"] for entry in collections_config(c)]


def _or_peer(*orgs: Org) -> str:
    return "OR(" + ", ".join(f"'{o.msp_id}.peer'" for o in orgs) + ")"


def _member_policy(*orgs: Org) -> str:
    return "OR(" + ", ".join(f"'{o.msp_id}.member'" for o in orgs) + ")"


def collection_entry(name: str, members: list[Org], endorser: Org) -> dict[str, Any]:
    """One collection's entry in a collections config: readable by ``members`` only, written
    only with the endorsement of ``endorser``'s peers."""
    other_peers = sum(len(o.peers) for o in members) - 1
    return {
        "name": name,
        "policy": _member_policy(*members),
        # A regulator outage must stop nothing: endorsement never waits for
        # dissemination. But push to every other member peer at endorsement,
        # so the counterparty's peer holds the data when it must act on it.
        "requiredPeerCount": 0,
        "maxPeerCount": max(other_peers, 0),
        "blockToLive": 0,
        "memberOnlyRead": True,
        "memberOnlyWrite": True,
        "endorsementPolicy": {"signaturePolicy": _or_peer(endorser)},
    }


def collections_config(c: Consortium) -> list[dict[str, Any]]:
    """The collections JSON given to ``approveformyorg``/``commit``.

    * ``acct-<bank>``: the bank (and the regulator); only the bank's peers endorse.
    * ``pair-<a>-<b>``: what bank *a* asserts toward bank *b*; members *a*, *b*
      (and the regulator); only *a*'s peers endorse.
    * ``holds-<bank>``: the regulator's holds on the bank's accounts; members the
      bank and the regulator; only the regulator's peers endorse.
    """
    reg = [c.regulator] if c.regulator else []
    out = []
    for bank in c.banks:
        out.append(collection_entry(f"acct-{bank.name}", [bank, *reg], bank))
    for a in c.banks:
        for b in c.banks:
            if a is not b:
                out.append(collection_entry(f"pair-{a.name}-{b.name}", [a, b, *reg], a))
    if c.regulator is not None:
        for bank in c.banks:
            out.append(collection_entry(f"holds-{bank.name}", [bank, c.regulator], c.regulator))
    return out


def collections_json(c: Consortium) -> str:
    return json.dumps(collections_config(c), indent=2)


def chaincode_policy(c: Consortium) -> str:
    """Chaincode-level policy: every bank's peer. No single bank satisfies it, so
    public state (the registry, token definitions) changes only unanimously."""
    return "AND(" + ", ".join(f"'{b.msp_id}.peer'" for b in c.banks) + ")"
