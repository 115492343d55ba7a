"""Crypto material for the consortium: our own ``cryptogen``, built on ``cryptography``.

This module owns every key and certificate the network uses: per organization a
signing CA and a TLS CA, the organization's verifying MSP (the one that goes into
the channel configuration), and the local MSP and TLS files of its nodes, users
and chaincode servers. It writes them under ``<base>/<org_name>/`` in the same
shape as Fabric's ``cryptogen``::

    ca/ca-cert.pem  ca/priv_sk          the signing CA (its key is kept to issue later)
    tlsca/tlsca-cert.pem  tlsca/priv_sk the TLS CA
    msp/        cacerts/ca-cert.pem  tlscacerts/tlsca-cert.pem  config.yaml (NodeOUs)
    nodes/<node>/msp/   signcerts/cert.pem  keystore/priv_sk  cacerts/  tlscacerts/  config.yaml
    nodes/<node>/tls/   ca.crt  server.crt  server.key
    users/<user>/msp/   (same shape as a node's)
    users/<user>/tls/   ca.crt  client.crt  client.key
    servers/<name>/     ca.crt  server.crt  server.key   (e.g. a chaincode server)

Keys are ECDSA P-256, PKCS#8 PEM, unencrypted, mode 0600; certificates are X.509 v3
signed with ECDSA/SHA-256. Generation is idempotent: existing private keys are never
replaced (a restarted network keeps its identities); a certificate is re-signed with
its existing key only when what it must say (OU, SANs, attributes) has changed.

User certificates carry the Fabric CA attribute extension (OID 1.2.3.4.5.6.7.8.1),
which chaincode reads for attribute-based access control (``minter``, ...).

This module must not know the consortium's configuration format, start processes
or talk to the network; callers pass names, domains and hosts.

Errors: :class:`consortium.errors.CryptoError` (a ``NetworkError``, re-exported here)
for missing, inconsistent or invalid material; its message names the path.
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
from typing import Final, Literal

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consortium.errors import CryptoError

__all__ = [
    "ATTRIBUTES_OID",
    "CryptoError",
    "IdentityFiles",
    "OrgCrypto",
    "generate_org",
    "load_org",
    "read_attributes",
]

#: The certificate extension in which Fabric CA stores enrollment attributes.
ATTRIBUTES_OID: Final = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")

_CLOCK_SKEW: Final = dt.timedelta(minutes=5)
_DEFAULT_VALIDITY: Final = dt.timedelta(days=3650)
_EXPIRED_DEFAULT_SPAN: Final = dt.timedelta(days=1)
_DEFAULT_HOSTS: Final = ("localhost", "127.0.0.1")
_SUBJECT_BASE: Final = (
    (NameOID.COUNTRY_NAME, "US"),
    (NameOID.STATE_OR_PROVINCE_NAME, "California"),
    (NameOID.LOCALITY_NAME, "San Francisco"),
)
_NODE_OUS: Final = ("client", "peer", "admin", "orderer")
_CA_CERT: Final = "ca-cert.pem"
_TLSCA_CERT: Final = "tlsca-cert.pem"
_KEY: Final = "priv_sk"


@dataclass(frozen=True)
class IdentityFiles:
    """Where one identity's files are: its local MSP, signing pair and TLS pair."""

    msp_dir: Path
    """The local MSP folder (``CORE_PEER_MSPCONFIGPATH`` / ``ORDERER_GENERAL_LOCALMSPDIR``)."""
    cert: Path
    """The signing certificate, ``msp/signcerts/cert.pem``."""
    key: Path
    """The signing key, ``msp/keystore/priv_sk``."""
    tls_cert: Path
    """The TLS certificate (server and client), ``tls/server.crt`` or ``tls/client.crt``."""
    tls_key: Path
    """The TLS key, ``tls/server.key`` or ``tls/client.key``."""
    tls_ca: Path
    """The organization's TLS CA certificate, ``tls/ca.crt``."""


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


def _write_public(path: Path, data: bytes) -> None:
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


