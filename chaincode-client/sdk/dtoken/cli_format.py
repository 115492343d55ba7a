"""How the ``dtoken`` bank commands print: human tables by default, JSON for scripts.

JSON output is the SDK's value objects as plain data: ``Money`` becomes
``{"minor": 125000, "currency": "USD", "text": "1,250.00 USD"}``, enums their value.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Any

from dtoken.listener import Handled
from dtoken.models import (
    Account,
    AccountSummary,
    AuditReport,
    HistoryEntry,
    Obligations,
    Supply,
    Transfer,
)
from dtoken.money import Money
from dtoken.submitter import Receipt

__all__ = ["as_data", "dumps", "handled_line", "receipt_note", "table"]


def as_data(value: object) -> Any:
    """``value`` as JSON-able data."""
    if isinstance(value, Money):
        return {"minor": value.minor, "currency": value.currency, "text": value.format()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Fraction):  # an exact rate: as its exact ratio, never a float
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # a field kept out of repr (a receipt's raw response bytes) is kept out here too
        return {f.name: as_data(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.repr}
    if isinstance(value, Mapping):
        return {str(k): as_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [as_data(v) for v in value]
    return value


def dumps(value: object) -> str:
    return json.dumps(as_data(value), indent=2, sort_keys=False)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A left-aligned text table (amounts right-aligned when they start with a digit/sign)."""
    all_rows = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    lines = []
    for row in all_rows:
        cells = []
        for i, cell in enumerate(row):
            numeric = bool(cell) and (cell[0].isdigit() or cell[0] == "-") and " " in cell
            cells.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def receipt_note(receipt: Receipt) -> str:
    note = f"[tx {receipt.tx_id[:12]}… block {receipt.block_number}"
    if receipt.attempt:
        note += f", attempt {receipt.attempt}"
    if receipt.replayed:
        note += ", already applied: this reference was executed before"
    return note + "]"


def account_text(account: Account) -> str:
    lines = [
        f"account    {account.account_id}",
        f"bank       {account.bank}",
        f"owner      {account.owner_ref}",
        f"status     {account.status.value}",
        f"balance    {account.balance}",
        f"available  {account.available}",
        f"outflow    {account.outflow_today} today",
    ]
    limits = account.limits
    if limits.single_payment is not None or limits.daily_outflow is not None:
        lines.append(
            f"limits     single payment {limits.single_payment or 'none'}, "
            f"daily outflow {limits.daily_outflow or 'none'}"
        )
    if account.hold is not None:
        what = "frozen" if account.hold.frozen else f"{account.hold.held} held"
        lines.append(f"hold       {what} by the regulator")
    lines.append(f"opened     {account.opened_at}")
    return "\n".join(lines)


def accounts_text(accounts: Sequence[AccountSummary]) -> str:
    if not accounts:
        return "no accounts"
    rows = [[a.account_id, a.currency, a.owner_ref, a.status.value, a.balance.format()]
            for a in accounts]
    return table(rows, ["ACCOUNT", "CURRENCY", "OWNER", "STATUS", "BALANCE"])


def history_text(entries: Sequence[HistoryEntry]) -> str:
    if not entries:
        return "no history"
    rows = []
    grouped = {e.seq for e in entries if e.item}  # records of several events
    for e in entries:
        other = "/".join(p for p in (e.counterparty_bank, e.counterparty_account) if p)
        # the events of one transaction share a record: 12.0, 12.1 ... (seq.item)
        seq = f"{e.seq}.{e.item}" if e.seq in grouped else str(e.seq)
        rows.append([seq, e.at, e.kind, e.delta.format(), e.balance_after.format(),
                     other or e.detail])
    return table(rows, ["SEQ", "AT", "KIND", "CHANGE", "BALANCE", "COUNTERPARTY"])


def transfers_text(transfers: Sequence[Transfer], *, incoming: bool) -> str:
    if not transfers:
        return "no transfers waiting"
    rows = [[t.transfer_id, t.payer_bank if incoming else t.payee_bank, t.payee_account,
             t.amount.format(), t.status.value, t.expires_at] for t in transfers]
    other = "FROM" if incoming else "TO"
    return table(rows, ["TRANSFER", other, "PAYEE ACCOUNT", "AMOUNT", "STATUS", "EXPIRES"])


def supply_text(supply: Supply) -> str:
    parts = ", ".join(f"{k} {v}" for k, v in sorted(supply.by_kind.items()))
    return f"{supply.bank} {supply.currency} supply {supply.supply}" + (
        f" ({parts})" if parts else ""
    )


def obligations_text(ob: Obligations) -> str:
    if not ob.obligations:
        return f"nothing owed between {ob.banks[0]} and {ob.banks[1]}"
    rows = [[o.debtor, o.creditor, o.currency, o.accepted.format(), o.settled.format(),
             o.owed.format(), "-" if o.cap is None else o.cap.format(),
             "-" if o.headroom is None else o.headroom.format()] for o in ob.obligations]
    text = table(rows, ["DEBTOR", "CREDITOR", "CURRENCY", "ACCEPTED", "SETTLED", "OWED",
                        "CAP", "HEADROOM"])
    if ob.disputes:
        text += (f"\n{len(ob.disputes)} disputed (a transfer accepted and refunded, or an "
                 "escrow claimed and refunded on a statement)")
    return text


def audit_text(report: AuditReport, currencies: Mapping[str, int]) -> str:
    lines = [f"audit: {'OK' if report.ok else 'FAILED'}"]
    lines += [f"  ! {f}" for f in report.failures]

    def money(c: Mapping[str, Any], key: str) -> str:
        return Money.of(int(c.get(key) or 0), str(c["currency"]), currencies).format()

    rows = [[str(c["currency"]), money(c, "supply"), money(c, "in_flight"),
             money(c, "minted"), money(c, "burned"), "ok" if c.get("ok") else "FAIL"]
            for c in report.currencies]
    if rows:
        lines.append(table(rows, ["CURRENCY", "SUPPLY", "IN FLIGHT", "MINTED", "BURNED",
                                  "CHECK"]))
    caps = [[str(c["debtor"]), str(c["creditor"]), str(c["currency"]), money(c, "owed"),
             money(c, "cap"), money(c, "headroom"), "OVER" if c in report.over_cap else "ok"]
            for c in report.caps]
    if caps:  # over a cap is listed, not failed: the creditor enforces its cap itself
        lines.append(table(caps, ["DEBTOR", "CREDITOR", "CURRENCY", "OWED", "CAP", "HEADROOM",
                                  "CAP CHECK"]))
    return "\n".join(lines)


def handled_line(handled: Handled) -> str:
    t = handled.transfer
    line = f"{handled.action:<8} {t.transfer_id} {t.payer_bank}->{t.payee_bank} {t.amount}"
    if handled.reason:
        line += f" ({handled.reason})"
    if handled.receipt is not None:
        line += f" {receipt_note(handled.receipt)}"
    return line
