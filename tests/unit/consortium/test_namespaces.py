"""The namespace layout's definitions: bounded collections, the trust policies, who installs
and approves, and what a joining bank adds (and that it changes nothing that exists)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from consortium import config, namespaces
from consortium.config import Consortium
from consortium.namespaces import Package
from dtoken_wire.namespaces import PAIR_CHUNK, collection_namespace

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"


def consortium_of(n: int, *, regulator: bool = True) -> Consortium:
    data: dict[str, Any] = dict(yaml.safe_load(DEFAULT.read_text()))
    data["banks"] = [
        {"name": f"bank{i:02d}", "display_name": f"Bank {i}", "msp_id": f"Bank{i:02d}MSP",
         "jurisdiction": "HK", "currencies": ["HKD"], "peers": 1}
        for i in range(n)
    ]
    if not regulator:
        data["regulator"] = {"enabled": False}
    return config.parse(data)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 20, 41])
def test_no_namespace_grows_with_the_consortium(n: int) -> None:
    c = consortium_of(n)
    defs = namespaces.definitions(c)
    assert max(len(d.collections) for d in defs) <= 2 * PAIR_CHUNK
    assert defs[0].name == "dtoken-regulator"
    assert defs[0].collections == ()
    names = [d.name for d in defs]
    assert len(names) == len(set(names))
    # every collection of the old single namespace exists exactly once in the layout
    held = [x for d in defs for x in d.collection_names]
    assert len(held) == len(set(held)) == n * n + n
    for d in defs[1:]:
        for coll in d.collection_names:
            assert collection_namespace("dtoken", [b.name for b in c.banks], coll) == d.name


def test_each_bank_namespace_holds_only_its_accounts_and_holds() -> None:
    c = consortium_of(3)
    reg = c.regulator
    assert reg is not None
    for bank in c.banks:
        (d,) = [d for d in namespaces.definitions(c) if d.name == f"dtoken-{bank.name}"]
        assert d.package_of(bank.name) is Package.CONTRACT
        assert d.package_of(reg.name) is Package.STORAGE
        assert d.policy == f"OR('{bank.msp_id}.peer')"
        cols = {x["name"]: x for x in d.collections}
        assert set(cols) == {f"acct-{bank.name}", f"holds-{bank.name}"}
        acct, holds = cols[f"acct-{bank.name}"], cols[f"holds-{bank.name}"]
        assert acct["endorsementPolicy"]["signaturePolicy"] == f"OR('{bank.msp_id}.peer')"
        assert holds["endorsementPolicy"]["signaturePolicy"] == f"OR('{reg.msp_id}.peer')"
        for x in (acct, holds):
            assert x["policy"] == f"OR('{bank.msp_id}.member', '{reg.msp_id}.member')"
        assert d.installers == (bank.name, reg.name)


def test_pair_collections_are_the_asserters_word_readable_by_the_pair_and_regulator() -> None:
    c = consortium_of(10)
    reg = c.regulator
    assert reg is not None
    pairs = [d for d in namespaces.definitions(c) if "-pairs-" in d.name]
    seen = 0
    for d in pairs:
        for x in d.collections:
            _, a, b = x["name"].split("-")
            oa, ob = c.org(a), c.org(b)
            assert x["endorsementPolicy"]["signaturePolicy"] == f"OR('{oa.msp_id}.peer')"
            assert x["policy"] == (
                f"OR('{oa.msp_id}.member', '{ob.msp_id}.member', '{reg.msp_id}.member')")
            assert x["memberOnlyRead"]
            assert x["memberOnlyWrite"]
            assert {a, b, reg.name} <= set(d.installers)
            seen += 1
        # only the banks of its pairs and the regulator run it
        banks_in = {n for x in d.collection_names for n in x.split("-")[1:]}
        assert set(d.installers) == banks_in | {reg.name}
        assert {d.package_of(o) for o in d.installers} == {Package.STORAGE}
        assert d.policy.startswith("AND(")
    assert seen == 10 * 9


@pytest.mark.parametrize("n", [3, 10, 20])
def test_approvers_are_the_installers_then_a_majority(n: int) -> None:
    c = consortium_of(n)
    need = len(c.application_orgs) // 2 + 1
    for d in namespaces.definitions(c):
        assert d.approvers[: len(d.installers)] == d.installers
        assert len(d.approvers) == max(need, len(d.installers))
        assert len(set(d.approvers)) == len(d.approvers)


def test_definition_count_at_three_ten_and_twenty_banks() -> None:
    # a bank k (0-based) brings its namespace and ceil(k / PAIR_CHUNK) pair namespaces
    def expected(n: int) -> int:  # + 1: the regulator's namespace
        return 1 + n + sum(-(-k // PAIR_CHUNK) for k in range(n))

    for n in (3, 10, 20):
        assert len(namespaces.definitions(consortium_of(n))) == expected(n)
    assert expected(3) == 6
    assert expected(20) == 76


@pytest.mark.parametrize("n", [1, 3, 4, 8, 9, 19])
def test_a_joining_bank_adds_its_definitions_and_changes_none(n: int) -> None:
    before = namespaces.definitions(consortium_of(n))
    after_c = consortium_of(n + 1)
    added = namespaces.added_by(after_c, f"bank{n:02d}")
    after = namespaces.definitions(after_c)
    by_name = {d.name: d for d in after}
    for d in before:  # same name, same collections and policies: no upgrade
        old = by_name[d.name]
        assert (old.collections, old.policy, old.installers) == (
            d.collections, d.policy, d.installers)
    assert {d.name for d in added} == {d.name for d in after} - {d.name for d in before}
    assert added[0].name == f"dtoken-bank{n:02d}"
    assert len(added) == 1 + -(-n // PAIR_CHUNK)


def test_added_by_names_the_problem() -> None:
    c = consortium_of(3)
    with pytest.raises(ValueError, match="must be the last bank"):
        namespaces.added_by(c, "bank00")
    with pytest.raises(ValueError, match="not in the consortium"):
        namespaces.added_by(c, "nobank")


def test_installed_by_is_what_each_peer_serves() -> None:
    c = consortium_of(10)
    reg = c.regulator
    assert reg is not None
    assert len(namespaces.installed_by(c, reg.name)) == len(namespaces.definitions(c))
    contract = [d.name for d in namespaces.definitions(c)
                if d.package_of(reg.name) is Package.CONTRACT]
    assert contract == ["dtoken-regulator"]
    mine = namespaces.installed_by(c, "bank03")
    assert [d.name for d in mine if d.package_of("bank03") is Package.CONTRACT] == [
        "dtoken-bank03"]
    # every pair of bank03 is reachable from what its peer runs
    held = {x for d in mine for x in d.collection_names}
    for other in c.banks:
        if other.name != "bank03":
            assert {f"pair-bank03-{other.name}", f"pair-{other.name}-bank03"} <= held


def test_without_a_regulator_no_holds_collection() -> None:
    c = consortium_of(3, regulator=False)
    defs = namespaces.definitions(c)
    assert defs[0].name == "dtoken-bank00"
    for d in defs:
        assert not any(x.startswith("holds-") for x in d.collection_names)
    assert defs[1].package_of("bank00") is None  # approves bank01's namespace, runs nothing there
