"""A chaincode definition as the ``_lifecycle`` system chaincode receives it.

What it owns: :class:`ChaincodeDefinition` (name, version, sequence, signature policy text,
collections as the JSON entries :func:`consortium.channel.collection_entry` writes, init
required) and the serialized arguments of ``ApproveChaincodeDefinitionForMyOrg``
(:func:`approve_args`, with the approving organization's package id or ``unavailable``) and
``CommitChaincodeDefinition`` (:func:`commit_args`), built exactly as ``peer lifecycle
chaincode approveformyorg|commit --signature-policy ... --collections-config ...`` builds them:
endorsement plugin ``escc``, validation plugin ``vscc``, validation parameter a marshaled
``peer.ApplicationPolicy{signature_policy}``, collections a ``peer.CollectionConfigPackage``
(``requiredPeerCount`` 0 and ``maxPeerCount`` 1 when an entry leaves them out, as the CLI
does). The collections JSON becomes the proto here and nowhere else.

Must not: talk to a node, sign anything, or decide who approves (that is
:mod:`consortium.lifecycle_client` and :mod:`consortium.namespaces`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from consortium.errors import PolicyError
from consortium.policies import signature_policy_envelope

__all__ = [
    "APPROVE",
    "COMMIT",
    "ChaincodeDefinition",
    "approve_args",
    "collection_package",
    "commit_args",
    "validation_parameter",
]

# hyperledger-fabric-protos has no stubs: typed as Any, used through this module only.
_lifecycle: Any = importlib.import_module("fabric_protos.peer.lifecycle.lifecycle_pb2")
_collections_pb: Any = importlib.import_module("fabric_protos.peer.collection_pb2")
_policy: Any = importlib.import_module("fabric_protos.peer.policy_pb2")

APPROVE = "ApproveChaincodeDefinitionForMyOrg"
"""The ``_lifecycle`` function an organization's admin approves a definition with."""
COMMIT = "CommitChaincodeDefinition"
"""The ``_lifecycle`` function that commits a definition its approvers agreed on."""

ENDORSEMENT_PLUGIN = "escc"
VALIDATION_PLUGIN = "vscc"

_ENTRY_KEYS = {
    "name", "policy", "requiredPeerCount", "maxPeerCount", "blockToLive", "memberOnlyRead",
    "memberOnlyWrite", "endorsementPolicy",
}  # fmt: skip


@dataclass(frozen=True)
class ChaincodeDefinition:
    """What a channel's organizations agree on for one chaincode name."""

    name: str
    version: str
    sequence: int
    policy: str
    """The chaincode-level signature policy, in Fabric's policy language."""
    collections: tuple[Mapping[str, Any], ...] = ()
    """The collections config entries (``peer lifecycle ... --collections-config`` JSON)."""
    init_required: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a chaincode definition needs a name")
        if not self.version:
            raise ValueError(f"chaincode definition {self.name!r}: empty version")
        if isinstance(self.sequence, bool) or not isinstance(self.sequence, int) \
                or self.sequence < 1:
            raise ValueError(f"chaincode definition {self.name!r}: sequence must be an integer "
                             f"of at least 1, not {self.sequence!r}")


def validation_parameter(policy: str) -> bytes:
    """The definition's validation parameter: ``peer.ApplicationPolicy{signature_policy}``."""
    envelope = signature_policy_envelope(policy)
    return bytes(_policy.ApplicationPolicy(signature_policy=envelope).SerializeToString())


