"""Experiment: what private keys cost the network, whatever the contract (``layout`` probe).

``dtbench.privprobe:chaincode`` runs one function, ``rw``, whose arguments say which keys
to touch: ``rw <slot> <n> <spec>...`` where each spec is ``<collection>:<reads>:<writes>:<new>``
(``-`` as the collection means public state). For each spec it reads ``reads`` keys of the
slot, writes the first ``writes`` of them back, and writes ``new`` fresh keys named after
``n``. Values are 160 bytes with a salt, like the contract's records. It lets the ``layout``
experiment measure the floor of a private transfer (two reads, two writes) and the cost of
each further key and collection, with no contract logic in the way.
"""

from __future__ import annotations

import hashlib

from fabshim import Response, Stub, error, success

__all__ = ["chaincode"]

_OK = success()


def _value(key: str, n: str) -> bytes:
    salt = hashlib.sha256(f"{key}/{n}".encode()).hexdigest()
    return (f'{{"salt":"{salt}","key":"{key}","n":"{n}",' + '"pad":"' + "x" * 40 + '"}').encode()


class PrivProbe:
    async def init(self, stub: Stub) -> Response:
        return _OK

    async def invoke(self, stub: Stub) -> Response:
        fn, params = stub.get_function_and_parameters()
        if fn != "rw" or len(params) < 2:
            return error("usage: rw <slot> <n> <collection>:<reads>:<writes>:<new> ...")
        slot, n, specs = params[0], params[1], params[2:]
        for spec in specs:
            coll, reads, writes, new = spec.split(":")
            keys = [f"k{slot}-{i}" for i in range(int(reads))]
            for key in keys:
                if coll == "-":
                    await stub.get_state(key)
                else:
                    await stub.get_private_data(coll, key)
            targets = keys[: int(writes)] + [f"n{slot}-{n}-{i}" for i in range(int(new))]
            for key in targets:
                if coll == "-":
                    await stub.put_state(key, _value(key, n))
                else:
                    await stub.put_private_data(coll, key, _value(key, n))
        return _OK


chaincode = PrivProbe()
