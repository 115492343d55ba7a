"""The block monitor on blocks built by hand: each alert raised from the blocks a peer would
deliver (with private data), and none for honest traffic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dtoken.monitor import (
    AlertKind,
    BlockMonitor,
    HoldBreach,
    MonitorState,
    PlantedParameter,
    PrivateDataAlert,
    alert_json,
    follow,
)
from dtoken_wire.keys import account_key, hold_key, member_collections
from dtoken_wire.namespaces import collection_namespace
from fabgateway import BlockEventsError
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


def test_a_release_counts_by_its_key_hash_and_a_hold_only_from_its_committed_value() -> None:
    monitor = regulator()
    feed(monitor, [write_account("t-open", 100), set_hold("t-hold", True)])
    feed(monitor, [release("t-release")], withhold={(0, HOLDS)})
    assert monitor.state.holds == {}
    # A hold value that does not hash to the committed one sets nothing.
    feed(monitor, [set_hold("t-hold-2", True)],
         tamper={(0, HOLDS): [PrivateOp(hold_key(ACCOUNT), hold(False, 1))]})
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


# --- the namespace layout ---------------------------------------------------------------
# The layout's places (docs/architecture.md, "Namespace layout"): acct-/holds-<bank> in
# <cc>-<bank>, a pair in its pair namespace, each reached from the acting organization's own
# namespace (the transaction's top level) by a chaincode-to-chaincode call.

HK_NS, US_NS, REG_NS = "dtoken-hkbank", "dtoken-usbank", "dtoken-regulator"
PAIRS_NS = collection_namespace("dtoken", BANKS, "pair-hkbank-usbank")
PAIR = "pair-hkbank-usbank"


def placed(org: str, *, is_regulator: bool) -> dict[str, str]:
    return {c: collection_namespace("dtoken", BANKS, c)
            for c in member_collections(org, BANKS, is_regulator=is_regulator)}


def layout_regulator(state: MonitorState | None = None) -> BlockMonitor:
    return BlockMonitor(REG_NS, placed("regulator", is_regulator=True), watch_holds=True,
                        state=state)


def layout_write_account(tx_id: str, balance: int, *, namespace: str = HK_NS) -> Tx:
    """hkbank's transaction in its own namespace (the top level) writing ``acct-hkbank``."""
    return Tx(tx_id, creator="HKBankMSP", endorsers=("HKBankMSP",), chaincode=namespace,
              private={ACCT: [PrivateOp(account_key(ACCOUNT), account(balance))]})


def layout_set_hold(tx_id: str, frozen: bool) -> Tx:
    """The regulator's transaction in its namespace; the hold lands in hkbank's namespace
    through the storage chaincode."""
    return Tx(tx_id, creator="RegulatorMSP", endorsers=("RegulatorMSP",), chaincode=REG_NS,
              private_in={HK_NS: {HOLDS: [PrivateOp(hold_key(ACCOUNT), hold(frozen))]}})


def layout_pay(tx_id: str) -> Tx:
    """hkbank's cross-bank initiate: its account in its namespace, the transfer in the pair
    namespace."""
    return Tx(tx_id, creator="HKBankMSP", endorsers=("HKBankMSP",), chaincode=HK_NS,
              private={ACCT: [PrivateOp(account_key(ACCOUNT), account(70))]},
              private_in={PAIRS_NS: {PAIR: [PrivateOp("xfer/p", b"{}")]}})


def test_the_monitor_watches_each_collection_in_the_namespace_holding_it() -> None:
    monitor = layout_regulator()
    assert monitor.placement[ACCT] == HK_NS
    assert monitor.placement[PAIR] == PAIRS_NS
    assert monitor.namespaces == {HK_NS, US_NS, PAIRS_NS}
    # the single namespace: names alone, all in the chaincode
    assert regulator().namespaces == {CC}


def test_on_the_layout_a_hold_set_through_storage_is_learnt_and_its_breach_named() -> None:
    monitor = layout_regulator()
    out = feed(monitor, [layout_write_account("t-open", 100)], [layout_set_hold("t-hold", True)],
               [layout_write_account("t-debit", 40)])
    assert out[:2] == [[], []]
    [breach] = breaches(out[2])
    assert (breach.bank, breach.transaction_id) == ("hkbank", "t-debit")
    assert (breach.previous_balance, breach.balance) == (100, 40)
    # A monitor of the regulator's own namespace only (the flaw fixed) learnt no hold.
    blind = BlockMonitor(REG_NS, member_collections("regulator", BANKS, is_regulator=True),
                         watch_holds=True)
    assert feed(blind, [layout_write_account("t-open", 100)], [layout_set_hold("t-hold", True)],
                [layout_write_account("t-debit", 40)]) == [[], [], []]


def test_on_the_layout_a_collection_written_outside_its_namespace_is_not_its_state() -> None:
    monitor = layout_regulator()
    feed(monitor, [layout_write_account("t-open", 100)], [layout_set_hold("t-hold", True)])
    # usbank's namespace has no acct-hkbank: such a write is not hkbank's balance
    assert feed(monitor, [layout_write_account("t-other", 1, namespace=US_NS)]) == [[]]
    assert list(monitor.state.balances.values()) == [100]


