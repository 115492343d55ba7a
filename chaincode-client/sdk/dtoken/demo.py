"""The demo story: a marketplace pays exporters at other banks, on a running network.

``scripts/demo`` brings the default consortium up (``dtoken network up``), then runs
``python -m dtoken.demo``, which plays the story through the bank SDK and prints, step by step,
what happened and what each bank can and cannot see:

1. accounts are opened and deposits minted (Harbour Bank's marketplace, exporters at Liberty
   Trust and Pearl River);
2. each bank's incoming listener starts: Liberty Trust's rule rejects trade payments without an
   invoice number, the others accept; Harbour Bank's sweeper refunds what is rejected;
3. the marketplace pays the exporters, in a batch payout (USD) and a transfer (CNH): each
   payment in a currency that both banks issue; the listeners decide, one payment is rejected
   and refunded;
4. an exporter at Pearl River pays the marketplace back (fees), an exporter at Liberty Trust
   redeems tokens (burned);
5. the obligations between banks are netted and the creditor banks record the settlements;
6. the regulator freezes an account and a payment from it is refused;
7. each bank reads what it may, and is refused what belongs to another bank's customers;
8. the regulator's audit.

Between steps 4 and 5, the conditional-payment chapters (:mod:`dtoken.demo_conditional`): an
order paid into escrow is released by the marketplace's signed delivery, and an exporter's
invoice is paid by request, once.

Everything is fresh per run (a run id in every reference and owner reference), so the demo
runs again on a network that is already up. :func:`run_demo` is the story as a function (the
integration test calls it on its own network); ``main`` wraps it for ``scripts/demo``.

This module only calls the SDK, as each organization: it never reads a ledger file or another
organization's keys, and never imports the network bootstrap. ``main`` finds the profiles
folder as the ``dtoken`` CLI does (``--profiles``, ``--state-dir``, ``$DTOKEN_PROFILES``,
``$DTOKEN_STATE_DIR``, else the default network's, named by the network tooling's plugin).

One file of ~600 lines on purpose: it is a story, read top to bottom, its eight steps in order
(``_Story.play``); cutting it into modules would make a reader jump between files to follow one
payment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import fabgateway

from dtoken import cli_format as fmt
from dtoken import pvp as pvp_mod
from dtoken.bank import Bank, Member, Regulator
from dtoken.conditional import EscrowState, PaymentRequestStatus
from dtoken.demo_conditional import conditional_chapters
from dtoken.errors import ContractError, DTokenError, UsageError
from dtoken.listener import Handled, IncomingListener, Sweeper, Verdict, accept_all
from dtoken.models import AuditReport, Payee, Transfer, TransferStatus
from dtoken.money import Money

__all__ = ["DemoError", "DemoResult", "Refusal", "demo", "main", "run_demo"]

Out = Callable[[str], None]

#: Liberty Trust's rule for trade payments: the remittance must quote an invoice number.
INVOICE = re.compile(r"\bINV-[A-Za-z0-9-]+")
#: How long the demo waits for the listeners to finish a payment before giving up.
DECISION_TIMEOUT = 180.0
_FINAL = frozenset({TransferStatus.ACCEPTED, TransferStatus.REFUNDED, TransferStatus.DISPUTED})


class HasStateDir(Protocol):
    """A network's state folder (``consortium.network.Network``, the tests' ``TestNetwork``)."""

    @property
    def state_dir(self) -> Path: ...


class DemoError(DTokenError):
    """The story could not be completed (a payment was not decided in time ...)."""


@dataclass(frozen=True)
class Refusal:
    """One read or payment the network refused, as the demo tried it."""

    who: str
    what: str
    code: str


@dataclass
class DemoResult:
    """What the story did: the accounts it opened, their final balances, the payments' final
    statuses, what was refused, the settlements and the regulator's audit."""

    run: str
    state_dir: Path
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Party name -> (bank, account id)."""
    balances: dict[str, Money] = field(default_factory=dict)
    """Party name -> final balance, as the party's own bank reads it."""
    transfers: dict[str, TransferStatus] = field(default_factory=dict)
    """Payment label -> final status."""
    decisions: list[Handled] = field(default_factory=list)
    """What the listeners and the sweeper did during the run."""
    refused: list[Refusal] = field(default_factory=list)
    settlements: list[tuple[str, str, Money, str]] = field(default_factory=list)
    """(debtor, creditor, amount, RTGS reference)."""
    net_after: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(bank a, bank b, currency) -> net minor units owed after the settlements."""
    audit: AuditReport | None = None
    pvp: dict[str, TransferStatus] = field(default_factory=dict)
    """PvP leg (``leg1`` USD, ``leg2`` CNH) -> final status."""
    pvp_balances: dict[str, Money] = field(default_factory=dict)
    """PvP party name -> balance after the trade."""
    quoted: TransferStatus | None = None
    """The payment converted at cnbank's quote: its final status."""
    quoted_balances: dict[str, Money] = field(default_factory=dict)
    """Quoted payment's party name -> balance after it."""
    escrows: dict[str, EscrowState] = field(default_factory=dict)
    """Escrow label -> final state (the conditional-payment chapters)."""
    requests: dict[str, PaymentRequestStatus] = field(default_factory=dict)
    """Payment-request label -> final status."""


