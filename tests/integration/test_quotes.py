"""Conversion at the payee's bank on the real network (issue 17, item 1): cnbank quotes
usbank a firm USD->CNH rate, usbank's customer pays with it, cnbank's listener accepts and
credits CNH at the quoted rate, usbank owes cnbank USD; and the failure paths: a quote that
expired, an altered quote (the SDK's copy edited), a quote used twice, and usbank's modified
server claiming a better rate than cnbank gave (it commits in usbank's own collections;
cnbank's accept refuses it, its listener rejects it, usbank refunds its customer).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import time
from fractions import Fraction

import fabgateway
import pytest
from dtoken import errors
from dtoken.bank import Bank
from dtoken.cli import main
from dtoken.listener import IncomingListener
from dtoken.models import Quote, TransferStatus
from harness import TestNetwork
from harness.dishonest import chaincode_node, dishonest_server
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)


def ref(tag: str) -> str:
    return f"{tag}-{RUN}-{secrets.token_hex(3)}"


async def funded(client: Bank, currency: str, amount: str, owner: str) -> str:
    account = (await client.open_account(currency, owner, reference=ref("open"))).account_id
    if amount:
        await client.mint(account, client.money(amount, currency), reference=ref("dep"))
    return account


def listener(client: Bank) -> IncomingListener:
    return IncomingListener(client, checkpointer=fabgateway.InMemoryCheckpointer())


async def test_a_quoted_payment_credits_cnh_at_the_quoted_rate(network: TestNetwork) -> None:
    async with (
        bank(network, "usbank", "minter") as us,
        bank(network, "cnbank", "minter") as cn,
        regulator(network) as reg,
    ):
        buyer = await funded(us, "USD", "2000.00", "US-BUYER-Q1")
        exporter = await funded(cn, "CNH", "", "CN-EXPORTER-Q1")
        owed_before = (await cn.obligations("usbank")).owed("usbank", "USD")
        offered = await cn.offer_quote("usbank", cn.money("1000.00", "USD"), "CNH", "7.2345",
                                       reference=ref("quote"), rounding="payee")
        assert offered.payee_amount.minor == 723_450
        assert offered.rate == Fraction(72345, 10000)
        quote = await _read_quote(us, offered.quote_id)
        assert quote == offered
        payment = await us.pay_with_quote(buyer, exporter, quote, reference=ref("po"))
        assert payment.transfer_id is not None
        assert (await us.balance(buyer)).minor == 100_000
        await cn.wait_for_commit(payment.receipt.tx_id)
        seen = await cn.get_transfer(payment.transfer_id, "usbank", "cnbank")
        assert seen.quote_id == quote.quote_id
        assert seen.credit == cn.money("7234.50", "CNH")
        handled = await listener(cn).process_pending(full=True)
        (mine,) = [h for h in handled if h.transfer.transfer_id == payment.transfer_id]
        assert mine.action == "accepted", mine
        assert (await cn.balance(exporter)).minor == 723_450
        owed = (await cn.obligations("usbank")).owed("usbank", "USD")
        assert owed - owed_before == 100_000
        assert mine.receipt is not None
        await reg.wait_for_commit(mine.receipt.tx_id)
        report = await reg.audit()
        assert report.ok, report.failures
        cnh = {str(c["currency"]): c for c in report.currencies}["CNH"]
        assert int(cnh["converted_in"]) >= 723_450
        # a quote pays once
        with pytest.raises(errors.AlreadyExists):
            await us.pay_with_quote(buyer, exporter, quote, reference=ref("po-again"))


async def _read_quote(client: Bank, quote_id: str) -> Quote:
    """The payer bank reads the quote from its own peer (its private data may arrive a
    moment after the payee bank's commit)."""
    for _ in range(50):
        try:
            return await client.quote(quote_id, payee_bank="cnbank")
        except errors.NotFound:
            await asyncio.sleep(0.2)
    raise AssertionError("the quote never reached the payer bank's peer")


async def test_an_expired_or_altered_quote_is_refused(network: TestNetwork) -> None:
    async with (
        bank(network, "usbank", "minter") as us,
        bank(network, "cnbank", "minter") as cn,
    ):
        buyer = await funded(us, "USD", "100.00", "US-BUYER-Q2")
        exporter = await funded(cn, "CNH", "", "CN-EXPORTER-Q2")
        short = await cn.offer_quote("usbank", cn.money("10.00", "USD"), "CNH", "7.1",
                                     reference=ref("quote"), ttl_seconds=60)
        good = await cn.offer_quote("usbank", cn.money("10.00", "USD"), "CNH", "7.1",
                                    reference=ref("quote"))
        await _read_quote(us, good.quote_id)
        altered = dataclasses.replace(good, amount=us.money("20.00", "USD"))
        with pytest.raises(errors.InvalidArgument, match="quote's amount"):
            await us.pay_with_quote(buyer, exporter, altered, reference=ref("po"))
        with pytest.raises(errors.NotFound):  # a quote id cnbank never gave
            await us.pay_with_quote(buyer, exporter,
                                    dataclasses.replace(good, quote_id="q" * 32),
                                    reference=ref("po"))
        await asyncio.sleep(62)
        with pytest.raises(errors.Expired):
            await us.pay_with_quote(buyer, exporter, short, reference=ref("po"))
        assert (await us.balance(buyer)).minor == 10_000
        assert (await cn.balance(exporter)).minor == 0


async def test_a_payer_bank_claiming_a_better_rate_is_refused_and_refunds(
    network: TestNetwork,
) -> None:
    """usbank's modified server pays with cnbank's quote but writes twice its payee amount
    into the transfer, pinned as an honest one: it commits (usbank's own collections).
    cnbank's accept compares the transfer with its own quote and refuses; its listener
    rejects; usbank refunds: the exporter got nothing extra, the buyer is whole again."""
    async with (
        bank(network, "usbank", "minter") as us,
        bank(network, "cnbank", "minter") as cn,
    ):
        buyer = await funded(us, "USD", "50.00", "US-BUYER-Q3")
        exporter = await funded(cn, "CNH", "", "CN-EXPORTER-Q3")
        quote = await cn.offer_quote("usbank", cn.money("50.00", "USD"), "CNH", "7.2",
                                     reference=ref("quote"))
        await _read_quote(us, quote.quote_id)
        tid = secrets.token_hex(16)
        request = {"reference": ref("lie"), "payer_account": buyer, "payee_bank": "cnbank",
                   "payee_account": exporter, "amount": quote.amount.minor,
                   "quote_id": quote.quote_id, "transfer_id": tid}
        contract = us.network.get_contract(us.profile.chaincode)
        with dishonest_server(network, chaincode_node("usbank")):
            raw = await contract.submit_transaction(
                "pay_with_better_rate",
                transient_data={"request": json.dumps(request).encode()},
                endorsing_organizations=[us.msp_id])
        await cn.wait_for_commit(str(json.loads(raw)["tx_id"]))
        seen = await cn.get_transfer(tid, "usbank", "cnbank")
        assert seen.credit.minor == 2 * quote.payee_amount.minor  # the lie, as written
        with pytest.raises(errors.InvalidArgument, match="payee_amount"):
            await cn.accept(tid, "usbank", force=True)
        handled = await listener(cn).process_pending(full=True)
        (mine,) = [h for h in handled if h.transfer.transfer_id == tid]
        assert mine.action == "rejected"
        assert "quote refused" in mine.reason
        assert mine.receipt is not None
        await us.wait_for_commit(mine.receipt.tx_id)
        await us.refund(tid, "cnbank")
        assert (await us.balance(buyer)).minor == 5_000
        assert (await cn.balance(exporter)).minor == 0
        final = await us.get_transfer(tid, "usbank", "cnbank")
        assert final.status is TransferStatus.REFUNDED


async def test_a_payee_bank_cannot_rewrite_its_quote_alone(network: TestNetwork) -> None:
    """cnbank's modified server halves the payee amount of a quote it gave, endorsed by its
    own peer alone: Fabric invalidates it (the quote is pinned to both banks); usbank's
    customer pays with the quote as given and the exporter is credited what it said."""
    async with (
        bank(network, "usbank", "minter") as us,
        bank(network, "cnbank", "minter") as cn,
    ):
        buyer = await funded(us, "USD", "20.00", "US-BUYER-Q5")
        exporter = await funded(cn, "CNH", "", "CN-EXPORTER-Q5")
        quote = await cn.offer_quote("usbank", cn.money("20.00", "USD"), "CNH", "7.25",
                                     reference=ref("quote"))
        contract = cn.network.get_contract(cn.profile.chaincode)
        with (dishonest_server(network, chaincode_node("cnbank")),
              pytest.raises(fabgateway.CommitError) as invalid):
            await contract.submit_transaction(
                "rewrite_quote_alone", transient_data={"request": json.dumps({
                    "payee_bank": "cnbank", "payer_bank": "usbank",
                    "quote_id": quote.quote_id,
                    "payee_amount": quote.payee_amount.minor}).encode()},
                endorsing_organizations=[cn.msp_id])
        assert invalid.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
        assert await cn.quote(quote.quote_id, payee_bank="cnbank",
                              payer_bank="usbank") == quote
        seen = await _read_quote(us, quote.quote_id)
        assert seen.payee_amount == cn.money("145.00", "CNH")
        payment = await us.pay_with_quote(buyer, exporter, seen, reference=ref("po"))
        assert payment.transfer_id is not None
        await cn.wait_for_commit(payment.receipt.tx_id)
        await cn.accept(payment.transfer_id, "usbank", force=True)
        assert (await cn.balance(exporter)).minor == 14_500


def test_the_quote_commands(network: TestNetwork, capsys: pytest.CaptureFixture[str]) -> None:
    """``dtoken quote offer`` at the payee's bank, ``quote show`` and ``quote pay`` at the
    payer's, ``accept`` at the payee's; exit 2 for a rate that is not exact, 4 for a quote
    used twice."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--state-dir", str(network.state_dir), *args])
        out, err = capsys.readouterr()
        return code, out, err

    def ok(*args: str) -> str:
        code, out, err = run(*args)
        assert code == 0, err
        return out

    buyer = json.loads(ok("--bank", "usbank", "--json", "account", "open", "--currency", "USD",
                          "--owner", f"CIF-{RUN}-Q4"))["account_id"]
    ok("--bank", "usbank", "mint", buyer, "100.00 USD", "--reference", ref("dep"))
    exporter = json.loads(ok("--bank", "cnbank", "--json", "account", "open", "--currency",
                             "CNH", "--owner", f"CIF-{RUN}-Q4"))["account_id"]
    assert run("--bank", "cnbank", "quote", "offer", "usbank", "100.00 USD", "CNH",
               "seven", "--reference", ref("q"))[0] == 2
    offered = json.loads(ok("--bank", "cnbank", "--json", "quote", "offer", "usbank",
                            "100.00 USD", "CNH", "7.2345", "--reference", ref("q"),
                            "--rounding", "payee"))
    assert offered["payee_amount"]["text"] == "723.45 CNH"
    assert offered["rate"] == "14469/2000"
    quote_id = offered["quote_id"]
    for _ in range(50):  # the payer bank's peer may receive the private write a moment later
        code, shown, _err = run("--bank", "usbank", "quote", "show", quote_id,
                                "--payee-bank", "cnbank")
        if code == 0:
            break
        time.sleep(0.2)
    assert "100.00 USD -> 723.45 CNH" in shown
    paid = json.loads(ok("--bank", "usbank", "--json", "quote", "pay", buyer, exporter,
                         quote_id, "--to-bank", "cnbank", "--reference", ref("po")))
    transfer_id = paid["transfer_id"]
    assert run("--bank", "usbank", "quote", "pay", buyer, exporter, quote_id, "--to-bank",
               "cnbank", "--reference", ref("po"))[0] == 4  # a quote pays once
    for _ in range(50):
        code, _out, _err = run("--bank", "cnbank", "accept", transfer_id, "--from-bank",
                               "usbank")
        if code == 0:
            break
        time.sleep(0.2)
    assert code == 0
    assert ok("--bank", "cnbank", "balance", exporter).startswith("723.45 CNH")
