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
(``pair-<a>-<b>``: *a*'s peers) and each key's validation parameter. It refuses every call at
the top level of a transaction (a client invoking a pair namespace directly) but one:

* ``expire_lock`` (PvP, the request in the transient map as the contract takes it): the one
  transaction two organizations' peers endorse over one proposal, the payer's and the
  regulator's (or the payee's). Its top-level namespace must run on both peers, and the pair
  namespace is the only one that does (each bank runs the contract in its own namespace
  only). Its only write is the lock record, in this namespace, pinned to the payer AND the
  payee or the regulator; it runs the contract's own rule
  (:func:`deposit_token.operations.pvp.expire_lock_in_pair_namespace`: the parties from the
  lock's and the transfer's pins, the deadline on this server's own clock, no claim read),
  with no chaincode-to-chaincode call (caller and callee would be the same package on the
  regulator's peer). docs/architecture.md, "PvP under the layout", says why this is sound.

It is its own package, distinct from the contract's (Fabric keys chaincode handlers by
package id, so a chaincode cannot call itself under another name).

Must not: decode records or decide anything for a caller (``expire_lock`` decides through the
contract's own rule, never a copy of it), or put a value or a key into an error message (error
messages are written into blocks).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

from dtoken_wire.codec import TRANSIENT_KEY, canonical_json
from dtoken_wire.namespaces import is_pair_namespace
from dtoken_wire.requests import ExpireLockRequest
from fabshim import ClientIdentity, Response, ShimError, Stub
from fabshim.response import error, success

from .config import ENV_MSP
from .errors import (
    DepositTokenError,
    InvalidArgument,
    NotAuthorized,
    ServerMisconfigured,
)
from .ledger import Ledger
from .operations.access import Caller
from .operations.pvp import expire_lock_in_pair_namespace
from .registry import loads_object
from .requests import parse
from .routing import decode_bytes, encode_bytes

__all__ = ["PairStorageChaincode", "chaincode"]

_MAX_KEYS = 10_000  # keys per read or writes per call: a bound on one message
_MAX_ROWS = 100_000  # rows one scan may return


_log = logging.getLogger(__name__)


class _Refused(Exception):
    pass


def _client(stub: Stub) -> Caller:
    identity = ClientIdentity(stub)
    return Caller.from_identity(identity.msp_id, identity.get_attribute_value,
                                identity.has_ou_value)


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

    def __init__(
        self, msp_id: str | None = None, caller_of: Callable[[Stub], Caller] | None = None,
    ) -> None:
        self._msp_id = msp_id
        self._caller_of = caller_of or _client

    @property
    def msp_id(self) -> str:
        """The organization whose peer runs this server (``DTOKEN_BANK_MSP`` by default)."""
        if self._msp_id is None:
            self._msp_id = os.environ.get(ENV_MSP, "")
        return self._msp_id

    async def invoke(self, stub: Stub) -> Response:
        if is_pair_namespace(stub.chaincode_name):
            return await self._top_level(stub)
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

    async def _top_level(self, stub: Stub) -> Response:
        """A client's proposal to this pair namespace: only ``expire_lock`` (the module
        docstring says why), its request in the transient map as the contract takes it."""
        args = stub.get_args()
        if [a.decode("utf-8", "replace") for a in args] != ["expire_lock"]:
            return error("NOT_AUTHORIZED: a pair namespace is reached only from a bank's "
                         "namespace, never at the top level (except expire_lock)")
        try:
            if not self.msp_id:
                raise ServerMisconfigured(f"{ENV_MSP} is not set")
            raw = stub.get_transient().get(TRANSIENT_KEY)
            if raw is None:
                raise InvalidArgument(f"the transient map has no {TRANSIENT_KEY!r} entry")
            request = parse(ExpireLockRequest, loads_object(raw, "request", InvalidArgument))
            try:
                caller = self._caller_of(stub)
            except Exception:
                raise NotAuthorized("the client identity cannot be read") from None
            ledger = Ledger(stub, stub.tx_id, None)
            answer = await expire_lock_in_pair_namespace(
                ledger, caller, self.msp_id, request, now=stub.tx_datetime, tx_id=stub.tx_id)
            await ledger.flush()
        except DepositTokenError as exc:
            return error(str(exc))
        except ShimError as exc:
            _log.error("[%s] expire_lock: the peer refused: %s", stub.tx_id[:8],
                       type(exc).__name__)
            return error(f"PEER_UNAVAILABLE: the peer refused a read ({type(exc).__name__})")
        except Exception as exc:
            # type only: the text of an arbitrary exception may quote a value
            _log.error("[%s] expire_lock failed: %s", stub.tx_id[:8], type(exc).__name__)
            return error(f"INTERNAL: unexpected {type(exc).__name__}")
        return success(canonical_json(answer))

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
