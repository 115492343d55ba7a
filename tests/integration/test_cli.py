"""The ``dtoken`` bank CLI on the real network: every command, human and JSON output, exit
codes (2 usage, 3 network fault, 4 refused by the contract).

Most commands run in-process through ``dtoken.cli.main`` (the same code the console script
runs, without an interpreter start each time); the console script itself runs as a process
for ``watch`` in the foreground and for a network fault.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dtoken.cli import main
from harness import TestNetwork

RUN = secrets.token_hex(3)
DTOKEN = Path(sys.executable).parent / "dtoken"

Run = Callable[..., tuple[int, str, str]]


def ref(tag: str) -> str:
    return f"cli-{tag}-{RUN}-{secrets.token_hex(3)}"


@pytest.fixture
def dtoken(network: TestNetwork, capsys: pytest.CaptureFixture[str]) -> Run:
    """``dtoken --state-dir <state> ARGS``: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--state-dir", str(network.state_dir), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def data(result: tuple[int, str, str]) -> Any:
    return json.loads(ok(result))


def open_account(dtoken: Run, bank: str, currency: str = "USD") -> str:
    opened = data(dtoken("--bank", bank, "--json", "account", "open", "--currency", currency,
                         "--owner", f"CIF-{secrets.token_hex(3)}"))
    return str(opened["account_id"])


def test_account_and_money_commands(dtoken: Run) -> None:
    owner = f"CIF-{RUN}"
    opened = data(dtoken("--bank", "hkbank", "--json", "account", "open", "--currency", "USD",
                         "--owner", owner, "--daily-limit", "500.00"))
    account = opened["account_id"]
    again = data(dtoken("--bank", "hkbank", "account", "open", "--currency", "USD",
                        "--owner", owner, "--daily-limit", "500.00", "--json"))
    assert (again["account_id"], again["receipt"]["replayed"]) == (account, True)

    deposit = ref("dep")
    minted = ok(dtoken("--bank", "hkbank", "mint", account, "1,000.00", "--reference", deposit))
    assert minted.startswith(f"minted 1,000.00 USD to {account}")
    replay = ok(dtoken("--bank", "hkbank", "mint", account, "1,000.00 USD",
                       "--reference", deposit))
    assert "already applied" in replay
    ok(dtoken("--bank", "hkbank", "burn", account, "100.00 USD", "--reference", ref("redeem")))
    balance = data(dtoken("--bank", "hkbank", "balance", account, "--json"))
    assert balance["balance"] == {"minor": 90_000, "currency": "USD", "text": "900.00 USD"}
    assert ok(dtoken("--bank", "hkbank", "balance", account)).strip() == "900.00 USD"
    listed = ok(dtoken("--bank", "hkbank", "account", "list", "--currency", "USD"))
    assert any(account in line and "900.00 USD" in line and owner in line
               for line in listed.splitlines())
    shown = ok(dtoken("--bank", "hkbank", "account", "show", account))
    assert "daily outflow 500.00 USD" in shown
    history = ok(dtoken("--bank", "hkbank", "history", account))
    assert [line.split()[2] for line in history.splitlines()[1:]] == ["opened", "mint", "burn"]
    assert data(dtoken("--bank", "hkbank", "--json", "history", account, "--limit", "1"))[0][
        "kind"] == "opened"
    supply = ok(dtoken("--bank", "hkbank", "supply", "USD"))
    assert supply.startswith("hkbank USD supply ")

    code, out, err = dtoken("--bank", "hkbank", "--json", "burn", account, "5,000.00",
                            "--reference", ref("redeem"))
    assert code == 4
    assert json.loads(out)["error"]["code"] == "INSUFFICIENT_FUNDS"
    assert "refused by the contract: INSUFFICIENT_FUNDS" in err
    code, _, err = dtoken("--bank", "hkbank", "mint", account, "1.005", "--reference", "x")
    assert code == 2
    assert "more than 2 decimals" in err
    code, _, err = dtoken("--bank", "hkbank", "--identity", "operator", "mint", account, "1",
                          "--reference", ref("dep"))
    assert code == 4
    assert "NOT_AUTHORIZED" in err

    assert "froze" in ok(dtoken("--bank", "hkbank", "freeze", account))
    code, _, err = dtoken("--bank", "hkbank", "transfer", account, account, "1.00",
                          "--reference", ref("pay"))
    assert code == 4
    assert "unfroze" in ok(dtoken("--bank", "hkbank", "freeze", account, "--unfreeze"))
    empty = open_account(dtoken, "hkbank")
    assert "closed" in ok(dtoken("--bank", "hkbank", "freeze", empty, "--close"))
    shown = data(dtoken("--bank", "hkbank", "--json", "account", "show", empty))
    assert shown["status"] == "closed"


