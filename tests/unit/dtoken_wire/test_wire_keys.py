"""The client's account and hold keys are the contract's: a change of key scheme must land in
both (``dtoken_wire.keys`` and ``deposit_token.keys``), or the regulator's monitor watches
key hashes no transaction writes."""

from __future__ import annotations

import deposit_token.keys as contract_keys
import dtoken_wire.keys as wire_keys
from consortium.channel import collections_config
from consortium.config import load

IDS = ["A" * 22, "account_-0123456789abcdefXYZ", "z" * 64]


def test_account_and_hold_keys_are_the_contracts() -> None:
    for suffix in IDS:
        assert wire_keys.account_key(suffix) == contract_keys.account_key(suffix)
        assert wire_keys.hold_key(suffix) == contract_keys.hold_key(suffix)
        # The regulator's monitor finds the held account from the hold's key alone.
        assert wire_keys.held_account_key(contract_keys.hold_key(suffix)) == (
            contract_keys.account_key(suffix))
    assert wire_keys.held_account_key("hold/") is None
    assert wire_keys.held_account_key(contract_keys.account_key(IDS[0])) is None
    for bank in ("hkbank", "usbank"):
        assert wire_keys.acct_collection(bank) == contract_keys.acct_collection(bank)
        assert wire_keys.holds_collection(bank) == contract_keys.holds_collection(bank)
        assert wire_keys.pair_collection(bank, "cnbank") == contract_keys.pair_collection(
            bank, "cnbank")


def test_member_collections_are_the_bootstraps_membership() -> None:
    consortium = load("config/consortium.yaml")
    config = collections_config(consortium)
    banks = [b.name for b in consortium.banks]
    orgs = [*consortium.banks, *([consortium.regulator] if consortium.regulator else [])]
    for org in orgs:
        expected = {c["name"] for c in config if f"'{org.msp_id}.member'" in c["policy"]}
        assert wire_keys.member_collections(
            org.name, banks, is_regulator=org is consortium.regulator,
            has_regulator=consortium.regulator is not None) == expected, org.name
