"""One certificate authority or one certificate and its key on disk, made idempotently.

The lower half of :mod:`consortium.crypto`: writing PEM files atomically (a key mode 0600),
building X.509 v3 certificates with ECDSA P-256 / SHA-256 (self-signed CAs; leaves with SANs,
NodeOU and the Fabric CA attribute extension), and the ``ensure_*`` functions that keep an
existing key and re-sign a certificate only when what it must say has changed. It knows
nothing of organizations, nodes or users: :class:`consortium.crypto.OrgCrypto` decides which
certificates an organization has and where they go.

Must not: know the consortium's configuration, start processes or talk to the network.

Errors: :class:`consortium.errors.CryptoError`, naming the path.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consortium.errors import CryptoError

__all__ = [
    "ATTRIBUTES_OID",
    "CA_CERT_FILE",
    "KEY_FILE",
    "Authority",
    "LeafSpec",
    "check_name",
    "ensure_ca",
    "ensure_leaf",
    "load_ca",
    "node_ous_config",
    "read_attributes",
    "write_public",
]

#: The certificate extension in which Fabric CA stores enrollment attributes.
ATTRIBUTES_OID: Final = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
#: The file name of a CA's certificate (the TLS CA's is ``tlsca-cert.pem``).
CA_CERT_FILE: Final = "ca-cert.pem"
#: The file name of every private key, as ``cryptogen`` names them.
KEY_FILE: Final = "priv_sk"

_CLOCK_SKEW: Final = dt.timedelta(minutes=5)
_DEFAULT_VALIDITY: Final = dt.timedelta(days=3650)
_EXPIRED_DEFAULT_SPAN: Final = dt.timedelta(days=1)
_SUBJECT_BASE: Final = (
    (NameOID.COUNTRY_NAME, "US"),
    (NameOID.STATE_OR_PROVINCE_NAME, "California"),
    (NameOID.LOCALITY_NAME, "San Francisco"),
)
_NODE_OUS: Final = ("client", "peer", "admin", "orderer")


# --------------------------------------------------------------------------- files


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` so that a crash never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_public(path: Path, data: bytes) -> None:
    """Write a public file (certificate, config) unless it already holds ``data``."""
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    _write_atomic(path, data, 0o644)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CryptoError(f"{path}: {what} is missing") from None
    except OSError as e:
        raise CryptoError(f"{path}: cannot read {what}: {e.strerror}") from e


def _load_cert(path: Path) -> x509.Certificate:
    data = _read(path, "certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as e:
        raise CryptoError(f"{path}: not a PEM certificate: {e}") from e


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise CryptoError(f"{path}: not an unencrypted PEM private key: {e}") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CryptoError(f"{path}: not an ECDSA P-256 private key")
    return key


def _new_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(path, pem, 0o600)
    return key


def check_name(name: str, what: str) -> str:
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise CryptoError(f"invalid {what} name {name!r}: it is used as a folder name")
    return name


# --------------------------------------------------------------------------- certificates


def _ski(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """SHA-256 of the uncompressed public point, as cryptogen computes it (RFC 7093 m. 4)."""
    raw = public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(raw)
    return digest.finalize()


def _sans(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # de-duplicated, order kept
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _san_set(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n.value) for n in ext if isinstance(n, x509.DNSName | x509.IPAddress)}


def _ou(cert: x509.Certificate) -> list[str]:
    return [
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    ]


def _attributes_extension(attributes: Mapping[str, str]) -> x509.UnrecognizedExtension:
    value = json.dumps({"attrs": dict(attributes)}, separators=(",", ":")).encode()
    return x509.UnrecognizedExtension(ATTRIBUTES_OID, value)


def _attributes_of(cert: x509.Certificate, where: str) -> dict[str, str]:
    try:
        ext = cert.extensions.get_extension_for_oid(ATTRIBUTES_OID).value
    except x509.ExtensionNotFound:
        return {}
    if not isinstance(ext, x509.UnrecognizedExtension):  # pragma: no cover - defensive
        raise CryptoError(f"{where}: unexpected attribute extension type")
    try:
        doc = json.loads(ext.value.decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise CryptoError(f"{where}: attribute extension is not UTF-8 JSON: {e}") from e
    attrs = doc.get("attrs") if isinstance(doc, dict) else None
    if not isinstance(attrs, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()
    ):
        raise CryptoError(f'{where}: attribute extension is not {{"attrs": {{name: string}}}}')
    return attrs


def read_attributes(cert_pem: bytes) -> dict[str, str]:
    """Return the Fabric CA attributes of a PEM certificate (``{}`` if it has none).

    Raises :class:`CryptoError` if the certificate or its extension is malformed.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise CryptoError(f"not a PEM certificate: {e}") from e
    return _attributes_of(cert, "certificate")


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate, private key and certificate file."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)


@dataclass(frozen=True)
class LeafSpec:
    """What a leaf certificate must say; a change re-signs it (with the same key)."""

    common_name: str
    ou: str | None
    tls: bool
    hosts: tuple[str, ...] = ()
    attributes: Mapping[str, str] | None = None

    def matches(self, cert: x509.Certificate) -> bool:
        return (
            _ou(cert) == ([self.ou] if self.ou else [])
            and _san_set(cert) == {str(n.value) for n in _sans(self.hosts)}
            and (self.attributes is None or _attributes_of(cert, "") == dict(self.attributes))
        )


