"""The namespace layout: which chaincode name (namespace) holds which private collection.

Owns the naming rule, written once for the three parties that need it: the network tooling
(which definitions to install, approve and commit), the chaincode (the ledger routes a
collection to the namespace that holds it) and the SDK (a transaction is sent to the acting
bank's namespace). See docs/architecture.md, "Namespace layout".

* ``<base>-<bank>``: the bank's namespace, collections ``acct-<bank>`` and ``holds-<bank>``.
  Every transaction's top level is here; intra-bank operations touch nothing else.
* ``<base>-pairs-<bank>-<chunk>``: the pair namespaces a bank brings when it joins. The
  banks that joined before it (in the consortium's order, which only grows at its end) are
  cut into chunks of :data:`PAIR_CHUNK`; chunk *c* holds, for each bank *j* in it, the two
  directional collections ``pair-<bank>-<j>`` and ``pair-<j>-<bank>``. So no namespace has
  more than ``2 * PAIR_CHUNK`` collections, whatever the number of banks, and a joining bank
  adds definitions without changing any that exist.

Must not: import anything of the project, or know policies or organizations (that is the
network tooling's ``consortium.namespaces``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PAIR_CHUNK",
    "PairNamespace",
    "bank_namespace",
    "collection_namespace",
    "is_pair_namespace",
    "organization_of_namespace",
    "pair_namespace",
    "pair_namespaces_of",
]

#: Earlier banks per pair namespace: each holds at most ``2 * PAIR_CHUNK`` collections.
#: Fixed for the life of a network (a namespace's collections can never be removed).
PAIR_CHUNK = 4


@dataclass(frozen=True)
class PairNamespace:
    """A pair namespace: the bank that brought it, its chunk index, and the earlier banks
    whose pairs with that bank it holds (in the consortium's order)."""

    name: str
    bank: str
    chunk: int
    partners: tuple[str, ...]

    def collections(self) -> list[str]:
        """Its collections: for each partner, ``pair-<bank>-<partner>`` then the reverse."""
        out: list[str] = []
        for p in self.partners:
            out += [f"pair-{self.bank}-{p}", f"pair-{p}-{self.bank}"]
        return out


def bank_namespace(base: str, bank: str) -> str:
    """The bank's own namespace (its accounts and the regulator's holds on them)."""
    return f"{base}-{bank}"


def organization_of_namespace(base: str, name: str) -> str | None:
    """The organization whose own namespace ``name`` is (``<base>-<org>``), or ``None``.

    An organization's name has no ``-`` (the consortium's name rule), so a pair namespace
    (``<base>-pairs-<bank>-<chunk>``) is never taken for one. The rule needs no list of
    banks: a namespace of a bank that joined later is recognised too.
    """
    prefix = f"{base}-"
    if not base or not name.startswith(prefix):
        return None
    org = name[len(prefix):]
    if not org or "-" in org:
        return None
    return org


def is_pair_namespace(name: str) -> bool:
    """Whether ``name`` has the form of a pair namespace (``<base>-pairs-<bank>-<chunk>``)."""
    head, sep, chunk = name.rpartition("-")
    head, sep2, _bank = head.rpartition("-")
    return bool(sep and sep2 and chunk.isdigit() and head.endswith("-pairs"))


def _index(banks: Sequence[str], bank: str) -> int:
    try:
        return list(banks).index(bank)
    except ValueError:
        raise ValueError(f"bank {bank!r} is not in the consortium's banks") from None


def pair_namespaces_of(
    base: str, banks: Sequence[str], bank: str, chunk: int = PAIR_CHUNK
) -> list[PairNamespace]:
    """The pair namespaces ``bank`` brought when it joined (none for the first bank)."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    earlier = list(banks)[: _index(banks, bank)]
    return [
        PairNamespace(f"{base}-pairs-{bank}-{c}", bank, c, tuple(earlier[i : i + chunk]))
        for c, i in enumerate(range(0, len(earlier), chunk))
    ]


def pair_namespace(
    base: str, banks: Sequence[str], a: str, b: str, chunk: int = PAIR_CHUNK
) -> str:
    """The namespace holding both ``pair-<a>-<b>`` and ``pair-<b>-<a>``."""
    ia, ib = _index(banks, a), _index(banks, b)
    if ia == ib:
        raise ValueError(f"a pair needs two banks, got {a!r} twice")
    later, earlier_index = (a, ib) if ia > ib else (b, ia)
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    return f"{base}-pairs-{later}-{earlier_index // chunk}"


def collection_namespace(
    base: str, banks: Sequence[str], collection: str, chunk: int = PAIR_CHUNK
) -> str:
    """The namespace that holds ``collection`` (``acct-``, ``holds-`` or ``pair-``)."""
    kind, _, rest = collection.partition("-")
    if kind in ("acct", "holds"):
        _index(banks, rest)
        return bank_namespace(base, rest)
    if kind == "pair":
        a, sep, b = rest.partition("-")
        if sep and a and b:
            return pair_namespace(base, banks, a, b, chunk)
    raise ValueError(f"{collection!r} is not a collection of the layout")
