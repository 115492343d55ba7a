"""Conditional payments in the bank SDK: escrow until a condition, and payment requests.

Owns:

* :class:`ConditionalPayments`, the ``Bank`` methods of these flows (``Bank`` inherits them;
  each is one contract transaction, listed in the verb table of docs/sdk.md): ``escrow``,
  ``release``, ``claim_escrow``, ``claim_escrows``, ``refund_escrow``, ``register_attester``,
  ``get_escrow``, ``escrows``; ``request_payment``, ``approve_request``, ``decline_request``,
  ``get_payment_request``, ``payment_requests``;
* :class:`Attester`: what a marketplace, a logistics company or an arbiter runs to sign a
  statement about an escrow (``attest``), with its P-256 key;
* the value objects :class:`Escrow` (with :class:`EscrowParty`: each party the terms name,
  its key's SHA-256 and whether it is the key this bank registered itself under that name),
  :class:`EscrowOpened`, :class:`PaymentRequest`, :class:`PaymentRequested`.

The payer bank chooses the parties' keys (it registers any key under any name). A payee bank
registers the parties it trusts too (:meth:`ConditionalPayments.register_attester`, the same
names and keys), and its seller ships only on an escrow whose :attr:`Escrow.parties_verified`
holds: the contract, on this bank's own peer, compared every key in the terms with this
bank's own registration. An escrow both claimed and refunded on a signed statement is
decided by ledger order: :meth:`ConditionalPayments.get_escrow` proves both records'
positions from the blocks and asks again, as ``obligations()`` does.

Ids are derived from the client reference (the same on every retry), and the idempotency
references of release, claim, refund, approve and decline are derived from the escrow or
request id: a retrying client never applies one twice (and a request is paid once whatever
reference a second caller uses: docs/token-model.md, "Payment requests").

Must not: decide whether a condition holds (the contract does, and every bank reads the
same verdict); hold a private key of a bank.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dtoken_wire import conditional as c
from dtoken_wire import requests as w
from dtoken_wire.codec import format_timestamp

from dtoken.errors import NetworkFault, UsageError
from dtoken.money import Money
from dtoken.submitter import Receipt

if TYPE_CHECKING:
    from dtoken.bank import Member as _Base
else:
    _Base = object

__all__ = [
    "MAX_CLAIMS",
    "Attester",
    "ConditionalPayments",
    "DeadlineAction",
    "Escrow",
    "EscrowOpened",
    "EscrowParty",
    "EscrowState",
    "PaymentRequest",
    "PaymentRequestStatus",
    "PaymentRequested",
    "Statement",
    "Verdict",
]

MAX_CLAIMS = c.MAX_CLAIMS
DeadlineAction = c.DeadlineAction
EscrowState = c.EscrowState
PaymentRequestStatus = c.PaymentRequestStatus
Statement = c.Statement
Verdict = c.Verdict
_PAGE = 500


def _get(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise NetworkFault(f"the contract's answer has no valid {key!r}")
    return value


@dataclass(frozen=True)
class EscrowParty:
    """A party an escrow's terms name: ``role`` (``attester`` or ``arbiter``), ``name``, the
    SHA-256 of its key (DER SubjectPublicKeyInfo, as the payer bank registered it), and
    ``here``: ``match`` (the key this bank registered under that name), ``mismatch`` (another
    key: not the party this bank knows by that name), ``unregistered`` (this bank registered
    no party of that name) or ``unchecked`` (read by the regulator)."""

    role: str
    name: str
    key_sha256: str
    here: str

    @property
    def verified(self) -> bool:
        """Whether the key is the one this bank registered under this name."""
        return self.here == "match"


@dataclass(frozen=True)
class Escrow:
    """An escrow and where it stands (``state``), as the contract's rule decides it from the
    records both banks read."""

    escrow_id: str
    payer_bank: str
    payee_bank: str
    payee_account: str
    amount: Money
    created_at: str
    deadline: str
    on_deadline: c.DeadlineAction
    attester: str
    arbiter: str
    remittance: str
    state: c.EscrowState
    released_by: str | None = None
    """``buyer`` or ``deadline`` once the payer bank released it."""
    claim_basis: str | None = None
    """``release`` or ``statement`` once the payee bank claimed it."""
    refund_cause: str | None = None
    """``deadline`` or ``statement`` once the payer bank refunded it."""
    anomalies: tuple[str, ...] = ()
    """Records beside it that count for nobody (``escrow_claim_unproven``,
    ``escrow_refund_after_claim`` ...; ``unverified_position``: a record of a dispute whose
    writer claims a transaction that did not write it)."""
    parties: tuple[EscrowParty, ...] = ()
    """The attester and arbiter the terms name, each checked against this bank's own list."""
    dispute: Mapping[str, Any] | None = None
    """Both records of a claim and a refund that both hold, when their ledger order was not
    proven (``state`` is then ``disputed``)."""

    @property
    def parties_verified(self) -> bool:
        """Whether every party the terms name is the one this bank registered under that
        name (true for terms that name none): what a payee bank checks before its customer
        relies on the escrow (ships the goods)."""
        return all(p.verified for p in self.parties)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], currencies: Mapping[str, int]) -> Escrow:
        e = _get(data, "escrow", dict)
        release, claim, refund = data.get("release"), data.get("claim"), data.get("refund")
        try:
            return cls(
                escrow_id=_get(e, "escrow_id", str), payer_bank=_get(e, "payer_bank", str),
                payee_bank=_get(e, "payee_bank", str),
                payee_account=_get(e, "payee_account", str),
                amount=Money.of(_get(e, "amount", int), _get(e, "currency", str), currencies),
                created_at=_get(e, "created_at", str), deadline=_get(e, "deadline", str),
                on_deadline=c.DeadlineAction(_get(e, "on_deadline", str)),
                attester=_get(e, "attester", str), arbiter=_get(e, "arbiter", str),
                remittance=_get(e, "remittance", str),
                state=c.EscrowState(_get(data, "state", str)),
                released_by=release.get("cause") if isinstance(release, dict) else None,
                claim_basis=claim.get("basis") if isinstance(claim, dict) else None,
                refund_cause=refund.get("cause") if isinstance(refund, dict) else None,
                anomalies=tuple(str(a) for a in data.get("anomalies") or ()),
                parties=tuple(EscrowParty(
                    _get(p, "role", str), _get(p, "name", str), _get(p, "key_sha256", str),
                    _get(p, "here", str)) for p in data.get("parties") or ()
                    if isinstance(p, dict)),
                dispute=data.get("dispute") if isinstance(data.get("dispute"), dict) else None,
            )
        except ValueError as error:
            raise NetworkFault(f"the contract's escrow answer is malformed: {error}") from None


