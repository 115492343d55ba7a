"""Bilateral exposure caps: the most a debtor bank may owe a creditor bank unsettled.

Owns: ``set_exposure_cap`` (the creditor bank's operator), ``get_exposure_cap`` (the cap in
force, without the obligations' scan of every transfer: what the listener reads each pass)
and how the next change of a cap finds its sequence number. A cap is the creditor's own limit
on its own exposure: it is written in ``pair-<creditor>-<debtor>`` (the debtor's peer and the
regulator's can read it, only the creditor's can write it), one write-once key per change,
``cap/<CUR>/<seq>``; the highest ``seq`` is the cap in force, so a read-only scan of the
range finds it last (:mod:`.netting` reports it with the obligations, :mod:`.conservation`
with the audit).

Who enforces it: the creditor bank, where it decides, i.e. its SDK and listener before they
accept (the chaincode's accept does not count: an accept writes, so it may not range-query
private data, and a running counter per counterparty would be a hot key).

Must not: read or write anything but the caps of the serving bank.
"""

from __future__ import annotations

from dtoken_wire.requests import CapRequest, SetExposureCapRequest

from ..errors import InvalidArgument
from ..keys import CAP_SEQ_MAX, cap_key, prefix_range
from ..placement import Anomaly, Place, bind
from ..records import Cap
from .access import (
    ROLE_OPERATOR,
    Tx,
    authorize_bank_write,
    authorize_read,
    done,
    load_registry,
    other_bank,
    target_bank,
)
from .declare import declare


@declare()
async def set_exposure_cap(tx: Tx, req: SetExposureCapRequest) -> dict[str, object]:
    """The serving bank caps what ``debtor_bank`` may owe it unsettled in ``currency``
    (a new record; the latest one is in force)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    debtor = other_bank(registry, bank, req.debtor_bank, "debtor_bank")
    if registry.decimals(req.currency) is None:
        raise InvalidArgument("request.currency is not a currency of the network")
    place = Place.pair(bank.name, debtor.name)
    seq = await next_cap_seq(tx, place, req.currency)
    tx.ledger.put(place.collection, cap_key(req.currency, seq), Cap(
        creditor_bank=bank.name, debtor_bank=debtor.name, currency=req.currency,
        cap=req.cap, seq=seq, set_at=tx.at, tx_id=tx.tx_id))
    return done(tx)


@declare(evaluate=True)
async def get_exposure_cap(tx: Tx, req: CapRequest) -> dict[str, object]:
    """The cap the serving bank set on ``debtor_bank`` in ``currency`` (``None``: none): the
    last valid record of the range, as the obligations report it."""
    registry = await load_registry(tx)
    bank = target_bank(tx, registry, None)
    authorize_read(tx, registry, [bank])
    debtor = other_bank(registry, bank, req.debtor_bank, "debtor_bank")
    place = Place.pair(bank.name, debtor.name)
    start, end = prefix_range(f"cap/{req.currency}")
    cap: int | None = None
    while True:
        rows = await tx.ledger.scan(place.collection, start, end, _PAGE)
        for key, value in rows:
            found = bind(Cap, place, key, value)
            if not isinstance(found, Anomaly) and found.currency == req.currency:
                cap = found.cap
        if len(rows) < _PAGE:
            return {"debtor_bank": debtor.name, "currency": req.currency, "cap": cap}
        start = rows[-1][0] + "\0"


_PAGE = 1000


async def next_cap_seq(tx: Tx, place: Place, currency: str) -> int:
    """The first free sequence number of ``currency``'s caps in ``place``.

    Changes are numbered 1, 2, ... without gaps (only this transaction writes them), so the
    first free one is found by point reads (a write may not range-query private data):
    1, 2, 4, 8 ... until one is free, then by bisection, about 2·log2(n) reads. Each read is
    in the read set: two concurrent changes read the same free key and MVCC lets one commit.
    A record there that does not decode still occupies its number (it is the bank's own).
    """

    async def taken(seq: int) -> bool:
        return await tx.ledger.get_bound(Cap, place, cap_key(currency, seq)) is not None

    if not await taken(1):
        return 1
    low, high = 1, 2
    while await taken(high):
        if high == CAP_SEQ_MAX:
            raise InvalidArgument("the cap was changed too many times")
        low, high = high, min(high * 2, CAP_SEQ_MAX)
    while high - low > 1:  # low is taken, high is free
        mid = (low + high) // 2
        if await taken(mid):
            low = mid
        else:
            high = mid
    return high
