"""Unit tests of consortium.crypto: the material Fabric's MSP and TLS stacks will check."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import stat
from pathlib import Path

import pytest
import yaml
from consortium.crypto import (
    ATTRIBUTES_OID,
    CryptoError,
    IdentityFiles,
    OrgCrypto,
    generate_org,
    load_org,
    read_attributes,
)
from consortium.errors import NetworkError
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DOMAIN = "hkbank.example.com"
PEER = f"peer0.{DOMAIN}"
PEER_HOSTS = ("localhost", "127.0.0.1", PEER, "10.0.0.7")
CLIENT_ATTRS = {"minter": "true", "operator": "desk-1"}


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ou(cert: x509.Certificate) -> list[str]:
    return [
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    ]


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _ski_of(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def _sha256_point(cert: x509.Certificate) -> bytes:
    """The SKI cryptogen computes: SHA-256 of the uncompressed public point."""
    raw = cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(raw)
    return digest.finalize()


def _eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _generate(base: Path) -> OrgCrypto:
    return generate_org(
        base,
        org_name="HKBank",
        domain=DOMAIN,
        nodes={PEER: PEER_HOSTS},
        node_ou="peer",
        admins=("Admin",),
        clients={"alice": CLIENT_ATTRS},
    )


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> OrgCrypto:
    return _generate(tmp_path_factory.mktemp("crypto"))


@pytest.fixture
def fresh_org(tmp_path: Path) -> OrgCrypto:
    return _generate(tmp_path)


def _all_identities(org: OrgCrypto) -> list[tuple[IdentityFiles, str]]:
    return [(org.node(PEER), "peer"), (org.user("Admin"), "admin"), (org.user("alice"), "client")]


# --------------------------------------------------------------------------- CAs


@pytest.mark.parametrize(
    ("attr", "cn"), [("ca_cert", f"ca.{DOMAIN}"), ("tlsca_cert", f"tlsca.{DOMAIN}")]
)
def test_cas_are_self_signed_p256_cas_with_cryptogen_extensions(
    org: OrgCrypto, attr: str, cn: str
) -> None:
    cert = _cert(getattr(org, attr))
    cert.verify_directly_issued_by(cert)
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.version is x509.Version.v3
    assert _cn(cert) == cn
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == DOMAIN
    for oid in (NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME):
        assert cert.subject.get_attributes_for_oid(oid)

    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical
    assert bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert ku.value.key_cert_sign
    assert ku.value.crl_sign
    assert _eku(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert _ski_of(cert) == _sha256_point(cert)


def test_signing_and_tls_cas_are_distinct(org: OrgCrypto) -> None:
    assert _cert(org.ca_cert).public_key() != _cert(org.tlsca_cert).public_key()


def test_verifying_msp_layout_and_node_ous(org: OrgCrypto) -> None:
    assert (org.msp_dir / "cacerts" / "ca-cert.pem").read_bytes() == org.ca_cert.read_bytes()
    tlsca = org.msp_dir / "tlscacerts" / "tlsca-cert.pem"
    assert tlsca.read_bytes() == org.tlsca_cert.read_bytes()
    _assert_node_ous(org.msp_dir)


def _assert_node_ous(msp_dir: Path) -> None:
    config = yaml.safe_load((msp_dir / "config.yaml").read_text())
    node_ous = config["NodeOUs"]
    assert node_ous["Enable"] is True
    for key, ou in [
        ("ClientOUIdentifier", "client"),
        ("PeerOUIdentifier", "peer"),
        ("AdminOUIdentifier", "admin"),
        ("OrdererOUIdentifier", "orderer"),
    ]:
        assert node_ous[key] == {
            "Certificate": "cacerts/ca-cert.pem",
            "OrganizationalUnitIdentifier": ou,
        }
        assert (msp_dir / node_ous[key]["Certificate"]).is_file()


# --------------------------------------------------------------------------- leaves


def test_identities_have_cryptogen_layout(org: OrgCrypto) -> None:
    node = org.node(PEER)
    base = org.org_dir / "nodes" / PEER
    assert node == IdentityFiles(
        msp_dir=base / "msp",
        cert=base / "msp" / "signcerts" / "cert.pem",
        key=base / "msp" / "keystore" / "priv_sk",
        tls_cert=base / "tls" / "server.crt",
        tls_key=base / "tls" / "server.key",
        tls_ca=base / "tls" / "ca.crt",
    )
    user = org.user("alice")
    assert user.tls_cert == org.org_dir / "users" / "alice" / "tls" / "client.crt"
    assert user.tls_key == org.org_dir / "users" / "alice" / "tls" / "client.key"
    for files, _ in _all_identities(org):
        assert (files.msp_dir / "cacerts" / "ca-cert.pem").read_bytes() == org.ca_cert.read_bytes()
        tlsca = files.msp_dir / "tlscacerts" / "tlsca-cert.pem"
        assert tlsca.read_bytes() == org.tlsca_cert.read_bytes()
        assert files.tls_ca.read_bytes() == org.tlsca_cert.read_bytes()
        _assert_node_ous(files.msp_dir)


def test_signing_certs_chain_to_ca_and_carry_node_ou(org: OrgCrypto) -> None:
    ca, tlsca = _cert(org.ca_cert), _cert(org.tlsca_cert)
    for files, ou in _all_identities(org):
        cert = _cert(files.cert)
        cert.verify_directly_issued_by(ca)
        with pytest.raises((ValueError, InvalidSignature)):
            cert.verify_directly_issued_by(tlsca)
        assert _ou(cert) == [ou]
        assert _cn(cert) == files.msp_dir.parent.name
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical
        assert not bc.value.ca
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical
        assert ku.value.digital_signature
        assert not ku.value.key_encipherment
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == _ski_of(ca)
        assert _ski_of(cert) == _sha256_point(cert)


def test_private_keys_match_certs_are_pkcs8_and_0600(org: OrgCrypto) -> None:
    keys = [
        (org.org_dir / "ca" / "priv_sk", org.ca_cert),
        (org.org_dir / "tlsca" / "priv_sk", org.tlsca_cert),
    ]
    for files, _ in _all_identities(org):
        keys += [(files.key, files.cert), (files.tls_key, files.tls_cert)]
    for key_path, cert_path in keys:
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600, key_path
        pem = key_path.read_bytes()
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----"), key_path
        key = serialization.load_pem_private_key(pem, password=None)
        assert key.public_key() == _cert(cert_path).public_key(), key_path


def test_tls_certs_chain_to_tlsca_with_both_ekus(org: OrgCrypto) -> None:
    tlsca = _cert(org.tlsca_cert)
    for files, _ in _all_identities(org):
        cert = _cert(files.tls_cert)
        cert.verify_directly_issued_by(tlsca)
        assert _eku(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical
        assert ku.value.digital_signature
        assert ku.value.key_encipherment
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == _ski_of(tlsca)
        assert _ou(cert) == []


def test_node_tls_sans_are_the_given_hosts(org: OrgCrypto) -> None:
    cert = _cert(org.node(PEER).tls_cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", PEER]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.7"),
    ]


def test_empty_hosts_default_to_loopback(fresh_org: OrgCrypto) -> None:
    cert_path, _ = fresh_org.issue_tls_server("cc", [])
    sans = _cert(cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_node_certs_carry_no_attributes(org: OrgCrypto) -> None:
    assert read_attributes(org.node(PEER).cert.read_bytes()) == {}


def test_orderer_org_uses_orderer_ou(tmp_path: Path) -> None:
    org = generate_org(
        tmp_path,
        org_name="Orderers",
        domain="orderer.example.com",
        nodes={"orderer0.orderer.example.com": ["localhost", "127.0.0.1"]},
        node_ou="orderer",
    )
    assert _ou(_cert(org.node("orderer0.orderer.example.com").cert)) == ["orderer"]
    assert _ou(_cert(org.user("Admin").cert)) == ["admin"]


# --------------------------------------------------------------------------- attributes


def test_attribute_extension_round_trip(org: OrgCrypto) -> None:
    cert = _cert(org.user("alice").cert)
    ext = cert.extensions.get_extension_for_oid(ATTRIBUTES_OID)
    assert not ext.critical
    assert isinstance(ext.value, x509.UnrecognizedExtension)
    assert json.loads(ext.value.value) == {
        "attrs": {
            "hf.EnrollmentID": "alice",
            "hf.Type": "client",
            "hf.Affiliation": "",
            **CLIENT_ATTRS,
        }
    }
    assert read_attributes(org.user("alice").cert.read_bytes())["minter"] == "true"
    admin = read_attributes(org.user("Admin").cert.read_bytes())
    assert admin == {"hf.EnrollmentID": "Admin", "hf.Type": "admin", "hf.Affiliation": ""}


def test_read_attributes_rejects_malformed_extension() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(ATTRIBUTES_OID, b'{"attrs": [1]}'), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CryptoError, match="attribute extension"):
        read_attributes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CryptoError, match="not a PEM certificate"):
        read_attributes(b"garbage")


def test_reserved_attribute_names_are_refused(fresh_org: OrgCrypto) -> None:
    with pytest.raises(CryptoError, match=r"hf\.Type"):
        fresh_org.issue_user("mallory", attributes={"hf.Type": "admin"})


# --------------------------------------------------------------------------- issuing later


def test_issue_user_after_load_org(fresh_org: OrgCrypto) -> None:
    loaded = load_org(fresh_org.org_dir.parent, "HKBank")
    assert loaded.ca_cert == fresh_org.ca_cert
    files = loaded.issue_user("auditor1", attributes={"auditor": "true"})
    assert files == loaded.user("auditor1")
    cert = _cert(files.cert)
    cert.verify_directly_issued_by(_cert(fresh_org.ca_cert))
    _cert(files.tls_cert).verify_directly_issued_by(_cert(fresh_org.tlsca_cert))
    assert _ou(cert) == ["client"]
    assert read_attributes(files.cert.read_bytes())["auditor"] == "true"
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600


def test_issue_expired_certificate(fresh_org: OrgCrypto) -> None:
    now = dt.datetime.now(dt.UTC)
    files = fresh_org.issue_user("expired", not_after=now - dt.timedelta(minutes=1))
    cert = _cert(files.cert)
    ca = _cert(fresh_org.ca_cert)
    assert cert.not_valid_after_utc < now
    assert cert.not_valid_before_utc < cert.not_valid_after_utc
    # Fabric's MSP checks the chain at not_before + 1 s: the CA must be valid then.
    assert cert.not_valid_before_utc >= ca.not_valid_before_utc
    cert.verify_directly_issued_by(ca)


def test_expiry_before_the_ca_started_is_refused(fresh_org: OrgCrypto) -> None:
    # Fabric validates the chain at the leaf's not_before + 1 s, so a leaf may not
    # start before its CA: with a CA minted just now, "expired an hour ago" is impossible.
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with pytest.raises(CryptoError, match="no earlier than its CA"):
        fresh_org.issue_user("long-expired", not_after=an_hour_ago)


def test_explicit_validity_is_honoured(fresh_org: OrgCrypto) -> None:
    start = _cert(fresh_org.ca_cert).not_valid_before_utc + dt.timedelta(seconds=1)
    end = start + dt.timedelta(minutes=2)
    cert = _cert(fresh_org.issue_user("brief", not_before=start, not_after=end).cert)
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (start, end)


def test_validity_before_the_ca_is_refused(fresh_org: OrgCrypto) -> None:
    early = _cert(fresh_org.ca_cert).not_valid_before_utc - dt.timedelta(days=1)
    with pytest.raises(CryptoError, match="before its CA"):
        fresh_org.issue_user("early", not_before=early)
    with pytest.raises(CryptoError, match="timezone-aware"):
        fresh_org.issue_user("naive", not_after=dt.datetime(2030, 1, 1))


def test_default_validity_is_ten_years_backdated(org: OrgCrypto) -> None:
    cert = _cert(org.user("alice").cert)
    now = dt.datetime.now(dt.UTC)
    assert now - dt.timedelta(minutes=6) < cert.not_valid_before_utc < now
    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert span == dt.timedelta(days=3650)


def test_issue_tls_server(fresh_org: OrgCrypto) -> None:
    cert_path, key_path = fresh_org.issue_tls_server("cc-hkbank", ["localhost", "127.0.0.1"])
    assert cert_path == fresh_org.org_dir / "servers" / "cc-hkbank" / "server.crt"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = _cert(cert_path)
    cert.verify_directly_issued_by(_cert(fresh_org.tlsca_cert))
    assert _eku(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert (cert_path.parent / "ca.crt").read_bytes() == fresh_org.tlsca_cert.read_bytes()
    # Idempotent: the same call keeps the same pair.
    before = cert_path.read_bytes(), key_path.read_bytes()
    fresh_org.issue_tls_server("cc-hkbank", ["localhost", "127.0.0.1"])
    assert (cert_path.read_bytes(), key_path.read_bytes()) == before


# --------------------------------------------------------------------------- idempotency


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_second_generation_changes_nothing(tmp_path: Path) -> None:
    _generate(tmp_path)
    first = _snapshot(tmp_path)
    _generate(tmp_path)
    assert _snapshot(tmp_path) == first


def test_generation_completes_missing_material_with_the_same_cas(tmp_path: Path) -> None:
    org = _generate(tmp_path)
    before = _snapshot(org.org_dir)
    org.node(PEER).tls_cert.unlink()
    again = generate_org(
        tmp_path,
        org_name="HKBank",
        domain=DOMAIN,
        nodes={PEER: PEER_HOSTS, f"peer1.{DOMAIN}": ["localhost"]},
        node_ou="peer",
        clients={"alice": CLIENT_ATTRS, "bob": {}},
    )
    after = _snapshot(org.org_dir)
    for name in (
        "ca/priv_sk",
        "ca/ca-cert.pem",
        "tlsca/priv_sk",
        f"nodes/{PEER}/msp/keystore/priv_sk",
    ):
        assert after[name] == before[name], name
    tls_key = f"nodes/{PEER}/tls/server.key"
    assert after[tls_key] == before[tls_key]  # the missing cert was re-signed for the old key
    _cert(again.node(PEER).tls_cert).verify_directly_issued_by(_cert(again.tlsca_cert))
    _cert(again.node(f"peer1.{DOMAIN}").cert).verify_directly_issued_by(_cert(again.ca_cert))
    assert _ou(_cert(again.user("bob").cert)) == ["client"]


def test_changed_hosts_or_attributes_resign_with_the_same_key(tmp_path: Path) -> None:
    org = _generate(tmp_path)
    node, alice = org.node(PEER), org.user("alice")
    keys = node.tls_key.read_bytes(), alice.key.read_bytes()
    generate_org(
        tmp_path,
        org_name="HKBank",
        domain=DOMAIN,
        nodes={PEER: ["localhost", "192.0.2.10"]},
        node_ou="peer",
        clients={"alice": {"burner": "true"}},
    )
    assert (node.tls_key.read_bytes(), alice.key.read_bytes()) == keys
    sans = _cert(node.tls_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.10")]
    assert read_attributes(alice.cert.read_bytes())["burner"] == "true"
    assert "minter" not in read_attributes(alice.cert.read_bytes())


def test_issue_user_again_keeps_the_key(fresh_org: OrgCrypto) -> None:
    first = fresh_org.issue_user("carol")
    key = first.key.read_bytes()
    second = fresh_org.issue_user("carol", attributes={"minter": "true"})
    assert second.key.read_bytes() == key
    assert read_attributes(second.cert.read_bytes())["minter"] == "true"


# --------------------------------------------------------------------------- errors


def test_load_org_missing_dir_names_the_path(tmp_path: Path) -> None:
    assert issubclass(CryptoError, NetworkError)
    with pytest.raises(CryptoError, match=str(tmp_path / "Nowhere")):
        load_org(tmp_path, "Nowhere")


def test_load_org_missing_ca_key_names_the_path(tmp_path: Path) -> None:
    org = _generate(tmp_path)
    key = org.org_dir / "tlsca" / "priv_sk"
    key.unlink()
    with pytest.raises(CryptoError, match=str(key)):
        load_org(tmp_path, "HKBank")


def test_load_org_corrupt_ca_cert_names_the_path(tmp_path: Path) -> None:
    org = _generate(tmp_path)
    org.ca_cert.write_text("not a certificate")
    with pytest.raises(CryptoError, match=str(org.ca_cert)):
        load_org(tmp_path, "HKBank")


def test_missing_identity_names_the_path(org: OrgCrypto) -> None:
    with pytest.raises(CryptoError, match=str(org.org_dir / "users" / "nobody")):
        org.user("nobody")
    with pytest.raises(CryptoError, match="invalid user name"):
        org.user("../Admin")


def test_cert_without_its_key_is_refused(tmp_path: Path) -> None:
    org = _generate(tmp_path)
    key = org.node(PEER).key
    key.unlink()
    with pytest.raises(CryptoError, match=str(key)):
        _generate(tmp_path)


def test_identity_from_another_ca_is_refused(tmp_path: Path) -> None:
    org = _generate(tmp_path)
    other = generate_org(
        tmp_path,
        org_name="Other",
        domain="other.example.com",
        nodes={PEER: ["localhost"]},
        node_ou="peer",
    )
    other_node = other.node(PEER)
    mine = org.node(PEER)
    mine.cert.write_bytes(other_node.cert.read_bytes())
    mine.key.write_bytes(other_node.key.read_bytes())
    with pytest.raises(CryptoError, match="not issued by the current CA"):
        _generate(tmp_path)


# --------------------------------------------------------------------------- speed


def test_a_consortium_sized_run_creates_every_identity(tmp_path: Path) -> None:
    """Speed is a benchmark figure (docs/operations.md), not an assertion here."""
    for i in range(5):
        org = generate_org(
            tmp_path,
            org_name=f"Org{i}",
            domain=f"org{i}.example.com",
            nodes={f"node{j}.org{i}.example.com": ["localhost", "127.0.0.1"] for j in range(2)},
            node_ou="orderer" if i == 0 else "peer",
            clients={f"user{k}": {"minter": "true"} for k in range(2)},
        )
        for j in range(2):
            assert org.node(f"node{j}.org{i}.example.com").cert.is_file()
        for k in range(2):
            assert read_attributes(org.user(f"user{k}").cert.read_bytes())["minter"] == "true"
