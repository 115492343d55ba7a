"""The bank SDK on the real network (issue 5): every Bank and Regulator method, a cross-bank
payment completed by the listener alone, a listener killed in the middle of a run of payments
(none missed, none accepted twice), and a submission whose reply is lost, retried with the
same reference, applied once.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import fabgateway
import grpc
import pytest
from dtoken import errors
from dtoken.bank import Bank
from dtoken.listener import Handled, IncomingListener, Sweeper, Verdict
from dtoken.models import AccountStatus, Payee, Transfer, TransferStatus, parse_timestamp
from dtoken.money import Money
from dtoken.profile import Profile
from dtoken.submitter import RetryPolicy
from dtoken.sync import SyncBank
from dtoken_wire.requests import AuditRequest
from harness import TestNetwork
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)


def ref(tag: str) -> str:
    return f"{tag}-{RUN}-{secrets.token_hex(3)}"


async def funded(client: Bank, amount: str, currency: str = "USD", owner: str = "CIF") -> str:
    """A new account holding ``amount`` (``client`` must have the minter role)."""
    account = (await client.open_account(currency, owner, reference=ref("open"))).account_id
    if amount:
        await client.mint(account, client.money(amount, currency), reference=ref("dep"))
    return account


async def opened(client: Bank, currency: str = "USD") -> str:
    return (await client.open_account(currency, "EXP", reference=ref("open"))).account_id


async def wait_status(client: Bank, transfer_id: str, payer: str, payee: str,
                      wanted: TransferStatus, seconds: float = 20.0) -> Transfer:
    deadline = time.monotonic() + seconds
    while True:
        found = await client.get_transfer(transfer_id, payer, payee)
        if found.status is wanted:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"transfer still {found.status.value}, wanted {wanted.value}")
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- one bank


async def test_accounts_money_and_reads_of_one_bank(network: TestNetwork) -> None:
    async with bank(network, "hkbank", "minter") as hk:
        usd = hk.money
        opened_account = await hk.open_account("USD", "CIF-7001", reference=ref("open"),
                                               single_payment_limit=usd("300.00 USD"))
        acct = opened_account.account_id
        assert opened_account.receipt.transaction == "open_account"
        info = await hk.account(acct)
        assert (info.currency, info.owner_ref, info.status) == ("USD", "CIF-7001",
                                                                AccountStatus.ACTIVE)
        assert info.limits.single_payment == usd("300.00 USD")
        deposit = ref("dep")
        minted = await hk.mint(acct, usd("1,250.00 USD"), reference=deposit)
        assert not minted.replayed
        replay = await hk.mint(acct, usd("1,250.00 USD"), reference=deposit)
        assert (replay.replayed, replay.tx_id) == (True, minted.tx_id)
        assert await hk.balance(acct) == usd("1,250.00 USD")
        looked_up = await hk.lookup_reference(deposit)
        assert looked_up is not None
        assert (looked_up.kind, looked_up.tx_id) == ("mint", minted.tx_id)
        assert await hk.lookup_reference(ref("never")) is None
        with pytest.raises(errors.DuplicateReference) as reused:
            await hk.mint(acct, usd("1.00 USD"), reference=deposit)  # same ref, other request
        assert reused.value.original_tx_id == minted.tx_id

        await hk.burn(acct, usd("250.00 USD"), reference=ref("redeem"))
        with pytest.raises(errors.InsufficientFunds):
            await hk.burn(acct, usd("5,000.00 USD"), reference=ref("redeem"))
        with pytest.raises(errors.UsageError):
            await hk.burn(acct, usd("1.00 HKD"), reference=ref("redeem"))
        other = await opened(hk)
        with pytest.raises(errors.LimitExceeded):
            await hk.transfer(acct, "hkbank", other, usd("300.01 USD"), reference=ref("pay"))
        paid = await hk.transfer(acct, "hkbank", other, usd("300.00 USD"), reference=ref("pay"))
        assert (paid.kind, paid.transfer_id) == ("internal", None)
        await hk.set_limits(acct, single_payment=None, daily_outflow=usd("400.00 USD"))
        with pytest.raises(errors.LimitExceeded):  # 300 paid today already
            await hk.transfer(acct, "hkbank", other, usd("100.01 USD"), reference=ref("pay"))

        await hk.freeze(acct)
        assert (await hk.account(acct)).status is AccountStatus.FROZEN
        with pytest.raises(errors.AccountFrozen):
            await hk.transfer(acct, "hkbank", other, 100, reference=ref("pay"))
        await hk.unfreeze(acct)
        empty = await opened(hk)
        await hk.close_account(empty)
        with pytest.raises(errors.AccountClosed):
            await hk.mint(empty, 100, reference=ref("dep"))

        history = await hk.history(acct)
        assert [e.kind for e in history] == ["opened", "mint", "burn", "transfer_out",
                                             "limits", "status", "status"]
        assert history[-1].balance_after == usd("700.00 USD")
        assert [e.kind for e in await hk.history(acct, from_seq=1, limit=2)] == ["mint", "burn"]
        listed = {a.account_id: a for a in await hk.accounts("USD")}
        assert listed[acct].balance == usd("700.00 USD")
        assert listed[empty].status is AccountStatus.CLOSED
        supply = await hk.supply("USD")
        assert supply.by_kind["mint"] >= usd("1,250.00 USD")
        assert supply.supply == supply.by_kind["mint"] - supply.by_kind.get("burn", usd("0 USD")) \
            - supply.by_kind.get("out", usd("0 USD")) + supply.by_kind.get("in", usd("0 USD")) \
            + supply.by_kind.get("refund", usd("0 USD"))
    async with bank(network, "hkbank") as operator:
        with pytest.raises(errors.NotAuthorized):  # the operator has no minter role
            await operator.mint(acct, 100, reference=ref("dep"))
        with pytest.raises(errors.NotFound):
            await operator.account("x" * 22)


# --------------------------------------------------------------------------- across banks


async def test_cross_bank_transfers_decisions_refunds_and_settlement(
    network: TestNetwork,
) -> None:
    async with bank(network, "hkbank", "minter") as hk, bank(network, "usbank") as us:
        payer = await funded(hk, "1,000.00 USD")
        payee = await opened(us)
        before = await hk.obligations("usbank")
        owed_before = before.owed("hkbank", "USD")

        sent = await hk.transfer(payer, "usbank", payee, hk.money("120.00 USD"),
                                 reference=ref("inv"), remittance="invoice 42",
                                 originator={"name": "Harbour Importers Ltd"})
        await us.wait_for_commit(sent.receipt.tx_id)  # usbank's peer has the block
        assert sent.kind == "cross_bank"
        assert sent.transfer_id is not None
        incoming = {t.transfer_id: t for t in await us.incoming("hkbank")}
        seen = incoming[sent.transfer_id]
        assert (seen.amount, seen.payee_account, seen.status) == (
            us.money("120.00 USD"), payee, TransferStatus.PENDING)
        assert seen.originator == {"name": "Harbour Importers Ltd"}
        assert seen.remittance == "invoice 42"
        assert sent.transfer_id in {t.transfer_id for t in await hk.outgoing("usbank")}
        # The same reads through the time index: a window opening at the payment's creation
        # finds it, one opening a microsecond later does not.
        created = parse_timestamp(seen.created_at)
        later = created + timedelta(microseconds=1)
        assert sent.transfer_id in {
            t.transfer_id for t in await us.incoming("hkbank", since=created)}
        assert sent.transfer_id not in {
            t.transfer_id for t in await us.incoming("hkbank", since=later)}
        assert sent.transfer_id in {
            t.transfer_id for t in await hk.outgoing("usbank", since=created)}
        accepted = await us.accept(sent.transfer_id, "hkbank")
        await hk.wait_for_commit(accepted.tx_id)
        assert accepted.reference == f"hkbank/{sent.transfer_id}"
        assert (await us.accept(sent.transfer_id, "hkbank")).replayed
        done = await hk.get_transfer(sent.transfer_id, "hkbank", "usbank")
        assert (done.status, done.decision) == (TransferStatus.ACCEPTED, "accepted")
        assert await us.balance(payee) == us.money("120.00 USD")

        second = await hk.transfer(payer, "usbank", payee, hk.money("30.00 USD"),
                                   reference=ref("inv"))
        assert second.transfer_id is not None
        await us.wait_for_commit(second.receipt.tx_id)
        rejection = await us.reject(second.transfer_id, "hkbank", "beneficiary name mismatch")
        await hk.wait_for_commit(rejection.tx_id)
        with pytest.raises(errors.InvalidState):
            await us.accept(second.transfer_id, "hkbank")
        rejected = await hk.get_transfer(second.transfer_id, "hkbank", "usbank")
        assert (rejected.status, rejected.reject_reason) == (TransferStatus.REJECTED,
                                                             "beneficiary name mismatch")
        assert await hk.balance(payer) == hk.money("850.00 USD")
        await hk.refund(second.transfer_id, "usbank")
        assert await hk.balance(payer) == hk.money("880.00 USD")
        assert (await hk.get_transfer(second.transfer_id, "hkbank", "usbank")).refunded

        after = await hk.obligations("usbank")
        assert after.owed("hkbank", "USD") - owed_before == 12_000
        settled = await us.record_settlement("hkbank", us.money("120.00 USD"),
                                             rtgs_reference=ref("RTGS"))
        await hk.wait_for_commit(settled.tx_id)
        again = await us.record_settlement("hkbank", us.money("120.00 USD"),
                                           rtgs_reference=settled.reference)
        assert again.replayed
        final = await us.obligations("hkbank")
        assert final.owed("hkbank", "USD") == owed_before
        with pytest.raises(errors.UsageError):
            await hk.transfer(payer, "nobank", payee, 1, reference=ref("inv"))


async def test_a_batch_payout_debits_once_and_pays_three_banks(network: TestNetwork) -> None:
    async with bank(network, "hkbank", "minter") as hk, bank(network, "usbank") as us, \
            bank(network, "cnbank") as cn:
        payer = await funded(hk, "100.00 USD")
        local, us_payee, cn_payee = await opened(hk), await opened(us), await opened(cn)
        payout = await hk.batch_payout(payer, [
            Payee("usbank", us_payee, hk.money("10.00 USD"), "order 1"),
            Payee("hkbank", local, hk.money("20.00 USD")),
            Payee("cnbank", cn_payee, hk.money("30.00 USD")),
        ], reference=ref("batch"))
        us_id, local_id, cn_id = payout.transfer_ids
        await us.wait_for_commit(payout.receipt.tx_id)
        await cn.wait_for_commit(payout.receipt.tx_id)
        assert local_id is None
        assert us_id is not None
        assert cn_id is not None
        assert await hk.balance(payer) == hk.money("40.00 USD")
        assert await hk.balance(local) == hk.money("20.00 USD")
        await us.accept(us_id, "hkbank")
        await cn.accept(cn_id, "hkbank")
        assert await us.balance(us_payee) == us.money("10.00 USD")
        assert await cn.balance(cn_payee) == cn.money("30.00 USD")
        debits = [e for e in await hk.history(payer) if e.delta.minor < 0]
        assert sum(e.delta.minor for e in debits) == -6000


async def test_concurrent_payments_from_one_account_retry_their_mvcc_conflicts(
    network: TestNetwork,
) -> None:
    """Eight payments from one account at once read the same balance version: Fabric commits
    one per block and invalidates the others (MVCC_READ_CONFLICT); each is retried under its
    next derived id until it commits, and each applies exactly once."""
    async with bank(network, "hkbank", "minter") as hk:
        payer = await funded(hk, "100.00 USD")
        payees = [await opened(hk) for _ in range(8)]
        references = [ref("burst") for _ in payees]
        payments = await asyncio.gather(*(
            hk.transfer(payer, "hkbank", payee, 100 * (i + 1), reference=reference)
            for i, (payee, reference) in enumerate(zip(payees, references, strict=True))))
        assert max(p.receipt.attempt for p in payments) >= 1  # some were invalidated first
        assert await hk.balance(payer) == hk.money(f"{100 - sum(range(1, 9))}.00 USD")
        for i, payee in enumerate(payees):
            assert await hk.balance(payee) == hk.money(f"{i + 1}.00 USD")
        replays = await asyncio.gather(*(
            hk.transfer(payer, "hkbank", payee, 100 * (i + 1), reference=reference)
            for i, (payee, reference) in enumerate(zip(payees, references, strict=True))))
        assert all(r.receipt.replayed for r in replays)
        assert [r.receipt.tx_id for r in replays] == [p.receipt.tx_id for p in payments]
        assert await hk.balance(payer) == hk.money("64.00 USD")


# --------------------------------------------------------------------------- regulator


async def test_the_regulator_holds_reads_and_audits(network: TestNetwork) -> None:
    async with bank(network, "hkbank", "minter") as hk, bank(network, "usbank") as us, \
            regulator(network) as reg:
        acct = await funded(hk, "50.00 USD")
        target = await opened(hk)
        await hk.wait_for_commit((await reg.freeze("hkbank", acct, reason="screening")).tx_id)
        with pytest.raises(errors.AccountFrozen):
            await hk.transfer(acct, "hkbank", target, 100, reference=ref("pay"))
        hold = (await hk.account(acct)).hold
        assert hold is not None
        assert hold.frozen
        # The account lists show the hold too, the bank's and the regulator's.
        for listed in (await hk.accounts("USD"), await reg.accounts("hkbank", "USD")):
            holds = {a.account_id: a.hold for a in listed}
            held = holds[acct]
            assert held is not None
            assert held.frozen
            assert holds[target] is None
        held = await reg.freeze("hkbank", acct, held_amount=reg.money("45.00 USD"),
                                frozen=False)
        await hk.wait_for_commit(held.tx_id)
        with pytest.raises(errors.InsufficientFunds):
            await hk.transfer(acct, "hkbank", target, 501, reference=ref("pay"))
        assert (await hk.account(acct)).available == hk.money("5.00 USD")
        await hk.wait_for_commit((await reg.release("hkbank", acct)).tx_id)
        paid = await hk.transfer(acct, "hkbank", target, 501, reference=ref("pay"))
        await reg.wait_for_commit(paid.receipt.tx_id)
        assert (await reg.account("hkbank", acct)).balance == reg.money("44.99 USD")
        assert acct in {a.account_id for a in await reg.accounts("hkbank", "USD")}
        assert [e.kind for e in await reg.history("hkbank", acct)][-1] == "transfer_out"
        assert (await reg.supply("hkbank", "USD")).supply.minor > 0
        payee = await opened(us)
        sent = await hk.transfer(acct, "usbank", payee, 99, reference=ref("inv"))
        assert sent.transfer_id is not None
        await reg.wait_for_commit(sent.receipt.tx_id)
        await us.wait_for_commit(sent.receipt.tx_id)
        assert sent.transfer_id in {t.transfer_id for t in await reg.pending("usbank")}
        seen = await reg.get_transfer(sent.transfer_id, "hkbank", "usbank")
        assert (seen.status, seen.amount) == (TransferStatus.PENDING, reg.money("0.99 USD"))
        await reg.wait_for_commit((await us.accept(sent.transfer_id, "hkbank")).tx_id)
        owed = await reg.obligations("hkbank", "usbank")
        assert owed.owed("hkbank", "USD") >= 99
        report = await reg.audit()
        assert report.ok, report.failures
        assert {c["currency"] for c in report.currencies} >= {"USD"}
        # (positions that decide disputes are proven from the blocks: test_contract_real.py)
        with pytest.raises(errors.NotAuthorized):
            await hk_audit(network)


async def hk_audit(network: TestNetwork) -> None:
    """Only the regulator's auditor runs the audit: a bank's client is refused."""
    async with bank(network, "hkbank") as hk:
        await hk._pages("audit", AuditRequest())


# --------------------------------------------------------------------------- the listener


async def test_a_cross_bank_payment_completes_by_the_listener_alone(
    network: TestNetwork,
) -> None:
    async with bank(network, "hkbank", "minter") as hk, bank(network, "usbank") as us:
        payer = await funded(hk, "500.00 USD")
        payee = await opened(us)
        limit = us.money("100.00 USD")

        def rule(transfer: Transfer) -> Verdict:
            if transfer.amount > limit:
                return Verdict.rejected("above the incoming limit")
            return Verdict.accepted()

        decided: list[Handled] = []
        refunded: list[Handled] = []
        stop = asyncio.Event()
        us_listener = IncomingListener(us, checkpointer=fabgateway.InMemoryCheckpointer(),
                                       rule=rule, on_handled=decided.append)
        hk_listener = IncomingListener(
            hk, checkpointer=fabgateway.InMemoryCheckpointer(),
            sweeper=Sweeper(hk, on_handled=refunded.append))
        tasks = [asyncio.create_task(us_listener.run(stop=stop)),
                 asyncio.create_task(hk_listener.run(stop=stop))]
        try:
            await asyncio.sleep(0.5)  # both listeners made their first pass
            small = await hk.transfer(payer, "usbank", payee, hk.money("60.00 USD"),
                                      reference=ref("inv"))
            large = await hk.transfer(payer, "usbank", payee, hk.money("200.00 USD"),
                                      reference=ref("inv"))
            assert small.transfer_id is not None
            assert large.transfer_id is not None
            await wait_status(hk, small.transfer_id, "hkbank", "usbank", TransferStatus.ACCEPTED)
            await wait_status(hk, large.transfer_id, "hkbank", "usbank", TransferStatus.REFUNDED)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert await us.balance(payee) == us.money("60.00 USD")
        assert await hk.balance(payer) == hk.money("440.00 USD")
        mine = {h.transfer.transfer_id: h for h in decided}
        assert mine[small.transfer_id].action == "accepted"
        assert (mine[large.transfer_id].action, mine[large.transfer_id].reason) == (
            "rejected", "above the incoming limit")
        assert large.transfer_id in {h.transfer.transfer_id for h in refunded
                                     if h.action == "refunded"}


class Watcher:
    """``dtoken --bank usbank --json watch`` as a process of its own, its output collected."""

    def __init__(self, network: TestNetwork, checkpoint: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dtoken.cli", "--state-dir", str(network.state_dir),
             "--bank", "usbank", "--json", "watch", "--checkpoint", str(checkpoint),
             "--rescan", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.decisions: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.ready = threading.Event()
        self._pumps = [threading.Thread(target=self._pump_out, daemon=True),
                       threading.Thread(target=self._pump_err, daemon=True)]
        for pump in self._pumps:
            pump.start()

    def _pump_out(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.decisions.append(json.loads(line))

    def _pump_err(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.startswith("watching"):
                self.ready.set()
            self.errors.append(line)

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while not self.ready.is_set():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the watcher did not start:\n" + "".join(self.errors))
            await asyncio.sleep(0.05)

    def accepted(self, ids: list[str]) -> set[str]:
        return {d["transfer"]["transfer_id"] for d in self.decisions
                if d["action"] == "accepted" and d["transfer"]["transfer_id"] in ids}

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the process, wait for it, read the rest of its output, close its pipes."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(15)
        for pump in self._pumps:
            pump.join(5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return code


async def test_a_listener_killed_mid_run_misses_none_and_accepts_none_twice(
    network: TestNetwork, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "usbank.json"
    async with bank(network, "hkbank", "minter") as hk, bank(network, "usbank") as us:
        payer = await funded(hk, "1,000.00 USD")
        payees = [await opened(us), await opened(us)]
        ids: list[str] = []

        async def pay(n: int) -> None:
            payment = await hk.transfer(payer, "usbank", payees[n % 2],
                                        hk.money(f"{n + 1}.00 USD"), reference=ref("run"))
            assert payment.transfer_id is not None
            ids.append(payment.transfer_id)

        first = Watcher(network, checkpoint)
        second: Watcher | None = None
        try:
            await first.wait_ready()
            for n in range(4):
                await pay(n)
            deadline = time.monotonic() + 20
            while len(first.accepted(ids)) < 2 or not checkpoint.exists():
                assert time.monotonic() < deadline, "the first watcher accepted nothing"
                await asyncio.sleep(0.05)
            first.stop(signal.SIGKILL)  # a crash, in the middle of the run
            at_kill = json.loads(checkpoint.read_text())
            for n in range(4, 8):  # nobody listens
                await pay(n)
            second = Watcher(network, checkpoint)
            await second.wait_ready()
            for n in range(8, 10):
                await pay(n)
            for transfer_id in ids:
                await wait_status(hk, transfer_id, "hkbank", "usbank", TransferStatus.ACCEPTED)
            deadline = time.monotonic() + 10
            while json.loads(checkpoint.read_text())["blockNumber"] <= at_kill["blockNumber"]:
                assert time.monotonic() < deadline, "the restarted watcher never checkpointed"
                await asyncio.sleep(0.05)
        finally:
            first.stop(signal.SIGKILL)
            exit_code = second.stop() if second is not None else None
        assert exit_code == 0  # SIGTERM is a clean stop
        by_first, by_second = first.accepted(ids), second.accepted(ids)
        assert 2 <= len(by_first) <= 4  # killed in the middle of the run
        assert set(ids[4:]) <= by_second  # what came while it was down, and after
        credited: dict[str, int] = {}
        for payee in payees:
            for entry in await us.history(payee):
                if entry.kind == "payment_in":
                    assert entry.transfer_id is not None
                    credited[entry.transfer_id] = credited.get(entry.transfer_id, 0) + 1
        assert credited == dict.fromkeys(ids, 1)  # every payment once, none twice
        balances = [(await us.balance(p)).minor for p in payees]
        assert sum(balances) == sum(range(1, 11)) * 100


# --------------------------------------------------------------------------- lost replies


def _unavailable(what: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(),
                                grpc.aio.Metadata(), details=what)


class CutAfterSubmit(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Lets the first Submit reach the peer (and the orderers), then cuts the connection:
    that Submit's reply and every later call fail as on a dropped link."""

    def __init__(self) -> None:
        self.cut = False
        self.submitted: list[str] = []

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        if self.cut:
            raise _unavailable("connection cut")
        call = await continuation(details, request)
        if method.endswith("/Submit"):
            await call  # delivered: the orderers have the transaction
            self.cut = True
            self.submitted.append(request.transaction_id)
            raise _unavailable("connection cut after submit")
        return call


