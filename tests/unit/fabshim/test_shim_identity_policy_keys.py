"""ClientIdentity, KeyEndorsementPolicy and composite keys."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from fabshim import (
    AttributeAssertionError,
    ClientIdentity,
    IdentityError,
    InvalidArgumentError,
    KeyEndorsementPolicy,
    create_composite_key,
    split_composite_key,
)
from fabshim.identity import ATTRIBUTE_OID
from fabshim.keys import partial_key_range, range_keys
from fabshim.testing import MemoryStub, make_identity, serialize_identity
from hypothesis import given
from hypothesis import strategies as st


def self_signed_pem(name: x509.Name, extension: x509.ExtensionType | None = None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
    )
    if extension is not None:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class Creator:
    def __init__(self, creator: bytes) -> None:
        self.creator = creator

    def get_creator(self) -> bytes:
        return self.creator


# ---------------------------------------------------------------------------- identity


def test_identity_fields_and_attributes() -> None:
    identity = make_identity(
        "BankA", "alice", attributes={"role": "minter", "hf.EnrollmentID": "alice"}
    )
    client = ClientIdentity(MemoryStub(creator=identity.creator))
    assert client.msp_id == "BankA"
    assert client.get_msp_id() == "BankA"
    assert client.certificate.subject.rfc4514_string() == "CN=alice,OU=client,O=BankA"
    assert client.get_attribute_value("role") == "minter"
    assert client.get_attribute_value("missing") is None
    assert client.attributes == {"role": "minter", "hf.EnrollmentID": "alice"}
    client.assert_attribute_value("role", "minter")
    with pytest.raises(AttributeAssertionError, match="does not equal"):
        client.assert_attribute_value("role", "burner")
    with pytest.raises(AttributeAssertionError, match="was not found"):
        client.assert_attribute_value("level", "1")
    assert client.has_ou_value("client")
    assert not client.has_ou_value("admin")


def test_identity_id_is_the_go_cid_format() -> None:
    identity = make_identity("BankA", "alice")
    client = ClientIdentity(Creator(identity.serialized()))
    decoded = base64.b64decode(client.id).decode()
    assert decoded == "x509::CN=alice,OU=client,O=BankA::CN=ca.banka,O=BankA"
    assert client.get_id() == client.id


def test_dn_escaping_and_unknown_attribute_types() -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "#Smith, John+Co "),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.c"),
        ]
    )
    client = ClientIdentity(Creator(serialize_identity("X", self_signed_pem(subject))))
    subject_dn = base64.b64decode(client.id).decode().split("::")[1]
    # Go prints an unknown type as OID=#hex(DER of the value re-marshalled by Go): '@' is
    # not PrintableString, so UTF8String (tag 0x0c); RDNs come in reverse order.
    assert subject_dn == "1.2.840.113549.1.9.1=#0c05" + b"a@b.c".hex() + r",CN=\#Smith\, John\+Co\ "


def test_identity_errors() -> None:
    with pytest.raises(IdentityError, match="no creator"):
        ClientIdentity(Creator(b""))
    with pytest.raises(IdentityError, match="cannot decode"):
        ClientIdentity(Creator(b"\xff\xff"))
    with pytest.raises(IdentityError, match=r"not an X\.509"):
        ClientIdentity(Creator(serialize_identity("BankA", b"idemix-ish")))


def test_malformed_attribute_extension_is_an_identity_error() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    for raw in (b"not json", json.dumps({"attrs": {"n": 1}}).encode(), b"[]"):
        pem = self_signed_pem(name, x509.UnrecognizedExtension(ATTRIBUTE_OID, raw))
        with pytest.raises(IdentityError, match="attribute extension"):
            ClientIdentity(Creator(serialize_identity("X", pem)))


# ---------------------------------------------------------------------------- policy


def _decode(policy: bytes) -> list[tuple[str, int]]:
    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(policy)
    roles = [msp_principal_pb2.MSPRole.FromString(i.principal) for i in envelope.identities]
    assert envelope.rule.n_out_of.n == len(roles)
    assert [r.signed_by for r in envelope.rule.n_out_of.rules] == list(range(len(roles)))
    return [(r.msp_identifier, r.role) for r in roles]


def test_policy_requires_every_listed_org_sorted() -> None:
    policy = KeyEndorsementPolicy()
    policy.add_orgs("PEER", "BankB", "BankA")
    policy.add_orgs("MEMBER", "Regulator")
    peer, member = msp_principal_pb2.MSPRole.PEER, msp_principal_pb2.MSPRole.MEMBER
    assert _decode(policy.policy()) == [("BankA", peer), ("BankB", peer), ("Regulator", member)]
    policy.del_orgs("BankB", "Unknown")
    assert policy.list_orgs() == ["BankA", "Regulator"]
    assert _decode(policy.policy()) == [("BankA", peer), ("Regulator", member)]


def test_policy_round_trips_and_is_deterministic() -> None:
    first = KeyEndorsementPolicy()
    first.add_orgs("PEER", "C", "A", "B")
    second = KeyEndorsementPolicy(first.policy())
    assert second.list_orgs() == ["A", "B", "C"]
    assert second.policy() == first.policy()
    assert second.role_of("A") == "PEER"


def test_policy_errors() -> None:
    policy = KeyEndorsementPolicy()
    with pytest.raises(InvalidArgumentError, match="role type 'BOSS'"):
        policy.add_orgs("BOSS", "A")
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        policy.add_orgs("PEER", "")
    with pytest.raises(InvalidArgumentError, match="not a SignaturePolicyEnvelope"):
        KeyEndorsementPolicy(b"\xff\xff\xff")
    ou = policies_pb2.SignaturePolicyEnvelope(
        identities=[
            msp_principal_pb2.MSPPrincipal(
                principal_classification=msp_principal_pb2.MSPPrincipal.ORGANIZATION_UNIT
            )
        ]
    )
    with pytest.raises(InvalidArgumentError, match="not an MSP role"):
        KeyEndorsementPolicy(ou.SerializeToString())


# ---------------------------------------------------------------------------- composite keys

attribute_text = st.text(
    alphabet=st.characters(blacklist_characters="\x00\U0010ffff", blacklist_categories=("Cs",))
)


@given(object_type=attribute_text, attributes=st.lists(attribute_text, max_size=5))
def test_composite_keys_round_trip(object_type: str, attributes: list[str]) -> None:
    key = create_composite_key(object_type, attributes)
    assert key.startswith("\x00")
    assert split_composite_key(key) == (object_type, attributes)
    start, end = partial_key_range(object_type, attributes[:1])
    assert start <= key < end


def test_composite_key_matches_fabric_chaincode_go_layout() -> None:
    assert create_composite_key("acct", ["bankA", "42"]) == "\x00acct\x00bankA\x0042\x00"


@pytest.mark.parametrize("bad", ["a\x00b", "x\U0010ffff", "\ud800"])
def test_composite_key_parts_are_validated(bad: str) -> None:
    with pytest.raises(InvalidArgumentError):
        create_composite_key("t", [bad])
    with pytest.raises(InvalidArgumentError):
        create_composite_key(bad, [])


def test_split_refuses_simple_keys() -> None:
    with pytest.raises(InvalidArgumentError):
        split_composite_key("plain")


def test_range_bounds() -> None:
    assert range_keys("", "") == ("\x01", "")
    assert range_keys("a", "b") == ("a", "b")
    with pytest.raises(InvalidArgumentError):
        range_keys("a", "\x00z")
