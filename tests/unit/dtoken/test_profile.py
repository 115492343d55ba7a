"""The connection profile: loaded once, validated with errors naming the file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dtoken.errors import ProfileError, UsageError
from dtoken.profile import Profile
from unit.dtoken.conftest import write_profile


def test_a_bootstrap_profile_loads_with_its_identities_and_currencies(tmp_path: Path) -> None:
    profile = Profile.load(write_profile(tmp_path / "state"))
    assert (profile.org, profile.msp_id, profile.kind) == ("hkbank", "HarbourBankMSP", "bank")
    assert profile.identity("minter").roles == {"minter", "operator"}
    assert profile.identity("operator").roles == {"operator"}
    assert profile.currencies["JPY"] == 0
    assert profile.banks() == ["hkbank", "usbank"]
    assert profile.regulator() is not None
    assert profile.state_dir == (tmp_path / "state").resolve()
    assert len(profile.client_secret()) == 32
    assert profile.bank("usbank").msp_id == "LibertyTrustMSP"
    with pytest.raises(UsageError, match="not a bank"):
        profile.bank("regulator")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("channel"), "channel must be a non-empty string"),
        (lambda p: p["gateway"].pop("endpoint"), "gateway.endpoint must be"),
        (lambda p: p.__setitem__("identities", []), "identities must be a JSON object"),
        (lambda p: p["identities"]["minter"].pop("key"), "identities.minter.key must be"),
        (lambda p: p["currencies"].__setitem__("USD", 2.5), "currencies.USD must be"),
        (lambda p: p["organizations"]["usbank"].__setitem__("currencies", "USD"),
         "organizations.usbank.currencies must be"),
        (lambda p: p["organizations"].pop("hkbank"), "own organization hkbank"),
        (lambda p: p.__setitem__("namespace_layout", "pairs"),
         "namespace_layout must be one of single, namespaces, not 'pairs'"),
        (lambda p: p.__setitem__("namespace_layout", "namespaces"),
         "chaincode must be the organization's own namespace <cc>-hkbank"),
    ],
)
def test_a_malformed_profile_names_the_file_and_the_field(
    tmp_path: Path, mutate: object, message: str
) -> None:
    path = write_profile(tmp_path / "state")
    data = json.loads(path.read_text())
    mutate(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError) as error:
        Profile.load(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_missing_files_are_profile_errors(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such connection profile"):
        Profile.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ProfileError, match="not JSON"):
        Profile.load(tmp_path / "bad.json")
    profile = Profile.load(write_profile(tmp_path / "state"))
    profile.client_secret_file.write_bytes(b"short")
    with pytest.raises(ProfileError, match="at least 16"):
        profile.client_secret()
    profile.client_secret_file.unlink()
    with pytest.raises(ProfileError, match="client_secret_file"):
        profile.client_secret()


def test_the_namespace_layout_names_the_consortiums_chaincode(tmp_path: Path) -> None:
    path = write_profile(tmp_path / "state")
    single = Profile.load(path)  # a profile written before the layout existed
    assert (single.namespace_layout, single.has_namespaces) == ("single", False)
    assert single.chaincode_base == "dtoken"
    data = json.loads(path.read_text())
    data.update(namespace_layout="namespaces", chaincode="dtoken-net-hkbank")
    path.write_text(json.dumps(data))
    layout = Profile.load(path)
    assert layout.has_namespaces
    assert (layout.chaincode, layout.chaincode_base) == ("dtoken-net-hkbank", "dtoken-net")


def test_a_collection_is_found_in_the_namespace_the_layout_places_it_in(
        tmp_path: Path) -> None:
    path = write_profile(tmp_path / "state")
    assert Profile.load(path).namespace_of("pair-usbank-hkbank") == "dtoken"
    data = json.loads(path.read_text())
    data.update(namespace_layout="namespaces", chaincode="dtoken-hkbank")
    path.write_text(json.dumps(data))
    layout = Profile.load(path)
    # banks hkbank then usbank (the order they joined): usbank brought their pairs
    assert layout.namespace_of("pair-usbank-hkbank") == "dtoken-pairs-usbank-0"
    assert layout.namespace_of("pair-hkbank-usbank") == "dtoken-pairs-usbank-0"
    assert layout.namespace_of("acct-usbank") == "dtoken-usbank"
    assert layout.namespace_of("holds-hkbank") == "dtoken-hkbank"
    with pytest.raises(UsageError, match="pair-hkbank-xxbank"):
        layout.namespace_of("pair-hkbank-xxbank")


async def test_record_position_reads_the_blocks_of_the_namespace_holding_the_collection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # under the layout a disputed record of pair-usbank-hkbank is written in usbank's pair
    # namespace: reading the bank's own namespace would find nothing and call it unproven
    import fabgateway
    from dtoken.bank import Member
    from dtoken.models import ProvenPosition

    path = write_profile(tmp_path / "state")
    data = json.loads(path.read_text())
    data.update(namespace_layout="namespaces", chaincode="dtoken-hkbank")
    path.write_text(json.dumps(data))
    asked: list[str] = []

    class Queries:
        async def get_block_by_tx_id(self, tx_id: str, **_: float) -> object:
            return object()

    def writer(block: object, namespace: str, collection: str, key: str,
               wanted: bytes) -> object:
        asked.append(namespace)
        return type("Found", (), {"block_number": 4, "tx_index": 1, "transaction_id": "t1"})

    monkeypatch.setattr(fabgateway, "valid_writer_of_hash", writer)
    member = Member.__new__(Member)
    member.profile = Profile.load(path)
    member._ledger_queries = Queries()  # type: ignore[assignment]
    found = await member.record_position("pair-usbank-hkbank", "dec/t", "ab" * 32, "t1")
    assert found == ProvenPosition(4, 1, "t1", claimed=True)
    assert asked == ["dtoken-pairs-usbank-0"]
    # a collection of a bank the profile does not know is not proven, not guessed
    assert await member.record_position("pair-xxbank-hkbank", "dec/t", "ab" * 32, "t1") is None
