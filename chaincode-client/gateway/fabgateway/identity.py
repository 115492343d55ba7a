"""Identity (data) and signers (functions from digest to signature).

An :class:`Identity` is an MSP id and a PEM certificate; it is sent to peers as a serialized
``msp.SerializedIdentity`` (the transaction's *creator*). A :data:`Signer` takes the digest
produced by the gateway's hash function and returns a signature. Private keys never enter the
gateway: a caller may keep them in an HSM or sign off-line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fabgateway._protos import identities_pb2

__all__ = [
    "Identity",
    "Signer",
    "ecdsa_signer",
    "ed25519_signer",
    "identity_from_pem_file",
    "load_msp_dir",
    "private_key_signer",
    "signer_from_pem_file",
]

Signer = Callable[[bytes], bytes]
"""A signing function: digest bytes to signature bytes."""

# Orders of the curves Fabric's MSPs accept; low-S means s <= order / 2.
_CURVE_ORDERS: dict[str, int] = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}

_PREHASH_BY_LENGTH: dict[int, hashes.HashAlgorithm] = {
    32: hashes.SHA256(),
    48: hashes.SHA384(),
    64: hashes.SHA512(),
}


@dataclass(frozen=True)
class Identity:
    """A client identity: the MSP id of its organization and its X.509 certificate (PEM)."""

    msp_id: str
    credentials: bytes

    def __post_init__(self) -> None:
        if not self.msp_id:
            raise ValueError("Identity.msp_id must not be empty")
        if not self.credentials:
            raise ValueError("Identity.credentials must not be empty")

    def serialize(self) -> bytes:
        """The ``msp.SerializedIdentity`` bytes: the *creator* in every signed header."""
        serialized = identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.credentials)
        return bytes(serialized.SerializeToString())

    def certificate(self) -> x509.Certificate:
        """The credentials parsed as an X.509 certificate."""
        return x509.load_pem_x509_certificate(self.credentials)


def ecdsa_signer(private_key: ec.EllipticCurvePrivateKey) -> Signer:
    """A signer producing DER ECDSA signatures normalized to low-S, as Fabric requires.

    The digest is signed as is (it is already a hash); its length picks the pre-hash
    algorithm (32 bytes: SHA-256, 48: SHA-384, 64: SHA-512).
    """
    order = _CURVE_ORDERS.get(private_key.curve.name)
    if order is None:
        raise ValueError(f"unsupported ECDSA curve {private_key.curve.name!r} (P-256 or P-384)")
    half_order = order // 2

    def sign(digest: bytes) -> bytes:
        algorithm = _PREHASH_BY_LENGTH.get(len(digest))
        if algorithm is None:
            raise ValueError(f"ECDSA digest must be 32, 48 or 64 bytes, got {len(digest)}")
        der = private_key.sign(digest, ec.ECDSA(Prehashed(algorithm)))
        r, s = decode_dss_signature(der)
        if s > half_order:
            return encode_dss_signature(r, order - s)
        return der

    return sign


def ed25519_signer(private_key: ed25519.Ed25519PrivateKey) -> Signer:
    """A signer for Ed25519 keys. Ed25519 signs the message: connect with ``hash=hashing.none``."""

    def sign(message: bytes) -> bytes:
        return private_key.sign(message)

    return sign


def private_key_signer(private_key: object) -> Signer:
    """A signer for an ECDSA (P-256, P-384) or Ed25519 private key from ``cryptography``."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return ecdsa_signer(private_key)
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return ed25519_signer(private_key)
    raise TypeError(f"unsupported private key type {type(private_key).__name__}")


def identity_from_pem_file(msp_id: str, path: str | Path) -> Identity:
    """An identity from a PEM certificate file (checked to parse as X.509)."""
    data = Path(path).read_bytes()
    try:
        x509.load_pem_x509_certificate(data)
    except ValueError as error:
        raise ValueError(f"{path}: not a PEM X.509 certificate: {error}") from error
    return Identity(msp_id=msp_id, credentials=data)


def signer_from_pem_file(path: str | Path, password: bytes | None = None) -> Signer:
    """A signer from a PEM private key file (PKCS#8 or SEC1; ECDSA or Ed25519)."""
    data = Path(path).read_bytes()
    try:
        key = load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a usable PEM private key: {error}") from error
    try:
        return private_key_signer(key)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error


def load_msp_dir(msp_id: str, msp_dir: str | Path) -> tuple[Identity, Signer]:
    """The identity and signer of a Fabric MSP folder.

    Reads the one certificate in ``signcerts/`` (``*.pem``) and the one key file in
    ``keystore/`` (cryptogen and fabric-ca name it ``priv_sk`` or ``<ski>_sk``).
    """
    root = Path(msp_dir)
    certs = sorted((root / "signcerts").glob("*.pem"))
    if len(certs) != 1:
        raise ValueError(
            f"{root / 'signcerts'}: expected one *.pem certificate, found {len(certs)}"
        )
    keystore = root / "keystore"
    if not keystore.is_dir():
        raise ValueError(f"{keystore}: no keystore folder")
    keys = sorted(p for p in keystore.iterdir() if p.is_file())
    if len(keys) != 1:
        raise ValueError(f"{keystore}: expected one key file, found {len(keys)}")
    return identity_from_pem_file(msp_id, certs[0]), signer_from_pem_file(keys[0])
