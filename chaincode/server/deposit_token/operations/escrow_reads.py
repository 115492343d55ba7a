"""The escrow reads: ``get_escrow`` and ``list_escrows``.

Owns: what a bank (or the regulator) is shown of an escrow: the terms without the keys' PEM,
each party the terms name with the SHA-256 of its key (:func:`deposit_token.conditions.
key_fingerprint`; the payer bank chose the key) and, served on the reading bank's own peer
to its own client, whether that key is the one the reading bank registered itself under the
same name (``match``, ``mismatch``, ``unregistered``; else ``unchecked``): the payee bank
checks that before its customer relies on the escrow (docs/token-model.md, "Conditional
payments"). Also the records beside the escrow, its state by
:func:`deposit_token.conditions.resolve` (with the caller's ``ledger_order``, else a claim
and a refund that both hold make it ``disputed``, listed as the obligations list disputes),
and the anomaly codes.

Must not: write; decide an escrow's outcome except through :mod:`deposit_token.conditions`.
"""

from __future__ import annotations

from collections.abc import Mapping

from dtoken_wire.conditional import EscrowLookup, ListEscrowsRequest
from dtoken_wire.requests import LedgerPosition

from ..conditions import key_fingerprint, resolve
from ..keys import acct_collection, attester_key, escrow_key, prefix_range
from ..placement import MAX_ANOMALY_DETAILS, Anomaly, bind
from ..records import Attester, Escrow
from ..registry import BankInfo
from .access import Tx, authorize_read, load_registry, member_bank
from .declare import declare
from .escrow import EscrowRecords, escrow_places, escrow_records
from .escrow_counts import claim_first, escrow_dispute

__all__ = [
    "PARTY_MATCH",
    "PARTY_MISMATCH",
    "PARTY_UNCHECKED",
    "PARTY_UNREGISTERED",
    "escrow_view",
    "get_escrow",
    "list_escrows",
]

#: What a party's key is, seen from the reading bank (``unchecked``: a reader with no list
#: of its own here, such as the regulator, or a peer serving another organization's client).
PARTY_MATCH, PARTY_MISMATCH, PARTY_UNREGISTERED, PARTY_UNCHECKED = (
    "match", "mismatch", "unregistered", "unchecked")


def escrow_view(records: EscrowRecords, now_state: str, anomalies: list[str],
                parties: list[dict[str, str]] | None = None,
                dispute: dict[str, object] | None = None) -> dict[str, object]:
    """What ``get_escrow`` answers: the terms without the keys' PEM (``parties`` carries each
    key's SHA-256 and how it compares with the reader's own registration), the records
    beside it, the state, the anomaly codes, and the dispute if ledger order must decide."""
    escrow, release, refund, claim = records
    out = escrow.to_json()
    out.pop("attester_key")
    out.pop("arbiter_key")
    return {"escrow": out, "state": now_state,
            "release": release.to_json() if release else None,
            "refund": refund.to_json() if refund else None,
            "claim": claim.to_json() if claim else None,
            "anomalies": anomalies,
            "parties": parties if parties is not None else _parties(escrow, None),
            "dispute": dispute}


def _parties(escrow: Escrow, own: dict[str, str] | None) -> list[dict[str, str]]:
    """Each party the terms name, its key's fingerprint, and ``here``: the comparison with
    ``own`` (the fingerprints the reading bank registered itself, by name; ``None``: not
    checked)."""
    out: list[dict[str, str]] = []
    for role, name, pem in (("attester", escrow.attester, escrow.attester_key),
                            ("arbiter", escrow.arbiter, escrow.arbiter_key)):
        if not name:
            continue
        fingerprint = key_fingerprint(pem)
        if own is None:
            here = PARTY_UNCHECKED
        elif name not in own:
            here = PARTY_UNREGISTERED
        else:
            here = PARTY_MATCH if own[name] == fingerprint and fingerprint else PARTY_MISMATCH
        out.append({"role": role, "name": name, "key_sha256": fingerprint, "here": here})
    return out


