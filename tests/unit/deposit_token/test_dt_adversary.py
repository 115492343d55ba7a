"""The dishonest bank, attacking (issue 13): targeted attacks, then a property-based search.

``cnbank`` plays the dishonest bank throughout. It runs its own chaincode server, so its peer
endorses whatever that server writes into the collections whose policy it satisfies alone
(``acct-cnbank``, ``pair-cnbank-<other>``); Fabric commits it unless a key-level validation
parameter (pinned at creation on transfers, decisions, refunds and settlements: both banks'
peers) or MVCC invalidates it. ``hkbank`` and ``usbank`` are honest, and so is the regulator.

Each attack ends in one of three outcomes, which its test shows:

* **invalidated**: Fabric refuses the write (``EndorsementPolicyFailureError``);
* **counted by nobody and reported**: the honest figures are unchanged and an anomaly names
  ``cnbank`` among the writers (or the write is provably harmless to honest banks: the
  test says why);
* **breaks an honest bank**: the four found (a mismatched pinned accept blocking the refund,
  ledger order taken from a claimed ``tx_id``, unattributed races, the audit ignoring holds)
  were strict xfails until fixed; their tests now pass as plain tests.

Ledger order. An honest SDK finds, in the blocks, the position of the first valid
transaction that wrote each record's exact bytes (issue item 3). :class:`Adversary` keeps
that truth as the harness commits: ``order`` maps each committed transaction id *and* the
SHA-256 (hex) of every value it wrote to its position, so the same tests hold whether the
contract reads ledger order by a record's ``tx_id`` field or by the hash of its bytes.

The property test (:func:`test_interleavings_of_honest_and_dishonest_operations`) runs
generated interleavings of honest operations and dishonest writes against an honest model
kept here, and checks after every sequence that the honest banks' obligations (computed by
each bank of the pair and by the regulator) and their customers' balances equal the model's,
and that every dishonest write was invalid, legitimately counted, reported naming
``cnbank``, or harmless; and that no race is left disputed (proven positions decide each).

One file although long: the targeted attacks and the property search share the
:class:`Adversary` network and the verdicts on cnbank's records, and each attack of the
property's explicit examples is the one a targeted test above tells in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from deposit_token.errors import DepositTokenError
from deposit_token.keys import (
    acct_collection,
    decision_key,
    pair_collection,
    refund_key,
    settlement_key,
    supply_key,
    transfer_key,
)
from deposit_token.records import (
    Account,
    Decision,
    Outcome,
    Record,
    Refund,
    RefundCause,
    Settlement,
    SupplyKind,
    SupplyRecord,
    Transfer,
    decode,
    encode,
)
from dtoken_wire.codec import MAX_AMOUNT, format_timestamp, parse_timestamp
from fabshim.errors import EndorsementPolicyFailureError, ShimError
from fabshim.statebased import RoleType, all_of_policy, n_out_of_policy, parse_n_out_of
from fabshim.testing import MemoryStub
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from unit.deposit_token.dt_harness import (
    Net,
    account_keys,
    all_writes,
    ids,
    msp_of,
    policy_org,
)

HK, US, CN = "hkbank", "usbank", "cnbank"
HONEST = (HK, US)
BAD = CN
SALT = "7" * 32
AT = "2025-01-06T09:00:00.000000Z"
FAR = "2099-01-01T00:00:00.000000Z"

PinMode = str  # "both" | "self" | "one_of_two" | "none"


def pin_bytes(collection: str, mode: PinMode) -> bytes | None:
    """The validation parameter a dishonest writer sets on a key of ``collection``."""
    kind, _, rest = collection.partition("-")
    if kind != "pair" or mode == "none":
        return None
    a, _, b = rest.partition("-")
    if mode == "both":
        return all_of_policy([msp_of(a), msp_of(b)])
    if mode == "self":
        return all_of_policy([msp_of(a)])
    assert mode == "one_of_two"
    return n_out_of_policy(1, [msp_of(a), msp_of(b)])


class HideReads:
    """A modified server's view of the ledger: reads of the keys ``hidden`` accepts answer
    ``None`` (the server skips them: a hold, a decision, a refund), and so never enter the
    read set. Everything else goes to the real stub."""

    def __init__(self, stub: MemoryStub, hidden: Any) -> None:
        self._stub = stub
        self._hidden = hidden

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub, name)

    async def get_private_data(self, collection: str, key: str) -> bytes | None:
        if self._hidden(collection, key):
            return None
        return await self._stub.get_private_data(collection, key)

    async def get_multiple_private_data(
        self, collection: str, keys: Sequence[str]
    ) -> list[bytes | None]:
        return [await self.get_private_data(collection, k) for k in keys]


@dataclass
class Adversary(Net):
    """The harness network, plus the honest ledger order and the dishonest bank's writes."""

    skipped: dict[str, Any] = field(default_factory=dict)  # org -> predicate of hidden reads

    def __post_init__(self) -> None:
        super().__post_init__()

        def wrap(org: str, stub: MemoryStub) -> Any:
            hidden = self.skipped.get(org)
            return stub if hidden is None else HideReads(stub, hidden)

        self.stub_wrapper = wrap

    def _log(self, stub: MemoryStub) -> None:
        """Positions of what ``stub`` committed: by transaction id and by value hash (the
        first valid writer of those bytes, as an honest SDK finds it in the blocks)."""
        pos = self.order.setdefault(stub.tx_id, (self.ledger.height, 0))
        for value in all_writes(stub).values():
            if value:
                self.order.setdefault(hashlib.sha256(value).hexdigest(), pos)

    async def submit(
        self, org: str, name: str, request: Mapping[str, Any] | None = None, **kw: Any
    ) -> dict[str, object]:
        sub = await self.prepare(org, name, request, **kw)
        sub.commit()
        self._log(sub.stub)
        return sub.result

    async def write(
        self,
        collection: str,
        key: str,
        value: bytes | Record | None,
        *,
        pin: PinMode = "both",
        purge: bool = False,
        tx_id: str | None = None,
    ) -> None:
        """Commit one write of a modified server (``None``: delete, or purge), endorsed by
        the one bank whose peer satisfies the collection's policy; with ``pin`` the key's
        validation parameter is set in the same transaction (``"none"``: left alone)."""
        writer = policy_org(collection)
        stub = self.ledger.stub(tx_id=tx_id or self.ledger.new_tx_id(), timestamp=self.now,
                                endorsers=[writer])
        if value is None:
            if purge:
                await stub.purge_private_data(collection, key)
            else:
                await stub.del_private_data(collection, key)
        else:
            raw = value if isinstance(value, bytes) else encode(value, SALT)
            await stub.put_private_data(collection, key, raw)
        policy = pin_bytes(collection, pin)
        if policy is not None and value is not None:
            await stub.set_private_data_validation_parameter(collection, key, policy)
        stub.commit()
        self._log(stub)

    async def repin(self, collection: str, key: str, pin: PinMode) -> None:
        """Only change a key's validation parameter."""
        policy = pin_bytes(collection, pin)
        assert policy is not None
        stub = self.ledger.stub(tx_id=self.ledger.new_tx_id(), timestamp=self.now,
                                endorsers=[policy_org(collection)])
        await stub.set_private_data_validation_parameter(collection, key, policy)
        stub.commit()
        self._log(stub)

    def stored(self, kind: type[Any], collection: str, key: str) -> Any:
        raw = self.ledger.get_private_data(collection, key)
        assert raw is not None
        return decode(kind, raw)