@dataclass(frozen=True)
class EscrowOpened:
    """What :meth:`ConditionalPayments.escrow` made."""

    escrow_id: str
    receipt: Receipt


@dataclass(frozen=True)
class PaymentRequest:
    """A request to pay and where it stands."""

    request_id: str
    payer_bank: str
    payee_bank: str
    payer_account: str
    payee_account: str
    amount: Money
    invoice_ref: str
    due: str
    status: c.PaymentRequestStatus
    payment_status: str | None = None
    """The paying transfer's status (``pending``, ``accepted`` ...) once paid."""
    decline_reason: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any],
                  currencies: Mapping[str, int]) -> PaymentRequest:
        r = _get(data, "request", dict)
        decline = data.get("decline")
        try:
            return cls(
                request_id=_get(r, "request_id", str), payer_bank=_get(r, "payer_bank", str),
                payee_bank=_get(r, "payee_bank", str),
                payer_account=_get(r, "payer_account", str),
                payee_account=_get(r, "payee_account", str),
                amount=Money.of(_get(r, "amount", int), _get(r, "currency", str), currencies),
                invoice_ref=_get(r, "invoice_ref", str), due=_get(r, "due", str),
                status=c.PaymentRequestStatus(_get(data, "status", str)),
                payment_status=data.get("payment_status"),
                decline_reason=decline.get("reason") if isinstance(decline, dict) else None,
            )
        except ValueError as error:
            raise NetworkFault(f"the contract's request answer is malformed: {error}") from None


