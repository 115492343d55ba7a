"""Bilateral exposure caps on the real network (issue 13, item 9): usbank caps what hkbank may
owe it; the payments beyond the cap stay pending with the reason, and are accepted once
hkbank's settlement is confirmed; the payer sees the headroom it has left, the regulator's
audit lists the cap (and, without failing, a pair over it).

The cap is set relative to what hkbank already owes (other modules of the same run may have
left a debt) and raised out of the way at the end, so no later test meets it.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import fabgateway
import pytest
from dtoken import errors
from dtoken.cli import main
from dtoken.listener import IncomingListener
from dtoken.models import TransferStatus
from dtoken.money import Money
from harness import TestNetwork
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)


def ref(tag: str) -> str:
    return f"{tag}-{RUN}-{secrets.token_hex(3)}"


def usd(minor: int) -> Money:
    return Money(minor, "USD", 2)


async def test_payments_beyond_the_cap_wait_for_the_settlement(network: TestNetwork) -> None:
    async with (bank(network, "hkbank", "minter") as hk, bank(network, "usbank") as us,
                regulator(network) as reg):
        owed0 = (await us.obligations("hkbank")).owed("hkbank", "USD")
        capped = await us.set_exposure_cap("hkbank", usd(owed0 + 10_000))
        try:
            await hk.wait_for_commit(capped.tx_id)
            assert await hk.headroom("usbank", "USD") == usd(10_000)
            assert await us.headroom("hkbank", "USD") is None  # hkbank set no cap on usbank
            payer = (await hk.open_account("USD", "CIF", reference=ref("open"))).account_id
            await hk.mint(payer, usd(50_000), reference=ref("dep"))
            payee = (await us.open_account("USD", "EXP", reference=ref("open"))).account_id
            sent = []
            for _ in range(3):  # 3 x 40.00 USD under a 100.00 USD cap: one must wait
                payment = await hk.transfer(payer, "usbank", payee, usd(4_000),
                                            reference=ref("inv"))
                assert payment.transfer_id is not None
                sent.append(payment.transfer_id)
            await us.wait_for_commit(payment.receipt.tx_id)

            listener = IncomingListener(us, checkpointer=fabgateway.InMemoryCheckpointer())
            first = {h.transfer.transfer_id: h for h in await listener.process_pending()
                     if h.transfer.transfer_id in sent}
            assert sorted(h.action for h in first.values()) == ["accepted", "accepted", "held"]
            (held,) = [h for h in first.values() if h.action == "held"]
            assert held.reason == ("exposure cap: usbank's cap on hkbank leaves 20.00 USD in "
                                   "this pass, the transfer is 40.00 USD")
            waiting = held.transfer.transfer_id
            status = (await us.get_transfer(waiting, "hkbank", "usbank")).status
            assert status is TransferStatus.PENDING
            assert await us.balance(payee) == usd(8_000)
            for h in first.values():  # hkbank's peer has both accepts
                if h.receipt is not None:
                    await hk.wait_for_commit(h.receipt.tx_id)
            assert await hk.headroom("usbank", "USD") == usd(2_000)
            with pytest.raises(errors.ExposureCapExceeded):  # by hand, too: nothing sent
                await us.accept(waiting, "hkbank")

            again = await listener.process_pending(full=True)
            assert [h.action for h in again if h.transfer.transfer_id in sent] == ["held"]

            settled = await us.record_settlement("hkbank", usd(8_000),
                                                 rtgs_reference=ref("RTGS"))
            await hk.wait_for_commit(settled.tx_id)
            assert await hk.headroom("usbank", "USD") == usd(10_000)
            last = [h for h in await listener.process_pending(full=True)
                    if h.transfer.transfer_id in sent]
            assert [(h.transfer.transfer_id, h.action) for h in last] == [(waiting, "accepted")]
            assert await us.balance(payee) == usd(12_000)
            assert last[0].receipt is not None
            await hk.wait_for_commit(last[0].receipt.tx_id)
            assert await hk.headroom("usbank", "USD") == usd(6_000)
            (row,) = [o for o in (await hk.obligations("usbank")).obligations
                      if (o.debtor, o.currency) == ("hkbank", "USD")]
            assert (row.cap, row.headroom) == (usd(owed0 + 10_000), usd(6_000))

            # Lowered below what is owed: the audit lists the pair, and does not fail for it.
            lowered = await us.set_exposure_cap("hkbank", usd(owed0))
            await reg.wait_for_commit(lowered.tx_id)
            report = await reg.audit()
            (cap,) = [c for c in report.caps
                      if (c["debtor"], c["creditor"], c["currency"]) == ("hkbank", "usbank",
                                                                         "USD")]
            assert (cap["cap"], cap["headroom"]) == (owed0, 0)
            assert cap in report.over_cap
            assert not [f for f in report.failures if "cap" in f]
            assert await hk.headroom("usbank", "USD") == usd(0)
        finally:
            out_of_the_way = await us.set_exposure_cap("hkbank", usd(10**15))
            await hk.wait_for_commit(out_of_the_way.tx_id)


def text_of(minor: int) -> str:
    """As the CLI prints money (thousands separated: the shared network's debts run high)."""
    return f"{minor // 100:,}.{minor % 100:02d} USD"


def test_the_cli_sets_shows_and_keeps_the_cap(
    network: TestNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    def dtoken(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--state-dir", str(network.state_dir), *args])
        out, err = capsys.readouterr()
        return code, out, err

    def ok(*args: str) -> str:
        code, out, err = dtoken(*args)
        assert code == 0, err
        return out

    def data(*args: str) -> Any:
        return json.loads(ok("--json", *args))

    def hk_debt(page: Any) -> dict[str, Any]:
        (row,) = [o for o in page["obligations"]
                  if (o["debtor"], o["currency"]) == ("hkbank", "USD")] or [None]
        return row or {"owed": {"minor": 0}, "cap": None, "headroom": None}

    owed0 = hk_debt(data("--bank", "cnbank", "obligations", "--with", "hkbank"))["owed"]["minor"]
    cap = owed0 + 1_000
    said = ok("--bank", "cnbank", "cap", text_of(cap), "--debtor", "hkbank")
    try:  # from here on, whatever fails, the cap is raised out of the other modules' way
        assert f"cnbank caps what hkbank may owe it unsettled at {text_of(cap)}" in said
        shown = ok("--bank", "hkbank", "obligations", "--with", "cnbank")  # the payer's view
        assert "CAP" in shown
        assert "HEADROOM" in shown
        row = hk_debt(data("--bank", "hkbank", "obligations", "--with", "cnbank"))
        assert (row["cap"]["minor"], row["headroom"]["minor"]) == (cap, 1_000)

        payer = data("--bank", "hkbank", "account", "open", "--currency", "USD",
                     "--owner", f"CIF-{RUN}")["account_id"]
        ok("--bank", "hkbank", "mint", payer, "100.00", "--reference", ref("dep"))
        payee = data("--bank", "cnbank", "account", "open", "--currency", "USD",
                     "--owner", f"CIF-{RUN}")["account_id"]
        tid = data("--bank", "hkbank", "transfer", payer, payee, "15.00", "--to-bank",
                   "cnbank", "--reference", ref("inv"))["transfer_id"]
        deadline = time.monotonic() + 20
        while tid not in {t["transfer_id"] for t in data("--bank", "cnbank", "incoming")}:
            assert time.monotonic() < deadline, "the payment never reached cnbank"
            time.sleep(0.2)
        code, _, err = dtoken("--bank", "cnbank", "accept", tid, "--from-bank", "hkbank")
        assert code == 4
        assert "refused by the exposure cap" in err
        assert "accepted transfer" in ok("--bank", "cnbank", "accept", tid, "--from-bank",
                                         "hkbank", "--force")
        audit = data("--bank", "regulator", "audit")
        over = [c for c in audit["over_cap"]
                if (c["debtor"], c["creditor"], c["currency"]) == ("hkbank", "cnbank", "USD")]
        assert over, audit["over_cap"]
        assert "OVER" in ok("--bank", "regulator", "audit")
    finally:
        ok("--bank", "cnbank", "cap", text_of(10**15), "--debtor", "hkbank")
