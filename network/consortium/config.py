"""The consortium as data: load, validate and derive the network's topology.

``load(path)`` parses a YAML file (see ``config/consortium.yaml``) into frozen
dataclasses. Every problem is reported as a :class:`ConfigError` naming the
file, the field and what is wrong, before anything starts. Ports are derived
here, in one place, from ``base_port``: each node owns a slot of ten ports.

Slot layout (``port = base_port + 10 * slot + offset``):

* orderer *i* is slot *i*: listen +0, admin +1, operations +2;
* then every peer, bank by bank, then the regulator's: listen +0,
  peer chaincode listener +1, operations +2, the chaincode server it dials +3;
* then the peers of ``joined_banks``: the banks added to a running network by
  ``dtoken network add-bank``, in the order they joined. They come last so that no
  running node's port moves when a bank joins.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from dtoken_wire.fields import BANK_NAME_RE, CURRENCY_RE

from consortium.errors import ConfigError

__all__ = [
    "Bank",
    "ChaincodeSpec",
    "Consortium",
    "NamespaceLayout",
    "OrdererNode",
    "Ordering",
    "Org",
    "OrgKind",
    "PeerNode",
    "load",
    "parse",
]

# Organization names are bank names as the contract reads them (collection names carry them), and
# currencies are the contract's: both formats are the wire package's. The MSP id format here is
# stricter than the wire's on purpose: the consortium file fixes its ids, the contract accepts
# what a Fabric channel may hold.
_NAME = BANK_NAME_RE
_MSP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,39}$")
_CURRENCY = CURRENCY_RE
_CHANNEL = re.compile(r"^[a-z][a-z0-9.-]{0,48}$")
_CC_NAME = re.compile(r"^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_MODULE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
PORTS_PER_SLOT = 10


class OrgKind(StrEnum):
    BANK = "bank"
    REGULATOR = "regulator"
    ORDERER = "orderer"


@dataclass(frozen=True)
class PeerNode:
    """One peer of an organization, with every address derived from its slot."""

    name: str  # e.g. peer0.hkbank.dtoken.example
    org: str
    index: int
    host: str
    port: int
    chaincode_listen_port: int
    operations_port: int
    chaincode_server_port: int

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def chaincode_server_endpoint(self) -> str:
        return f"{self.host}:{self.chaincode_server_port}"


@dataclass(frozen=True)
class OrdererNode:
    name: str  # e.g. orderer0.ordering.dtoken.example
    index: int
    host: str
    port: int
    admin_port: int
    operations_port: int

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def admin_endpoint(self) -> str:
        return f"{self.host}:{self.admin_port}"


@dataclass(frozen=True)
class Org:
    """An organization: a bank, the regulator or the ordering organization."""

    name: str
    display_name: str
    msp_id: str
    kind: OrgKind
    domain: str  # <name>.<network domain>
    host: str
    peers: tuple[PeerNode, ...] = ()
    jurisdiction: str = ""
    currencies: tuple[str, ...] = ()


Bank = Org


@dataclass(frozen=True)
class Ordering:
    orderers: tuple[OrdererNode, ...]
    batch_timeout_ms: int
    max_message_count: int
    preferred_max_bytes: int
    absolute_max_bytes: int
    tick_interval_ms: int


class NamespaceLayout(StrEnum):
    """How the chaincode's collections are spread over namespaces (docs/architecture.md)."""

    SINGLE = "single"  # one namespace holding every collection
    NAMESPACES = "namespaces"  # one per bank, bounded pair namespaces (consortium.namespaces)


@dataclass(frozen=True)
class ChaincodeSpec:
    name: str
    version: str
    module: str  # MODULE:ATTR served by ``python -m fabshim serve``
    layout: NamespaceLayout = NamespaceLayout.SINGLE


@dataclass(frozen=True)
class Consortium:
    """The whole network, validated. ``source`` is the file it came from."""

    source: Path
    name: str
    domain: str
    channel: str
    host: str
    base_port: int
    chaincode: ChaincodeSpec
    ordering: Ordering
    orderer_org: Org
    banks: tuple[Org, ...]
    regulator: Org | None
    currencies: Mapping[str, int]
    #: How many of ``banks`` (the last ones) are listed under ``joined_banks``: they joined
    #: the running network after it was made (``dtoken network add-bank``).
    joined: int = 0

    @property
    def founding_banks(self) -> tuple[Org, ...]:
        """The banks the channel was created with (``banks:`` in the file)."""
        return self.banks[: len(self.banks) - self.joined]

    @property
    def joined_banks(self) -> tuple[Org, ...]:
        """The banks that joined the running network, in the order they joined."""
        return self.banks[len(self.banks) - self.joined :]

    @property
    def application_orgs(self) -> tuple[Org, ...]:
        """Banks, then the regulator if there is one: the channel's members."""
        return self.banks + ((self.regulator,) if self.regulator else ())

    @property
    def orgs(self) -> tuple[Org, ...]:
        return (self.orderer_org, *self.application_orgs)

    @property
    def peers(self) -> tuple[PeerNode, ...]:
        return tuple(p for org in self.application_orgs for p in org.peers)

    def org(self, name: str) -> Org:
        for org in self.orgs:
            if org.name == name:
                return org
        raise KeyError(f"no organization named {name!r} in {self.source}")

    def org_by_msp(self, msp_id: str) -> Org:
        for org in self.orgs:
            if org.msp_id == msp_id:
                return org
        raise KeyError(f"no organization with MSP id {msp_id!r} in {self.source}")


