"""shim_probe: a contract exposing every stub call, for integration tests on a real peer.

Deploy it as a chaincode-as-a-service and serve it with::

    PYTHONPATH=tests/chaincodes python -m fabshim serve shim_probe:chaincode

Every transaction is a thin wrapper over one stub call (or a few, for batching). Values
are UTF-8 text; private values travel in the transient map under ``"value"`` (or one
transient entry per key for ``put_private_states``), never in arguments. Results are JSON;
bytes that are not text come back as ``{"hex": ...}``.
"""

from __future__ import annotations

from typing import Any, Literal

from fabcontract import Context, Contract, ContractChaincode, transaction
from fabshim import (
    ClientIdentity,
    KeyEndorsementPolicy,
    QueryResponseMetadata,
    StateQueryIterator,
)


def _text(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": value.hex()}


async def _kvs(iterator: StateQueryIterator) -> list[dict[str, Any]]:
    async with iterator:
        return [{"key": kv.key, "value": _text(kv.value)} async for kv in iterator]


async def _page(
    found: tuple[StateQueryIterator, QueryResponseMetadata],
) -> dict[str, Any]:
    iterator, metadata = found
    return {
        "results": await _kvs(iterator),
        "fetched_records_count": metadata.fetched_records_count,
        "bookmark": metadata.bookmark,
    }


def _policy_orgs(policy: bytes | None) -> list[str] | None:
    return None if policy is None else KeyEndorsementPolicy(policy).list_orgs()


def _transient_value(ctx: Context) -> bytes:
    value = ctx.transient.get("value")
    if value is None:
        raise ValueError("MISSING_TRANSIENT: put the value in the transient map under 'value'")
    return value


class ShimProbe(Contract):
    """Thin wrappers over every ChaincodeStub call."""

    # ------------------------------------------------------------------ public state

    @transaction()
    async def put_state(self, ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value.encode())

    @transaction()
    async def put_states(self, ctx: Context, entries: dict[str, str]) -> int:
        """Write many keys in one transaction (write batching when the peer offers it)."""
        for key, value in entries.items():
            await ctx.stub.put_state(key, value.encode())
        return len(entries)

    @transaction(evaluate=True)
    async def get_state(self, ctx: Context, key: str) -> Any:
        return _text(await ctx.stub.get_state(key))

    @transaction()
    async def del_state(self, ctx: Context, key: str) -> None:
        await ctx.stub.del_state(key)

    @transaction(evaluate=True)
    async def get_multiple_states(self, ctx: Context, keys: list[str]) -> list[Any]:
        return [_text(v) for v in await ctx.stub.get_multiple_states(keys)]

    @transaction(evaluate=True)
    async def get_state_by_range(self, ctx: Context, start: str, end: str) -> list[Any]:
        return await _kvs(await ctx.stub.get_state_by_range(start, end))

    @transaction(evaluate=True)
    async def get_state_by_range_head(
        self, ctx: Context, start: str, end: str, count: int
    ) -> list[Any]:
        """The first ``count`` results only: the iterator is closed early (QUERY_STATE_CLOSE
        when the peer still holds more)."""
        head: list[Any] = []
        async with await ctx.stub.get_state_by_range(start, end) as iterator:
            async for kv in iterator:
                if len(head) == count:
                    break
                head.append({"key": kv.key, "value": _text(kv.value)})
        return head

    @transaction(evaluate=True)
    async def get_state_by_range_with_pagination(
        self, ctx: Context, start: str, end: str, page_size: int, bookmark: str = ""
    ) -> dict[str, Any]:
        return await _page(
            await ctx.stub.get_state_by_range_with_pagination(start, end, page_size, bookmark)
        )

    # ------------------------------------------------------------------ composite keys

    @transaction()
    async def put_composite(
        self, ctx: Context, object_type: str, attributes: list[str], value: str
    ) -> str:
        key = ctx.stub.create_composite_key(object_type, attributes)
        await ctx.stub.put_state(key, value.encode())
        return key

    @transaction(evaluate=True)
    async def split_composite_key(self, ctx: Context, key: str) -> dict[str, Any]:
        object_type, attributes = ctx.stub.split_composite_key(key)
        return {"object_type": object_type, "attributes": attributes}

    @transaction(evaluate=True)
    async def get_state_by_partial_composite_key(
        self, ctx: Context, object_type: str, attributes: list[str]
    ) -> list[Any]:
        return await _kvs(
            await ctx.stub.get_state_by_partial_composite_key(object_type, attributes)
        )

    @transaction(evaluate=True)
    async def get_state_by_partial_composite_key_with_pagination(
        self,
        ctx: Context,
        object_type: str,
        attributes: list[str],
        page_size: int,
        bookmark: str = "",
    ) -> dict[str, Any]:
        return await _page(
            await ctx.stub.get_state_by_partial_composite_key_with_pagination(
                object_type, attributes, page_size, bookmark
            )
        )

    # ------------------------------------------------------------------ history, rich queries

    @transaction(evaluate=True)
    async def get_history_for_key(self, ctx: Context, key: str) -> list[Any]:
        async with await ctx.stub.get_history_for_key(key) as iterator:
            return [
                {
                    "tx_id": m.tx_id,
                    "value": _text(m.value),
                    "is_delete": m.is_delete,
                    "timestamp": m.timestamp.isoformat() if m.timestamp else None,
                }
                async for m in iterator
            ]

    @transaction(evaluate=True)
    async def get_query_result(self, ctx: Context, query: str) -> list[Any]:
        return await _kvs(await ctx.stub.get_query_result(query))

    @transaction(evaluate=True)
    async def get_query_result_with_pagination(
        self, ctx: Context, query: str, page_size: int, bookmark: str = ""
    ) -> dict[str, Any]:
        return await _page(
            await ctx.stub.get_query_result_with_pagination(query, page_size, bookmark)
        )

    # ------------------------------------------------------------------ private data

    @transaction()
    async def put_private_data(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.put_private_data(collection, key, _transient_value(ctx))

    @transaction()
    async def put_private_states(self, ctx: Context, collection: str) -> int:
        """Write every transient entry as a private key/value (batched when offered)."""
        transient = ctx.transient
        for key in sorted(transient):
            await ctx.stub.put_private_data(collection, key, transient[key])
        return len(transient)

    @transaction(evaluate=True)
    async def get_private_data(self, ctx: Context, collection: str, key: str) -> Any:
        return _text(await ctx.stub.get_private_data(collection, key))

    @transaction(evaluate=True)
    async def get_multiple_private_data(
        self, ctx: Context, collection: str, keys: list[str]
    ) -> list[Any]:
        return [_text(v) for v in await ctx.stub.get_multiple_private_data(collection, keys)]

    @transaction()
    async def del_private_data(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.del_private_data(collection, key)

    @transaction()
    async def purge_private_data(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.purge_private_data(collection, key)

    @transaction(evaluate=True)
    async def get_private_data_hash(self, ctx: Context, collection: str, key: str) -> Any:
        digest = await ctx.stub.get_private_data_hash(collection, key)
        return None if digest is None else digest.hex()

    @transaction(evaluate=True)
    async def get_private_data_by_range(
        self, ctx: Context, collection: str, start: str, end: str
    ) -> list[Any]:
        return await _kvs(await ctx.stub.get_private_data_by_range(collection, start, end))

    @transaction(evaluate=True)
    async def get_private_data_by_partial_composite_key(
        self, ctx: Context, collection: str, object_type: str, attributes: list[str]
    ) -> list[Any]:
        return await _kvs(
            await ctx.stub.get_private_data_by_partial_composite_key(
                collection, object_type, attributes
            )
        )

    @transaction(evaluate=True)
    async def get_private_data_query_result(
        self, ctx: Context, collection: str, query: str
    ) -> list[Any]:
        return await _kvs(await ctx.stub.get_private_data_query_result(collection, query))

    @transaction()
    async def write_and_query(
        self,
        ctx: Context,
        order: Literal["write-first", "query-first"],
        query: Literal["private-range", "paginated"],
        collection: str,
        key: str,
        value: str,
    ) -> int:
        """A public write and a read-only-making query in one transaction, in either order.

        Fabric refuses both orders: such a query after a write, and a write after it.
        """

        async def run_query() -> int:
            if query == "private-range":
                found = await _kvs(await ctx.stub.get_private_data_by_range(collection, "", ""))
            else:
                found = (await _page(await ctx.stub.get_state_by_range_with_pagination("", "", 1)))[
                    "results"
                ]
            return len(found)

        if order == "write-first":
            await ctx.stub.put_state(key, value.encode())
            return await run_query()
        count = await run_query()
        await ctx.stub.put_state(key, value.encode())
        return count

    # ------------------------------------------------------------------ key-level endorsement

    @transaction()
    async def set_key_endorsement(
        self, ctx: Context, key: str, msp_ids: list[str], role: str = "PEER"
    ) -> None:
        policy = KeyEndorsementPolicy()
        policy.add_orgs(role, *msp_ids)
        await ctx.stub.set_state_validation_parameter(key, policy.policy())

    @transaction(evaluate=True)
    async def get_key_endorsement(self, ctx: Context, key: str) -> list[str] | None:
        return _policy_orgs(await ctx.stub.get_state_validation_parameter(key))

    @transaction()
    async def set_private_key_endorsement(
        self, ctx: Context, collection: str, key: str, msp_ids: list[str], role: str = "PEER"
    ) -> None:
        policy = KeyEndorsementPolicy()
        policy.add_orgs(role, *msp_ids)
        await ctx.stub.set_private_data_validation_parameter(collection, key, policy.policy())

    @transaction(evaluate=True)
    async def get_private_key_endorsement(
        self, ctx: Context, collection: str, key: str
    ) -> list[str] | None:
        return _policy_orgs(await ctx.stub.get_private_data_validation_parameter(collection, key))

    # ------------------------------------------------------------------ events, calls, identity

    @transaction()
    async def set_event(self, ctx: Context, name: str, payload: str) -> None:
        ctx.stub.set_event(name, payload.encode())

    @transaction()
    async def invoke_chaincode(
        self, ctx: Context, name: str, args: list[str], channel: str = ""
    ) -> dict[str, Any]:
        response = await ctx.stub.invoke_chaincode(name, args, channel)
        return {"status": response.status, "payload": _text(response.payload)}

    @transaction(evaluate=True)
    async def whoami(self, ctx: Context) -> dict[str, Any]:
        identity: ClientIdentity = ctx.client_identity
        return {
            "msp_id": identity.msp_id,
            "id": identity.id,
            "attributes": identity.attributes,
        }

    @transaction(evaluate=True)
    async def tx_info(self, ctx: Context) -> dict[str, Any]:
        stub = ctx.stub
        return {
            "tx_id": stub.tx_id,
            "channel_id": stub.channel_id,
            "timestamp": stub.tx_datetime.isoformat(),
            "function": stub.function,
            "transient_keys": sorted(stub.get_transient()),
        }


chaincode = ContractChaincode(ShimProbe())
