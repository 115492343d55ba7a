"""Fabric blocks built by hand from the protos, the way a peer lays them out, for the tests of
fabgateway's block decoding (independent of fabgateway: its own hashing and encoding)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    events_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)

VALID = transaction_pb2.TxValidationCode.Value("VALID")
MVCC = transaction_pb2.TxValidationCode.Value("MVCC_READ_CONFLICT")
POLICY = transaction_pb2.TxValidationCode.Value("ENDORSEMENT_POLICY_FAILURE")
BAD_PAYLOAD = transaction_pb2.TxValidationCode.Value("BAD_PAYLOAD")


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def identity(msp_id: str) -> bytes:
    return identities_pb2.SerializedIdentity(
        mspid=msp_id, id_bytes=f"-----CERT {msp_id}-----".encode()
    ).SerializeToString()


@dataclass
class PrivateOp:
    """A private write (value), delete (value None) or purge in one collection."""

    key: str
    value: bytes | None
    purge: bool = False
    metadata: dict[str, bytes] | None = None  # a metadata write of this key instead


@dataclass
class Tx:
    tx_id: str
    code: int = VALID
    creator: str = "Org1MSP"
    endorsers: tuple[str, ...] = ("Org1MSP",)
    chaincode: str = "cc"
    public: list[tuple[str, bytes | None]] = field(default_factory=list)
    public_metadata: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)
    reads: list[tuple[str, tuple[int, int] | None]] = field(default_factory=list)
    private: dict[str, list[PrivateOp]] = field(default_factory=dict)  # collection -> ops
    garbage: bytes | None = None  # the envelope's payload instead of a real one
    header_type: str = "ENDORSER_TRANSACTION"
    # the chaincode event the endorser put in the action: (chaincode id, name, payload)
    event: tuple[str, str, bytes] | None = None
    also_writes: tuple[str, ...] = ()  # further namespaces written (chaincode-to-chaincode)
    # private writes in further namespaces (chaincode-to-chaincode): namespace -> collection -> ops
    private_in: dict[str, dict[str, list[PrivateOp]]] = field(default_factory=dict)

    def private_by_namespace(self) -> dict[str, dict[str, list[PrivateOp]]]:
        """Every private write, by namespace (``chaincode`` first)."""
        out = {self.chaincode: self.private} if self.private else {}
        for namespace, writes in self.private_in.items():
            out.setdefault(namespace, {}).update(writes)
        return out


def private_rwset(ops: list[PrivateOp]) -> bytes:
    kv = kv_rwset_pb2.KVRWSet()
    for op in ops:
        if op.metadata is not None:
            continue
        kv.writes.add(key=op.key, is_delete=op.value is None, value=op.value or b"")
    return kv.SerializeToString()


def hashed_rwset(ops: list[PrivateOp]) -> bytes:
    hashed = kv_rwset_pb2.HashedRWSet()
    for op in ops:
        if op.metadata is not None:
            entry = hashed.metadata_writes.add(key_hash=sha(op.key.encode()))
            for name, value in op.metadata.items():
                entry.entries.add(name=name, value=value)
            continue
        hashed.hashed_writes.add(
            key_hash=sha(op.key.encode()),
            is_delete=op.value is None,
            value_hash=b"" if op.value is None else sha(op.value),
            is_purge=op.purge,
        )
    return hashed.SerializeToString()


def _hashed_collections(
    ns: rwset_pb2.NsReadWriteSet, private: dict[str, list[PrivateOp]]
) -> None:
    for collection, ops in private.items():
        ns.collection_hashed_rwset.add(
            collection_name=collection,
            hashed_rwset=hashed_rwset(ops),
            pvt_rwset_hash=sha(private_rwset(ops)),
        )


def _results(tx: Tx) -> bytes:
    kv = kv_rwset_pb2.KVRWSet()
    for key, version in tx.reads:
        read = kv.reads.add(key=key)
        if version is not None:
            read.version.block_num, read.version.tx_num = version
    for key, value in tx.public:
        kv.writes.add(key=key, is_delete=value is None, value=value or b"")
    for key, entries in tx.public_metadata:
        entry = kv.metadata_writes.add(key=key)
        for name, value in entries.items():
            entry.entries.add(name=name, value=value)
    ns = rwset_pb2.NsReadWriteSet(namespace=tx.chaincode, rwset=kv.SerializeToString())
    _hashed_collections(ns, tx.private)
    others = []
    for name, writes in tx.private_in.items():
        other = rwset_pb2.NsReadWriteSet(
            namespace=name, rwset=kv_rwset_pb2.KVRWSet().SerializeToString())
        _hashed_collections(other, writes)
        others.append(other)
    others += [
        rwset_pb2.NsReadWriteSet(namespace=name, rwset=kv_rwset_pb2.KVRWSet().SerializeToString())
        for name in (*tx.also_writes, "_lifecycle")
    ]
    return rwset_pb2.TxReadWriteSet(
        data_model=rwset_pb2.TxReadWriteSet.KV, ns_rwset=[ns, *others]
    ).SerializeToString()


def envelope(tx: Tx, channel: str = "mychannel") -> bytes:
    if tx.garbage is not None:
        return common_pb2.Envelope(payload=tx.garbage, signature=b"sig").SerializeToString()
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.Value(tx.header_type), channel_id=channel, tx_id=tx.tx_id
    )
    channel_header.timestamp.seconds = 1_700_000_000
    signature_header = common_pb2.SignatureHeader(creator=identity(tx.creator), nonce=b"n")
    events = b""
    if tx.event is not None:
        chaincode_id, name, event_payload = tx.event
        events = chaincode_event_pb2.ChaincodeEvent(
            chaincode_id=chaincode_id, tx_id=tx.tx_id, event_name=name, payload=event_payload
        ).SerializeToString()
    action = proposal_pb2.ChaincodeAction(
        results=_results(tx),
        events=events,
        chaincode_id=chaincode_pb2.ChaincodeID(name=tx.chaincode, version="1"),
    )
    response_payload = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=b"h", extension=action.SerializeToString()
    )
    endorsed = transaction_pb2.ChaincodeEndorsedAction(
        proposal_response_payload=response_payload.SerializeToString(),
        endorsements=[
            proposal_response_pb2.Endorsement(endorser=identity(msp), signature=b"s")
            for msp in tx.endorsers
        ],
    )
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=b"", action=endorsed
    )
    transaction = transaction_pb2.Transaction(
        actions=[
            transaction_pb2.TransactionAction(
                header=signature_header.SerializeToString(),
                payload=action_payload.SerializeToString(),
            )
        ]
    )
    data = transaction.SerializeToString() if tx.header_type == "ENDORSER_TRANSACTION" else b"cfg"
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ),
        data=data,
    )
    signed = common_pb2.Envelope(payload=payload.SerializeToString(), signature=b"sig")
    return signed.SerializeToString()


def block(number: int, txs: list[Tx]) -> common_pb2.Block:
    built = common_pb2.Block()
    built.header.number = number
    built.header.previous_hash = sha(f"block {number - 1}".encode())
    built.header.data_hash = sha(f"data {number}".encode())
    built.data.data.extend(envelope(tx) for tx in txs)
    metadata = [b""] * 5
    metadata[common_pb2.BlockMetadataIndex.Value("TRANSACTIONS_FILTER")] = bytes(
        tx.code for tx in txs
    )
    built.metadata.metadata.extend(metadata)
    return built


def block_and_private_data(
    number: int,
    txs: list[Tx],
    *,
    withhold: Collection[tuple[int, str]] = (),
    tamper: dict[tuple[int, str], list[PrivateOp]] | None = None,
    erased: Collection[tuple[int, str]] = (),
) -> events_pb2.BlockAndPrivateData:
    """The block with its private data, as a Fabric v3.1.1 peer's Deliver sends it: invalid
    transactions' too; an empty read-write set where a purge erased the values.

    ``withhold`` leaves (tx index, collection) out; ``tamper`` delivers other ops there;
    ``erased`` delivers an empty set there (a later purge erased that key).
    """
    message = events_pb2.BlockAndPrivateData(block=block(number, txs))
    for index, tx in enumerate(txs):
        if not tx.private and not tx.private_in:
            continue
        pvt = rwset_pb2.TxPvtReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.KV)
        for namespace, private in tx.private_by_namespace().items():
            ns = pvt.ns_pvt_rwset.add(namespace=namespace)
            for collection, ops in private.items():
                if (index, collection) in withhold:
                    continue
                delivered = (tamper or {}).get((index, collection), ops)
                purging = any(op.purge for op in ops)
                rwset = (b"" if purging or (index, collection) in erased
                         else private_rwset(delivered))
                ns.collection_pvt_rwset.add(collection_name=collection, rwset=rwset)
        message.private_data_map[index].CopyFrom(pvt)
    return message
