"""Decoding full blocks, first valid writer, private data against committed hashes."""

from __future__ import annotations

import hashlib

import fabgateway
import pytest
from fabgateway.blocks import (
    VALIDATION_PARAMETER,
    Read,
    Version,
    Write,
    decode_block,
    decode_block_and_private_data,
    decode_envelope,
)
from fabgateway.ledger_order import PrivateDataProblem, valid_writer_in
from fabric_protos.peer.events_pb2 import FilteredBlock
from unit.fabgateway.block_builder import (
    BAD_PAYLOAD,
    MVCC,
    POLICY,
    PrivateOp,
    Tx,
    block,
    block_and_private_data,
    envelope,
)

KEY = "xfer/T1"
VALUE = b'{"amount":100,"payee":"b"}'


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sample_txs() -> list[Tx]:
    return [
        Tx("t-valid", creator="BankA", endorsers=("BankA", "BankB"),
           public=[("pub", b"v1"), ("gone", None)], reads=[("pub", (3, 1)), ("new", None)],
           public_metadata=[("pub", {VALIDATION_PARAMETER: b"\x0a\x00"})],
           private={"pair-a-b": [PrivateOp(KEY, VALUE), PrivateOp("old", None)]}),
        Tx("t-invalid", code=MVCC, creator="BankB",
           private={"pair-a-b": [PrivateOp("xfer/T2", b"x")]}),
        Tx("t-purge", creator="BankA",
           private={"acct-a": [PrivateOp("acct/1", None, purge=True),
                               PrivateOp("acct/2", None, metadata={VALIDATION_PARAMETER: b"p"})]}),
    ]


def test_a_block_decodes_per_transaction_with_codes_creators_and_write_sets() -> None:
    decoded = decode_block(block(7, sample_txs()))
    assert decoded.number == 7
    assert decoded.previous_hash == h(b"block 6")
    assert decoded.private_data is None
    first, second, third = decoded.transactions
    assert first.position == fabgateway.TxPosition(7, 0, "t-valid")
    assert first.is_valid
    assert first.validation_code_name == "VALID"
    assert first.creator_msp_id == "BankA"
    assert first.endorser_msp_ids == ("BankA", "BankB")
    assert first.header_type_name == "ENDORSER_TRANSACTION"
    assert first.channel_id == "mychannel"
    assert first.chaincode_name == "cc"
    assert first.timestamp is not None
    assert first.timestamp.year == 2023
    assert first.malformed is None
    ns = first.namespace("cc")
    assert ns is not None
    assert [n.namespace for n in first.namespaces] == ["cc", "_lifecycle"]
    assert ns.reads == (Read("pub", Version(3, 1)), Read("new", None))
    assert ns.writes == (Write("pub", b"v1", False), Write("gone", b"", True))
    assert ns.metadata_writes[0].key == "pub"
    assert ns.metadata_writes[0].validation_parameter == b"\x0a\x00"
    pair = ns.collection("pair-a-b")
    assert pair is not None
    written, deleted = pair.writes
    assert written.key_hash == h(KEY.encode())
    assert written.value_hash == h(VALUE)
    assert not written.is_delete
    assert not written.is_purge
    assert deleted.is_delete
    assert deleted.value_hash == b""
    assert not deleted.is_purge

    # An invalid transaction still carries its writes; the record says it is invalid.
    assert not second.is_valid
    assert second.validation_code_name == "MVCC_READ_CONFLICT"
    assert second.hashed_writes("cc", "pair-a-b")[0].value_hash == h(b"x")

    purge = third.hashed_writes("cc", "acct-a")[0]
    assert purge.is_purge
    assert purge.is_delete
    assert purge.value_hash == b""
    coll = third.namespace("cc").collection("acct-a")  # type: ignore[union-attr]
    assert coll is not None
    assert coll.metadata_writes[0].key_hash == h(b"acct/2")
    assert coll.metadata_writes[0].entries == ((VALIDATION_PARAMETER, b"p"),)
    assert coll.metadata_writes[0].entry("other") is None


def test_blocks_decode_from_bytes_and_records_are_frozen() -> None:
    raw = block(1, sample_txs()).SerializeToString()
    decoded = decode_block(raw)
    assert decoded == decode_block(block(1, sample_txs()))
    with pytest.raises(AttributeError):
        decoded.number = 2  # type: ignore[misc]
    assert hash(decoded.transactions[0].position)


def test_a_garbage_transaction_marks_only_its_own_record() -> None:
    txs = [Tx("a"), Tx("bad", code=BAD_PAYLOAD, garbage=b"\xff\xff\xff"), Tx("c")]
    decoded = decode_block(block(2, txs))
    good, bad, last = decoded.transactions
    assert good.malformed is None
    assert last.malformed is None
    assert last.transaction_id == "c"
    assert last.tx_index == 2
    assert bad.malformed is not None
    assert "payload" in bad.malformed
    assert bad.namespaces == ()
    assert bad.validation_code_name == "BAD_PAYLOAD"
    assert bad.position == fabgateway.TxPosition(2, 1, "")