class _Reader:
    """Typed access to a YAML mapping that reports errors by file and field."""

    def __init__(self, source: Path, data: Mapping[str, Any], where: str = "") -> None:
        self.source = source
        self.data = data
        self.where = where

    def _field(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self._field(key), problem)

    def check_keys(self, allowed: Sequence[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(str(key), f"unknown field (allowed: {', '.join(allowed)})")

    def get(self, key: str, kind: type, default: Any = ...) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        if kind is int and isinstance(value, bool):
            raise self.fail(key, f"must be an integer, not {value!r}")
        if not isinstance(value, kind):
            raise self.fail(key, f"must be {kind.__name__}, not {type(value).__name__} {value!r}")
        return value

    def text(self, key: str, pattern: re.Pattern[str] | None = None, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"{value!r} does not match {pattern.pattern}")
        return str(value)

    def integer(self, key: str, low: int, high: int, default: Any = ...) -> int:
        value = int(self.get(key, int, default))
        if not low <= value <= high:
            raise self.fail(key, f"{value} is out of range [{low}, {high}]")
        return value

    def child(self, key: str, default: Any = ...) -> _Reader:
        value = self.get(key, dict, default)
        return _Reader(self.source, value, self._field(key))


def _host(reader: _Reader, key: str, default: str) -> str:
    value = reader.text(key, default=default)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _DOMAIN.match(value) and value != "localhost":
            raise reader.fail(key, f"{value!r} is neither an IP address nor a host name") from None
    return value


def load(path: str | Path) -> Consortium:
    """Read and validate a consortium file; raise :class:`ConfigError` on any problem."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"is not UTF-8 text (byte {exc.start})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"is not valid YAML: {exc}") from exc
    return parse(data, source)


def parse(data: Any, source: Path = Path("<memory>")) -> Consortium:
    """Validate already-parsed YAML data (``source`` names it in errors)."""
    if not isinstance(data, dict):
        raise ConfigError(source, "", "must be a YAML mapping at the top level")
    top = _Reader(source, data)
    top.check_keys(
        [
            "name",
            "domain",
            "channel",
            "host",
            "base_port",
            "chaincode",
            "ordering",
            "orderer_org",
            "currencies",
            "banks",
            "regulator",
            "joined_banks",
        ]
    )
    name = top.text("name", _NAME)
    domain = top.text("domain", _DOMAIN)
    channel = top.text("channel", _CHANNEL)
    host = _host(top, "host", "127.0.0.1")
    base_port = top.integer("base_port", 1024, 65000)

    cc = top.child("chaincode")
    cc.check_keys(["name", "version", "module", "layout"])
    layout_text = cc.text("layout", re.compile(r"^(single|namespaces)$"), default="single")
    chaincode = ChaincodeSpec(
        name=cc.text("name", _CC_NAME),
        version=str(cc.text("version", re.compile(r"^[\w.+-]{1,32}$"))),
        module=cc.text("module", _MODULE),
        layout=NamespaceLayout(layout_text),
    )

    currencies_raw = top.get("currencies", dict)
    if not currencies_raw:
        raise top.fail("currencies", "must list at least one currency")
    currencies: dict[str, int] = {}
    for code, decimals in currencies_raw.items():
        if not isinstance(code, str) or not _CURRENCY.match(code):
            raise top.fail(f"currencies.{code}", "a currency code is three capital letters")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 8:
            raise top.fail(
                f"currencies.{code}", f"decimals must be an integer 0..8, not {decimals!r}"
            )
        currencies[code] = decimals

    slot = 0

    def next_slot() -> int:
        nonlocal slot
        port = base_port + PORTS_PER_SLOT * slot
        slot += 1
        if port + PORTS_PER_SLOT > 65535:
            raise top.fail("base_port", f"{base_port} leaves no room for slot {slot}")
        return port

    ordering_r = top.child("ordering")
    ordering_r.check_keys(
        [
            "orderers",
            "batch_timeout_ms",
            "max_message_count",
            "preferred_max_bytes",
            "absolute_max_bytes",
            "tick_interval_ms",
        ]
    )
    oo = top.child("orderer_org")
    oo.check_keys(["name", "display_name", "msp_id", "host"])
    oo_name = oo.text("name", _NAME)
    oo_host = _host(oo, "host", host)
    n_orderers = ordering_r.integer("orderers", 1, 7)
    orderers = []
    for i in range(n_orderers):
        port = next_slot()
        orderers.append(
            OrdererNode(f"orderer{i}.{oo_name}.{domain}", i, oo_host, port, port + 1, port + 2)
        )
    absolute = ordering_r.integer("absolute_max_bytes", 1024, 100 * 2**20, 10 * 2**20)
    preferred = ordering_r.integer("preferred_max_bytes", 1024, 100 * 2**20, 2 * 2**20)
    if preferred > absolute:
        raise ordering_r.fail("preferred_max_bytes", "must not exceed absolute_max_bytes")
    ordering = Ordering(
        orderers=tuple(orderers),
        batch_timeout_ms=ordering_r.integer("batch_timeout_ms", 10, 10_000),
        max_message_count=ordering_r.integer("max_message_count", 1, 10_000),
        preferred_max_bytes=preferred,
        absolute_max_bytes=absolute,
        tick_interval_ms=ordering_r.integer("tick_interval_ms", 50, 5_000, 500),
    )
    orderer_org = Org(
        name=oo_name,
        display_name=oo.text("display_name", default=oo_name),
        msp_id=oo.text("msp_id", _MSP_ID),
        kind=OrgKind.ORDERER,
        domain=f"{oo_name}.{domain}",
        host=oo_host,
    )

    def peers_of(r: _Reader, org_name: str, org_host: str, count: int) -> tuple[PeerNode, ...]:
        out = []
        for i in range(count):
            port = next_slot()
            out.append(
                PeerNode(
                    name=f"peer{i}.{org_name}.{domain}",
                    org=org_name,
                    index=i,
                    host=org_host,
                    port=port,
                    chaincode_listen_port=port + 1,
                    operations_port=port + 2,
                    chaincode_server_port=port + 3,
                )
            )
        return tuple(out)

    def banks_of(key: str, required: bool) -> list[Org]:
        raw_list = top.get(key, list, ... if required else [])
        if required and not raw_list:
            raise top.fail(key, "must list at least one bank")
        out: list[Org] = []
        for i, raw in enumerate(raw_list):
            if not isinstance(raw, dict):
                raise top.fail(f"{key}[{i}]", "must be a mapping")
            b = _Reader(source, raw, f"{key}[{i}]")
            b.check_keys(
                ["name", "display_name", "msp_id", "jurisdiction", "currencies", "peers", "host"]
            )
            bank_name = b.text("name", _NAME)
            bank_currencies = b.get("currencies", list)
            if not bank_currencies:
                raise b.fail("currencies", "a bank issues at least one currency")
            for code in bank_currencies:
                if not isinstance(code, str) or code not in currencies:
                    raise b.fail(
                        "currencies", f"{code!r} is not listed under the top-level currencies"
                    )
            if len(set(bank_currencies)) != len(bank_currencies):
                raise b.fail("currencies", "lists a currency twice")
            bank_host = _host(b, "host", host)
            out.append(
                Org(
                    name=bank_name,
                    display_name=b.text("display_name", default=bank_name),
                    msp_id=b.text("msp_id", _MSP_ID),
                    kind=OrgKind.BANK,
                    domain=f"{bank_name}.{domain}",
                    host=bank_host,
                    peers=peers_of(b, bank_name, bank_host, b.integer("peers", 1, 4, 1)),
                    jurisdiction=b.text("jurisdiction", re.compile(r"^[A-Z]{2}$")),
                    currencies=tuple(bank_currencies),
                )
            )
        return out

    banks = banks_of("banks", required=True)

    regulator: Org | None = None
    reg_raw = top.get("regulator", dict, None)
    if reg_raw is not None:
        r = _Reader(source, reg_raw, "regulator")
        r.check_keys(["enabled", "name", "display_name", "msp_id", "peers", "host"])
        if r.get("enabled", bool, True):
            reg_name = r.text("name", _NAME)
            reg_host = _host(r, "host", host)
            regulator = Org(
                name=reg_name,
                display_name=r.text("display_name", default=reg_name),
                msp_id=r.text("msp_id", _MSP_ID),
                kind=OrgKind.REGULATOR,
                domain=f"{reg_name}.{domain}",
                host=reg_host,
                peers=peers_of(r, reg_name, reg_host, r.integer("peers", 1, 4, 1)),
            )

    # Slots after every node above: a joining bank moves no running node's port.
    joined = banks_of("joined_banks", required=False)
    consortium = Consortium(
        source=source,
        name=name,
        domain=domain,
        channel=channel,
        host=host,
        base_port=base_port,
        chaincode=chaincode,
        ordering=ordering,
        orderer_org=orderer_org,
        banks=tuple(banks + joined),
        regulator=regulator,
        currencies=currencies,
        joined=len(joined),
    )
    _check_unique(consortium, top)
    return consortium


def _check_unique(c: Consortium, top: _Reader) -> None:
    seen_names: dict[str, str] = {}
    seen_msp: dict[str, str] = {}
    for org in c.orgs:
        if org.name in seen_names:
            raise top.fail(
                f"{seen_names[org.name]}.name", f"organization name {org.name!r} is used twice"
            )
        seen_names[org.name] = org.kind.value
        if org.msp_id in seen_msp:
            raise top.fail(f"{org.name}.msp_id", f"MSP id {org.msp_id!r} is used twice")
        seen_msp[org.msp_id] = org.name