def test_payment_commands(dtoken: Run, network: TestNetwork) -> None:
    payer = open_account(dtoken, "hkbank")
    ok(dtoken("--bank", "hkbank", "mint", payer, "500.00", "--reference", ref("dep")))
    local = open_account(dtoken, "hkbank")
    payee = open_account(dtoken, "usbank")

    internal = data(dtoken("--bank", "hkbank", "--json", "transfer", payer, local, "25.00",
                           "--reference", ref("pay")))
    assert internal["kind"] == "internal"
    sent = data(dtoken("--bank", "hkbank", "--json", "transfer", payer, payee, "40.00",
                       "--to-bank", "usbank", "--reference", ref("inv"),
                       "--remittance", "invoice 7", "--originator", "name=Harbour Imports"))
    first = sent["transfer_id"]
    incoming = wait_listed(dtoken, "usbank", "incoming", first)
    assert incoming["transfer"]["originator"] == {"name": "Harbour Imports"}
    assert incoming["transfer"]["remittance"] == "invoice 7"
    assert first in ok(dtoken("--bank", "hkbank", "outgoing"))
    assert "accepted transfer" in ok(dtoken("--bank", "usbank", "accept", first,
                                            "--from-bank", "hkbank"))
    code, _, err = dtoken("--bank", "usbank", "accept", first, "--from-bank", "hkbank",
                          "--json")
    assert code == 0, err  # the same accept again: the first one's receipt

    second = data(dtoken("--bank", "hkbank", "--json", "transfer", payer, payee, "10.00",
                         "--to-bank", "usbank", "--reference", ref("inv")))["transfer_id"]
    wait_listed(dtoken, "usbank", "incoming", second)
    ok(dtoken("--bank", "usbank", "reject", second, "--from-bank", "hkbank",
              "--reason", "unknown beneficiary"))
    assert wait_listed(dtoken, "hkbank", "outgoing", second)["status"] == "rejected"
    assert "refunded transfer" in ok(dtoken("--bank", "hkbank", "refund", second,
                                            "--to-bank", "usbank"))

    third = data(dtoken("--bank", "hkbank", "--json", "transfer", payer, payee, "5.00",
                        "--to-bank", "usbank", "--reference", ref("inv")))["transfer_id"]
    wait_listed(dtoken, "usbank", "incoming", third)
    ok(dtoken("--bank", "usbank", "reject", third, "--from-bank", "hkbank"))
    wait_listed(dtoken, "hkbank", "outgoing", third)
    swept = data(dtoken("--bank", "hkbank", "--json", "sweep"))
    assert third in {h["transfer"]["transfer_id"] for h in swept if h["action"] == "refunded"}

    payout = data(dtoken("--bank", "hkbank", "--json", "payout", payer,
                         "--pay", f"hkbank:{local}:1.00", "--pay", f"usbank:{payee}:2.00",
                         "--reference", ref("batch")))
    assert payout["transfer_ids"][0] is None
    assert payout["transfer_ids"][1]
    balance = data(dtoken("--bank", "hkbank", "--json", "balance", payer))["balance"]
    assert balance["minor"] == 50_000 - 2_500 - 4_000 - 300

    owed = data(dtoken("--bank", "usbank", "--json", "obligations", "--with", "hkbank"))
    assert any(o["debtor"] == "hkbank" and o["accepted"]["minor"] >= 4_000
               for o in owed["obligations"])
    settled = ok(dtoken("--bank", "usbank", "settle", "40.00 USD", "--debtor", "hkbank",
                        "--rtgs-reference", ref("RTGS")))
    assert settled.startswith("recorded 40.00 USD received from hkbank")
    assert "DEBTOR" in ok(dtoken("--bank", "hkbank", "obligations", "--with", "usbank"))


def wait_listed(dtoken: Run, bank: str, command: str, transfer_id: str) -> Any:
    """The transfer as ``incoming``/``outgoing`` lists it, once the bank's peer has it."""
    deadline = time.monotonic() + 20
    while True:
        for item in data(dtoken("--bank", bank, "--json", command)):
            if item["transfer_id"] == transfer_id:
                return {"transfer": item, "status": item["status"]}
        assert time.monotonic() < deadline, f"{transfer_id} never listed by {bank} {command}"
        time.sleep(0.2)


