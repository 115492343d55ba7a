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

A claim counts only under a ``release`` outcome and a refund only under a ``refund`` outcome;
any other is an anomaly code naming what is wrong, and counts for nobody.

Must not: touch the ledger, read a clock or draw randomness (signature verification is a pure
function of bytes).
"""

from __future__ import annotations

import base64
import binascii
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
    "CLAIM_UNPROVEN",
    "REFUND_AGAINST_RELEASE",
    "REFUND_UNPROVEN",
    "REQUEST_MISMATCH",
    "Proof",
    "Resolution",
    "check_public_key",
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
    anomaly code of each record that does not (``""``: none)."""

    state: EscrowState
    outcome: Verdict | None
    claim_counts: bool
    refund_counts: bool
    claim_anomaly: str = ""
    refund_anomaly: str = ""


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


def resolve(
    escrow: Escrow,
    release: EscrowRelease | None,
    refund: EscrowRefund | None,
    claim: EscrowClaim | None,
    now: datetime,
) -> Resolution:
    """What ``escrow`` amounts to given the records read beside it (each already bound to
    where it lives; one that does not describe this escrow is treated as absent and its
    record reported by the caller through the anomaly codes here)."""
    if release is not None and not _matches(escrow, release):
        release = None
    claim_wrong = claim is not None and not _matches(escrow, claim)
    refund_wrong = refund is not None and not _matches(escrow, refund)
    usable_claim = None if claim_wrong else claim
    usable_refund = None if refund_wrong else refund
    outcome: Verdict | None
    if release is not None:
        outcome = Verdict.RELEASE
    else:
        proofs = [p for p in (_claim_proof(escrow, usable_claim),
                              _refund_proof(escrow, usable_refund)) if p is not None]
        if proofs:
            outcome = min(proofs).verdict
        elif (usable_refund is not None and usable_refund.cause == "deadline"
              and escrow.on_deadline is DeadlineAction.REFUND):
            outcome = Verdict.REFUND
        else:
            outcome = None
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