async def _own_parties(tx: Tx, reader: BankInfo | None, escrow: Escrow) -> dict[str, str] | None:
    """The fingerprints of the keys ``reader`` registered under the escrow's party names,
    from its own ``acct-<bank>`` (``None`` when there is no such reader)."""
    if reader is None:
        return None
    own: dict[str, str] = {}
    for name in {escrow.attester, escrow.arbiter} - {""}:
        party = await tx.ledger.get(Attester, acct_collection(reader.name), attester_key(name))
        if party is not None:
            own[name] = key_fingerprint(party.public_key_pem)
    return own


def _reader(tx: Tx, payer: BankInfo, payee: BankInfo) -> BankInfo | None:
    """The bank of the pair whose own client this is, on its own peer (it may read its own
    list of parties); else ``None``."""
    for bank in (payee, payer):
        if bank.msp_id == tx.caller.msp_id == tx.server_msp:
            return bank
    return None


async def _view(tx: Tx, payer: BankInfo, payee: BankInfo, escrow_id: str,
                order: Mapping[str, LedgerPosition] | None = None) -> dict[str, object]:
    records = await escrow_records(tx, payer, payee, escrow_id)
    escrow, _, refund, claim = records
    res = resolve(*records, tx.now, claim_first(tx, escrow, order or {}))
    anomalies = [a for a in (res.claim_anomaly, res.refund_anomaly) if a]
    dispute = (escrow_dispute(tx, escrow, claim, refund)
               if res.disputed and claim is not None and refund is not None else None)
    parties = _parties(escrow, await _own_parties(tx, _reader(tx, payer, payee), escrow))
    return escrow_view(records, res.state.value, anomalies, parties, dispute)


@declare(evaluate=True)
async def get_escrow(tx: Tx, req: EscrowLookup) -> dict[str, object]:
    """One escrow with its release, refund and claim, and its state as the rule decides it
    (either bank of the pair, or the regulator; ``ledger_order`` places a claim and a refund
    that both hold, else such an escrow is ``disputed`` with both records listed)."""
    registry = await load_registry(tx)
    payer = member_bank(registry, req.payer_bank, "payer_bank")
    payee = member_bank(registry, req.payee_bank, "payee_bank")
    authorize_read(tx, registry, [payer, payee])
    return await _view(tx, payer, payee, req.escrow_id, req.ledger_order)


@declare(evaluate=True)
async def list_escrows(tx: Tx, req: ListEscrowsRequest) -> dict[str, object]:
    """The escrows ``payer_bank`` opened toward ``payee_bank``, by id, one page after
    ``after``, each with its state; records not valid where they live are reported."""
    registry = await load_registry(tx)
    payer = member_bank(registry, req.payer_bank, "payer_bank")
    payee = member_bank(registry, req.payee_bank, "payee_bank")
    authorize_read(tx, registry, [payer, payee])
    there, _ = escrow_places(payer, payee)
    start, end = prefix_range("esc")
    if req.after is not None:
        start = escrow_key(req.after) + "\x00"
    rows = await tx.ledger.scan(there.collection, start, end, req.page_size + 1)
    escrows: list[dict[str, object]] = []
    anomalies: list[dict[str, object]] = []
    for key, raw in rows[: req.page_size]:
        found = bind(Escrow, there, key, raw)
        if not isinstance(found, Anomaly) and not await tx.ledger.pinned(Escrow, there, key):
            found = Anomaly(there.collection, key, (there.writer,), "unpinned")
        if isinstance(found, Anomaly):
            if len(anomalies) < MAX_ANOMALY_DETAILS:
                anomalies.append(found.to_json())
            continue
        escrows.append(await _view(tx, payer, payee, found.escrow_id))
    last = rows[req.page_size - 1][0].removeprefix("esc/") if len(rows) > req.page_size else None
    return {"escrows": escrows, "next": last, "anomaly_records": anomalies}
