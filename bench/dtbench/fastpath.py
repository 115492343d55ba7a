"""Experiment (item 5): the deposit-token contract with fewer round trips to the peer.

``dtbench.fastpath:chaincode`` is the unchanged contract with two changes applied at import,
to measure them on the real network before proposing them to the contract's owners
(``python -m dtbench.experiments roundtrips``):

1. **The registry is read once per server process.** ``init_network`` writes it once and
   no transaction ever writes it again (``ALREADY_INITIALIZED``), so a cached copy is the
   value every later read would return; a transaction that finds no registry still reads
   the ledger (and fails ``NOT_INITIALIZED`` as before).
2. **``transfer`` reads the reference, the payer and the payee in one
   ``GET_STATE_MULTIPLE``** (they are in the bank's own collection) instead of three
   ``GET_STATE``; the regulator's hold is in another collection: one more read.

A transfer then makes 3 round trips (multi-read, hold, write batch) instead of 6.
The read set is unchanged: the same private keys are read, with the same versions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deposit_token import operations as ops
from deposit_token import service
from deposit_token.contract import DepositTokenContract
from deposit_token.errors import CurrencyMismatch, DuplicateReference
from deposit_token.keys import account_key, acct_collection, reference_key
from deposit_token.model import Registry, day_of
from deposit_token.records import Account, HistoryKind, ReferenceRecord, SupplyKind, decode
from deposit_token.requests import TransferRequest
from deposit_token.rules import credit, debit
from fabcontract import ContractChaincode

__all__ = ["chaincode"]

_original_load_registry = ops.load_registry
_registry: Registry | None = None


async def cached_registry(tx: ops.Tx) -> Registry:
    """The registry, read from the ledger once per server process."""
    global _registry
    if _registry is None:
        _registry = await _original_load_registry(tx)
    return _registry


async def _prefetch(tx: ops.Tx, collection: str, keys: dict[str, type[Any]]) -> None:
    """One GET_STATE_MULTIPLE for ``keys`` (key -> record class), into the ledger's cache."""
    ledger: Any = tx.ledger
    missing = [k for k in keys if (collection, k) not in ledger._cache]
    if not missing:
        return
    raws = await ledger._stub.get_multiple_private_data(collection, missing)
    for key, raw in zip(missing, raws, strict=True):
        ledger._cache[(collection, key)] = None if raw is None else decode(keys[key], raw)


async def transfer(tx: ops.Tx, req: TransferRequest) -> dict[str, object]:
    """``operations.transfer`` with its three reads of the bank's collection in one."""
    registry = await ops.load_registry(tx)
    bank = ops.authorize_bank_write(tx, registry, ops.ROLE_OPERATOR)
    coll = acct_collection(bank.name)
    ref_key = reference_key(tx.deriver.reference_tag("payment", req.reference))
    await _prefetch(tx, coll, {
        ref_key: ReferenceRecord,
        account_key(req.from_account): Account,
        account_key(req.to_account): Account,
    })  # fmt: skip
    if await tx.ledger.get(ReferenceRecord, coll, ref_key) is not None:
        raise DuplicateReference("the client reference was applied already")
    payer = await ops._account(tx, bank, req.from_account, "payer")
    payee = await ops._account(tx, bank, req.to_account, "payee")
    if payee.currency != payer.currency:
        raise CurrencyMismatch("the accounts are not in the same currency")
    hold = await ops._hold(tx, registry, bank, payer.account_id)
    payer = debit(payer, [req.amount], day=day_of(tx.now), hold=hold)
    payee = credit(payee, req.amount)
    payer = ops._history(
        tx,
        bank,
        payer,
        HistoryKind.TRANSFER_OUT,
        -req.amount,
        counterparty_bank=bank.name,
        counterparty_account=payee.account_id,
    )
    payee = ops._history(
        tx,
        bank,
        payee,
        HistoryKind.TRANSFER_IN,
        req.amount,
        counterparty_bank=bank.name,
        counterparty_account=payer.account_id,
    )
    ops._save(tx, bank, payer)
    ops._save(tx, bank, payee)
    ops._supply(tx, bank, payer.currency, SupplyKind.INTERNAL, req.amount)
    ops._write_reference(tx, bank, ref_key, "transfer", [])
    return ops._done(tx)


def _apply() -> None:
    ops.load_registry = cached_registry
    table: Any = service.TRANSACTIONS
    table["transfer"] = replace(table["transfer"], body=transfer)


_apply()

chaincode = ContractChaincode(DepositTokenContract(), title="deposit-token", version="0.1.0")
