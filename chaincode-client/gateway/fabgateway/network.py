"""A channel as seen through the Gateway: its contracts and its events."""

from __future__ import annotations

from collections.abc import Iterable

from fabgateway._client import GatewayClient, SigningIdentity
from fabgateway.block_chaincode_events import (
    BlockChaincodeEventStream,
    ChaincodeNames,
    wanted_chaincodes,
)
from fabgateway.checkpoint import Checkpoint
from fabgateway.contract import Contract
from fabgateway.events import (
    BlockEventsRequest,
    BlockEventStream,
    ChaincodeEventsRequest,
    ChaincodeEventStream,
    build_block_events_request,
    build_chaincode_events_request,
    start_position,
)
from fabgateway.qscc import LedgerQueries
from fabgateway.transaction import Commit, new_commit

__all__ = ["Network"]


class Network:
    """One channel: ``get_contract()``, ledger queries, chaincode events and block events."""

    def __init__(
        self,
        client: GatewayClient,
        signing_id: SigningIdentity,
        name: str,
        tls_certificate_hash: bytes | None = None,
    ) -> None:
        self._client = client
        self._signing_id = signing_id
        self._name = name
        self._tls_certificate_hash = tls_certificate_hash

    @property
    def name(self) -> str:
        return self._name

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> Contract:
        """The chaincode ``chaincode_name`` (and its contract ``contract_name``, if given)."""
        return Contract(self._client, self._signing_id, self._name, chaincode_name, contract_name)

    def get_ledger_queries(
        self, *, endorsing_organizations: Iterable[str] | None = None
    ) -> LedgerQueries:
        """Ledger queries (qscc: transactions and blocks by id or number, the chain height),
        answered by a peer of this client's organization, or of ``endorsing_organizations``."""
        return LedgerQueries(self, endorsing_organizations=endorsing_organizations)

    def new_commit(self, transaction_id: str) -> Commit:
        """A commit-status request for any transaction id (e.g. one submitted earlier)."""
        return new_commit(self._client, self._signing_id, self._name, transaction_id)

    # --- chaincode events ------------------------------------------------------------------

    def new_chaincode_events_request(
        self,
        chaincode_name: str,
        *,
        start_block: int | None = None,
        after_transaction_id: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> ChaincodeEventsRequest:
        """A chaincode events request, for off-line signing or to start later."""
        return build_chaincode_events_request(
            self._client,
            self._signing_id,
            self._name,
            chaincode_name,
            start_block=start_block,
            after_transaction_id=after_transaction_id,
            checkpoint=checkpoint,
        )

    def chaincode_events(
        self,
        chaincode_name: str,
        *,
        start_block: int | None = None,
        after_transaction_id: str | None = None,
        checkpoint: Checkpoint | None = None,
        timeout: float | None = None,
    ) -> ChaincodeEventStream:
        """The events of ``chaincode_name``, in commit order, as an async iterator.

        Starts at ``checkpoint`` if it has a position (its transaction id: after that
        transaction in that block), else at ``start_block`` (after ``after_transaction_id`` in
        it, if given), else at the next block to commit. With a
        :class:`~fabgateway.checkpoint.Checkpointer` as ``checkpoint``, call
        ``cp.checkpoint_chaincode_event(event)`` after processing each event (the keyword is
        fabric-gateway's ``checkpoint``, as in the ``new_*_request`` methods)::

            async with network.chaincode_events("cc", checkpoint=cp) as events:
                async for event in events:
                    handle(event)
                    cp.checkpoint_chaincode_event(event)

        Raises :class:`ChaincodeEventsError` if the stream fails.
        """
        request = self.new_chaincode_events_request(
            chaincode_name,
            start_block=start_block,
            after_transaction_id=after_transaction_id,
            checkpoint=checkpoint,
        )
        return request.events(timeout=timeout)

    def block_chaincode_events(
        self,
        chaincode_names: ChaincodeNames,
        *,
        start_block: int | None = None,
        after_transaction_id: str | None = None,
        checkpoint: Checkpoint | None = None,
        timeout: float | None = None,
    ) -> BlockChaincodeEventStream:
        """The events of several chaincodes, in commit order, from one stream of full blocks.

        ``chaincode_names`` is a collection of names, or a test of a name. Each VALID
        transaction whose top-level chaincode is wanted yields its event, as
        :meth:`chaincode_events` would for that one name; the start position and the
        checkpointing are the same (``cp.checkpoint_chaincode_event(event)`` after processing
        each event resumes right after it). Reading blocks needs the channel's ``Readers``
        policy, which every member satisfies. Raises :class:`BlockEventsError` if the stream
        fails, :class:`MalformedMessageError` if the peer sends a block that does not decode.
        See :mod:`fabgateway.block_chaincode_events`.
        """
        wanted = wanted_chaincodes(chaincode_names)  # a bad name raises before any request
        _, checkpoint_after, block = start_position(start_block, checkpoint)
        after = checkpoint_after if checkpoint_after is not None else after_transaction_id
        request = self.new_block_events_request(
            kind="block", start_block=start_block, checkpoint=checkpoint
        )
        resume = (block, after) if block is not None and after else None
        return BlockChaincodeEventStream(request.events(timeout=timeout), wanted, after=resume)

    # --- block events ----------------------------------------------------------------------

    def new_block_events_request(
        self,
        *,
        kind: str = "block",
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> BlockEventsRequest:
        """A Deliver request; ``kind`` is ``block``, ``filtered_block`` or
        ``block_and_private_data``."""
        return build_block_events_request(
            self._client,
            self._signing_id,
            self._name,
            kind,
            start_block=start_block,
            checkpoint=checkpoint,
            tls_certificate_hash=self._tls_certificate_hash,
        )

    def block_events(
        self,
        *,
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
        timeout: float | None = None,
    ) -> BlockEventStream:
        """Full blocks (``common.Block``) from the peer's Deliver service.

        With a :class:`~fabgateway.checkpoint.Checkpointer` as ``checkpoint``, call
        ``cp.checkpoint_block(block.header.number)`` after processing a block.
        """
        request = self.new_block_events_request(
            kind="block", start_block=start_block, checkpoint=checkpoint
        )
        return request.events(timeout=timeout)

    def filtered_block_events(
        self,
        *,
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
        timeout: float | None = None,
    ) -> BlockEventStream:
        """Filtered blocks (``peer.FilteredBlock``: transaction ids and validation codes)."""
        request = self.new_block_events_request(
            kind="filtered_block", start_block=start_block, checkpoint=checkpoint
        )
        return request.events(timeout=timeout)

    def block_and_private_data_events(
        self,
        *,
        start_block: int | None = None,
        checkpoint: Checkpoint | None = None,
        timeout: float | None = None,
    ) -> BlockEventStream:
        """Blocks with the private data this client may see (``peer.BlockAndPrivateData``)."""
        request = self.new_block_events_request(
            kind="block_and_private_data", start_block=start_block, checkpoint=checkpoint
        )
        return request.events(timeout=timeout)
