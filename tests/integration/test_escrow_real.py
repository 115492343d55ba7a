"""Escrow and payment requests on a real Fabric network (issue 17, items 3 and 4): each flow
end to end through the SDK, each failure path, and the dishonest bank of the trust model
(its peer runs ``tests/chaincodes/dishonest_token.py``).

The module brings up its own network (``DTOKEN_TEST_BASE_PORT + 300``): the dishonest
writes here leave anomalies that are meant to stay reported, which a network shared with
other modules' ``audit().ok`` checks must not see.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fabgateway
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dtoken import errors
from dtoken.bank import Bank
from dtoken.cli import main
from dtoken.conditional import Attester, EscrowState, PaymentRequestStatus, Verdict
from dtoken.models import TransferStatus
from harness import TestNetwork
from harness.dishonest import chaincode_node, dishonest_server
from harness.faults import own_network
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)
PRICE = 12_345


def ref(tag: str) -> str:
    return f"{tag}-{RUN}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest) -> Iterator[TestNetwork]:
    with own_network(tmp_path_factory, request, "escrow", 300) as network:
        yield network


async def funded(client: Bank, amount: int, owner: str) -> str:
    account = (await client.open_account("USD", owner, reference=ref("open"))).account_id
    if amount:
        await client.mint(account, amount, reference=ref("dep"))
    return account


async def on(client: Bank, tx_id: str) -> None:
    """Wait until ``client``'s peer committed ``tx_id`` (another bank's write)."""
    await client.wait_for_commit(tx_id)


def soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_escrow_flows_end_to_end(net: TestNetwork) -> None:
    """An order paid into escrow is released by the marketplace's signed delivery; a forged
    or unregistered attestation releases nothing; the buyer's confirmation releases; the
    deadline refunds (and not before); within one bank too; three released escrows claimed
    in one transaction; the audit balances."""
    market, fake = Attester.generate("marketplace"), Attester.generate("marketplace")
    async with (
        bank(net, "hkbank", "minter") as hk,
        bank(net, "usbank", "minter") as us,
        bank(net, "cnbank", "minter") as cn,
        regulator(net) as reg,
    ):
        await hk.register_attester(market.name, market.public_key_pem)
        buyer = await funded(hk, 1_000_000, "BUYER")
        seller = await funded(us, 0, "SELLER")
        with pytest.raises(errors.NotFound):
            await hk.escrow(buyer, "usbank", seller, PRICE, reference=ref("order"),
                            deadline=soon(3600), attester="courier")

        # attested delivery
        opened = await hk.escrow(buyer, "usbank", seller, PRICE, reference=ref("order"),
                                 deadline=soon(3600), attester=market.name)
        await on(us, opened.receipt.tx_id)
        escrow = await us.get_escrow(opened.escrow_id, "hkbank", "usbank")
        assert escrow.state is EscrowState.HELD
        assert (await hk.balance(buyer)).minor == 1_000_000 - PRICE
        assert [e.escrow_id for e in await us.escrows("hkbank", incoming=True)] == [
            opened.escrow_id]
        with pytest.raises(errors.InvalidState):
            await us.claim_escrow(escrow.escrow_id, "hkbank")
        with pytest.raises(errors.InvalidArgument):  # right name, wrong key
            await us.claim_escrow(escrow.escrow_id, "hkbank", fake.attest(escrow))
        with pytest.raises(errors.InvalidArgument):  # a party hkbank never registered
            await us.claim_escrow(escrow.escrow_id, "hkbank",
                                  Attester.generate("courier").attest(escrow))
        claimed = await us.claim_escrow(escrow.escrow_id, "hkbank", market.attest(escrow))
        await on(hk, claimed.tx_id)
        assert (await us.balance(seller)).minor == PRICE
        assert (await hk.get_escrow(escrow.escrow_id, "hkbank", "usbank")).state is \
            EscrowState.PAID
        kinds = [h.kind for h in await hk.history(buyer)]
        assert "escrow_out" in kinds
        assert (await hk.obligations("usbank")).owed("hkbank", "USD") == PRICE

        # the buyer's confirmation
        confirmed = await hk.escrow(buyer, "usbank", seller, PRICE, reference=ref("order"),
                                    deadline=soon(3600))
        released = await hk.release(confirmed.escrow_id, "usbank")
        await on(us, released.tx_id)
        await us.claim_escrow(confirmed.escrow_id, "hkbank")
        assert (await us.balance(seller)).minor == 2 * PRICE

        # the deadline passes: the buyer is refunded, and not before
        expiring = await hk.escrow(buyer, "usbank", seller, PRICE, reference=ref("order"),
                                   deadline=soon(6), attester=market.name)
        with pytest.raises(errors.NotExpired):
            await hk.refund_escrow(expiring.escrow_id, "usbank")
        await asyncio.sleep(7)
        late = await us.get_escrow(expiring.escrow_id, "hkbank", "usbank")
        assert late.state is EscrowState.DUE
        with pytest.raises(errors.InvalidArgument):  # delivered after the deadline
            await us.claim_escrow(late.escrow_id, "hkbank", market.attest(late))
        refunded = await hk.refund_escrow(expiring.escrow_id, "usbank")
        await on(us, refunded.tx_id)
        assert (await us.get_escrow(expiring.escrow_id, "hkbank", "usbank")).state is \
            EscrowState.REFUNDED
        assert (await hk.balance(buyer)).minor == 1_000_000 - 2 * PRICE

        # within one bank
        local = await funded(hk, 0, "LOCAL-SELLER")
        inside = await hk.escrow(buyer, "hkbank", local, PRICE, reference=ref("order"),
                                 deadline=soon(3600))
        await hk.release(inside.escrow_id, "hkbank")
        assert (await hk.balance(local)).minor == PRICE

        # one seller paid from many escrows: one claim_escrows, credits summed
        batch = [await hk.escrow(buyer, "usbank", seller, PRICE, reference=ref("order"),
                                 deadline=soon(3600)) for _ in range(3)]
        releases = [await hk.release(b.escrow_id, "usbank") for b in batch]
        await on(us, releases[-1].tx_id)
        before = (await us.balance(seller)).minor
        _, codes = await us.claim_escrows("hkbank", [(b.escrow_id, None) for b in batch])
        assert codes == {b.escrow_id: "OK" for b in batch}
        assert (await us.balance(seller)).minor == before + 3 * PRICE

        # no third bank reads an escrow
        with pytest.raises(errors.NotAuthorized):
            await cn.get_escrow(escrow.escrow_id, "hkbank", "usbank")
        await reg.wait_for_commit(refunded.tx_id)
        report = await reg.audit()
        assert report.ok, report.failures


async def test_an_invoice_paid_by_request_once(net: TestNetwork) -> None:
    """usbank's exporter invoices hkbank's buyer; hkbank approves; the payment is a transfer
    under the request's id that usbank accepts; a retry and a second approval under another
    reference pay nothing more; declined and expired requests cannot be paid; cnbank sees
    nothing."""
    async with (
        bank(net, "hkbank", "minter") as hk,
        bank(net, "usbank", "minter") as us,
        bank(net, "cnbank", "minter") as cn,
    ):
        buyer = await funded(hk, 500_000, "IMPORTER")
        exporter = await funded(us, 0, "EXPORTER")
        asked = await us.request_payment("hkbank", buyer, exporter, us.money(
            "1,234.56 USD"), invoice_ref="INV-77", due=soon(3600), reference=ref("invoice"))
        await on(hk, asked.receipt.tx_id)
        (incoming,) = [r for r in await hk.payment_requests("usbank")
                       if r.request_id == asked.request_id]
        assert (incoming.status, incoming.invoice_ref) == (PaymentRequestStatus.PENDING,
                                                           "INV-77")
        paid = await hk.approve_request(asked.request_id, "usbank")
        again = await hk.approve_request(asked.request_id, "usbank")  # a retrying client
        assert again.replayed
        assert again.tx_id == paid.tx_id
        await on(us, paid.tx_id)
        # a second approval under another reference, straight through the gateway
        profile = hk.profile
        contract = hk.network.get_contract(profile.chaincode)
        with pytest.raises(fabgateway.EndorseError) as refused:
            await contract.submit_transaction(
                "approve_request", transient_data={"request": json.dumps({
                    "reference": ref("again"), "payee_bank": "usbank",
                    "request_id": asked.request_id}).encode()},
                endorsing_organizations=[hk.msp_id])
        assert "ALREADY_EXISTS" in str(refused.value)
        assert (await hk.balance(buyer)).minor == 500_000 - 123_456
        accepted = await us.accept(asked.request_id, "hkbank")
        await on(hk, accepted.tx_id)
        seen = await hk.get_payment_request(asked.request_id, "hkbank", "usbank")
        assert (seen.status, seen.payment_status) == (PaymentRequestStatus.PAID, "accepted")
        assert (await us.get_transfer(asked.request_id, "hkbank", "usbank")).status is \
            TransferStatus.ACCEPTED
        assert (await us.balance(exporter)).minor == 123_456
        with pytest.raises(errors.NotAuthorized):
            await cn.get_payment_request(asked.request_id, "hkbank", "usbank")

        declined = await us.request_payment("hkbank", buyer, exporter, us.money("5.00 USD"),
                                            invoice_ref="INV-78", due=soon(3600),
                                            reference=ref("invoice"))
        expiring = await us.request_payment("hkbank", buyer, exporter, us.money("6.00 USD"),
                                            invoice_ref="INV-79", due=soon(4),
                                            reference=ref("invoice"))
        await on(hk, expiring.receipt.tx_id)
        no = await hk.decline_request(declined.request_id, "usbank", "not ours")
        await on(us, no.tx_id)
        assert (await us.get_payment_request(declined.request_id, "hkbank", "usbank")
                ).decline_reason == "not ours"
        with pytest.raises(errors.InvalidState):
            await hk.approve_request(declined.request_id, "usbank")
        await asyncio.sleep(5)
        with pytest.raises(errors.Expired):
            await hk.approve_request(expiring.request_id, "usbank")
        assert (await us.get_payment_request(expiring.request_id, "hkbank", "usbank")
                ).status is PaymentRequestStatus.EXPIRED


async def test_the_dishonest_bank_cannot_release_or_pay_twice(net: TestNetwork) -> None:
    """usbank's modified server claims an escrow without the condition: it commits in its
    own collections and counts for nobody (hkbank owes nothing, the regulator names usbank).
    hkbank's modified server refunds another escrow early: the marketplace's delivery,
    attested in time, still pays the seller and hkbank owes it; its refund is reported. And
    hkbank's server cannot rewrite an escrow's terms or write a paid request's payment
    again: the pins."""
    market = Attester.generate("market2")
    async with (
        bank(net, "hkbank", "minter") as hk,
        bank(net, "usbank", "minter") as us,
        regulator(net) as reg,
    ):
        await hk.register_attester(market.name, market.public_key_pem)
        buyer = await funded(hk, 1_000_000, "BUYER-2")
        seller = await funded(us, 0, "SELLER-2")
        owed_before = (await hk.obligations("usbank")).owed("hkbank", "USD")
        early = await hk.escrow(buyer, "usbank", seller, PRICE, reference=ref("order"),
                                deadline=soon(3600), attester=market.name)
        raided = await hk.escrow(buyer, "usbank", seller, PRICE, reference=ref("order"),
                                 deadline=soon(3600), attester=market.name)
        await on(us, raided.receipt.tx_id)
        invoice = await us.request_payment("hkbank", buyer, seller, us.money("1.00 USD"),
                                           invoice_ref="INV-90", due=soon(3600),
                                           reference=ref("invoice"))
        await on(hk, invoice.receipt.tx_id)
        await hk.approve_request(invoice.request_id, "usbank")

        us_contract = us.network.get_contract(us.profile.chaincode)
        with dishonest_server(net, chaincode_node("usbank")):
            result = await us_contract.submit_transaction(
                "claim_escrow_unconditionally", transient_data={"request": json.dumps({
                    "escrow_id": early.escrow_id, "payer_bank": "hkbank"}).encode()},
                endorsing_organizations=[us.msp_id])
        forged_claim = json.loads(result)["tx_id"]
        await on(hk, forged_claim)
        await reg.wait_for_commit(forged_claim)
        view = await hk.get_escrow(early.escrow_id, "hkbank", "usbank")
        assert (view.state, view.anomalies) == (EscrowState.HELD, ("escrow_claim_unproven",))
        obligations = await hk.obligations("usbank")
        assert obligations.owed("hkbank", "USD") == owed_before
        report = await reg.audit()
        assert not report.ok
        assert report.anomalies == {"usbank/pair-usbank-hkbank/escrow_claim_unproven": 1}

        delivered = market.attest(await us.get_escrow(raided.escrow_id, "hkbank", "usbank"))
        hk_contract = hk.network.get_contract(hk.profile.chaincode)
        with dishonest_server(net, chaincode_node("hkbank")):
            result = await hk_contract.submit_transaction(
                "refund_escrow_early", transient_data={"request": json.dumps({
                    "escrow_id": raided.escrow_id, "payee_bank": "usbank"}).encode()},
                endorsing_organizations=[hk.msp_id])
            early_refund = json.loads(result)["tx_id"]
            await on(us, early_refund)
            # the escrow's terms and a paid request's transfer are pinned to both banks
            for key in (f"esc/{raided.escrow_id}", f"xfer/{invoice.request_id}"):
                with pytest.raises(fabgateway.CommitError) as invalid:
                    await hk_contract.submit_transaction(
                        "rewrite_pinned", transient_data={"request": json.dumps({
                            "bank": "hkbank", "counterparty": "usbank", "key": key,
                            "value": '{"forged":true}'}).encode()},
                        endorsing_organizations=[hk.msp_id])
                assert invalid.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
        claimed = await us.claim_escrow(raided.escrow_id, "hkbank", delivered)
        await on(hk, claimed.tx_id)
        await reg.wait_for_commit(claimed.tx_id)
        assert (await hk.obligations("usbank")).owed("hkbank", "USD") == \
            owed_before + PRICE
        report = await reg.audit()
        assert report.anomalies == {
            "usbank/pair-usbank-hkbank/escrow_claim_unproven": 1,
            "hkbank/pair-hkbank-usbank/escrow_refund_against_release": 1}



async def test_a_ruling_after_the_seller_was_paid_undoes_nothing(net: TestNetwork) -> None:
    """Issue 17 item 3 on Fabric. hkbank names an arbiter whose key it alone chose: usbank,
    which registered the marketplace's key but no such arbiter, sees the marketplace
    ``match`` and the arbiter ``unregistered`` (not verified). The seller is paid on the
    marketplace's delivery; then hkbank's modified server refunds its buyer on a ``refund``
    ruling signed with its arbiter key, skipping the read of the claim: it commits, and
    every reader (usbank's ``get_escrow``, the obligations, the regulator's audit, each
    proving from the blocks that the claim came first) keeps the seller's claim: hkbank
    owes the price and its refund is reported naming it."""
    market, own_arbiter = Attester.generate("market3"), Attester.generate("arbiter3")
    async with (
        bank(net, "hkbank", "minter") as hk,
        bank(net, "usbank", "minter") as us,
        regulator(net) as reg,
    ):
        for party in (market, own_arbiter):
            await hk.register_attester(party.name, party.public_key_pem)
        await us.register_attester(market.name, market.public_key_pem)
        buyer = await funded(hk, 1_000_000, "BUYER-3")
        seller = await funded(us, 0, "SELLER-3")
        owed_before = (await hk.obligations("usbank")).owed("hkbank", "USD")
        opened = await hk.escrow(buyer, "usbank", seller, PRICE, reference=ref("order"),
                                 deadline=soon(3600), attester=market.name,
                                 arbiter=own_arbiter.name)
        await on(us, opened.receipt.tx_id)
        view = await us.get_escrow(opened.escrow_id, "hkbank", "usbank")
        assert [(p.role, p.name, p.here) for p in view.parties] == [
            ("attester", market.name, "match"), ("arbiter", own_arbiter.name, "unregistered")]
        assert not view.parties_verified
        claimed = await us.claim_escrow(opened.escrow_id, "hkbank", market.attest(view))
        await on(hk, claimed.tx_id)
        ruling = own_arbiter.attest(view, Verdict.REFUND)
        hk_contract = hk.network.get_contract(hk.profile.chaincode)
        with dishonest_server(net, chaincode_node("hkbank")):
            result = await hk_contract.submit_transaction(
                "refund_escrow_early", transient_data={"request": json.dumps({
                    "escrow_id": opened.escrow_id, "payee_bank": "usbank",
                    "statement": dict(ruling.to_json())}).encode()},
                endorsing_organizations=[hk.msp_id])
        late_refund = json.loads(result)["tx_id"]
        await on(us, late_refund)
        await reg.wait_for_commit(late_refund)
        view = await us.get_escrow(opened.escrow_id, "hkbank", "usbank")
        assert (view.state, view.anomalies) == (EscrowState.PAID,
                                                ("escrow_refund_after_claim",))
        assert view.refund_cause == "statement"
        obligations = await us.obligations("hkbank")
        assert obligations.owed("hkbank", "USD") == owed_before + PRICE
        assert obligations.disputes == ()
        report = await reg.audit()
        assert report.anomalies.get(
            "hkbank/pair-hkbank-usbank/escrow_refund_after_claim") == 1


def test_the_cli_commands(net: TestNetwork, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """Every conditional-payment command of ``dtoken``, in-process as ``test_cli`` runs them:
    register an attester, escrow, list, a refused claim (exit 4), sign a delivery, claim on
    it; request a payment, list it, approve it, decline another; one conditional pass."""

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["--state-dir", str(net.state_dir), *args])
        out, err = capsys.readouterr()
        return code, out if code == 0 else err

    def data(*args: str) -> Any:
        code, out = run("--json", *args)
        assert code == 0, out
        return json.loads(out)

    def eventually(ids: set[str], field: str, *args: str) -> list[dict[str, Any]]:
        """The items of a listing with these ids, once another bank's write reached this
        bank's peer (it may be a block behind)."""
        for _ in range(40):
            code, out = run("--json", *args)
            found = [x for x in (json.loads(out) if code == 0 else []) if x[field] in ids]
            if len(found) == len(ids):
                return found
            time.sleep(0.25)
        raise AssertionError(f"{args}: {out}")

    def account(bank_name: str, deposit: str | None) -> str:
        opened = data("--bank", bank_name, "account", "open", "--currency", "USD",
                      "--owner", f"CLI-{secrets.token_hex(3)}")
        if deposit:
            data("--bank", bank_name, "--identity", "minter", "mint", opened["account_id"],
                 deposit, "--reference", ref("dep"))
        return str(opened["account_id"])

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = tmp_path / "mkt.key.pem", tmp_path / "mkt.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    name = f"mkt-cli-{RUN}"
    buyer, seller = account("hkbank", "500.00 USD"), account("usbank", None)
    data("--bank", "hkbank", "attester", "register", name, str(public))
    opened = data("--bank", "hkbank", "escrow", buyer, seller, "100.00 USD", "--to-bank",
                  "usbank", "--days", "3", "--attester", name, "--reference", ref("order"))
    eid = opened["escrow_id"]
    listed = eventually({eid}, "escrow_id", "--bank", "usbank", "escrows", "--with", "hkbank",
                        "--incoming")
    assert [(e["escrow_id"], e["state"]) for e in listed] == [(eid, "held")]
    code, err = run("--bank", "usbank", "claim", eid, "--from-bank", "hkbank")
    assert code == 4, err
    assert "INVALID_STATE" in err
    code, statement = run("--bank", "usbank", "attester", "sign", eid, "--payer-bank",
                          "hkbank", "--name", name, "--key", str(private))
    assert code == 0, statement
    (tmp_path / "delivered.json").write_text(statement)
    data("--bank", "usbank", "claim", eid, "--from-bank", "hkbank", "--statement",
         str(tmp_path / "delivered.json"))
    assert data("--bank", "usbank", "balance", seller)["balance"]["text"] == "100.00 USD"

    asked = data("--bank", "usbank", "request-payment", buyer, seller, "5.00 USD",
                 "--payer-bank", "hkbank", "--invoice", "INV-CLI", "--reference", ref("inv"))
    other = data("--bank", "usbank", "request-payment", buyer, seller, "6.00 USD",
                 "--payer-bank", "hkbank", "--invoice", "INV-CLI-2", "--reference",
                 ref("inv"))
    pending = eventually({asked["request_id"], other["request_id"]}, "request_id",
                         "--bank", "hkbank", "requests", "--with", "usbank")
    assert {r["status"] for r in pending} == {"pending"}
    data("--bank", "hkbank", "approve-request", asked["request_id"], "--to-bank", "usbank")
    data("--bank", "hkbank", "decline-request", other["request_id"], "--to-bank", "usbank",
         "--reason", "duplicate invoice")
    code, out = run("--bank", "usbank", "watch-conditional", "--once")
    assert code == 0, out
