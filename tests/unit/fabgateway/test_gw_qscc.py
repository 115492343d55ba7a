"""qscc queries through the fake peer's Gateway: typed results, and an immediate typed error
for a transaction or block the ledger does not have (the peer's own error texts)."""

from __future__ import annotations

import asyncio
import time
from functools import partial

import fabgateway
import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fabgateway import sync
from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.peer import transaction_pb2
from unit.fabgateway.block_builder import MVCC, VALID, PrivateOp, Tx, block, envelope
from unit.fabgateway.gw_fakes import ChaincodeFailure, FakePeer, Invocation, Result, Server

pytestmark = pytest.mark.timeout(60)

TXS = [Tx("tx-1", private={"c": [PrivateOp("k", b"v")]}), Tx("tx-2", code=MVCC)]
BLOCK = block(9, TXS)


def ledger_peer(peer: FakePeer) -> list[list[bytes]]:
    """qscc on the fake peer, with Fabric's messages for what its ledger lacks."""
    calls: list[list[bytes]] = []

    def lookup(inv: Invocation) -> tuple[str, str]:
        calls.append(list(inv.args))
        assert inv.chaincode == "qscc"
        assert inv.args[1] == b"mychannel"
        return inv.args[0].decode(), inv.args[2].decode() if len(inv.args) > 2 else ""

    @peer.function("GetTransactionByID")
    def _tx(inv: Invocation) -> Result:
        _, tx_id = lookup(inv)
        for tx in TXS:
            if tx.tx_id == tx_id:
                processed = transaction_pb2.ProcessedTransaction(validationCode=tx.code)
                processed.transactionEnvelope.ParseFromString(envelope(tx))
                return Result(payload=processed.SerializeToString())
        raise ChaincodeFailure(
            500,
            f"Failed to get transaction with id {tx_id}, error no such transaction ID "
            f"[{tx_id}] in index",
        )

    @peer.function("GetBlockByTxID")
    def _block_by_tx(inv: Invocation) -> Result:
        _, tx_id = lookup(inv)
        if tx_id in {tx.tx_id for tx in TXS}:
            return Result(payload=BLOCK.SerializeToString())
        raise ChaincodeFailure(
            500, f"Failed to get block for txID {tx_id}, error no such transaction ID [{tx_id}] "
            "in index"
        )

    @peer.function("GetBlockByNumber")
    def _block(inv: Invocation) -> Result:
        _, number = lookup(inv)
        if number == "9":
            return Result(payload=BLOCK.SerializeToString())
        raise ChaincodeFailure(
            500, f"Failed to get block number {number}, error no such block number [{number}] "
            "in index"
        )

    @peer.function("GetChainInfo")
    def _info(inv: Invocation) -> Result:
        lookup(inv)
        info = ledger_pb2.BlockchainInfo(
            height=10, currentBlockHash=b"cur", previousBlockHash=b"prev"
        )
        return Result(payload=info.SerializeToString())

    return calls


async def test_get_transaction_by_id_returns_the_envelope_and_its_code(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    calls = ledger_peer(peer)
    ledger = fabgateway.LedgerQueries(gateway.get_network("mychannel"))
    processed = await ledger.get_transaction_by_id("tx-1")
    assert calls == [[b"GetTransactionByID", b"mychannel", b"tx-1"]]
    assert processed.is_valid
    assert processed.validation_code == VALID
    assert processed.transaction.transaction_id == "tx-1"
    assert processed.transaction.hashed_writes("cc", "c")[0].value_hash
    assert processed.transaction.position.block_number == -1
    envelope_message = common_pb2.Envelope()
    envelope_message.ParseFromString(processed.envelope)
    assert envelope_message.SerializeToString() == envelope(TXS[0])

    invalid = await ledger.get_transaction_by_id("tx-2")
    assert not invalid.is_valid
    assert invalid.transaction.validation_code_name == "MVCC_READ_CONFLICT"


async def test_blocks_and_chain_info_come_back_decoded(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    ledger_peer(peer)
    ledger = gateway.get_network("mychannel").get_ledger_queries()
    by_tx = await ledger.get_block_by_tx_id("tx-2")
    assert by_tx.number == 9
    assert [t.transaction_id for t in by_tx.transactions] == ["tx-1", "tx-2"]
    assert by_tx.transaction("tx-2").validation_code == MVCC  # type: ignore[union-attr]
    assert (await ledger.get_block_by_number(9)) == by_tx
    info = await ledger.get_chain_info()
    assert info == fabgateway.ChainInfo(10, b"cur", b"prev")


async def test_what_the_ledger_lacks_is_a_typed_error_at_once(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    ledger_peer(peer)
    ledger = fabgateway.LedgerQueries(gateway.get_network("mychannel"))
    started = time.monotonic()
    with pytest.raises(fabgateway.NotInLedgerError) as missing:
        await ledger.get_transaction_by_id("made-up")
    assert missing.value.function == "GetTransactionByID"
    assert missing.value.argument == "made-up"
    assert isinstance(missing.value, fabgateway.EvaluateError)
    assert "not in the ledger" in str(missing.value)
    with pytest.raises(fabgateway.NotInLedgerError):
        await ledger.get_block_by_tx_id("made-up")
    with pytest.raises(fabgateway.NotInLedgerError) as beyond:
        await ledger.get_block_by_number(11)
    assert beyond.value.argument == "11"
    assert time.monotonic() - started < 5


async def test_other_failures_stay_evaluate_errors(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    @peer.function("GetTransactionByID")
    def _denied(inv: Invocation) -> Result:
        raise ChaincodeFailure(500, "access denied for [GetTransactionByID][mychannel]: [...]")

    ledger = fabgateway.LedgerQueries(gateway.get_network("mychannel"))
    with pytest.raises(fabgateway.EvaluateError) as failed:
        await ledger.get_transaction_by_id("tx-1")
    assert not isinstance(failed.value, fabgateway.NotInLedgerError)
    assert failed.value.code == grpc.StatusCode.UNKNOWN
    with pytest.raises(ValueError, match="must not be empty"):
        await ledger.get_transaction_by_id("")
    with pytest.raises(ValueError, match="block number"):
        await ledger.get_block_by_number(-1)


async def test_queries_can_target_other_organizations(
    peer: FakePeer, gateway: fabgateway.Gateway
) -> None:
    ledger_peer(peer)
    ledger = gateway.get_network("mychannel").get_ledger_queries(
        endorsing_organizations=["RegulatorMSP"]
    )
    assert isinstance(ledger, fabgateway.LedgerQueries)
    await ledger.get_chain_info()
    (request,) = peer.evaluate_requests
    assert list(request.target_organizations) == ["RegulatorMSP"]


async def test_the_blocking_facade_queries_the_ledger_too(
    peer: FakePeer,
    server: Server,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    ledger_peer(peer)

    def script() -> None:
        factory = partial(grpc.aio.insecure_channel, server.address)
        with sync.connect(factory, identity, fabgateway.ecdsa_signer(ec_key)) as blocking:
            ledger = blocking.get_network("mychannel").get_ledger_queries()
            assert isinstance(ledger, sync.LedgerQueries)
            assert ledger.get_transaction_by_id("tx-1").is_valid
            assert ledger.get_block_by_number(9).number == 9
            with pytest.raises(fabgateway.NotInLedgerError):
                ledger.get_transaction_by_id("made-up")

    await asyncio.to_thread(script)
