"""Pure rules of conditional payments: signed statements, an escrow's outcome, a payment
request's status.

Owns:

* :func:`check_public_key`: a party's key must be an ECDSA P-256 public key (PEM);
* :func:`verified_statement`: whether a signed statement about an escrow holds, from the
  escrow's own terms (the key the payer bank registered when the escrow opened) and nothing a
  bank can change afterwards: an attester may only say ``release`` and only with a time before
  the deadline; an arbiter may say either, at any time;
* :func:`resolve`: every bank's one computation of what an escrow amounts to from the records
  it reads (the payer bank's release and refund, the payee bank's claim), and which of them
  count for nobody;
* :func:`key_fingerprint`: the SHA-256 of a party's key (DER SubjectPublicKeyInfo), which the
  payee bank compares with the key it registered itself for the same name;
* :func:`request_status`: a payment request's status from the request, the transfer under
  its id, and the payer bank's decline.

The rule of :func:`resolve`, in order (docs/token-model.md, "Escrow"):

1. the payer bank's own release counts whatever else exists (its word, against its side);
2. else the arbiter's earliest valid ruling decides (the arbiter settles disputes, whatever
   the attester said; at the same instant ``refund`` first);
3. else the attester's earliest valid statement decides (``release`` signed before the
   deadline, ``refund`` signed at or after it);
4. else a refund at the deadline on the payer bank's own word counts if the terms say
   ``refund`` at the deadline: it is the weakest proof, and a delivery attested in time
   presented later outranks it (the payer bank then owes the payee bank: it could have
   waited for the attester's signed ``refund``);
5. else the money is still held.

**A claim that counts is final, and so is a refund on a signed statement.** Across banks,
when the payee bank's claim holds on its own (the rules above, without the refund) and the
payer bank's refund on a signed statement holds on its own (without the claim), the two
banks presented contradicting proofs (an arbiter's ``refund`` ruling written after the
seller was paid on a delivery attested in time, say). Neither statement's time decides: the
payer bank chose both parties' keys, so it can have any ruling signed at any time. What
decides is which record reached the ledger first, the order every honest contract already
keeps (``claim_escrow`` reads the refund key and refuses after a refund on a statement;
``refund_escrow`` reads the claim key and refuses after a claim that counts; MVCC makes
racing honest transactions commit one at a time). So the later of the two was written by a
bank that skipped its contract's read and counts for nobody (``escrow_refund_after_claim``,
``escrow_claim_after_refund``); chaincode cannot see block numbers, so the reader passes
``claim_first`` (from proven ledger positions: ``ledger_order``), and without it the escrow
is ``disputed``: neither counts. A refund at the deadline on the payer bank's own word is
not such a race: a delivery attested in time outranks it whatever the order (rule 4).

A claim counts only under a ``release`` outcome and a refund only under a ``refund`` outcome;
any other is an anomaly code naming what is wrong, and counts for nobody.

Must not: touch the ledger, read a clock or draw randomness (signature verification is a pure
function of bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dtoken_wire.codec import parse_timestamp
from dtoken_wire.conditional import (
    DeadlineAction,
    EscrowState,
    PaymentRequestStatus,
    Statement,
    Verdict,
    statement_message,
)
from dtoken_wire.errors import WireError

from .errors import InvalidArgument
from .records import (
    Escrow,
    EscrowClaim,
    EscrowRefund,
    EscrowRelease,
    PaymentRequest,
    RequestDecline,
    Transfer,
)

__all__ = [
    "CLAIM_AFTER_REFUND",
    "CLAIM_UNPROVEN",
    "REFUND_AFTER_CLAIM",
    "REFUND_AGAINST_RELEASE",
    "REFUND_UNPROVEN",
    "REQUEST_MISMATCH",
    "Proof",
    "Resolution",
    "check_public_key",
    "key_fingerprint",
    "request_status",
    "resolve",
    "statement_from_map",
    "verified_statement",
]

#: Anomaly codes (``deposit_token.placement.Anomaly.what``) of escrow records that count for
#: nobody: a claim without a proven release; a refund without a proven refund; a refund the
#: payer bank made although the release was proven (it still owes the payee bank).
CLAIM_UNPROVEN = "escrow_claim_unproven"
REFUND_UNPROVEN = "escrow_refund_unproven"
REFUND_AGAINST_RELEASE = "escrow_refund_against_release"
#: The later of a claim and a refund on a statement that both hold on their own (ledger
#: order): its writer skipped the read its contract makes of the other's key.
REFUND_AFTER_CLAIM = "escrow_refund_after_claim"
CLAIM_AFTER_REFUND = "escrow_claim_after_refund"
#: A transfer under a payment request's id that does not pay what the request asks.
REQUEST_MISMATCH = "request_payment_mismatch"


def check_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key in ``pem``; ``INVALID_ARGUMENT`` if it is anything else."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError):
        raise InvalidArgument("request.public_key_pem must be a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1):
        raise InvalidArgument("request.public_key_pem must be an ECDSA P-256 key")
    return key


def key_fingerprint(pem: str) -> str:
    """SHA-256 (hex) of ``pem``'s key as DER SubjectPublicKeyInfo (the same for any PEM
    layout of one key); ``""`` for no key or one that does not load."""
    if not pem:
        return ""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError):
        return ""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def statement_from_map(data: Mapping[str, str]) -> Statement | None:
    """A stored statement (a record's ``statement`` map) as a :class:`Statement`; ``None`` if
    absent or malformed (a malformed one proves nothing)."""
    if not data:
        return None
    try:
        return Statement.from_mapping(dict(data))
    except WireError:
        return None


@dataclass(frozen=True, order=True)
class Proof:
    """A verified statement, ordered by rank: an arbiter's before an attester's, then the
    earliest signed, then (at the same instant) ``refund`` before ``release``."""

    by_attester: bool
    signed_at: datetime
    releases: bool
    verdict: Verdict


def verified_statement(escrow: Escrow, statement: Statement | None) -> Proof | None:
    """The statement's proof if it holds for ``escrow``, else ``None``.

    It holds if its signer is the escrow's arbiter (any verdict, any time) or its attester
    (``release`` signed before the deadline: delivered in time; ``refund`` signed at or after
    it: not delivered by then), and the signature verifies under the key the escrow's terms
    carry for that signer over :func:`statement_message` of the escrow's own facts.
    """
    if statement is None:
        return None
    signed_at = parse_timestamp(statement.signed_at)
    if escrow.arbiter and statement.signer == escrow.arbiter:
        pem, by_arbiter = escrow.arbiter_key, True
    elif escrow.attester and statement.signer == escrow.attester:
        pem, by_arbiter = escrow.attester_key, False
        in_time = signed_at < parse_timestamp(escrow.deadline)
        if in_time != (statement.verdict is Verdict.RELEASE):
            return None
    else:
        return None
    try:
        key = check_public_key(pem)
        signature = base64.b64decode(statement.signature, validate=True)
        key.verify(signature, statement_message(
            escrow_id=escrow.escrow_id, payer_bank=escrow.payer_bank,
            payee_bank=escrow.payee_bank, amount=escrow.amount, currency=escrow.currency,
            verdict=statement.verdict, signer=statement.signer,
            signed_at=statement.signed_at), ec.ECDSA(hashes.SHA256()))
    except (InvalidArgument, InvalidSignature, binascii.Error, ValueError):
        return None
    return Proof(not by_arbiter, signed_at, statement.verdict is Verdict.RELEASE,
                 statement.verdict)


@dataclass(frozen=True)
class Resolution:
    """What an escrow amounts to: its state, whether the claim and the refund count, and the
    anomaly code of each record that does not (``""``: none). ``disputed``: the claim and a
    refund on a statement both hold on their own and no ledger order was given (neither
    counts; the caller lists the dispute)."""

    state: EscrowState
    outcome: Verdict | None
    claim_counts: bool
    refund_counts: bool
    claim_anomaly: str = ""
    refund_anomaly: str = ""
    disputed: bool = False


def _claim_proof(escrow: Escrow, claim: EscrowClaim | None) -> Proof | None:
    if claim is None or claim.basis != "statement":
        return None
    return verified_statement(escrow, statement_from_map(claim.statement))


def _refund_proof(escrow: Escrow, refund: EscrowRefund | None) -> Proof | None:
    if refund is None or refund.cause != "statement":
        return None
    return verified_statement(escrow, statement_from_map(refund.statement))


def _matches(escrow: Escrow, record: EscrowRelease | EscrowRefund | EscrowClaim) -> bool:
    return (record.escrow_id, record.payer_bank, record.payee_bank, record.amount,
            record.currency) == (escrow.escrow_id, escrow.payer_bank, escrow.payee_bank,
                                 escrow.amount, escrow.currency)


def _outcome(
    escrow: Escrow,
    release: EscrowRelease | None,
    refund: EscrowRefund | None,
    claim: EscrowClaim | None,
) -> Verdict | None:
    """Rules 1-5 of the module over records that describe ``escrow``."""
    if release is not None:
        return Verdict.RELEASE
    proofs = [p for p in (_claim_proof(escrow, claim), _refund_proof(escrow, refund))
              if p is not None]
    if proofs:
        return min(proofs).verdict
    if (refund is not None and refund.cause == "deadline"
            and escrow.on_deadline is DeadlineAction.REFUND):
        return Verdict.REFUND
    return None


def _race(escrow: Escrow, refund: EscrowRefund | None, claim: EscrowClaim | None) -> bool:
    """Whether a claim and a refund on a statement (no release) both hold on their own."""
    return (refund is not None and claim is not None and refund.cause == "statement"
            and escrow.payer_bank != escrow.payee_bank
            and _outcome(escrow, None, None, claim) is Verdict.RELEASE
            and _outcome(escrow, None, refund, None) is Verdict.REFUND)


def resolve(
    escrow: Escrow,
    release: EscrowRelease | None,
    refund: EscrowRefund | None,
    claim: EscrowClaim | None,
    now: datetime,
    claim_first: bool | None = None,
) -> Resolution:
    """What ``escrow`` amounts to given the records read beside it (each already bound to
    where it lives; one that does not describe this escrow is treated as absent and its
    record reported by the caller through the anomaly codes here).

    ``claim_first``: whether the claim's transaction precedes the refund's in ledger order
    (proven by the caller; ``None``: not known). It matters only when both hold on their own
    (see the module): then the earlier counts, and without it the escrow is disputed."""
    if release is not None and not _matches(escrow, release):
        release = None
    claim_wrong = claim is not None and not _matches(escrow, claim)
    refund_wrong = refund is not None and not _matches(escrow, refund)
    usable_claim = None if claim_wrong else claim
    usable_refund = None if refund_wrong else refund
    if release is None and _race(escrow, usable_refund, usable_claim):
        return _raced(claim_first)
    outcome = _outcome(escrow, release, usable_refund, usable_claim)
    claim_counts = outcome is Verdict.RELEASE and usable_claim is not None
    refund_counts = outcome is Verdict.REFUND and usable_refund is not None
    claim_anomaly = "" if claim is None or claim_counts else CLAIM_UNPROVEN
    refund_anomaly = ""
    if refund is not None and not refund_counts:
        refund_anomaly = (REFUND_AGAINST_RELEASE if outcome is Verdict.RELEASE
                          else REFUND_UNPROVEN)
    if claim_counts or (release is not None and escrow.payer_bank == escrow.payee_bank):
        # (within one bank a release credits the payee at once: nothing to claim)
        state = EscrowState.PAID
    elif refund_counts:
        state = EscrowState.REFUNDED
    elif outcome is Verdict.RELEASE:
        state = EscrowState.RELEASED
    elif now >= parse_timestamp(escrow.deadline):
        state = EscrowState.DUE
    else:
        state = EscrowState.HELD
    return Resolution(state, outcome, claim_counts, refund_counts, claim_anomaly,
                      refund_anomaly)


def _raced(claim_first: bool | None) -> Resolution:
    """A claim and a refund on a statement that both hold on their own: the first in ledger
    order counts, the later counts for nobody; unknown order: disputed, neither counts."""
    if claim_first is None:
        return Resolution(EscrowState.DISPUTED, None, False, False, disputed=True)
    if claim_first:
        return Resolution(EscrowState.PAID, Verdict.RELEASE, True, False,
                          refund_anomaly=REFUND_AFTER_CLAIM)
    return Resolution(EscrowState.REFUNDED, Verdict.REFUND, False, True,
                      claim_anomaly=CLAIM_AFTER_REFUND)


def request_status(
    request: PaymentRequest,
    transfer: Transfer | None,
    decline: RequestDecline | None,
    now: datetime,
) -> PaymentRequestStatus:
    """A payment request's status: paid by the transfer under its id (if it pays what the
    request asks; else mismatched), declined, expired past its due time, or pending."""
    if transfer is not None:
        pays = (transfer.transfer_id, transfer.payer_bank, transfer.payee_bank,
                transfer.payee_account, transfer.amount, transfer.currency) == (
            request.request_id, request.payer_bank, request.payee_bank,
            request.payee_account, request.amount, request.currency)
        return PaymentRequestStatus.PAID if pays else PaymentRequestStatus.MISMATCHED
    if decline is not None:
        return PaymentRequestStatus.DECLINED
    if now >= parse_timestamp(request.due):
        return PaymentRequestStatus.EXPIRED
    return PaymentRequestStatus.PENDING
