"""The chaincode definitions of the namespace layout, and who installs and approves each.

The layout itself (names, which collection lives where) is :mod:`dtoken_wire.namespaces`;
this module adds what only the network tooling needs: each definition's collections config,
chaincode-level policy, the package that serves it, the organizations whose peers install
and run it, and the organizations that approve it (docs/architecture.md, "Namespace layout").

* ``<cc>-<bank>`` (package :attr:`Package.CONTRACT`, the deposit-token contract):
  ``acct-<bank>`` (members the bank and the regulator, endorsed by the bank's peers) and
  ``holds-<bank>`` (members the bank and the regulator, endorsed by the regulator's peers);
  chaincode-level policy ``OR('<bank>.peer')``. Installed by the bank and the regulator.
* ``<cc>-pairs-<bank>-<chunk>`` (package :attr:`Package.STORAGE`, the thin storage
  chaincode reached by chaincode-to-chaincode calls): ``pair-<a>-<b>`` for each pair it
  holds (members *a*, *b* and the regulator, endorsed by *a*'s peers); chaincode-level policy
  ``AND`` of its banks' peers (no honest write is ever checked against it: every write has a
  collection policy). Installed by its banks and the regulator.

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
    """One chaincode definition (sequence 1, never upgraded) of the layout."""

    name: str
    package: Package
    bank: str  # the bank whose namespace it is, or that brought the pair namespace
    policy: str  # chaincode-level signature policy
    collections: tuple[dict[str, Any], ...]
    installers: tuple[str, ...]  # organizations whose peers install and run it
    approvers: tuple[str, ...]  # installers first, then the others needed for a majority

    @property
    def collection_names(self) -> list[str]:
        return [c["name"] for c in self.collections]


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
        package=Package.CONTRACT,
        bank=bank.name,
        policy=_or_peer(bank),
        collections=tuple(collections),
        installers=tuple(o.name for o in installers),
        approvers=_approvers(c, installers),
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
            package=Package.STORAGE,
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
    """Every definition of the layout, bank by bank in the consortium's order (each bank's
    namespace, then the pair namespaces it brought)."""
    return [d for bank in consortium.banks for d in _brought_by(consortium, bank)]


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
    """The definitions whose package ``org``'s peers install and run."""
    return [d for d in definitions(consortium) if org in d.installers]