@dataclass(frozen=True)
class _Party:
    key: str
    name: str
    bank: str
    currency: str


# The cast. Every owner reference gets the run id appended.
_PARTIES = (
    _Party("market_usd", "Harbour Marketplace Ltd (USD)", "hkbank", "USD"),
    _Party("market_cnh", "Harbour Marketplace Ltd (CNH)", "hkbank", "CNH"),
    _Party("tools", "Liberty Machine Tools Inc", "usbank", "USD"),
    _Party("organics", "Boston Organics LLC", "usbank", "USD"),
    _Party("textiles", "Pearl Textiles Co", "cnbank", "CNH"),
    _Party("gadgets", "Shenzhen Gadgets Ltd", "cnbank", "USD"),
)


# The PvP trade's cast (issue 17): kept apart from the main story's balances.
_PVP_PARTIES = (
    _Party("buyer", "Ohio Outfitters Inc", "usbank", "USD"),
    _Party("dealer_usd", "Harbour FX Dealing (USD)", "hkbank", "USD"),
    _Party("dealer_cnh", "Harbour FX Dealing (CNH)", "hkbank", "CNH"),
    _Party("ceramics", "Yiwu Ceramics Co", "cnbank", "CNH"),
)

# The quoted payment's cast (issue 17, conversion at the payee's bank).
_QUOTE_PARTIES = (
    _Party("apparel", "Austin Apparel Inc", "usbank", "USD"),
    _Party("furniture", "Ningbo Furniture Co", "cnbank", "CNH"),
)


def _short(ident: str | None) -> str:
    return f"{ident[:10]}…" if ident else "-"


def _refusal_code(error: BaseException) -> str:
    return error.code if isinstance(error, ContractError) and error.code else type(error).__name__


