"""Channel configuration updates computed by our own code: a new organization in the
application channel, as ``configtxlator compute_update`` would compute it, with no
configtxlator.

What it owns:

* :func:`config_from_block`: the ``common.Config`` inside a configuration block (as
  ``peer channel fetch config`` writes it);
* :func:`application_org_group`: an application organization's ``ConfigGroup`` (MSP value
  read from its verifying MSP folder, ``Readers``/``Writers``/``Admins``/``Endorsement``
  signature policies, anchor peers) built exactly as ``configtxgen`` builds it for a genesis
  block (a test compares the two byte for byte);
* :func:`with_application_org` and :func:`compute_update`: the updated configuration (the new
  organization's group; the application ``Readers``, ``Writers`` and
  ``LifecycleEndorsement`` written as signature policies naming the organizations grow to
  include it) and the ``ConfigUpdate``
  (read set and write set) between two configurations, by Fabric's algorithm
  (``common/tools/configtxlator/update``): an unchanged element is in the read set with its
  version only, a changed group gets version + 1, a new element is written whole;
* :func:`sign_update` and :func:`update_envelope`: each admin's ``ConfigSignature`` over
  the update, and the signed ``CONFIG_UPDATE`` envelope;
* :func:`broadcast`: the envelope sent to an orderer's ``AtomicBroadcast`` service.

Must not: decide who signs (the caller gathers a majority of the application organizations'
admins, the channel's ``/Channel/Application/Admins`` policy), run Fabric's tools, or
start nodes (:mod:`consortium.joining` does the join's steps in order).
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from consortium.errors import NetworkError
from consortium.policies import ROLES as _ROLES
from consortium.policies import any_member, majority_of_peers, signature_policy_envelope

__all__ = [
    "AdminSigner",
    "ChannelUpdateError",
    "application_org_group",
    "application_orgs",
    "broadcast",
    "compute_update",
    "config_from_block",
    "sign_update",
    "signature_policy",
    "update_envelope",
    "with_application_org",
]


def _load(name: str) -> Any:
    return importlib.import_module(f"fabric_protos.{name}")


# hyperledger-fabric-protos has no stubs: typed as Any here, used through this module only.
_ab: Any = _load("orderer.ab_pb2")
_ab_grpc: Any = _load("orderer.ab_pb2_grpc")
_common: Any = _load("common.common_pb2")
_configtx: Any = _load("common.configtx_pb2")
_policies: Any = _load("common.policies_pb2")
_identities: Any = _load("msp.identities_pb2")
_msp_config: Any = _load("msp.msp_config_pb2")
_peer_config: Any = _load("peer.configuration_pb2")

#: Fabric's ``HeaderType_CONFIG_UPDATE``.
_CONFIG_UPDATE = 2
_ADMINS = "Admins"
LIFECYCLE_ENDORSEMENT = "LifecycleEndorsement"
READERS = "Readers"
WRITERS = "Writers"
#: secp256r1's group order: Fabric accepts only low-S ECDSA signatures.
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class ChannelUpdateError(NetworkError):
    """A configuration block, update or broadcast that is not what it must be."""


# --------------------------------------------------------------------------- reading


def config_from_block(block_bytes: bytes) -> Any:
    """The ``common.Config`` of a configuration block (raises if it is not one)."""
    block = _common.Block()
    block.ParseFromString(block_bytes)
    if len(block.data.data) != 1:
        raise ChannelUpdateError(
            f"a configuration block holds one envelope, this one {len(block.data.data)}"
        )
    envelope = _common.Envelope()
    envelope.ParseFromString(block.data.data[0])
    payload = _common.Payload()
    payload.ParseFromString(envelope.payload)
    header = _common.ChannelHeader()
    header.ParseFromString(payload.header.channel_header)
    if header.type != _common.CONFIG:
        raise ChannelUpdateError(f"block {block.header.number} is not a configuration block")
    config_envelope = _configtx.ConfigEnvelope()
    config_envelope.ParseFromString(payload.data)
    return config_envelope.config


def application_orgs(config: Any) -> list[str]:
    """The MSP ids (group names) of the channel's application organizations."""
    return sorted(config.channel_group.groups["Application"].groups.keys())


# --------------------------------------------------------------------------- building


