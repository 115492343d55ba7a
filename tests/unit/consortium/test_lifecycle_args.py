"""The ``_lifecycle`` arguments of a chaincode definition decode back to exactly that
definition: name, version, sequence, plugins, the chaincode-level policy, every collection
(members, counts, flags, endorsement policy) and the package source; bad entries are refused
naming the collection and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from consortium import channel, config, namespaces
from consortium.errors import PolicyError
from consortium.lifecycle_args import (
    ChaincodeDefinition,
    approve_args,
    collection_package,
    commit_args,
    validation_parameter,
)
from consortium.policies import signature_policy_envelope
from fabric_protos.peer import collection_pb2, policy_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"
PACKAGE = "dtoken-hkbank_1.0:" + "ab" * 32


def layout_definitions() -> list[namespaces.Definition]:
    return namespaces.definitions(config.load(DEFAULT))


def definition_of(d: namespaces.Definition) -> ChaincodeDefinition:
    return ChaincodeDefinition(d.name, "1.0", 1, d.policy, d.collections)


def check_collections(package: Any, entries: tuple[dict[str, Any], ...]) -> None:
    assert [c.static_collection_config.name for c in package.config] == [
        e["name"] for e in entries]
    for proto, entry in zip(package.config, entries, strict=True):
        static = proto.static_collection_config
        assert static.member_orgs_policy.signature_policy == signature_policy_envelope(
            entry["policy"])
        assert static.required_peer_count == entry["requiredPeerCount"]
        assert static.maximum_peer_count == entry["maxPeerCount"]
        assert static.block_to_live == entry["blockToLive"]
        assert static.member_only_read is entry["memberOnlyRead"]
        assert static.member_only_write is entry["memberOnlyWrite"]
        assert static.endorsement_policy.signature_policy == signature_policy_envelope(
            entry["endorsementPolicy"]["signaturePolicy"])


@pytest.mark.parametrize("d", layout_definitions(), ids=lambda d: d.name)
def test_approve_args_decode_back_to_the_layout_definition(d: namespaces.Definition) -> None:
    args = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs.FromString(
        approve_args(definition_of(d), PACKAGE))
    assert (args.name, args.version, args.sequence) == (d.name, "1.0", 1)
    assert (args.endorsement_plugin, args.validation_plugin) == ("escc", "vscc")
    assert args.init_required is False
    policy = policy_pb2.ApplicationPolicy.FromString(args.validation_parameter)
    assert policy.WhichOneof("Type") == "signature_policy"
    assert policy.signature_policy == signature_policy_envelope(d.policy)
    assert args.source.WhichOneof("Type") == "local_package"
    assert args.source.local_package.package_id == PACKAGE
    if d.collections:
        check_collections(args.collections, d.collections)
    else:
        assert not args.HasField("collections")


def test_an_approval_without_a_package_says_unavailable() -> None:
    d = layout_definitions()[1]
    args = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs.FromString(
        approve_args(definition_of(d), None))
    assert args.source.WhichOneof("Type") == "unavailable"


@pytest.mark.parametrize("d", layout_definitions(), ids=lambda d: d.name)
def test_commit_args_carry_the_same_definition(d: namespaces.Definition) -> None:
    definition = definition_of(d)
    commit = lifecycle_pb2.CommitChaincodeDefinitionArgs.FromString(commit_args(definition))
    approve = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs.FromString(
        approve_args(definition, PACKAGE))
    for field in ("name", "version", "sequence", "endorsement_plugin", "validation_plugin",
                  "validation_parameter", "collections", "init_required"):
        assert getattr(commit, field) == getattr(approve, field), field


def test_the_single_namespace_collections_of_the_default_consortium() -> None:
    c = config.load(DEFAULT)
    entries = tuple(json.loads(channel.collections_json(c)))
    check_collections(collection_package(entries), entries)
    assert len(entries) == 3 + 6 + 3  # acct, pairs, holds


def test_defaults_of_an_entry_are_the_peer_clis() -> None:
    package = collection_package([{"name": "c1", "policy": "OR('A.member')"}])
    static = package.config[0].static_collection_config
    assert (static.required_peer_count, static.maximum_peer_count) == (0, 1)
    assert not static.HasField("endorsement_policy")


def test_a_channel_config_policy_reference() -> None:
    package = collection_package([{"name": "c1", "policy": "OR('A.member')",
                                   "endorsementPolicy": {"channelConfigPolicy": "Endorsement"}}])
    ep = package.config[0].static_collection_config.endorsement_policy
    assert ep.channel_config_policy_reference == "Endorsement"


def test_the_validation_parameter_is_an_application_policy() -> None:
    raw = validation_parameter("AND('A.peer', 'B.peer')")
    assert policy_pb2.ApplicationPolicy.FromString(raw).signature_policy == (
        signature_policy_envelope("AND('A.peer', 'B.peer')"))


GOOD = {"name": "c1", "policy": "OR('A.member')"}


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([{**GOOD, "maxPeers": 2}], "collection 'c1': unknown field(s) maxPeers"),
        ([{"policy": "OR('A.member')"}], "collection #1: no name"),
        ([{"name": "c1"}], "collection 'c1': policy"),
        ([{**GOOD, "requiredPeerCount": -1}], "requiredPeerCount must be a non-negative"),
        ([{**GOOD, "maxPeerCount": "2"}], "maxPeerCount must be a non-negative"),
        ([{**GOOD, "blockToLive": True}], "blockToLive must be a non-negative"),
        ([{**GOOD, "memberOnlyRead": "yes"}], "memberOnlyRead must be true or false"),
        ([{**GOOD, "endorsementPolicy": {"signaturePolicy": "OR('A.peer')",
                                         "channelConfigPolicy": "Endorsement"}}], "both"),
        ([{**GOOD, "endorsementPolicy": {"sig": "OR('A.peer')"}}], "endorsementPolicy must"),
        ([{**GOOD, "policy": "OR('A')"}], "is not a principal"),
        ([GOOD, GOOD], "named twice: c1"),
        (["c1"], "collection #1: an object expected"),
    ],
)
def test_a_bad_collection_entry_is_refused_by_name(entries: list[Any], problem: str) -> None:
    with pytest.raises(PolicyError) as refused:
        collection_package(entries)
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": ""}, "needs a name"),
        ({"version": ""}, "empty version"),
        ({"sequence": 0}, "sequence must be an integer of at least 1"),
        ({"sequence": True}, "sequence must be an integer"),
    ],
)
def test_a_bad_definition_is_refused(fields: dict[str, Any], problem: str) -> None:
    base: dict[str, Any] = {"name": "cc", "version": "1.0", "sequence": 1,
                            "policy": "OR('A.peer')"}
    with pytest.raises(ValueError, match=problem):
        ChaincodeDefinition(**{**base, **fields})


def test_a_package_id_must_look_like_one() -> None:
    d = ChaincodeDefinition("cc", "1.0", 1, "OR('A.peer')")
    with pytest.raises(ValueError, match="package id 'nolabel' is not"):
        approve_args(d, "nolabel")


def test_a_bad_chaincode_policy_is_refused_before_anything_is_sent() -> None:
    d = ChaincodeDefinition("cc", "1.0", 1, "OR('A.peer'")
    with pytest.raises(PolicyError, match="ends early"):
        commit_args(d)


def test_collection_protos_are_the_peer_protos() -> None:
    # the package is a real peer.CollectionConfigPackage (what the peer unmarshals)
    package = collection_package([GOOD])
    again = collection_pb2.CollectionConfigPackage.FromString(package.SerializeToString())
    assert again == package
