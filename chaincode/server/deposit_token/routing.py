"""Which namespace a collection lives in, and how the contract reaches a pair namespace.

Owns, for the namespace layout (docs/architecture.md, "Namespace layout"):

* :class:`Router`: from the namespace a transaction runs in (its top level, ``<cc>-<bank>``)
  and the registry's banks in order, the namespace of each collection
  (:mod:`dtoken_wire.namespaces`); whether it is local, a pair namespace reached through the
  storage chaincode, or out of reach (another bank's own namespace: an error);
* :class:`PairStorage`: the part of the stub the ledger uses, over chaincode-to-chaincode
  calls to one pair namespace's storage chaincode: multi-key reads in one call (values and
  validation parameters together), committed hashes, a range scan, and every buffered write
  of the transaction in one call (:meth:`PairStorage.write`);
* the storage protocol's encoding (JSON with base64 values), shared with
  :mod:`deposit_token.storage`.

A failed storage call raises: the caller's transaction fails with it (a callee's error does
not roll back its writes, so the caller must never go on).

Must not: decide anything about money or records; read or write the bank's own namespace
(the ledger does that directly).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dtoken_wire.namespaces import bank_namespace, collection_namespace

from .errors import InternalError

__all__ = [
    "PairStorage",
    "Router",
    "StorageError",
    "decode_bytes",
    "encode_bytes",
]


class StorageError(InternalError):
    """A storage call failed, or the layout cannot place a collection."""


class InvokingStub(Protocol):
    """What :class:`PairStorage` needs of the stub: one chaincode-to-chaincode call."""

    async def invoke_chaincode(self, name: str, args: Sequence[bytes | str],
                               channel: str = "") -> Any: ...


def encode_bytes(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def decode_bytes(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise StorageError("the storage answer is malformed")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise StorageError("the storage answer is malformed") from None


@dataclass(frozen=True)
class Router:
    """The layout as seen from the namespace a transaction runs in."""

    namespace: str
    banks: Callable[[], Sequence[str]]  # the registry's banks, in the consortium's order

    @property
    def base(self) -> str:
        return self.namespace.rpartition("-")[0]

    def namespace_of(self, collection: str) -> str:
        """The namespace holding ``collection``."""
        kind, _, rest = collection.partition("-")
        try:
            if kind in ("acct", "holds"):
                # no bank list needed: a bank's namespace is named after it
                return bank_namespace(self.base, rest)
            return collection_namespace(self.base, self.banks(), collection)
        except ValueError as exc:
            raise StorageError(f"collection {collection!r} has no place in the layout: "
                               f"{exc}") from None

    def remote(self, collection: str) -> str | None:
        """``None`` for a collection of this namespace, else the namespace to call.

        A bank's transaction (in ``<cc>-<bank>``) reaches pair namespaces only, and raises
        :class:`StorageError` for another bank's own namespace; the regulator's (in its own
        namespace, whose name is no bank's) reaches every namespace, where its peer runs
        the storage chaincode."""
        ns = self.namespace_of(collection)
        if ns == self.namespace:
            return None
        if collection.startswith("pair-"):
            return ns
        own = self.namespace.rpartition("-")[2]
        if own not in self.banks():
            return ns
        raise StorageError(f"collection {collection!r} lives in {ns}, out of reach "
                           f"of a transaction in {self.namespace}")


class _Rows:
    """A range scan's answer, as the ledger iterates a stub's range query."""

    @dataclass(frozen=True)
    class KV:
        key: str
        value: bytes

    def __init__(self, rows: list[tuple[str, bytes]]) -> None:
        self._rows = rows

    async def _gen(self) -> AsyncIterator[_Rows.KV]:
        for k, v in self._rows:
            yield _Rows.KV(k, v)

    def __aiter__(self) -> AsyncIterator[_Rows.KV]:
        return self._gen()

    async def aclose(self) -> None:
        return None


class PairStorage:
    """One pair namespace, reached through its storage chaincode (see the module docstring)."""

    def __init__(self, stub: InvokingStub, namespace: str) -> None:
        self._stub = stub
        self.namespace = namespace
        self._params: dict[tuple[str, str], bytes | None] = {}
        self.calls = 0  # storage invocations made (tests count them)

    async def _call(self, function: str, body: dict[str, object]) -> dict[str, Any]:
        self.calls += 1
        try:
            response = await self._stub.invoke_chaincode(
                self.namespace, [function, json.dumps(body, separators=(",", ":"))])
        except Exception as exc:
            # The callee's message could name a key: keep its type only.
            raise StorageError(f"the pair storage {self.namespace} failed "
                               f"({type(exc).__name__})") from None
        try:
            answer = json.loads(response.payload or b"{}")
        except ValueError:
            raise StorageError(f"the pair storage {self.namespace} answered "
                               "malformed JSON") from None
        if not isinstance(answer, dict):
            raise StorageError(f"the pair storage {self.namespace} answered malformed JSON")
        return answer

    async def get_multiple_private_data(
        self, collection: str, keys: Sequence[str], *, point: bool = False
    ) -> list[bytes | None]:
        """Values and validation parameters of ``keys`` in one call (parameters are kept
        for :meth:`get_private_data_validation_parameter`)."""
        answer = await self._call("read", {"keys": [[collection, k] for k in keys],
                                           "point": point})
        values, params = answer.get("values"), answer.get("params")
        if not (isinstance(values, list) and isinstance(params, list)
                and len(values) == len(params) == len(keys)):
            raise StorageError(f"the pair storage {self.namespace} answered a malformed read")
        for k, p in zip(keys, params, strict=True):
            self._params[(collection, k)] = decode_bytes(p)
        return [decode_bytes(v) for v in values]

    async def get_private_data(self, collection: str, key: str) -> bytes | None:
        return (await self.get_multiple_private_data(collection, [key], point=True))[0]

    async def get_private_data_validation_parameter(
        self, collection: str, key: str
    ) -> bytes | None:
        if (collection, key) not in self._params:
            await self.get_multiple_private_data(collection, [key], point=True)
        return self._params[(collection, key)]

    async def get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        answer = await self._call("hashes", {"keys": [[collection, key]]})
        hashes = answer.get("hashes")
        if not (isinstance(hashes, list) and len(hashes) == 1):
            raise StorageError(f"the pair storage {self.namespace} answered a malformed hash")
        return decode_bytes(hashes[0])

    async def get_private_data_by_range(self, collection: str, start_key: str,
                                        end_key: str, limit: int) -> _Rows:
        answer = await self._call(
            "scan", {"collection": collection, "start": start_key, "end": end_key,
                     "limit": limit})
        rows = answer.get("rows")
        if not isinstance(rows, list):
            raise StorageError(f"the pair storage {self.namespace} answered a malformed scan")
        out: list[tuple[str, bytes]] = []
        for row in rows:
            if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], str)):
                raise StorageError(f"the pair storage {self.namespace} answered a malformed "
                                   "scan")
            value = decode_bytes(row[1])
            if value is None:
                raise StorageError(f"the pair storage {self.namespace} answered a malformed "
                                   "scan")
            out.append((row[0], value))
        return _Rows(out)

    async def write(self, ops: Sequence[tuple[str, str, bytes | None, bytes | None]]) -> None:
        """Every write of the transaction to this namespace, in one call: ``(collection,
        key, value or None to delete, validation parameter or None)``."""
        if not ops:
            return
        await self._call("write", {"ops": [
            [c, k, encode_bytes(v), encode_bytes(p)] for c, k, v, p in ops]})
