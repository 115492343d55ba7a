"""The pair storage chaincode: the thin package that serves every pair namespace.

A bank's transaction runs in its own namespace (``<cc>-<bank>``) and reaches the pair
collections it needs by chaincode-to-chaincode calls to this chaincode, which reads and
writes only the collections of the namespace it serves, on behalf of its caller
(:class:`deposit_token.routing.PairStorage` is the caller's side; the protocol is JSON with
base64 values):

* ``read {"keys": [[collection, key], ...], "point": bool}`` → ``{"values": [...],
  "params": [...]}`` (each key's value and validation parameter, ``null`` where absent;
  ``point``: one key, read as a point read rather than a multi-key read);
* ``hashes {"keys": [[collection, key], ...]}`` → ``{"hashes": [...]}``;
* ``scan {"collection", "start", "end", "limit"}`` → ``{"rows": [[key, value], ...]}``;
* ``write {"ops": [[collection, key, value or null, parameter or null], ...]}`` → ``{}``
  (a ``null`` value deletes; a parameter is set with the write).

It trusts its caller, and that is safe: it protects nothing. What keeps one bank from
another is what Fabric validates in the pair namespace: each collection's endorsement policy
(``pair-<a>-<b>``: *a*'s peers) and each key's validation parameter. It refuses a call at
the top level of a transaction (a client invoking a pair namespace directly): honest
transactions always start in a bank's namespace.

It is its own package, distinct from the contract's (Fabric keys chaincode handlers by
package id, so a chaincode cannot call itself under another name).

Must not: decode records, decide anything, or put a value or a key into an error message
(error messages are written into blocks).
"""

from __future__ import annotations

import json
from typing import Any

from dtoken_wire.namespaces import is_pair_namespace
from fabshim import Response, ShimError, Stub
from fabshim.response import error, success

from .routing import decode_bytes, encode_bytes

__all__ = ["PairStorageChaincode", "chaincode"]

_MAX_KEYS = 10_000  # keys per read or writes per call: a bound on one message
_MAX_ROWS = 100_000  # rows one scan may return


class _Refused(Exception):
    pass


def _keys(body: dict[str, Any]) -> list[tuple[str, str]]:
    keys = body.get("keys")
    if not isinstance(keys, list) or len(keys) > _MAX_KEYS:
        raise _Refused("keys must be a list of at most 10000 [collection, key] pairs")
    out = []
    for item in keys:
        if not (isinstance(item, list) and len(item) == 2
                and all(isinstance(x, str) and x for x in item)):
            raise _Refused("each key must be [collection, key]")
        out.append((item[0], item[1]))
    return out


class PairStorageChaincode:
    """See the module docstring."""

    async def init(self, stub: Stub) -> Response:
        return success()

    async def invoke(self, stub: Stub) -> Response:
        if is_pair_namespace(stub.chaincode_name):
            return error("NOT_AUTHORIZED: a pair namespace is reached only from a bank's "
                         "namespace, never at the top level")
        args = stub.get_args()
        if len(args) != 2:
            return error("INVALID_ARGUMENT: storage takes a function and one JSON argument")
        function = args[0].decode("utf-8", "replace")
        try:
            body = json.loads(args[1])
            if not isinstance(body, dict):
                raise _Refused("the argument must be a JSON object")
            answer = await self._run(stub, function, body)
        except (_Refused, ValueError) as exc:
            return error(f"INVALID_ARGUMENT: {exc if isinstance(exc, _Refused) else 'JSON'}")
        except ShimError as exc:
            # the peer's text may name a key: its type only
            return error(f"INTERNAL: the peer refused a storage request ({type(exc).__name__})")
        return success(json.dumps(answer, separators=(",", ":")).encode())

    async def _run(self, stub: Stub, function: str, body: dict[str, Any]) -> dict[str, Any]:
        if function == "read":
            keys = _keys(body)
            by_key: dict[tuple[str, str], bytes | None] = {}
            point = body.get("point") is True and len(keys) == 1
            if point:  # the caller's point read stays a point read (GET_STATE)
                by_key[keys[0]] = await stub.get_private_data(*keys[0])
            for collection in dict.fromkeys(c for c, _ in keys if not point):
                group = list(dict.fromkeys(k for c, k in keys if c == collection))
                got = await stub.get_multiple_private_data(collection, group)
                by_key.update(((collection, k), v) for k, v in zip(group, got, strict=True))
            params = [await stub.get_private_data_validation_parameter(c, k) for c, k in keys]
            return {"values": [encode_bytes(by_key[ck]) for ck in keys],
                    "params": [encode_bytes(p) for p in params]}
        if function == "hashes":
            return {"hashes": [encode_bytes(await stub.get_private_data_hash(c, k))
                               for c, k in _keys(body)]}
        if function == "scan":
            coll, start, end = body.get("collection"), body.get("start"), body.get("end")
            limit = body.get("limit")
            if not (isinstance(coll, str) and isinstance(start, str)
                    and isinstance(end, str) and isinstance(limit, int)
                    and 0 < limit <= _MAX_ROWS):
                raise _Refused("scan needs collection, start, end and a limit of 1..100000")
            rows = []
            iterator = await stub.get_private_data_by_range(coll, start, end)
            try:
                async for kv in iterator:
                    rows.append([kv.key, encode_bytes(kv.value)])
                    if len(rows) >= limit:
                        break
            finally:
                await iterator.aclose()
            return {"rows": rows}
        if function == "write":
            ops = body.get("ops")
            if not isinstance(ops, list) or len(ops) > _MAX_KEYS:
                raise _Refused("ops must be a list of at most 10000 writes")
            parsed = []
            for op in ops:
                if not (isinstance(op, list) and len(op) == 4
                        and isinstance(op[0], str) and op[0]
                        and isinstance(op[1], str) and op[1]):
                    raise _Refused("each write must be [collection, key, value, parameter]")
                try:
                    parsed.append((op[0], op[1], decode_bytes(op[2]), decode_bytes(op[3])))
                except Exception:
                    raise _Refused("values and parameters must be base64 or null") from None
            for collection, key, value, pin in parsed:
                if value is None:
                    await stub.del_private_data(collection, key)
                else:
                    await stub.put_private_data(collection, key, value)
                    if pin is not None:
                        await stub.set_private_data_validation_parameter(collection, key, pin)
            return {}
        raise _Refused("unknown storage function")


#: What ``python -m fabshim serve deposit_token.storage:chaincode`` runs.
chaincode = PairStorageChaincode()
