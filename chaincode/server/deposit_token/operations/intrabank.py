"""Money within one bank: mint, burn and transfer between two of its accounts.

Owns: the bodies of ``mint``, ``burn`` and ``transfer``: debit and credit through
:mod:`deposit_token.rules`, with supply records for mint and burn.

Must not: touch a pair collection (that is :mod:`.crossbank`).
"""

from __future__ import annotations

from dtoken_wire.requests import MoveRequest, TransferRequest

from ..errors import (
    CurrencyMismatch,
)
from ..records import (
    HistoryKind,
    SupplyKind,
)
from ..registry import day_of
from ..rules import (
    DebitKind,
    credit,
    debit,
)
from .access import (
    ROLE_MINTER,
    ROLE_OPERATOR,
    Tx,
    authorize_bank_write,
    done,
    load_registry,
)
from .declare import declare
from .lanes import debit_hold, read_credit_lane
from .steps import (
    claim_reference,
    read_account,
    record_history,
    record_supply,
    save_account,
    write_reference,
)


@declare()
async def mint(tx: Tx, req: MoveRequest) -> dict[str, object]:
    """A deposit arrived: credit an account with new tokens of the bank (minter)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_MINTER)
    ref_key = await claim_reference(tx, bank, req.reference, accounts=(req.account_id,))
    account = credit(await read_credit_lane(tx, bank, req.account_id), req.amount)
    account = record_history(tx, bank, account, HistoryKind.MINT, req.amount)
    save_account(tx, bank, account)
    record_supply(tx, bank, account.currency, SupplyKind.MINT, req.amount)
    write_reference(tx, bank, ref_key, "mint", [])
    return done(tx)


@declare()
async def burn(tx: Tx, req: MoveRequest) -> dict[str, object]:
    """A redemption: debit an account and retire the tokens (minter)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_MINTER)
    ref_key = await claim_reference(tx, bank, req.reference, accounts=(req.account_id,))
    account = await read_account(tx, bank, req.account_id)  # lane 0 of a laned account
    hold = await debit_hold(tx, registry, bank, account)
    account = debit(account, [req.amount], day=day_of(tx.now), hold=hold, kind=DebitKind.BURN)
    account = record_history(tx, bank, account, HistoryKind.BURN, -req.amount)
    save_account(tx, bank, account)
    record_supply(tx, bank, account.currency, SupplyKind.BURN, req.amount)
    write_reference(tx, bank, ref_key, "burn", [])
    return done(tx)


@declare()
async def transfer(tx: Tx, req: TransferRequest) -> dict[str, object]:
    """A payment between two accounts of the serving bank (operator)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    ref_key = await claim_reference(tx, bank, req.reference,
                                     accounts=(req.from_account, req.to_account))
    payer = await read_account(tx, bank, req.from_account, "payer")
    payee = await read_credit_lane(tx, bank, req.to_account, "payee")
    if payee.currency != payer.currency:
        raise CurrencyMismatch("the accounts are not in the same currency")
    hold = await debit_hold(tx, registry, bank, payer)
    payer = debit(payer, [req.amount], day=day_of(tx.now), hold=hold)
    payee = credit(payee, req.amount)
    payer = record_history(tx, bank, payer, HistoryKind.TRANSFER_OUT, -req.amount,
                     counterparty_bank=bank.name, counterparty_account=payee.account_id)
    payee = record_history(tx, bank, payee, HistoryKind.TRANSFER_IN, req.amount,
                     counterparty_bank=bank.name, counterparty_account=payer.account_id)
    save_account(tx, bank, payer)
    save_account(tx, bank, payee)
    write_reference(tx, bank, ref_key, "transfer", [])
    return done(tx)
