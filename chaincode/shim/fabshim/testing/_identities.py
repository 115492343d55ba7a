"""Test identities: a throwaway CA and certificates with Fabric CA attributes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .. import _protos as pb
from ..identity import ATTRIBUTE_OID

_VALID_FROM = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_VALID_UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class TestIdentity:
    """An MSP id with a PEM certificate (and its key), usable as a transaction creator."""

    __test__ = False  # not a pytest test class

    msp_id: str
    certificate_pem: bytes
    private_key_pem: bytes = field(repr=False)

    @property
    def creator(self) -> tuple[str, bytes]:
        """``(msp_id, certificate_pem)``, as ``MemoryStub(creator=...)`` takes it."""
        return self.msp_id, self.certificate_pem

    def serialized(self) -> bytes:
        """The ``msp.SerializedIdentity`` bytes a proposal carries as its creator."""
        return serialize_identity(self.msp_id, self.certificate_pem)


def serialize_identity(msp_id: str, certificate_pem: bytes) -> bytes:
    """``msp.SerializedIdentity`` bytes from an MSP id and a PEM certificate."""
    identity = pb.identities.SerializedIdentity(mspid=msp_id, id_bytes=certificate_pem)
    return bytes(identity.SerializeToString())


@lru_cache(maxsize=16)
def _ca(msp_id: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, msp_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"ca.{msp_id.lower()}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_VALID_FROM)
        .not_valid_after(_VALID_UNTIL)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_identity(
    msp_id: str = "Org1MSP",
    common_name: str = "user1",
    *,
    attributes: Mapping[str, str] | None = None,
    organizational_units: Sequence[str] = ("client",),
) -> TestIdentity:
    """A certificate for ``common_name`` issued by a per-MSP test CA.

    ``attributes`` go into the Fabric CA extension (OID 1.2.3.4.5.6.7.8.1) as
    ``{"attrs": {...}}``, so ``ClientIdentity.get_attribute_value`` reads them.
    """
    ca_key, ca_cert = _ca(msp_id)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, msp_id)]
    subject += [
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in organizational_units
    ]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_VALID_FROM)
        .not_valid_after(_VALID_UNTIL)
    )
    if attributes is not None:
        raw = json.dumps({"attrs": dict(attributes)}, separators=(",", ":")).encode("utf-8")
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ATTRIBUTE_OID, raw), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return TestIdentity(
        msp_id=msp_id,
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
