"""The ``dtoken`` command line: a bank's commands, and the operator's when installed.

The bank commands run as one organization, on top of the bank SDK::

    dtoken --bank hkbank account open --currency USD --owner CIF-1001 --reference open-1001
    dtoken --bank hkbank mint ACCOUNT "1,250.00 USD" --reference dep-77
    dtoken --bank hkbank transfer ACCOUNT PAYEE "50.00" --to-bank usbank --reference inv-1
    dtoken --bank usbank watch                      # accept incoming transfers, in the foreground

The organization's connection profile is ``--profile FILE``, else ``<profiles>/<bank>.json``
for ``--bank NAME``, the profiles folder being ``--profiles DIR``, else ``--state-dir DIR``'s
``profiles``, else ``$DTOKEN_PROFILES``, else ``$DTOKEN_STATE_DIR``'s ``profiles``, else the one
an installed plugin names (the network tooling's: its default network's). The CLI never reads
a consortium file. ``--identity`` picks the client identity: ``operator`` by default,
``minter`` for mint and burn, ``auditor`` for the regulator. Output is human text, or JSON with
``--json``.

The operator's commands (``dtoken network up|down|status|generate``, ``dtoken identity issue``)
come from the network tooling's distribution, mounted through the ``dtoken.commands``
entry points (:mod:`dtoken.plugins`); this module never imports it.

Exit codes: 0 done, 2 bad usage or configuration, 3 network fault (or an outcome that could
not be learnt: retry with the same reference), 4 refused by the contract.

One file of ~690 lines on purpose: the argparse tree (``build_parser``) and the handlers that
read its options sit in one module so that an option and its use are found together; every
handler is a few lines over the SDK (the logic is in :mod:`dtoken.bank`), and the profile
resolution is the one piece of logic of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import fabgateway

from dtoken import cli_conditional
from dtoken import cli_format as fmt
from dtoken import plugins as plugins_mod
from dtoken import pvp as pvp_mod
from dtoken.bank import Bank, Member, Regulator
from dtoken.errors import (
    CommitFailed,
    ContractError,
    DTokenError,
    ExposureCapExceeded,
    MoneyFormatError,
    NetworkFault,
    UsageError,
)
from dtoken.listener import Handled, IncomingListener, Rule, Sweeper, Verdict, accept_all
from dtoken.models import Payee, Quote, Transfer
from dtoken.money import Money
from dtoken.plugins import CommandHost
from dtoken.profile import ROLES, Profile

__all__ = [
    "EXIT_CONTRACT",
    "EXIT_FAULT",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "profiles_dir",
    "resolve_profile",
]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAULT = 3
EXIT_CONTRACT = 4

Handler = Callable[["Context", argparse.Namespace], Awaitable[object]]


# --------------------------------------------------------------------------- parser


def _common() -> argparse.ArgumentParser:
    """Options accepted before or after the command (``dtoken --json balance X`` and
    ``dtoken balance X --json``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bank", default=argparse.SUPPRESS, metavar="NAME",
                        help="the organization to act as (its profiles/NAME.json)")
    common.add_argument("--identity", default=argparse.SUPPRESS, metavar="ID",
                        help="client identity in the profile (default: operator; minter for "
                             "mint/burn; auditor for the regulator)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="dtoken", parents=[common],
        description="Deposit-token network: act as a bank (and, with the network tooling "
                    "installed, operate the network).",
    )
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="the organization's connection profile (instead of --bank)")
    parser.add_argument("--profiles", type=Path, metavar="DIR",
                        help="a folder of connection profiles, NAME.json for --bank NAME "
                             "(default: $DTOKEN_PROFILES)")
    parser.add_argument("--state-dir", dest="bank_state_dir", type=Path, metavar="DIR",
                        help="a network's state folder: its profiles/ folder "
                             "(default: $DTOKEN_STATE_DIR)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help: str, parent: Any = sub,
                **options: Any) -> Any:
        p = parent.add_parser(name, parents=[common], help=help, description=help, **options)
        p.set_defaults(handler=_bank_command(handler))
        return p

    account = sub.add_parser("account", help="open, list and show accounts")
    acc = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    p = command("open", cmd_account_open, "open an account", acc)
    p.add_argument("--currency", required=True)
    p.add_argument("--owner", required=True, help="the bank's own customer reference")
    p.add_argument("--reference", help="idempotency reference (default: open-<owner>-<cur>)")
    p.add_argument("--single-limit", metavar="AMOUNT", help="largest single payment")
    p.add_argument("--daily-limit", metavar="AMOUNT", help="largest outflow per day")
    p = command("list", cmd_account_list, "list the bank's accounts", acc)
    p.add_argument("--currency")
    p = command("show", cmd_account_show, "an account's details", acc)
    p.add_argument("account")

    for name, verb in (("mint", "credit new tokens (a deposit)"),
                       ("burn", "retire tokens (a redemption)")):
        p = command(name, cmd_mint if name == "mint" else cmd_burn, verb)
        p.add_argument("account")
        p.add_argument("amount", help='e.g. "1,250.00 USD" (or "1250.00": the account\'s)')
        p.add_argument("--reference", required=True, help="idempotency reference")

    p = command("transfer", cmd_transfer,
                "pay an account at this bank or, with --to-bank, at another bank")
    p.add_argument("from_account")
    p.add_argument("to_account")
    p.add_argument("amount")
    p.add_argument("--to-bank", help="the payee's bank (default: this bank)")
    p.add_argument("--reference", required=True, help="idempotency reference")
    p.add_argument("--remittance", default="", help="remittance information (cross-bank)")
    p.add_argument("--originator", action="append", default=[], metavar="KEY=VALUE",
                   help="travel-rule data for the payee bank (repeatable)")
    p.add_argument("--ttl", type=int, metavar="SECONDS", help="expiry of a cross-bank transfer")

    p = command("payout", cmd_payout, "one debit, many payees (batch payout)")
    p.add_argument("from_account")
    p.add_argument("--pay", action="append", required=True, metavar="BANK:ACCOUNT:AMOUNT",
                   help="one payment (repeatable)")
    p.add_argument("--reference", required=True)

    command("incoming", cmd_incoming, "transfers waiting for this bank's decision")
    command("outgoing", cmd_outgoing, "this bank's transfers not final yet")
    p = command("accept", cmd_accept, "accept an incoming transfer")
    p.add_argument("transfer")
    p.add_argument("--from-bank", required=True, help="the payer's bank")
    p.add_argument("--force", action="store_true",
                   help="accept even beyond this bank's exposure cap on the payer's bank")
    p = command("reject", cmd_reject, "reject an incoming transfer")
    p.add_argument("transfer")
    p.add_argument("--from-bank", required=True, help="the payer's bank")
    p.add_argument("--reason", default="")
    p = command("refund", cmd_refund, "refund a rejected or expired outgoing transfer")
    p.add_argument("transfer")
    p.add_argument("--to-bank", required=True, help="the payee's bank")
    command("sweep", cmd_sweep, "refund every rejected or expired outgoing transfer, once")

    pvp = sub.add_parser("pvp", help="payment versus payment: hash-locked legs")
    legs = pvp.add_subparsers(dest="pvp_command", required=True, metavar="ACTION")
    p = legs.add_parser("secret", help="draw a preimage and its lock (the exporter's bank)",
                        description="draw a preimage and its lock (the exporter's bank)")
    p.set_defaults(handler=cmd_pvp_secret)
    p = command("lock", cmd_pvp_lock, "pay under a hash lock (one leg of a PvP)", legs)
    p.add_argument("from_account")
    p.add_argument("to_account")
    p.add_argument("amount")
    p.add_argument("--to-bank", required=True, help="the payee's bank")
    p.add_argument("--lock", required=True, help="SHA-256 (hex) of the preimage")
    p.add_argument("--ttl", type=int, required=True, metavar="SECONDS",
                   help="the deadline (the leg claimed last needs the later one)")
    p.add_argument("--reference", required=True, help="idempotency reference")
    # no abbreviations: "--preimage HEX" must be refused, not read as a file name
    p = command("claim", cmd_pvp_claim, "accept a hash-locked incoming leg with the preimage",
                legs, allow_abbrev=False)
    p.add_argument("transfer")
    p.add_argument("--from-bank", required=True, help="the payer's bank")
    p.add_argument("--preimage-file", required=True, metavar="FILE",
                   help="the file holding the preimage (64 hex digits; '-': standard input). "
                        "Never an argument: any local user can read a process's arguments")
    p = command("expire", cmd_pvp_expire,
                "after the deadline, expire an outgoing leg's lock (this bank and the "
                "regulator endorse); "
                "then refund", legs)
    p.add_argument("transfer")
    p.add_argument("--to-bank", required=True, help="the payee's bank")

    quotes = sub.add_parser("quote", help="conversion at the payee's bank: FX quotes")
    fx = quotes.add_subparsers(dest="quote_command", required=True, metavar="ACTION")
    p = command("offer", cmd_quote_offer,
                "(the payee's bank) quote a payer bank a firm rate for one payment", fx)
    p.add_argument("payer_bank")
    p.add_argument("amount", help='what the payer pays, in its currency: "1,000.00 USD"')
    p.add_argument("to_currency", help="the currency this bank credits (its own)")
    p.add_argument("rate", help='exact: units of to_currency per unit paid, e.g. "7.2345"')
    p.add_argument("--reference", required=True, help="idempotency reference (gives the id)")
    p.add_argument("--ttl", type=int, default=600, metavar="SECONDS",
                   help="how long the payer bank may pay with it (default: %(default)s)")
    p.add_argument("--accept-window", type=int, default=3600, metavar="SECONDS",
                   help="how long after that this bank accepts (default: %(default)s)")
    p.add_argument("--rounding", choices=["bank", "payee"], default="bank",
                   help="to the minor unit: down (bank) or up (payee)")
    p = command("show", cmd_quote_show, "read a quote (either bank of the pair)", fx)
    p.add_argument("quote")
    p.add_argument("--payee-bank", required=True, help="the bank that gave it")
    p.add_argument("--payer-bank", help="the bank it was given to (default: this bank)")
    p = command("pay", cmd_quote_pay, "(the payer's bank) pay with a quote", fx)
    p.add_argument("from_account")
    p.add_argument("to_account")
    p.add_argument("quote")
    p.add_argument("--to-bank", required=True, help="the payee's bank (the quote's)")
    p.add_argument("--reference", required=True, help="idempotency reference")
    p.add_argument("--remittance", default="", help="remittance information")

    p = command("balance", cmd_balance, "an account's balance")
    p.add_argument("account")
    p = command("history", cmd_history, "an account's history")
    p.add_argument("account")
    p.add_argument("--limit", type=int)
    p.add_argument("--of-bank", help="(regulator) the account's bank")
    p = command("supply", cmd_supply, "the bank's supply of a token")
    p.add_argument("currency")
    p.add_argument("--of-bank", help="(regulator) the issuing bank")
    p = command("obligations", cmd_obligations, "what two banks owe each other")
    p.add_argument("--with", dest="other", required=True, metavar="BANK")
    p.add_argument("--of-bank", help="(regulator) the first bank")
    p = command("settle", cmd_settle,
                "as creditor, record that a debtor bank's reserves arrived (RTGS)")
    p.add_argument("amount", help='e.g. "500.00 USD"')
    p.add_argument("--debtor", required=True, metavar="BANK")
    p.add_argument("--rtgs-reference", required=True)

    p = command("cap", cmd_cap,
                "as creditor, cap what a debtor bank may owe this bank unsettled")
    p.add_argument("amount", help='e.g. "100,000.00 USD" (0 accepts nothing unsettled)')
    p.add_argument("--debtor", required=True, metavar="BANK")

    p = command("freeze", cmd_freeze,
                "a bank freezes (or --unfreeze, --close) its account; the regulator puts a "
                "hold (--of-bank; --hold AMOUNT; --release)")
    p.add_argument("account")
    p.add_argument("--unfreeze", action="store_true")
    p.add_argument("--close", action="store_true")
    p.add_argument("--of-bank", help="(regulator) the account's bank")
    p.add_argument("--hold", metavar="AMOUNT", help="(regulator) hold an amount, no freeze")
    p.add_argument("--release", action="store_true", help="(regulator) remove the hold")
    p.add_argument("--reason", default="")
    p = command("suspend", cmd_suspend,
                "(regulator) suspend a bank: no new payment to or from it until resumed")
    p.add_argument("of_bank", metavar="BANK")
    p.add_argument("--reason", default="")
    p = command("resume", cmd_resume, "(regulator) lift a bank's suspension")
    p.add_argument("of_bank", metavar="BANK")
    command("suspensions", cmd_suspensions, "the banks suspended, as this bank was told")
    command("audit", cmd_audit, "(regulator) the conservation audit")
    p = command("dashboard", cmd_dashboard,
                "a live web page of what this bank (or the regulator) may see, on 127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: "
                   "%(default)s; 0: any free port)")
    p.add_argument("--refresh", type=float, default=30.0, metavar="SECONDS",
                   help="full refresh every SECONDS even without new blocks")

    p = command("watch", cmd_watch,
                "accept (or by rule reject) incoming transfers as they come, in the foreground")
    p.add_argument("--checkpoint", type=Path, help="default: <state>/listeners/<bank>.json")
    p.add_argument("--sweep", action="store_true",
                   help="also refund this bank's rejected and expired transfers")
    p.add_argument("--rescan", type=float, default=30.0, metavar="SECONDS",
                   help="full pass every SECONDS even without events")
    p.add_argument("--max-amount", metavar="AMOUNT",
                   help="reject incoming transfers above this amount")
    p.add_argument("--rule", metavar="MODULE:FUNCTION",
                   help="a Python rule: Transfer -> dtoken.listener.Verdict")
    p.add_argument("--once", action="store_true", help="one pass, then exit")

    p = command("monitor", cmd_monitor,
                "follow the blocks and print alerts: planted validation parameters, private "
                "data withheld or tampered with, and (the regulator's) breaches of its holds")
    p.add_argument("--state", type=Path, metavar="FILE",
                   help="checkpoint and held balances (default: <state>/monitors/<org>.json)")
    p.add_argument("--from-block", type=int, default=0, metavar="N",
                   help="first block when there is no state yet (default: %(default)s)")
    p.add_argument("--once", action="store_true",
                   help="inspect the blocks committed so far, then exit")

    cli_conditional.add_commands(command, sub)  # escrow and payment requests

    host = CommandHost(common=common, organization=_organization, roles=ROLES)
    for plugin in plugins_mod.plugins():
        plugin.target.register(sub, host)
    return parser