def test_on_the_layout_pair_data_withheld_in_its_pair_namespace_is_named() -> None:
    for monitor in (layout_regulator(),
                    BlockMonitor(US_NS, placed("usbank", is_regulator=False))):
        [out] = feed(monitor, [layout_pay("t-pay")], withhold={(0, PAIR)})
        assert [(a.problem, a.namespace, a.collection, a.creator_msp_id) for a in out
                if isinstance(a, PrivateDataAlert)] == [("missing", PAIRS_NS, PAIR, "HKBankMSP")]
    # the payee's monitor of its own namespace alone (the flaw fixed) saw nothing
    blind = BlockMonitor(US_NS, member_collections("usbank", BANKS, is_regulator=False))
    assert feed(blind, [layout_pay("t-pay")], withhold={(0, PAIR)}) == [[]]
    # a third bank is no member of the pair: nothing is missing for it
    third = [*BANKS, "cnbank"]
    cnbank = BlockMonitor("dtoken-cnbank", {
        c: collection_namespace("dtoken", third, c)
        for c in member_collections("cnbank", third, is_regulator=False)})
    assert feed(cnbank, [layout_pay("t-pay")], withhold={(0, PAIR)}) == [[]]


def test_honest_layout_blocks_raise_nothing() -> None:
    out = feed(layout_regulator(), [layout_write_account("t-open", 100)],
               [layout_set_hold("t-hold", False)], [layout_pay("t-pay")])
    assert out == [[], [], []]


def test_for_profile_places_the_collections_with_the_profile(tmp_path: Path) -> None:
    from dtoken.profile import Profile
    from unit.dtoken.conftest import write_profile

    path = write_profile(tmp_path / "state", org="usbank")
    single = BlockMonitor.for_profile(Profile.load(path))
    assert single.namespaces == {"dtoken"}
    data = json.loads(path.read_text())
    data.update(namespace_layout="namespaces", chaincode="dtoken-usbank")
    path.write_text(json.dumps(data))
    monitor = BlockMonitor.for_profile(Profile.load(path))
    assert monitor.chaincode == "dtoken-usbank"
    assert dict(monitor.placement) == {
        "acct-usbank": "dtoken-usbank", "holds-usbank": "dtoken-usbank",
        "pair-usbank-hkbank": PAIRS_NS, "pair-hkbank-usbank": PAIRS_NS}


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


# --- following a Deliver stream ---------------------------------------------------------


class _Info:
    def __init__(self, height: int) -> None:
        self.height = height


class _Queries:
    def __init__(self, height: int) -> None:
        self._height = height

    async def get_chain_info(self) -> _Info:
        return _Info(self._height)


class _Stream:
    def __init__(self, network: _Network, start: int) -> None:
        self._network, self._start = network, start

    async def __aenter__(self) -> AsyncIterator[Any]:
        return self._messages()

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def _messages(self) -> AsyncIterator[Any]:
        for number in range(self._start, len(self._network.blocks)):
            if self._network.fail_at == number:
                self._network.fail_at = None
                raise BlockEventsError("peer went away", code=grpc.StatusCode.UNAVAILABLE)
            yield block_and_private_data(number, self._network.blocks[number])
        await asyncio.Event().wait()  # a live stream: nothing more until cancelled


class _Network:
    """Deliver as a peer serves it: from the checkpoint if any, else from ``start_block``."""

    def __init__(self, blocks: list[list[Tx]], fail_at: int | None = None) -> None:
        self.blocks, self.fail_at = blocks, fail_at
        self.starts: list[int] = []

    def get_ledger_queries(self) -> _Queries:
        return _Queries(len(self.blocks))

    def block_and_private_data_events(
        self, *, start_block: int | None, checkpoint: MonitorState
    ) -> _Stream:
        start = checkpoint.block_number
        start = start if start is not None else (start_block or 0)
        self.starts.append(start)
        return _Stream(self, start)


class _Member:
    def __init__(self, network: _Network) -> None:
        self.network = network


HISTORY = [[write_account("t-open", 100)], [set_hold("t-hold", True)],
           [write_account("t-debit", 60)]]


async def test_follow_once_reads_to_the_height_and_saves_its_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    monitor = regulator(MonitorState.load(path))
    network = _Network(HISTORY)
    alerts: list[Any] = []
    assert await follow(_Member(network), monitor, on_alert=alerts.append,  # type: ignore[arg-type]
                        once=True) == 3
    assert [a.transaction_id for a in breaches(alerts)] == ["t-debit"]
    assert MonitorState.load(path).next_block == 3
    # Nothing new: a second pass reads nothing and opens no stream.
    assert await follow(_Member(network), monitor, on_alert=alerts.append,  # type: ignore[arg-type]
                        once=True) == 0
    assert network.starts == [0]


async def test_follow_resumes_after_a_lost_stream_and_stops_when_told() -> None:
    monitor = regulator()
    network = _Network(HISTORY, fail_at=2)
    stop = asyncio.Event()
    alerts: list[Any] = []

    def seen(alert: Any) -> None:
        alerts.append(alert)
        stop.set()

    inspected = await asyncio.wait_for(follow(
        _Member(network), monitor, on_alert=seen, stop=stop,  # type: ignore[arg-type]
        reconnect_delay=0.01), 5)
    assert inspected == 1  # the block after the reconnect
    assert network.starts == [0, 2]  # resumed at the state's next block
    assert [a.transaction_id for a in breaches(alerts)] == ["t-debit"]


async def test_a_live_follow_stops_while_waiting_for_a_block() -> None:
    stop = asyncio.Event()
    task = asyncio.ensure_future(follow(_Member(_Network(HISTORY)), regulator(),  # type: ignore[arg-type]
                                        on_alert=lambda a: None, stop=stop))
    await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(task, 5) == 3


def test_the_cli_parses_the_monitor_command(tmp_path: Path) -> None:
    from dtoken.cli import build_parser

    args = build_parser().parse_args(["--bank", "regulator", "monitor", "--once", "--json",
                                      "--state", str(tmp_path / "s.json"), "--from-block", "7"])
    assert (args.once, args.json, args.from_block) == (True, True, 7)
    assert args.state == tmp_path / "s.json"
