"""The frame of every transaction and who may do what.

Owns: :class:`Tx` (ledger, caller, serving organization, deriver, time), :class:`Caller` (MSP
id and role attributes), the roles and event names, reading and writing the registry
(``init_network``, ``admit_bank``, ``get_registry``), and the access checks: a bank's server
endorses only its own bank's writes, the regulator's server only the regulator's, and a read is
served to the banks concerned and the regulator's auditor.

Must not: read or write an account, a transfer or any private record.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dtoken_wire.codec import canonical_json, format_timestamp

from ..errors import (
    AlreadyInitialized,
    CorruptState,
    InvalidArgument,
    NotAuthorized,
    NotFound,
    NotInitialized,
    ServerMisconfigured,
    WrongEndorser,
)
from ..keys import (
    REGISTRY_KEY,
    REGISTRY_SHA256_KEY,
    AccountKeys,
    Deriver,
    holds_collection,
    suspension_key,
    token_key,
)
from ..ledger import Ledger
from ..records import HistoryItem, HistoryRecord, Suspension
from ..registry import BankInfo, Registry, loads_object
from .declare import declare

ROLE_MINTER = "minter"
ROLE_OPERATOR = "operator"
ROLE_AUDITOR = "auditor"
ROLES = (ROLE_MINTER, ROLE_OPERATOR, ROLE_AUDITOR)


#: The NodeOU of an organization's administrators (``config.yaml`` of each MSP,
#: ``AdminOUIdentifier``; ``consortium.crypto`` issues the ``Admin`` user with it).
ADMIN_OU = "admin"


@dataclass(frozen=True)
class Caller:
    """The client that signed the proposal: its MSP id, the roles its certificate carries
    (a role is an attribute whose value is ``"true"``), and whether it is an administrator of
    its organization (its certificate's subject has the NodeOU ``admin``)."""

    msp_id: str
    roles: frozenset[str] = frozenset()
    admin: bool = False

    @classmethod
    def from_identity(
        cls,
        msp_id: str,
        get_attribute: Callable[[str], str | None],
        has_ou: Callable[[str], bool] | None = None,
    ) -> Caller:
        """Build from a ``ClientIdentity``-like triple.

        ``has_ou`` tells whether the certificate's subject carries an organizational unit
        (``ClientIdentity.has_ou_value``). The OU is read from the certificate the peer has
        already validated against the creator's MSP (the proposal's signature and chain), and
        with NodeOUs enabled that MSP accepts an ``admin`` OU only in certificates its own CA
        issued as administrators': a client cannot give itself the OU.
        """
        roles = frozenset(r for r in ROLES if get_attribute(r) == "true")
        return cls(msp_id, roles, has_ou is not None and has_ou(ADMIN_OU))


@dataclass
class SupplySum:
    """Movements of one kind of a transaction: their total and the transfer id of the only
    one (``None`` once there are several)."""

    amount: int
    transfer_id: str | None


@dataclass
class HistoryGroup:
    """One transaction's events on one account (or lane): the first, numbered, and the ones
    after it (``steps.record_history``)."""

    bank: str
    first: HistoryRecord
    more: list[HistoryItem] = field(default_factory=list)


@dataclass
class Tx:
    """Everything a transaction body needs."""

    ledger: Ledger
    caller: Caller
    server_msp: str
    deriver: Deriver
    tx_id: str
    now: datetime
    #: SHA-256 (hex) of the ``init_network`` argument this server's operator agreed to.
    registry_sha256: str | None = None
    #: The registry, if the server already read it from the ledger in an earlier transaction
    #: and it was then the one this server is pinned to; set by :func:`load_registry`
    #: otherwise.
    registry: Registry | None = None
    #: Whether :attr:`registry` is final for this server: the committed registry was written
    #: with the argument this server's operator pinned, so it changes no more until the
    #: operator gives a new pin (and restarts the server). Only a final registry is cached.
    registry_final: bool = False
    #: Each bank's account keys, once known in this transaction (``steps.account_keys``).
    keyrings: dict[str, AccountKeys] = field(default_factory=dict)
    #: The supply movements of this transaction, summed per (bank, currency, kind,
    #: counterparty) until the body ends (``steps.record_supply`` adds,
    #: ``steps.write_grouped`` writes one record each).
    supply: dict[tuple[str, str, str, str | None], SupplySum] = field(default_factory=dict)
    #: The history events of this transaction, per (bank, account, lane) until the body
    #: ends (``steps.record_history`` adds, ``steps.write_grouped`` writes one record each).
    history: dict[tuple[str, str, int], HistoryGroup] = field(default_factory=dict)
    #: The transfers this transaction opened, per pair collection and first transfer id
    #: until the body ends (``steps.write_outgoing_transfer`` adds, ``steps.write_grouped``
    #: writes one ``open/`` index entry per pair).
    opened: dict[str, list[str]] = field(default_factory=dict)
    _records: int = field(default=0, init=False)

    @property
    def at(self) -> str:
        """The transaction timestamp as stored."""
        return format_timestamp(self.now)

    def next_tag(self, purpose: str) -> str:
        """A fresh record tag: ``HMAC(secret, tx id, purpose, n)``."""
        self._records += 1
        return self.deriver.record_tag(self.tx_id, purpose, self._records)


def done(tx: Tx) -> dict[str, object]:
    # What every write returns: nothing private, not even an opaque id (a return value is in
    # the block; an id there would let anyone compute the key hash of its records).
    return {"tx_id": tx.tx_id}




def serving_bank(tx: Tx, registry: Registry) -> BankInfo:
    bank = registry.bank_by_msp(tx.server_msp)
    if bank is None:
        raise WrongEndorser("this chaincode server does not serve a bank")
    return bank


def authorize_bank_write(tx: Tx, registry: Registry, role: str) -> BankInfo:
    """The serving bank, if the client is that bank's and has ``role``.

    A bank's chaincode server endorses only its own bank's writes: a client of another
    organization is refused here (an honest server's courtesy; the collection policies are
    what actually stop a dishonest one).
    """
    bank = serving_bank(tx, registry)
    if tx.caller.msp_id != bank.msp_id:
        if registry.bank_by_msp(tx.caller.msp_id) or registry.is_regulator(tx.caller.msp_id):
            raise WrongEndorser(f"this server endorses only the writes of {bank.name}")
        raise NotAuthorized("the client's organization is not a member bank")
    if role not in tx.caller.roles:
        raise NotAuthorized(f"the {role} role is required")
    return bank


def authorize_regulator_write(tx: Tx, registry: Registry) -> str:
    """The regulator's MSP id, if the client is the regulator's auditor on its own server."""
    regulator = registry.regulator_msp_id
    if regulator is None:
        raise NotAuthorized("the network has no regulator")
    if tx.caller.msp_id != regulator:
        raise NotAuthorized("only the regulator writes holds")
    if tx.server_msp != regulator:
        raise WrongEndorser("only the regulator's server endorses holds")
    if ROLE_AUDITOR not in tx.caller.roles:
        raise NotAuthorized(f"the {ROLE_AUDITOR} role is required")
    return regulator


def authorize_read(tx: Tx, registry: Registry, banks: Sequence[BankInfo]) -> None:
    """Reading data shared by ``banks`` (one bank's collection, or a pair's two).

    Allowed to a client of one of those banks with any role, and to the regulator's auditor;
    served only by a peer that is a member (one of those banks, or the regulator).
    """
    caller = tx.caller
    if any(b.msp_id == caller.msp_id for b in banks):
        if not caller.roles:
            raise NotAuthorized("a role (operator, minter or auditor) is required")
    elif registry.is_regulator(caller.msp_id):
        if ROLE_AUDITOR not in caller.roles:
            raise NotAuthorized(f"the {ROLE_AUDITOR} role is required")
    else:
        raise NotAuthorized("only the banks concerned and the regulator read this")
    if not (any(b.msp_id == tx.server_msp for b in banks) or registry.is_regulator(tx.server_msp)):
        raise WrongEndorser("this peer is not a member of the collection")


def target_bank(tx: Tx, registry: Registry, name: str | None) -> BankInfo:
    """The bank a read is about: named, or the caller's own."""
    if name is None:
        bank = registry.bank_by_msp(tx.caller.msp_id)
        if bank is None:
            raise InvalidArgument("request.bank is required for a client that is not a bank's")
        return bank
    return member_bank(registry, name, "bank")


def member_bank(registry: Registry, name: str, field_name: str) -> BankInfo:
    bank = registry.bank(name)
    if bank is None:
        raise NotFound(f"request.{field_name} is not a member bank")
    return bank


def other_bank(registry: Registry, own: BankInfo, name: str, field_name: str) -> BankInfo:
    other = member_bank(registry, name, field_name)
    if other.name == own.name:
        raise InvalidArgument(f"request.{field_name} must be another bank")
    return other




async def load_registry(tx: Tx) -> Registry:
    """The registry (``NOT_INITIALIZED`` before ``init_network``).

    A server hands the registry to later transactions (``tx.registry``) only once it is final
    (:attr:`Tx.registry_final`): the committed registry was written with the argument this
    server is pinned to. Until then (an operator gave a new pin and ``admit_bank`` has not
    committed yet) every transaction reads it, so a registry growth is seen at once and a
    transaction simulated before it conflicts with it (both keys are in its read set). A
    transaction given a cached registry does not read the key (no rule between banks relies
    on it being in the read set).
    """
    if tx.registry is not None:
        return tx.registry
    registry, written = await _read_registry(tx)
    if registry is None:
        raise NotInitialized("init_network has not run")
    tx.registry = registry
    tx.registry_final = written is not None and tx.registry_sha256 is not None and (
        hmac.compare_digest(written, tx.registry_sha256))
    return registry


async def _read_registry(tx: Tx) -> tuple[Registry | None, str | None]:
    """The committed registry and the SHA-256 of the argument that wrote it (``None`` if not
    recorded: a registry written before ``admit_bank`` existed), read from the ledger."""
    raw = await tx.ledger.get_public(REGISTRY_KEY)
    if raw is None:
        return None, None
    registry = Registry.parse(loads_object(raw, "registry", CorruptState), CorruptState)
    digest = await tx.ledger.get_public(REGISTRY_SHA256_KEY)
    if digest is None:
        return registry, None
    try:
        written = digest.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptState("registry_sha256 is not ASCII") from None
    return registry, written


def _pinned_argument(tx: Tx, name: str, argument: str) -> str:
    """Refuse unless this server has a pin and ``argument`` is what it pins; the digest."""
    if tx.registry_sha256 is None:
        raise ServerMisconfigured(f"this server has no registry pin: it endorses no {name}")
    if not tx.caller.admin:
        raise NotAuthorized(f"{name} needs an administrator (NodeOU {ADMIN_OU})")
    digest = hashlib.sha256(argument.encode("utf-8")).hexdigest()
    if not hmac.compare_digest(digest, tx.registry_sha256):
        raise NotAuthorized("the registry is not the one this server's operator agreed to")
    return digest


async def init_network(tx: Tx, argument: str) -> dict[str, object]:
    """Write the registry and every token definition, once, endorsed by every bank.

    Only as the consortium agreed: the server endorses only the argument whose SHA-256 (of its
    UTF-8 bytes) its operator pinned (``DTOKEN_REGISTRY_SHA256``), and only for an
    administrator (NodeOU ``admin``) of an organization in that registry. A client of any
    organization could otherwise race the bootstrap with a registry of its own (one without a
    regulator disables every hold for good). The chaincode-level policy makes every bank
    endorse, so every bank's pin must agree.
    """
    digest = _pinned_argument(tx, "init_network", argument)
    if await tx.ledger.get_public(REGISTRY_KEY) is not None:
        raise AlreadyInitialized("the registry exists already")
    registry = Registry.parse(loads_object(argument, "init_network argument", InvalidArgument),
                              InvalidArgument)
    if registry.bank_by_msp(tx.server_msp) is None and not registry.is_regulator(tx.server_msp):
        raise WrongEndorser("this server's organization is not in the registry")
    if registry.bank_by_msp(tx.caller.msp_id) is None and not registry.is_regulator(
        tx.caller.msp_id
    ):
        raise NotAuthorized("the client's organization is not in the registry")
    tx.ledger.put_public(REGISTRY_KEY, canonical_json(registry.to_json()))
    tx.ledger.put_public(REGISTRY_SHA256_KEY, digest.encode("ascii"))
    count = 0
    for token in registry.tokens():
        tx.ledger.put_public(token_key(token.issuer, token.currency),
                             canonical_json(token.to_json()))
        count += 1
    return {"tx_id": tx.tx_id, "banks": len(registry.banks), "tokens": count}


async def admit_bank(tx: Tx, argument: str) -> dict[str, object]:
    """Grow this organization's registry by one bank that joined the network.

    The registry in a namespace is its organization's own statement of whom it deals with, so
    only that organization grows it: the server endorses only for an administrator of its own
    organization, only the argument its operator pinned (``DTOKEN_REGISTRY_SHA256``, the
    same bytes as ``init_network``'s), and only when that registry is exactly the committed
    one with one bank appended to the join order (no member, currency or regulator changed
    or dropped). Under the namespace layout the namespace's policy ``OR('<org>.peer')``
    means no other organization can get such a write committed there; on the single
    namespace the chaincode-level policy needs every bank's peer, as for ``init_network``.
    """
    digest = _pinned_argument(tx, "admit_bank", argument)
    if tx.caller.msp_id != tx.server_msp:
        raise NotAuthorized("admit_bank needs an administrator of this server's organization")
    old, _ = await _read_registry(tx)
    if old is None:
        raise NotInitialized("init_network has not run")
    new = Registry.parse(loads_object(argument, "admit_bank argument", InvalidArgument),
                         InvalidArgument)
    if new.to_json() == old.to_json():
        raise AlreadyInitialized("the registry lists these banks already")
    added = admitted_bank(old, new)
    tx.ledger.put_public(REGISTRY_KEY, canonical_json(new.to_json()))
    tx.ledger.put_public(REGISTRY_SHA256_KEY, digest.encode("ascii"))
    count = 0
    for token in new.tokens():
        if token.issuer == added.name:
            tx.ledger.put_public(token_key(token.issuer, token.currency),
                                 canonical_json(token.to_json()))
            count += 1
    # The new registry routes this transaction's writes (the joined bank's collection, under
    # the layout) but is not final: not cached, as this write is not committed yet.
    tx.registry = new
    tx.registry_final = False
    told = await _tell_suspensions(tx, old, added) if old.is_regulator(tx.server_msp) else 0
    return {"tx_id": tx.tx_id, "banks": len(new.banks), "tokens": count, "admitted": added.name,
            "suspensions_told": told}


async def _tell_suspensions(tx: Tx, old: Registry, added: BankInfo) -> int:
    """The regulator's admission also tells the joining bank of every suspension in force:
    each suspended bank's own flag (in its own ``holds-<bank>``, written there with every
    other bank's) copied into ``holds-<added>``, which only the regulator's peers endorse.
    Without it the joined bank's contract would take payments from a suspended bank."""
    flags = [await tx.ledger.get(Suspension, holds_collection(b.name), suspension_key(b.name))
             for b in old.banks]
    told = [f for f in flags if f is not None and f.suspended]
    for flag in told:
        tx.ledger.put(holds_collection(added.name), suspension_key(flag.bank), flag)
    return len(told)


def admitted_bank(old: Registry, new: Registry) -> BankInfo:
    """The one bank ``new`` appends to ``old``; ``INVALID_ARGUMENT`` naming the rule broken
    when ``new`` is anything but ``old`` plus one bank at the end of the join order."""
    if new.regulator_msp_id != old.regulator_msp_id:
        raise InvalidArgument("admit_bank argument.regulator_msp_id must not change")
    currencies = dict(new.currencies)
    if any(currencies.get(code) != decimals for code, decimals in old.currencies):
        raise InvalidArgument(
            "admit_bank argument.currencies must keep every currency and its decimals")
    before, after = list(old.joined()), list(new.joined())
    if len(after) != len(before) + 1 or after[:-1] != before:
        raise InvalidArgument(
            "admit_bank argument.banks must be the registry's banks with one bank appended")
    if any(new.bank(b.name) != b for b in old.banks):
        raise InvalidArgument("admit_bank argument.banks must not change a member bank")
    added = new.bank(after[-1])
    assert added is not None  # Registry.parse: join_order names every bank
    new_currencies = {c for c in currencies if old.decimals(c) is None}
    if not new_currencies <= set(added.currencies):
        raise InvalidArgument(
            "admit_bank argument.currencies may add only currencies the new bank issues")
    return added


@declare(evaluate=True)
async def get_registry(tx: Tx) -> dict[str, object]:
    """The registry and the token definitions (public)."""
    registry = await load_registry(tx)
    return {**registry.to_json(), "tokens": [t.to_json() for t in registry.tokens()]}