def test_a_config_transaction_has_no_write_sets() -> None:
    decoded = decode_block(block(0, [Tx("cfg", header_type="CONFIG", creator="OrdererMSP")]))
    (tx,) = decoded.transactions
    assert tx.header_type_name == "CONFIG"
    assert tx.namespaces == ()
    assert tx.malformed is None
    assert tx.creator_msp_id == "OrdererMSP"


def test_a_block_whose_filter_does_not_cover_its_transactions_is_refused() -> None:
    broken = block(3, [Tx("a"), Tx("b")])
    del broken.metadata.metadata[:]
    with pytest.raises(fabgateway.MalformedMessageError, match="transactions filter"):
        decode_block(broken)
    with pytest.raises(fabgateway.MalformedMessageError):
        decode_block(b"\xff\xff")
    with pytest.raises(TypeError):
        decode_block("not a block")


def test_decode_envelope_alone_keeps_the_given_code_and_position() -> None:
    tx = decode_envelope(envelope(Tx("solo")), block_number=-1, tx_index=-1, validation_code=POLICY)
    assert tx.transaction_id == "solo"
    assert tx.validation_code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert not tx.is_valid


# --- first valid writer -------------------------------------------------------------------


def test_the_first_valid_writer_skips_invalid_transactions_and_other_values() -> None:
    blocks = [
        decode_block(block(10, [
            Tx("invalid-first", code=MVCC, private={"pair-a-b": [PrivateOp(KEY, VALUE)]}),
            Tx("other-value", private={"pair-a-b": [PrivateOp(KEY, VALUE + b" ")]}),
            Tx("other-collection", private={"pair-b-a": [PrivateOp(KEY, VALUE)]}),
        ])),
        decode_block(block(11, [
            Tx("delete", private={"pair-a-b": [PrivateOp(KEY, None)]}),
            Tx("the-writer", private={"pair-a-b": [PrivateOp(KEY, VALUE)]}),
            Tx("rewrite-later", private={"pair-a-b": [PrivateOp(KEY, VALUE)]}),
        ])),
    ]
    found = fabgateway.first_valid_writer(blocks, "cc", "pair-a-b", KEY, VALUE)
    assert found == fabgateway.TxPosition(11, 1, "the-writer")
    assert fabgateway.first_valid_writer(blocks, "other-cc", "pair-a-b", KEY, VALUE) is None
    assert fabgateway.first_valid_writer(blocks, "cc", "pair-a-b", "xfer/T9", VALUE) is None
    # The exact bytes: the same JSON with another spacing is another value.
    respaced = b'{"amount": 100, "payee": "b"}'
    assert fabgateway.first_valid_writer(blocks, "cc", "pair-a-b", KEY, respaced) is None
    assert valid_writer_in(blocks[0], "cc", "pair-a-b", KEY, VALUE) is None


async def test_the_first_valid_writer_over_an_async_stream_stops_at_the_last_block() -> None:
    blocks = [
        decode_block(block(n, [Tx(f"t{n}", private={"c": [PrivateOp(KEY, f"v{n}".encode())]})]))
        for n in range(5)
    ]
    consumed: list[int] = []

    async def stream():  # type: ignore[no-untyped-def]
        for b in blocks:
            consumed.append(b.number)
            yield b

    found = await fabgateway.first_valid_writer_async(stream(), "cc", "c", KEY, b"v2")
    assert found == fabgateway.TxPosition(2, 0, "t2")
    assert consumed == [0, 1, 2]
    consumed.clear()
    missing = await fabgateway.first_valid_writer_async(
        stream(), "cc", "c", KEY, b"v9", last_block=3
    )
    assert missing is None
    assert consumed == [0, 1, 2, 3]


# --- private data against committed hashes -------------------------------------------------

COLLS = {("cc", "pair-a-b"), ("cc", "acct-a")}


def test_delivered_private_data_that_matches_has_no_mismatch() -> None:
    message = block_and_private_data(4, sample_txs())
    decoded = decode_block_and_private_data(message)
    assert decoded == decode_block_and_private_data(message.SerializeToString())
    assert decoded.private_data is not None
    data = decoded.private_data_of(0, "cc", "pair-a-b")
    assert data is not None
    written = data.writes[0]
    assert (written.key, written.value, written.is_delete) == (KEY, VALUE, False)
    assert written.key_hash == h(KEY.encode())
    assert written.value_hash == h(VALUE)
    assert data.writes[1].is_delete
    assert data.writes[1].value_hash == b""
    # The invalid transaction's private data is delivered too, and ignored: it never reached
    # the state (tampered with, it is still no mismatch).
    assert decoded.private_data_of(1, "cc", "pair-a-b") is not None
    assert fabgateway.private_data_mismatches(decoded, collections=COLLS) == []
    forged_invalid = block_and_private_data(
        4, sample_txs(), tamper={(1, "pair-a-b"): [PrivateOp("xfer/T2", b"other")]}
    )
    assert fabgateway.private_data_mismatches(
        decode_block_and_private_data(forged_invalid), collections=COLLS
    ) == []


