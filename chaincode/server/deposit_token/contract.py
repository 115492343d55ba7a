"""The deposit-token contract on ``fabcontract``: one method per transaction.

Owns: binding :mod:`deposit_token.service` to the contract API: the client identity (MSP id
and role attributes ``minter``, ``operator``, ``auditor``) becomes a
:class:`~deposit_token.operations.Caller`; every transaction reads its private input from the
transient map key ``"request"`` (JSON) and takes no argument, except ``init_network`` whose
single argument is the public registry JSON. Submitted transactions return only
``{"tx_id": ...}``: a return value is written into the block.

Must not: hold logic (see :mod:`deposit_token.operations` and :mod:`deposit_token.rules`).
"""

from __future__ import annotations

from typing import Any

from fabcontract import Context, Contract, transaction

from .config import ServerSettings
from .errors import NotAuthorized
from .operations import Caller
from .service import Service

__all__ = ["CONTRACT_NAME", "DepositTokenContract"]

CONTRACT_NAME = "DepositToken"


class DepositTokenContract(Contract):
    """Bank-issued deposit tokens: accounts, mint and burn, payments within and across banks,
    batch payouts, interbank settlement, regulator holds and audit.

    ``settings`` (the serving organization's MSP id and secret) default to the environment
    variables ``DTOKEN_BANK_MSP`` and ``DTOKEN_SECRET_FILE``, read at the first transaction.
    """

    def __init__(self, settings: ServerSettings | None = None) -> None:
        super().__init__(CONTRACT_NAME)
        self._service = Service(settings)

    @staticmethod
    def _caller(ctx: Context) -> Caller:
        try:
            identity = ctx.client_identity
            return Caller.from_identity(identity.msp_id, identity.get_attribute_value)
        except Exception:
            raise NotAuthorized("the client identity cannot be read") from None

    async def _run(self, ctx: Context, name: str) -> dict[str, Any]:
        return await self._service.execute(ctx.stub, self._caller(ctx), name)

    @transaction()
    async def init_network(self, ctx: Context, registry: str) -> dict[str, Any]:
        """Write the registry and the token definitions, once (endorsed by every bank)."""
        return await self._service.init_network(ctx.stub, self._caller(ctx), registry)

    @transaction()
    async def open_account(self, ctx: Context) -> dict[str, Any]:
        """Open an account at this bank (operator)."""
        return await self._run(ctx, "open_account")

    @transaction()
    async def set_account_status(self, ctx: Context) -> dict[str, Any]:
        """Freeze, unfreeze or close an account (operator)."""
        return await self._run(ctx, "set_account_status")

    @transaction()
    async def set_account_limits(self, ctx: Context) -> dict[str, Any]:
        """Replace an account's limits (operator)."""
        return await self._run(ctx, "set_account_limits")

    @transaction()
    async def mint(self, ctx: Context) -> dict[str, Any]:
        """Credit new tokens to an account: a deposit arrived (minter)."""
        return await self._run(ctx, "mint")

    @transaction()
    async def burn(self, ctx: Context) -> dict[str, Any]:
        """Debit and retire tokens: a redemption (minter)."""
        return await self._run(ctx, "burn")

    @transaction()
    async def transfer(self, ctx: Context) -> dict[str, Any]:
        """Pay between two accounts of this bank (operator)."""
        return await self._run(ctx, "transfer")

    @transaction()
    async def initiate_transfer(self, ctx: Context) -> dict[str, Any]:
        """Phase one of a cross-bank transfer, endorsed by the payer's bank alone (operator)."""
        return await self._run(ctx, "initiate_transfer")

    @transaction()
    async def batch_payout(self, ctx: Context) -> dict[str, Any]:
        """One debit, many payments to payees at one or more banks (operator)."""
        return await self._run(ctx, "batch_payout")

    @transaction()
    async def accept_transfer(self, ctx: Context) -> dict[str, Any]:
        """Phase two at the payee's bank: accept and credit the payee (operator)."""
        return await self._run(ctx, "accept_transfer")

    @transaction()
    async def reject_transfer(self, ctx: Context) -> dict[str, Any]:
        """Phase two at the payee's bank: reject, so the payer's bank refunds (operator)."""
        return await self._run(ctx, "reject_transfer")

    @transaction()
    async def refund_transfer(self, ctx: Context) -> dict[str, Any]:
        """Credit the payer back after a rejection or after expiry undecided (operator)."""
        return await self._run(ctx, "refund_transfer")

    @transaction()
    async def confirm_settlement(self, ctx: Context) -> dict[str, Any]:
        """The creditor bank confirms reserves arrived with an RTGS reference (operator)."""
        return await self._run(ctx, "confirm_settlement")

    @transaction()
    async def set_hold(self, ctx: Context) -> dict[str, Any]:
        """The regulator freezes an account or holds an amount on it (regulator auditor)."""
        return await self._run(ctx, "set_hold")

    @transaction()
    async def release_hold(self, ctx: Context) -> dict[str, Any]:
        """The regulator removes its hold on an account (regulator auditor)."""
        return await self._run(ctx, "release_hold")

    @transaction(evaluate=True)
    async def get_registry(self, ctx: Context) -> dict[str, Any]:
        """The banks, the regulator and the token definitions (public)."""
        return await self._run(ctx, "get_registry")

    @transaction(evaluate=True)
    async def get_account(self, ctx: Context) -> dict[str, Any]:
        """An account: balance, status, limits, today's outflow, hold."""
        return await self._run(ctx, "get_account")

    @transaction(evaluate=True)
    async def get_history(self, ctx: Context) -> dict[str, Any]:
        """An account's history records, paginated by sequence number."""
        return await self._run(ctx, "get_history")

    @transaction(evaluate=True)
    async def list_accounts(self, ctx: Context) -> dict[str, Any]:
        """A bank's accounts, optionally of one currency (paginated)."""
        return await self._run(ctx, "list_accounts")

    @transaction(evaluate=True)
    async def get_supply(self, ctx: Context) -> dict[str, Any]:
        """A token's supply: the sum of its supply records (paginated)."""
        return await self._run(ctx, "get_supply")

    @transaction(evaluate=True)
    async def get_pending(self, ctx: Context) -> dict[str, Any]:
        """Incoming or outgoing transfers waiting on a bank (paginated)."""
        return await self._run(ctx, "get_pending")

    @transaction(evaluate=True)
    async def get_transfer(self, ctx: Context) -> dict[str, Any]:
        """One transfer with its decision, refund and status."""
        return await self._run(ctx, "get_transfer")

    @transaction(evaluate=True)
    async def get_reference(self, ctx: Context) -> dict[str, Any]:
        """What a client reference did: transaction id, kind, ids created."""
        return await self._run(ctx, "get_reference")

    @transaction(evaluate=True)
    async def get_obligations(self, ctx: Context) -> dict[str, Any]:
        """What two banks owe each other per currency (paginated)."""
        return await self._run(ctx, "get_obligations")

    @transaction(evaluate=True)
    async def audit(self, ctx: Context) -> dict[str, Any]:
        """The regulator's conservation audit over every collection (paginated)."""
        return await self._run(ctx, "audit")
