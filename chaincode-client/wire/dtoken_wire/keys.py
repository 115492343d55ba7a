"""Where the contract keeps what a client must find in a block: collection names and the keys
of accounts and holds.

Owns: the names a client needs to recognise a write in a block (the account key a regulator's
monitor hashes to find a held account, the collection names a member must hold). The contract
writes these same keys (``deposit_token.keys``); a unit test checks the two agree, so a change
of key scheme lands here and there together, and the SDK computes these keys nowhere else.

An account's keys carry one *suffix*: ``acct/<suffix>`` for the account and
``hold/<suffix>`` for the regulator's hold on it. The suffix is the account id, or, where
accounts are keyed unlinkably, an HMAC of it under a key the client may not hold: so the
regulator's monitor finds a held account from the hold's key (:func:`held_account_key`), in
clear in the private data its peer receives, never by recomputing the suffix.

Must not: know any other key of the contract, or import anything.
"""

from __future__ import annotations

__all__ = [
    "account_key",
    "acct_collection",
    "held_account_key",
    "hold_key",
    "holds_collection",
    "member_collections",
    "pair_collection",
]


def acct_collection(bank: str) -> str:
    """The bank's own collection (accounts, supply, history); the regulator is a member."""
    return f"acct-{bank}"


def pair_collection(asserter: str, counterparty: str) -> str:
    """What ``asserter`` asserts toward ``counterparty`` (both, and the regulator, members)."""
    return f"pair-{asserter}-{counterparty}"


def holds_collection(bank: str) -> str:
    """The regulator's holds on ``bank``'s accounts (the bank and the regulator members)."""
    return f"holds-{bank}"


_ACCOUNT = "acct/"
_HOLD = "hold/"


def account_key(suffix: str) -> str:
    """The key of an account record (its balance included) in ``acct-<bank>``."""
    return _ACCOUNT + suffix


def hold_key(suffix: str) -> str:
    """The key of the regulator's hold on the account ``account_key(suffix)``, in
    ``holds-<bank>``."""
    return _HOLD + suffix


def held_account_key(key: str) -> str | None:
    """The key of the account that the hold stored under ``key`` holds (None: ``key`` is no
    hold's key)."""
    if not key.startswith(_HOLD) or len(key) == len(_HOLD):
        return None
    return account_key(key[len(_HOLD):])


def member_collections(
    org: str, banks: list[str], *, is_regulator: bool, has_regulator: bool = True
) -> frozenset[str]:
    """The collections whose private data ``org``'s peer must hold (the network bootstrap's
    membership): a bank its own ``acct-``, its ``holds-`` (if the network has a regulator) and
    every pair it is in; the regulator every collection."""
    others = [b for b in banks if b != org]
    if is_regulator:
        return frozenset(
            [acct_collection(b) for b in banks]
            + [holds_collection(b) for b in banks]
            + [pair_collection(a, b) for a in banks for b in banks if a != b]
        )
    found = [acct_collection(org)]
    if has_regulator:
        found.append(holds_collection(org))
    found += [pair_collection(org, b) for b in others] + [pair_collection(b, org) for b in others]
    return frozenset(found)
