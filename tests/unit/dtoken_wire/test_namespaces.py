"""The layout's naming rule: every collection has exactly one namespace, chunks are bounded."""

from __future__ import annotations

import pytest
from dtoken_wire.namespaces import (
    bank_namespace,
    collection_namespace,
    organization_of_namespace,
    pair_namespace,
    pair_namespaces_of,
)

BANKS = [f"b{i}" for i in range(11)]


def test_bank_namespaces_hold_accounts_and_holds() -> None:
    assert bank_namespace("dtoken", "b3") == "dtoken-b3"
    assert collection_namespace("dtoken", BANKS, "acct-b3") == "dtoken-b3"
    assert collection_namespace("dtoken", BANKS, "holds-b3") == "dtoken-b3"


def test_both_directions_of_a_pair_share_the_later_banks_namespace() -> None:
    assert pair_namespace("dtoken", BANKS, "b9", "b2", chunk=4) == "dtoken-pairs-b9-0"
    assert pair_namespace("dtoken", BANKS, "b2", "b9", chunk=4) == "dtoken-pairs-b9-0"
    assert pair_namespace("dtoken", BANKS, "b9", "b4", chunk=4) == "dtoken-pairs-b9-1"
    assert pair_namespace("dtoken", BANKS, "b10", "b8", chunk=4) == "dtoken-pairs-b10-2"
    assert collection_namespace("dtoken", BANKS, "pair-b2-b9", chunk=4) == "dtoken-pairs-b9-0"


def test_pair_namespaces_of_cover_every_earlier_bank_once() -> None:
    spaces = pair_namespaces_of("dtoken", BANKS, "b10", chunk=4)
    assert [s.partners for s in spaces] == [
        ("b0", "b1", "b2", "b3"), ("b4", "b5", "b6", "b7"), ("b8", "b9")]
    assert spaces[2].collections() == ["pair-b10-b8", "pair-b8-b10", "pair-b10-b9", "pair-b9-b10"]
    assert pair_namespaces_of("dtoken", BANKS, "b0") == []
    for s in spaces:
        for p in s.partners:
            assert pair_namespace("dtoken", BANKS, p, "b10", chunk=4) == s.name


@pytest.mark.parametrize("bad", ["acct-zz", "pair-b1", "pair-b1-b1", "pair-b1-zz", "other-b1", ""])
def test_unknown_collections_are_named(bad: str) -> None:
    with pytest.raises(ValueError, match=r"layout|not in the consortium|two banks"):
        collection_namespace("dtoken", BANKS, bad)


def test_chunk_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk"):
        pair_namespaces_of("dtoken", BANKS, "b3", chunk=0)
    with pytest.raises(ValueError, match="chunk"):
        pair_namespace("dtoken", BANKS, "b3", "b1", chunk=0)


def test_an_organizations_own_namespace_is_told_from_a_pair_namespace() -> None:
    assert organization_of_namespace("dtoken", "dtoken-b3") == "b3"
    assert organization_of_namespace("dtoken", bank_namespace("dtoken", "regulator")) == "regulator"
    assert organization_of_namespace("dt-x", "dt-x-b3") == "b3"  # a base with a hyphen
    for name in ("dtoken", "dtoken-", "dtoken-pairs-b9-0", "other-b3", "dtokenb3", "b3"):
        assert organization_of_namespace("dtoken", name) is None, name
    for bank in BANKS:
        for ns in pair_namespaces_of("dtoken", BANKS, bank):
            assert organization_of_namespace("dtoken", ns.name) is None
    assert organization_of_namespace("", "-b3") is None