# --------------------------------------------------------------------------- context


class Context:
    """The resolved profile and the connected client of one command."""

    def __init__(self, args: argparse.Namespace, member: Member) -> None:
        self.args = args
        self.member = member
        self.json = bool(getattr(args, "json", False))

    @property
    def bank(self) -> Bank:
        if not isinstance(self.member, Bank):
            raise UsageError(f"{self.member.name} is not a bank: this command is a bank's")
        return self.member

    @property
    def regulator(self) -> Regulator | None:
        return self.member if isinstance(self.member, Regulator) else None

    def out(self, value: object, text: str) -> None:
        print(fmt.dumps(value) if self.json else text)


def profiles_dir(args: argparse.Namespace) -> Path | None:
    """The folder of ``<org>.json`` connection profiles, by the rules in the module docstring
    (``None``: none given, and no plugin names one)."""
    if getattr(args, "profiles", None) is not None:
        return Path(args.profiles)
    if getattr(args, "bank_state_dir", None) is not None:
        return Path(args.bank_state_dir) / "profiles"
    if os.environ.get("DTOKEN_PROFILES"):
        return Path(os.environ["DTOKEN_PROFILES"])
    if os.environ.get("DTOKEN_STATE_DIR"):
        return Path(os.environ["DTOKEN_STATE_DIR"]) / "profiles"
    for plugin in plugins_mod.plugins():
        try:
            found = plugin.default_profiles()
        except DTokenError:
            raise
        except Exception as error:  # the plugin's own error (a bad consortium file ...)
            raise UsageError(f"{plugin.name} ({plugin.source}): {error}") from error
        if found is not None:
            return found
    return None


