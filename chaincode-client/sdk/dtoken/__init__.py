"""The bank SDK and the ``dtoken`` CLI for member banks of the deposit-token network.

What it owns: a bank's typed operations (accounts, mint, burn, transfers within and across
banks, batch payouts, decisions, refunds, settlement) and the regulator's (holds, audit) on top
of the generic ``fabgateway`` client; idempotent submission (a reference executes once); the
background listener and sweeper; the operator CLI. Guide: docs/sdk.md.

What it must not do: import the chaincode side (``deposit_token``, ``fabcontract``,
``fabshim``); put a private value anywhere but the transient map; log payloads.

Shape::

    async with Bank.connect("state/profiles/hkbank.json", identity="minter") as bank:
        receipt = await bank.mint(account_id, bank.money("1,250.00 USD"), reference="dep-77")

Errors (:mod:`dtoken.errors`)::

    DTokenError
    ├── UsageError (ValueError)        MoneyFormatError, ProfileError
    ├── ContractError                  one class per contract code (InsufficientFunds ...)
    ├── CommitFailed
    └── NetworkFault                   OutcomeUnknown
"""

from dtoken.bank import Bank, Member, Regulator, connect
from dtoken.errors import (
    CommitFailed,
    ContractError,
    DTokenError,
    NetworkFault,
    OutcomeUnknown,
    UsageError,
)
from dtoken.listener import Handled, IncomingListener, Sweeper, Verdict
from dtoken.models import Payee, TransferStatus
from dtoken.money import Money
from dtoken.profile import Profile
from dtoken.submitter import Receipt, RetryPolicy

__all__ = [
    "Bank",
    "CommitFailed",
    "ContractError",
    "DTokenError",
    "Handled",
    "IncomingListener",
    "Member",
    "Money",
    "NetworkFault",
    "OutcomeUnknown",
    "Payee",
    "Profile",
    "Receipt",
    "Regulator",
    "RetryPolicy",
    "Sweeper",
    "TransferStatus",
    "UsageError",
    "Verdict",
    "connect",
]