def signature_policy(rule: str, msp_ids: Sequence[str]) -> Any:
    """A ``SignaturePolicyEnvelope`` for ``OR(...)`` of ``msp_id.role`` principals
    (``rule`` is the role: member, admin, client, peer), as ``policydsl`` writes
    ``OR('A.role', 'B.role')`` (compiled by :mod:`consortium.policies`)."""
    if rule not in _ROLES:
        raise ChannelUpdateError(f"unknown MSP role {rule!r} (one of {', '.join(_ROLES)})")
    if not msp_ids:
        raise ChannelUpdateError(f"an OR of {rule} principals needs at least one MSP id")
    return signature_policy_envelope("OR(" + ", ".join(f"'{m}.{rule}'" for m in msp_ids) + ")")


def _config_policy(envelope: Any) -> Any:
    policy = _policies.Policy(type=_policies.Policy.SIGNATURE, value=envelope.SerializeToString())
    return _configtx.ConfigPolicy(policy=policy, mod_policy=_ADMINS)


def _read_dir(folder: Path) -> list[bytes]:
    """The files of an MSP sub-folder, by name, as Fabric's ``getPemMaterialFromDir``."""
    if not folder.is_dir():
        return []
    return [f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()]


def verifying_msp_config(msp_dir: Path, msp_id: str) -> Any:
    """The ``msp.MSPConfig`` of an organization's verifying MSP folder (CA certificates,
    TLS CA certificates, NodeOUs from ``config.yaml``), as ``configtxgen`` reads it."""
    cacerts = _read_dir(msp_dir / "cacerts")
    if not cacerts:
        raise ChannelUpdateError(f"{msp_dir / 'cacerts'}: no CA certificate")
    fabric = _msp_config.FabricMSPConfig(
        name=msp_id,
        root_certs=cacerts,
        intermediate_certs=_read_dir(msp_dir / "intermediatecerts"),
        admins=_read_dir(msp_dir / "admincerts"),
        revocation_list=_read_dir(msp_dir / "crls"),
        crypto_config=_msp_config.FabricCryptoConfig(
            signature_hash_family="SHA2", identity_identifier_hash_function="SHA256"
        ),
        tls_root_certs=_read_dir(msp_dir / "tlscacerts"),
        tls_intermediate_certs=_read_dir(msp_dir / "tlsintermediatecerts"),
    )
    config_yaml = msp_dir / "config.yaml"
    if config_yaml.is_file():
        node_ous = (yaml.safe_load(config_yaml.read_text()) or {}).get("NodeOUs") or {}
        if node_ous.get("Enable"):
            ous = fabric.fabric_node_ous
            ous.enable = True
            for field, key in (
                ("client_ou_identifier", "ClientOUIdentifier"),
                ("peer_ou_identifier", "PeerOUIdentifier"),
                ("admin_ou_identifier", "AdminOUIdentifier"),
                ("orderer_ou_identifier", "OrdererOUIdentifier"),
            ):
                spec = node_ous.get(key)
                if not spec:
                    continue
                ident = getattr(ous, field)
                ident.organizational_unit_identifier = spec["OrganizationalUnitIdentifier"]
                if spec.get("Certificate"):
                    ident.certificate = (msp_dir / spec["Certificate"]).read_bytes()
    return _msp_config.MSPConfig(type=0, config=fabric.SerializeToString())


def application_org_group(
    msp_id: str, msp_dir: Path, anchor_peers: Sequence[tuple[str, int]]
) -> Any:
    """An application organization's ``ConfigGroup``: what ``configtxgen`` writes for an
    organization of ``configtx.yaml`` with member Readers/Writers, admin Admins, peer
    Endorsement (DESIGN §4: only a peer endorses for its organization) and its anchor peers."""
    group = _configtx.ConfigGroup(mod_policy=_ADMINS)
    for name, role in (
        ("Readers", "member"), ("Writers", "member"), ("Admins", "admin"),
        ("Endorsement", "peer"),
    ):  # fmt: skip
        group.policies[name].CopyFrom(_config_policy(signature_policy(role, [msp_id])))
    group.values["MSP"].CopyFrom(_configtx.ConfigValue(
        value=verifying_msp_config(msp_dir, msp_id).SerializeToString(), mod_policy=_ADMINS))
    if anchor_peers:
        anchors = _peer_config.AnchorPeers(
            anchor_peers=[_peer_config.AnchorPeer(host=h, port=p) for h, p in anchor_peers]
        )
        group.values["AnchorPeers"].CopyFrom(
            _configtx.ConfigValue(value=anchors.SerializeToString(), mod_policy=_ADMINS)
        )
    return group


