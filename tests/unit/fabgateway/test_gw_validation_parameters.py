"""Key-level validation parameters: parsed as a peer compiles them, compared byte for byte,
and every one in a block that does not parse named with its writer."""

from __future__ import annotations

import hashlib

import fabgateway
import pytest
from fabgateway.blocks import VALIDATION_PARAMETER, decode_block
from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from unit.fabgateway.block_builder import POLICY, PrivateOp, Tx, block

PEER = msp_principal_pb2.MSPRole.MSPRoleType.Value("PEER")
ROLE = msp_principal_pb2.MSPPrincipal.Classification.Value("ROLE")


def envelope(*msp_ids: str, n: int | None = None) -> policies_pb2.SignaturePolicyEnvelope:
    """n-of (all by default) PEER signatures of ``msp_ids``: what a pair record is pinned to."""
    built = policies_pb2.SignaturePolicyEnvelope(version=0)
    for index, msp_id in enumerate(msp_ids):
        role = msp_principal_pb2.MSPRole(msp_identifier=msp_id, role=PEER)
        built.identities.add(principal_classification=ROLE, principal=role.SerializeToString())
        built.rule.n_out_of.rules.add(signed_by=index)
    built.rule.n_out_of.n = len(msp_ids) if n is None else n
    return built


BOTH = envelope("BankA", "BankB")
BOTH_BYTES = BOTH.SerializeToString(deterministic=True)


def test_a_nested_policy_and_of_or_parses_and_is_not_malformed() -> None:
    """The pin of a PvP lock, ``AND('A.peer', OR('B.peer', 'R.peer'))``, built as
    ``fabshim.all_and_one_of_policy`` builds it: a peer compiles it, so the monitor is quiet."""
    role = msp_principal_pb2.MSPRole.PEER
    identities = [msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=msp_principal_pb2.MSPRole(msp_identifier=m, role=role).SerializeToString())
        for m in ("BankA", "BankB", "Regulator")]
    nout = policies_pb2.SignaturePolicy.NOutOf
    rule = policies_pb2.SignaturePolicy(n_out_of=nout(n=2, rules=[
        policies_pb2.SignaturePolicy(signed_by=0),
        policies_pb2.SignaturePolicy(n_out_of=nout(n=1, rules=[
            policies_pb2.SignaturePolicy(signed_by=1),
            policies_pb2.SignaturePolicy(signed_by=2)]))]))
    raw = policies_pb2.SignaturePolicyEnvelope(
        version=0, rule=rule, identities=identities).SerializeToString()
    parsed = fabgateway.parse_validation_parameter(raw)
    assert parsed.msp_ids == {"BankA", "BankB", "Regulator"}
    assert fabgateway.validation_parameter_matches(raw, raw)
    pinned = decode_block(block(7, [Tx("lock", creator="BankA", endorsers=("BankA",),
                                       private={"pair-a-b": [PrivateOp(
                                           "lock/1", None,
                                           metadata={VALIDATION_PARAMETER: raw})]})]))
    assert fabgateway.malformed_validation_parameters([pinned]) == []


def test_a_policy_naming_peer_roles_parses() -> None:
    parsed = fabgateway.parse_validation_parameter(BOTH_BYTES)
    assert parsed.raw == BOTH_BYTES
    assert parsed.version == 0
    assert [(p.classification, p.msp_id, p.role) for p in parsed.identities] == [
        ("ROLE", "BankA", "PEER"), ("ROLE", "BankB", "PEER")
    ]
    assert parsed.msp_ids == {"BankA", "BankB"}
    assert parsed.envelope.rule.n_out_of.n == 2


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xff\xff\xff", "not a SignaturePolicyEnvelope"),
        (policies_pb2.SignaturePolicyEnvelope(version=1).SerializeToString(), "version 1"),
        (policies_pb2.SignaturePolicyEnvelope(version=0).SerializeToString(), "no rule"),
    ],
)
def test_bytes_a_peer_cannot_compile_are_refused_with_the_reason(value: bytes, reason: str) -> None:
    with pytest.raises(fabgateway.MalformedMessageError, match=reason):
        fabgateway.parse_validation_parameter(value)


def test_a_rule_pointing_past_its_identities_or_empty_is_refused() -> None:
    out_of_range = envelope("BankA")
    out_of_range.rule.n_out_of.rules.add(signed_by=3)
    with pytest.raises(fabgateway.MalformedMessageError, match="signed_by 3"):
        fabgateway.parse_validation_parameter(out_of_range.SerializeToString())
    empty_rule = envelope("BankA")
    empty_rule.rule.n_out_of.rules.add()  # a SignaturePolicy with neither type set
    with pytest.raises(fabgateway.MalformedMessageError, match="empty policy rule"):
        fabgateway.parse_validation_parameter(empty_rule.SerializeToString())


def test_a_parameter_matches_only_byte_for_byte() -> None:
    assert fabgateway.validation_parameter_matches(BOTH_BYTES, BOTH_BYTES)
    assert fabgateway.validation_parameter_matches(BOTH_BYTES, BOTH)
    # The same banks in the other order, or one of two, is another parameter.
    assert not fabgateway.validation_parameter_matches(
        envelope("BankB", "BankA").SerializeToString(), BOTH
    )
    assert not fabgateway.validation_parameter_matches(
        envelope("BankA", "BankB", n=1).SerializeToString(), BOTH
    )
    assert not fabgateway.validation_parameter_matches(None, BOTH)
    assert not fabgateway.validation_parameter_matches(b"", BOTH)
    with pytest.raises(TypeError):
        fabgateway.validation_parameter_matches(BOTH_BYTES, "BankA")


def test_every_malformed_parameter_in_blocks_is_named_with_its_writer() -> None:
    blocks = [
        decode_block(block(5, [
            Tx("honest", creator="BankA", endorsers=("BankA",),
               private={"pair-a-b": [PrivateOp("xfer/1", None,
                                               metadata={VALIDATION_PARAMETER: BOTH_BYTES})]}),
            Tx("planted", creator="BankB", endorsers=("BankB",),
               private={"pair-b-a": [PrivateOp("dec/1", None,
                                               metadata={VALIDATION_PARAMETER: b"\xff\x01"})]}),
            Tx("removed", private={"pair-a-b": [PrivateOp("xfer/2", None,
                                                          metadata={VALIDATION_PARAMETER: b""})]}),
        ])),
        decode_block(block(6, [
            Tx("public-garbage", code=POLICY, creator="BankC", endorsers=("BankC",),
               public_metadata=[("config", {VALIDATION_PARAMETER: b"\x08\x05"})]),
        ])),
    ]
    found = fabgateway.malformed_validation_parameters(blocks)
    assert [(f.position.transaction_id, f.creator_msp_id) for f in found] == [
        ("planted", "BankB"), ("public-garbage", "BankC")
    ]
    planted, public = found
    assert planted.namespace == "cc"
    assert planted.collection == "pair-b-a"
    assert planted.key_hash == hashlib.sha256(b"dec/1").digest()
    assert planted.key is None
    assert planted.endorser_msp_ids == ("BankB",)
    assert planted.is_valid
    assert planted.value == b"\xff\x01"
    assert "not a SignaturePolicyEnvelope" in planted.reason
    assert not planted.unmarshals
    assert public.collection is None
    assert public.key == "config"
    assert public.key_hash is None
    assert not public.is_valid
    assert "version 5" in public.reason
    assert public.unmarshals
