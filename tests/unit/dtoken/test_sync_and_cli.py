"""The blocking facade, and the CLI's parsing and exit codes (without a network)."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import grpc
import pytest
from dtoken import cli_format as fmt
from dtoken.bank import Bank
from dtoken.cli import (
    EXIT_CONTRACT,
    EXIT_FAULT,
    EXIT_USAGE,
    build_parser,
    main,
    read_secret,
)
from dtoken.errors import InsufficientFunds, UsageError
from dtoken.models import AuditReport, HistoryEntry, Obligation, Obligations
from dtoken.money import Money
from dtoken.profile import Profile
from dtoken.sync import SyncBank
from fabgateway.blocking import LoopThread
from unit.dtoken.conftest import FAST, write_profile
from unit.dtoken.sdk_fakes import ACCOUNT, SdkPeer
from unit.fabgateway.gw_fakes import start_server


def test_the_blocking_facade_runs_the_async_client_and_raises_its_errors(
    tmp_path: Path,
) -> None:
    loop = LoopThread()  # the fake peer runs on the facade's own loop, as a remote peer would
    peer = SdkPeer()
    server = loop.run(start_server(peer))
    profile = Profile.load(write_profile(tmp_path / "state"))

    async def make() -> Bank:
        channel = grpc.aio.insecure_channel(server.address)
        return Bank(profile, channel, identity="minter", policy=FAST, owns_channel=True)

    bank = SyncBank(loop.run(make()), loop)
    try:
        receipt = bank.mint(ACCOUNT, bank.money("5.00 USD"), reference="dep-1")
        assert bank.mint(ACCOUNT, 500, reference="dep-1").tx_id == receipt.tx_id
        assert bank.balance(ACCOUNT) == Money(500, "USD", 2)
        with pytest.raises(InsufficientFunds):
            bank.burn(ACCOUNT, 501, reference="redeem-1")
        assert bank.name == "hkbank"
    finally:
        loop.run(server.server.stop(0))
        bank.close()
    assert loop.loop.is_closed()
    assert not any(t.name == "fabgateway-loop" for t in threading.enumerate())


def test_common_options_go_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--bank", "hkbank", "--json", "balance", "A" * 22])
    after = parser.parse_args(["balance", "A" * 22, "--bank", "hkbank", "--json"])
    for args in (before, after):
        assert (args.bank, args.json, args.account) == ("hkbank", True, "A" * 22)
    plain = parser.parse_args(["--bank", "usbank", "incoming"])
    assert not getattr(plain, "json", False)
    assert parser.parse_args(["network", "status"]).command == "network"


def test_usage_errors_exit_2_and_say_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = write_profile(tmp_path / "state")
    state = str(tmp_path / "state")
    assert main(["--state-dir", state, "balance", "A" * 22]) == EXIT_USAGE
    assert "give --bank NAME" in capsys.readouterr().err
    assert main(["--state-dir", state, "--bank", "cnbank", "balance", "A" * 22]) == EXIT_USAGE
    assert "no connection profile for 'cnbank'" in capsys.readouterr().err
    code = main(["--profile", str(profile), "--json", "mint", "A" * 22, "1.001 USD",
                 "--reference", "r"])
    assert code == EXIT_USAGE
    captured = capsys.readouterr()
    assert "more than 2 decimals" in captured.err
    assert json.loads(captured.out)["error"]["kind"] == "usage"
    assert main(["--profile", str(profile), "audit"]) == EXIT_USAGE
    assert "regulator" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["--bank", "hkbank", "mint", "A" * 22])  # no amount, no reference
    assert exited.value.code == EXIT_USAGE


def test_an_unreachable_peer_is_a_network_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = write_profile(tmp_path / "state")  # its gateway is 127.0.0.1:1
    assert main(["--profile", str(profile), "balance", "A" * 22]) == EXIT_FAULT
    assert "network fault" in capsys.readouterr().err
    assert EXIT_CONTRACT == 4


def test_obligations_and_audit_text_show_caps_and_headroom() -> None:
    def usd(minor: int) -> Money:
        return Money(minor, "USD", 2)

    capped = Obligation("hkbank", "usbank", "USD", usd(500), usd(0), usd(0), usd(500),
                        usd(1_000), usd(500))
    free = Obligation("usbank", "hkbank", "USD", usd(7), usd(0), usd(0), usd(7))
    text = fmt.obligations_text(Obligations(("hkbank", "usbank"), (capped, free), {}, {}, ()))
    header, first, second = text.splitlines()[:3]
    assert header.split()[-2:] == ["CAP", "HEADROOM"]
    assert first.split()[-4:] == ["10.00", "USD", "5.00", "USD"]
    assert second.split()[-2:] == ["-", "-"]
    over = {"debtor": "hkbank", "creditor": "usbank", "currency": "USD", "owed": 500,
            "cap": 100, "headroom": 0}
    report = AuditReport(True, (), (), (), (), {}, (), (), (over,), (over,))
    audit = fmt.audit_text(report, {"USD": 2})
    assert audit.startswith("audit: OK")  # over a cap is listed, not failed
    assert audit.splitlines()[-1].split()[-1] == "OVER"


def test_a_receipt_prints_as_json_without_its_raw_response() -> None:
    import json as _json

    from dtoken import cli_format
    from dtoken.submitter import Receipt

    receipt = Receipt("ref", "coalesced_payout", "tx", 3, 0, False, result=b'{"results":[]}')
    data = _json.loads(cli_format.dumps(receipt))  # bytes would not serialize
    assert data == {"reference": "ref", "transaction": "coalesced_payout", "tx_id": "tx",
                    "block_number": 3, "attempt": 0, "replayed": False}


def test_a_pvp_claim_reads_its_preimage_from_a_file_never_an_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever knows the preimage can claim the leg: it must not sit in the process list."""
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["pvp", "claim", "T" * 22, "--from-bank", "usbank",
                           "--preimage", "ab" * 32])
    args = parser.parse_args(["pvp", "claim", "T" * 22, "--from-bank", "usbank",
                              "--preimage-file", "-"])
    assert args.preimage_file == "-"
    secret = tmp_path / "preimage"
    secret.write_text("ab" * 32 + "\n")
    assert read_secret(str(secret), "the preimage") == "ab" * 32
    monkeypatch.setattr("sys.stdin", io.StringIO(" cd\n"))
    assert read_secret("-", "the preimage") == "cd"
    with pytest.raises(UsageError, match="cannot read the preimage file") as missing:
        read_secret("ab" * 32, "the preimage")  # the secret given in the file's place
    assert "ab" * 32 not in str(missing.value)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UsageError, match="is empty"):
        read_secret(str(tmp_path / "empty"), "the preimage")


def test_history_text_numbers_the_events_of_one_record_seq_dot_item() -> None:
    def entry(seq: int, item: int, kind: str, minor: int) -> HistoryEntry:
        return HistoryEntry(seq=seq, kind=kind, delta=Money(minor, "USD", 2),
                            balance_after=Money(0, "USD", 2), counterparty_bank=None,
                            counterparty_account=None, transfer_id=None, detail="", tx_id="t",
                            at="2026-12-06", item=item)

    text = fmt.history_text([entry(0, 0, "opened", 0), entry(1, 0, "payment_out", -1),
                             entry(1, 1, "payment_out", -2), entry(2, 0, "mint", 5)])
    seqs = [line.split()[0] for line in text.splitlines()[1:] if line.strip()]
    assert [s for s in seqs if s[0].isdigit()] == ["0", "1.0", "1.1", "2"]
