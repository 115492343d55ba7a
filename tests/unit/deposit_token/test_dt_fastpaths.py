"""The chaincode's CPU fast paths (issue 14) write the same bytes as the plain code they replace.

Each fast path (HMAC keyed once per secret, cached policy envelopes and pair pins, canonical
timestamps parsed without ``strptime`` and formatted once per instant, one JSON encoder, record
fields looked up once per class, records decoded once per stored bytes) is swapped back for
its plain form here, a payout batch and the payee's batch decision are run both ways, and
every write, validation parameter, event and response must be byte-identical. The pieces are
also compared one by one, on edge inputs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from deposit_token import keys, placement, records
from deposit_token.keys import AccountKeys, Deriver
from dtoken_wire import codec
from dtoken_wire.codec import TIMESTAMP_FORMAT, canonical_json, format_timestamp, parse_timestamp
from fabshim import statebased
from fabshim.errors import InvalidArgumentError
from hypothesis import given
from hypothesis import strategies as st
from unit.deposit_token.dt_harness import Net

HK, US = "hkbank", "usbank"


class _PlainMac:
    """``hmac.new`` as the derivations used it before the keyed states."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def hex32(self, message: bytes) -> str:
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]


class _PlainEncoder:
    def encode(self, obj: object) -> str:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain_format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


class _NoCache(dict[Any, Any]):
    def get(self, *_: Any) -> None:  # type: ignore[override]
        return None

    def __setitem__(self, *_: Any) -> None:
        pass


class _NeverMatches:
    def fullmatch(self, _text: str) -> None:
        return None


async def _batch_bytes(n: int = 12) -> list[Any]:
    """Everything a payout batch and its batch decision put in a block, in order."""
    net = Net()
    await net.init()
    payer, payees, tids = await net.marketplace("fp", n, 10**9)
    items = [{"reference": f"fp-{i}", "payee_bank": US, "payee_account": payees[i],
              "amount": 100 + i, "transfer_id": tids[i], "ttl_seconds": 3600 + i,
              "originator": {"name": "Marketplace Ltd", "account": "MK-1"},
              "remittance": f"invoice {i}"} for i in range(n)]
    out: list[Any] = []
    for org, name, request in (
        (HK, "coalesced_payout", {"payer_account": payer, "items": items}),
        (US, "decide_transfers", {"payer_bank": HK, "decisions": [
            {"transfer_id": t, "accept": i % 4 != 3, **({} if i % 4 != 3 else
                                                        {"reason": "sanctions hit"})}
            for i, t in enumerate(tids)]}),
    ):
        net.advance(seconds=7.25)
        sub = await net.prepare(org, name, request)
        out.append(sorted(sub.writes.items()))
        for stub in (sub.stub, *sub.stub._all_children()):
            out.append(sorted((k, sorted(v.items())) for k, v in stub._metadata_writes.items()))
        out.append((sub.stub.event, json.dumps(sub.result, sort_keys=True)))
        sub.commit()
    page = await net.evaluate(US, "get_pending", {"direction": "incoming"})
    out.append(json.dumps(page, sort_keys=True))
    return out


async def test_a_batch_writes_the_same_bytes_as_the_plain_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = await _batch_bytes()
    with monkeypatch.context() as m:
        m.setattr(keys, "_Mac", _PlainMac)
        m.setattr(codec, "_CANONICAL", _PlainEncoder())
        m.setattr(codec, "_format_utc", _plain_format)
        m.setattr(codec, "_CANONICAL_TIMESTAMP", _NeverMatches())
        m.setattr(statebased, "_envelope", statebased._envelope.__wrapped__)
        m.setattr(placement, "_both_peers", placement._both_peers.__wrapped__)
        m.setattr(records, "_PLAIN", frozenset())
        m.setattr(records, "_DECODED", _NoCache())
        slow = await _batch_bytes()
    assert len(fast) == len(slow)
    for got, want in zip(fast, slow, strict=True):
        assert got == want


@given(secret=st.binary(min_size=32, max_size=32),
       parts=st.lists(st.text(max_size=80), min_size=1, max_size=5))
def test_derivations_are_hmac_sha256(secret: bytes, parts: list[str]) -> None:
    message = keys._encode(tuple(parts))
    want = hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]
    assert Deriver(secret).derive(*parts) == want
    assert keys._Mac(secret).hex32(message) == want
    long_key = secret * 3  # longer than a SHA-256 block: hashed first, as HMAC does
    assert keys._Mac(long_key).hex32(message) == hmac.new(
        long_key, message, hashlib.sha256).hexdigest()[:32]


@given(key=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
       account=st.text(min_size=1, max_size=64))
def test_account_tags_are_hmac_sha256(key: str, account: str) -> None:
    want = hmac.new(key.encode(), keys._encode(("account", account)), hashlib.sha256)
    assert AccountKeys(key).tag(account) == want.hexdigest()[:32]


def test_the_account_keys_are_derived_once_and_stay_equal() -> None:
    deriver = Deriver(b"k" * 32)
    assert deriver.account_keys() is deriver.account_keys()
    assert deriver.account_keys() == AccountKeys(deriver.derive("account-keys"))