@dataclass(frozen=True)
class PaymentRequested:
    """What :meth:`ConditionalPayments.request_payment` made."""

    request_id: str
    receipt: Receipt


class Attester:
    """A party that signs statements about escrows: a marketplace or logistics company
    (``release``: delivered; ``refund`` at or after the deadline: not delivered by then), or
    an arbiter (either verdict, any time). A bank registers its public key
    (:meth:`ConditionalPayments.register_attester`) before its customers' escrows name it.

    ::

        market = Attester.generate("marketplace")
        await buyer_bank.register_attester(market.name, market.public_key_pem)
        ...
        statement = market.attest(escrow)            # delivered
        await seller_bank.claim_escrow(escrow.escrow_id, escrow.payer_bank, statement)
    """

    def __init__(self, name: str, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not c.PARTY_NAME_RE.fullmatch(name):
            raise UsageError(f"an attester's name must match {c.PARTY_NAME_RE.pattern}")
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise UsageError("an attester's key must be ECDSA P-256")
        self.name = name
        self._key = private_key

    def __repr__(self) -> str:
        return f"Attester({self.name!r})"

    @classmethod
    def generate(cls, name: str) -> Attester:
        """A new party with a fresh P-256 key."""
        return cls(name, ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, name: str, pem: bytes, password: bytes | None = None) -> Attester:
        """A party from its PEM private key."""
        key = serialization.load_pem_private_key(pem, password)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise UsageError("an attester's key must be ECDSA P-256")
        return cls(name, key)

    @property
    def public_key_pem(self) -> str:
        """What a bank registers."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")

    def attest(self, escrow: Escrow, verdict: c.Verdict | str = c.Verdict.RELEASE,
               at: datetime | None = None) -> c.Statement:
        """Sign ``verdict`` about ``escrow`` at ``at`` (now by default, timezone-aware)."""
        when = at or datetime.now(UTC)
        if when.tzinfo is None:
            raise UsageError("a statement's time must be timezone-aware")
        signed_at = format_timestamp(when)
        said = c.Verdict(verdict)
        message = c.statement_message(
            escrow_id=escrow.escrow_id, payer_bank=escrow.payer_bank,
            payee_bank=escrow.payee_bank, amount=escrow.amount.minor,
            currency=escrow.amount.currency, verdict=said, signer=self.name,
            signed_at=signed_at)
        signature = self._key.sign(message, ec.ECDSA(hashes.SHA256()))
        return c.Statement(self.name, said, signed_at,
                           base64.b64encode(signature).decode("ascii"))


def _utc(moment: datetime, what: str) -> str:
    if moment.tzinfo is None:
        raise UsageError(f"{what} must be timezone-aware")
    return format_timestamp(moment)


class ConditionalPayments(_Base):
    """The conditional-payment methods of :class:`dtoken.bank.Bank` (see the module): a
    mixin over :class:`dtoken.bank.Member`, which ``Bank`` inherits after it."""

    # --- escrow ----------------------------------------------------------------------------

    async def register_attester(self, name: str, public_key_pem: str) -> Receipt:
        """Trust ``name``'s P-256 key to sign statements about this bank's customers'
        escrows (once per name; ``operator``)."""
        request = c.RegisterAttesterRequest(name, public_key_pem)
        return await self._write("register_attester", request, f"attester/{name}")

    async def escrow(
        self,
        from_account: str,
        to_bank: str,
        to_account: str,
        amount: int | Money,
        *,
        reference: str,
        deadline: datetime,
        on_deadline: c.DeadlineAction | str = c.DeadlineAction.REFUND,
        attester: str | None = None,
        arbiter: str | None = None,
        remittance: str = "",
        originator: Mapping[str, str] | None = None,
    ) -> EscrowOpened:
        """Debit ``from_account`` into escrow for ``to_account`` at ``to_bank`` (this bank or
        another): paid to it once the buyer confirms (:meth:`release`), the ``attester``
        signs delivery before ``deadline``, or the ``arbiter`` rules so; else at the deadline
        the money goes where ``on_deadline`` says."""
        minor = await self._minor(amount, from_account)
        self.profile.bank(to_bank)
        escrow_id = self._derived_id("escrow", reference)
        request = c.OpenEscrowRequest(
            reference, from_account, to_bank, to_account, minor, _utc(deadline, "deadline"),
            c.DeadlineAction(on_deadline), attester, arbiter, remittance, escrow_id,
            dict(originator or {}))
        return EscrowOpened(escrow_id, await self._write("open_escrow", request, reference))

    async def release(self, escrow_id: str, payee_bank: str) -> Receipt:
        """The buyer confirmed (or the deadline passed and the terms release): release the
        escrow to the payee (within this bank the payee is credited at once)."""
        request = c.ReleaseEscrowRequest(escrow_id, payee_bank)
        return await self._write("release_escrow", request, f"escrow/{escrow_id}/release")

    async def claim_escrow(self, escrow_id: str, payer_bank: str,
                           statement: c.Statement | None = None) -> Receipt:
        """Credit the payee of an escrow: on the payer bank's release, or on ``statement``
        (the attester's delivery, the arbiter's ruling)."""
        request = c.ClaimEscrowRequest(escrow_id, payer_bank, statement)
        return await self._write("claim_escrow", request, f"escrow/{escrow_id}/claim")

    async def claim_escrows(
        self, payer_bank: str, items: Sequence[tuple[str, c.Statement | None]]
    ) -> tuple[Receipt, dict[str, str] | None]:
        """Claim many escrows of ``payer_bank`` in one transaction (``items``: escrow id and
        the statement it is claimed on, ``None`` for the payer bank's release; at most 500):
        the credits are summed per payee account, so one seller paid from many escrows is
        not a hot key. Returns the receipt and each escrow's code (``OK`` or why it was
        skipped); ``None`` when this exact batch had been applied before (a replay)."""
        if not items:
            raise UsageError("a batch claim needs at least one escrow")
        request = c.ClaimEscrowsRequest(payer_bank, tuple(c.ClaimItem(e, st) for e, st in items))
        digest = hashlib.sha256("\0".join(e for e, _ in items).encode()).hexdigest()
        receipt = await self._write("claim_escrows", request,
                                    f"escrow/{payer_bank}/claims/{digest[:48]}")
        if not receipt.result:
            return receipt, None
        codes = receipt.item_codes(len(items), "escrow")
        return receipt, {e: code for (e, _), code in zip(items, codes, strict=True)}

    async def refund_escrow(self, escrow_id: str, payee_bank: str,
                            statement: c.Statement | None = None) -> Receipt:
        """Credit the buyer back: after the deadline (terms ``refund``), or on ``statement``
        (the arbiter's ruling; the attester's ``refund`` signed at or after the deadline)."""
        request = c.RefundEscrowRequest(escrow_id, payee_bank, statement)
        return await self._write("refund_escrow", request, f"escrow/{escrow_id}/refund")

    async def get_escrow(self, escrow_id: str, payer_bank: str,
                         payee_bank: str) -> Escrow:
        """One escrow and where it stands (either bank of the pair), with each party of its
        terms checked against this bank's own registrations (:attr:`Escrow.parties_verified`).
        A claim and a refund on a statement that both hold are placed in ledger order from
        the blocks (the earlier counts), as :meth:`obligations` does."""
        lookup = c.EscrowLookup(escrow_id, payer_bank, payee_bank)
        data = await self._evaluate("get_escrow", lookup)
        dispute = data.get("dispute")
        unverified: tuple[str, ...] = ()
        if isinstance(dispute, dict):
            order, anomalies = await self._proven_order([dispute])
            unverified = tuple(a.what for a in anomalies)
            if order:
                data = await self._evaluate("get_escrow", dataclasses.replace(
                    lookup, ledger_order=order))
        escrow = Escrow.from_json(data, self.currencies)
        return dataclasses.replace(escrow, anomalies=escrow.anomalies + unverified)

    async def escrows(self, counterparty: str, *,
                      incoming: bool = False) -> list[Escrow]:
        """The escrows this bank opened toward ``counterparty`` (``incoming``: that it opened
        toward this bank; ``counterparty`` this bank: those within it). An escrow both
        claimed and refunded on a statement is read again with :meth:`get_escrow`, which
        places the two records in ledger order (disputes are rare: one read each)."""
        payer, payee = (counterparty, self.name) if incoming else (self.name, counterparty)
        out: list[Escrow] = []
        after: str | None = None
        while True:
            page = await self._evaluate("list_escrows", c.ListEscrowsRequest(
                payer, payee, _PAGE, after))
            out.extend(Escrow.from_json(x, self.currencies) for x in page.get("escrows", []))
            after = page.get("next")
            if not after:
                break
        return [await self.get_escrow(e.escrow_id, e.payer_bank, e.payee_bank)
                if e.state is c.EscrowState.DISPUTED else e for e in out]

    # --- payment requests ------------------------------------------------------------------

    async def request_payment(
        self,
        payer_bank: str,
        payer_account: str,
        to_account: str,
        amount: Money,
        *,
        invoice_ref: str,
        due: datetime,
        reference: str,
    ) -> PaymentRequested:
        """Ask ``payer_bank`` to pay ``amount`` from its customer's ``payer_account`` into
        this bank's ``to_account`` by ``due`` (an exporter's invoice)."""
        minor = await self._minor(amount, to_account)
        self.profile.bank(payer_bank)
        request_id = self._derived_id("payment-request", reference)
        request = c.RequestPaymentRequest(reference, payer_bank, payer_account, to_account,
                                          minor, amount.currency, invoice_ref,
                                          _utc(due, "due"),
                                          request_id)
        receipt = await self._write("request_payment", request, reference)
        return PaymentRequested(request_id, receipt)

    async def approve_request(self, request_id: str, payee_bank: str, *,
                              originator: Mapping[str, str] | None = None,
                              ttl_seconds: int | None = None) -> Receipt:
        """Pay a request, once: a cross-bank transfer whose id is the request's id (the
        payee bank accepts it as any transfer)."""
        request = c.ApproveRequestRequest(
            f"request/{payee_bank}/{request_id}", payee_bank, request_id,
            ttl_seconds or w.DEFAULT_TTL_SECONDS, dict(originator or {}))
        return await self._write("approve_request", request, request.reference)

    async def decline_request(self, request_id: str, payee_bank: str,
                              reason: str = "") -> Receipt:
        """Refuse a request (``reason`` goes to the payee bank only)."""
        request = c.DeclineRequestRequest(payee_bank, request_id, reason[:256])
        return await self._write("decline_request", request,
                                 f"request/{payee_bank}/{request_id}/decline")

    async def get_payment_request(self, request_id: str, payer_bank: str,
                                  payee_bank: str) -> PaymentRequest:
        """One request and its status (either bank of the pair)."""
        data = await self._evaluate("get_payment_request", c.PaymentRequestLookup(
            request_id, payer_bank, payee_bank))
        return PaymentRequest.from_json(data, self.currencies)

    async def payment_requests(self, counterparty: str, *,
                               incoming: bool = True) -> list[PaymentRequest]:
        """Requests ``counterparty`` sent this bank to pay (``incoming``), or that this bank
        sent it."""
        payer, payee = (self.name, counterparty) if incoming else (counterparty, self.name)
        out: list[PaymentRequest] = []
        after: str | None = None
        while True:
            page = await self._evaluate("list_payment_requests", c.ListPaymentRequestsRequest(
                payer, payee, _PAGE, after))
            out.extend(PaymentRequest.from_json(x, self.currencies)
                       for x in page.get("requests", []))
            after = page.get("next")
            if not after:
                return out