def test_regulator_commands(dtoken: Run) -> None:
    account = open_account(dtoken, "cnbank", "CNH")
    ok(dtoken("--bank", "cnbank", "mint", account, "300.00", "--reference", ref("dep")))
    froze = ok(dtoken("--bank", "regulator", "freeze", account, "--of-bank", "cnbank",
                      "--reason", "screening"))
    assert froze.startswith(f"froze cnbank/{account}")
    held = ok(dtoken("--bank", "regulator", "freeze", account, "--of-bank", "cnbank",
                     "--hold", "100.00"))
    assert held.startswith(f"holding 100.00 CNH on cnbank/{account}")
    shown = data(dtoken("--bank", "regulator", "--json", "history", account,
                        "--of-bank", "cnbank"))
    assert [e["kind"] for e in shown] == ["opened", "mint"]
    ok(dtoken("--bank", "regulator", "freeze", account, "--of-bank", "cnbank", "--release"))
    supply = ok(dtoken("--bank", "regulator", "supply", "CNH", "--of-bank", "cnbank"))
    assert supply.startswith("cnbank CNH supply")
    ok(dtoken("--bank", "regulator", "obligations", "--of-bank", "hkbank", "--with", "cnbank"))
    audit = data(dtoken("--bank", "regulator", "--json", "audit"))
    assert audit["ok"], audit["failures"]
    assert ok(dtoken("--bank", "regulator", "audit")).startswith("audit: OK")
    code, _, err = dtoken("--bank", "regulator", "freeze", account)
    assert code == 2
    assert "--of-bank" in err
    code, _, err = dtoken("--bank", "hkbank", "audit")
    assert code == 2


def test_identity_issue_gives_a_working_identity(dtoken: Run, network: TestNetwork) -> None:
    name = f"teller-{RUN}"
    issued = data(dtoken("--bank", "usbank", "--json", "identity", "issue", "--name", name,
                         "--role", "operator"))
    assert issued["attributes"] == {"operator": "true"}
    profile = network.profile(network.consortium.org("usbank"))
    assert profile["identities"][name]["attributes"]["operator"] == "true"
    account = data(dtoken("--bank", "usbank", "--identity", name, "--json", "account", "open",
                          "--currency", "USD", "--owner", name))["account_id"]
    assert account
    code, _, err = dtoken("--bank", "usbank", "--identity", name, "mint", account, "1.00",
                          "--reference", ref("dep"))
    assert code == 4  # no minter role
    assert "minter role is required" in err
    code, _, err = dtoken("--bank", "usbank", "identity", "issue", "--name", "bad/name")
    assert code == 2


def test_watch_accepts_incoming_transfers(dtoken: Run, network: TestNetwork) -> None:
    payer = open_account(dtoken, "hkbank")
    ok(dtoken("--bank", "hkbank", "mint", payer, "100.00", "--reference", ref("dep")))
    payee = open_account(dtoken, "cnbank")
    once = data(dtoken("--bank", "hkbank", "--json", "transfer", payer, payee, "1.00",
                       "--to-bank", "cnbank", "--reference", ref("inv")))["transfer_id"]
    wait_listed(dtoken, "cnbank", "incoming", once)
    out = ok(dtoken("--bank", "cnbank", "watch", "--once"))
    assert f"accepted {once}" in out

    # The console script, in the foreground, until SIGTERM.
    watcher = subprocess.Popen(
        [str(DTOKEN), "--state-dir", str(network.state_dir), "--bank", "cnbank", "watch",
         "--max-amount", "50.00 USD", "--checkpoint", str(network.state_dir / f"w-{RUN}.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert watcher.stderr is not None
        assert watcher.stderr.readline().startswith("watching cnbank")
        small = data(dtoken("--bank", "hkbank", "--json", "transfer", payer, payee, "2.00",
                            "--to-bank", "cnbank", "--reference", ref("inv")))["transfer_id"]
        large = data(dtoken("--bank", "hkbank", "--json", "transfer", payer, payee, "60.00",
                            "--to-bank", "cnbank", "--reference", ref("inv")))["transfer_id"]
        assert watcher.stdout is not None
        lines = [watcher.stdout.readline(), watcher.stdout.readline()]
    finally:
        watcher.send_signal(signal.SIGTERM)
        code = watcher.wait(15)
        for pipe in (watcher.stdout, watcher.stderr):
            if pipe is not None:
                pipe.close()
    assert code == 0
    decided = {line.split()[1]: line for line in lines}
    assert decided[small].startswith("accepted")
    assert decided[large].startswith("rejected")
    assert "above the bank's limit" in decided[large]


def test_a_network_fault_exits_3(network: TestNetwork, tmp_path: Path) -> None:
    profile = network.profile(network.consortium.org("hkbank"))
    profile["gateway"]["endpoint"] = "127.0.0.1:9"  # nothing listens there
    path = tmp_path / "hkbank.json"
    path.write_text(json.dumps(profile))
    result = subprocess.run([str(DTOKEN), "--profile", str(path), "balance", "x" * 22],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 3
    assert "network fault" in result.stderr
