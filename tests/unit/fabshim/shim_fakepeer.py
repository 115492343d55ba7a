"""An in-process fake peer: dials the chaincode server and speaks the shim protocol.

It plays the peer's side of ``Chaincode.Connect`` over a real gRPC stream: it answers
REGISTER with REGISTERED and READY (with ``ChaincodeAdditionalParams`` when asked), sends
INIT/TRANSACTION messages with a signed proposal, serves every request type from an
in-memory ledger with Fabric's simulator rules, and commits a transaction's writes when it
COMPLETES with a status below 400. It records every message the chaincode sent, and a
protocol violation when two requests of one transaction overlap (the real peer drops the
second one, which would hang the chaincode).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
from fabric_protos.ledger.queryresult import kv_query_result_pb2 as kvpb
from fabric_protos.peer import chaincode_pb2 as ccpb
from fabric_protos.peer import chaincode_shim_pb2 as shimpb
from fabric_protos.peer import chaincode_shim_pb2_grpc as shimgrpc
from fabric_protos.peer import proposal_response_pb2 as prpb
from fabshim.testing import (
    LEVELDB_RICH_QUERY_ERROR,
    LEVELDB_RICH_QUERY_PAGED_ERROR,
    build_signed_proposal,
    range_page,
    rich_query_page,
)
from google.protobuf.timestamp_pb2 import Timestamp

CCM = shimpb.ChaincodeMessage
T = CCM.Type


def type_name(value: int) -> str:
    return T.Name(value)


class PeerRefusal(Exception):
    """Raised inside a request handler: becomes an ERROR answer."""


@dataclass
class TxResult:
    """The chaincode's final message for one transaction."""

    message: Any

    @property
    def completed(self) -> bool:
        return self.message.type == T.Value("COMPLETED")

    @property
    def response(self) -> Any:
        assert self.completed, f"expected COMPLETED, got {type_name(self.message.type)}"
        return prpb.Response.FromString(self.message.payload)

    @property
    def status(self) -> int:
        return int(self.response.status)

    @property
    def payload(self) -> bytes:
        return bytes(self.response.payload)

    @property
    def error_text(self) -> str:
        if self.completed:
            return str(self.response.message)
        return bytes(self.message.payload).decode()

    @property
    def event(self) -> tuple[str, bytes] | None:
        if not self.message.HasField("chaincode_event"):
            return None
        ev = self.message.chaincode_event
        return ev.event_name, bytes(ev.payload)


@dataclass
class _QueryContext:
    results: list[bytes]
    batch: int


@dataclass
class _Tx:
    channel_id: str
    tx_id: str
    is_init: bool
    timestamp: datetime
    done: asyncio.Future[Any]
    writes: dict[tuple[str, str], bytes | None] = field(default_factory=dict)
    metadata_writes: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    write_performed: bool = False
    pvt_query_performed: bool = False
    paginated_query_performed: bool = False
    in_flight: bool = False
    queries: dict[str, _QueryContext] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


InvokeHandler = Callable[[list[bytes]], Any]


