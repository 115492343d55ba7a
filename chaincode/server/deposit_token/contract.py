"""The deposit-token contract on ``fabcontract``: one method per declared transaction.

Owns: binding :mod:`deposit_token.service` to the contract API: the client identity (MSP id
and role attributes ``minter``, ``operator``, ``auditor``) becomes a
:class:`~deposit_token.operations.Caller`; each transaction declared in
:mod:`deposit_token.operations` (:data:`~deposit_token.operations.TRANSACTIONS`) becomes a
method here, published with its transient request type so that ``GetMetadata`` describes the
request's fields. Every transaction reads its private input from the transient map key
``"request"`` (JSON) and takes no argument, except ``init_network`` whose single argument is
the public registry JSON. Submitted transactions return only ``{"tx_id": ...}``: a return
value is written into the block.

Must not: hold logic (see :mod:`deposit_token.operations` and :mod:`deposit_token.rules`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dtoken_wire.codec import TRANSIENT_KEY
from fabcontract import Context, Contract, transaction

from .config import ServerSettings
from .errors import NotAuthorized
from .operations import TRANSACTIONS, Caller, TxSpec
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
            return Caller.from_identity(identity.msp_id, identity.get_attribute_value,
                                        identity.has_ou_value)
        except Exception:
            raise NotAuthorized("the client identity cannot be read") from None

    async def _run(self, ctx: Context, name: str) -> dict[str, Any]:
        return await self._service.execute(ctx.stub, self._caller(ctx), name)

    @transaction()
    async def init_network(self, ctx: Context, registry: str) -> dict[str, Any]:
        """Write the registry and the token definitions, once (endorsed by every bank)."""
        return await self._service.init_network(ctx.stub, self._caller(ctx), registry)

    @transaction()
    async def admit_bank(self, ctx: Context, registry: str) -> dict[str, Any]:
        """Grow this organization's registry by a joined bank (its own admin, its own peer,
        only the registry its server is pinned to)."""
        return await self._service.admit_bank(ctx.stub, self._caller(ctx), registry)


def _publish(spec: TxSpec) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The contract method of a declared transaction: it only hands over to the service."""

    async def method(self: DepositTokenContract, ctx: Context) -> dict[str, Any]:
        return await self._run(ctx, spec.name)

    method.__name__ = method.__qualname__ = spec.name
    method.__doc__ = spec.description
    transient = None if spec.request is None else {TRANSIENT_KEY: spec.request}
    return transaction(evaluate=spec.evaluate, transient=transient)(method)


for _spec in TRANSACTIONS.values():
    setattr(DepositTokenContract, _spec.name, _publish(_spec))