def test_values_erased_by_a_later_purge_are_not_missing_once_the_purge_is_known() -> None:
    written = Tx("write", private={"acct-a": [PrivateOp("acct/9", b"balance")]})
    purge = Tx("purge", private={"acct-a": [PrivateOp("acct/9", None, purge=True)]})
    earlier = decode_block_and_private_data(
        block_and_private_data(20, [written], erased={(0, "acct-a")})
    )
    later = decode_block_and_private_data(block_and_private_data(21, [purge]))
    purged = fabgateway.purged_keys([earlier, later])
    assert purged == {("cc", "acct-a", h(b"acct/9"))}
    assert fabgateway.private_data_mismatches(earlier, collections=COLLS, purged=purged) == []
    assert fabgateway.private_data_mismatches(later, collections=COLLS, purged=purged) == []
    # Not told of the purge, the erased value is missing and its set no longer hashes right.
    problems = fabgateway.private_data_mismatches(earlier, collections=COLLS)
    assert {p.problem for p in problems} == {
        PrivateDataProblem.MISSING, PrivateDataProblem.RWSET_MISMATCH
    }
    # The purge transaction's own (erased) set is never a mismatch.
    assert fabgateway.private_data_mismatches(later, collections=COLLS) == []
    # An invalid purge purges nothing.
    failed = Tx("failed-purge", code=MVCC, private={"acct-a": [PrivateOp("x", None, purge=True)]})
    assert fabgateway.purged_keys([decode_block(block(22, [failed]))]) == frozenset()


def test_a_tampered_value_a_missing_value_and_an_extra_key_are_each_reported() -> None:
    tampered = {(0, "pair-a-b"): [PrivateOp(KEY, b"forged"), PrivateOp("old", None),
                                  PrivateOp("extra", b"e")]}
    message = block_and_private_data(4, sample_txs(), tamper=tampered)
    problems = fabgateway.private_data_mismatches(
        decode_block_and_private_data(message), collections=COLLS
    )
    kinds = {(p.problem, p.key) for p in problems}
    assert kinds == {
        (PrivateDataProblem.RWSET_MISMATCH, None),
        (PrivateDataProblem.VALUE_MISMATCH, KEY),
        (PrivateDataProblem.UNEXPECTED, "extra"),
    }
    assert {p.position.transaction_id for p in problems} == {"t-valid"}

    withheld = block_and_private_data(4, sample_txs(), withhold={(0, "pair-a-b")})
    problems = fabgateway.private_data_mismatches(
        decode_block_and_private_data(withheld), collections=COLLS
    )
    assert sorted((p.problem.value, p.key_hash) for p in problems) == sorted([
        ("missing", h(KEY.encode())), ("missing", h(b"old"))
    ])
    # A collection the caller need not hold is not missing; the purge is never missing.
    assert fabgateway.private_data_mismatches(
        decode_block_and_private_data(withheld), collections={("cc", "acct-a")}
    ) == []


def test_a_delete_delivered_as_a_value_is_a_mismatch() -> None:
    tampered = {(0, "pair-a-b"): [PrivateOp(KEY, VALUE), PrivateOp("old", b"")]}
    problems = fabgateway.private_data_mismatches(
        decode_block_and_private_data(block_and_private_data(4, sample_txs(), tamper=tampered)),
        collections=COLLS,
    )
    assert (PrivateDataProblem.VALUE_MISMATCH, "old") in {(p.problem, p.key) for p in problems}


def test_private_data_that_does_not_decode_is_malformed_not_an_exception() -> None:
    message = block_and_private_data(4, sample_txs())
    coll = message.private_data_map[0].ns_pvt_rwset[0].collection_pvt_rwset[0]
    coll.rwset = b"\xff\xff\xff"
    decoded = decode_block_and_private_data(message)
    problems = fabgateway.private_data_mismatches(decoded, collections=set())
    assert [p.problem for p in problems] == [PrivateDataProblem.MALFORMED]


def test_mismatches_need_a_block_decoded_with_its_private_data() -> None:
    with pytest.raises(ValueError, match="without its private data"):
        fabgateway.private_data_mismatches(decode_block(block(1, [])), collections=COLLS)


async def test_decoded_blocks_maps_a_deliver_stream_of_either_kind() -> None:
    plain = block(1, sample_txs())
    with_private = block_and_private_data(2, sample_txs())

    async def stream():  # type: ignore[no-untyped-def]
        yield plain
        yield with_private

    decoded = [b async for b in fabgateway.decoded_blocks(stream())]
    assert [b.number for b in decoded] == [1, 2]
    assert decoded[0].private_data is None
    assert decoded[1].private_data is not None

    async def filtered():  # type: ignore[no-untyped-def]
        yield FilteredBlock(number=3)

    with pytest.raises(TypeError):
        _ = [b async for b in fabgateway.decoded_blocks(filtered())]