def profile_path(args: argparse.Namespace) -> Path:
    """The connection profile a command acts with (``UsageError`` naming what is missing)."""
    if getattr(args, "profile", None) is not None:
        return Path(args.profile)
    bank = getattr(args, "bank", None)
    profiles = profiles_dir(args)
    if profiles is None:
        raise UsageError("no connection profile: give --profile FILE, or --bank NAME with "
                         "--profiles DIR (or $DTOKEN_PROFILES) or --state-dir DIR")
    if not bank:
        known = sorted(p.stem for p in profiles.glob("*.json")) if profiles.is_dir() else []
        raise UsageError(
            "which organization? give --bank NAME"
            + (f" (profiles in {profiles}: {', '.join(known)})" if known else "")
        )
    path = profiles / f"{bank}.json"
    if not path.exists():
        raise UsageError(f"no connection profile for {bank!r} at {path}: is the network up?")
    return path


def resolve_profile(args: argparse.Namespace) -> Profile:
    """The loaded connection profile of :func:`profile_path`."""
    return Profile.load(profile_path(args))


def _organization(args: argparse.Namespace) -> tuple[str, Path]:
    profile = resolve_profile(args)
    return profile.org, profile.path


_MINTER_COMMANDS = {"mint", "burn"}


def _identity(args: argparse.Namespace, profile: Profile) -> str:
    chosen = getattr(args, "identity", None)
    if chosen:
        return str(chosen)
    if profile.is_regulator:
        return "auditor"
    return "minter" if args.command in _MINTER_COMMANDS else "operator"