def _validity(
    not_before: dt.datetime | None,
    not_after: dt.datetime | None,
    floor: dt.datetime | None,
) -> tuple[dt.datetime, dt.datetime]:
    for value in (not_before, not_after):
        if value is not None and value.tzinfo is None:
            raise CryptoError(f"validity bound {value} must be a timezone-aware datetime")
    now = dt.datetime.now(dt.UTC)
    if not_before is None:
        not_before = now - _CLOCK_SKEW
        if not_after is not None and not_after <= not_before:
            # An already expired certificate: start it a day before it ends.
            not_before = not_after - _EXPIRED_DEFAULT_SPAN
        if floor is not None:
            not_before = max(not_before, floor)
    if not_after is None:
        not_after = not_before + _DEFAULT_VALIDITY
    if not_after <= not_before:
        hint = f"; it may start no earlier than its CA ({floor})" if floor is not None else ""
        raise CryptoError(
            f"certificate would end ({not_after}) before it starts ({not_before}){hint}"
        )
    return not_before, not_after


def _self_signed_ca(
    key: ec.EllipticCurvePrivateKey, common_name: str, organization: str
) -> x509.Certificate:
    name = x509.Name(
        [x509.NameAttribute(oid, value) for oid, value in _SUBJECT_BASE]
        + [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    not_before, not_after = _validity(None, None, None)
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier(_ski(public_key)), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf(
    ca: Authority,
    public_key: ec.EllipticCurvePublicKey,
    profile: LeafSpec,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    ca_start = ca.cert.not_valid_before_utc
    if not_before is not None and not_before < ca_start:
        # Fabric's MSP checks the chain at the leaf's not_before + 1 s.
        raise CryptoError(
            f"{ca.cert_path}: a certificate may not start ({not_before}) before its CA ({ca_start})"
        )
    start, end = _validity(not_before, not_after, ca_start)
    attrs = [x509.NameAttribute(oid, value) for oid, value in _SUBJECT_BASE]
    if profile.ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, profile.ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, profile.common_name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=profile.tls,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier(_ski(public_key)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier(
                key_identifier=_ski(ca.key.public_key()),
                authority_cert_issuer=None,
                authority_cert_serial_number=None,
            ),
            critical=False,
        )
    )
    if profile.tls:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    if profile.hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_sans(profile.hosts)), critical=False
        )
    if profile.attributes is not None:
        builder = builder.add_extension(_attributes_extension(profile.attributes), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


# --------------------------------------------------------------------------- ensure


def ensure_ca(directory: Path, cert_name: str, common_name: str, domain: str) -> Authority:
    """Load the CA in ``directory``, creating what is missing (never a new key for a cert)."""
    cert_path, key_path = directory / cert_name, directory / KEY_FILE
    if key_path.exists():
        key = _load_key(key_path)
    elif cert_path.exists():
        raise CryptoError(f"{key_path}: CA private key is missing (its certificate exists)")
    else:
        key = _new_key(key_path)
    if cert_path.exists():
        cert = _load_cert(cert_path)
        _check_pair(cert, key, cert_path)
    else:
        cert = _self_signed_ca(key, common_name, domain)
        write_public(cert_path, _pem(cert))
    return Authority(cert, key, cert_path)


def load_ca(directory: Path, cert_name: str) -> Authority:
    cert_path, key_path = directory / cert_name, directory / KEY_FILE
    cert, key = _load_cert(cert_path), _load_key(key_path)
    _check_pair(cert, key, cert_path)
    return Authority(cert, key, cert_path)


def _check_pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_path: Path) -> None:
    if cert.public_key() != key.public_key():
        raise CryptoError(f"{cert_path}: certificate does not match its private key")


def ensure_leaf(
    ca: Authority,
    cert_path: Path,
    key_path: Path,
    profile: LeafSpec,
    *,
    force: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> None:
    """Make sure ``cert_path``/``key_path`` hold a pair for ``profile`` issued by ``ca``.

    An existing key is always kept. An existing certificate is kept unless ``force``
    or it no longer matches ``profile``; then it is re-signed for the same key.
    """
    if key_path.exists():
        key = _load_key(key_path)
    elif cert_path.exists():
        raise CryptoError(f"{key_path}: private key is missing (its certificate exists)")
    else:
        key = _new_key(key_path)
    if cert_path.exists() and not force:
        cert = _load_cert(cert_path)
        _check_pair(cert, key, cert_path)
        try:
            cert.verify_directly_issued_by(ca.cert)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise CryptoError(
                f"{cert_path}: not issued by the current CA {ca.cert_path}"
                f" ({e or 'bad signature'}); remove the stale identity folder to re-issue it"
            ) from e
        if profile.matches(cert):
            return
    cert = _leaf(ca, key.public_key(), profile, not_before, not_after)
    _write_atomic(cert_path, _pem(cert), 0o644)


def node_ous_config() -> bytes:
    ids = {
        f"{ou.capitalize()}OUIdentifier": {
            "Certificate": f"cacerts/{CA_CERT_FILE}",
            "OrganizationalUnitIdentifier": ou,
        }
        for ou in _NODE_OUS
    }
    return yaml.safe_dump({"NodeOUs": {"Enable": True, **ids}}, sort_keys=False).encode()
