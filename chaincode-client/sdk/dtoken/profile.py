"""The connection profile of one organization, loaded and validated once.

``dtoken network status --json`` lists each organization's profile
(``orgs[].connection_profile``, i.e. ``<state>/profiles/<org>.json``). It names the peer's
Gateway endpoint and TLS CA, the channel and chaincode, the organization's client identities
(certificate, key, role attributes), the file of the client secret the SDK derives transaction
nonces from, the member organizations and the currencies with their decimals, and the
namespace layout (``namespace_layout``: ``single``, one chaincode namespace for every bank, or
``namespaces``, where ``chaincode`` is the organization's own namespace ``<cc>-<org>``;
docs/architecture.md, "Namespace layout").

Errors are :class:`~dtoken.errors.ProfileError` naming the file, the field and the problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtoken_wire.namespaces import collection_namespace

from dtoken.errors import ProfileError, UsageError

__all__ = ["LAYOUTS", "ROLES", "IdentityFiles", "Organization", "Profile"]

#: The role attributes the contract knows (a role is an attribute whose value is "true").
ROLES = ("minter", "operator", "auditor")
#: The namespace layouts (the consortium file's ``chaincode.layout``); ``single`` when absent.
LAYOUTS = ("single", "namespaces")
_MIN_SECRET = 16


@dataclass(frozen=True)
class IdentityFiles:
    """One client identity of the organization: its files and certificate attributes."""

    name: str
    cert: Path
    key: Path
    msp_dir: Path | None
    tls_cert: Path | None
    tls_key: Path | None
    attributes: Mapping[str, str]

    @property
    def roles(self) -> frozenset[str]:
        """The contract roles this certificate carries."""
        return frozenset(r for r in ROLES if self.attributes.get(r) == "true")


@dataclass(frozen=True)
class Organization:
    """A member organization of the network (a bank or the regulator)."""

    name: str
    msp_id: str
    kind: str
    currencies: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    """A validated connection profile; see :meth:`load`."""

    path: Path
    network: str
    org: str
    msp_id: str
    kind: str
    channel: str
    chaincode: str
    gateway_endpoint: str
    gateway_server_name: str | None
    gateway_tls_ca: Path
    identities: Mapping[str, IdentityFiles]
    client_secret_file: Path
    organizations: Mapping[str, Organization]
    currencies: Mapping[str, int]
    namespace_layout: str = "single"
    """``single`` or ``namespaces`` (:data:`LAYOUTS`)."""

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """Read and validate ``path`` (a JSON connection profile)."""
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProfileError(f"{source}: no such connection profile") from None
        except OSError as error:
            raise ProfileError(f"{source}: cannot read: {error}") from error
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ProfileError(f"{source}: not JSON: {error}") from error
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: object, source: Path) -> Profile:
        """Validate an already parsed profile; ``source`` names it in errors."""
        r = _Reader(source)
        top = r.obj(data, "")
        gateway = r.obj(top.get("gateway"), "gateway")
        identities: dict[str, IdentityFiles] = {}
        for name, raw in r.obj(top.get("identities"), "identities").items():
            where = f"identities.{name}"
            ident = r.obj(raw, where)
            attrs = r.obj(ident.get("attributes", {}), f"{where}.attributes")
            identities[name] = IdentityFiles(
                name=name,
                cert=r.path(ident, "cert", where),
                key=r.path(ident, "key", where),
                msp_dir=r.opt_path(ident, "msp_dir", where),
                tls_cert=r.opt_path(ident, "tls_cert", where),
                tls_key=r.opt_path(ident, "tls_key", where),
                attributes={str(k): str(v) for k, v in attrs.items()},
            )
        organizations: dict[str, Organization] = {}
        for name, raw in r.obj(top.get("organizations"), "organizations").items():
            where = f"organizations.{name}"
            org = r.obj(raw, where)
            issued = org.get("currencies", [])
            if not isinstance(issued, list) or not all(isinstance(c, str) for c in issued):
                r.fail(f"{where}.currencies", "must be a list of currency codes")
            organizations[name] = Organization(
                name=name,
                msp_id=r.str_(org, "msp_id", where),
                kind=r.str_(org, "kind", where),
                currencies=tuple(issued),
            )
        currencies_raw = r.obj(top.get("currencies"), "currencies")
        currencies: dict[str, int] = {}
        for code, decimals in currencies_raw.items():
            if type(decimals) is not int or not 0 <= decimals <= 18:
                r.fail(f"currencies.{code}", "must be a number of decimals (0 to 18)")
            currencies[code] = decimals
        layout = top.get("namespace_layout", "single")
        if layout not in LAYOUTS:
            r.fail("namespace_layout", f"must be one of {', '.join(LAYOUTS)}, not {layout!r}")
        profile = cls(
            path=source,
            network=r.str_(top, "network", ""),
            org=r.str_(top, "org", ""),
            msp_id=r.str_(top, "msp_id", ""),
            kind=r.str_(top, "kind", ""),
            channel=r.str_(top, "channel", ""),
            chaincode=r.str_(top, "chaincode", ""),
            gateway_endpoint=r.str_(gateway, "endpoint", "gateway"),
            gateway_server_name=r.opt_str(gateway, "server_name", "gateway"),
            gateway_tls_ca=r.path(gateway, "tls_ca_cert", "gateway"),
            identities=identities,
            client_secret_file=r.path(top, "client_secret_file", ""),
            organizations=organizations,
            currencies=currencies,
            namespace_layout=str(layout),
        )
        if profile.org not in organizations:
            r.fail("organizations", f"does not list the profile's own organization {profile.org}")
        if profile.has_namespaces and not profile.chaincode.endswith(f"-{profile.org}"):
            r.fail("chaincode", f"must be the organization's own namespace <cc>-{profile.org} "
                                f"under the namespace layout, not {profile.chaincode!r}")
        return profile

    @property
    def state_dir(self) -> Path:
        """The network's state folder (the profile lives in ``<state>/profiles/``)."""
        return self.path.resolve().parent.parent

    @property
    def has_namespaces(self) -> bool:
        """True under the namespace layout (one namespace per organization)."""
        return self.namespace_layout == "namespaces"

    @property
    def chaincode_base(self) -> str:
        """The consortium's chaincode name (``dtoken``): under the namespace layout, what
        every organization's namespace ``<cc>-<org>`` starts with; else ``chaincode``."""
        if self.has_namespaces:
            return self.chaincode[: -len(self.org) - 1]
        return self.chaincode

    def namespace_of(self, collection: str) -> str:
        """The chaincode namespace whose private data holds ``collection`` (``acct-``,
        ``holds-``, ``pair-``): :attr:`chaincode` on the single namespace; under the layout
        the one :func:`dtoken_wire.namespaces.collection_namespace` places it in, with the
        banks in this profile's order (the consortium's: the order they joined).
        ``UsageError`` for a collection of a bank this profile does not know (one that
        joined after it was written: write the profiles again)."""
        if not self.has_namespaces:
            return self.chaincode
        try:
            return collection_namespace(self.chaincode_base, self.banks(), collection)
        except ValueError as error:
            raise UsageError(f"no namespace of network {self.network} holds collection "
                             f"{collection!r}: {error}") from None

    @property
    def is_regulator(self) -> bool:
        return self.kind == "regulator"

    def identity(self, name: str) -> IdentityFiles:
        """The identity ``name`` (``ProfileError`` listing the known ones if absent)."""
        found = self.identities.get(name)
        if found is None:
            known = ", ".join(sorted(self.identities)) or "none"
            raise ProfileError(f"{self.path}: {self.org} has no identity {name!r} (has: {known})")
        return found

    def client_secret(self) -> bytes:
        """The client secret the SDK derives transaction nonces from."""
        try:
            secret = self.client_secret_file.read_bytes()
        except OSError as error:
            raise ProfileError(
                f"{self.path}: client_secret_file {self.client_secret_file}: {error}"
            ) from error
        if len(secret) < _MIN_SECRET:
            raise ProfileError(
                f"{self.path}: client_secret_file holds {len(secret)} bytes, "
                f"at least {_MIN_SECRET} are needed"
            )
        return secret

    def bank(self, name: str) -> Organization:
        """The member bank ``name`` (``UsageError`` if the network has no such bank)."""
        org = self.organizations.get(name)
        if org is None or org.kind != "bank":
            known = ", ".join(sorted(self.banks())) or "none"
            raise UsageError(f"{name!r} is not a bank of network {self.network} (banks: {known})")
        return org

    def banks(self) -> list[str]:
        """The names of the member banks."""
        return [o.name for o in self.organizations.values() if o.kind == "bank"]

    def regulator(self) -> Organization | None:
        """The regulator organization, if the network has one."""
        for org in self.organizations.values():
            if org.kind == "regulator":
                return org
        return None


class _Reader:
    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> None:
        raise ProfileError(f"{self.source}: {field or 'the profile'} {problem}")

    def obj(self, value: object, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(field, "must be a JSON object")
        assert isinstance(value, dict)
        return value

    def str_(self, obj: Mapping[str, Any], key: str, where: str) -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            self.fail(f"{where}.{key}".lstrip("."), "must be a non-empty string")
        assert isinstance(value, str)
        return value

    def opt_str(self, obj: Mapping[str, Any], key: str, where: str) -> str | None:
        if obj.get(key) in (None, ""):
            return None
        return self.str_(obj, key, where)

    def path(self, obj: Mapping[str, Any], key: str, where: str) -> Path:
        return Path(self.str_(obj, key, where))

    def opt_path(self, obj: Mapping[str, Any], key: str, where: str) -> Path | None:
        value = self.opt_str(obj, key, where)
        return Path(value) if value is not None else None
