"""``dtoken network add-bank``'s checks before anything runs: only a bank listed under
``joined_banks`` joins, and a refusal names the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from consortium import config
from consortium.errors import ConfigError
from consortium.joining import BankJoin, JoinReport
from consortium.network import Network

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"
SG = ("\njoined_banks:\n  - name: sgbank\n    msp_id: LionCityMSP\n    jurisdiction: SG\n"
      "    currencies: [USD]\n")


def _network(tmp_path: Path, extra: str = "") -> Network:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "consortium.yaml"
    source.write_text(DEFAULT.read_text() + extra)
    return Network(config.load(source), tmp_path / "state", progress=lambda _m: None)


@pytest.mark.parametrize("name", ["hkbank", "regulator", "xxbank"])
def test_only_a_bank_listed_under_joined_banks_joins(tmp_path: Path, name: str) -> None:
    net = _network(tmp_path, SG)
    with pytest.raises(ConfigError, match=rf"joined_banks: {name!r} is not listed there"):
        BankJoin(net, name)
    assert not (tmp_path / "state").exists()  # nothing was made


def test_without_joined_banks_the_refusal_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(listed: none\)"):
        BankJoin(_network(tmp_path), "sgbank")


def test_a_listed_bank_is_accepted_and_its_report_starts_empty(tmp_path: Path) -> None:
    join = BankJoin(_network(tmp_path, SG), "sgbank")
    assert join.bank.msp_id == "LionCityMSP"
    assert join.report.to_json() == JoinReport("sgbank").to_json() == {
        "bank": "sgbank", "steps": {}, "signed_by": [], "config_updated": False,
        "chain_height": 0, "catch_up_seconds": 0.0, "from_snapshot": False,
        "namespaces": [], "repinned": [], "admitted_by": [],
    }


def test_a_bank_under_joined_banks_adds_definitions_and_changes_none(tmp_path: Path) -> None:
    """The join's chaincode part on the namespace layout: what the founders run is defined
    the same with the new bank's block in the file; the new bank brings only its own
    namespace and pair namespaces that name it (``consortium.namespaces.added_by``)."""
    from consortium import namespaces

    before = _network(tmp_path / "a").consortium
    after = _network(tmp_path / "b", SG).consortium

    def essence(d: namespaces.Definition) -> str:
        return json.dumps([d.name, d.policy, d.collections, d.installers, d.contract_runner],
                          sort_keys=True)

    added = namespaces.added_by(after, "sgbank")
    assert {essence(d) for d in namespaces.definitions(after)} == (
        {essence(d) for d in namespaces.definitions(before)} | {essence(d) for d in added})
    assert added[0].name == "dtoken-sgbank"
    for d in added:
        assert "sgbank" in d.name or any("sgbank" in c["name"] for c in d.collections)
