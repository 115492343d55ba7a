"""A blocking facade over fabgateway, for scripts: the async API runs on a private loop thread.

::

    from functools import partial
    from fabgateway import sync, tls_channel, load_msp_dir

    identity, signer = load_msp_dir("Org1MSP", "msp")
    with sync.connect(partial(tls_channel, "localhost:7051", ca_pem), identity, signer) as gw:
        contract = gw.get_network("mychannel").get_contract("basic")
        print(contract.submit_transaction("put", "k", "v"))

``connect`` takes a *factory* of the grpc.aio channel, because a grpc.aio channel belongs to the
event loop it was made on: the facade calls the factory on its own loop and closes that channel
in ``close()``. Errors are the async API's (:mod:`fabgateway.errors`). The facade objects can be
used from several threads; each call blocks its caller only.
"""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import grpc

from fabgateway import checkpoint as _checkpoint
from fabgateway import contract as _contract
from fabgateway import events as _events
from fabgateway import gateway as _gateway
from fabgateway import network as _network
from fabgateway import proposal as _proposal
from fabgateway import transaction as _transaction
from fabgateway.hashing import Hash, sha256
from fabgateway.identity import Identity, Signer
from fabgateway.proposal import Argument
from fabgateway.transaction import Status

__all__ = [
    "BlockEventIterator",
    "ChaincodeEventIterator",
    "Commit",
    "Contract",
    "Gateway",
    "Network",
    "Proposal",
    "SubmittedTransaction",
    "Transaction",
    "connect",
]

_T = TypeVar("_T")


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="fabgateway-sync-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, awaitable: Awaitable[_T]) -> _T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("fabgateway.sync called from its own event loop thread")

        async def call() -> _T:
            return await awaitable

        future: Future[_T] = asyncio.run_coroutine_threadsafe(call(), self.loop)
        return future.result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def connect(
    channel_factory: Callable[[], grpc.aio.Channel],
    identity: Identity,
    signer: Signer | None = None,
    *,
    hash: Hash = sha256,
    evaluate_timeout: float | None = _gateway.DEFAULT_EVALUATE_TIMEOUT,
    endorse_timeout: float | None = _gateway.DEFAULT_ENDORSE_TIMEOUT,
    submit_timeout: float | None = _gateway.DEFAULT_SUBMIT_TIMEOUT,
    commit_status_timeout: float | None = _gateway.DEFAULT_COMMIT_STATUS_TIMEOUT,
    tls_client_certificate_hash: bytes | None = None,
) -> Gateway:
    """A blocking Gateway; see :func:`fabgateway.connect` for the options."""
    runner = _LoopThread()

    async def make() -> _gateway.Gateway:
        channel = channel_factory()
        return _gateway.connect(
            channel,
            identity,
            signer,
            hash=hash,
            evaluate_timeout=evaluate_timeout,
            endorse_timeout=endorse_timeout,
            submit_timeout=submit_timeout,
            commit_status_timeout=commit_status_timeout,
            tls_client_certificate_hash=tls_client_certificate_hash,
        )

    try:
        gateway = runner.run(make())
    except BaseException:
        runner.stop()
        raise
    return Gateway(runner, gateway)