async def test_a_submission_whose_reply_is_lost_is_retried_with_the_same_reference_once(
    network: TestNetwork,
) -> None:
    profile = Profile.load(network.profile_path("hkbank"))
    async with bank(network, "hkbank", "minter") as hk:
        account = await funded(hk, "")
        cutter = CutAfterSubmit()
        channel = grpc.aio.secure_channel(
            profile.gateway_endpoint,
            grpc.ssl_channel_credentials(profile.gateway_tls_ca.read_bytes()),
            options=[("grpc.ssl_target_name_override", profile.gateway_server_name)],
            interceptors=[cutter],
        )
        quick = RetryPolicy(call_retries=1, backoff=0.05, commit_timeout=1.0,
                            outcome_timeout=2.0)
        deposit = ref("dep")
        try:
            cut = Bank(profile, channel, identity="minter", policy=quick)
            with pytest.raises(errors.OutcomeUnknown) as unknown:
                await cut.mint(account, hk.money("75.00 USD"), reference=deposit)
        finally:
            await channel.close(None)
        assert cutter.submitted == list(unknown.value.transaction_ids)
        # A new connection (or process) retries with the same reference: the same id, which
        # the ledger already holds, so nothing is executed again.
        retried = await hk.mint(account, hk.money("75.00 USD"), reference=deposit)
        assert retried.replayed
        assert retried.tx_id == cutter.submitted[0]
        assert await hk.balance(account) == hk.money("75.00 USD")
        assert [e.kind for e in await hk.history(account)] == ["opened", "mint"]


def test_the_blocking_facade_on_the_real_network(network: TestNetwork) -> None:
    with SyncBank.connect(network.profile_path("cnbank"), identity="minter") as cn:
        account = cn.open_account("CNH", "CIF-sync", reference=ref("open")).account_id
        cn.mint(account, cn.money("8,888.88 CNH"), reference=ref("dep"))
        assert cn.balance(account) == Money(888_888, "CNH", 2)
        with pytest.raises(errors.InsufficientFunds):
            cn.burn(account, cn.money("9,000.00 CNH"), reference=ref("redeem"))
