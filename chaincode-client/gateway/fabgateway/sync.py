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
:class:`ChaincodeEventIterator` to use with ``with`` and ``for``). Same names, parameters,
results and exceptions (:mod:`fabgateway.errors`) as the async API; a parity test holds them
equal.

``connect`` takes a *factory* of the grpc.aio channel, because a grpc.aio channel belongs to the
event loop it was made on: the facade calls the factory on its own loop and closes that channel
in ``close()``. The facade objects can be used from several threads; each call blocks its
caller only.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import grpc

from fabgateway import contract as _contract
from fabgateway import events as _events
from fabgateway import gateway as _gateway
from fabgateway import network as _network
from fabgateway import proposal as _proposal
from fabgateway import transaction as _transaction
from fabgateway.blocking import LoopThread, Twin, blocking_twin
from fabgateway.hashing import Hash, sha256
from fabgateway.identity import Identity, Signer

__all__ = [
    "BlockEventIterator",
    "BlockEventsRequest",
    "ChaincodeEventIterator",
    "ChaincodeEventsRequest",
    "Commit",
    "Contract",
    "Gateway",
    "Network",
    "Proposal",
    "SubmittedTransaction",
    "Transaction",
    "connect",
]


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


@blocking_twin(_contract.Contract)
class Contract(Twin[_contract.Contract]):
    """Blocking twin of :class:`fabgateway.Contract`."""


@blocking_twin(_proposal.Proposal)
class Proposal(Twin[_proposal.Proposal]):
    """Blocking twin of :class:`fabgateway.Proposal`."""


@blocking_twin(_transaction.Transaction)
class Transaction(Twin[_transaction.Transaction]):
    """Blocking twin of :class:`fabgateway.Transaction`."""


@blocking_twin(_transaction.Commit)
class Commit(Twin[_transaction.Commit]):
    """Blocking twin of :class:`fabgateway.Commit`."""


@blocking_twin(_transaction.SubmittedTransaction)
class SubmittedTransaction(Commit):
    """Blocking twin of :class:`fabgateway.SubmittedTransaction`."""


@blocking_twin(_events.ChaincodeEventsRequest)
class ChaincodeEventsRequest(Twin[_events.ChaincodeEventsRequest]):
    """Blocking twin of :class:`fabgateway.ChaincodeEventsRequest`."""


@blocking_twin(_events.BlockEventsRequest)
class BlockEventsRequest(Twin[_events.BlockEventsRequest]):
    """Blocking twin of :class:`fabgateway.BlockEventsRequest`."""


@blocking_twin(_events.ChaincodeEventStream)
class ChaincodeEventIterator(Twin[_events.ChaincodeEventStream]):
    """Blocking iterator of chaincode events (twin of :class:`fabgateway.ChaincodeEventStream`);
    ``close()`` it, or use ``with``."""


@blocking_twin(_events.BlockEventStream)
class BlockEventIterator(Twin[_events.BlockEventStream]):
    """Blocking iterator of blocks (``common.Block``, ``peer.FilteredBlock`` or
    ``peer.BlockAndPrivateData``; twin of :class:`fabgateway.BlockEventStream`)."""