async def network(*funded: tuple[str, str, int]) -> Adversary:
    """An initialized network and, for each ``(bank, account id, amount)``, an open USD
    account with that balance minted."""
    net = Adversary()
    await net.init()
    for i, (bank, account, amount) in enumerate(funded):
        await net.open(bank, "USD", account)
        if amount:
            await net.mint(bank, account, amount, f"dep-{i}")
    return net


async def owed(net: Net, debtor: str, creditor: str, org: str) -> tuple[int, dict[str, Any]]:
    page = await net.obligations(debtor, creditor, org=org)
    amounts = {(o["debtor"], o["creditor"]): o["owed"] for o in page["obligations"]}
    return amounts.get((debtor, creditor), 0), page


async def owed_everywhere(net: Net, debtor: str, creditor: str) -> set[int]:
    """What ``debtor`` owes ``creditor`` as each bank of the pair and the regulator see it
    (each bank's figures as an honest server computes them from the shared ledger: what a
    modified server tells its own clients is its own business)."""
    skipped = dict(net.skipped) if isinstance(net, Adversary) else {}
    if isinstance(net, Adversary):
        net.skipped.clear()
    try:
        seen = {(await owed(net, debtor, creditor, org))[0] for org in (debtor, creditor)}
    finally:
        if isinstance(net, Adversary):
            net.skipped.update(skipped)
    audit = await net.audit()
    for p in audit["pairs"]:
        if (p["payer"], p["payee"]) == (debtor, creditor):
            seen.add(p["owed"])
            break
    else:
        seen.add(0)
    return seen


def names_bad(anomalies: Mapping[str, int]) -> bool:
    return bool(anomalies) and all(BAD in k.split("/")[0].split("+") for k in anomalies)


(HK_PAY, HK_2) = ids("hkpay", 2)
(US_RCV, US_2) = ids("usrcv", 2)
(CN_PAY, CN_RCV) = ids("cnacc", 2)


# ---------------------------------------------------------------------------------- pins


@pytest.mark.parametrize("pin", ["self", "one_of_two", "none"])
async def test_an_accept_pinned_to_its_writer_alone_counts_for_nobody(pin: PinMode) -> None:
    """cnbank accepts hkbank's transfer with a decision it pinned to itself only (or to
    either bank, or not at all), so that it could rewrite or purge it later: the payer owes
    nothing, can refund after expiry, and every scan names cnbank."""
    net = await network((HK, HK_PAY, 1_000), (CN, CN_RCV, 0))
    tid = await net.initiate(HK, HK_PAY, CN, CN_RCV, 400, "inv-1", ttl_seconds=600)
    coll = pair_collection(CN, HK)
    await net.write(coll, decision_key(tid), Decision(
        transfer_id=tid, outcome=Outcome.ACCEPTED, payer_bank=HK, payee_bank=CN,
        amount=400, currency="USD", decided_at=AT, tx_id="x"), pin=pin)
    assert await owed_everywhere(net, HK, CN) == {0}
    # its own pin lets it rewrite the decision: still nobody's
    await net.write(coll, decision_key(tid), b"rewritten", pin="none")
    net.advance(seconds=601)
    await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
    assert await net.balance(HK, HK_PAY) == 1_000
    audit = await net.audit()
    assert names_bad(audit["anomalies"])
    assert all(r["ok"] for r in audit["banks"] if r["bank"] in HONEST)