class Gateway:
    """Blocking counterpart of :class:`fabgateway.Gateway`; it owns its channel and loop."""

    def __init__(self, runner: _LoopThread, gateway: _gateway.Gateway) -> None:
        self._runner = runner
        self._gateway = gateway
        self._closed = False

    @property
    def identity(self) -> Identity:
        return self._gateway.identity

    def get_network(self, channel_name: str) -> Network:
        return Network(self._runner, self._gateway.get_network(channel_name))

    def close(self) -> None:
        """Close the gRPC channel and stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.run(self._gateway.channel.close(None))
        finally:
            self._runner.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def new_signed_proposal(self, data: bytes, signature: bytes) -> Proposal:
        return Proposal(self._runner, self._gateway.new_signed_proposal(data, signature))

    def new_signed_transaction(self, data: bytes, signature: bytes) -> Transaction:
        return Transaction(self._runner, self._gateway.new_signed_transaction(data, signature))

    def new_signed_commit(self, data: bytes, signature: bytes) -> Commit:
        return Commit(self._runner, self._gateway.new_signed_commit(data, signature))

    def new_signed_chaincode_events_request(
        self, data: bytes, signature: bytes
    ) -> ChaincodeEventIterator:
        request = self._gateway.new_signed_chaincode_events_request(data, signature)
        return ChaincodeEventIterator(self._runner, request.events())


class Network:
    """Blocking counterpart of :class:`fabgateway.Network`."""

    def __init__(self, runner: _LoopThread, network: _network.Network) -> None:
        self._runner = runner
        self._network = network

    @property
    def name(self) -> str:
        return self._network.name

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> Contract:
        return Contract(self._runner, self._network.get_contract(chaincode_name, contract_name))

    def new_commit(self, transaction_id: str) -> Commit:
        return Commit(self._runner, self._network.new_commit(transaction_id))

    def chaincode_events(
        self,
        chaincode_name: str,
        *,
        start_block: int | None = None,
        after_transaction_id: str | None = None,
        checkpointer: _checkpoint.Checkpoint | None = None,
        timeout: float | None = None,
    ) -> ChaincodeEventIterator:
        """A blocking iterator of chaincode events; ``close()`` it (or use ``with``)."""
        stream = self._network.chaincode_events(
            chaincode_name,
            start_block=start_block,
            after_transaction_id=after_transaction_id,
            checkpointer=checkpointer,
            timeout=timeout,
        )
        return ChaincodeEventIterator(self._runner, stream)

    def block_events(
        self,
        *,
        start_block: int | None = None,
        checkpointer: _checkpoint.Checkpoint | None = None,
        timeout: float | None = None,
    ) -> BlockEventIterator:
        stream = self._network.block_events(
            start_block=start_block, checkpointer=checkpointer, timeout=timeout
        )
        return BlockEventIterator(self._runner, stream)

    def filtered_block_events(
        self,
        *,
        start_block: int | None = None,
        checkpointer: _checkpoint.Checkpoint | None = None,
        timeout: float | None = None,
    ) -> BlockEventIterator:
        stream = self._network.filtered_block_events(
            start_block=start_block, checkpointer=checkpointer, timeout=timeout
        )
        return BlockEventIterator(self._runner, stream)


class Contract:
    """Blocking counterpart of :class:`fabgateway.Contract`."""

    def __init__(self, runner: _LoopThread, contract: _contract.Contract) -> None:
        self._runner = runner
        self._contract = contract

    @property
    def chaincode_name(self) -> str:
        return self._contract.chaincode_name

    @property
    def contract_name(self) -> str | None:
        return self._contract.contract_name

    def new_proposal(
        self,
        name: str,
        *,
        arguments: Iterable[Argument] = (),
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        nonce: bytes | None = None,
    ) -> Proposal:
        proposal = self._contract.new_proposal(
            name,
            arguments=arguments,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
            nonce=nonce,
        )
        return Proposal(self._runner, proposal)

    def evaluate_transaction(
        self,
        name: str,
        *args: Argument,
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        return self._runner.run(
            self._contract.evaluate(
                name,
                arguments=args,
                transient_data=transient_data,
                endorsing_organizations=endorsing_organizations,
                timeout=timeout,
            )
        )

    def submit_transaction(
        self,
        name: str,
        *args: Argument,
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        nonce: bytes | None = None,
        timeout: float | None = None,
    ) -> bytes:
        return self._runner.run(
            self._contract.submit(
                name,
                arguments=args,
                transient_data=transient_data,
                endorsing_organizations=endorsing_organizations,
                nonce=nonce,
                timeout=timeout,
            )
        )

    def submit_async(
        self,
        name: str,
        *,
        arguments: Iterable[Argument] = (),
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        nonce: bytes | None = None,
        timeout: float | None = None,
    ) -> SubmittedTransaction:
        submitted = self._runner.run(
            self._contract.submit_async(
                name,
                arguments=arguments,
                transient_data=transient_data,
                endorsing_organizations=endorsing_organizations,
                nonce=nonce,
                timeout=timeout,
            )
        )
        return SubmittedTransaction(self._runner, submitted)


class _Signable(Protocol):
    """What every signable message of the async API offers."""

    @property
    def transaction_id(self) -> str: ...
    def bytes(self) -> builtins.bytes: ...
    def digest(self) -> builtins.bytes: ...


class _SignableFacade:
    """The part shared by the blocking proposal, transaction and commit: their id and the
    bytes and digest to sign off-line."""

    def __init__(self, runner: _LoopThread, message: _Signable) -> None:
        self._runner = runner
        self._message = message

    @property
    def transaction_id(self) -> str:
        return self._message.transaction_id

    def bytes(self) -> builtins.bytes:
        return self._message.bytes()

    def digest(self) -> builtins.bytes:
        return self._message.digest()


class Proposal(_SignableFacade):
    """Blocking counterpart of :class:`fabgateway.Proposal`."""

    def __init__(self, runner: _LoopThread, proposal: _proposal.Proposal) -> None:
        super().__init__(runner, proposal)
        self._proposal = proposal

    def evaluate(self, *, timeout: float | None = None) -> builtins.bytes:
        return self._runner.run(self._proposal.evaluate(timeout=timeout))

    def endorse(self, *, timeout: float | None = None) -> Transaction:
        return Transaction(self._runner, self._runner.run(self._proposal.endorse(timeout=timeout)))


class Transaction(_SignableFacade):
    """Blocking counterpart of :class:`fabgateway.Transaction`."""

    def __init__(self, runner: _LoopThread, transaction: _transaction.Transaction) -> None:
        super().__init__(runner, transaction)
        self._transaction = transaction

    @property
    def result(self) -> builtins.bytes:
        return self._transaction.result

    def submit(self, *, timeout: float | None = None) -> SubmittedTransaction:
        submitted = self._runner.run(self._transaction.submit(timeout=timeout))
        return SubmittedTransaction(self._runner, submitted)


class Commit(_SignableFacade):
    """Blocking counterpart of :class:`fabgateway.Commit`."""

    def __init__(self, runner: _LoopThread, commit: _transaction.Commit) -> None:
        super().__init__(runner, commit)
        self._commit = commit

    def get_status(self, *, timeout: float | None = None) -> Status:
        return self._runner.run(self._commit.get_status(timeout=timeout))


class SubmittedTransaction(Commit):
    """Blocking counterpart of :class:`fabgateway.SubmittedTransaction`."""

    def __init__(self, runner: _LoopThread, submitted: _transaction.SubmittedTransaction) -> None:
        super().__init__(runner, submitted)
        self._submitted = submitted

    @property
    def result(self) -> builtins.bytes:
        return self._submitted.result


class _EventIterator(Generic[_T]):
    def __init__(self, runner: _LoopThread, stream: _events._Stream[_T]) -> None:
        self._runner = runner
        self._stream = stream

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> _T:
        async def step() -> tuple[bool, Any]:
            try:
                return True, await self._stream.__anext__()
            except StopAsyncIteration:
                return False, None

        more, item = self._runner.run(step())
        if not more:
            raise StopIteration
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        self._runner.run(self._stream.aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ChaincodeEventIterator(_EventIterator[_events.ChaincodeEvent]):
    """Blocking iterator of chaincode events."""


class BlockEventIterator(_EventIterator[Any]):
    """Blocking iterator of blocks (``common.Block`` or ``peer.FilteredBlock``)."""
