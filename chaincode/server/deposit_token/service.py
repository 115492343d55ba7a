"""One transaction, end to end, independent of the contract framework.

Owns: running the transactions declared in :mod:`deposit_token.operations` (each body
declares itself, :data:`TRANSACTIONS`): reading the request from the transient map and parsing
it as the body's request type, building the :class:`~deposit_token.operations.Tx`, running
the body, then flushing its writes only if it succeeded; and the last line of privacy
defence: an unexpected exception is replaced by ``INTERNAL: ...`` naming only its type, since
its text could quote a value and error messages are written into blocks.

Must not: know about ``fabcontract`` (:mod:`deposit_token.contract` binds this to it) or
read the environment except through :class:`~deposit_token.config.ServerSettings`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Protocol

from dtoken_wire.codec import TRANSIENT_KEY
from fabshim.errors import PeerError

from . import operations as ops
from . import requests as rq
from .config import ServerSettings
from .errors import DepositTokenError, InternalError, InvalidArgument, PeerUnavailable
from .keys import Deriver
from .ledger import Ledger, LedgerStub
from .operations import TRANSACTIONS, Caller, Tx, TxSpec
from .registry import Registry, loads_object
from .routing import Router

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
    @property
    def chaincode_name(self) -> str: ...
    def get_transient(self) -> Mapping[str, bytes]: ...


class Service:
    """Runs transactions for one chaincode server (one organization).

    ``settings`` default to the environment (``DTOKEN_BANK_MSP``, ``DTOKEN_SECRET_FILE``),
    read at the first transaction so that importing the chaincode module needs neither.
    """

    def __init__(self, settings: ServerSettings | None = None) -> None:
        self._settings = settings
        self._deriver: Deriver | None = None  # one per server: its keyed HMAC states are reused
        # (channel id, namespace) -> the registry as committed there, once it is the one this
        # server is pinned to (``Tx.registry_final``): it changes no more until the operator
        # gives a new pin, which restarts the server. Under the layout each bank namespace
        # holds its own copy.
        self._registries: dict[tuple[str, str], Registry] = {}

    @property
    def settings(self) -> ServerSettings:
        """This server's organization and secret."""
        if self._settings is None:
            self._settings = ServerSettings.from_env()
        return self._settings

    def _tx(self, stub: TxStub, caller: Caller) -> Tx:
        settings = self.settings
        if self._deriver is None:
            self._deriver = settings.deriver
        deriver = self._deriver
        made: list[Tx] = []
        router = None
        if settings.layout:
            router = Router(stub.chaincode_name, lambda: _bank_names(made[0]))
        tx = Tx(
            ledger=Ledger(stub, stub.tx_id, deriver, router),
            caller=caller,
            server_msp=settings.msp_id,
            deriver=deriver,
            tx_id=stub.tx_id,
            now=stub.tx_datetime,
            registry_sha256=settings.registry_sha256,
        )
        cached = self._registries.get((stub.channel_id, stub.chaincode_name))
        if cached is not None:
            tx.registry, tx.registry_final = cached, True
        made.append(tx)
        return tx

    async def execute(self, stub: TxStub, caller: Caller, name: str) -> dict[str, object]:
        """Run transaction ``name`` with its request from the transient map."""
        spec = TRANSACTIONS.get(name)
        if spec is None:
            raise InvalidArgument("unknown transaction")

        async def body(tx: Tx) -> dict[str, object]:
            if spec.request is None:
                return await spec.body(tx)
            data = _transient_request(stub, spec.optional_request)
            return await spec.body(tx, rq.parse(spec.request, data))

        return await self._guarded(stub, caller, name, body, flush=not spec.evaluate)

    async def init_network(self, stub: TxStub, caller: Caller, argument: str) -> dict[str, object]:
        """Run ``init_network`` with its JSON argument."""
        return await self._guarded(
            stub, caller, "init_network", lambda tx: ops.init_network(tx, argument), flush=True
        )

    async def admit_bank(self, stub: TxStub, caller: Caller, argument: str) -> dict[str, object]:
        """Run ``admit_bank`` (grow this organization's registry) with its JSON argument."""
        return await self._guarded(
            stub, caller, "admit_bank", lambda tx: ops.admit_bank(tx, argument), flush=True
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
                ops.write_grouped(tx)
                await tx.ledger.flush()
            if tx.registry is not None and tx.registry_final:
                # Only load_registry sets them, from committed state (init_network and
                # admit_bank write the registry without: their write is not committed yet).
                self._registries.setdefault((stub.channel_id, stub.chaincode_name),
                                            tx.registry)
            return result
        except DepositTokenError:
            raise
        except PeerError as exc:
            # The peer's own words name the request and keys (tags), never a value.
            _log.error("[%s] %s failed: the peer refused %s: %s", stub.tx_id[:8], name,
                       exc.request, exc.message[:300])
            raise PeerUnavailable("the peer could not answer a ledger read") from None
        except Exception as exc:
            # Type only: the text of an arbitrary exception may quote a value.
            _log.error("[%s] %s failed: %s", stub.tx_id[:8], name, type(exc).__name__)
            raise InternalError(f"unexpected {type(exc).__name__}") from None


def _bank_names(tx: Tx) -> list[str]:
    """The registry's banks in join order (what places a pair collection in the layout)."""
    if tx.registry is None:
        raise InternalError("a pair collection was reached before the registry was read")
    return list(tx.registry.joined())


def _transient_request(stub: TxStub, optional: bool) -> Mapping[str, object]:
    raw = stub.get_transient().get(TRANSIENT_KEY)
    if raw is None:
        if optional:
            return {}
        raise InvalidArgument(f"the transient map has no {TRANSIENT_KEY!r} entry")
    return loads_object(raw, "request", InvalidArgument)
