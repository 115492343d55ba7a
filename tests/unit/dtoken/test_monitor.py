"""The block monitor on blocks built by hand: each alert raised from the blocks a peer would
deliver (with private data), and none for honest traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dtoken.monitor import (
    AlertKind,
    BlockMonitor,
    HoldBreach,
    MonitorState,
    PlantedParameter,
    PrivateDataAlert,
    alert_json,
)
from dtoken_wire.keys import account_key, hold_key, member_collections
from fabgateway.blocks import VALIDATION_PARAMETER, decode_block_and_private_data, key_hash
from unit.fabgateway.block_builder import MVCC, PrivateOp, Tx, block_and_private_data

CC = "cc"
ACCOUNT = "A" * 22
ACCT = "acct-hkbank"
HOLDS = "holds-hkbank"
BANKS = ["hkbank", "usbank"]


def account(balance: int, account_id: str = ACCOUNT) -> bytes:
    return json.dumps({"type": "account", "account_id": account_id, "bank": "hkbank",
                       "balance": balance, "v": 1}, sort_keys=True).encode()


def hold(frozen: bool, held: int = 0, account_id: str = ACCOUNT) -> bytes:
    return json.dumps({"type": "hold", "account_id": account_id, "frozen": frozen,
                       "held_amount": held, "v": 1}, sort_keys=True).encode()


def write_account(tx_id: str, balance: int | None, *, code: int = 0, purge: bool = False) -> Tx:
    tx = Tx(tx_id, creator="HKBankMSP", endorsers=("HKBankMSP",),
            private={ACCT: [PrivateOp(account_key(ACCOUNT), None if balance is None
                                      else account(balance), purge=purge)]})
    if code:
        tx.code = code
    return tx


def set_hold(tx_id: str, frozen: bool, held: int = 0) -> Tx:
    return Tx(tx_id, creator="RegulatorMSP", endorsers=("RegulatorMSP",),
              private={HOLDS: [PrivateOp(hold_key(ACCOUNT), hold(frozen, held))]})


def release(tx_id: str) -> Tx:
    return Tx(tx_id, creator="RegulatorMSP", endorsers=("RegulatorMSP",),
              private={HOLDS: [PrivateOp(hold_key(ACCOUNT), None)]})


def regulator(state: MonitorState | None = None) -> BlockMonitor:
    return BlockMonitor(CC, member_collections("regulator", BANKS, is_regulator=True),
                        watch_holds=True, state=state)


def feed(monitor: BlockMonitor, *blocks: list[Tx], **options: object) -> list[list[object]]:
    start = monitor.state.next_block or 0
    return [
        list(monitor.inspect(decode_block_and_private_data(
            block_and_private_data(start + n, txs, **options))))  # type: ignore[arg-type]
        for n, txs in enumerate(blocks)
    ]


def breaches(alerts: list[object]) -> list[HoldBreach]:
    return [a for a in alerts if isinstance(a, HoldBreach)]


# --- hold breaches ----------------------------------------------------------------------


def test_a_debit_of_a_frozen_account_names_the_bank_and_the_transaction() -> None:
    monitor = regulator()
    out = feed(monitor, [write_account("t-open", 100)], [set_hold("t-hold", True)],
               [write_account("t-credit", 150)], [write_account("t-debit", 40)])
    assert out[:3] == [[], [], []]  # opening, the hold and a credit are no breach
    [breach] = out[3]
    assert isinstance(breach, HoldBreach)
    assert (breach.bank, breach.account_id, breach.transaction_id) == ("hkbank", ACCOUNT, "t-debit")
    assert (breach.previous_balance, breach.balance, breach.frozen) == (150, 40, True)
    assert breach.block_number == 3
    assert breach.creator_msp_id == "HKBankMSP"
    assert breach.key_hash == key_hash(account_key(ACCOUNT)).hex()
    assert "debited 110 while frozen" in breach.describe()
    assert alert_json(breach)["kind"] == "hold_breach"


def test_an_invalid_debit_is_no_breach_and_changes_no_balance() -> None:
    monitor = regulator()
    out = feed(monitor, [write_account("t-open", 100), set_hold("t-hold", True)],
               [write_account("t-bad", 10, code=MVCC)], [write_account("t-credit", 120)])
    assert out == [[], [], []]


def test_an_amount_hold_allows_the_free_part_and_alerts_below_the_held_amount() -> None:
    monitor = regulator()
    out = feed(monitor, [write_account("t-open", 100)], [set_hold("t-hold", False, 80)],
               [write_account("t-free", 90)], [write_account("t-over", 50)])
    assert out[2] == []
    [breach] = breaches(out[3])
    assert (breach.transaction_id, breach.previous_balance, breach.balance) == ("t-over", 90, 50)
    assert breach.held_amount == 80
    assert not breach.frozen


def test_a_released_hold_watches_nothing() -> None:
    monitor = regulator()
    out = feed(monitor, [write_account("t-open", 100)], [set_hold("t-hold", True)],
               [release("t-release")], [write_account("t-debit", 0)])
    assert out == [[], [], [], []]
    assert monitor.state.holds == {}


def test_a_held_account_deleted_or_purged_is_a_breach() -> None:
    monitor = regulator()
    out = feed(monitor, [write_account("t-open", 100), set_hold("t-hold", True)],
               [write_account("t-del", None)])
    assert [b.what for b in breaches(out[1])] == ["was deleted"]
    monitor = regulator()
    out = feed(monitor, [write_account("t-open", 100), set_hold("t-hold", True)],
               [write_account("t-purge", None, purge=True)])
    assert [b.what for b in breaches(out[1])] == ["was purged"]


def test_a_held_account_written_without_its_private_data_is_a_breach_and_a_mismatch() -> None:
    monitor = regulator()
    feed(monitor, [write_account("t-open", 100), set_hold("t-hold", True)])
    [out] = feed(monitor, [write_account("t-hidden", 0)], withhold={(0, ACCT)})
    [breach] = breaches(out)
    assert breach.transaction_id == "t-hidden"
    assert breach.balance is None
    assert "did not receive" in breach.what
    missing = [a for a in out if isinstance(a, PrivateDataAlert)]
    assert [(m.problem, m.collection, m.transaction_id) for m in missing] == [
        ("missing", ACCT, "t-hidden")
    ]


def test_a_tampered_value_of_a_held_account_does_not_count_as_its_balance() -> None:
    monitor = regulator()
    feed(monitor, [write_account("t-open", 100), set_hold("t-hold", True)])
    [out] = feed(monitor, [write_account("t-debit", 10)],
                 tamper={(0, ACCT): [PrivateOp(account_key(ACCOUNT), account(100))]})
    assert [b.balance for b in breaches(out)] == [None]
    assert "value_mismatch" in {a.problem for a in out if isinstance(a, PrivateDataAlert)}


def test_a_bank_monitor_watches_no_holds() -> None:
    bank = BlockMonitor(CC, member_collections("hkbank", BANKS, is_regulator=False))
    out = feed(bank, [write_account("t-open", 100), set_hold("t-hold", True)],
               [write_account("t-debit", 0)])
    assert out == [[], []]


# --- planted parameters -----------------------------------------------------------------


def test_a_planted_parameter_names_its_writer_collection_key_block_and_transaction() -> None:
    planted = Tx("t-plant", creator="USBankMSP", endorsers=("USBankMSP",), private={
        "pair-usbank-hkbank": [PrivateOp("xfer/x", None,
                                         metadata={VALIDATION_PARAMETER: b"\xff\xff\xff"})]})
    for monitor in (regulator(), BlockMonitor(CC, member_collections(
            "hkbank", BANKS, is_regulator=False))):
        [out] = feed(monitor, [Tx("t-other"), planted])
        [alert] = [a for a in out if isinstance(a, PlantedParameter)]
        assert alert.kind is AlertKind.PLANTED_PARAMETER
        assert (alert.creator_msp_id, alert.endorser_msp_ids) == ("USBankMSP", ("USBankMSP",))
        assert (alert.collection, alert.key_hash) == ("pair-usbank-hkbank",
                                                      key_hash("xfer/x").hex())
        assert (alert.block_number, alert.tx_index, alert.transaction_id) == (0, 1, "t-plant")
        assert alert.is_valid
        assert not alert.unmarshals
        assert "USBankMSP" in alert.describe()


def test_a_well_formed_parameter_is_no_alert() -> None:
    from unit.fabgateway.test_gw_validation_parameters import BOTH_BYTES

    pinned = Tx("t-pin", private={"pair-usbank-hkbank": [
        PrivateOp("xfer/x", None, metadata={VALIDATION_PARAMETER: BOTH_BYTES})]})
    [out] = feed(regulator(), [pinned])
    assert not [a for a in out if isinstance(a, PlantedParameter)]


# --- private data -----------------------------------------------------------------------


def test_private_data_withheld_from_a_member_is_named_and_not_from_a_non_member() -> None:
    pair = Tx("t-pair", creator="HKBankMSP",
              private={"pair-hkbank-usbank": [PrivateOp("xfer/y", b"{}")]})
    [out] = feed(regulator(), [pair], withhold={(0, "pair-hkbank-usbank")})
    assert [(a.problem, a.collection, a.creator_msp_id) for a in out
            if isinstance(a, PrivateDataAlert)] == [("missing", "pair-hkbank-usbank",
                                                     "HKBankMSP")]
    cnbank = BlockMonitor(CC, member_collections("cnbank", [*BANKS, "cnbank"],
                                                 is_regulator=False))
    assert feed(cnbank, [pair], withhold={(0, "pair-hkbank-usbank")}) == [[]]


def test_honest_blocks_raise_nothing() -> None:
    monitor = regulator()
    out = feed(monitor, [write_account("t-open", 100)], [set_hold("t-hold", False, 10)],
               [write_account("t-pay", 50), Tx("t-pair", private={
                   "pair-hkbank-usbank": [PrivateOp("xfer/z", b"{}")]})])
    assert out == [[], [], []]


# --- state ------------------------------------------------------------------------------


def test_the_state_resumes_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "monitors" / "regulator.json"
    monitor = regulator(MonitorState.load(path))
    feed(monitor, [write_account("t-open", 100)], [set_hold("t-hold", True)])
    monitor.state.save()
    resumed = regulator(MonitorState.load(path))
    assert resumed.state.block_number == 2
    assert resumed.state.transaction_id is None
    [out] = feed(resumed, [write_account("t-debit", 1)])
    assert [(b.previous_balance, b.balance) for b in breaches(out)] == [(100, 1)]


def test_a_state_file_that_is_not_one_is_refused(tmp_path: Path) -> None:
    from dtoken.errors import UsageError

    path = tmp_path / "bad.json"
    path.write_text('{"next_block": 1}')
    with pytest.raises(UsageError, match="not a monitor state file"):
        MonitorState.load(path)


def test_member_collections_follow_the_bootstrap() -> None:
    assert member_collections("hkbank", BANKS, is_regulator=False) == {
        "acct-hkbank", "holds-hkbank", "pair-hkbank-usbank", "pair-usbank-hkbank"}
    assert member_collections("regulator", BANKS, is_regulator=True) == {
        "acct-hkbank", "acct-usbank", "holds-hkbank", "holds-usbank",
        "pair-hkbank-usbank", "pair-usbank-hkbank"}