def _bank_command(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        async def go() -> None:
            profile = resolve_profile(args)
            cls: type[Bank] | type[Regulator] = Regulator if profile.is_regulator else Bank
            async with cls.connect(profile, identity=_identity(args, profile)) as member:
                await handler(Context(args, member), args)

        return _guarded(args, lambda: asyncio.run(go()))

    return run


def _guarded(args: argparse.Namespace, body: Callable[[], object]) -> int:
    as_json = bool(getattr(args, "json", False))

    def fail(code: int, kind: str, error: BaseException, label: str | None = None) -> int:
        label = label or {EXIT_USAGE: "usage", EXIT_FAULT: "network fault",
                          EXIT_CONTRACT: "refused by the contract"}[code]
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"dtoken: {label}: {message}", file=sys.stderr)
        if as_json:
            info: dict[str, object] = {"kind": kind, "type": type(error).__name__,
                                       "message": str(error)}
            if isinstance(error, ContractError):
                info["code"] = error.code
            print(json.dumps({"error": info}, indent=2))
        return code

    try:
        body()
    except ContractError as error:
        return fail(EXIT_CONTRACT, "contract", error)
    except ExposureCapExceeded as error:  # refused by this bank's own cap: nothing was sent
        return fail(EXIT_CONTRACT, "exposure_cap", error, "refused by the exposure cap")
    except UsageError as error:
        return fail(EXIT_USAGE, "usage", error)
    except (NetworkFault, CommitFailed, fabgateway.GatewayError) as error:
        return fail(EXIT_FAULT, "network", error)
    except DTokenError as error:
        return fail(EXIT_FAULT, "network", error)
    except KeyboardInterrupt:
        return 130
    return EXIT_OK


