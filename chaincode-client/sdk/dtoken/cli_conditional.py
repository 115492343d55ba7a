"""The ``dtoken`` commands of conditional payments (escrow, payment requests).

::

    dtoken --bank hkbank escrow BUYER SELLER "120.00 USD" --to-bank usbank --days 14 \\
        --attester marketplace --reference order-881
    dtoken --bank hkbank escrows --with usbank            # (--incoming: theirs to this bank)
    dtoken --bank hkbank release ESCROW --to-bank usbank  # the buyer confirmed
    dtoken --bank usbank claim ESCROW --from-bank hkbank [--statement delivered.json]
    dtoken --bank hkbank refund-escrow ESCROW --to-bank usbank [--statement ruling.json]
    dtoken --bank hkbank attester register marketplace marketplace.pub.pem
    dtoken --bank usbank attester sign ESCROW --payer-bank hkbank --name marketplace \\
        --key marketplace.key.pem > delivered.json   # what the marketplace signs
    dtoken --bank usbank request-payment BUYER EXPORTER "1,234.56 USD" --payer-bank hkbank \\
        --invoice INV-77 --due-days 30 --reference inv-77
    dtoken --bank hkbank requests --with usbank           # (--outgoing: this bank's asks)
    dtoken --bank hkbank approve-request REQUEST --to-bank usbank
    dtoken --bank hkbank decline-request REQUEST --to-bank usbank --reason "not ordered"
    dtoken --bank hkbank watch-conditional [--approve-up-to "500.00 USD"] [--once]

Owns: these commands' options and handlers (each a few lines over
:class:`dtoken.conditional.ConditionalPayments`); :mod:`dtoken.cli` mounts them with
:func:`add_commands`. Must not: hold logic of its own, or print a statement's key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtoken import cli_format as fmt
from dtoken.conditional import Attester, Escrow, PaymentRequest, Statement
from dtoken.conditional_watch import (
    ConditionalHandled,
    ConditionalWatcher,
    approve_up_to,
    leave_requests,
)
from dtoken.errors import UsageError

if TYPE_CHECKING:
    from dtoken.cli import Context

__all__ = ["add_commands"]

Handler = Callable[["Context", argparse.Namespace], Awaitable[object]]
Command = Callable[..., Any]


def add_commands(command: Command, sub: Any) -> None:
    """Add the commands to ``sub`` through ``command(name, handler, help[, parent])``."""
    p = command("escrow", cmd_escrow, "pay into escrow: the payee is paid once the condition "
                "holds (the buyer's release, a signed delivery, the arbiter's ruling)")
    p.add_argument("from_account")
    p.add_argument("to_account")
    p.add_argument("amount")
    p.add_argument("--to-bank", help="the payee's bank (default: this bank)")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--deadline", help="UTC timestamp, e.g. 2025-03-01T12:00:00Z")
    when.add_argument("--days", type=float, help="deadline in DAYS from now")
    p.add_argument("--on-deadline", choices=["refund", "release"], default="refund")
    p.add_argument("--attester", help="a party this bank registered, to sign delivery")
    p.add_argument("--arbiter", help="a party this bank registered, to settle disputes")
    p.add_argument("--remittance", default="")
    p.add_argument("--reference", required=True, help="idempotency reference")

    p = command("escrows", cmd_escrows, "this bank's escrows toward a bank (and their state)")
    p.add_argument("--with", dest="other", required=True, metavar="BANK")
    p.add_argument("--incoming", action="store_true", help="the other bank's, to this bank")

    p = command("release", cmd_release, "release an escrow to its payee (the buyer confirmed)")
    p.add_argument("escrow")
    p.add_argument("--to-bank", required=True, help="the payee's bank")
    p = command("claim", cmd_claim, "credit an escrow's payee: on the payer bank's release, "
                "or on a signed statement (--statement FILE)")
    p.add_argument("escrow")
    p.add_argument("--from-bank", required=True, help="the payer's bank")
    p.add_argument("--statement", type=Path, metavar="FILE",
                   help="a statement (JSON) signed by the escrow's attester or arbiter")
    p = command("refund-escrow", cmd_refund_escrow,
                "refund an escrow's buyer: after the deadline, or on a signed statement")
    p.add_argument("escrow")
    p.add_argument("--to-bank", required=True, help="the payee's bank")
    p.add_argument("--statement", type=Path, metavar="FILE")

    attester = sub.add_parser("attester", help="parties trusted to sign escrow statements")
    att = attester.add_subparsers(dest="attester_command", required=True, metavar="ACTION")
    p = command("register", cmd_attester_register,
                "trust a party's P-256 public key (PEM file) for this bank's escrows", att)
    p.add_argument("name")
    p.add_argument("public_key", type=Path)
    p = command("sign", cmd_attester_sign,
                "sign a statement about an escrow with a party's private key (prints JSON)", att)
    p.add_argument("escrow")
    p.add_argument("--payer-bank", required=True)
    p.add_argument("--payee-bank", help="default: this bank")
    p.add_argument("--name", required=True, help="the party's registered name")
    p.add_argument("--key", type=Path, required=True, help="its PEM private key")
    p.add_argument("--verdict", choices=["release", "refund"], default="release")

    p = command("request-payment", cmd_request_payment,
                "ask another bank to pay an invoice into one of this bank's accounts")
    p.add_argument("payer_account")
    p.add_argument("to_account")
    p.add_argument("amount")
    p.add_argument("--payer-bank", required=True)
    p.add_argument("--invoice", required=True, help="the invoice reference")
    p.add_argument("--due-days", type=float, default=30.0)
    p.add_argument("--reference", required=True)
    p = command("requests", cmd_requests, "payment requests between this bank and another")
    p.add_argument("--with", dest="other", required=True, metavar="BANK")
    p.add_argument("--outgoing", action="store_true", help="this bank's requests to it")
    p = command("approve-request", cmd_approve_request, "pay a payment request (once)")
    p.add_argument("request")
    p.add_argument("--to-bank", required=True, help="the requesting (payee's) bank")
    p = command("decline-request", cmd_decline_request, "decline a payment request")
    p.add_argument("request")
    p.add_argument("--to-bank", required=True)
    p.add_argument("--reason", default="")

    p = command("watch-conditional", cmd_watch_conditional,
                "claim released escrows, settle due ones, answer payment requests by rule")
    p.add_argument("--approve-up-to", metavar="AMOUNT",
                   help="approve incoming requests up to this amount (default: none)")
    p.add_argument("--grace", type=float, default=3600.0, metavar="SECONDS",
                   help="wait after a deadline before refunding (default: %(default)s)")
    p.add_argument("--interval", type=float, default=30.0, metavar="SECONDS")
    p.add_argument("--once", action="store_true", help="one pass, then exit")


def _escrow_line(e: Escrow) -> str:
    return (f"{e.escrow_id}  {e.payer_bank}->{e.payee_bank}/{e.payee_account}  {e.amount}  "
            f"{e.state.value}  deadline {e.deadline} ({e.on_deadline.value})"
            + (f"  attester {e.attester}" if e.attester else "")
            + ("" if e.parties_verified else "  PARTIES NOT VERIFIED " + ",".join(
                f"{p.role}:{p.name}:{p.here}" for p in e.parties if not p.verified))
            + (f"  ANOMALIES {','.join(e.anomalies)}" if e.anomalies else ""))


def _request_line(r: PaymentRequest) -> str:
    return (f"{r.request_id}  {r.payee_bank} asks {r.payer_bank}/{r.payer_account}  "
            f"{r.amount}  invoice {r.invoice_ref}  due {r.due}  {r.status.value}"
            + (f" ({r.payment_status})" if r.payment_status else ""))


def _statement(path: Path | None) -> Statement | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
        return Statement.from_mapping(data)
    except (OSError, ValueError) as error:
        raise UsageError(f"--statement {path}: {error}") from None


def _deadline(args: argparse.Namespace) -> datetime:
    if args.days is not None:
        return datetime.now(UTC) + timedelta(days=args.days)
    try:
        moment = datetime.fromisoformat(args.deadline.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError("--deadline must be an ISO timestamp, e.g. 2025-03-01T12:00:00Z") \
            from None
    if moment.tzinfo is None:
        raise UsageError("--deadline needs a time zone (e.g. a trailing Z)")
    return moment


async def cmd_escrow(ctx: Context, args: argparse.Namespace) -> None:
    from dtoken.cli import _amount

    bank = ctx.bank
    amount = await _amount(bank, args.amount, args.from_account)
    to_bank = args.to_bank or bank.name
    opened = await bank.escrow(args.from_account, to_bank, args.to_account, amount,
                               reference=args.reference, deadline=_deadline(args),
                               on_deadline=args.on_deadline, attester=args.attester,
                               arbiter=args.arbiter, remittance=args.remittance)
    ctx.out(opened, f"{amount} in escrow {opened.escrow_id} for {to_bank}/{args.to_account} "
                    f"{fmt.receipt_note(opened.receipt)}")


async def cmd_escrows(ctx: Context, args: argparse.Namespace) -> None:
    escrows = await ctx.bank.escrows(args.other, incoming=args.incoming)
    ctx.out(escrows, "\n".join(_escrow_line(e) for e in escrows) or "no escrows")


async def cmd_release(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.release(args.escrow, args.to_bank)
    ctx.out(receipt, f"released escrow {args.escrow} {fmt.receipt_note(receipt)}")


async def cmd_claim(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.claim_escrow(args.escrow, args.from_bank,
                                          _statement(args.statement))
    ctx.out(receipt, f"claimed escrow {args.escrow} {fmt.receipt_note(receipt)}")


async def cmd_refund_escrow(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.refund_escrow(args.escrow, args.to_bank,
                                           _statement(args.statement))
    ctx.out(receipt, f"refunded escrow {args.escrow} {fmt.receipt_note(receipt)}")


async def cmd_attester_register(ctx: Context, args: argparse.Namespace) -> None:
    try:
        pem = (await asyncio.to_thread(args.public_key.read_text)).strip() + "\n"
    except OSError as error:
        raise UsageError(f"{args.public_key}: {error.strerror}") from None
    receipt = await ctx.bank.register_attester(args.name, pem)
    ctx.out(receipt, f"registered {args.name} {fmt.receipt_note(receipt)}")


async def cmd_attester_sign(ctx: Context, args: argparse.Namespace) -> None:
    try:
        key = await asyncio.to_thread(args.key.read_bytes)
    except OSError as error:
        raise UsageError(f"{args.key}: {error.strerror}") from None
    party = Attester.from_pem(args.name, key)
    escrow = await ctx.bank.get_escrow(args.escrow, args.payer_bank,
                                       args.payee_bank or ctx.bank.name)
    print(json.dumps(party.attest(escrow, args.verdict).to_json(), indent=2))


async def cmd_request_payment(ctx: Context, args: argparse.Namespace) -> None:
    from dtoken.cli import _amount

    bank = ctx.bank
    amount = await _amount(bank, args.amount, args.to_account)
    asked = await bank.request_payment(
        args.payer_bank, args.payer_account, args.to_account, amount, invoice_ref=args.invoice,
        due=datetime.now(UTC) + timedelta(days=args.due_days), reference=args.reference)
    ctx.out(asked, f"asked {args.payer_bank} to pay {amount}: request {asked.request_id} "
                   f"{fmt.receipt_note(asked.receipt)}")


async def cmd_requests(ctx: Context, args: argparse.Namespace) -> None:
    found = await ctx.bank.payment_requests(args.other, incoming=not args.outgoing)
    ctx.out(found, "\n".join(_request_line(r) for r in found) or "no payment requests")


async def cmd_approve_request(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.approve_request(args.request, args.to_bank)
    ctx.out(receipt, f"paid request {args.request} {fmt.receipt_note(receipt)}")


async def cmd_decline_request(ctx: Context, args: argparse.Namespace) -> None:
    receipt = await ctx.bank.decline_request(args.request, args.to_bank, args.reason)
    ctx.out(receipt, f"declined request {args.request} {fmt.receipt_note(receipt)}")


async def cmd_watch_conditional(ctx: Context, args: argparse.Namespace) -> None:
    from dtoken.cli import _amount

    bank = ctx.bank
    rule = (approve_up_to(await _amount(bank, args.approve_up_to))
            if args.approve_up_to else leave_requests)

    def show(h: ConditionalHandled) -> None:
        if not ctx.json:
            print(f"{h.kind} {h.item_id} with {h.counterparty}: {h.action}"
                  + (f" ({h.reason})" if h.reason else ""), flush=True)

    watcher = ConditionalWatcher(bank, request_rule=rule,
                                 refund_grace=timedelta(seconds=args.grace), on_handled=show)
    if args.once:
        done = await watcher.pass_once()
        if ctx.json:
            ctx.out(done, "")
        elif not done:
            print("nothing to do")
        return
    await watcher.run(interval=args.interval)
