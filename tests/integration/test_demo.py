"""Issue 8: the demo's story on the real network (what ``scripts/demo`` runs after ``up``).

The story runs on the session network, as a function (``run_demo``) whose outcome is checked
here; then ``python -m dtoken.demo`` runs it again on the same, already-up network, as
``scripts/demo`` does (a new run id: nothing collides with the first run).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dtoken.conditional import EscrowState, PaymentRequestStatus
from dtoken.demo import DemoResult, run_demo
from dtoken.models import TransferStatus
from dtoken.sync import SyncRegulator
from harness import TestNetwork


@pytest.fixture(scope="module")
def story(network: TestNetwork) -> tuple[DemoResult, list[str]]:
    lines: list[str] = []
    return run_demo(network, out=lines.append), lines


def test_the_story_completes_and_the_audit_passes(
    story: tuple[DemoResult, list[str]],
) -> None:
    result, lines = story
    assert result.audit is not None
    assert result.audit.ok, result.audit.failures
    assert result.transfers == {
        "tools": TransferStatus.ACCEPTED,
        "organics": TransferStatus.REFUNDED,
        "gadgets": TransferStatus.ACCEPTED,
        "textiles": TransferStatus.ACCEPTED,
        "fees": TransferStatus.ACCEPTED,  # cnbank's customer pays the marketplace
    }
    assert {key: money.format() for key, money in result.balances.items()} == {
        "market_usd": "34,500.00 USD",  # 50,000 - 12,500 - 7,300 - 4,200 + 7,300 refunded + 1,200
        "market_cnh": "212,000.00 CNH",
        "tools": "10,000.00 USD",  # 12,500 received, 2,500 redeemed
        "organics": "0.00 USD",  # its payment was rejected
        "textiles": "88,000.00 CNH",
        "gadgets": "8,000.00 USD",  # 5,000 + 4,200 - 1,200 fees
    }
    # a US buyer's USD became a mainland exporter's CNH through the dealer at hkbank (PvP)
    assert result.pvp == {"leg1": TransferStatus.ACCEPTED, "leg2": TransferStatus.ACCEPTED}
    assert {key: money.format() for key, money in result.pvp_balances.items()} == {
        "buyer": "8,000.00 USD", "dealer_usd": "2,000.00 USD",
        "dealer_cnh": "485,600.00 CNH", "ceramics": "14,400.00 CNH",
    }
    # a US buyer's USD became an exporter's CNH at the exporter's bank's quote (7.2345)
    assert result.quoted is TransferStatus.ACCEPTED
    assert {key: money.format() for key, money in result.quoted_balances.items()} == {
        "apparel": "2,000.00 USD", "furniture": "21,703.50 CNH"}
    assert result.escrows == {"order": EscrowState.PAID}
    assert result.requests == {"invoice": PaymentRequestStatus.PAID}
    text = "\n".join(lines)
    for step in ("Accounts opened, deposits minted", "Payments decided automatically",
                 "An order paid into escrow, released by the marketplace's delivery",
                 "An exporter's invoice paid by request, once",
                 "Interbank obligations netted", "The regulator freezes an account",
                 "What each bank can and cannot see", "The regulator's audit"):
        assert step in text
    assert "audit: OK" in text


def test_the_listeners_decided_and_the_sweeper_refunded(
    story: tuple[DemoResult, list[str]],
) -> None:
    result, _ = story
    organics = result.accounts["organics"][1]
    mine = {h.action: h for h in result.decisions if h.transfer.payee_account == organics}
    assert {"rejected", "refunded"} <= set(mine)
    assert mine["rejected"].reason == "no invoice number in the remittance"
    assert "accepted" not in mine
    accepted = {h.transfer.payee_account for h in result.decisions if h.action == "accepted"}
    for key in ("tools", "gadgets", "textiles", "market_usd"):
        assert result.accounts[key][1] in accepted, key


def test_what_is_refused(story: tuple[DemoResult, list[str]]) -> None:
    result, _ = story
    refused = {(r.who, r.what): r.code for r in result.refused}
    assert refused == {
        ("cnbank", "payment from a frozen account"): "FROZEN",
        ("hkbank", "usbank's account of Liberty Machine Tools"): "NOT_AUTHORIZED",
        ("usbank", "cnbank's account of Pearl Textiles"): "NOT_AUTHORIZED",
        ("usbank", "the hkbank->cnbank CNH payment"): "NOT_AUTHORIZED",
        ("cnbank", "usbank's account of Boston Organics"): "NOT_AUTHORIZED",
        ("cnbank", "what hkbank and usbank owe each other"): "NOT_AUTHORIZED",
    }


def test_settlements_bring_the_net_positions_to_zero(
    story: tuple[DemoResult, list[str]], network: TestNetwork
) -> None:
    result, _ = story
    settled = {(d, c, m.currency) for d, c, m, _ in result.settlements}
    assert {("hkbank", "usbank", "USD"), ("hkbank", "cnbank", "USD"),
            ("hkbank", "cnbank", "CNH")} <= settled
    assert result.net_after
    assert set(result.net_after.values()) == {0}
    profile = network.profile_path("regulator")
    with SyncRegulator.connect(profile) as reg:
        for (a, b, currency), net in result.net_after.items():
            assert reg.obligations(a, b).net[currency].minor == net
        bank, gadgets = result.accounts["gadgets"]
        hold = reg.account(bank, gadgets).hold
        assert hold is not None
        assert hold.frozen
        bank, tools = result.accounts["tools"]
        assert [e.kind for e in reg.history(bank, tools)] == ["opened", "payment_in", "burn"]


def test_the_demo_module_runs_again_on_the_same_network(
    story: tuple[DemoResult, list[str]], network: TestNetwork
) -> None:
    """What scripts/demo runs after ``dtoken network up``; a second run on an up network."""
    result, _ = story
    done = subprocess.run(
        [sys.executable, "-m", "dtoken.demo", "--state-dir", str(network.state_dir)],
        capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert result.run not in done.stdout  # a new run id
    assert "── Try next" in done.stdout
    assert "dtoken network down" in done.stdout
    assert done.stdout.rstrip().endswith("audit: OK")
