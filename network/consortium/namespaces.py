"""The chaincode definitions of the namespace layout, and who installs and approves each.

The layout itself (names, which collection lives where) is :mod:`dtoken_wire.namespaces`;
this module adds what only the network tooling needs: each definition's collections config,
chaincode-level policy, the package that serves it, the organizations whose peers install
and run it, and the organizations that approve it (docs/architecture.md, "Namespace layout").

* ``<cc>-<bank>``: ``acct-<bank>`` (members the bank and the regulator, endorsed by the
  bank's peers) and ``holds-<bank>`` (members the bank and the regulator, endorsed by the
  regulator's peers); chaincode-level policy ``OR('<bank>.peer')``. The bank runs the
  contract there (:attr:`Package.CONTRACT`); the regulator runs the storage chaincode there
  (:attr:`Package.STORAGE`: it reaches the bank's collections from its own namespace).
* ``<cc>-pairs-<bank>-<chunk>``: ``pair-<a>-<b>`` for each pair it holds (members *a*, *b*
  and the regulator, endorsed by *a*'s peers); chaincode-level policy ``AND`` of its banks'
  peers (no honest write is ever checked against it: every write has a collection policy).
  Its banks and the regulator run the storage chaincode there.
* ``<cc>-<regulator>`` (with a regulator): no collection; chaincode-level policy
  ``OR('<regulator>.peer')``; the regulator runs the contract there: the top level of its
  transactions and its own copy of the registry.

Every definition is approved by the organizations that install it (with their own package
id) and, to reach the channel's ``LifecycleEndorsement`` (``MAJORITY Endorsement``), by the
first other application organizations in the consortium's order (without a package).

Must not: run Fabric's tools, write files or talk to a node (that is
:mod:`consortium.lifecycle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dtoken_wire.namespaces import PAIR_CHUNK, bank_namespace, pair_namespaces_of

from consortium.channel import collection_entry
from consortium.config import Consortium, Org

__all__ = [
    "Definition",
    "Package",
    "added_by",
    "definitions",
    "installed_by",
    "majority",
]


class Package(StrEnum):
    """Which chaincode package serves a namespace."""

    CONTRACT = "contract"  # the deposit-token contract: every transaction's top level
    STORAGE = "storage"  # the thin pair storage, called from a bank's namespace


@dataclass(frozen=True)
class Definition:
    """One chaincode definition (sequence 1, never upgraded) of the layout.

    ``bank`` is the organization whose namespace it is (a bank or the regulator), or the
    bank that brought the pair namespace. ``installers`` are the organizations whose peers
    install a package for it and run it, each with the package :meth:`package_of` names;
    ``approvers`` are the installers first, then the others needed for a majority."""

    name: str
    bank: str
    policy: str  # chaincode-level signature policy
    collections: tuple[dict[str, Any], ...]
    installers: tuple[str, ...]
    approvers: tuple[str, ...]
    contract_runner: str | None = None  # the organization that runs the contract here

    @property
    def collection_names(self) -> list[str]:
        return [c["name"] for c in self.collections]

    def package_of(self, org: str) -> Package | None:
        """The package ``org`` installs and approves for this namespace (``None``: it only
        approves, without a package)."""
        if org == self.contract_runner:
            return Package.CONTRACT
        return Package.STORAGE if org in self.installers else None


def majority(consortium: Consortium) -> int:
    """How many application organizations ``MAJORITY Endorsement`` needs."""
    return len(consortium.application_orgs) // 2 + 1


def _approvers(consortium: Consortium, installers: list[Org]) -> tuple[str, ...]:
    names = [o.name for o in installers]
    for org in consortium.application_orgs:
        if len(names) >= majority(consortium):
            break
        if org.name not in names:
            names.append(org.name)
    return tuple(names)


def _or_peer(org: Org) -> str:
    return f"OR('{org.msp_id}.peer')"


def _and_peers(orgs: list[Org]) -> str:
    return "AND(" + ", ".join(f"'{o.msp_id}.peer'" for o in orgs) + ")"


def _bank_definition(c: Consortium, bank: Org) -> Definition:
    reg = [c.regulator] if c.regulator else []
    collections = [collection_entry(f"acct-{bank.name}", [bank, *reg], bank)]
    if c.regulator is not None:
        collections.append(
            collection_entry(f"holds-{bank.name}", [bank, c.regulator], c.regulator))
    installers = [bank, *reg]
    return Definition(
        name=bank_namespace(c.chaincode.name, bank.name),
        bank=bank.name,
        policy=_or_peer(bank),
        collections=tuple(collections),
        installers=tuple(o.name for o in installers),
        approvers=_approvers(c, installers),
        contract_runner=bank.name,
    )


def _regulator_definition(c: Consortium, regulator: Org) -> Definition:
    return Definition(
        name=bank_namespace(c.chaincode.name, regulator.name),
        bank=regulator.name,
        policy=_or_peer(regulator),
        collections=(),
        installers=(regulator.name,),
        approvers=_approvers(c, [regulator]),
        contract_runner=regulator.name,
    )


def _pair_definitions(c: Consortium, bank: Org) -> list[Definition]:
    reg = [c.regulator] if c.regulator else []
    names = [b.name for b in c.banks]
    out = []
    for ns in pair_namespaces_of(c.chaincode.name, names, bank.name, PAIR_CHUNK):
        partners = [c.org(p) for p in ns.partners]
        collections = []
        for p in partners:
            collections.append(
                collection_entry(f"pair-{bank.name}-{p.name}", [bank, p, *reg], bank))
            collections.append(
                collection_entry(f"pair-{p.name}-{bank.name}", [p, bank, *reg], p))
        banks = [*partners, bank]
        installers = [*banks, *reg]
        out.append(Definition(
            name=ns.name,
            bank=bank.name,
            policy=_and_peers(banks),
            collections=tuple(collections),
            installers=tuple(o.name for o in installers),
            approvers=_approvers(c, installers),
        ))
    return out


def _brought_by(c: Consortium, bank: Org) -> list[Definition]:
    return [_bank_definition(c, bank), *_pair_definitions(c, bank)]


def definitions(consortium: Consortium) -> list[Definition]:
    """Every definition of the layout: the regulator's namespace (if any), then bank by bank
    in the consortium's order, each bank's namespace and the pair namespaces it brought."""
    reg = consortium.regulator
    first = [_regulator_definition(consortium, reg)] if reg is not None else []
    return first + [d for bank in consortium.banks for d in _brought_by(consortium, bank)]


def added_by(consortium: Consortium, new_bank: str) -> list[Definition]:
    """The definitions that ``new_bank`` (the last bank of ``consortium``, which includes it)
    adds to the network without it; no existing definition changes."""
    banks = consortium.banks
    if not banks or banks[-1].name != new_bank:
        known = [b.name for b in banks]
        if new_bank in known:
            raise ValueError(f"bank {new_bank!r} must be the last bank of the consortium "
                             "(banks join at the end of the list)")
        raise ValueError(f"bank {new_bank!r} is not in the consortium's banks {known}")
    return _brought_by(consortium, banks[-1])


def installed_by(consortium: Consortium, org: str) -> list[Definition]:
    """The definitions ``org``'s peers install a package for and run (see
    :meth:`Definition.package_of`)."""
    return [d for d in definitions(consortium) if org in d.installers]
