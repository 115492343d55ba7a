"""``ClientIdentity``: who submitted the transaction, from the proposal's creator.

The creator is an ``msp.SerializedIdentity``: an MSP id and a PEM X.509 certificate.
Attributes are read from the Fabric CA extension (OID 1.2.3.4.5.6.7.8.1), whose raw value
is JSON ``{"attrs": {"name": "value", ...}}``.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from . import _protos as pb
from .errors import AttributeAssertionError, IdentityError

ATTRIBUTE_OID = ObjectIdentifier("1.2.3.4.5.6.7.8.1")
"""The X.509 extension in which Fabric CA puts attributes."""

# Short names fabric-chaincode-go's cid package uses when it prints a DN.
_DN_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.POSTAL_CODE: "POSTALCODE",
}


class CreatorSource(Protocol):
    """Anything with ``get_creator()``: both stubs."""

    def get_creator(self) -> bytes: ...


class ClientIdentity:
    """The transaction creator's MSP id, certificate, id and attributes."""

    def __init__(self, stub: CreatorSource) -> None:
        creator = stub.get_creator()
        if not creator:
            raise IdentityError("the transaction has no creator")
        self._msp_id, self._certificate, self._attributes = _parse_creator(bytes(creator))

    @property
    def msp_id(self) -> str:
        """The MSP id of the creator's organization."""
        return self._msp_id

    @property
    def certificate(self) -> x509.Certificate:
        """The creator's X.509 certificate."""
        return self._certificate

    @property
    def id(self) -> str:
        """A unique id within the MSP: base64 of ``x509::<subject DN>::<issuer DN>``.

        Built as fabric-chaincode-go's ``cid.GetID`` builds it, so it survives renewal.
        """
        text = f"x509::{_dn(self._certificate.subject)}::{_dn(self._certificate.issuer)}"
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    @property
    def attributes(self) -> dict[str, str]:
        """All Fabric CA attributes in the certificate."""
        return dict(self._attributes)

    def get_msp_id(self) -> str:
        """The MSP id (Go name)."""
        return self._msp_id

    def get_id(self) -> str:
        """The unique id (Go name)."""
        return self.id

    def get_attribute_value(self, name: str) -> str | None:
        """The value of an attribute, or None when the certificate does not carry it."""
        return self._attributes.get(name)

    def assert_attribute_value(self, name: str, value: str) -> None:
        """Raise ``AttributeAssertionError`` unless the attribute exists and equals ``value``."""
        actual = self._attributes.get(name)
        if actual is None:
            raise AttributeAssertionError(f"attribute {name!r} was not found")
        if actual != value:
            raise AttributeAssertionError(f"attribute {name!r} does not equal {value!r}")

    def has_ou_value(self, ou: str) -> bool:
        """True when the subject has this organizational unit."""
        return any(
            attr.value == ou
            for attr in self._certificate.subject.get_attributes_for_oid(
                NameOID.ORGANIZATIONAL_UNIT_NAME
            )
        )


def _attributes(certificate: x509.Certificate) -> dict[str, str]:
    try:
        extension = certificate.extensions.get_extension_for_oid(ATTRIBUTE_OID)
    except x509.ExtensionNotFound:
        return {}
    raw = extension.value
    if not isinstance(raw, x509.UnrecognizedExtension):
        raise IdentityError("the attribute extension has an unexpected type")
    try:
        document = json.loads(raw.value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IdentityError("the attribute extension is not JSON") from exc
    attrs = document.get("attrs") if isinstance(document, dict) else None
    if not isinstance(attrs, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()
    ):
        raise IdentityError('the attribute extension is not {"attrs": {name: value}}')
    return dict(attrs)


def _dn(name: x509.Name) -> str:
    parts = []
    for rdn in reversed(list(name.rdns)):
        values = []
        for attribute in rdn:
            short = _DN_NAMES.get(attribute.oid)
            if short is None:
                values.append(f"{attribute.oid.dotted_string}=#{_go_der(attribute.value).hex()}")
                continue
            values.append(f"{short}={_escape(str(attribute.value))}")
        parts.append("+".join(values))
    return ",".join(parts)


def _escape(value: str) -> str:
    out = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if (index == 0 and char in " #") or (index == last and char == " ") or char in ',+"\\<>;':
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")


def _go_der(value: str | bytes) -> bytes:
    """DER of a DN value as Go's ``asn1.Marshal`` writes a string: PrintableString if it
    can, else UTF8String (bytes values are written as OCTET STRING)."""
    if isinstance(value, bytes):
        tag, body = 0x04, value
    else:
        body = value.encode("utf-8")
        tag = 0x13 if all(char in _PRINTABLE for char in value) else 0x0C
    length = len(body)
    if length < 0x80:
        header = bytes([tag, length])
    else:
        size = length.to_bytes((length.bit_length() + 7) // 8, "big")
        header = bytes([tag, 0x80 | len(size)]) + size
    return header + body


@functools.lru_cache(maxsize=256)
def _parse_creator(creator: bytes) -> tuple[str, x509.Certificate, Mapping[str, str]]:
    """MSP id, certificate and attributes of a serialized identity.

    Cached by the identity's bytes: a bank's few operator certificates sign nearly every
    transaction, and parsing one costs more than the rest of a small transaction. The cached
    values are immutable (the attributes are copied before they leave the class).
    """
    try:
        serialized = pb.identities.SerializedIdentity.FromString(creator)
    except pb.DecodeError as exc:
        raise IdentityError(f"cannot decode the creator identity: {exc}") from exc
    try:
        certificate = x509.load_pem_x509_certificate(bytes(serialized.id_bytes))
    except ValueError as exc:
        raise IdentityError("the creator is not an X.509 PEM certificate") from exc
    return str(serialized.mspid), certificate, MappingProxyType(_attributes(certificate))