class _Story:
    """The story on the default consortium's banks (hkbank, usbank, cnbank) and regulator."""

    def __init__(self, profiles: Path, out: Out) -> None:
        self.profiles = profiles
        self.out = out
        self.run = secrets.token_hex(3)
        self.result = DemoResult(self.run, profiles.parent)
        self.banks: dict[str, Bank] = {}
        self.tellers: dict[str, Bank] = {}
        self.reg: Regulator | None = None
        self.parties: dict[str, _Party] = {
            p.key: p for p in (*_PARTIES, *_PVP_PARTIES, *_QUOTE_PARTIES)}
        self.ids: dict[str, str] = {}
        self.transfer_ids: dict[str, str] = {}
        self._step = 0

    # --- output -------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self._step += 1
        self.out("")
        self.out(f"── {self._step}. {title} " + "─" * max(4, 66 - len(title)))

    def say(self, text: str = "") -> None:
        self.out(f"   {text}" if text else "")

    def ref(self, tag: str) -> str:
        return f"demo-{self.run}-{tag}"

    def who(self, key: str) -> str:
        party = self.parties[key]
        return f"{party.name} @ {party.bank}"

    # --- connections --------------------------------------------------------------------

    def _profile(self, org: str) -> Path:
        path = self.profiles / f"{org}.json"
        if not path.exists():
            raise DemoError(f"no connection profile {path}: is the network up?")
        return path

    async def connect(self, stack: contextlib.AsyncExitStack) -> None:
        for org in ("hkbank", "usbank", "cnbank"):
            self.banks[org] = await stack.enter_async_context(
                Bank.connect(self._profile(org), identity="operator"))
            self.tellers[org] = await stack.enter_async_context(
                Bank.connect(self._profile(org), identity="minter"))
        self.reg = await stack.enter_async_context(Regulator.connect(self._profile("regulator")))

    @property
    def regulator(self) -> Regulator:
        assert self.reg is not None
        return self.reg

    def issued_by_both(self, payer: str, payee: str, currency: str) -> str:
        """Check that both banks issue ``currency`` (each payment is in such a currency)."""
        orgs = self.banks[payer].profile.organizations
        for bank in (payer, payee):
            if currency not in orgs[bank].currencies:
                raise DemoError(f"{bank} does not issue {currency}")
        return f"{currency}, issued by {payer} and {payee}"

    # --- the story ----------------------------------------------------------------------

    async def open_and_fund(self) -> None:
        self.step("Accounts opened, deposits minted")
        self.say(f"run {self.run}: every reference and owner reference carries it")
        for party in _PARTIES:
            opened = await self.banks[party.bank].open_account(
                party.currency, f"{party.key.upper()}-{self.run}",
                reference=self.ref(f"open-{party.key}"))
            self.ids[party.key] = opened.account_id
            self.result.accounts[party.key] = (party.bank, opened.account_id)
            self.say(f"{party.bank:<7} opened {party.currency} account "
                     f"{_short(opened.account_id)} for {party.name}")
        deposits = (("market_usd", "50,000.00 USD"), ("market_cnh", "300,000.00 CNH"),
                    ("gadgets", "5,000.00 USD"))
        for key, amount in deposits:
            bank = self.tellers[self.parties[key].bank]
            receipt = await bank.mint(self.ids[key], bank.money(amount),
                                      reference=self.ref(f"deposit-{key}"))
            self.say(f"{bank.name:<7} minted {amount:>15} to {self.who(key)} "
                     f"(block {receipt.block_number})")

    def start_listeners(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        self.step("Each bank's incoming listener starts")

        def report(handled: Handled) -> None:
            self.result.decisions.append(handled)
            t = handled.transfer
            verb = {"accepted": "accepted", "rejected": "REJECTED", "refunded": "refunded",
                    "skipped": "skipped", "failed": "will retry"}.get(handled.action,
                                                                       handled.action)
            actor = t.payer_bank if handled.action == "refunded" else t.payee_bank
            why = f" ({handled.reason})" if handled.reason and handled.action != "accepted" \
                else ""
            self.say(f"  [{actor} listener] {verb} {t.amount} {t.payer_bank}->{t.payee_bank}"
                     f" transfer {_short(t.transfer_id)}{why}")

        def invoice_required(transfer: Transfer) -> Verdict:
            if INVOICE.search(transfer.remittance):
                return Verdict.accepted()
            return Verdict.rejected("no invoice number in the remittance")

        rules = {"hkbank": accept_all, "usbank": invoice_required, "cnbank": accept_all}
        tasks = []
        for org, bank in self.banks.items():
            listener = IncomingListener(
                bank, checkpointer=fabgateway.InMemoryCheckpointer(), rule=rules[org],
                sweeper=Sweeper(bank, on_handled=report), rescan_interval=3.0,
                on_handled=report)
            tasks.append(asyncio.create_task(listener.run(stop=stop), name=f"listener-{org}"))
        self.say("usbank accepts trade payments only with an invoice number (INV-...) in the "
                 "remittance;")
        self.say("hkbank and cnbank accept every payment their customer's account can take;")
        self.say("each bank's sweeper refunds its own payments that were rejected.")
        return tasks

    async def pay_exporters(self) -> dict[str, tuple[str, str, str]]:
        """The marketplace's payouts; returns label -> (transfer id, payer bank, payee bank)."""
        self.step("The marketplace pays its exporters")
        hk = self.banks["hkbank"]
        pays = [
            ("tools", "12,500.00 USD", f"INV-{self.run}-001 spindle motors"),
            ("organics", "7,300.00 USD", "advance for the spring harvest"),
            ("gadgets", "4,200.00 USD", f"INV-{self.run}-002 phone cases"),
        ]
        payees = [Payee(self.parties[k].bank, self.ids[k], hk.money(a), rem)
                  for k, a, rem in pays]
        currencies = {p.bank: self.issued_by_both("hkbank", p.bank, "USD") for p in payees}
        cnh = self.issued_by_both("hkbank", "cnbank", "CNH")
        payout = await hk.batch_payout(self.ids["market_usd"], payees,
                                       reference=self.ref("payout-usd"),
                                       originator={"name": "Harbour Marketplace Ltd",
                                                   "country": "HK"})
        self.say(f"hkbank  batch payout from {self.who('market_usd')}: one debit, "
                 f"{len(pays)} transfers (block {payout.receipt.block_number})")
        sent: dict[str, tuple[str, str, str]] = {}
        for (key, amount, remittance), tid in zip(pays, payout.transfer_ids, strict=True):
            assert tid is not None
            bank = self.parties[key].bank
            sent[key] = (tid, "hkbank", bank)
            self.say(f"        {amount:>14} -> {self.who(key):<38} \"{remittance}\"")
            self.say(f"        {'':>14}    in {currencies[bank]}")
        cnh_payment = await hk.transfer(
            self.ids["market_cnh"], "cnbank", self.ids["textiles"], hk.money("88,000.00 CNH"),
            reference=self.ref("pay-cnh"), remittance=f"INV-{self.run}-003 cotton twill",
            originator={"name": "Harbour Marketplace Ltd", "country": "HK"})
        assert cnh_payment.transfer_id is not None
        sent["textiles"] = (cnh_payment.transfer_id, "hkbank", "cnbank")
        self.say(f"hkbank  transfer from {self.who('market_cnh')}:")
        self.say(f"        {'88,000.00 CNH':>14} -> {self.who('textiles'):<38} "
                 f"\"INV-{self.run}-003 cotton twill\"")
        self.say(f"        {'':>14}    in {cnh}")
        self.say("the money has left the marketplace's accounts; each payee bank decides...")
        return sent

    async def wait_final(
        self, sent: Mapping[str, tuple[str, str, str]], wanted: Mapping[str, TransferStatus]
    ) -> None:
        deadline = time.monotonic() + DECISION_TIMEOUT
        pending = dict(sent)
        while pending:
            for key, (tid, payer, payee) in list(pending.items()):
                status = (await self.banks[payer].get_transfer(tid, payer, payee)).status
                if status is wanted[key]:
                    self.result.transfers[key] = status
                    del pending[key]
                elif status in _FINAL:
                    raise DemoError(f"payment {key} ended {status.value}, not "
                                    f"{wanted[key].value}")
            if not pending:
                return
            if time.monotonic() > deadline:
                raise DemoError(f"payments not final after {DECISION_TIMEOUT:.0f} s: "
                                + ", ".join(pending))
            await asyncio.sleep(0.3)

    async def show_balances(self, keys: Sequence[str]) -> None:
        rows = []
        for key in keys:
            party = self.parties[key]
            account = await self.banks[party.bank].account(self.ids[key])
            self.result.balances[key] = account.balance
            rows.append([party.bank, party.name, _short(self.ids[key]), account.balance.format(),
                         account.status.value + (" (regulator's hold)" if account.hold else "")])
        for line in fmt.table(rows, ["BANK", "CUSTOMER", "ACCOUNT", "BALANCE",
                                     "STATUS"]).splitlines():
            self.say(line)

    async def fees_and_redemption(self) -> None:
        self.step("An exporter pays fees back; another redeems tokens")
        cn = self.banks["cnbank"]
        currency = self.issued_by_both("cnbank", "hkbank", "USD")
        fee = await cn.transfer(self.ids["gadgets"], "hkbank", self.ids["market_usd"],
                                cn.money("1,200.00 USD"), reference=self.ref("fees"),
                                remittance=f"INV-{self.run}-F1 marketplace listing fees")
        assert fee.transfer_id is not None
        self.say(f"cnbank  {self.who('gadgets')} pays listing fees:")
        self.say(f"        {'1,200.00 USD':>14} -> {self.who('market_usd')}")
        self.say(f"        {'':>14}    in {currency}")
        await self.wait_final({"fees": (fee.transfer_id, "cnbank", "hkbank")},
                              {"fees": TransferStatus.ACCEPTED})
        us = self.tellers["usbank"]
        before = await us.supply("USD")
        burn = await us.burn(self.ids["tools"], us.money("2,500.00 USD"),
                             reference=self.ref("redeem-tools"))
        after = await us.supply("USD")
        self.say(f"usbank  {self.who('tools')} redeems 2,500.00 USD: burned "
                 f"(block {burn.block_number})")
        self.say(f"        usbank's USD supply {before.supply} -> {after.supply}")

    async def net_and_settle(self) -> None:
        self.step("Interbank obligations netted, settlements recorded")
        pairs = [("hkbank", "usbank"), ("hkbank", "cnbank")]
        n = 0
        for a, b in pairs:
            obligations = await self.banks[a].obligations(b)
            for line in fmt.obligations_text(obligations).splitlines():
                self.say(line)
            for currency, net in sorted(obligations.net.items()):
                if net.minor == 0:
                    continue
                debtor, creditor = (a, b) if net.minor > 0 else (b, a)
                amount = net if net.minor > 0 else -net
                self.say(f"net {currency}: {debtor} owes {creditor} {amount}")
                n += 1
                rtgs = f"RTGS-{self.run}-{n}"
                receipt = await self.banks[creditor].record_settlement(
                    debtor, amount, rtgs_reference=rtgs)
                self.result.settlements.append((debtor, creditor, amount, rtgs))
                self.say(f"  {creditor} (creditor) records {amount} received from {debtor} "
                         f"over RTGS, ref {rtgs} (block {receipt.block_number})")
            after = await self.banks[b].obligations(a)  # the other bank reproduces it
            for currency, net in sorted(after.net.items()):
                self.result.net_after[(a, b, currency)] = -net.minor
            nets = ", ".join(m.format() for _, m in sorted(after.net.items()))
            self.say(f"after the settlements, {b} computes the net position: "
                     f"{nets or 'nothing owed'}")
            self.say("")

    async def freeze(self) -> None:
        self.step("The regulator freezes an account; a payment from it is refused")
        reg = self.regulator
        await reg.freeze("cnbank", self.ids["gadgets"], reason="sanctions screening match",
                         reference=self.ref("hold-gadgets"))
        self.say(f"regulator puts a hold on {self.who('gadgets')}: frozen "
                 "(sanctions screening match)")
        cn = self.banks["cnbank"]
        try:
            await cn.transfer(self.ids["gadgets"], "hkbank", self.ids["market_usd"],
                              cn.money("500.00 USD"), reference=self.ref("fees-2"),
                              remittance=f"INV-{self.run}-F2 fees")
        except ContractError as error:
            self.result.refused.append(Refusal("cnbank", "payment from a frozen account",
                                               error.code))
            self.say(f"cnbank  {self.who('gadgets')} tries to pay 500.00 USD -> refused "
                     f"by the contract: {error.code}")
        else:
            raise DemoError("a payment from a frozen account went through")

    async def _try(self, who: Member, what: str, call: Callable[[], object]) -> None:
        try:
            result = call()
            if asyncio.iscoroutine(result):
                await result
        except DTokenError as error:
            code = _refusal_code(error)
            self.result.refused.append(Refusal(who.name, what, code))
            self.say(f"  cannot: {what:<58} refused ({code})")
            return
        raise DemoError(f"{who.name} could read {what}")

    async def visibility(self) -> None:
        self.step("What each bank can and cannot see")
        hk, us, cn = self.banks["hkbank"], self.banks["usbank"], self.banks["cnbank"]

        def foreign_account(bank: Bank, key: str) -> Callable[[], object]:
            other = self.parties[key].bank
            return lambda: bank.submitter.evaluate(
                "get_account", {"account_id": self.ids[key], "bank": other},
                target_organizations=[bank.msp_id])

        views: list[tuple[Bank, list[str]]] = [
            (hk, ["market_usd", "market_cnh"]),
            (us, ["tools", "organics"]),
            (cn, ["textiles", "gadgets"]),
        ]
        for bank, keys in views:
            mine = {a.account_id: a for a in await bank.accounts()}
            self.say(f"{bank.name} ({bank.msp_id})")
            for key in keys:
                account = mine[self.ids[key]]
                self.say(f"  sees:   its customer {self.parties[key].name:<35} "
                         f"{account.balance.format():>15}")
            out = await bank.outgoing()
            inc = await bank.incoming()
            self.say(f"  sees:   its own transfers waiting: {len(inc)} incoming, "
                     f"{len(out)} outgoing not final")
        tools_tid = self.transfer_ids.get("tools")
        if tools_tid:
            seen = await us.get_transfer(tools_tid, "hkbank", "usbank")
            origin = ", ".join(f"{k}={v}" for k, v in sorted(seen.originator.items()))
            self.say("")
            self.say(f"of hkbank's payment to its customer, usbank sees {seen.amount}, the payee")
            self.say(f"account, the originator data ({origin}) and the remittance;")
            self.say("not the marketplace's account id: it is not in the transfer record.")
        self.say("")
        self.say("hkbank knows the payee account ids of its own payments, no more:")
        await self._try(hk, "usbank's account of Liberty Machine Tools",
                        foreign_account(hk, "tools"))
        self.say("usbank asks its own peer for another bank's customers:")
        await self._try(us, "cnbank's account of Pearl Textiles", foreign_account(us, "textiles"))
        textiles_tid = self.transfer_ids.get("textiles")
        if textiles_tid:
            await self._try(us, "the hkbank->cnbank CNH payment",
                            lambda: us.get_transfer(textiles_tid, "hkbank", "cnbank"))
        self.say("cnbank likewise:")
        await self._try(cn, "usbank's account of Boston Organics",
                        foreign_account(cn, "organics"))
        await self._try(cn, "what hkbank and usbank owe each other",
                        lambda: cn.submitter.evaluate(
                            "get_obligations", {"bank_a": "hkbank", "bank_b": "usbank"},
                            target_organizations=[cn.msp_id]))
        self.say("")
        reg = self.regulator
        self.say("the regulator (observer and auditor) sees every bank's accounts and holds:")
        for key in ("tools", "textiles", "gadgets"):
            party = self.parties[key]
            full = await reg.account(party.bank, self.ids[key])
            hold = " (held: frozen)" if full.hold and full.hold.frozen else ""
            self.say(f"  sees:   {party.bank}'s {party.name:<30} "
                     f"{full.balance.format():>15}{hold}")

    async def pvp_trade(self) -> None:
        """A US buyer's USD becomes a mainland exporter's CNH through an FX dealer at hkbank:
        two hash-locked legs that settle both or neither (docs/token-model.md)."""
        self.step("A US buyer pays USD, a mainland exporter receives CNH (PvP)")
        for party in _PVP_PARTIES:
            opened = await self.banks[party.bank].open_account(
                party.currency, f"{party.key.upper()}-{self.run}",
                reference=self.ref(f"open-{party.key}"))
            self.ids[party.key] = opened.account_id
            self.result.accounts[party.key] = (party.bank, opened.account_id)
        for key, amount in (("buyer", "10,000.00 USD"), ("dealer_cnh", "500,000.00 CNH")):
            bank = self.tellers[self.parties[key].bank]
            await bank.mint(self.ids[key], bank.money(amount), reference=self.ref(f"dep-{key}"))
            self.say(f"{bank.name:<7} minted {amount:>15} to {self.who(key)}")
        us, hk, cn = self.banks["usbank"], self.banks["hkbank"], self.banks["cnbank"]
        pay, receive = us.money("2,000.00 USD"), cn.money("14,400.00 CNH")
        self.say(f"cnbank draws a secret for {self.who('ceramics')} and hands out its lock;")
        self.say(f"leg 1: {pay} usbank -> hkbank (the dealer), deadline in 2 h;")
        self.say(f"leg 2: {receive} hkbank -> cnbank (the exporter), deadline in 1 h:")
        self.say("the leg claimed last (leg 1, by the dealer) outlives the one claimed first.")
        done = await pvp_mod.pvp(us, self.ids["buyer"], hk, self.ids["dealer_usd"],
                                 self.ids["dealer_cnh"], cn, self.ids["ceramics"], pay, receive,
                                 reference=self.ref("pvp"), ttl_seconds=3600, margin=3600)
        await us.wait_for_commit(done.claim1.tx_id)
        self.say(f"cnbank claimed leg 2 with the preimage (block {done.claim2.block_number});")
        self.say(f"hkbank read it in that claim and claimed leg 1 (block "
                 f"{done.claim1.block_number}).")
        for label, leg, reader in (("leg1", done.leg1, us), ("leg2", done.leg2, cn)):
            final = await reader.get_transfer(leg.transfer_id, leg.payer_bank, leg.payee_bank)
            self.result.pvp[label] = final.status
        rows = []
        for party in _PVP_PARTIES:
            balance = await self.banks[party.bank].balance(self.ids[party.key])
            self.result.pvp_balances[party.key] = balance
            rows.append([party.bank, party.name, balance.format()])
        for line in fmt.table(rows, ["BANK", "CUSTOMER", "BALANCE"]).splitlines():
            self.say(line)
        self.say("no bank could take one leg without giving the other: a claim needs the")
        self.say("preimage, a refund needs the lock expired after its deadline (the payer's "
                 "and the regulator's peers).")

    async def quoted_payment(self) -> None:
        """A US buyer pays USD; the exporter's own bank converts: cnbank quotes usbank a firm
        rate for the one payment, usbank's customer pays with it, and cnbank's listener
        accepts, crediting CNH at the quoted rate. usbank owes cnbank USD."""
        self.step("A US buyer pays USD at the exporter's bank's quote; the exporter gets CNH")
        for party in _QUOTE_PARTIES:
            opened = await self.banks[party.bank].open_account(
                party.currency, f"{party.key.upper()}-{self.run}",
                reference=self.ref(f"open-{party.key}"))
            self.ids[party.key] = opened.account_id
            self.result.accounts[party.key] = (party.bank, opened.account_id)
        teller = self.tellers["usbank"]
        await teller.mint(self.ids["apparel"], teller.money("5,000.00 USD"),
                          reference=self.ref("dep-apparel"))
        us, cn = self.banks["usbank"], self.banks["cnbank"]
        offered = await cn.offer_quote("usbank", us.money("3,000.00 USD"), "CNH", "7.2345",
                                       reference=self.ref("quote"), ttl_seconds=600,
                                       rounding="payee")
        self.say(f"cnbank quotes usbank {offered.amount} -> {offered.payee_amount} "
                 f"(7.2345 CNH per USD, exact), payable for 10 minutes;")
        quote = await us.quote(offered.quote_id, payee_bank="cnbank")
        payment = await us.pay_with_quote(self.ids["apparel"], self.ids["furniture"], quote,
                                          reference=self.ref("pay-quoted"),
                                          remittance="PO 88-1207")
        assert payment.transfer_id is not None
        self.say(f"{self.who('apparel')} pays with it: debited {quote.amount}.")
        await cn.wait_for_commit(payment.receipt.tx_id)
        listener = IncomingListener(cn, checkpointer=fabgateway.InMemoryCheckpointer())
        for handled in await listener.process_pending(full=True):
            self.result.decisions.append(handled)
        final = await us.get_transfer(payment.transfer_id, "usbank", "cnbank")
        self.result.quoted = final.status
        self.say(f"cnbank's listener {final.status.value} it, applying its own quote: "
                 f"{self.who('furniture')} is credited {final.credit}.")
        self.say(f"usbank owes cnbank {final.amount} (the obligation stays in the payer's "
                 "currency).")
        for party in _QUOTE_PARTIES:
            balance = await self.banks[party.bank].balance(self.ids[party.key])
            self.result.quoted_balances[party.key] = balance
        self.say("a transfer claiming another rate, amount or an expired quote is refused by")
        self.say("usbank's contract, and by cnbank's accept, which reads only its own quote.")

    async def audit(self) -> None:
        self.step("The regulator's audit")
        report = await self.regulator.audit()
        self.result.audit = report
        for line in fmt.audit_text(report, self.regulator.currencies).splitlines():
            self.say(line)
        if report.ok:
            self.say("every bank's balances equal its supply records; per currency, supply")
            self.say("plus in flight equals minted less burned; per pair, obligations equal")
            self.say("accepted less settled.")

    async def play(self) -> DemoResult:
        stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            self.out(f"Deposit-token demo on the network in {self.result.state_dir}")
            await self.connect(stack)
            await self.open_and_fund()
            tasks = self.start_listeners(stop)
            try:
                sent = await self.pay_exporters()
                self.transfer_ids = {k: v[0] for k, v in sent.items()}
                wanted = {"tools": TransferStatus.ACCEPTED, "organics": TransferStatus.REFUNDED,
                          "gadgets": TransferStatus.ACCEPTED,
                          "textiles": TransferStatus.ACCEPTED}
                await self.wait_final(sent, wanted)
                self.step("Payments decided automatically")
                for key in wanted:
                    self.say(f"{self.who(key):<40} {self.result.transfers[key].value}")
                self.say("the rejected payment went back to the marketplace: refunded by "
                         "hkbank's sweeper")
                await self.show_balances(["market_usd", "market_cnh", "tools", "organics",
                                          "textiles", "gadgets"])
                await self.fees_and_redemption()
                await conditional_chapters(self)
            finally:
                stop.set()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
            await self.pvp_trade()  # its legs are netted and settled with the rest
            await self.quoted_payment()  # so is its USD obligation
            await self.net_and_settle()
            await self.freeze()
            await self.visibility()
            self.step("Balances at the end")
            await self.show_balances([p.key for p in _PARTIES])
            await self.audit()
        return self.result


def _profiles_dir(target: Path | str | HasStateDir) -> Path:
    if isinstance(target, Path | str):
        path = Path(target)
        return path if path.name == "profiles" or not (path / "profiles").is_dir() \
            else path / "profiles"
    return Path(target.state_dir) / "profiles"


async def demo(target: Path | str | HasStateDir, out: Out = print) -> DemoResult:
    """The story, on the network whose profiles are in ``target`` (a ``profiles`` folder, a
    state folder, or an object with a ``state_dir``); returns what it did."""
    return await _Story(_profiles_dir(target), out).play()


def run_demo(target: Path | str | HasStateDir, out: Out = print) -> DemoResult:
    """:func:`demo`, blocking (not from a running event loop)."""
    return asyncio.run(demo(target, out))


def _next_steps(result: DemoResult, out: Out, chosen: Path | None) -> None:
    out("")
    out("── Try next " + "─" * 60)
    if chosen is not None:  # a network other than the default one: the CLI must be told
        out(f"   export DTOKEN_PROFILES={chosen}")
    tools = result.accounts.get("tools", ("", ""))[1]
    commands = [
        (".venv/bin/dtoken --bank usbank account list", "Liberty Trust's accounts"),
        (f".venv/bin/dtoken --bank usbank history {tools}", "one exporter's history"),
        (".venv/bin/dtoken --bank cnbank obligations --with hkbank", "netting, as cnbank"),
        (".venv/bin/dtoken --bank regulator audit", "the audit again"),
        (".venv/bin/dtoken --bank hkbank dashboard", "a live web page for hkbank"),
        (".venv/bin/python -m dtoken.demo", "play the story again (new run id)"),
        (".venv/bin/dtoken network down", "stop the network (up brings it back)"),
    ]
    width = max(len(c) for c, _ in commands)
    for command, what in commands:
        out(f"   {command:<{width}}   # {what}")


def _profiles(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The profiles folder, and the same if it was chosen rather than the default network's
    (``--profiles``, ``--state-dir`` or the environment)."""
    from dtoken.cli import profiles_dir  # the CLI's rules (and its plugins' default)

    chosen = argparse.Namespace(profiles=args.profiles, bank_state_dir=args.state_dir)
    found = profiles_dir(chosen)
    if found is None:
        raise UsageError("no network: give --profiles DIR or --state-dir DIR (or "
                         "$DTOKEN_PROFILES), or install the network tooling and bring its "
                         "default network up (dtoken network up)")
    given = (args.profiles is not None or args.state_dir is not None
             or bool(os.environ.get("DTOKEN_PROFILES") or os.environ.get("DTOKEN_STATE_DIR")))
    return found, found if given else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dtoken.demo",
        description="Play the deposit-token story on a running network (scripts/demo).")
    parser.add_argument("--profiles", type=Path, metavar="DIR",
                        help="the network's connection profiles, <org>.json (default: "
                             "$DTOKEN_PROFILES, else the default network's)")
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        help="a network's state folder: its profiles/ (default: "
                             "$DTOKEN_STATE_DIR)")
    args = parser.parse_args(argv)
    try:
        profiles, chosen = _profiles(args)
    except UsageError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        result = run_demo(profiles, out)
    except DTokenError as error:
        print(f"demo: {type(error).__name__}: {error}", file=sys.stderr)
        return 3
    assert result.audit is not None
    _next_steps(result, out, chosen)
    out("")
    out(f"audit: {'OK' if result.audit.ok else 'FAILED'}")
    return 0 if result.audit.ok else 1


if __name__ == "__main__":
    sys.exit(main())
