"""Where a record lives decides whose word it is.

A collection's endorsement policy says which bank's peer may write there; it says nothing
about what the bytes claim. A bank's peer endorses whatever its own chaincode server writes
into its own collections, with any fields. So every record another bank relies on is *bound
to its place* before it counts: the parties come from the collection and the key it was read
from, and the record's own fields must agree with them (DESIGN §4, issue 13):

=================  ============================  =========================================
record             lives in                      must say
=================  ============================  =========================================
``Transfer``       ``pair-<payer>-<payee>``      payer, payee; key ``xfer/<its id>``
``Refund``         ``pair-<payer>-<payee>``      payer, payee; key ``refund/<its id>``
``Opened``         ``pair-<payer>-<payee>``      key ``open/<at>/<its first id>``
``Decision``       ``pair-<payee>-<payer>``      payee, payer; key ``dec/<its id>``
``LockRecord``     ``pair-<payer>-<payee>``      payer, payee; key ``lock/<its id>``
``Quote``          ``pair-<payee>-<payer>``      payee, payer; key ``quote/<its id>``
``Settlement``     ``pair-<creditor>-<debtor>``  creditor, debtor; key ``settle/...``
``Cap``            ``pair-<creditor>-<debtor>``  creditor, debtor; key
                                                 ``cap/<its currency>/<its seq>``
``Account``        ``acct-<bank>``               bank; key ``acct/<tag of its id>``
``Lane``           ``acct-<bank>``               bank; key ``lane/<tag of its id>/<lane>``
``SupplyRecord``   ``acct-<bank>``               key ``sup/<its currency>/...``; a
                                                 counterparty other than the bank itself
``Escrow``         ``pair-<payer>-<payee>``      payer, payee, no payer account; key
                   (``acct-<bank>`` within one)  ``esc/<its id>`` (within: both the bank,
                                                 with the payer account)
``EscrowRelease``  ``pair-<payer>-<payee>``      payer, payee; key ``escrel/<its id>``
``EscrowRefund``   ``pair-<payer>-<payee>``      payer, payee; key ``escref/<its id>``
``EscrowClaim``    ``pair-<payee>-<payer>``      payee, payer; key ``escclaim/<its id>``
``PaymentRequest`` ``pair-<payee>-<payer>``      payee, payer; key ``payreq/<its id>``
``RequestDecline`` ``pair-<payer>-<payee>``      payer, payee; key ``reqdecl/<its id>``
=================  ============================  =========================================

The escrow records and the payment-request records are pinned as transfers are (within one
bank, an escrow's records live in ``acct-<bank>`` and are the bank's own word: no pin is
checked there).

A hash-locked leg's ``LockRecord`` is pinned differently (``lock_pin``): its payer AND one of
its payee or the regulator, so that a payee refusing to co-sign cannot keep a leg claimable
past its deadline; the regulator's peer co-signs the expiry instead (docs/token-model.md,
"Payment versus payment").

The account key a bank shares with the regulator (``AccountKeysRecord``) lives in
``acct-<bank>`` under ``keys/accounts``, pinned to the bank's and the regulator's peers.

Records another bank relies on (transfers, decisions, refunds, settlements, locks, quotes)
are also
*pinned*:
created with a key-level endorsement policy that needs the peers of both banks of the pair
for any later change, delete or purge (``pair_pin``). Fabric never checks what a parameter
says, so a reader compares it byte for byte with the expected one; a record without it could
be rewritten or purged by its writer alone, and counts for nobody (``unpinned``). A ``Cap``
is not pinned: it is the creditor's limit on its own exposure, enforced by the creditor alone
when it accepts, so only the creditor could gain or lose by rewriting it (and it could as
well write a new one).

A record that does not decode, is not pinned as it must be, or whose fields disagree with its
place, is an :class:`Anomaly`: it names the collection, the key and the banks whose peers
alone could have produced it, and it counts for nobody. Nothing here raises on what another
bank wrote: no single record can block a refund, a netting or an audit.

Owns: these checks (pure functions over bytes already read). Must not: read or write the
ledger, or put a private value (an amount, an account id) into an anomaly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from fabshim.statebased import all_and_one_of_policy, all_of_policy

from .errors import CorruptState
from .keys import (
    ACCOUNT_KEYS_KEY,
    TAG_RE,
    AccountKeys,
    acct_collection,
    cap_key,
    decision_key,
    escrow_claim_key,
    escrow_key,
    escrow_refund_key,
    escrow_release_key,
    lock_key,
    pair_collection,
    payment_request_key,
    quote_key,
    refund_key,
    request_decline_key,
    transfer_key,
)
from .records import (
    Account,
    AccountKeysRecord,
    Cap,
    Decision,
    Escrow,
    EscrowClaim,
    EscrowRefund,
    EscrowRelease,
    Lane,
    LockRecord,
    Opened,
    PaymentRequest,
    Quote,
    Record,
    Refund,
    RequestDecline,
    Settlement,
    SupplyRecord,
    Transfer,
    decode,
)
from .registry import BankInfo

__all__ = [
    "MAX_ANOMALY_DETAILS",
    "PINNED",
    "Anomaly",
    "Place",
    "bind",
    "decision_mismatch",
    "lock_anomaly",
    "lock_pin",
    "missing_transfer",
    "pair_pin",
    "unpinned",
]

_R = TypeVar("_R", bound=Record)

#: How many anomalies a scan reports one by one (all are counted): a bank that writes a
#: million garbage records must not grow every honest bank's cursor without bound.
MAX_ANOMALY_DETAILS = 100


def pair_pin(a: BankInfo, b: BankInfo) -> bytes:
    """The validation parameter of a record two banks rely on: both banks' peers
    (deterministic bytes: ``AND`` of the two MSP ids' ``PEER`` roles, sorted)."""
    return _both_peers(a.msp_id, b.msp_id)


@lru_cache(maxsize=1024)
def _both_peers(a: str, b: str) -> bytes:
    # Cached: every pinned record of a batch is written or checked with the same few pins.
    return all_of_policy([a, b])


def lock_pin(payer: BankInfo, payee: BankInfo, regulator_msp_id: str | None) -> bytes:
    """The validation parameter of a hash-locked leg's ``lock/<id>``: the payer's peer AND
    either the payee's or the regulator's (``AND('P.peer', OR('Q.peer', 'R.peer'))``).

    The payee's peer alone could otherwise keep the lock standing, so claimable, past its
    deadline by refusing to co-sign the expiry; the regulator's peer co-signs it instead,
    judging the deadline on its own clock. The payer is always required: neither the payee
    nor the regulator (nor both) can touch the lock without it. Without a regulator the
    two banks' pin (hash-locked transfers are then refused: ``lock_transfer``)."""
    if regulator_msp_id is None:
        return pair_pin(payer, payee)
    return all_and_one_of_policy([payer.msp_id], [payee.msp_id, regulator_msp_id])


#: The records that are pinned at creation and checked by every reader.
PINNED: frozenset[type[Record]] = frozenset(
    {Transfer, Decision, Refund, Settlement, AccountKeysRecord, LockRecord, Escrow,
     EscrowRelease, EscrowRefund, EscrowClaim, PaymentRequest, RequestDecline, Quote})


@dataclass(frozen=True)
class Place:
    """A collection, the bank whose peer alone may write there, the pair's other bank, and
    the validation parameter its pinned records must carry (``None``: none checked)."""

    collection: str
    writer: str
    counterparty: str | None = None
    pin: bytes | None = None
    #: The bank's account keys (``acct-<bank>`` only): an account must lie under the key they
    #: give its id. Without them (a reader that cannot know them) only the key's form is checked.
    accounts: AccountKeys | None = None

    @classmethod
    def pair(cls, asserter: str, counterparty: str) -> Place:
        """``pair-<asserter>-<counterparty>``: what ``asserter`` asserts toward the other
        (without the pin check: see :meth:`between`)."""
        return cls(pair_collection(asserter, counterparty), asserter, counterparty)

    @classmethod
    def between(cls, asserter: BankInfo, counterparty: BankInfo) -> Place:
        """``pair-<asserter>-<counterparty>``, whose pinned records need both banks' peers."""
        return cls(pair_collection(asserter.name, counterparty.name), asserter.name,
                   counterparty.name, pair_pin(asserter, counterparty))

    @classmethod
    def lock(cls, payer: BankInfo, payee: BankInfo, regulator_msp_id: str | None) -> Place:
        """``pair-<payer>-<payee>`` as the place of a ``lock/<id>`` record (:func:`lock_pin`)."""
        return cls(pair_collection(payer.name, payee.name), payer.name, payee.name,
                   lock_pin(payer, payee, regulator_msp_id))

    @classmethod
    def shared_keys(cls, bank: BankInfo, regulator_msp_id: str) -> Place:
        """``acct-<bank>`` as the place of the account key the bank shares with the regulator:
        pinned to both their peers, so the bank cannot change it alone once written."""
        return cls(acct_collection(bank.name), bank.name,
                   pin=all_of_policy([bank.msp_id, regulator_msp_id]))

    @classmethod
    def acct(cls, bank: str, accounts: AccountKeys | None = None) -> Place:
        """``acct-<bank>``: the bank's accounts, supply and history."""
        return cls(acct_collection(bank), bank, accounts=accounts)


@dataclass(frozen=True)
class Anomaly:
    """A record that counts for nobody, and who could have written it.

    ``what`` is a stable code: ``undecodable``, ``wrong_parties``, ``wrong_key``,
    ``unpinned`` (a record two banks rely on, without both banks' validation parameter),
    ``decision_mismatch`` (a decision that does not describe the transfer it names),
    ``accept_without_transfer`` (an accept naming a transfer its payer's collection lacks),
    ``missing_lane`` (a balance lane its account record counts is not there),
    ``hash_mismatch`` (a value the audit scanned that does not hash to the committed hash:
    this peer's private data was withheld or tampered with);
    for hash-locked transfers (:func:`deposit_token.rules.gate_lock`): ``claim_without_preimage``
    (an accept whose preimage does not open the lock), ``late_claim`` (an accept of a transfer
    whose lock both banks expired), ``refund_before_deadline`` (a refund of a locked transfer
    whose lock was never expired by both banks, and that the payee did not reject);
    for converted transfers (:func:`deposit_token.conversion.matches_quote`):
    ``accept_off_quote`` (an accept of a transfer that does not state its quote's terms: the
    payer's server wrote it so and the payee's accepted it; writers: both).
    """

    collection: str
    key: str
    writers: tuple[str, ...]
    what: str

    def tally_key(self) -> tuple[str, ...]:
        """The key the scans count it under: ``("anomaly", writers, collection, what)``."""
        return ("anomaly", "+".join(self.writers), self.collection, self.what)

    def to_json(self) -> dict[str, object]:
        return {"collection": self.collection, "key": self.key,
                "writers": list(self.writers), "what": self.what}


def _transfer(r: Transfer, p: Place, key: str) -> str | None:
    if (r.payer_bank, r.payee_bank) != (p.writer, p.counterparty):
        return "wrong_parties"
    return None if key == transfer_key(r.transfer_id) else "wrong_key"


def _refund(r: Refund, p: Place, key: str) -> str | None:
    if (r.payer_bank, r.payee_bank) != (p.writer, p.counterparty):
        return "wrong_parties"
    return None if key == refund_key(r.transfer_id) else "wrong_key"


def _opened(r: Opened, p: Place, key: str) -> str | None:
    ok = key.startswith("open/") and key.endswith("/" + r.transfer_ids[0])
    return None if ok else "wrong_key"


def _decision(r: Decision, p: Place, key: str) -> str | None:
    if (r.payee_bank, r.payer_bank) != (p.writer, p.counterparty):
        return "wrong_parties"
    return None if key == decision_key(r.transfer_id) else "wrong_key"


def _lock(r: LockRecord, p: Place, key: str) -> str | None:
    if (r.payer_bank, r.payee_bank) != (p.writer, p.counterparty):
        return "wrong_parties"
    return None if key == lock_key(r.transfer_id) else "wrong_key"


def _quote(r: Quote, p: Place, key: str) -> str | None:
    if (r.payee_bank, r.payer_bank) != (p.writer, p.counterparty):
        return "wrong_parties"
    return None if key == quote_key(r.quote_id) else "wrong_key"


def _settlement(r: Settlement, p: Place, key: str) -> str | None:
    if (r.creditor_bank, r.debtor_bank) != (p.writer, p.counterparty):
        return "wrong_parties"
    return None if key.startswith("settle/") else "wrong_key"


def _cap(r: Cap, p: Place, key: str) -> str | None:
    if (r.creditor_bank, r.debtor_bank) != (p.writer, p.counterparty):
        return "wrong_parties"
    return None if key == cap_key(r.currency, r.seq) else "wrong_key"


def _account(r: Account, p: Place, key: str) -> str | None:
    if r.bank != p.writer or p.counterparty is not None:
        return "wrong_parties"
    if r.lane != 0:  # a lane record's fields under an account key
        return "wrong_key"
    if p.accounts is not None:
        return None if key == p.accounts.account(r.account_id) else "wrong_key"
    tag = key.removeprefix("acct/")
    return None if key != tag and TAG_RE.fullmatch(tag) else "wrong_key"


def _lane(r: Lane, p: Place, key: str) -> str | None:
    if r.bank != p.writer or p.counterparty is not None:
        return "wrong_parties"
    if not 1 <= r.lane < r.lanes:  # lane 0 is the account record, never a lane record
        return "wrong_key"
    if p.accounts is not None:
        return None if key == p.accounts.lane(r.account_id, r.lane) else "wrong_key"
    parts = key.split("/")
    ok = len(parts) == 3 and parts[0] == "lane" and bool(TAG_RE.fullmatch(parts[1])) \
        and parts[2] == f"{r.lane:02d}"
    return None if ok else "wrong_key"


def _account_keys(r: AccountKeysRecord, p: Place, key: str) -> str | None:
    if p.counterparty is not None:
        return "wrong_parties"
    return None if key == ACCOUNT_KEYS_KEY else "wrong_key"


def _supply(r: SupplyRecord, p: Place, key: str) -> str | None:
    if r.counterparty == p.writer or p.counterparty is not None:
        return "wrong_parties"
    return None if key.startswith(f"sup/{r.currency}/") else "wrong_key"


def _parties(asserter: str, other: str, p: Place) -> bool:
    """Whether a record asserted by ``asserter`` about ``other`` sits where it must: the
    pair collection of those two, or (both the same bank) that bank's own collection."""
    if p.counterparty is None:
        return asserter == other == p.writer
    return (asserter, other) == (p.writer, p.counterparty)


def _escrow(r: Escrow, p: Place, key: str) -> str | None:
    if not _parties(r.payer_bank, r.payee_bank, p):
        return "wrong_parties"
    if (r.payer_account is None) != (p.counterparty is not None):
        return "wrong_parties"  # across banks the payer's account stays with the payer bank
    return None if key == escrow_key(r.escrow_id) else "wrong_key"


def _escrow_release(r: EscrowRelease, p: Place, key: str) -> str | None:
    if not _parties(r.payer_bank, r.payee_bank, p):
        return "wrong_parties"
    return None if key == escrow_release_key(r.escrow_id) else "wrong_key"


def _escrow_refund(r: EscrowRefund, p: Place, key: str) -> str | None:
    if not _parties(r.payer_bank, r.payee_bank, p):
        return "wrong_parties"
    return None if key == escrow_refund_key(r.escrow_id) else "wrong_key"


def _escrow_claim(r: EscrowClaim, p: Place, key: str) -> str | None:
    if not _parties(r.payee_bank, r.payer_bank, p):
        return "wrong_parties"
    return None if key == escrow_claim_key(r.escrow_id) else "wrong_key"


def _payment_request(r: PaymentRequest, p: Place, key: str) -> str | None:
    if p.counterparty is None or not _parties(r.payee_bank, r.payer_bank, p):
        return "wrong_parties"
    return None if key == payment_request_key(r.request_id) else "wrong_key"


def _request_decline(r: RequestDecline, p: Place, key: str) -> str | None:
    if p.counterparty is None or not _parties(r.payer_bank, r.payee_bank, p):
        return "wrong_parties"
    return None if key == request_decline_key(r.request_id) else "wrong_key"


_CHECKS: dict[type[Record], Callable[[object, Place, str], str | None]] = {
    Transfer: _transfer,  # type: ignore[dict-item]
    Refund: _refund,  # type: ignore[dict-item]
    Opened: _opened,  # type: ignore[dict-item]
    Decision: _decision,  # type: ignore[dict-item]
    LockRecord: _lock,  # type: ignore[dict-item]
    Quote: _quote,  # type: ignore[dict-item]
    Settlement: _settlement,  # type: ignore[dict-item]
    Cap: _cap,  # type: ignore[dict-item]
    Account: _account,  # type: ignore[dict-item]
    Lane: _lane,  # type: ignore[dict-item]
    SupplyRecord: _supply,  # type: ignore[dict-item]
    AccountKeysRecord: _account_keys,  # type: ignore[dict-item]
    Escrow: _escrow,  # type: ignore[dict-item]
    EscrowRelease: _escrow_release,  # type: ignore[dict-item]
    EscrowRefund: _escrow_refund,  # type: ignore[dict-item]
    EscrowClaim: _escrow_claim,  # type: ignore[dict-item]
    PaymentRequest: _payment_request,  # type: ignore[dict-item]
    RequestDecline: _request_decline,  # type: ignore[dict-item]
}


def bind(kind: type[_R], place: Place, key: str, raw: bytes) -> _R | Anomaly:
    """The record stored under ``key`` in ``place``, if it decodes and agrees with its place."""
    check = _CHECKS.get(kind)
    if check is None:
        raise TypeError(f"{kind.__name__} records are not bound to a place")
    try:
        record = decode(kind, raw)
    except CorruptState:
        return Anomaly(place.collection, key, (place.writer,), "undecodable")
    problem = check(record, place, key)
    if problem is not None:
        return Anomaly(place.collection, key, (place.writer,), problem)
    return record


def decision_mismatch(transfer: Transfer, decision_place: Place, key: str) -> Anomaly:
    """A decision that does not describe its transfer: the payee wrote it so, or the payer
    rewrote the transfer after it; either bank's peer could have done it alone."""
    return Anomaly(decision_place.collection, key,
                   (decision_place.writer, transfer.payer_bank), "decision_mismatch")


def missing_transfer(decision_place: Place, key: str) -> Anomaly:
    """An accept naming a transfer that its payer's collection does not hold: the payee
    forged the accept, or the payer deleted its transfer afterwards."""
    assert decision_place.counterparty is not None
    return Anomaly(decision_place.collection, key,
                   (decision_place.writer, decision_place.counterparty),
                   "accept_without_transfer")


def lock_anomaly(transfer: Transfer, what: str) -> Anomaly:
    """A record of a hash-locked transfer that :func:`deposit_token.rules.gate_lock` set aside
    (``what`` is its code): an accept names the payee bank's ``dec/`` key, a refund the payer
    bank's ``refund/`` key; only that bank's peer wrote it."""
    if what == "refund_before_deadline":
        return Anomaly(pair_collection(transfer.payer_bank, transfer.payee_bank),
                       refund_key(transfer.transfer_id), (transfer.payer_bank,), what)
    return Anomaly(pair_collection(transfer.payee_bank, transfer.payer_bank),
                   decision_key(transfer.transfer_id), (transfer.payee_bank,), what)


def unpinned(place: Place, key: str) -> Anomaly:
    """A record that must carry both banks' validation parameter and does not."""
    return Anomaly(place.collection, key, (place.writer,), "unpinned")
