"""One transaction, end to end, independent of the contract framework.

Owns: the table of transactions (name, request schema, body, submit or evaluate), reading the
request from the transient map, building the :class:`~deposit_token.operations.Tx`, running
the body, then flushing its writes only if it succeeded; and the last line of privacy
defence: an unexpected exception is replaced by ``INTERNAL: ...`` naming only its type, since
its text could quote a value and error messages are written into blocks.

Must not: know about ``fabcontract`` (:mod:`deposit_token.contract` binds this to it) or
read the environment except through :class:`~deposit_token.config.ServerSettings`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dtoken_wire import requests as w
from dtoken_wire.codec import TRANSIENT_KEY

from . import operations as ops
from . import requests as rq
from .config import ServerSettings
from .errors import DepositTokenError, InternalError, InvalidArgument
from .ledger import Ledger, LedgerStub
from .operations import Caller, Tx
from .registry import Registry, loads_object

__all__ = ["TRANSACTIONS", "Service", "TxSpec", "TxStub"]

_log = logging.getLogger(__name__)


class TxStub(LedgerStub, Protocol):
    """What :meth:`Service.execute` needs of a stub beyond ledger access."""

    @property
    def tx_id(self) -> str: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def tx_datetime(self) -> datetime: ...
    def get_transient(self) -> Mapping[str, bytes]: ...


Body = Callable[[Tx, Any], Awaitable[dict[str, object]]]


@dataclass(frozen=True)
class TxSpec:
    """A transaction: its request type (``None``: no transient request) and its body."""

    name: str
    request: type[w.Request] | None
    body: Body
    evaluate: bool = False
    optional_request: bool = False


_SPECS = [
    # writes, by the serving bank's clients
    TxSpec("open_account", w.OpenAccountRequest, ops.open_account),
    TxSpec("set_account_status", w.SetStatusRequest, ops.set_account_status),
    TxSpec("set_account_limits", w.SetLimitsRequest, ops.set_account_limits),
    TxSpec("mint", w.MoveRequest, ops.mint),
    TxSpec("burn", w.MoveRequest, ops.burn),
    TxSpec("transfer", w.TransferRequest, ops.transfer),
    TxSpec("initiate_transfer", w.InitiateRequest, ops.initiate_transfer),
    TxSpec("batch_payout", w.BatchRequest, ops.batch_payout),
    TxSpec("accept_transfer", w.AcceptRequest, ops.accept_transfer),
    TxSpec("reject_transfer", w.RejectRequest, ops.reject_transfer),
    TxSpec("refund_transfer", w.RefundRequest, ops.refund_transfer),
    TxSpec("confirm_settlement", w.SettlementRequest, ops.confirm_settlement),
    # writes, by the regulator
    TxSpec("set_hold", w.HoldRequest, ops.set_hold),
    TxSpec("release_hold", w.ReleaseHoldRequest, ops.release_hold),
    # reads
    TxSpec("get_registry", None, lambda tx, _: ops.get_registry(tx), evaluate=True),
    TxSpec("get_account", w.AccountRef, ops.get_account, evaluate=True),
    TxSpec("get_history", w.HistoryRequest, ops.get_history, evaluate=True),
    TxSpec("list_accounts", w.ListAccountsRequest, ops.list_accounts, evaluate=True,
           optional_request=True),
    TxSpec("get_supply", w.SupplyRequest, ops.get_supply, evaluate=True),
    TxSpec("get_pending", w.PendingRequest, ops.get_pending, evaluate=True),
    TxSpec("get_transfer", w.TransferLookup, ops.get_transfer, evaluate=True),
    TxSpec("get_reference", w.ReferenceRequest, ops.get_reference, evaluate=True),
    TxSpec("get_obligations", w.ObligationsRequest, ops.get_obligations, evaluate=True),
    TxSpec("audit", w.AuditRequest, ops.audit, evaluate=True, optional_request=True),
]

#: Every transaction except ``init_network`` (which takes its JSON as an argument).
TRANSACTIONS: Mapping[str, TxSpec] = {s.name: s for s in _SPECS}


class Service:
    """Runs transactions for one chaincode server (one organization).

    ``settings`` default to the environment (``DTOKEN_BANK_MSP``, ``DTOKEN_SECRET_FILE``),
    read at the first transaction so that importing the chaincode module needs neither.
    """

    def __init__(self, settings: ServerSettings | None = None) -> None:
        self._settings = settings
        # channel id -> the registry as committed there (it never changes once written)
        self._registries: dict[str, Registry] = {}

    @property
    def settings(self) -> ServerSettings:
        """This server's organization and secret."""
        if self._settings is None:
            self._settings = ServerSettings.from_env()
        return self._settings

    def _tx(self, stub: TxStub, caller: Caller) -> Tx:
        settings = self.settings
        deriver = settings.deriver
        return Tx(
            ledger=Ledger(stub, stub.tx_id, deriver),
            caller=caller,
            server_msp=settings.msp_id,
            deriver=deriver,
            tx_id=stub.tx_id,
            now=stub.tx_datetime,
            registry=self._registries.get(stub.channel_id),
        )

    async def execute(self, stub: TxStub, caller: Caller, name: str) -> dict[str, object]:
        """Run transaction ``name`` with its request from the transient map."""
        spec = TRANSACTIONS.get(name)
        if spec is None:
            raise InvalidArgument("unknown transaction")

        async def body(tx: Tx) -> dict[str, object]:
            request: object = None
            if spec.request is not None:
                request = rq.parse(spec.request, _transient_request(stub, spec.optional_request))
            return await spec.body(tx, request)

        return await self._guarded(stub, caller, name, body, flush=not spec.evaluate)

    async def init_network(self, stub: TxStub, caller: Caller, argument: str) -> dict[str, object]:
        """Run ``init_network`` with its JSON argument."""
        return await self._guarded(
            stub, caller, "init_network", lambda tx: ops.init_network(tx, argument), flush=True
        )

    async def _guarded(
        self,
        stub: TxStub,
        caller: Caller,
        name: str,
        body: Callable[[Tx], Awaitable[dict[str, object]]],
        *,
        flush: bool,
    ) -> dict[str, object]:
        try:
            tx = self._tx(stub, caller)
            result = await body(tx)
            if flush:
                await tx.ledger.flush()
            if tx.registry is not None:
                # Only load_registry sets it, from committed state (init_network writes the
                # registry without setting it: its own write is not committed yet).
                self._registries.setdefault(stub.channel_id, tx.registry)
            return result
        except DepositTokenError:
            raise
        except Exception as exc:
            # Type only: the text of an arbitrary exception may quote a value.
            _log.error("[%s] %s failed: %s", stub.tx_id[:8], name, type(exc).__name__)
            raise InternalError(f"unexpected {type(exc).__name__}") from None


def _transient_request(stub: TxStub, optional: bool) -> Mapping[str, object]:
    raw = stub.get_transient().get(TRANSIENT_KEY)
    if raw is None:
        if optional:
            return {}
        raise InvalidArgument(f"the transient map has no {TRANSIENT_KEY!r} entry")
    return loads_object(raw, "request", InvalidArgument)
