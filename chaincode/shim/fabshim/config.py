"""Chaincode server configuration: the one place that reads the environment.

Explicit arguments win over the environment. TLS is on unless explicitly disabled, and a
missing or unreadable TLS file is an error naming the variable (or flag) and the path.

Environment variables:

``CHAINCODE_ID``               the package id the peer knows the chaincode by (required)
``CHAINCODE_SERVER_ADDRESS``   ``host:port`` to listen on (required)
``CHAINCODE_TLS_DISABLED``     ``true`` disables TLS; ``false`` or unset requires it
``CHAINCODE_TLS_CERT``         PEM file: the server certificate (chain)
``CHAINCODE_TLS_KEY``          PEM file: its private key
``CHAINCODE_CLIENT_CA_CERT``   PEM file: when set, clients must present a certificate it signed
``CHAINCODE_WRITE_BATCH``      ``false`` declines write batching (WRITE_BATCH_STATE) even when
                               the peer offers it; ``true`` or unset uses it when offered
``CHAINCODE_MULTI_KEY_READS``  ``false`` declines multi-key reads (GET_STATE_MULTIPLE) even when
                               the peer offers them; ``true`` or unset uses them when offered
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .errors import ConfigError

ENV_CHAINCODE_ID = "CHAINCODE_ID"
ENV_SERVER_ADDRESS = "CHAINCODE_SERVER_ADDRESS"
ENV_TLS_DISABLED = "CHAINCODE_TLS_DISABLED"
ENV_TLS_CERT = "CHAINCODE_TLS_CERT"
ENV_TLS_KEY = "CHAINCODE_TLS_KEY"
ENV_CLIENT_CA_CERT = "CHAINCODE_CLIENT_CA_CERT"
ENV_WRITE_BATCH = "CHAINCODE_WRITE_BATCH"
ENV_MULTI_KEY_READS = "CHAINCODE_MULTI_KEY_READS"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


@dataclass(frozen=True, slots=True)
class TLSMaterial:
    """PEM bytes for the server's TLS; ``client_ca_pem`` set means client auth required."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    client_ca_pem: bytes | None = None

    @property
    def client_auth_required(self) -> bool:
        """True when clients must present a certificate signed by ``client_ca_pem``."""
        return self.client_ca_pem is not None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the chaincode server needs; build it with :meth:`load` or directly."""

    chaincode_id: str
    address: str
    tls: TLSMaterial | None
    write_batching: bool = True
    """Use WRITE_BATCH_STATE when the peer offers it."""
    multi_key_reads: bool = True
    """Use GET_STATE_MULTIPLE when the peer offers it."""

    def __post_init__(self) -> None:
        if not self.chaincode_id:
            raise ConfigError("chaincode id is empty")
        parse_address(self.address, "address")

    @property
    def host(self) -> str:
        """The host part of :attr:`address`."""
        return parse_address(self.address, "address")[0]

    @property
    def port(self) -> int:
        """The port part of :attr:`address` (0 asks the system for a free port)."""
        return parse_address(self.address, "address")[1]

    @classmethod
    def load(
        cls,
        *,
        chaincode_id: str | None = None,
        address: str | None = None,
        tls_disabled: bool | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        client_ca_cert: str | os.PathLike[str] | None = None,
        write_batching: bool | None = None,
        multi_key_reads: bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ServerConfig:
        """Build a config from explicit arguments, falling back to the environment.

        ``write_batching=None`` reads ``CHAINCODE_WRITE_BATCH`` and ``multi_key_reads=None``
        reads ``CHAINCODE_MULTI_KEY_READS`` (unset or empty: on).
        """
        env = os.environ if environ is None else environ
        cc_id, _ = _pick(chaincode_id, env, ENV_CHAINCODE_ID, "--id")
        addr, addr_source = _pick(address, env, ENV_SERVER_ADDRESS, "--address")
        if not cc_id:
            raise ConfigError(f"chaincode id missing: set {ENV_CHAINCODE_ID} or pass --id")
        if not addr:
            raise ConfigError(f"listen address missing: set {ENV_SERVER_ADDRESS} or pass --address")
        parse_address(addr, addr_source)

        if tls_disabled is None:
            tls_disabled = _parse_bool(env.get(ENV_TLS_DISABLED, ""), ENV_TLS_DISABLED)
        if write_batching is None:
            raw_batch = env.get(ENV_WRITE_BATCH, "")
            write_batching = not raw_batch.strip() or _parse_bool(raw_batch, ENV_WRITE_BATCH)
        if multi_key_reads is None:
            raw_multi = env.get(ENV_MULTI_KEY_READS, "")
            multi_key_reads = not raw_multi.strip() or _parse_bool(raw_multi, ENV_MULTI_KEY_READS)
        tls: TLSMaterial | None = None
        if not tls_disabled:
            cert_path, cert_source = _pick(tls_cert, env, ENV_TLS_CERT, "--tls-cert")
            key_path, key_source = _pick(tls_key, env, ENV_TLS_KEY, "--tls-key")
            ca_path, ca_source = _pick(client_ca_cert, env, ENV_CLIENT_CA_CERT, "--client-ca-cert")
            if not cert_path or not key_path:
                raise ConfigError(
                    f"TLS is required: set {ENV_TLS_CERT} and {ENV_TLS_KEY} "
                    f"(or --tls-cert/--tls-key), or disable TLS with {ENV_TLS_DISABLED}=true"
                )
            tls = load_tls(
                cert_path,
                key_path,
                ca_path or None,
                sources=(cert_source, key_source, ca_source),
            )
        return cls(
            chaincode_id=cc_id,
            address=addr,
            tls=tls,
            write_batching=write_batching,
            multi_key_reads=multi_key_reads,
        )


def load_tls(
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    client_ca_path: str | os.PathLike[str] | None = None,
    *,
    sources: tuple[str, str, str] = ("tls_cert", "tls_key", "client_ca_cert"),
) -> TLSMaterial:
    """Read and check the TLS files: the certificate and key must parse and match."""
    cert_source, key_source, ca_source = sources
    cert_pem = _read(cert_path, cert_source)
    key_pem = _read(key_path, key_source)
    try:
        certificate = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError as exc:
        raise ConfigError(f"{cert_source} ({cert_path}): not a PEM certificate: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key_source} ({key_path}): not an unencrypted PEM private key") from exc
    public_der = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, public_der
    ) != certificate.public_key().public_bytes(serialization.Encoding.DER, public_der):
        raise ConfigError(
            f"{key_source} ({key_path}) does not match the certificate in {cert_source}"
        )
    client_ca_pem = None
    if client_ca_path is not None:
        client_ca_pem = _read(client_ca_path, ca_source)
        try:
            x509.load_pem_x509_certificates(client_ca_pem)
        except ValueError as exc:
            raise ConfigError(
                f"{ca_source} ({client_ca_path}): not a PEM certificate: {exc}"
            ) from exc
    return TLSMaterial(cert_pem=cert_pem, key_pem=key_pem, client_ca_pem=client_ca_pem)


def parse_address(address: str, source: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too); the port must be 0-65535."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"{source}: {address!r} is not host:port")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"{source}: port {port} is out of range")
    return host, port


def _pick(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str], variable: str, flag: str
) -> tuple[str, str]:
    if explicit is not None:
        return os.fspath(explicit), flag
    return env.get(variable, ""), variable


def _parse_bool(text: str, source: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{source}: {text!r} is neither true nor false")


def _read(path: str | os.PathLike[str], source: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source} ({path}): cannot read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise ConfigError(f"{source} ({path}): file is empty")
    return data
