"""Identities, signers and hashes: signatures verify with `cryptography`, ECDSA is low-S."""

from __future__ import annotations

import hashlib
from pathlib import Path

import fabgateway
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fabgateway import hashing
from fabric_protos.msp import identities_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from unit.fabgateway.gw_fakes import P256_ORDER, make_certificate

P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)
KEY = ec.generate_private_key(ec.SECP256R1())

pytestmark = pytest.mark.timeout(60)


@settings(max_examples=200, deadline=None)
@given(message=st.binary(max_size=256))
def test_ecdsa_p256_signatures_verify_and_are_low_s(message: bytes) -> None:
    sign = fabgateway.ecdsa_signer(KEY)
    signature = sign(hashing.sha256(message))
    KEY.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    _, s = decode_dss_signature(signature)
    assert s <= P256_ORDER // 2


def test_ecdsa_normalizes_high_s_signatures() -> None:
    # About half of raw ECDSA signatures are high-S: over 64 signatures, some must have been
    # flipped, and all must still verify.
    sign = fabgateway.ecdsa_signer(KEY)
    flipped = 0
    for i in range(64):
        message = f"message {i}".encode()
        digest = hashlib.sha256(message).digest()
        raw = KEY.sign(message, ec.ECDSA(hashes.SHA256()))
        ours = sign(digest)
        KEY.public_key().verify(ours, message, ec.ECDSA(hashes.SHA256()))
        _, s = decode_dss_signature(ours)
        assert s <= P256_ORDER // 2
        if decode_dss_signature(raw)[1] > P256_ORDER // 2:
            flipped += 1
    assert flipped > 0


def test_ecdsa_p384_with_sha384() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    sign = fabgateway.ecdsa_signer(key)
    for i in range(16):
        message = f"m{i}".encode()
        signature = sign(hashing.sha384(message))
        key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA384()))
        assert decode_dss_signature(signature)[1] <= P384_ORDER // 2


def test_ecdsa_rejects_digest_of_unexpected_length() -> None:
    with pytest.raises(ValueError, match="32, 48 or 64"):
        fabgateway.ecdsa_signer(KEY)(b"short")


def test_ecdsa_rejects_unsupported_curve() -> None:
    with pytest.raises(ValueError, match="unsupported ECDSA curve"):
        fabgateway.ecdsa_signer(ec.generate_private_key(ec.SECP256K1()))


def test_ed25519_signs_the_message() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    sign = fabgateway.ed25519_signer(key)
    message = b"the whole message"
    key.public_key().verify(sign(hashing.none(message)), message)
    with pytest.raises(InvalidSignature):
        key.public_key().verify(sign(message), b"another message")


def test_private_key_signer_dispatches_and_refuses_rsa() -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    ed.public_key().verify(fabgateway.private_key_signer(ed)(b"x"), b"x")
    digest = hashing.sha256(b"y")
    signature = fabgateway.private_key_signer(KEY)(digest)
    KEY.public_key().verify(signature, b"y", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(TypeError, match="unsupported private key"):
        fabgateway.private_key_signer(rsa.generate_private_key(65537, 2048))


def test_hashes() -> None:
    assert hashing.sha256(b"abc") == hashlib.sha256(b"abc").digest()
    assert hashing.sha384(b"abc") == hashlib.sha384(b"abc").digest()
    assert hashing.sha3_256(b"abc") == hashlib.sha3_256(b"abc").digest()
    assert hashing.sha3_384(b"abc") == hashlib.sha3_384(b"abc").digest()
    assert hashing.none(b"abc") == b"abc"


def test_identity_serializes_as_msp_serialized_identity() -> None:
    cert = make_certificate(KEY)
    identity = fabgateway.Identity("Org1MSP", cert)
    parsed = identities_pb2.SerializedIdentity()
    parsed.ParseFromString(identity.serialize())
    assert parsed.mspid == "Org1MSP"
    assert parsed.id_bytes == cert
    assert identity.certificate().public_key() == KEY.public_key()
    with pytest.raises(ValueError, match="msp_id"):
        fabgateway.Identity("", cert)


def test_transaction_id_is_sha256_of_nonce_and_creator() -> None:
    nonce, creator = b"n" * 24, b"creator bytes"
    assert (
        fabgateway.transaction_id_for(nonce, creator) == hashlib.sha256(nonce + creator).hexdigest()
    )


def _write_msp(root: Path, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    cert = make_certificate(key)
    (root / "signcerts").mkdir(parents=True)
    (root / "keystore").mkdir()
    (root / "signcerts" / "cert.pem").write_bytes(cert)
    (root / "keystore" / "priv_sk").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert


def test_load_msp_dir(tmp_path: Path) -> None:
    cert = _write_msp(tmp_path / "msp", KEY)
    identity, sign = fabgateway.load_msp_dir("Org1MSP", tmp_path / "msp")
    assert identity == fabgateway.Identity("Org1MSP", cert)
    KEY.public_key().verify(sign(hashing.sha256(b"z")), b"z", ec.ECDSA(hashes.SHA256()))


def test_load_msp_dir_with_ed25519_key(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    _write_msp(tmp_path / "msp", key)
    _, sign = fabgateway.load_msp_dir("Org1MSP", tmp_path / "msp")
    key.public_key().verify(sign(b"m"), b"m")


def test_load_msp_dir_refuses_ambiguous_keystore(tmp_path: Path) -> None:
    _write_msp(tmp_path / "msp", KEY)
    (tmp_path / "msp" / "keystore" / "other_sk").write_bytes(b"x")
    with pytest.raises(ValueError, match="expected one key file, found 2"):
        fabgateway.load_msp_dir("Org1MSP", tmp_path / "msp")


def test_pem_file_helpers_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"not pem")
    with pytest.raises(ValueError, match=r"bad\.pem"):
        fabgateway.identity_from_pem_file("Org1MSP", bad)
    with pytest.raises(ValueError, match=r"bad\.pem"):
        fabgateway.signer_from_pem_file(bad)
    with pytest.raises(FileNotFoundError):
        fabgateway.signer_from_pem_file(tmp_path / "missing.pem")
