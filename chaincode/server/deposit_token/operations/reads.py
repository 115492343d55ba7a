"""Point reads: an account, its history, a client reference, a transfer.

Owns: ``get_account``, ``get_history``, ``get_reference`` and ``get_transfer``; each checks
who may read before reading.

Must not: write.
"""

from __future__ import annotations

from dtoken_wire.requests import AccountRef, HistoryRequest, ReferenceRequest, TransferLookup

from ..errors import (
    NotFound,
)
from ..keys import (
    acct_collection,
    prefix_range,
    reference_key,
)
from ..lanes import balance_of, outflow_of
from ..records import (
    HistoryRecord,
    ReferenceRecord,
    decode,
)
from ..registry import day_of
from ..rules import (
    transfer_status,
)
from .access import (
    Tx,
    authorize_read,
    load_registry,
    member_bank,
    other_bank,
    target_bank,
)
from .declare import declare
from .lanes import lanes_of
from .scans import fitting
from .steps import (
    account_keys,
    read_account,
    read_hold,
    read_lock,
    transfer_records,
)


@declare(evaluate=True)
async def get_account(tx: Tx, req: AccountRef) -> dict[str, object]:
    """An account with its balance, status, limits, today's outflow and any hold."""
    registry = await load_registry(tx)
    bank = target_bank(tx, registry, req.bank)
    authorize_read(tx, registry, [bank])
    account = await read_account(tx, bank, req.account_id)
    lanes = await lanes_of(tx, bank, account)  # a read-only transaction: sums are safe here
    hold = await read_hold(tx, registry, bank, req.account_id)
    held = hold.held_amount if hold else 0
    balance = balance_of(lanes)
    return {
        **account.to_json(),
        "balance": balance,
        "outflow_today": outflow_of(lanes, day_of(tx.now)),
        "hold": hold.to_json() if hold else None,
        "available": 0 if (hold and hold.frozen) else max(0, balance - held),
        "lane_balances": [lane.balance for lane in lanes],
    }


@declare(evaluate=True)
async def get_history(tx: Tx, req: HistoryRequest) -> dict[str, object]:
    """An account's history from record ``from_seq`` (a range scan: read-only): each record's
    events one by one (a record of several gives each with the record's number and its place,
    ``item``). ``page_size`` counts events: a page holds whole records, at least one, and no
    more events than ``page_size`` unless its one record has more (a batch of 500 payments is
    one record)."""
    registry = await load_registry(tx)
    bank = target_bank(tx, registry, req.bank)
    authorize_read(tx, registry, [bank])
    keys = await account_keys(tx, bank)
    if keys is None:  # the bank has no account (or hid its account key from the regulator)
        return {"records": [], "next_seq": None}
    start = keys.history(req.account_id, req.from_seq)
    _, end = prefix_range(keys.history_prefix(req.account_id))
    rows = await tx.ledger.scan(acct_collection(bank.name), start, end, req.page_size + 1)
    records, _events = fitting((decode(HistoryRecord, value) for _, value in
                                rows[:req.page_size]),
                               req.page_size, lambda r: max(1, len(r.items)))
    return {
        "records": [entry for r in records for entry in r.entries()],
        "next_seq": records[-1].seq + 1 if len(rows) > len(records) else None,
    }


@declare(evaluate=True)
async def get_reference(tx: Tx, req: ReferenceRequest) -> dict[str, object]:
    """What a client reference did: its transaction, its kind and the ids it created."""
    registry = await load_registry(tx)
    bank = target_bank(tx, registry, None)
    authorize_read(tx, registry, [bank])
    key = reference_key(tx.deriver.reference_tag("payment", req.reference))
    record = await tx.ledger.get(ReferenceRecord, acct_collection(bank.name), key)
    if record is None:
        raise NotFound("the reference was not applied")
    return record.to_json()


@declare(evaluate=True)
async def get_transfer(tx: Tx, req: TransferLookup) -> dict[str, object]:
    """A transfer with its decision, refund and status (either bank, or the regulator)."""
    registry = await load_registry(tx)
    payer = member_bank(registry, req.payer_bank, "payer_bank")
    payee = other_bank(registry, payer, req.payee_bank, "payee_bank")
    authorize_read(tx, registry, [payer, payee])
    record, decision, refund = await transfer_records(tx, payer, payee, req.transfer_id)
    out: dict[str, object] = {
        "transfer": record.to_json(),
        "decision": decision.to_json() if decision else None,
        "refund": refund.to_json() if refund else None,
        "status": transfer_status(record, decision, refund, tx.now).value,
    }
    if record.lock:
        # a hash-locked leg: the state of its lock (``locked``, ``expired``; null if its
        # record is missing or not valid where it lives): a leg whose lock does not stand
        # cannot be claimed, so nobody should pay the other leg against it
        lock = await read_lock(tx, payer, payee, req.transfer_id)
        out["lock_state"] = lock.state.value if lock else None
    return out
