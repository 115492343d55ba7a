"""The audit checks what its range scans read against the committed hashes (issue 13, item 5).

A range scan is answered from the regulator's peer's private store, which a bank can starve
(withhold a write: the peer keeps the older value) or feed tampered values; Fabric checks
neither for a range scan. The audit compares each value it scans with
``GetPrivateDataHash`` (the hashed state every peer builds from the blocks) and refuses to
say OK while they differ, naming the collection's writer. Simulated here with
``MemoryLedger.hold_stale_private_data``: the peer holds one value, the block committed
another.
"""

from __future__ import annotations

from typing import Any

from deposit_token.keys import transfer_key
from fabshim.testing import MemoryStub
from unit.deposit_token.dt_harness import BANKS, Net, account_keys, ids

HK, US = "hkbank", "usbank"


async def _network() -> tuple[Net, str, str]:
    net = Net()
    await net.init()
    payer, payee = ids("hkpay", 1)[0], ids("usrcv", 1)[0]
    await net.open(HK, "USD", payer)
    await net.mint(HK, payer, 1_000, "dep-1")
    await net.open(US, "USD", payee)
    tid = await net.initiate(HK, payer, US, payee, 300, "inv-1")
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    return net, payer, tid


async def test_an_honest_peer_passes_the_hash_check() -> None:
    net, _, _ = await _network()
    audit = await net.audit()
    assert audit["ok"], audit["failures"]
    assert audit["anomalies"] == {}


async def test_a_stale_balance_on_the_regulators_peer_fails_the_audit() -> None:
    net, payer, _ = await _network()
    key = account_keys(HK).account(payer)
    before = net.ledger.get_private_data("acct-hkbank", key)
    assert before is not None
    await net.submit(HK, "burn", {"reference": "burn-1", "account_id": payer, "amount": 200},
                     caller=net.caller(HK, "minter"))
    # hkbank withheld the burn's account write from the regulator's peer: it still holds the
    # balance from before. Without the check the stale balance would be counted as current.
    net.ledger.hold_stale_private_data("acct-hkbank", key, before)
    audit = await net.audit()
    assert not audit["ok"]
    assert audit["anomalies"] == {"hkbank/acct-hkbank/hash_mismatch": 1}
    assert {"collection": "acct-hkbank", "key": key, "writers": ["hkbank"],
            "what": "hash_mismatch"} in audit["anomaly_records"]


async def test_a_tampered_transfer_fails_the_audit_and_counts_for_nobody() -> None:
    net, _, tid = await _network()
    key = transfer_key(tid)
    real = net.ledger.get_private_data("pair-hkbank-usbank", key)
    assert real is not None
    net.ledger.hold_stale_private_data("pair-hkbank-usbank", key,
                                       real.replace(b'"amount":300', b'"amount":30'))
    audit = await net.audit()
    assert not audit["ok"]
    assert audit["anomalies"] == {"hkbank/pair-hkbank-usbank/hash_mismatch": 1}


async def test_one_hash_read_per_scanned_record(monkeypatch: Any) -> None:
    """The cost: one ``GetPrivateDataHash`` per record the audit scans, nothing more."""
    net, _, _ = await _network()
    calls: list[tuple[str, str]] = []
    original_hash = MemoryStub.get_private_data_hash

    async def counting_hash(self: MemoryStub, collection: str, key: str) -> bytes | None:
        calls.append((collection, key))
        return await original_hash(self, collection, key)

    monkeypatch.setattr(MemoryStub, "get_private_data_hash", counting_hash)
    audit = await net.audit(page_size=1_000)
    assert audit["ok"]
    collections = [f"acct-{b}" for b in BANKS] + [
        f"pair-{a}-{b}" for a in BANKS for b in BANKS if a != b]
    audited = {(c, k) for c in collections for k in net.ledger.keys(c)
               if k.split("/")[0] in ("acct", "sup", "xfer", "dec", "settle", "cap")}
    assert len(audited) > 5
    assert sorted(calls) == sorted(audited)