def _count(entry: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(f"{where}: {key} must be a non-negative integer, not {value!r}")
    return value


def _flag(entry: Mapping[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise PolicyError(f"{where}: {key} must be true or false, not {value!r}")
    return value


def _collection(entry: Mapping[str, Any], index: int) -> Any:
    where = f"collection #{index + 1}"
    if not isinstance(entry, Mapping):
        raise PolicyError(f"{where}: an object expected, not {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{where}: no name")
    where = f"collection {name!r}"
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(_ENTRY_KEYS))})")
    member_policy = entry.get("policy")
    if not isinstance(member_policy, str):
        raise PolicyError(f"{where}: policy (who may hold it) must be a signature policy")
    endorsement = None
    if entry.get("endorsementPolicy") is not None:
        ep = entry["endorsementPolicy"]
        if not isinstance(ep, Mapping) or set(ep) - {"signaturePolicy", "channelConfigPolicy"}:
            raise PolicyError(f"{where}: endorsementPolicy must hold signaturePolicy or "
                              f"channelConfigPolicy, not {ep!r}")
        signature, reference = ep.get("signaturePolicy"), ep.get("channelConfigPolicy")
        if signature and reference:
            raise PolicyError(f"{where}: endorsementPolicy has both a signaturePolicy and a "
                              f"channelConfigPolicy")
        if signature:
            endorsement = _policy.ApplicationPolicy(
                signature_policy=signature_policy_envelope(signature))
        elif reference:
            endorsement = _policy.ApplicationPolicy(channel_config_policy_reference=reference)
    static = _collections_pb.StaticCollectionConfig(
        name=name,
        member_orgs_policy=_collections_pb.CollectionPolicyConfig(
            signature_policy=signature_policy_envelope(member_policy)),
        required_peer_count=_count(entry, "requiredPeerCount", 0, where),
        maximum_peer_count=_count(entry, "maxPeerCount", 1, where),
        block_to_live=_count(entry, "blockToLive", 0, where),
        member_only_read=_flag(entry, "memberOnlyRead", where),
        member_only_write=_flag(entry, "memberOnlyWrite", where),
        endorsement_policy=endorsement,
    )
    return _collections_pb.CollectionConfig(static_collection_config=static)


def collection_package(entries: Sequence[Mapping[str, Any]]) -> Any:
    """The ``peer.CollectionConfigPackage`` of collections config entries (in their order);
    :class:`PolicyError` naming the collection and the field if one is wrong."""
    configs = [_collection(entry, i) for i, entry in enumerate(entries)]
    names = [c.static_collection_config.name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PolicyError(f"collection(s) named twice: {', '.join(duplicates)}")
    return _collections_pb.CollectionConfigPackage(config=configs)


def _collections(d: ChaincodeDefinition) -> Any:
    return collection_package(d.collections) if d.collections else None


def approve_args(d: ChaincodeDefinition, package_id: str | None) -> bytes:
    """The serialized ``lifecycle.ApproveChaincodeDefinitionForMyOrgArgs`` of ``d`` for an
    organization that runs ``package_id`` for it (``None``: approves without a package,
    source ``unavailable``)."""
    if package_id is None:
        source = _lifecycle.ChaincodeSource(unavailable=_lifecycle.ChaincodeSource.Unavailable())
    elif not package_id or ":" not in package_id:
        raise ValueError(f"chaincode definition {d.name!r}: package id {package_id!r} is not "
                         f"'<label>:<hash>'")
    else:
        source = _lifecycle.ChaincodeSource(
            local_package=_lifecycle.ChaincodeSource.Local(package_id=package_id))
    args = _lifecycle.ApproveChaincodeDefinitionForMyOrgArgs(
        sequence=d.sequence,
        name=d.name,
        version=d.version,
        endorsement_plugin=ENDORSEMENT_PLUGIN,
        validation_plugin=VALIDATION_PLUGIN,
        validation_parameter=validation_parameter(d.policy),
        collections=_collections(d),
        init_required=d.init_required,
        source=source,
    )
    return bytes(args.SerializeToString())


def commit_args(d: ChaincodeDefinition) -> bytes:
    """The serialized ``lifecycle.CommitChaincodeDefinitionArgs`` of ``d``."""
    args = _lifecycle.CommitChaincodeDefinitionArgs(
        sequence=d.sequence,
        name=d.name,
        version=d.version,
        endorsement_plugin=ENDORSEMENT_PLUGIN,
        validation_plugin=VALIDATION_PLUGIN,
        validation_parameter=validation_parameter(d.policy),
        collections=_collections(d),
        init_required=d.init_required,
    )
    return bytes(args.SerializeToString())