# --------------------------------------------------------------------------- helpers


async def _amount(member: Member, text: str, account: str | None = None,
                  bank: str | None = None) -> Money:
    """``text`` as Money; a bare number takes the account's currency."""
    try:
        return Money.parse(text, member.currencies)
    except MoneyFormatError:
        if account is None or any(w.isalpha() for w in text.split()):
            raise
    if isinstance(member, Regulator):
        currency = (await member.account(bank or "", account)).currency
    else:
        assert isinstance(member, Bank)
        currency = (await member.account(account)).currency
    return Money.parse(text, member.currencies, currency=currency)


def _pairs(items: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def _need_regulator_bank(args: argparse.Namespace) -> str:
    if not args.of_bank:
        raise UsageError("the regulator names the account's bank with --of-bank")
    return str(args.of_bank)


# --------------------------------------------------------------------------- commands


async def cmd_account_open(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    reference = args.reference or f"open-{args.owner}-{args.currency}"
    single = Money.parse(args.single_limit, bank.currencies, currency=args.currency) \
        if args.single_limit else None
    daily = Money.parse(args.daily_limit, bank.currencies, currency=args.currency) \
        if args.daily_limit else None
    opened = await bank.open_account(args.currency, args.owner, reference=reference,
                                     single_payment_limit=single, daily_outflow_limit=daily)
    ctx.out(opened, f"opened account {opened.account_id} ({args.currency}) for {args.owner} "
                    f"{fmt.receipt_note(opened.receipt)}")


async def cmd_account_list(ctx: Context, args: argparse.Namespace) -> None:
    accounts = await ctx.bank.accounts(args.currency)
    ctx.out(accounts, fmt.accounts_text(accounts))


async def cmd_account_show(ctx: Context, args: argparse.Namespace) -> None:
    account = await ctx.bank.account(args.account)
    ctx.out(account, fmt.account_text(account))


async def cmd_mint(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    amount = await _amount(bank, args.amount, args.account)
    receipt = await bank.mint(args.account, amount, reference=args.reference)
    ctx.out(receipt, f"minted {amount} to {args.account} {fmt.receipt_note(receipt)}")


async def cmd_burn(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    amount = await _amount(bank, args.amount, args.account)
    receipt = await bank.burn(args.account, amount, reference=args.reference)
    ctx.out(receipt, f"burned {amount} from {args.account} {fmt.receipt_note(receipt)}")


async def cmd_transfer(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    amount = await _amount(bank, args.amount, args.from_account)
    to_bank = args.to_bank or bank.name
    payment = await bank.transfer(
        args.from_account, to_bank, args.to_account, amount, reference=args.reference,
        remittance=args.remittance, originator=_pairs(args.originator, "--originator"),
        ttl_seconds=args.ttl,
    )
    if payment.kind == "internal":
        text = f"transferred {amount} to {args.to_account} within {bank.name}"
    else:
        text = (f"sent {amount} to {to_bank}/{args.to_account}: transfer "
                f"{payment.transfer_id} waits for {to_bank}")
    ctx.out(payment, f"{text} {fmt.receipt_note(payment.receipt)}")


async def cmd_payout(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    payees = []
    for item in args.pay:
        parts = item.split(":", 2)
        if len(parts) != 3:
            raise UsageError(f"--pay {item!r} is not BANK:ACCOUNT:AMOUNT")
        payees.append(Payee(parts[0], parts[1], await _amount(bank, parts[2], args.from_account)))
    payout = await bank.batch_payout(args.from_account, payees, reference=args.reference)
    lines = [f"paid {len(payees)} payees from {args.from_account} "
             f"{fmt.receipt_note(payout.receipt)}"]
    for payee, tid in zip(payees, payout.transfer_ids, strict=True):
        where = f"transfer {tid}" if tid else "credited"
        lines.append(f"  {payee.bank}/{payee.account_id} {payee.amount}: {where}")
    ctx.out(payout, "\n".join(lines))


async def cmd_incoming(ctx: Context, args: argparse.Namespace) -> None:
    transfers = await ctx.bank.incoming()
    ctx.out(transfers, fmt.transfers_text(transfers, incoming=True))


async def cmd_outgoing(ctx: Context, args: argparse.Namespace) -> None:
    transfers = await ctx.bank.outgoing()
    ctx.out(transfers, fmt.transfers_text(transfers, incoming=False))


async def cmd_accept(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.accept(args.transfer, args.from_bank, force=args.force)
    ctx.out(receipt, f"accepted transfer {args.transfer} from {args.from_bank} "
                     f"{fmt.receipt_note(receipt)}")


async def cmd_reject(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.reject(args.transfer, args.from_bank, args.reason)
    ctx.out(receipt, f"rejected transfer {args.transfer} from {args.from_bank} "
                     f"{fmt.receipt_note(receipt)}")


async def cmd_refund(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.refund(args.transfer, args.to_bank)
    ctx.out(receipt, f"refunded transfer {args.transfer} to {args.to_bank} "
                     f"{fmt.receipt_note(receipt)}")


def cmd_pvp_secret(args: argparse.Namespace) -> int:
    preimage, lock = pvp_mod.new_secret()
    print(json.dumps({"preimage": preimage, "lock": lock}))
    return 0


def read_secret(path: str, what: str) -> str:
    """A secret from a file (``-``: standard input), stripped of surrounding white space."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        # not the path: a secret passed by mistake in its place must not be echoed
        raise UsageError(f"cannot read {what} file: {exc.strerror}") from None
    if not text.strip():
        raise UsageError(f"{what} file is empty")
    return text.strip()


async def cmd_pvp_lock(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    amount = await _amount(bank, args.amount, args.from_account)
    payment = await bank.lock(args.from_account, args.to_bank, args.to_account, amount,
                              lock=args.lock, ttl_seconds=args.ttl, reference=args.reference)
    ctx.out(payment, f"locked {amount} to {args.to_bank}/{args.to_account}: transfer "
                     f"{payment.transfer_id} {fmt.receipt_note(payment.receipt)}")


async def cmd_pvp_claim(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.claim(args.transfer, args.from_bank,
                                   read_secret(args.preimage_file, "the preimage"))
    ctx.out(receipt, f"claimed transfer {args.transfer} from {args.from_bank} "
                     f"{fmt.receipt_note(receipt)}")


async def cmd_pvp_expire(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.expire_lock(args.transfer, args.to_bank)
    ctx.out(receipt, f"expired the lock of transfer {args.transfer} to {args.to_bank} "
                     f"{fmt.receipt_note(receipt)}")


def _quote_line(quote: Quote) -> str:
    return (f"quote {quote.quote_id} from {quote.payee_bank} to {quote.payer_bank}: "
            f"{quote.amount} -> {quote.payee_amount} (rate {quote.rate.numerator}/"
            f"{quote.rate.denominator}, rounding {quote.rounding}), pay by "
            f"{quote.valid_until}, accepted until {quote.accept_until}")


async def cmd_quote_offer(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    quote = await bank.offer_quote(
        args.payer_bank, await _amount(bank, args.amount), args.to_currency, args.rate,
        reference=args.reference, ttl_seconds=args.ttl, accept_seconds=args.accept_window,
        rounding=args.rounding)
    ctx.out(quote, _quote_line(quote))


async def cmd_quote_show(ctx: Context, args: argparse.Namespace) -> None:
    quote = await ctx.bank.quote(args.quote, payee_bank=args.payee_bank,
                                 payer_bank=args.payer_bank)
    ctx.out(quote, _quote_line(quote))


async def cmd_quote_pay(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    quote = await bank.quote(args.quote, payee_bank=args.to_bank)
    payment = await bank.pay_with_quote(args.from_account, args.to_account, quote,
                                        reference=args.reference, remittance=args.remittance)
    ctx.out(payment, f"paid {quote.amount} to {args.to_bank}/{args.to_account}, credited "
                     f"{quote.payee_amount} on accept: transfer {payment.transfer_id} "
                     f"{fmt.receipt_note(payment.receipt)}")


async def cmd_sweep(ctx: Context, args: argparse.Namespace) -> None:
    handled = await Sweeper(ctx.bank).sweep_once()
    ctx.out(handled, "\n".join(fmt.handled_line(h) for h in handled) or "nothing to refund")


async def cmd_balance(ctx: Context, args: argparse.Namespace) -> None:
    account = await ctx.bank.account(args.account)
    ctx.out({"account_id": account.account_id, "balance": account.balance,
             "available": account.available},
            f"{account.balance}" + (f" ({account.available} available)"
                                    if account.available != account.balance else ""))


async def cmd_history(ctx: Context, args: argparse.Namespace) -> None:
    reg = ctx.regulator
    if reg is not None:
        entries = await reg.history(_need_regulator_bank(args), args.account, limit=args.limit)
    else:
        entries = await ctx.bank.history(args.account, limit=args.limit)
    ctx.out(entries, fmt.history_text(entries))


async def cmd_supply(ctx: Context, args: argparse.Namespace) -> None:
    reg = ctx.regulator
    if reg is not None:
        supply = await reg.supply(_need_regulator_bank(args), args.currency)
    else:
        supply = await ctx.bank.supply(args.currency)
    ctx.out(supply, fmt.supply_text(supply))


async def cmd_obligations(ctx: Context, args: argparse.Namespace) -> None:
    reg = ctx.regulator
    if reg is not None:
        obligations = await reg.obligations(_need_regulator_bank(args), args.other)
    else:
        obligations = await ctx.bank.obligations(args.other)
    ctx.out(obligations, fmt.obligations_text(obligations))


async def cmd_settle(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    amount = Money.parse(args.amount, bank.currencies)
    receipt = await bank.record_settlement(args.debtor, amount,
                                           rtgs_reference=args.rtgs_reference)
    ctx.out(receipt, f"recorded {amount} received from {args.debtor} "
                     f"(RTGS {args.rtgs_reference}) {fmt.receipt_note(receipt)}")


async def cmd_cap(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank
    cap = Money.parse(args.amount, bank.currencies)
    receipt = await bank.set_exposure_cap(args.debtor, cap)
    ctx.out(receipt, f"{bank.name} caps what {args.debtor} may owe it unsettled at {cap} "
                     f"{fmt.receipt_note(receipt)}")


async def cmd_freeze(ctx: Context, args: argparse.Namespace) -> None:
    reg = ctx.regulator
    if reg is not None:
        bank = _need_regulator_bank(args)
        if args.release:
            receipt = await reg.release(bank, args.account)
            text = f"released the hold on {bank}/{args.account}"
        elif args.hold:
            held = await _amount(reg, args.hold, args.account, bank)
            receipt = await reg.freeze(bank, args.account, held_amount=held, frozen=False,
                                       reason=args.reason)
            text = f"holding {held} on {bank}/{args.account}"
        else:
            receipt = await reg.freeze(bank, args.account, reason=args.reason)
            text = f"froze {bank}/{args.account} (regulator's hold)"
    else:
        if args.hold or args.release or args.of_bank:
            raise UsageError("--hold, --release and --of-bank are the regulator's")
        if args.unfreeze and args.close:
            raise UsageError("--unfreeze or --close, not both")
        bank_client = ctx.bank
        if args.close:
            receipt = await bank_client.close_account(args.account)
            text = f"closed {args.account}"
        elif args.unfreeze:
            receipt = await bank_client.unfreeze(args.account)
            text = f"unfroze {args.account}"
        else:
            receipt = await bank_client.freeze(args.account)
            text = f"froze {args.account}"
    ctx.out(receipt, f"{text} {fmt.receipt_note(receipt)}")


async def cmd_suspend(ctx: Context, args: argparse.Namespace) -> None:
    reg = ctx.regulator
    if reg is None:
        raise UsageError("suspending a bank is the regulator's: use --bank <regulator>")
    receipt = await reg.suspend(args.of_bank, reason=args.reason)
    ctx.out(receipt, f"suspended {args.of_bank}: no new payment to or from it "
                     f"{fmt.receipt_note(receipt)}")


async def cmd_suspensions(ctx: Context, args: argparse.Namespace) -> None:
    told = await ctx.bank.suspensions()
    ctx.out(told, "\n".join(f"{s['bank']} suspended since {s['since']}: {s['reason']}"
                            for s in told) or "no bank is suspended")


async def cmd_resume(ctx: Context, args: argparse.Namespace) -> None:
    reg = ctx.regulator
    if reg is None:
        raise UsageError("resuming a bank is the regulator's: use --bank <regulator>")
    receipt = await reg.resume(args.of_bank)
    ctx.out(receipt, f"resumed {args.of_bank} {fmt.receipt_note(receipt)}")


async def cmd_audit(ctx: Context, args: argparse.Namespace) -> None:
    reg = ctx.regulator
    if reg is None:
        raise UsageError("the audit is the regulator's: use --bank <regulator>")
    report = await reg.audit()
    ctx.out(report, fmt.audit_text(report, reg.currencies))


async def cmd_dashboard(ctx: Context, args: argparse.Namespace) -> None:
    from dtoken.dashboard import Dashboard  # only this command needs the web server

    member = ctx.member
    dashboard = Dashboard(member, port=args.port, refresh_interval=args.refresh)
    try:
        await dashboard.start()
    except OSError as error:
        await dashboard.close()
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {error.strerror}") from error
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        ctx.out({"url": dashboard.url, "org": member.name, "identity": member.identity_name},
                f"dashboard of {member.name} ({member.msp_id}, as {member.identity_name}): "
                f"{dashboard.url}  (Ctrl-C to stop)")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await dashboard.close()


def _load_rule(spec: str) -> Rule:
    module_name, sep, attr = spec.partition(":")
    if not sep:
        raise UsageError(f"--rule {spec!r} is not MODULE:FUNCTION")
    try:
        rule = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"--rule {spec}: {error}") from error
    if not callable(rule):
        raise UsageError(f"--rule {spec} is not callable")
    return rule  # type: ignore[no-any-return]


def _watch_rule(bank: Bank, args: argparse.Namespace) -> Rule:
    base = _load_rule(args.rule) if args.rule else accept_all
    if not args.max_amount:
        return base
    limit = Money.parse(args.max_amount, bank.currencies)

    def capped(transfer: Transfer) -> Verdict | Awaitable[Verdict]:
        if transfer.amount.currency == limit.currency and transfer.amount > limit:
            return Verdict.rejected("above the bank's limit for incoming payments")
        return base(transfer)

    return capped


async def cmd_watch(ctx: Context, args: argparse.Namespace) -> None:
    bank = ctx.bank

    def show(handled: Handled) -> None:
        print(fmt.dumps(handled).replace("\n", "") if ctx.json else fmt.handled_line(handled),
              flush=True)

    sweeper = Sweeper(bank, on_handled=show) if args.sweep else None
    checkpointer = None
    if args.checkpoint is not None:
        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpointer = fabgateway.FileCheckpointer(args.checkpoint)
    announced = False

    def ready() -> None:
        nonlocal announced
        if not announced:
            announced = True
            print(f"watching {bank.name}'s incoming transfers (Ctrl-C to stop)",
                  file=sys.stderr, flush=True)

    listener = IncomingListener(bank, checkpointer=checkpointer, rule=_watch_rule(bank, args),
                                sweeper=sweeper, rescan_interval=args.rescan, on_handled=show,
                                on_ready=ready)
    if args.once:
        await listener.process_pending()
        if sweeper is not None:
            await sweeper.sweep_once()
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await listener.run(stop=stop)


async def cmd_monitor(ctx: Context, args: argparse.Namespace) -> None:
    from dtoken import monitor as monitor_mod

    member = ctx.member
    if args.from_block < 0:
        raise UsageError("--from-block must be 0 or more")
    state = monitor_mod.MonitorState.load(
        args.state if args.state is not None else monitor_mod.default_state_path(member.profile)
    )
    watched = monitor_mod.BlockMonitor.for_profile(member.profile, state)

    def show(alert: monitor_mod.Alert) -> None:
        print(json.dumps(monitor_mod.alert_json(alert)) if ctx.json else
              f"ALERT {alert.describe()}", flush=True)

    stop = asyncio.Event()
    if not args.once:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        print(f"monitoring the blocks as {member.name} (Ctrl-C to stop)", file=sys.stderr,
              flush=True)
    count = await monitor_mod.follow(member, watched, on_alert=show, once=args.once,
                                     stop=stop, start_block=args.from_block)
    if args.once and not ctx.json:
        print(f"inspected {count} block(s); next block {state.next_block}", file=sys.stderr)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    code = EXIT_OK

    def run() -> None:  # a plugin's command may raise the host's UsageError: exit 2
        nonlocal code
        code = int(handler(args))

    failed = _guarded(args, run)
    return failed if failed != EXIT_OK else code


if __name__ == "__main__":
    sys.exit(main())
