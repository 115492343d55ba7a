"""A blocking facade over fabgateway, for scripts: the async API runs on a private loop thread.

::

    from functools import partial
    from fabgateway import sync, tls_channel, load_msp_dir

    identity, signer = load_msp_dir("Org1MSP", "msp")
    with sync.connect(partial(tls_channel, "localhost:7051", ca_pem), identity, signer) as gw:
        contract = gw.get_network("mychannel").get_contract("basic")
        print(contract.submit_transaction("put", "k", "v"))

Every class here is the blocking twin of the async class of the same name, made by
:func:`fabgateway.blocking.blocking_twin`: each coroutine method blocks until done, each
object the async API returns comes back as its twin (``get_network()`` → :class:`Network`,
``endorse()`` → :class:`Transaction`, ``chaincode_events()`` → a blocking
:class:`ChaincodeEventIterator` to use with ``with`` and ``for``; ``block_chaincode_events()``
→ :class:`BlockChaincodeEventIterator`). Same names, parameters, results and exceptions
(:mod:`fabgateway.errors`) as the async API; a parity test holds them equal.

``connect`` takes a *factory* of the grpc.aio channel, because a grpc.aio channel belongs to the
event loop it was made on: the facade calls the factory on its own loop and closes that channel
in ``close()``. The facade objects can be used from several threads; each call blocks its
caller only.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import grpc

from fabgateway import block_chaincode_events as _block_chaincode_events
from fabgateway import contract as _contract
from fabgateway import events as _events
from fabgateway import gateway as _gateway
from fabgateway import network as _network
from fabgateway import proposal as _proposal
from fabgateway import qscc as _qscc
from fabgateway import transaction as _transaction
from fabgateway.blocking import LoopThread, Twin, blocking_twin
from fabgateway.hashing import Hash, sha256
from fabgateway.identity import Identity, Signer

__all__ = [
    "BlockChaincodeEventIterator",
    "BlockEventIterator",
    "BlockEventsRequest",
    "ChaincodeEventIterator",
    "ChaincodeEventsRequest",
    "Commit",
    "Contract",
    "Gateway",
    "LedgerQueries",
    "Network",
    "Proposal",
    "SubmittedTransaction",
    "Transaction",
    "connect",
]

if TYPE_CHECKING:
    # <declarations: imports> generated: python -m fabgateway._declarations fabgateway.sync
    import builtins  # noqa: I001 - generated, one import a line
    from collections.abc import Iterable
    from collections.abc import Mapping
    from fabgateway import Argument
    from fabgateway import ChaincodeNames
    from fabgateway.blocks import Block
    from fabgateway.checkpoint import Checkpoint
    from fabgateway.events import ChaincodeEvent
    from fabgateway.qscc import ChainInfo
    from fabgateway.qscc import ProcessedTransaction
    from fabgateway.transaction import Status
    from typing import Any
    from typing import Self
    # </declarations>


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
    """A blocking Gateway; see :func:`fabgateway.connect` for the options.

    The first parameter is a factory of the channel rather than the channel: it is called on
    the facade's loop thread, which the channel then belongs to.
    """
    runner = LoopThread("fabgateway-sync")

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
    return Gateway(gateway, runner)


@blocking_twin(_gateway.Gateway)
class Gateway(Twin[_gateway.Gateway]):
    """Blocking twin of :class:`fabgateway.Gateway`; it owns its channel and loop thread."""

    if TYPE_CHECKING:
        # <declarations: Gateway> generated (fabgateway._declarations)
        def __enter__(self) -> Self: ...
        @property
        def channel(self) -> grpc.aio.Channel: ...
        def get_network(self, channel_name: str) -> Network: ...
        @property
        def identity(self) -> Identity: ...
        def new_block_events_request(
            self,
            data: bytes,
            *,
            kind: str = "block",
        ) -> BlockEventsRequest: ...
        def new_chaincode_events_request(self, data: bytes) -> ChaincodeEventsRequest: ...
        def new_commit(self, data: bytes) -> Commit: ...
        def new_proposal(self, data: bytes) -> Proposal: ...
        def new_signed_block_events_request(
            self,
            data: bytes,
            signature: bytes,
            *,
            kind: str = "block",
        ) -> BlockEventsRequest: ...
        def new_signed_chaincode_events_request(
            self,
            data: bytes,
            signature: bytes,
        ) -> ChaincodeEventsRequest: ...
        def new_signed_commit(self, data: bytes, signature: bytes) -> Commit: ...
        def new_signed_proposal(self, data: bytes, signature: bytes) -> Proposal: ...
        def new_signed_transaction(self, data: bytes, signature: bytes) -> Transaction: ...
        def new_transaction(self, data: bytes) -> Transaction: ...
        # </declarations>

    # Differs: the async Gateway owns neither the channel nor a loop; this one made both.
    async def _close(self) -> None:
        await self._target.close()
        await self._target.channel.close(None)

    def close(self) -> None:
        """Close the gRPC channel and stop the loop thread (idempotent)."""
        if self._runner.stopped:
            return
        try:
            self._runner.run(self._close())
        finally:
            self._runner.stop()

    # Differs: leaving ``with`` closes what this twin owns (see close()).
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@blocking_twin(_network.Network)
class Network(Twin[_network.Network]):
    """Blocking twin of :class:`fabgateway.Network`."""

    if TYPE_CHECKING:
        # <declarations: Network> generated (fabgateway._declarations)
        def block_and_private_data_events(
            self,
            *,
            start_block: int | None = None,
            checkpoint: Checkpoint | None = None,
            timeout: float | None = None,
        ) -> BlockEventIterator: ...
        def block_chaincode_events(
            self,
            chaincode_names: ChaincodeNames,
            *,
            start_block: int | None = None,
            after_transaction_id: str | None = None,
            checkpoint: Checkpoint | None = None,
            timeout: float | None = None,
        ) -> BlockChaincodeEventIterator: ...
        def block_events(
            self,
            *,
            start_block: int | None = None,
            checkpoint: Checkpoint | None = None,
            timeout: float | None = None,
        ) -> BlockEventIterator: ...
        def chaincode_events(
            self,
            chaincode_name: str,
            *,
            start_block: int | None = None,
            after_transaction_id: str | None = None,
            checkpoint: Checkpoint | None = None,
            timeout: float | None = None,
        ) -> ChaincodeEventIterator: ...
        def filtered_block_events(
            self,
            *,
            start_block: int | None = None,
            checkpoint: Checkpoint | None = None,
            timeout: float | None = None,
        ) -> BlockEventIterator: ...
        def get_contract(
            self,
            chaincode_name: str,
            contract_name: str | None = None,
        ) -> Contract: ...
        def get_ledger_queries(
            self,
            *,
            endorsing_organizations: Iterable[str] | None = None,
        ) -> LedgerQueries: ...
        @property
        def name(self) -> str: ...
        def new_block_events_request(
            self,
            *,
            kind: str = "block",
            start_block: int | None = None,
            checkpoint: Checkpoint | None = None,
        ) -> BlockEventsRequest: ...
        def new_chaincode_events_request(
            self,
            chaincode_name: str,
            *,
            start_block: int | None = None,
            after_transaction_id: str | None = None,
            checkpoint: Checkpoint | None = None,
        ) -> ChaincodeEventsRequest: ...
        def new_commit(self, transaction_id: str) -> Commit: ...
        # </declarations>


@blocking_twin(_contract.Contract)
class Contract(Twin[_contract.Contract]):
    """Blocking twin of :class:`fabgateway.Contract`."""

    if TYPE_CHECKING:
        # <declarations: Contract> generated (fabgateway._declarations)
        @property
        def chaincode_name(self) -> str: ...
        @property
        def channel_name(self) -> str: ...
        @property
        def contract_name(self) -> str | None: ...
        def evaluate(
            self,
            name: str,
            *,
            arguments: Iterable[Argument] = (),
            transient_data: Mapping[str, Argument] | None = None,
            endorsing_organizations: Iterable[str] | None = None,
            timeout: float | None = None,
        ) -> bytes: ...
        def evaluate_transaction(
            self,
            name: str,
            *args: Argument,
            transient_data: Mapping[str, Argument] | None = None,
            endorsing_organizations: Iterable[str] | None = None,
            timeout: float | None = None,
        ) -> bytes: ...
        def new_proposal(
            self,
            name: str,
            *,
            arguments: Iterable[Argument] = (),
            transient_data: Mapping[str, Argument] | None = None,
            endorsing_organizations: Iterable[str] | None = None,
            nonce: bytes | None = None,
        ) -> Proposal: ...
        def submit(
            self,
            name: str,
            *,
            arguments: Iterable[Argument] = (),
            transient_data: Mapping[str, Argument] | None = None,
            endorsing_organizations: Iterable[str] | None = None,
            nonce: bytes | None = None,
            timeout: float | None = None,
        ) -> bytes: ...
        def submit_async(
            self,
            name: str,
            *,
            arguments: Iterable[Argument] = (),
            transient_data: Mapping[str, Argument] | None = None,
            endorsing_organizations: Iterable[str] | None = None,
            nonce: bytes | None = None,
            timeout: float | None = None,
        ) -> SubmittedTransaction: ...
        def submit_transaction(
            self,
            name: str,
            *args: Argument,
            transient_data: Mapping[str, Argument] | None = None,
            endorsing_organizations: Iterable[str] | None = None,
            nonce: bytes | None = None,
            timeout: float | None = None,
        ) -> bytes: ...
        # </declarations>


@blocking_twin(_proposal.Proposal)
class Proposal(Twin[_proposal.Proposal]):
    """Blocking twin of :class:`fabgateway.Proposal`."""

    if TYPE_CHECKING:
        # <declarations: Proposal> generated (fabgateway._declarations)
        def bytes(self) -> builtins.bytes: ...
        @property
        def channel_name(self) -> str: ...
        def digest(self) -> builtins.bytes: ...
        def endorse(self, *, timeout: float | None = None) -> Transaction: ...
        @property
        def endorsing_organizations(self) -> list[str]: ...
        def evaluate(self, *, timeout: float | None = None) -> builtins.bytes: ...
        @property
        def transaction_id(self) -> str: ...
        # </declarations>


@blocking_twin(_transaction.Transaction)
class Transaction(Twin[_transaction.Transaction]):
    """Blocking twin of :class:`fabgateway.Transaction`."""

    if TYPE_CHECKING:
        # <declarations: Transaction> generated (fabgateway._declarations)
        def bytes(self) -> builtins.bytes: ...
        @property
        def channel_name(self) -> str: ...
        def digest(self) -> builtins.bytes: ...
        def new_commit(self) -> Commit: ...
        @property
        def result(self) -> builtins.bytes: ...
        def submit(self, *, timeout: float | None = None) -> SubmittedTransaction: ...
        @property
        def transaction_id(self) -> str: ...
        # </declarations>


@blocking_twin(_transaction.Commit)
class Commit(Twin[_transaction.Commit]):
    """Blocking twin of :class:`fabgateway.Commit`."""

    if TYPE_CHECKING:
        # <declarations: Commit> generated (fabgateway._declarations)
        def bytes(self) -> builtins.bytes: ...
        def digest(self) -> builtins.bytes: ...
        def get_status(self, *, timeout: float | None = None) -> Status: ...
        @property
        def transaction_id(self) -> str: ...
        # </declarations>


@blocking_twin(_transaction.SubmittedTransaction)
class SubmittedTransaction(Commit):
    """Blocking twin of :class:`fabgateway.SubmittedTransaction`."""

    if TYPE_CHECKING:
        # <declarations: SubmittedTransaction> generated (fabgateway._declarations)
        def bytes(self) -> builtins.bytes: ...
        def digest(self) -> builtins.bytes: ...
        def get_status(self, *, timeout: float | None = None) -> Status: ...
        @property
        def result(self) -> builtins.bytes: ...
        @property
        def transaction_id(self) -> str: ...
        # </declarations>


@blocking_twin(_events.ChaincodeEventsRequest)
class ChaincodeEventsRequest(Twin[_events.ChaincodeEventsRequest]):
    """Blocking twin of :class:`fabgateway.ChaincodeEventsRequest`."""

    if TYPE_CHECKING:
        # <declarations: ChaincodeEventsRequest> generated (fabgateway._declarations)
        def bytes(self) -> builtins.bytes: ...
        def digest(self) -> builtins.bytes: ...
        def events(self, *, timeout: float | None = None) -> ChaincodeEventIterator: ...
        # </declarations>


@blocking_twin(_events.BlockEventsRequest)
class BlockEventsRequest(Twin[_events.BlockEventsRequest]):
    """Blocking twin of :class:`fabgateway.BlockEventsRequest`."""

    if TYPE_CHECKING:
        # <declarations: BlockEventsRequest> generated (fabgateway._declarations)
        def bytes(self) -> builtins.bytes: ...
        def digest(self) -> builtins.bytes: ...
        def events(self, *, timeout: float | None = None) -> BlockEventIterator: ...
        @property
        def kind(self) -> str: ...
        # </declarations>


@blocking_twin(_events.ChaincodeEventStream)
class ChaincodeEventIterator(Twin[_events.ChaincodeEventStream]):
    """Blocking iterator of chaincode events (twin of :class:`fabgateway.ChaincodeEventStream`);
    ``close()`` it, or use ``with``."""

    if TYPE_CHECKING:
        # <declarations: ChaincodeEventIterator> generated (fabgateway._declarations)
        def __enter__(self) -> Self: ...
        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None: ...
        def __iter__(self) -> Self: ...
        def __next__(self) -> ChaincodeEvent: ...
        def close(self) -> None: ...
        # </declarations>


@blocking_twin(_events.BlockEventStream)
class BlockEventIterator(Twin[_events.BlockEventStream]):
    """Blocking iterator of blocks (``common.Block``, ``peer.FilteredBlock`` or
    ``peer.BlockAndPrivateData``; twin of :class:`fabgateway.BlockEventStream`)."""

    if TYPE_CHECKING:
        # <declarations: BlockEventIterator> generated (fabgateway._declarations)
        def __enter__(self) -> Self: ...
        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None: ...
        def __iter__(self) -> Self: ...
        def __next__(self) -> Any: ...
        def close(self) -> None: ...
        # </declarations>


@blocking_twin(_block_chaincode_events.BlockChaincodeEventStream)
class BlockChaincodeEventIterator(Twin[_block_chaincode_events.BlockChaincodeEventStream]):
    """Blocking iterator of the chaincode events of several chaincodes, read from blocks
    (twin of :class:`fabgateway.BlockChaincodeEventStream`); ``close()`` it, or use ``with``."""

    if TYPE_CHECKING:
        # <declarations: BlockChaincodeEventIterator> generated (fabgateway._declarations)
        def __enter__(self) -> Self: ...
        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None: ...
        def __iter__(self) -> Self: ...
        def __next__(self) -> ChaincodeEvent: ...
        def close(self) -> None: ...
        # </declarations>


@blocking_twin(_qscc.LedgerQueries)
class LedgerQueries(Twin[_qscc.LedgerQueries]):
    """Blocking qscc queries (twin of :class:`fabgateway.LedgerQueries`); made by
    ``network.get_ledger_queries()``."""

    if TYPE_CHECKING:
        # <declarations: LedgerQueries> generated (fabgateway._declarations)
        def get_block_by_number(self, number: int, *, timeout: float | None = None) -> Block: ...
        def get_block_by_tx_id(
            self,
            transaction_id: str,
            *,
            timeout: float | None = None,
        ) -> Block: ...
        def get_chain_info(self, *, timeout: float | None = None) -> ChainInfo: ...
        def get_transaction_by_id(
            self,
            transaction_id: str,
            *,
            timeout: float | None = None,
        ) -> ProcessedTransaction: ...
        # </declarations>