class FakePeer:
    """See the module docstring. ``state[collection][key]``; collection "" is public."""

    def __init__(
        self,
        *,
        use_write_batch: bool = False,
        max_size_write_batch: int = 0,
        use_get_multiple_keys: bool = False,
        max_size_get_multiple_keys: int = 0,
        ready_payload: bytes | None = None,
        max_result_limit: int = 3,
        couchdb: bool = False,
        request_delay: float = 0.0,
    ) -> None:
        if ready_payload is None and (use_write_batch or use_get_multiple_keys):
            ready_payload = ccpb.ChaincodeAdditionalParams(
                use_write_batch=use_write_batch,
                max_size_write_batch=max_size_write_batch,
                use_get_multiple_keys=use_get_multiple_keys,
                max_size_get_multiple_keys=max_size_get_multiple_keys,
            ).SerializeToString()
        self.ready_payload = ready_payload or b""
        self.max_result_limit = max_result_limit
        self.couchdb = couchdb
        self.request_delay = request_delay
        self.state: dict[str, dict[str, bytes]] = {"": {}}
        self.metadata: dict[tuple[str, str], dict[str, bytes]] = {}
        self.history: dict[str, list[Any]] = {}
        self.received: list[Any] = []
        self.violations: list[str] = []
        self.keepalive_replies = 0
        self.registered_name = ""
        self.chaincodes: dict[str, InvokeHandler] = {}
        self.refusals: dict[str, str] = {}
        """Request type -> text: answer that request type with ERROR."""
        self._txs: dict[tuple[str, str], _Tx] = {}
        self._ids = itertools.count(1)
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.stream_ended = asyncio.Event()
        self.keepalive_seen = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def connect(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        *,
        handshake: bool = True,
    ) -> None:
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=list(options))
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=list(options))
        self._call = shimgrpc.ChaincodeStub(self._channel).Connect()
        first = await asyncio.wait_for(self._call.read(), 5)
        assert first.type == T.Value("REGISTER"), type_name(first.type)
        self.received.append(first)
        self.registered_name = ccpb.ChaincodeID.FromString(first.payload).name
        if handshake:
            await self.send(CCM(type=T.Value("REGISTERED")))
            await self.send(CCM(type=T.Value("READY"), payload=self.ready_payload))
            self._reader = asyncio.create_task(self._read_loop())

    def start_reader(self) -> None:
        self._reader = asyncio.create_task(self._read_loop())

    async def send(self, message: Any) -> None:
        async with self._write_lock:
            await self._call.write(message)

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()

    # ------------------------------------------------------------------ transactions

    def new_tx_id(self) -> str:
        return hashlib.sha256(f"fake-peer-tx-{next(self._ids)}".encode()).hexdigest()

    async def execute(
        self,
        *args: str | bytes,
        tx_id: str | None = None,
        channel_id: str = "testchannel",
        transient: Mapping[str, bytes] | None = None,
        creator: bytes = b"",
        timestamp: datetime | None = None,
        init: bool = False,
        wait: float = 5.0,
    ) -> TxResult:
        """Send one INIT/TRANSACTION and wait for the chaincode's final message."""
        tx = self.begin(
            *args,
            tx_id=tx_id,
            channel_id=channel_id,
            transient=transient,
            creator=creator,
            timestamp=timestamp,
            init=init,
        )
        await self.send(tx[1])
        message = await asyncio.wait_for(tx[0].done, wait)
        return TxResult(message)

    def begin(
        self,
        *args: str | bytes,
        tx_id: str | None = None,
        channel_id: str = "testchannel",
        transient: Mapping[str, bytes] | None = None,
        creator: bytes = b"",
        timestamp: datetime | None = None,
        init: bool = False,
    ) -> tuple[_Tx, Any]:
        """Register a transaction context and build its message (not sent yet)."""
        tx_id = tx_id or self.new_tx_id()
        when = timestamp or datetime.now(UTC)
        raw_args = [a.encode() if isinstance(a, str) else a for a in args]
        proposal = build_signed_proposal(
            channel_id=channel_id,
            tx_id=tx_id,
            creator=creator,
            args=raw_args,
            transient=transient,
            timestamp=when,
        )
        tx = _Tx(
            channel_id=channel_id,
            tx_id=tx_id,
            is_init=init,
            timestamp=when,
            done=asyncio.get_running_loop().create_future(),
        )
        self._txs[(channel_id, tx_id)] = tx
        message = CCM(
            type=T.Value("INIT" if init else "TRANSACTION"),
            payload=ccpb.ChaincodeInput(args=raw_args).SerializeToString(),
            txid=tx_id,
            channel_id=channel_id,
            proposal=proposal,
        )
        return tx, message

    def expect(self, tx_id: str, channel_id: str = "testchannel") -> _Tx:
        """Register a context to receive a transaction's (next) final message."""
        tx = _Tx(
            channel_id=channel_id,
            tx_id=tx_id,
            is_init=False,
            timestamp=datetime.now(UTC),
            done=asyncio.get_running_loop().create_future(),
        )
        self._txs[(channel_id, tx_id)] = tx
        return tx

    def requests_of(self, tx_id: str, channel_id: str = "testchannel") -> list[str]:
        return [
            type_name(m.type)
            for m in self.received
            if m.txid == tx_id
            and m.channel_id == channel_id
            and type_name(m.type) not in ("COMPLETED", "ERROR")
        ]

    # ------------------------------------------------------------------ receive loop

    async def _read_loop(self) -> None:
        try:
            while True:
                message = await self._call.read()
                if message is grpc.aio.EOF:
                    return
                self.received.append(message)
                name = type_name(message.type)
                if name == "KEEPALIVE":
                    self.keepalive_replies += 1
                    self.keepalive_seen.set()
                    continue
                tx = self._txs.get((message.channel_id, message.txid))
                if name in ("COMPLETED", "ERROR"):
                    if tx is None:
                        self.violations.append(f"{name} for unknown transaction")
                        continue
                    if name == "COMPLETED":
                        response = prpb.Response.FromString(message.payload)
                        if response.status < 400:
                            self._commit(tx)
                    self._txs.pop((tx.channel_id, tx.tx_id), None)
                    if not tx.done.done():
                        tx.done.set_result(message)
                    continue
                if tx is None:
                    await self._answer_error(message, "no ledger context")
                    continue
                if tx.in_flight:
                    self.violations.append(f"overlapping request {name} for {tx.tx_id[:8]}")
                    continue
                tx.in_flight = True
                tx.requests.append(name)
                task = asyncio.create_task(self._serve(tx, message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except grpc.aio.AioRpcError:
            return
        finally:
            self.stream_ended.set()
            for tx in self._txs.values():
                if not tx.done.done():
                    tx.done.set_exception(ConnectionError("stream ended"))

    async def _serve(self, tx: _Tx, message: Any) -> None:
        if self.request_delay:
            await asyncio.sleep(self.request_delay)
        name = type_name(message.type)
        try:
            payload = self._handle(tx, name, bytes(message.payload))
            reply = CCM(
                type=T.Value("RESPONSE"),
                payload=payload,
                txid=message.txid,
                channel_id=message.channel_id,
            )
        except PeerRefusal as exc:
            reply = CCM(
                type=T.Value("ERROR"),
                payload=f"{name} failed: transaction ID: {tx.tx_id}: {exc}".encode(),
                txid=message.txid,
                channel_id=message.channel_id,
            )
        tx.in_flight = False
        await self.send(reply)

    async def _answer_error(self, message: Any, text: str) -> None:
        name = type_name(message.type)
        await self.send(
            CCM(
                type=T.Value("ERROR"),
                payload=f"{name} failed: transaction ID: {message.txid}: {text}".encode(),
                txid=message.txid,
                channel_id=message.channel_id,
            )
        )

    # ------------------------------------------------------------------ requests

    def _handle(self, tx: _Tx, name: str, payload: bytes) -> bytes:
        if name in self.refusals:
            raise PeerRefusal(self.refusals[name])
        handler = getattr(self, f"_do_{name.lower()}", None)
        if handler is None:
            raise PeerRefusal(f"unsupported request {name}")
        result: bytes = handler(tx, payload)
        return result

    def _check_pvt(self, tx: _Tx, collection: str) -> None:
        if collection and tx.is_init:
            raise PeerRefusal("private data APIs are not allowed in chaincode Init()")

    def _check_write(self, tx: _Tx, collection: str) -> None:
        self._check_pvt(tx, collection)
        prefix = f"txid [{tx.tx_id}]: unsuppored transaction. "
        if tx.pvt_query_performed:
            raise PeerRefusal(
                prefix + "Transaction has already performed queries on pvt data. "
                "Writes are not allowed"
            )
        if tx.paginated_query_performed:
            raise PeerRefusal(
                prefix + "Transaction has already performed a paginated query. "
                "Writes are not allowed"
            )
        tx.write_performed = True

    def _before_read_only_query(self, tx: _Tx, paginated: bool) -> None:
        if tx.write_performed:
            kind = "Paginated queries are" if paginated else "Queries on pvt data is"
            raise PeerRefusal(
                f"txid [{tx.tx_id}]: unsuppored transaction. {kind} supported only in a "
                "read-only transaction"
            )
        if paginated:
            tx.paginated_query_performed = True
        else:
            tx.pvt_query_performed = True

    def _get(self, collection: str, key: str) -> bytes:
        return self.state.get(collection, {}).get(key, b"")

    def _do_get_state(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.GetState.FromString(payload)
        self._check_pvt(tx, request.collection)
        return self._get(request.collection, request.key)

    def _do_get_state_multiple(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.GetStateMultiple.FromString(payload)
        self._check_pvt(tx, request.collection)
        values = [self._get(request.collection, key) for key in request.keys]
        return shimpb.GetStateMultipleResult(values=values).SerializeToString()

    def _do_get_private_data_hash(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.GetState.FromString(payload)
        self._check_pvt(tx, request.collection)
        value = self._get(request.collection, request.key)
        return hashlib.sha256(value).digest() if value else b""

    def _do_put_state(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.PutState.FromString(payload)
        self._write(tx, request.collection, request.key, bytes(request.value))
        return b""

    def _do_del_state(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.DelState.FromString(payload)
        self._write(tx, request.collection, request.key, b"")
        return b""

    def _do_purge_private_data(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.DelState.FromString(payload)
        if not request.collection:
            raise PeerRefusal("only private data can be purged")
        self._write(tx, request.collection, request.key, b"")
        return b""

    def _write(self, tx: _Tx, collection: str, key: str, value: bytes) -> None:
        self._check_write(tx, collection)
        tx.writes[(collection, key)] = value or None

    def _do_put_state_metadata(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.PutStateMetadata.FromString(payload)
        self._check_write(tx, request.collection)
        tx.metadata_writes[(request.collection, request.key)] = {
            request.metadata.metakey: bytes(request.metadata.value)
        }
        return b""

    def _do_write_batch_state(self, tx: _Tx, payload: bytes) -> bytes:
        batch = shimpb.WriteBatchState.FromString(payload)
        kinds = shimpb.WriteRecord.Type
        for record in batch.rec:
            kind = kinds.Name(record.type)
            if kind == "PUT_STATE":
                self._write(tx, record.collection, record.key, bytes(record.value))
            elif kind in ("DEL_STATE", "PURGE_PRIVATE_DATA"):
                self._write(tx, record.collection, record.key, b"")
            elif kind == "PUT_STATE_METADATA":
                self._check_write(tx, record.collection)
                tx.metadata_writes[(record.collection, record.key)] = {
                    record.metadata.metakey: bytes(record.metadata.value)
                }
            else:
                raise PeerRefusal("unknown operation type")
        return b""

    def _do_get_state_metadata(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.GetStateMetadata.FromString(payload)
        self._check_pvt(tx, request.collection)
        metadata = self.metadata.get((request.collection, request.key), {})
        entries = [shimpb.StateMetadata(metakey=k, value=v) for k, v in sorted(metadata.items())]
        return shimpb.StateMetadataResult(entries=entries).SerializeToString()

    def _do_get_state_by_range(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.GetStateByRange.FromString(payload)
        collection = request.collection
        self._check_pvt(tx, collection)
        meta = shimpb.QueryMetadata.FromString(request.metadata) if request.metadata else None
        paginated = meta is not None and meta.pageSize > 0 and not collection
        if collection:
            self._before_read_only_query(tx, paginated=False)
        elif paginated:
            self._before_read_only_query(tx, paginated=True)
        entries = self.state.get(collection, {})
        keys, bookmark = range_page(
            entries,
            request.startKey,
            request.endKey,
            meta.pageSize if paginated and meta is not None else None,
            meta.bookmark if paginated and meta is not None else "",
        )
        results = [
            kvpb.KV(namespace="cc", key=k, value=entries[k]).SerializeToString() for k in keys
        ]
        return self._query_response(tx, results, paginated, bookmark)

    def _do_get_query_result(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.GetQueryResult.FromString(payload)
        collection = request.collection
        self._check_pvt(tx, collection)
        meta = shimpb.QueryMetadata.FromString(request.metadata) if request.metadata else None
        paginated = meta is not None and meta.pageSize > 0
        if collection:
            self._before_read_only_query(tx, paginated=False)
        elif paginated:
            self._before_read_only_query(tx, paginated=True)
        if not self.couchdb:
            raise PeerRefusal(
                LEVELDB_RICH_QUERY_PAGED_ERROR if paginated else LEVELDB_RICH_QUERY_ERROR
            )
        entries = self.state.get(collection, {})
        try:
            keys, bookmark = rich_query_page(
                entries,
                request.query,
                meta.pageSize if paginated and meta is not None else None,
                meta.bookmark if paginated and meta is not None else "",
            )
        except ValueError as exc:
            raise PeerRefusal(str(exc)) from exc
        results = [
            kvpb.KV(namespace="cc", key=k, value=entries[k]).SerializeToString() for k in keys
        ]
        return self._query_response(tx, results, paginated, bookmark)

    def _do_get_history_for_key(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.GetHistoryForKey.FromString(payload)
        mods = list(reversed(self.history.get(request.key, [])))
        results = [m.SerializeToString() for m in mods]
        return self._query_response(tx, results, False, "")

    def _query_response(
        self, tx: _Tx, results: list[bytes], paginated: bool, bookmark: str
    ) -> bytes:
        query_id = f"q{next(self._ids)}"
        if paginated:
            metadata = shimpb.QueryResponseMetadata(
                fetched_records_count=len(results), bookmark=bookmark
            ).SerializeToString()
            return shimpb.QueryResponse(
                results=[shimpb.QueryResultBytes(resultBytes=r) for r in results],
                has_more=False,
                id=query_id,
                metadata=metadata,
            ).SerializeToString()
        context = _QueryContext(results=results, batch=self.max_result_limit)
        tx.queries[query_id] = context
        return self._next_batch(tx, query_id)

    def _next_batch(self, tx: _Tx, query_id: str) -> bytes:
        context = tx.queries.get(query_id)
        if context is None:
            raise PeerRefusal(f"query iterator not found: {query_id}")
        batch, context.results = context.results[: context.batch], context.results[context.batch :]
        has_more = bool(context.results)
        if not has_more:
            del tx.queries[query_id]
        return shimpb.QueryResponse(
            results=[shimpb.QueryResultBytes(resultBytes=r) for r in batch],
            has_more=has_more,
            id=query_id,
        ).SerializeToString()

    def _do_query_state_next(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.QueryStateNext.FromString(payload)
        return self._next_batch(tx, request.id)

    def _do_query_state_close(self, tx: _Tx, payload: bytes) -> bytes:
        request = shimpb.QueryStateClose.FromString(payload)
        tx.queries.pop(request.id, None)
        return shimpb.QueryResponse(has_more=False, id=request.id).SerializeToString()

    def _do_invoke_chaincode(self, tx: _Tx, payload: bytes) -> bytes:
        spec = ccpb.ChaincodeSpec.FromString(payload)
        handler = self.chaincodes.get(spec.chaincode_id.name)
        if handler is None:
            raise PeerRefusal(f"chaincode {spec.chaincode_id.name} not found")
        inner = handler(list(spec.input.args))
        return bytes(inner.SerializeToString())

    # ------------------------------------------------------------------ commit

    def _commit(self, tx: _Tx) -> None:
        stamp = Timestamp()
        stamp.FromDatetime(tx.timestamp)
        for (collection, key), value in tx.writes.items():
            space = self.state.setdefault(collection, {})
            if value is None:
                space.pop(key, None)
                self.metadata.pop((collection, key), None)
            else:
                space[key] = value
            if not collection:
                self.history.setdefault(key, []).append(
                    kvpb.KeyModification(
                        tx_id=tx.tx_id, value=value or b"", timestamp=stamp, is_delete=value is None
                    )
                )
        for (collection, key), metadata in tx.metadata_writes.items():
            if key in self.state.get(collection, {}):
                self.metadata[(collection, key)] = dict(metadata)


def completed(response_status: int = 200, payload: bytes = b"", message: str = "") -> Any:
    """An INVOKE_CHAINCODE answer: the called chaincode COMPLETED with this response."""
    return CCM(
        type=T.Value("COMPLETED"),
        payload=prpb.Response(
            status=response_status, payload=payload, message=message
        ).SerializeToString(),
    )


def errored(text: str) -> Any:
    """An INVOKE_CHAINCODE answer: the called chaincode failed with ERROR."""
    return CCM(type=T.Value("ERROR"), payload=text.encode())