@pytest.mark.parametrize("what", ["rewrite", "delete", "purge", "repin_self", "repin_either"])
@pytest.mark.parametrize("record", ["transfer", "decision", "refund", "settlement"])
async def test_a_pinned_record_cannot_be_changed_by_its_writer_alone(
    record: str, what: str
) -> None:
    """Every record cnbank wrote honestly and another bank relies on is pinned to both
    banks: cnbank alone can neither rewrite, delete, purge nor re-pin it."""
    net = await network((CN, CN_PAY, 10_000), (US, US_RCV, 0), (HK, HK_PAY, 10_000),
                        (CN, CN_RCV, 0))
    if record == "transfer":
        tid = await net.initiate(CN, CN_PAY, US, US_RCV, 400, "inv-1")
        coll, key = pair_collection(CN, US), transfer_key(tid)
    elif record == "decision":
        tid = await net.initiate(HK, HK_PAY, CN, CN_RCV, 400, "inv-1")
        await net.submit(CN, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
        coll, key = pair_collection(CN, HK), decision_key(tid)
    elif record == "refund":
        tid = await net.initiate(CN, CN_PAY, US, US_RCV, 400, "inv-1", ttl_seconds=60)
        net.advance(seconds=61)
        await net.submit(CN, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
        coll, key = pair_collection(CN, US), refund_key(tid)
    else:
        await net.submit(CN, "confirm_settlement", {"debtor_bank": US, "currency": "USD",
                                                    "amount": 5, "rtgs_reference": "RTGS-9"})
        coll = pair_collection(CN, US)
        (key,) = [k for k in net.ledger.keys(coll) if k.startswith("settle/")]
    before = net.ledger.get_private_data(coll, key)
    audit_before = await net.audit()
    if what == "rewrite":
        attack = net.write(coll, key, b'{"v":1}', pin="none")
    elif what in ("delete", "purge"):
        attack = net.write(coll, key, None, purge=what == "purge")
    else:
        attack = net.repin(coll, key, "self" if what == "repin_self" else "one_of_two")
    with pytest.raises(EndorsementPolicyFailureError):
        await attack
    assert net.ledger.get_private_data(coll, key) == before
    assert await net.audit() == audit_before


async def test_a_record_written_over_an_unpinned_key_of_its_own_counts_for_nobody() -> None:
    """cnbank's server initiates without a pin, then rewrites the transfer: usbank's server
    refuses to accept it, and the record counts for nobody at any time."""
    net = await network((US, US_RCV, 0))
    (tid,) = ids("cnxfer", 1)
    coll = pair_collection(CN, US)
    t = Transfer(transfer_id=tid, payer_bank=CN, payee_bank=US, payee_account=US_RCV,
                 amount=400, currency="USD", created_at=AT, expires_at=FAR, tx_id="x")
    await net.write(coll, transfer_key(tid), t, pin="self")
    with pytest.raises(DepositTokenError, match="CORRUPT_STATE"):
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": CN})
    await net.write(coll, transfer_key(tid), Transfer(**{**t.__dict__, "amount": 1}),
                    pin="none")
    assert await owed_everywhere(net, CN, US) == {0}
    assert await net.balance(US, US_RCV) == 0
    assert (await net.audit())["anomalies"] == {"cnbank/pair-cnbank-usbank/unpinned": 1}


async def test_a_validation_parameter_that_does_not_parse_is_reported_then_halts() -> None:
    """cnbank pins its accept with bytes that are no policy. Every reader reports it as
    unpinned (nobody counts it, the payer refunds after expiry); cnbank's next write of that
    key halts block processing on every peer (hyperledger/fabric#3105): the remaining denial
    of service the issue lists, which only its own writes can trigger (no honest bank ever
    writes a key in cnbank's collections)."""
    net = await network((HK, HK_PAY, 1_000), (CN, CN_RCV, 0))
    tid = await net.initiate(HK, HK_PAY, CN, CN_RCV, 400, "inv-1", ttl_seconds=60)
    coll, key = pair_collection(CN, HK), decision_key(tid)
    stub = net.ledger.stub(tx_id=net.ledger.new_tx_id(), timestamp=net.now,
                           endorsers=[msp_of(CN)])
    await stub.put_private_data(coll, key, encode(Decision(
        transfer_id=tid, outcome=Outcome.ACCEPTED, payer_bank=HK, payee_bank=CN, amount=400,
        currency="USD", decided_at=AT, tx_id=stub.tx_id), SALT))
    await stub.set_private_data_validation_parameter(coll, key, b"\x0a\xff not a policy")
    stub.commit()
    assert await owed_everywhere(net, HK, CN) == {0}
    assert (await net.audit())["anomalies"] == {"cnbank/pair-cnbank-hkbank/unpinned": 1}
    net.advance(seconds=61)
    await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
    assert await net.balance(HK, HK_PAY) == 1_000
    with pytest.raises(ShimError, match="3105"):
        await net.write(coll, key, b"again", pin="none")


# ---------------------------------------------------------------------- decisions and keys


async def test_a_decision_under_another_transfers_key_counts_for_nobody() -> None:
    """cnbank files an accept of transfer A under the key of transfer B: B stays undecided
    (hkbank refunds it after expiry), A stays undecided, and the audit names cnbank."""
    net = await network((HK, HK_PAY, 1_000), (CN, CN_RCV, 0))
    a = await net.initiate(HK, HK_PAY, CN, CN_RCV, 300, "inv-a", ttl_seconds=600)
    b = await net.initiate(HK, HK_PAY, CN, CN_RCV, 300, "inv-b", ttl_seconds=600)
    await net.write(pair_collection(CN, HK), decision_key(b), Decision(
        transfer_id=a, outcome=Outcome.ACCEPTED, payer_bank=HK, payee_bank=CN, amount=300,
        currency="USD", decided_at=AT, tx_id="x"))
    assert await owed_everywhere(net, HK, CN) == {0}
    net.advance(seconds=601)
    for tid in (a, b):
        await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
    assert await net.balance(HK, HK_PAY) == 1_000
    audit = await net.audit()
    assert audit["anomalies"] == {"cnbank/pair-cnbank-hkbank/wrong_key": 1}


@pytest.mark.parametrize("field_", ["amount", "currency"])
async def test_a_mismatched_accept_blocks_the_honest_payers_refund(field_: str) -> None:
    net = await network((HK, HK_PAY, 1_000), (CN, CN_RCV, 0))
    tid = await net.initiate(HK, HK_PAY, CN, CN_RCV, 400, "inv-1", ttl_seconds=600)
    fields: dict[str, Any] = {"transfer_id": tid, "outcome": Outcome.ACCEPTED,
                              "payer_bank": HK, "payee_bank": CN, "amount": 400,
                              "currency": "USD", "decided_at": AT, "tx_id": "x"}
    fields[field_] = {"amount": 1, "currency": "HKD"}[field_]
    await net.write(pair_collection(CN, HK), decision_key(tid), Decision(**fields))
    assert await owed_everywhere(net, HK, CN) == {0}  # nobody counts it ...
    net.advance(seconds=601)
    await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
    assert await net.balance(HK, HK_PAY) == 1_000  # ... so the payer must get its money back


# ------------------------------------------------------------------- accept / refund races


def _skip(*prefixes: str) -> Any:
    return lambda collection, key: collection.startswith("pair-") and key.startswith(prefixes)


async def test_a_payee_that_skips_the_refund_read_changes_nothing_for_the_payer() -> None:
    """hkbank refunds an expired transfer; cnbank's server then accepts it without reading
    the refund (and credits its own customer). Ledger order: the refund came first, so
    hkbank owes nothing and its customer keeps the refund."""
    net = await network((HK, HK_PAY, 1_000), (CN, CN_RCV, 0))
    tid = await net.initiate(HK, HK_PAY, CN, CN_RCV, 400, "inv-1", ttl_seconds=60)
    net.advance(seconds=61)
    await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
    net.skipped[CN] = _skip("refund/")
    net.advance(seconds=-120)  # its server also ignores the expiry (any proposal time)
    await net.submit(CN, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    assert await owed_everywhere(net, HK, CN) == {0}
    assert await net.balance(HK, HK_PAY) == 1_000


async def test_a_payer_that_skips_the_decision_read_still_owes_what_was_accepted() -> None:
    """usbank accepts cnbank's transfer; cnbank's server then refunds it to its own customer
    without reading the decision. Ledger order: the accept came first; cnbank owes it."""
    net = await network((CN, CN_PAY, 1_000), (US, US_RCV, 0))
    tid = await net.initiate(CN, CN_PAY, US, US_RCV, 400, "inv-1", ttl_seconds=60)
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": CN})
    net.skipped[CN] = _skip("dec/")
    net.advance(seconds=61)
    await net.submit(CN, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    assert await owed_everywhere(net, CN, US) == {400}
    assert await net.balance(US, US_RCV) == 400
    audit = await net.audit()
    assert not audit["ok"]  # the money exists twice, and the audit says so


@pytest.mark.parametrize("late", ["refund", "accept"])
async def test_a_refund_after_the_accept_is_reported_naming_its_writer(late: str) -> None:
    """The two races above, as the audit and the honest bank's obligations report them."""
    if late == "refund":
        net = await network((CN, CN_PAY, 1_000), (US, US_RCV, 0))
        tid = await net.initiate(CN, CN_PAY, US, US_RCV, 400, "inv-1", ttl_seconds=60)
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": CN})
        net.skipped[CN] = _skip("dec/")
        net.advance(seconds=61)
        await net.submit(CN, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    else:
        net = await network((HK, HK_PAY, 1_000), (CN, CN_RCV, 0))
        tid = await net.initiate(HK, HK_PAY, CN, CN_RCV, 400, "inv-1", ttl_seconds=60)
        net.advance(seconds=61)
        await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
        net.skipped[CN] = _skip("refund/")
        net.advance(seconds=-120)
        await net.submit(CN, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    net.skipped.clear()
    audit = await net.audit()
    assert names_bad(audit["anomalies"])
    _, page = await owed(net, CN, honest := (US if late == "refund" else HK), honest)
    assert names_bad(page["anomalies"])


@pytest.mark.parametrize(("late", "claim"), [
    ("refund", "initiate"), ("refund", "made_up"), ("accept", "initiate")])
async def test_a_claimed_tx_id_decides_an_accept_refund_race(late: str, claim: str) -> None:
    """``late == "refund"``: usbank accepted cnbank's transfer, then cnbank writes a refund
    (pinned, well placed) claiming an earlier transaction. ``late == "accept"``: hkbank
    refunded its expired transfer to cnbank, then cnbank writes an accept so claiming."""
    if late == "refund":
        net = await network((CN, CN_PAY, 1_000), (US, US_RCV, 0))
        tid = await net.initiate(CN, CN_PAY, US, US_RCV, 400, "inv-1", ttl_seconds=60)
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": CN})
        debtor, creditor, expected = CN, US, 400
    else:
        net = await network((HK, HK_PAY, 1_000), (CN, CN_RCV, 0))
        tid = await net.initiate(HK, HK_PAY, CN, CN_RCV, 400, "inv-1", ttl_seconds=60)
        net.advance(seconds=61)
        await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
        debtor, creditor, expected = HK, CN, 0
    t = net.stored(Transfer, pair_collection(debtor, creditor), transfer_key(tid))
    claimed = t.tx_id if claim == "initiate" else "f" * 64
    if late == "refund":
        await net.write(pair_collection(CN, US), refund_key(tid), Refund(
            transfer_id=tid, payer_bank=CN, payee_bank=US, amount=400, currency="USD",
            cause=RefundCause.EXPIRED, refunded_at=AT, tx_id=claimed))
    else:
        await net.write(pair_collection(CN, HK), decision_key(tid), Decision(
            transfer_id=tid, outcome=Outcome.ACCEPTED, payer_bank=HK, payee_bank=CN,
            amount=400, currency="USD", decided_at=AT, tx_id=claimed))
    assert await owed_everywhere(net, debtor, creditor) == {expected}


async def test_an_unbacked_transfer_is_its_payers_debt() -> None:
    """cnbank writes (pinned, well placed) a transfer it never debited anyone for. usbank
    accepts it and credits its customer: cnbank owes usbank the amount, by every bank's
    figures (harmless to usbank: a transfer is its payer's word against itself), and the
    audit fails on cnbank's books (its out-supply does not match its transfers)."""
    net = await network((US, US_RCV, 0))
    (tid,) = ids("cnxfer", 1)
    await net.write(pair_collection(CN, US), transfer_key(tid), Transfer(
        transfer_id=tid, payer_bank=CN, payee_bank=US, payee_account=US_RCV, amount=900,
        currency="USD", created_at=AT, expires_at=FAR, tx_id="x"))
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": CN})
    assert await net.balance(US, US_RCV) == 900
    assert await owed_everywhere(net, CN, US) == {900}
    audit = await net.audit()
    assert audit["failures"] == ["cnbank->usbank USD: out_matches_transfers fails",
                                 "USD: supply plus in-flight differs from minted less burned"]


async def test_a_late_accept_that_commits_before_the_refund_is_an_accept() -> None:
    """cnbank's server accepts hkbank's transfer after it expired (its proposal time is its
    own), before hkbank's sweeper refunds. It counts as an accept: hkbank owes cnbank and
    can no longer refund. Harmless by the model (the payment reached the payee bank, which
    is now owed nothing it did not accept), but expiry binds only the payee's own server:
    a residual risk the payer bank takes until its refund commits (stated in the report)."""
    net = await network((HK, HK_PAY, 1_000), (CN, CN_RCV, 0))
    tid = await net.initiate(HK, HK_PAY, CN, CN_RCV, 400, "inv-1", ttl_seconds=60)
    net.advance(seconds=3600)
    late = net.now
    net.advance(seconds=-3600)  # the proposal time its server claims
    await net.submit(CN, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    net.now = late
    with pytest.raises(DepositTokenError, match="INVALID_STATE"):
        await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
    assert await owed_everywhere(net, HK, CN) == {400}


# ----------------------------------------------------------------------------- settlements


async def test_settlements_colliding_with_a_real_rtgs_reference_harm_only_their_writer(
) -> None:
    """usbank confirmed RTGS-1 from hkbank. cnbank writes, in its own pair toward usbank,
    settlements naming RTGS-1 (twice, under other keys), and one under the key shape of a
    real confirmation with another bank's parties. Only what usbank owes cnbank can go
    down (a creditor's own word against its own claim: harmless to usbank); hkbank's debt
    to usbank, and usbank's own confirmation, are untouched."""
    net = await network((HK, HK_PAY, 10_000), (US, US_RCV, 0), (US, US_2, 10_000),
                        (CN, CN_RCV, 0))
    t1 = await net.initiate(HK, HK_PAY, US, US_RCV, 700, "inv-1")
    await net.submit(US, "accept_transfer", {"transfer_id": t1, "payer_bank": HK})
    t2 = await net.initiate(US, US_2, CN, CN_RCV, 500, "inv-2")
    await net.submit(CN, "accept_transfer", {"transfer_id": t2, "payer_bank": US})
    await net.submit(US, "confirm_settlement", {"debtor_bank": HK, "currency": "USD",
                                                "amount": 200, "rtgs_reference": "RTGS-1"})
    (real_key,) = [k for k in net.ledger.keys(pair_collection(US, HK))
                   if k.startswith("settle/")]
    coll = pair_collection(CN, US)
    for i in range(2):
        await net.write(coll, settlement_key(f"{i}" * 32), Settlement(
            debtor_bank=US, creditor_bank=CN, currency="USD", amount=100,
            rtgs_reference="RTGS-1", settled_at=AT, tx_id="x"))
    await net.write(coll, real_key, Settlement(
        debtor_bank=HK, creditor_bank=US, currency="USD", amount=700,
        rtgs_reference="RTGS-1", settled_at=AT, tx_id="x"))
    assert await owed_everywhere(net, HK, US) == {500}
    assert await owed_everywhere(net, US, CN) == {300}  # cnbank forgave itself 200
    audit = await net.audit()
    assert audit["anomalies"] == {"cnbank/pair-cnbank-usbank/wrong_parties": 1}


async def test_amounts_at_max_overflow_nothing_and_block_nothing() -> None:
    """cnbank writes settlements at MAX_AMOUNT (their sum exceeds it), a transfer at
    MAX_AMOUNT toward a funded usbank account, and one above MAX_AMOUNT. Every scan goes on;
    usbank cannot be made to credit beyond MAX_AMOUNT; the record above it is nobody's."""
    net = await network((US, US_RCV, 5), (CN, CN_RCV, 0))
    coll = pair_collection(CN, US)
    for i in range(2):
        await net.write(coll, settlement_key(f"{i}" * 32), Settlement(
            debtor_bank=US, creditor_bank=CN, currency="USD", amount=MAX_AMOUNT,
            rtgs_reference=f"R{i}", settled_at=AT, tx_id="x"))
    (big, huge) = ids("cnbig", 2)
    for tid, amount in ((big, MAX_AMOUNT), (huge, MAX_AMOUNT + 1)):
        raw = encode(Transfer(transfer_id=tid, payer_bank=CN, payee_bank=US,
                              payee_account=US_RCV, amount=MAX_AMOUNT, currency="USD",
                              created_at=AT, expires_at=FAR, tx_id="x"), SALT)
        raw = raw.replace(str(MAX_AMOUNT).encode(), str(amount).encode())
        await net.write(coll, transfer_key(tid), raw)
    with pytest.raises(DepositTokenError):
        await net.submit(US, "accept_transfer", {"transfer_id": big, "payer_bank": CN})
    assert await net.balance(US, US_RCV) == 5
    assert await owed_everywhere(net, CN, US) == {0}
    amount, _ = await owed(net, US, CN, US)
    assert amount == -2 * MAX_AMOUNT  # cnbank's own word that usbank prepaid it
    audit = await net.audit()
    assert audit["anomalies"] == {"cnbank/pair-cnbank-usbank/undecodable": 1}


# --------------------------------------------------------------- cursors and ledger order


async def test_a_forged_cursor_or_ledger_order_fools_only_the_client_that_sends_it() -> None:
    """cnbank's client sends usbank's peer a cursor whose tally says cnbank settled its
    debt, and a ledger order placing a refund before the accept: the answer it gets is
    forged, but usbank's own reads, and the regulator's, are unchanged; and the cursor of
    another pair's query is refused to it."""
    net = await network((CN, CN_PAY, 1_000), (US, US_RCV, 0), (HK, HK_PAY, 1_000))
    tid = await net.initiate(CN, CN_PAY, US, US_RCV, 400, "inv-1")
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": CN})
    forged = await net.evaluate(US, "get_obligations", {
        "bank_a": CN, "bank_b": US, "page_size": 100,
        "cursor": {"kind": "obligations", "scope": "cnbank/usbank", "segment": 4,
                   "after": None, "tally": {"settled/cnbank/usbank/USD": 400,
                                            "xfer/cnbank/usbank/USD/accepted": 400},
                   "disputes": [], "anomalies": []},
        "ledger_order": {"f" * 64: [0, 0]},
    }, caller=Net.caller(CN))
    assert forged["done"]
    assert forged["net"] == {"USD": 0}  # what cnbank's client chose to be told
    assert await owed_everywhere(net, CN, US) == {400}
    with pytest.raises(DepositTokenError, match="NOT_AUTHORIZED"):
        await net.evaluate(US, "get_obligations", {"bank_a": HK, "bank_b": US},
                           caller=Net.caller(CN))
    with pytest.raises(DepositTokenError, match="NOT_AUTHORIZED"):
        await net.evaluate("regulator", "audit", {}, caller=Net.caller(CN))


# ----------------------------------------------------------------------------------- holds


async def test_the_audit_reports_a_held_amount_paid_out() -> None:
    net = await network((CN, CN_PAY, 1_000), (US, US_RCV, 0))
    await net.submit("regulator", "set_hold", {"bank": CN, "account_id": CN_PAY,
                                               "held_amount": 1_000, "reason": "court"})
    with pytest.raises(DepositTokenError):  # cnbank's honest server refuses ...
        await net.initiate(CN, CN_PAY, US, US_RCV, 600, "inv-0")
    net.skipped[CN] = lambda collection, key: collection.startswith("holds-")
    tid = await net.initiate(CN, CN_PAY, US, US_RCV, 600, "inv-1")  # ... its modified one not
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": CN})
    audit = await net.audit()
    assert not audit["ok"]
    assert audit["anomalies"].get("cnbank/acct-cnbank/held_amount_paid_out") == 1, audit
    (breach,) = [a for a in audit["anomaly_records"] if a["what"] == "held_amount_paid_out"]
    assert breach["writers"] == [CN]


# ====================================================================== property-based search
#
# The honest model. Honest banks' actions are recorded as they succeed (and each one's
# success or refusal is predicted first). cnbank's records are judged from the ledger by
# ``judge``, written here from the placement table (issue item 1) and independent of the
# contract's own binder: a record is *legit* when it decodes, agrees with its collection and
# key, and carries both banks' pin; a legit record is cnbank's real word (it counts, as an
# honest bank's would); anything else must be reported naming cnbank, or be harmless.

Pos = tuple[int, int]


@dataclass
class ModelTransfer:
    tid: str
    payer: str
    payee: str
    payee_account: str
    amount: int
    expires_at: str
    payer_account: str | None = None  # None: forged by cnbank, nobody was debited
    accepted_at: Pos | None = None  # by an honest payee (cnbank's accepts are judged)
    rejected: bool = False
    refunded_at: Pos | None = None  # by an honest payer (cnbank's refunds are judged)


@dataclass
class Model:
    balances: dict[tuple[str, str], int] = field(default_factory=dict)  # honest accounts
    accounts: dict[str, list[str]] = field(default_factory=dict)  # bank -> USD account ids
    transfers: list[ModelTransfer] = field(default_factory=list)
    settled: dict[tuple[str, str], int] = field(default_factory=dict)  # honest confirmations


def _pinned_both(net: Adversary, collection: str, key: str) -> bool:
    param = net.ledger.get_metadata(collection, key).get("VALIDATION_PARAMETER")
    return param is not None and param == pin_bytes(collection, "both")


def judge(net: Adversary, kind: type[Any], collection: str, key: str) -> Any:
    """cnbank's record under ``key`` if it is legit there (see above), else ``None``."""
    raw = net.ledger.get_private_data(collection, key)
    if raw is None:
        return None
    try:
        rec = decode(kind, raw)
    except DepositTokenError:
        return None
    other = collection.split("-")[2] if collection.startswith("pair-") else None
    checks: dict[type[Any], Callable[[Any], bool]] = {
        Transfer: lambda r: (r.payer_bank, r.payee_bank) == (CN, other)
        and key == transfer_key(r.transfer_id),
        Refund: lambda r: (r.payer_bank, r.payee_bank) == (CN, other)
        and key == refund_key(r.transfer_id),
        Decision: lambda r: (r.payee_bank, r.payer_bank) == (CN, other)
        and key == decision_key(r.transfer_id),
        Settlement: lambda r: (r.creditor_bank, r.debtor_bank) == (CN, other)
        and key.startswith("settle/"),
        Account: lambda r: r.bank == CN and other is None
        and key == account_keys(CN).account(r.account_id),
        SupplyRecord: lambda r: r.counterparty != CN and other is None
        and key.startswith(f"sup/{r.currency}/"),
    }
    ok = checks[kind](rec)
    if ok and other is not None and not _pinned_both(net, collection, key):
        return None
    return rec if ok else None


def position(net: Adversary, collection: str, key: str) -> Pos:
    raw = net.ledger.get_private_data(collection, key)
    assert raw is not None
    return net.order[hashlib.sha256(raw).hexdigest()]


def effect(net: Adversary, t: ModelTransfer) -> str:
    """``accepted``, ``refunded``, ``rejected`` or ``open``, by the honest model."""
    accepted, refunded = t.accepted_at, t.refunded_at
    if t.payee == CN:
        d = judge(net, Decision, pair_collection(CN, t.payer), decision_key(t.tid))
        if d is not None and d.outcome is Outcome.ACCEPTED and (d.amount, d.currency) == (
                t.amount, "USD"):
            accepted = position(net, pair_collection(CN, t.payer), decision_key(t.tid))
    if t.payer == CN and judge(net, Refund, pair_collection(CN, t.payee),
                               refund_key(t.tid)) is not None:
        refunded = position(net, pair_collection(CN, t.payee), refund_key(t.tid))
    if accepted is not None and refunded is not None:
        return "accepted" if accepted < refunded else "refunded"
    if accepted is not None:
        return "accepted"
    return "refunded" if refunded is not None else "open"


def decided(net: Adversary, t: ModelTransfer) -> str | None:
    """The decision the payer's and payee's servers see: ``accepted``/``rejected``/None."""
    if t.payee != CN:
        return "accepted" if t.accepted_at else "rejected" if t.rejected else None
    d = judge(net, Decision, pair_collection(CN, t.payer), decision_key(t.tid))
    if d is None:
        return None
    if (d.amount, d.currency) != (t.amount, "USD"):
        # a decision about something else, accept or reject, is nobody's (decision_mismatch):
        # it neither blocks the payer's refund nor hastens it (the payer refunds at expiry)
        return None
    return str(d.outcome.value)


def refunded(net: Adversary, t: ModelTransfer) -> bool:
    if t.payer != CN:
        return t.refunded_at is not None
    return judge(net, Refund, pair_collection(CN, t.payee), refund_key(t.tid)) is not None


def model_owed(net: Adversary, model: Model, debtor: str, creditor: str) -> int:
    accepted = sum(t.amount for t in model.transfers
                   if (t.payer, t.payee) == (debtor, creditor) and effect(net, t) == "accepted")
    settled = model.settled.get((debtor, creditor), 0)
    if creditor == CN:
        coll = pair_collection(CN, debtor)
        for key in net.ledger.keys(coll):
            s = judge(net, Settlement, coll, key) if key.startswith("settle/") else None
            if s is not None and s.currency == "USD":
                settled += s.amount
    return accepted - settled


def expired(net: Adversary, t: ModelTransfer) -> bool:
    return net.now >= parse_timestamp(t.expires_at)


async def attempt(net: Adversary, expect: bool, org: str, name: str,
                  request: dict[str, Any]) -> bool:
    """Run an honest transaction and check the model predicted its outcome."""
    refusal = ""
    try:
        await net.submit(org, name, request)
    except DepositTokenError as error:
        refusal = str(error)
    assert expect == (not refusal), (
        f"{name} on {org}: {refusal or 'succeeded'}; the model expected "
        f"{'success' if expect else 'a refusal'}")
    return not refusal


async def step(net: Adversary, model: Model, op: tuple[Any, ...], n: int) -> None:
    kind = op[0]
    ts = model.transfers
    if kind == "advance":
        net.advance(seconds=op[1])
    elif kind == "open":
        bank = op[1]
        account = f"{bank[:2]}open{n:04d}".ljust(24, "x")
        await net.open(bank, "USD", account)
        model.accounts[bank].append(account)
        if bank in HONEST:
            model.balances[(bank, account)] = 0
    elif kind == "mint":
        bank, i, amount = op[1:]
        account = model.accounts[bank][i % len(model.accounts[bank])]
        expect = bank not in HONEST or model.balances[(bank, account)] + amount <= MAX_AMOUNT
        try:
            await net.mint(bank, account, amount, f"mint-{n}")
        except DepositTokenError:
            assert bank == CN or not expect
            return
        if bank in HONEST:
            model.balances[(bank, account)] += amount
    elif kind == "initiate":
        (payer, payee), i, j, amount, ttl = op[1:]
        src = model.accounts[payer][i % len(model.accounts[payer])]
        dst = model.accounts[payee][j % len(model.accounts[payee])]
        try:
            tid = await net.initiate(payer, src, payee, dst, amount, f"inv-{n}",
                                     ttl_seconds=ttl)
        except DepositTokenError:
            assert payer == CN or model.balances[(payer, src)] < amount
            return
        if payer in HONEST:
            assert model.balances[(payer, src)] >= amount
            model.balances[(payer, src)] -= amount
        ts.append(ModelTransfer(tid, payer, payee, dst, amount,
                                format_timestamp(net.now + timedelta(seconds=ttl)), src))
    elif kind in ("accept", "reject", "refund") and ts:
        t = ts[op[1] % len(ts)]
        if kind == "refund":
            org = t.payer
            expect = (not refunded(net, t) and t.payer_account is not None
                      and (decided(net, t) == "rejected"
                           or (decided(net, t) is None and expired(net, t)))
                      # no balance may exceed MAX_AMOUNT, not even by a refund: the money
                      # waits (in flight) until the account can take it
                      and (org == CN or model.balances[(org, t.payer_account)]
                           + t.amount <= MAX_AMOUNT))
            request = {"transfer_id": t.tid, "payee_bank": t.payee}
        else:
            org = t.payee
            expect = decided(net, t) is None and not refunded(net, t)
            if kind == "accept":
                expect = (expect and not expired(net, t)
                          and t.payee_account in model.accounts[t.payee]
                          and (org == CN or model.balances[(org, t.payee_account)]
                               + t.amount <= MAX_AMOUNT))
            request = {"transfer_id": t.tid, "payer_bank": t.payer}
        if org == CN:  # cnbank's honest code: whatever it does is judged from the ledger
            # (a key it pinned earlier with a forgery may now block its own write)
            with contextlib.suppress(DepositTokenError, EndorsementPolicyFailureError):
                await net.submit(org, f"{kind}_transfer", request)
            return
        ok = await attempt(net, expect, org, f"{kind}_transfer", request)
        if not ok:
            return
        pos = (net.ledger.height, 0)
        if kind == "accept":
            t.accepted_at = pos
            model.balances[(org, t.payee_account)] += t.amount
        elif kind == "reject":
            t.rejected = True
        else:
            t.refunded_at = pos
            assert t.payer_account is not None
            model.balances[(org, t.payer_account)] += t.amount
    elif kind == "settle":
        (creditor, debtor), amount = op[1:]
        await net.submit(creditor, "confirm_settlement", {
            "debtor_bank": debtor, "currency": "USD", "amount": amount,
            "rtgs_reference": f"RTGS-{n}"})
        if creditor in HONEST:
            model.settled[(debtor, creditor)] = model.settled.get((debtor, creditor), 0) + amount
    elif kind == "skip" and ts:
        # cnbank's server decides or refunds without reading what the other bank wrote
        t = ts[op[1] % len(ts)]
        if CN not in (t.payer, t.payee):
            return
        net.skipped[CN] = _skip("refund/", "dec/")
        try:
            if t.payee == CN:
                await net.submit(CN, "accept_transfer", {"transfer_id": t.tid,
                                                         "payer_bank": t.payer})
            else:
                await net.submit(CN, "refund_transfer", {"transfer_id": t.tid,
                                                         "payee_bank": t.payee})
        except DepositTokenError:
            pass
        except EndorsementPolicyFailureError:
            # it rewrote its own pinned decision or refund: invalidated
            key = decision_key(t.tid) if t.payee == CN else refund_key(t.tid)
            coll = pair_collection(CN, t.payer if t.payee == CN else t.payee)
            assert _pinned_both(net, coll, key)
        finally:
            net.skipped.clear()
    elif kind == "forge":
        await forge_step(net, model, op[1:], n)
    elif kind == "mutate":
        await mutate_step(net, op[1:])


def _cn_keys(net: Adversary, collection: str) -> list[str]:
    return sorted(net.ledger.keys(collection))


def _expect_raise(net: Adversary, collection: str, key: str) -> bool:
    """The key exists and carries a parameter cnbank's peer alone does not satisfy (pinned to
    both banks of a pair, or, for the account key it shares, to it and the regulator)."""
    if net.ledger.get_private_data(collection, key) is None:
        return False
    param = net.ledger.get_metadata(collection, key).get("VALIDATION_PARAMETER")
    if param is None:
        return False
    try:
        policy = parse_n_out_of(param)
    except ValueError:
        return False  # not a policy: reported as unpinned (fabric#3105 aside)
    return not policy.is_satisfied_by([(msp_of(CN), RoleType.PEER)])


async def _dishonest(net: Adversary, collection: str, key: str, value: bytes | Record | None,
                     *, pin: PinMode = "none", purge: bool = False,
                     tx_id: str | None = None) -> bool:
    """One dishonest write; it raises exactly when the key is pinned to both banks."""
    expect = _expect_raise(net, collection, key)
    try:
        await net.write(collection, key, value, pin=pin, purge=purge, tx_id=tx_id)
    except EndorsementPolicyFailureError:
        assert expect, f"a write of {key} in {collection} was refused, unpinned"
        return False
    assert not expect, f"cnbank alone rewrote {key} in {collection}, pinned to both banks"
    return True


async def forge_step(net: Adversary, model: Model, args: tuple[Any, ...], n: int) -> None:
    other, what, t_idx, variant, flaw, accept, pin, existing = args
    ts = model.transfers
    fresh = f"forged{n:04d}".ljust(24, "y")
    tx_id = net.ledger.new_tx_id()  # the record's tx_id field is its writer's claim
    coll = acct_collection(CN) if what in ("account", "supply") else pair_collection(CN, other)
    keys = _cn_keys(net, coll)
    if existing and keys:
        key: str | None = keys[variant % len(keys)]
    else:
        key = None
    value: bytes | Record
    if what == "garbage":
        value = [b"\x00garbage", b"{}", b"[1,2]", b'{"v":1,"type":"transfer"}'][variant % 4]
        key = key or ["xfer/", "dec/", "settle/", "refund/"][variant % 4] + fresh
    elif what == "transfer":
        accts = model.accounts[other]
        payee_account = accts[variant % len(accts)] if variant % 3 else fresh
        amount = [1, 250, MAX_AMOUNT][variant % 3]
        rec = Transfer(transfer_id=fresh, payer_bank=CN if variant % 5 else HK,
                       payee_bank=other, payee_account=payee_account, amount=amount,
                       currency="USD", created_at=AT,
                       expires_at=FAR if variant % 2 else AT, tx_id=tx_id)
        value, key = rec, key or transfer_key(fresh)
    elif what in ("decision", "refund"):
        # aimed at a transfer cnbank takes part in (its counterparty decides the collection)
        if what == "decision":
            cands = [t for t in ts if t.payee == CN]
        else:
            cands = [t for t in ts if t.payer == CN]
        t = cands[t_idx % len(cands)] if cands else None
        if t is not None:
            other = t.payer if what == "decision" else t.payee
            coll = pair_collection(CN, other)
            keys = _cn_keys(net, coll)
            key = keys[variant % len(keys)] if existing and keys else None
        tid = t.tid if t is not None and flaw != "orphan" else fresh
        amount = t.amount if t is not None else 7
        if flaw == "amount":
            amount = MAX_AMOUNT
        wrong = US if other == HK else HK
        if what == "decision":
            outcome = Outcome.ACCEPTED if accept else Outcome.REJECTED
            value = Decision(transfer_id=tid, outcome=outcome,
                             payer_bank=wrong if flaw == "parties" else other,
                             payee_bank=CN, amount=amount, currency="USD", decided_at=AT,
                             tx_id=tx_id)
            key = key or decision_key(fresh if flaw == "other_key" else tid)
        else:
            value = Refund(transfer_id=tid, payer_bank=CN,
                           payee_bank=wrong if flaw == "parties" else other,
                           amount=amount, currency="USD", cause=RefundCause.EXPIRED,
                           refunded_at=AT, tx_id=tx_id)
            key = key or refund_key(fresh if flaw == "other_key" else tid)
    elif what == "settlement":
        debtor, creditor = (other, CN) if variant % 3 else (CN, other)  # the critical forgery
        value = Settlement(debtor_bank=debtor, creditor_bank=creditor, currency="USD",
                           amount=[5, 100, MAX_AMOUNT][variant % 3], rtgs_reference="RTGS-1",
                           settled_at=AT, tx_id=tx_id)
        key = key or settlement_key(fresh[:22] + f"{variant:02d}")
    elif what == "account":
        value = Account(account_id=fresh, bank=CN if variant % 2 else US, currency="USD",
                        owner_ref="x", balance=[0, 10**6, MAX_AMOUNT][variant % 3],
                        opened_at=AT)
        key = key or account_keys(CN).account(fresh)
    else:
        value = SupplyRecord(currency="USD", kind=SupplyKind.MINT, amount=10**6,
                             counterparty=None if variant % 2 else CN, tx_id=tx_id, at=AT)
        key = key or supply_key("USD", fresh)
    assert key is not None
    if not await _dishonest(net, coll, key, value, pin=pin, tx_id=tx_id):
        return
    if what == "transfer" and key == transfer_key(fresh):
        rec = judge(net, Transfer, coll, key)
        if rec is not None:  # cnbank's real word: its payee bank may accept it
            ts.append(ModelTransfer(fresh, CN, other, rec.payee_account, rec.amount,
                                    rec.expires_at))


async def mutate_step(net: Adversary, args: tuple[Any, ...]) -> None:
    where, idx, action = args
    coll = acct_collection(CN) if where == CN else pair_collection(CN, where)
    keys = _cn_keys(net, coll)
    if not keys:
        return
    key = keys[idx % len(keys)]
    if action in ("delete", "purge"):
        await _dishonest(net, coll, key, None, purge=action == "purge")
    elif coll.startswith("pair-"):
        expect = _expect_raise(net, coll, key)
        try:
            await net.repin(coll, key, "self" if action == "repin_self" else "one_of_two")
        except EndorsementPolicyFailureError:
            assert expect
            return
        assert not expect


_BANK = st.sampled_from([HK, US, CN])
_OTHER = st.sampled_from([HK, US])
_PIN = st.sampled_from(["both", "both", "both", "self", "one_of_two", "none"])
_PAIRS = [(HK, CN), (CN, US), (US, CN), (CN, HK), (HK, US), (US, HK)]
_STEPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "initiate": st.tuples(st.just("initiate"), st.sampled_from(_PAIRS), st.integers(0, 3),
                          st.integers(0, 3), st.sampled_from([400, 1, 3_000, 20_000]),
                          st.sampled_from([60, 3600])),
    "decide": st.tuples(st.sampled_from(["accept", "refund", "reject"]), st.integers(0, 20)),
    "forge": st.tuples(st.just("forge"), _OTHER,
                       st.sampled_from(["decision", "refund", "transfer", "settlement",
                                        "account", "supply", "garbage"]),
                       st.integers(0, 20), st.integers(0, 11),
                       st.sampled_from(["amount", "none", "parties", "orphan", "other_key"]),
                       st.booleans(), _PIN, st.sampled_from([False, False, False, True])),
    "advance": st.tuples(st.just("advance"), st.sampled_from([300, 30, 4000])),
    "open": st.tuples(st.just("open"), _BANK),
    "mint": st.tuples(st.just("mint"), _BANK, st.integers(0, 3),
                      st.sampled_from([500, 1, MAX_AMOUNT])),
    "settle": st.tuples(st.just("settle"), st.sampled_from(_PAIRS),
                        st.sampled_from([400, 1, MAX_AMOUNT])),
    "skip": st.tuples(st.just("skip"), st.integers(0, 20)),
    "mutate": st.tuples(st.just("mutate"), st.sampled_from([HK, US, CN]), st.integers(0, 20),
                        st.sampled_from(["delete", "purge", "repin_self", "repin_either"])),
}
#: How often each kind of step is drawn (by repetition).
_WEIGHTS = ["initiate"] * 4 + ["decide"] * 4 + ["forge"] * 4 + [
    "advance", "advance", "open", "mint", "settle", "skip", "mutate"]
OPS = st.sampled_from(_WEIGHTS).flatmap(lambda kind: _STEPS[kind])
#: Every sequence starts with transfers in flight both ways between cnbank and each honest
#: bank, so that the forgeries have something to aim at.
PROLOGUE: list[tuple[Any, ...]] = [
    ("initiate", (HK, CN), 0, 1, 400, 3600), ("initiate", (US, CN), 0, 1, 300, 60),
    ("initiate", (CN, US), 0, 1, 200, 3600), ("initiate", (CN, HK), 0, 1, 100, 60),
]


async def check(net: Adversary, model: Model) -> None:
    """The invariants, after a whole sequence."""
    # no honest customer loses money
    for (bank, account), balance in model.balances.items():
        assert await net.balance(bank, account) == balance, (bank, account)
    # obligations: by each bank of the pair and by the regulator, as the model says
    audit = await net.audit(page_size=50)
    for debtor, creditor in [(a, b) for a in (HK, US, CN) for b in (HK, US, CN) if a != b]:
        expected = model_owed(net, model, debtor, creditor)
        for org in (debtor, creditor):
            got, page = await owed(net, debtor, creditor, org)
            assert got == expected, (debtor, creditor, org, page)
            # every race is decided by proven ledger positions: none is left disputed
            assert page["disputes"] == [], (debtor, creditor, org, page["disputes"])
        rows = [p for p in audit["pairs"] if (p["payer"], p["payee"]) == (debtor, creditor)]
        assert sum(p["owed"] for p in rows) == expected, (debtor, creditor, rows)
    # every anomaly names cnbank; every record of cnbank's that the audit scans and that is
    # not its legit word is reported, naming it
    for a in audit["anomaly_records"]:
        assert CN in a["writers"], a
    reported = {(a["collection"], a["key"]) for a in audit["anomaly_records"]}
    kinds = {"xfer/": Transfer, "dec/": Decision, "settle/": Settlement, "acct/": Account,
             "sup/": SupplyRecord}
    for coll in (acct_collection(CN), pair_collection(CN, HK), pair_collection(CN, US)):
        for key in _cn_keys(net, coll):
            kind = next((k for p, k in kinds.items() if key.startswith(p)), None)
            if kind is None:
                # refund/ counts only through its transfer (judged in the model's effects),
                # open/ and out/ and ref/ and hist/ are cnbank's own hints and books
                continue
            if kind in (Account, SupplyRecord) and not coll.startswith("acct-"):
                continue
            rec = judge(net, kind, coll, key)
            if rec is not None and kind is Decision:
                t = next((t for t in model.transfers if t.tid == rec.transfer_id
                          and (t.payer, t.payee) == (rec.payer_bank, CN)), None)
                if t is None or (t.amount, "USD") != (rec.amount, rec.currency):
                    rec = None  # an accept of no transfer, or of another one
            if rec is None:
                assert (coll, key) in reported, (coll, key, audit["anomalies"])


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=st.lists(OPS, min_size=8, max_size=40))
# The attacks of the issue and of the targeted tests above, always run (prologue transfers:
# 0 hkbank->cnbank, 1 usbank->cnbank, 2 cnbank->usbank, 3 cnbank->hkbank). The first one is
# the mismatched pinned accept that used to block the payer's refund.
@example(ops=[("forge", HK, "decision", 0, 0, "amount", True, "both", False)])
@example(ops=[("forge", HK, "decision", 0, 0, "amount", False, "both", False),
              ("refund", 0), ("advance", 4000), ("refund", 0)])  # a mismatched rejection
@example(ops=[("forge", US, "settlement", 0, 0, "none", False, "both", False),
              ("accept", 2)])  # the debtor's settlement in its own collection
@example(ops=[("forge", HK, "decision", 0, 0, "none", True, "self", False),
              ("advance", 4000), ("refund", 0)])
@example(ops=[("forge", HK, "garbage", 0, 1, "none", False, "both", False),
              ("advance", 4000), ("refund", 0)])
@example(ops=[("accept", 2), ("advance", 4000), ("skip", 2)])  # refund after the accept
@example(ops=[("advance", 300), ("refund", 1), ("skip", 1)])  # accept after the refund
@example(ops=[("forge", US, "transfer", 0, 1, "none", False, "both", False), ("accept", 4),
              ("mutate", US, 0, "delete"), ("mutate", US, 1, "purge"),
              ("mutate", US, 2, "repin_self")])  # an unbacked transfer, accepted
@example(ops=[("forge", HK, "decision", 0, 0, "other_key", True, "both", False),
              ("forge", HK, "decision", 1, 0, "orphan", True, "both", False),
              ("forge", HK, "refund", 1, 0, "parties", True, "both", False)])
def test_interleavings_of_honest_and_dishonest_operations(ops: list[tuple[Any, ...]]) -> None:
    async def run() -> None:
        net = await network((HK, HK_PAY, 10_000), (HK, HK_2, 0), (US, US_RCV, 10_000),
                            (US, US_2, 0), (CN, CN_PAY, 10_000), (CN, CN_RCV, 0))
        model = Model(
            balances={(HK, HK_PAY): 10_000, (HK, HK_2): 0, (US, US_RCV): 10_000,
                      (US, US_2): 0},
            accounts={HK: [HK_PAY, HK_2], US: [US_RCV, US_2], CN: [CN_PAY, CN_RCV]})
        for n, op in enumerate([*PROLOGUE, *ops]):
            await step(net, model, op, n)
        await check(net, model)
        # the honest sweepers, a day later: every honest payer refunds what it may
        net.advance(days=1)
        for i, t in enumerate(model.transfers):
            if t.payer in HONEST:
                await step(net, model, ("refund", i), len(PROLOGUE) + len(ops) + i)
        await check(net, model)

    asyncio.run(run())