def with_application_org(config: Any, msp_id: str, group: Any) -> Any:
    """A copy of ``config`` with ``group`` as the application organization ``msp_id``."""
    if msp_id in config.channel_group.groups["Application"].groups:
        raise ChannelUpdateError(f"{msp_id} is already an organization of the channel")
    updated = _configtx.Config()
    updated.CopyFrom(config)
    application = updated.channel_group.groups["Application"]
    application.groups[msp_id].CopyFrom(group)
    # ANY Readers / ANY Writers / MAJORITY Endorsement spelled out as one signature policy
    # each (consortium.channel): they name the organizations, so they grow with them, in the
    # same update (same mod_policy); an ImplicitMeta rule extends itself and is left alone
    msp_ids = sorted(application.groups.keys())
    for name, rule in ((READERS, any_member(msp_ids)), (WRITERS, any_member(msp_ids)),
                       (LIFECYCLE_ENDORSEMENT, majority_of_peers(msp_ids))):
        policy = application.policies.get(name)
        if policy is not None and policy.policy.type == _policies.Policy.SIGNATURE:
            policy.policy.value = signature_policy_envelope(rule).SerializeToString()
    return updated


# --------------------------------------------------------------------------- the update


@dataclass
class _Delta:
    read: dict[str, Any]
    write: dict[str, Any]
    same: dict[str, Any]
    members_changed: bool


def _leaf_update(original: Mapping[str, Any], updated: Mapping[str, Any], kind: Any) -> _Delta:
    """Policies or values: an unchanged one is kept by version, a changed one is written
    with version + 1, a new one is written whole; a removal changes the members."""
    delta = _Delta({}, {}, {}, False)
    for key, old in original.items():
        if key not in updated:
            delta.members_changed = True
            continue
        new = updated[key]
        if old.mod_policy == new.mod_policy and _payload(old) == _payload(new):
            delta.same[key] = kind(version=old.version)
        else:
            changed = kind()
            changed.CopyFrom(new)
            changed.version = old.version + 1
            delta.write[key] = changed
    for key, new in updated.items():
        if key not in original:
            delta.members_changed = True
            delta.write[key] = new
    return delta


def _payload(item: Any) -> bytes:
    if isinstance(item, _configtx.ConfigPolicy):
        return bytes(item.policy.SerializeToString(deterministic=True))
    return bytes(item.value)


def _group_update(original: Any, updated: Any) -> tuple[Any, Any, bool]:
    """(read set, write set, changed) of one group, by Fabric's ``computeGroupUpdate``."""
    policies = _leaf_update(original.policies, updated.policies, _configtx.ConfigPolicy)
    values = _leaf_update(original.values, updated.values, _configtx.ConfigValue)
    groups = _Delta({}, {}, {}, False)
    for key, old in original.groups.items():
        if key not in updated.groups:
            groups.members_changed = True
            continue
        read, write, changed = _group_update(old, updated.groups[key])
        if changed:
            groups.read[key], groups.write[key] = read, write
        else:
            groups.same[key] = _configtx.ConfigGroup(version=old.version)
    for key, new in updated.groups.items():
        if key not in original.groups:
            groups.members_changed = True
            groups.write[key] = new
    parts = (policies, values, groups)
    members_changed = any(p.members_changed for p in parts)
    if not members_changed and original.mod_policy == updated.mod_policy:
        if not any(p.read or p.write for p in parts):
            same = _configtx.ConfigGroup(version=original.version)
            return same, _configtx.ConfigGroup(version=original.version), False
        return (_group(original.version, policies.read, values.read, groups.read),
                _group(original.version, policies.write, values.write, groups.write), True)
    for p in parts:
        p.read.update(p.same)
        p.write.update(p.same)
    read = _group(original.version, policies.read, values.read, groups.read)
    write = _group(original.version + 1, policies.write, values.write, groups.write)
    write.mod_policy = updated.mod_policy
    return read, write, True


