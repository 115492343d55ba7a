"""What the dashboard shows: one organization's view of the ledger, through the bank SDK only.

:func:`ledger_view` asks the organization's own peer, as that organization's client identity,
for what the contract lets it read, and nothing else:

* a **bank**: its supply of each token it issues, its accounts, the transfers waiting for its
  decision (incoming) and its own transfers not final yet (outgoing), and its obligations
  with each other bank (accepted, settled, owed; the net position);
* a bank's **escrows** (its own toward each bank and within itself, and other banks' toward
  it, with their state) and **payment requests** (to pay and asked, with their status);
* the **regulator**: the same for every bank (escrows and requests excepted: the regulator
  sees them in its audit) (the contract lets its ``auditor`` read every
  bank's collections).

Everything becomes plain JSON data (``Money`` as ``{"minor", "currency", "text"}``). A read
the contract refuses is an error shown on the page, never worked around.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from dtoken.bank import Bank, Member, Regulator
from dtoken.cli_format import as_data
from dtoken.conditional import Escrow, PaymentRequest
from dtoken.errors import DTokenError
from dtoken.models import AccountSummary, Obligations, Supply, Transfer

__all__ = ["MAX_ACCOUNTS", "identity_view", "ledger_view"]

#: Accounts listed at most (newest first); ``accounts_total`` says how many there are.
MAX_ACCOUNTS = 500

_T = TypeVar("_T")


def identity_view(member: Member) -> dict[str, Any]:
    """Who the dashboard acts as."""
    profile = member.profile
    return {
        "org": member.name,
        "kind": profile.kind,
        "msp_id": member.msp_id,
        "identity": member.identity_name,
        "network": profile.network,
        "channel": profile.channel,
        "chaincode": profile.chaincode,
        "banks": profile.banks(),
        "currencies": sorted(profile.organizations[member.name].currencies)
        if member.name in profile.organizations else [],
    }


async def ledger_view(member: Member) -> dict[str, Any]:
    """Supply, accounts, pending transfers and obligations, as ``member`` may read them.

    Parts that fail are left empty and named in ``errors`` (the rest is still shown).
    """
    errors: list[str] = []

    async def part(what: str, call: Callable[[], Awaitable[_T]], empty: _T) -> _T:
        try:
            return await call()
        except DTokenError as error:
            errors.append(f"{what}: {type(error).__name__}: {str(error).splitlines()[0]}")
            return empty

    if isinstance(member, Regulator):
        banks = member.profile.banks()
        orgs = member.profile.organizations
        supply_calls = [
            (f"supply {b} {c}", _bound(member.supply, b, c))
            for b in banks for c in orgs[b].currencies
        ]
        account_calls = [(f"accounts of {b}", _bound(member.accounts, b)) for b in banks]
        incoming_calls = [(f"waiting at {b}", _bound(member.pending, b, "incoming"))
                          for b in banks]
        outgoing_calls = [(f"not final at {b}", _bound(member.pending, b, "outgoing"))
                          for b in banks]
        pairs = [(a, b) for i, a in enumerate(banks) for b in banks[i + 1:]]
        obligation_calls = [(f"obligations {a}-{b}", _bound(member.obligations, a, b))
                            for a, b in pairs]
    elif isinstance(member, Bank):
        me = member.name
        issued = member.profile.organizations[me].currencies
        supply_calls = [(f"supply {c}", _bound(member.supply, c)) for c in issued]
        account_calls = [("accounts", _bound(member.accounts))]
        incoming_calls = [("incoming", _bound(member.incoming))]
        outgoing_calls = [("outgoing", _bound(member.outgoing))]
        others = [b for b in member.profile.banks() if b != me]
        obligation_calls = [(f"obligations with {b}", _bound(member.obligations, b))
                            for b in others]
    else:
        raise TypeError(f"not a bank or a regulator: {member!r}")

    no_accounts: list[AccountSummary] = []
    no_transfers: list[Transfer] = []
    supplies: list[Supply | None] = list(await asyncio.gather(
        *(part(w, c, None) for w, c in supply_calls)))
    account_lists = await asyncio.gather(
        *(part(w, c, no_accounts) for w, c in account_calls))
    incoming = await asyncio.gather(*(part(w, c, no_transfers) for w, c in incoming_calls))
    outgoing = await asyncio.gather(*(part(w, c, no_transfers) for w, c in outgoing_calls))
    obligations: list[Obligations | None] = list(await asyncio.gather(
        *(part(w, c, None) for w, c in obligation_calls)))
    escrows: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    if isinstance(member, Bank):
        escrows, requests = await _conditional(member, part)

    accounts: list[dict[str, Any]] = []
    bank_names = (member.profile.banks() if isinstance(member, Regulator) else [member.name])
    for bank_name, listed in zip(bank_names, account_lists, strict=True):
        accounts += [{"bank": bank_name, **as_data(a)} for a in listed]
    accounts.sort(key=lambda a: (str(a.get("opened_at", "")), a["account_id"]), reverse=True)
    return {
        "supply": [as_data(s) for s in supplies if s is not None],
        "accounts": accounts[:MAX_ACCOUNTS],
        "accounts_total": len(accounts),
        "incoming": _transfers(incoming),
        "outgoing": _transfers(outgoing),
        "obligations": [as_data(o) for o in obligations if o is not None],
        "escrows": escrows,
        "requests": requests,
        "errors": errors,
    }


async def _conditional(
    bank: Bank, part: Callable[[str, Callable[[], Awaitable[Any]], Any], Awaitable[Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The bank's escrows (outgoing, within, incoming) and payment requests (both ways),
    newest first, at most :data:`MAX_ACCOUNTS` of each."""
    escrows: list[Escrow] = []
    requests: list[PaymentRequest] = []
    for other in bank.profile.banks():
        escrows += await part(f"escrows to {other}", _bound(bank.escrows, other), [])
        if other == bank.name:
            continue
        escrows += await part(f"escrows from {other}",
                              functools.partial(bank.escrows, other, incoming=True), [])
        for incoming in (True, False):
            requests += await part(f"requests with {other}", functools.partial(
                bank.payment_requests, other, incoming=incoming), [])
    escrows.sort(key=lambda e: (e.created_at, e.escrow_id), reverse=True)
    requests.sort(key=lambda r: (r.due, r.request_id), reverse=True)
    return ([as_data(e) for e in escrows[:MAX_ACCOUNTS]],
            [as_data(r) for r in requests[:MAX_ACCOUNTS]])


def _bound(method: Callable[..., Awaitable[_T]], *args: object) -> Callable[[], Awaitable[_T]]:
    return lambda: method(*args)


def _transfers(lists: Sequence[Sequence[Transfer]]) -> list[dict[str, Any]]:
    """One list, each transfer once, newest first."""
    seen: dict[str, Transfer] = {}
    for transfers in lists:
        for t in transfers:
            seen.setdefault(t.transfer_id, t)
    ordered = sorted(seen.values(), key=lambda t: (t.created_at, t.transfer_id), reverse=True)
    return [as_data(t) for t in ordered]
