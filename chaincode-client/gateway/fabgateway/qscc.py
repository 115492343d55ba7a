"""Ledger queries through the Gateway: Fabric's ``qscc`` system chaincode, typed.

What it owns: :class:`LedgerQueries`, which evaluates ``qscc`` (``GetTransactionByID``,
``GetBlockByTxID``, ``GetBlockByNumber``, ``GetChainInfo``) on a peer of the channel through
the Gateway and decodes the answers (:mod:`fabgateway.blocks` records, :class:`ChainInfo`).
A transaction or block the peer's ledger lacks raises :class:`NotInLedgerError` at once, so a
caller checking a claimed transaction id never waits on a commit status that will not come.

What it must not do: trust a transaction id or block number given by anyone as proof of
anything (it asks the ledger); invent a not-found from another failure (access denied, no
peer, timeout stay :class:`EvaluateError`).

The answer comes from one peer of the caller's organization (or of ``endorsing_organizations``
when given): a peer that is behind answers not-found for what it has not committed yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fabgateway._protos import ledger_pb2, transaction_pb2
from fabgateway.blocks import Block, BlockTransaction, decode_block, decode_envelope
from fabgateway.errors import EvaluateError, MalformedMessageError, NotInLedgerError

if TYPE_CHECKING:
    from fabgateway.network import Network

__all__ = ["QSCC", "ChainInfo", "LedgerQueries", "ProcessedTransaction"]

QSCC = "qscc"
"""The name of the query system chaincode."""

_NOT_FOUND = re.compile(
    r"no such (?:transaction ID|block number) \[[^\]]*\] in index|Entry not found in index"
)


@dataclass(frozen=True)
class ChainInfo:
    """The peer's view of the channel: ``height`` (the next block number) and block hashes."""

    height: int
    current_block_hash: bytes
    previous_block_hash: bytes


@dataclass(frozen=True)
class ProcessedTransaction:
    """A committed transaction as ``GetTransactionByID`` returns it.

    ``transaction`` is the decoded envelope with the ledger's validation code; its position's
    ``block_number`` and ``tx_index`` are -1: ``ProcessedTransaction`` carries neither (ask
    :meth:`LedgerQueries.get_block_by_tx_id` for the position). ``envelope`` is the exact
    envelope bytes.
    """

    transaction: BlockTransaction
    validation_code: int
    envelope: bytes

    @property
    def is_valid(self) -> bool:
        return self.transaction.is_valid


class LedgerQueries:
    """``qscc`` queries on one channel, evaluated through the Gateway of ``network``.

    Made by ``network.get_ledger_queries()`` (or directly from a :class:`Network`).
    """

    def __init__(
        self,
        network: Network,
        *,
        endorsing_organizations: Iterable[str] | None = None,
    ) -> None:
        self._network = network
        self._contract = network.get_contract(QSCC)
        self._targets = list(endorsing_organizations) if endorsing_organizations else None

    async def _query(
        self,
        function: str,
        argument: str | None,
        timeout: float | None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> bytes:
        arguments = [self._network.name] if argument is None else [self._network.name, argument]
        try:
            return await self._contract.evaluate(
                function,
                arguments=arguments,
                endorsing_organizations=self._targets,
                timeout=timeout,
            )
        except EvaluateError as error:
            message = error.chaincode_message or ""
            if argument is not None and _NOT_FOUND.search(message):
                raise NotInLedgerError(
                    error.status_message,
                    code=error.code,
                    transaction_id=error.transaction_id,
                    function=function,
                    argument=argument,
                    details=error.details,
                ) from error
            raise

    async def get_transaction_by_id(
        self,
        transaction_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> ProcessedTransaction:
        """The committed transaction ``transaction_id`` with its validation code.

        Raises :class:`NotInLedgerError` if the peer's ledger has no such transaction.
        """
        if not transaction_id:
            raise ValueError("transaction_id must not be empty")
        raw = await self._query("GetTransactionByID", transaction_id, timeout)
        processed = transaction_pb2.ProcessedTransaction()
        try:
            processed.ParseFromString(raw)
        except Exception as error:
            raise MalformedMessageError(f"not a ProcessedTransaction: {error}") from error
        code = int(processed.validationCode)
        envelope = bytes(processed.transactionEnvelope.SerializeToString())
        transaction = decode_envelope(
            processed.transactionEnvelope, block_number=-1, tx_index=-1, validation_code=code
        )
        return ProcessedTransaction(transaction, code, envelope)

    async def get_block_by_tx_id(
        self,
        transaction_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> Block:
        """The block that holds transaction ``transaction_id`` (decoded, no private data).

        Raises :class:`NotInLedgerError` if the peer's ledger has no such transaction.
        """
        if not transaction_id:
            raise ValueError("transaction_id must not be empty")
        return decode_block(await self._query("GetBlockByTxID", transaction_id, timeout))

    async def get_block_by_number(
        self,
        number: int,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> Block:
        """Block ``number`` (decoded, no private data).

        Raises :class:`NotInLedgerError` if the peer has not committed that block.
        """
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValueError(f"block number must be an int >= 0, got {number!r}")
        return decode_block(await self._query("GetBlockByNumber", str(number), timeout))

    async def get_chain_info(
        self,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> ChainInfo:
        """The peer's chain height and the hashes of its last two blocks."""
        raw = await self._query("GetChainInfo", None, timeout)
        info = ledger_pb2.BlockchainInfo()
        try:
            info.ParseFromString(raw)
        except Exception as error:
            raise MalformedMessageError(f"not a BlockchainInfo: {error}") from error
        return ChainInfo(
            height=int(info.height),
            current_block_hash=bytes(info.currentBlockHash),
            previous_block_hash=bytes(info.previousBlockHash),
        )