def _group(version: int, policies: dict[str, Any], values: dict[str, Any],
           groups: dict[str, Any]) -> Any:
    group = _configtx.ConfigGroup(version=version)
    for key, p in policies.items():
        group.policies[key].CopyFrom(p)
    for key, v in values.items():
        group.values[key].CopyFrom(v)
    for key, g in groups.items():
        group.groups[key].CopyFrom(g)
    return group


def compute_update(channel_id: str, original: Any, updated: Any) -> Any:
    """The ``common.ConfigUpdate`` that turns ``original`` into ``updated``."""
    read, write, changed = _group_update(original.channel_group, updated.channel_group)
    if not changed:
        raise ChannelUpdateError("no differences between the original and updated config")
    return _configtx.ConfigUpdate(channel_id=channel_id, read_set=read, write_set=write)


# --------------------------------------------------------------------------- signing


@dataclass(frozen=True)
class AdminSigner:
    """An organization admin's signing identity (its certificate and private key)."""

    msp_id: str
    cert_pem: bytes
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_files(cls, msp_id: str, cert: Path, key: Path) -> AdminSigner:
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ChannelUpdateError(f"{key}: not an ECDSA private key")
        return cls(msp_id, cert.read_bytes(), private)

    def creator(self) -> bytes:
        """The serialized identity (``msp.SerializedIdentity``)."""
        return bytes(_identities.SerializedIdentity(
            mspid=self.msp_id, id_bytes=self.cert_pem).SerializeToString())

    def signature_header(self) -> bytes:
        return bytes(_common.SignatureHeader(
            creator=self.creator(), nonce=os.urandom(24)).SerializeToString())

    def sign(self, message: bytes) -> bytes:
        """A low-S ECDSA P-256 signature over SHA-256(message), DER encoded."""
        r, s = decode_dss_signature(self.key.sign(message, ec.ECDSA(hashes.SHA256())))
        if s > _P256_N // 2:
            s = _P256_N - s
        return encode_dss_signature(r, s)


def sign_update(update: Any, signer: AdminSigner) -> Any:
    """One admin's ``ConfigSignature`` over the serialized update."""
    header = signer.signature_header()
    body = update.SerializeToString()
    return _configtx.ConfigSignature(signature_header=header, signature=signer.sign(header + body))


def update_envelope(update: Any, signatures: Sequence[Any], submitter: AdminSigner) -> Any:
    """The ``CONFIG_UPDATE`` envelope carrying ``update`` and its signatures, signed by
    ``submitter`` (who must be one of the channel's members)."""
    timestamp = _timestamp()
    channel_header = _common.ChannelHeader(
        type=_CONFIG_UPDATE, version=0, channel_id=update.channel_id, epoch=0
    )
    channel_header.timestamp.CopyFrom(timestamp)
    payload = _common.Payload(
        header=_common.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=submitter.signature_header(),
        ),
        data=_configtx.ConfigUpdateEnvelope(
            config_update=update.SerializeToString(), signatures=list(signatures)
        ).SerializeToString(),
    )
    body = payload.SerializeToString()
    return _common.Envelope(payload=body, signature=submitter.sign(body))


def _timestamp() -> Any:
    ts = importlib.import_module("google.protobuf.timestamp_pb2").Timestamp()
    ts.FromDatetime(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return ts


def broadcast(endpoint: str, tls_ca: Path, envelope: Any, *, timeout: float = 30.0) -> None:
    """Send ``envelope`` to the orderer's ``AtomicBroadcast``; raise unless it says SUCCESS."""
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
    with grpc.secure_channel(endpoint, credentials) as channel:
        stub = _ab_grpc.AtomicBroadcastStub(channel)
        try:
            replies = list(stub.Broadcast(iter([envelope]), timeout=timeout))
        except grpc.RpcError as exc:
            raise ChannelUpdateError(f"broadcast to {endpoint} failed: {exc.code()}: "
                                     f"{exc.details()}") from exc
    if not replies:
        raise ChannelUpdateError(f"the orderer {endpoint} answered nothing")
    reply = replies[0]
    if reply.status != _common.SUCCESS:
        raise ChannelUpdateError(
            f"the orderer {endpoint} refused the configuration update: "
            f"{_common.Status.Name(reply.status)}: {reply.info}"
        )