def _strptime(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


@pytest.mark.parametrize("text", [
    "2025-01-06T09:00:00.000000Z", "1999-12-31T23:59:59.999999Z", "2024-02-29T00:00:00.000001Z",
    "0001-01-01T00:00:00.000000Z",
    # refused by both
    "2025-02-29T00:00:00.000000Z", "2025-13-01T00:00:00.000000Z", "2025-00-10T00:00:00.000000Z",
    "2025-01-00T00:00:00.000000Z", "2025-01-06T24:00:00.000000Z", "2025-01-06T09:60:00.000000Z",
    "2025-01-06T09:00:60.000000Z", "2025-01-06T09:00:61.000000Z", "0000-01-01T00:00:00.000000Z",
    "2025-01-06 09:00:00.000000Z", "2025-01-06T09:00:00.000000", "2025-01-06T09:00:00Z",
    "", "٢٠٢٥-01-06T09:00:00.000000Z",
    # accepted by strptime alone (not what format_timestamp writes): still accepted the same
    "2025-01-06T09:00:00.5Z", "2025-1-6T9:0:0.000000Z",
])
def test_timestamps_parse_as_strptime_parses_them(text: str) -> None:
    try:
        want: datetime | type[ValueError] = _strptime(text)
    except ValueError:
        want = ValueError
    if want is ValueError:
        with pytest.raises(ValueError):  # noqa: PT011 (the message is strptime's or datetime's)
            parse_timestamp(text)
    else:
        assert parse_timestamp(text) == want


# years of four digits: strftime writes year 999 as "999", which neither parser reads back
@given(moment=st.datetimes(min_value=datetime(1000, 1, 2),
                           max_value=datetime(9998, 12, 30),
                           timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)),
                                                      timezone(timedelta(hours=-5))])))
def test_timestamps_format_and_parse_back(moment: datetime) -> None:
    text = format_timestamp(moment)
    assert text == _plain_format(moment)
    assert parse_timestamp(text) == moment
    assert _strptime(text) == moment


def test_a_naive_timestamp_is_still_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2025, 1, 6, 9))


@given(value=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12))
def test_canonical_json_is_json_dumps(value: object) -> None:
    assert canonical_json(value) == json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_pins_are_the_policies_they_cache() -> None:
    a, b = ("HarbourBankMSP", "LibertyBankMSP")
    assert placement._both_peers(a, b) == placement._both_peers.__wrapped__(a, b)
    assert statebased.all_of_policy([b, a]) == statebased.all_of_policy([a, b])
    with pytest.raises(InvalidArgumentError):  # a repeated MSP id: still refused
        placement._both_peers(a, a)


def _transfer_bytes(**change: Any) -> bytes:
    transfer = records.Transfer(
        "t" * 24, HK, US, "p" * 24, 100, "USD", "2025-01-06T09:00:00.000000Z",
        "2025-01-07T09:00:00.000000Z", {"name": "Marketplace Ltd"}, tx_id="a" * 64)
    body = {**transfer.to_json(), **change}
    body.update({"type": "transfer", "v": 1, "salt": "0" * 32})
    return canonical_json(body)


def test_the_same_bytes_decode_once_and_garbage_is_refused_every_time() -> None:
    raw = _transfer_bytes()
    first = records.decode(records.Transfer, raw)
    assert records.decode(records.Transfer, bytes(raw)) is first  # another object, same bytes
    assert records.decode(records.Transfer, bytearray(raw)) == first  # not hashable: decoded
    with pytest.raises(records.CorruptState):  # cached as a transfer, never read as another kind
        records.decode(records.Account, raw)
    bad = _transfer_bytes(amount=-5)
    for _ in range(2):
        with pytest.raises(records.CorruptState):
            records.decode(records.Transfer, bad)
    assert (records.Transfer, bad) not in records._DECODED


def test_the_decode_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "_DECODED", {})
    monkeypatch.setattr(records, "DECODE_CACHE_SIZE", 3)
    raws = [_transfer_bytes(amount=100 + i) for i in range(5)]
    for raw in raws:
        records.decode(records.Transfer, raw)
    assert list(records._DECODED) == [(records.Transfer, raw) for raw in raws[2:]]


def test_a_long_stored_value_is_decoded_every_time_never_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a payer bank's peer can commit transfers of ~100 KB (originator and remittance at their
    # longest): kept, 8,192 of them would hold over a gigabyte in the payee's server
    monkeypatch.setattr(records, "_DECODED", {})
    big = _transfer_bytes(remittance="r" * 1024, originator={
        f"f{i:02d}": "x" * 1024 for i in range(32)})
    assert len(big) > records.DECODE_CACHE_MAX_BYTES
    first = records.decode(records.Transfer, big)
    assert records.decode(records.Transfer, big) == first
    assert records._DECODED == {}
    small = _transfer_bytes()
    records.decode(records.Transfer, small)
    assert list(records._DECODED) == [(records.Transfer, small)]