def _check_name(name: str, what: str) -> str:
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
class _Authority:
    """A CA: its certificate, private key and certificate file."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)


@dataclass(frozen=True)
class _Profile:
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
    ca: _Authority,
    public_key: ec.EllipticCurvePublicKey,
    profile: _Profile,
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


def _ensure_ca(directory: Path, cert_name: str, common_name: str, domain: str) -> _Authority:
    """Load the CA in ``directory``, creating what is missing (never a new key for a cert)."""
    cert_path, key_path = directory / cert_name, directory / _KEY
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
        _write_public(cert_path, _pem(cert))
    return _Authority(cert, key, cert_path)


def _load_ca(directory: Path, cert_name: str) -> _Authority:
    cert_path, key_path = directory / cert_name, directory / _KEY
    cert, key = _load_cert(cert_path), _load_key(key_path)
    _check_pair(cert, key, cert_path)
    return _Authority(cert, key, cert_path)


def _check_pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_path: Path) -> None:
    if cert.public_key() != key.public_key():
        raise CryptoError(f"{cert_path}: certificate does not match its private key")


def _ensure_leaf(
    ca: _Authority,
    cert_path: Path,
    key_path: Path,
    profile: _Profile,
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


def _node_ous_config() -> bytes:
    ids = {
        f"{ou.capitalize()}OUIdentifier": {
            "Certificate": f"cacerts/{_CA_CERT}",
            "OrganizationalUnitIdentifier": ou,
        }
        for ou in _NODE_OUS
    }
    return yaml.safe_dump({"NodeOUs": {"Enable": True, **ids}}, sort_keys=False).encode()


# --------------------------------------------------------------------------- organization


class OrgCrypto:
    """One organization's crypto material on disk, and its CAs to issue more.

    Obtain one from :func:`generate_org` or :func:`load_org`.
    """

    def __init__(self, org_dir: Path, ca: _Authority, tlsca: _Authority) -> None:
        self.org_dir: Path = org_dir
        """``<base>/<org_name>``."""
        self.msp_dir: Path = org_dir / "msp"
        """The organization's verifying MSP (for the channel configuration)."""
        self.ca_cert: Path = ca.cert_path
        """The signing CA certificate, ``ca/ca-cert.pem``."""
        self.tlsca_cert: Path = tlsca.cert_path
        """The TLS CA certificate, ``tlsca/tlsca-cert.pem``."""
        self._ca = ca
        self._tlsca = tlsca

    def __repr__(self) -> str:
        return f"OrgCrypto({str(self.org_dir)!r})"

    # ---- lookups

    def node(self, name: str) -> IdentityFiles:
        """The files of node ``name``; :class:`CryptoError` if it has none."""
        return self._identity("nodes", _check_name(name, "node"), "server")

    def user(self, name: str) -> IdentityFiles:
        """The files of user ``name``; :class:`CryptoError` if it has none."""
        return self._identity("users", _check_name(name, "user"), "client")

    def _identity(self, kind: str, name: str, tls_stem: str) -> IdentityFiles:
        base = self.org_dir / kind / name
        files = IdentityFiles(
            msp_dir=base / "msp",
            cert=base / "msp" / "signcerts" / "cert.pem",
            key=base / "msp" / "keystore" / _KEY,
            tls_cert=base / "tls" / f"{tls_stem}.crt",
            tls_key=base / "tls" / f"{tls_stem}.key",
            tls_ca=base / "tls" / "ca.crt",
        )
        for path in (files.cert, files.key, files.tls_cert, files.tls_key, files.tls_ca):
            if not path.is_file():
                raise CryptoError(f"{path}: missing ({kind[:-1]} {name!r} has no such file)")
        return files

    # ---- issuing

    def issue_user(
        self,
        name: str,
        *,
        role: Literal["client", "admin"] = "client",
        attributes: Mapping[str, str] = {},
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> IdentityFiles:
        """Issue a certificate for user ``name`` (signed by the CA) and its TLS client pair.

        The signing certificate has OU ``role`` and carries the Fabric CA attributes
        ``hf.EnrollmentID``, ``hf.Type``, ``hf.Affiliation`` plus ``attributes``. It is
        always signed anew; if the user already exists its keys are kept.

        ``not_before`` defaults to 5 minutes ago, or to a day before ``not_after`` if
        that is earlier, and never to before the CA's own start: Fabric's MSP checks the
        chain at ``not_before + 1 s``. So ``not_after=now - 1 minute`` gives an expired
        certificate Fabric still recognises as the organization's. An explicit
        ``not_before`` before the CA's start is refused. ``not_after`` defaults to ten
        years after ``not_before``. Datetimes must be timezone-aware.
        """
        self._user(name, role, attributes, force=True, not_before=not_before, not_after=not_after)
        return self.user(name)

    def issue_tls_server(self, name: str, hosts: Sequence[str]) -> tuple[Path, Path]:
        """A TLS pair for a server (e.g. a chaincode server) under ``servers/<name>/``.

        Signed by the TLS CA, EKU serverAuth and clientAuth, SANs ``hosts`` (empty:
        ``localhost`` and ``127.0.0.1``).
        Returns ``(cert, key)``; ``ca.crt`` lies beside them. Idempotent.
        """
        base = self.org_dir / "servers" / _check_name(name, "server")
        cert, key = base / "server.crt", base / "server.key"
        _ensure_leaf(
            self._tlsca,
            cert,
            key,
            _Profile(name, None, tls=True, hosts=tuple(hosts) or _DEFAULT_HOSTS),
        )
        _write_public(base / "ca.crt", self._tlsca.pem)
        return cert, key

    def _write_verifying_msp(self) -> None:
        _write_public(self.msp_dir / "cacerts" / _CA_CERT, self._ca.pem)
        _write_public(self.msp_dir / "tlscacerts" / _TLSCA_CERT, self._tlsca.pem)
        _write_public(self.msp_dir / "config.yaml", _node_ous_config())

    def _local_msp(
        self,
        base: Path,
        sign: _Profile,
        tls: _Profile,
        tls_stem: str,
        *,
        force: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> None:
        msp, tls_dir = base / "msp", base / "tls"
        _ensure_leaf(
            self._ca,
            msp / "signcerts" / "cert.pem",
            msp / "keystore" / _KEY,
            sign,
            force=force,
            not_before=not_before,
            not_after=not_after,
        )
        _write_public(msp / "cacerts" / _CA_CERT, self._ca.pem)
        _write_public(msp / "tlscacerts" / _TLSCA_CERT, self._tlsca.pem)
        _write_public(msp / "config.yaml", _node_ous_config())
        _ensure_leaf(
            self._tlsca,
            tls_dir / f"{tls_stem}.crt",
            tls_dir / f"{tls_stem}.key",
            tls,
            force=force,
            not_before=not_before,
            not_after=not_after,
        )
        _write_public(tls_dir / "ca.crt", self._tlsca.pem)

    def _node(self, name: str, hosts: Sequence[str], ou: Literal["peer", "orderer"]) -> None:
        _check_name(name, "node")
        self._local_msp(
            self.org_dir / "nodes" / name,
            _Profile(name, ou, tls=False),
            _Profile(name, None, tls=True, hosts=tuple(hosts) or _DEFAULT_HOSTS),
            "server",
        )

    def _user(
        self,
        name: str,
        role: Literal["client", "admin"],
        attributes: Mapping[str, str],
        *,
        force: bool,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> None:
        _check_name(name, "user")
        if role not in ("client", "admin"):
            raise CryptoError(f"user {name!r}: role must be 'client' or 'admin', not {role!r}")
        reserved = sorted(k for k in attributes if k.startswith("hf."))
        if reserved:
            raise CryptoError(f"user {name!r}: attribute names {reserved} are reserved (hf.*)")
        attrs = {"hf.EnrollmentID": name, "hf.Type": role, "hf.Affiliation": "", **attributes}
        self._local_msp(
            self.org_dir / "users" / name,
            _Profile(name, role, tls=False, attributes=attrs),
            _Profile(name, None, tls=True),
            "client",
            force=force,
            not_before=not_before,
            not_after=not_after,
        )


def generate_org(
    base: Path,
    *,
    org_name: str,
    domain: str,
    nodes: Mapping[str, Sequence[str]],
    node_ou: Literal["peer", "orderer"],
    admins: Sequence[str] = ("Admin",),
    clients: Mapping[str, Mapping[str, str]] = {},
) -> OrgCrypto:
    """Create (or complete) the crypto material of one organization under ``base/org_name``.

    ``nodes`` maps each node name (e.g. ``"peer0.hkbank.example.com"``) to the hosts
    (DNS names or IP literals) of its TLS certificate's SANs (an empty sequence means
    ``localhost`` and ``127.0.0.1``); ``node_ou`` is their
    NodeOU. ``admins`` get OU ``admin``; ``clients`` map a user name to its extra
    Fabric CA attributes (e.g. ``{"minter": "true"}``) and get OU ``client``.

    Idempotent: existing CAs and keys are reused and only what is missing is created;
    a certificate whose OU, SANs or attributes no longer match is re-signed for its
    existing key. Raises :class:`CryptoError` for inconsistent material on disk.
    """
    if node_ou not in ("peer", "orderer"):
        raise CryptoError(f"org {org_name!r}: node_ou must be 'peer' or 'orderer', not {node_ou!r}")
    org_dir = Path(base) / _check_name(org_name, "organization")
    ca = _ensure_ca(org_dir / "ca", _CA_CERT, f"ca.{domain}", domain)
    tlsca = _ensure_ca(org_dir / "tlsca", _TLSCA_CERT, f"tlsca.{domain}", domain)
    org = OrgCrypto(org_dir, ca, tlsca)
    org._write_verifying_msp()
    for node_name, hosts in nodes.items():
        org._node(node_name, hosts, node_ou)
    for admin in admins:
        org._user(admin, "admin", {}, force=False)
    for client, attributes in clients.items():
        org._user(client, "client", attributes, force=False)
    return org


def load_org(base: Path, org_name: str) -> OrgCrypto:
    """Open the crypto material of an organization generated earlier.

    Raises :class:`CryptoError`, naming the path, if a CA certificate or key is
    missing or does not match.
    """
    org_dir = Path(base) / _check_name(org_name, "organization")
    if not org_dir.is_dir():
        raise CryptoError(f"{org_dir}: no crypto material for organization {org_name!r}")
    ca = _load_ca(org_dir / "ca", _CA_CERT)
    tlsca = _load_ca(org_dir / "tlsca", _TLSCA_CERT)
    return OrgCrypto(org_dir, ca, tlsca)
