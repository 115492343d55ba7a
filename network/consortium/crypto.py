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

This module decides which certificates an organization has and where they go; making one
certificate (and keeping its key) is :mod:`consortium.certificates`' job.

This module must not know the consortium's configuration format, start processes
or talk to the network; callers pass names, domains and hosts.

Errors: :class:`consortium.errors.CryptoError` (a ``NetworkError``, re-exported here)
for missing, inconsistent or invalid material; its message names the path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from consortium.certificates import (
    ATTRIBUTES_OID,
    CA_CERT_FILE,
    KEY_FILE,
    Authority,
    LeafSpec,
    check_name,
    ensure_ca,
    ensure_leaf,
    load_ca,
    node_ous_config,
    read_attributes,
    write_public,
)
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

_DEFAULT_HOSTS: Final = ("localhost", "127.0.0.1")
_TLSCA_CERT: Final = "tlsca-cert.pem"


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


# --------------------------------------------------------------------------- organization


class OrgCrypto:
    """One organization's crypto material on disk, and its CAs to issue more.

    Obtain one from :func:`generate_org` or :func:`load_org`.
    """

    def __init__(self, org_dir: Path, ca: Authority, tlsca: Authority) -> None:
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
        return self._identity("nodes", check_name(name, "node"), "server")

    def user(self, name: str) -> IdentityFiles:
        """The files of user ``name``; :class:`CryptoError` if it has none."""
        return self._identity("users", check_name(name, "user"), "client")

    def _identity(self, kind: str, name: str, tls_stem: str) -> IdentityFiles:
        base = self.org_dir / kind / name
        files = IdentityFiles(
            msp_dir=base / "msp",
            cert=base / "msp" / "signcerts" / "cert.pem",
            key=base / "msp" / "keystore" / KEY_FILE,
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
        base = self.org_dir / "servers" / check_name(name, "server")
        cert, key = base / "server.crt", base / "server.key"
        ensure_leaf(
            self._tlsca,
            cert,
            key,
            LeafSpec(name, None, tls=True, hosts=tuple(hosts) or _DEFAULT_HOSTS),
        )
        write_public(base / "ca.crt", self._tlsca.pem)
        return cert, key

    def _write_verifying_msp(self) -> None:
        write_public(self.msp_dir / "cacerts" / CA_CERT_FILE, self._ca.pem)
        write_public(self.msp_dir / "tlscacerts" / _TLSCA_CERT, self._tlsca.pem)
        write_public(self.msp_dir / "config.yaml", node_ous_config())

    def _local_msp(
        self,
        base: Path,
        sign: LeafSpec,
        tls: LeafSpec,
        tls_stem: str,
        *,
        force: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> None:
        msp, tls_dir = base / "msp", base / "tls"
        ensure_leaf(
            self._ca,
            msp / "signcerts" / "cert.pem",
            msp / "keystore" / KEY_FILE,
            sign,
            force=force,
            not_before=not_before,
            not_after=not_after,
        )
        write_public(msp / "cacerts" / CA_CERT_FILE, self._ca.pem)
        write_public(msp / "tlscacerts" / _TLSCA_CERT, self._tlsca.pem)
        write_public(msp / "config.yaml", node_ous_config())
        ensure_leaf(
            self._tlsca,
            tls_dir / f"{tls_stem}.crt",
            tls_dir / f"{tls_stem}.key",
            tls,
            force=force,
            not_before=not_before,
            not_after=not_after,
        )
        write_public(tls_dir / "ca.crt", self._tlsca.pem)

    def _node(self, name: str, hosts: Sequence[str], ou: Literal["peer", "orderer"]) -> None:
        check_name(name, "node")
        self._local_msp(
            self.org_dir / "nodes" / name,
            LeafSpec(name, ou, tls=False),
            LeafSpec(name, None, tls=True, hosts=tuple(hosts) or _DEFAULT_HOSTS),
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
        check_name(name, "user")
        if role not in ("client", "admin"):
            raise CryptoError(f"user {name!r}: role must be 'client' or 'admin', not {role!r}")
        reserved = sorted(k for k in attributes if k.startswith("hf."))
        if reserved:
            raise CryptoError(f"user {name!r}: attribute names {reserved} are reserved (hf.*)")
        attrs = {"hf.EnrollmentID": name, "hf.Type": role, "hf.Affiliation": "", **attributes}
        self._local_msp(
            self.org_dir / "users" / name,
            LeafSpec(name, role, tls=False, attributes=attrs),
            LeafSpec(name, None, tls=True),
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
    org_dir = Path(base) / check_name(org_name, "organization")
    ca = ensure_ca(org_dir / "ca", CA_CERT_FILE, f"ca.{domain}", domain)
    tlsca = ensure_ca(org_dir / "tlsca", _TLSCA_CERT, f"tlsca.{domain}", domain)
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
    org_dir = Path(base) / check_name(org_name, "organization")
    if not org_dir.is_dir():
        raise CryptoError(f"{org_dir}: no crypto material for organization {org_name!r}")
    ca = load_ca(org_dir / "ca", CA_CERT_FILE)
    tlsca = load_ca(org_dir / "tlsca", _TLSCA_CERT)
    return OrgCrypto(org_dir, ca, tlsca)
