"""Payment requests: an exporter's bank asks a buyer's bank to pay an invoice.

Owns: ``request_payment`` (the payee's bank writes the request, pinned to both banks, in
``pair-<payee>-<payer>``), ``approve_request`` (the payer's bank pays it: a cross-bank
transfer whose id **is** the request's id), ``decline_request`` (the payer's bank records its
refusal, pinned, in ``pair-<payer>-<payee>``), and the reads ``get_payment_request`` and
``list_payment_requests``. Only the two banks (and the regulator) hold these collections.

Paid once, by construction: the transfer key ``xfer/<request id>`` is written once and pinned
to both banks, so a second payment under the request is refused by an honest payer bank
(``ALREADY_EXISTS``) and, from a modified server, is an update of a pinned key that Fabric
invalidates without the payee bank's endorsement. ``approve_request`` reads the decline key
and ``decline_request`` reads the transfer key: MVCC lets only the first to commit stand.

Must not: put a request id, an amount, an account or an invoice reference into an event, an
error or a write's return value.
"""

from __future__ import annotations

from datetime import timedelta

from dtoken_wire.codec import format_timestamp, parse_timestamp
from dtoken_wire.conditional import (
    ApproveRequestRequest,
    DeclineRequestRequest,
    ListPaymentRequestsRequest,
    PaymentRequestLookup,
    RequestPaymentRequest,
)
from dtoken_wire.events import EVENT_PAYMENT_REQUEST

from ..conditions import REQUEST_MISMATCH, request_status
from ..errors import (
    AlreadyExists,
    CorruptState,
    CurrencyMismatch,
    Expired,
    InvalidArgument,
    InvalidState,
    NotFound,
)
from ..keys import (
    pair_collection,
    payment_request_key,
    prefix_range,
    request_decline_key,
    transfer_key,
)
from ..placement import MAX_ANOMALY_DETAILS, Anomaly, Place, bind, pair_pin
from ..records import PaymentRequest, RequestDecline, Transfer
from ..registry import BankInfo, day_of
from ..rules import debit, transfer_status
from .access import (
    ROLE_OPERATOR,
    Tx,
    authorize_bank_write,
    authorize_read,
    done,
    load_registry,
    member_bank,
    other_bank,
)
from .declare import declare
from .lanes import debit_hold
from .steps import (
    announce_pending,
    check_new_transfer_id,
    claim_reference,
    read_account,
    save_account,
    transfer_records,
    write_outgoing_transfer,
    write_reference,
)
from .suspension import refuse_suspended

__all__ = [
    "MAX_DUE_DAYS",
    "approve_request",
    "decline_request",
    "get_payment_request",
    "list_payment_requests",
    "read_request",
    "request_payment",
]

#: The furthest due time a request may have.
MAX_DUE_DAYS = 366


async def read_request(tx: Tx, payer: BankInfo, payee: BankInfo,
                       request_id: str) -> PaymentRequest:
    """The request ``payee`` sent ``payer``, bound to where it lives and pinned; refused
    (naming the collection) if it is not valid there."""
    place = Place.between(payee, payer)
    found = await tx.ledger.get_bound(PaymentRequest, place, payment_request_key(request_id))
    if found is None:
        raise NotFound("the payment request does not exist (or has not reached this peer yet)")
    if isinstance(found, Anomaly):
        raise CorruptState(f"the payment request in {place.collection} is not valid there "
                           f"({found.what}): it counts for nobody")
    return found


async def _decline(tx: Tx, payer: BankInfo, payee: BankInfo,
                   request_id: str) -> RequestDecline | None:
    found = await tx.ledger.get_bound(RequestDecline, Place.between(payer, payee),
                                      request_decline_key(request_id))
    return None if isinstance(found, Anomaly) else found


async def _transfer(tx: Tx, payer: BankInfo, payee: BankInfo,
                    request_id: str) -> Transfer | None:
    found = await tx.ledger.get_bound(Transfer, Place.between(payer, payee),
                                      transfer_key(request_id))
    return None if isinstance(found, Anomaly) else found


@declare()
async def request_payment(tx: Tx, req: RequestPaymentRequest) -> dict[str, object]:
    """At the payee's bank: ask the payer bank to pay an invoice into the payee's account."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payer = other_bank(registry, bank, req.payer_bank, "payer_bank")
    await refuse_suspended(tx, registry, bank, [payer], "payment request")
    ref_key = await claim_reference(tx, bank, req.reference, accounts=(req.payee_account,))
    payee_account = await read_account(tx, bank, req.payee_account, "payee")
    if payee_account.currency != req.currency:
        raise CurrencyMismatch("the payee account is not in the request's currency")
    if not registry.issues(payer.name, req.currency):
        raise CurrencyMismatch("the payer bank issues no token in the request's currency")
    due = parse_timestamp(req.due)
    if due <= tx.now:
        raise InvalidArgument("request.due must be after the transaction's time")
    if due > tx.now + timedelta(days=MAX_DUE_DAYS):
        raise InvalidArgument(f"request.due must be within {MAX_DUE_DAYS} days")
    request_id = req.request_id or tx.deriver.request_id(tx.tx_id)
    coll, key = pair_collection(bank.name, payer.name), payment_request_key(request_id)
    if await tx.ledger.get(PaymentRequest, coll, key) is not None:
        raise AlreadyExists("a payment request with that id exists")
    tx.ledger.put(coll, key, PaymentRequest(
        request_id=request_id, payer_bank=payer.name, payee_bank=bank.name,
        payer_account=req.payer_account, payee_account=req.payee_account, amount=req.amount,
        currency=req.currency, invoice_ref=req.invoice_ref, due=req.due, created_at=tx.at,
        tx_id=tx.tx_id), pin=pair_pin(bank, payer))
    write_reference(tx, bank, ref_key, "request_payment", [request_id])
    tx.ledger.set_event(EVENT_PAYMENT_REQUEST, {"payer_bank": payer.name})
    return done(tx)


@declare()
async def approve_request(tx: Tx, req: ApproveRequestRequest) -> dict[str, object]:
    """At the payer's bank: pay the request, once (a transfer whose id is the request id)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payee = other_bank(registry, bank, req.payee_bank, "payee_bank")
    await refuse_suspended(tx, registry, bank, [payee], "new payment")
    request = await read_request(tx, bank, payee, req.request_id)
    ref_key = await claim_reference(tx, bank, req.reference, accounts=(request.payer_account,))
    if await _decline(tx, bank, payee, request.request_id) is not None:
        raise InvalidState("the payment request was declined")
    try:
        await check_new_transfer_id(tx, bank, payee, request.request_id)
    except AlreadyExists:
        raise AlreadyExists("the payment request was paid already") from None
    if tx.now >= parse_timestamp(request.due):
        raise Expired("the payment request is past its due time")
    payer = await read_account(tx, bank, request.payer_account, "payer")
    if payer.currency != request.currency:
        raise CurrencyMismatch("the payer account is not in the request's currency")
    hold = await debit_hold(tx, registry, bank, payer)
    payer = debit(payer, [request.amount], day=day_of(tx.now), hold=hold)
    # Nothing below refuses.
    payer = write_outgoing_transfer(
        tx, bank, payee, payer, request.request_id, ref_key=ref_key,
        payee_account=request.payee_account,
        amount=request.amount,
        expires_at=format_timestamp(tx.now + timedelta(seconds=req.ttl_seconds)),
        originator=req.originator, remittance=f"payment request {request.invoice_ref}")
    save_account(tx, bank, payer)
    write_reference(tx, bank, ref_key, "approve_request", [request.request_id],
                    account=request.payer_account)
    announce_pending(tx, [payee.name])
    return done(tx)


@declare()
async def decline_request(tx: Tx, req: DeclineRequestRequest) -> dict[str, object]:
    """At the payer's bank: refuse the request (once; never after paying it)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payee = other_bank(registry, bank, req.payee_bank, "payee_bank")
    request = await read_request(tx, bank, payee, req.request_id)
    if await _decline(tx, bank, payee, request.request_id) is not None:
        raise InvalidState("the payment request was declined already")
    if await tx.ledger.get(Transfer, pair_collection(bank.name, payee.name),
                           transfer_key(request.request_id)) is not None:
        raise InvalidState("the payment request was paid")
    tx.ledger.put(pair_collection(bank.name, payee.name),
                  request_decline_key(request.request_id), RequestDecline(
                      request_id=request.request_id, payer_bank=bank.name,
                      payee_bank=payee.name, reason=req.reason, declined_at=tx.at,
                      tx_id=tx.tx_id), pin=pair_pin(bank, payee))
    tx.ledger.set_event(EVENT_PAYMENT_REQUEST, {"payee_bank": payee.name})
    return done(tx)


async def _view(tx: Tx, payer: BankInfo, payee: BankInfo,
                request: PaymentRequest) -> dict[str, object]:
    transfer = await _transfer(tx, payer, payee, request.request_id)
    decline = await _decline(tx, payer, payee, request.request_id)
    status = request_status(request, transfer, decline, tx.now)
    payment: str | None = None
    if transfer is not None:
        t, d, r = await transfer_records(tx, payer, payee, request.request_id)
        payment = transfer_status(t, d, r, tx.now).value
    return {"request": request.to_json(), "status": status.value,
            "payment_status": payment,
            "decline": decline.to_json() if decline else None,
            "anomalies": [REQUEST_MISMATCH] if status.value == "mismatched" else []}


@declare(evaluate=True)
async def get_payment_request(tx: Tx, req: PaymentRequestLookup) -> dict[str, object]:
    """One payment request, its status and its payment's status (either bank, or the
    regulator; no other bank)."""
    registry = await load_registry(tx)
    payer = member_bank(registry, req.payer_bank, "payer_bank")
    payee = other_bank(registry, payer, req.payee_bank, "payee_bank")
    authorize_read(tx, registry, [payer, payee])
    return await _view(tx, payer, payee, await read_request(tx, payer, payee, req.request_id))


@declare(evaluate=True)
async def list_payment_requests(tx: Tx, req: ListPaymentRequestsRequest) -> dict[str, object]:
    """What ``payee_bank`` asked ``payer_bank`` to pay, by id, one page after ``after``,
    each with its status; records not valid where they live are reported."""
    registry = await load_registry(tx)
    payee = member_bank(registry, req.payee_bank, "payee_bank")
    payer = other_bank(registry, payee, req.payer_bank, "payer_bank")
    authorize_read(tx, registry, [payer, payee])
    place = Place.between(payee, payer)
    start, end = prefix_range("payreq")
    if req.after is not None:
        start = payment_request_key(req.after) + "\x00"
    rows = await tx.ledger.scan(place.collection, start, end, req.page_size + 1)
    out: list[dict[str, object]] = []
    anomalies: list[dict[str, object]] = []
    for key, raw in rows[: req.page_size]:
        found = bind(PaymentRequest, place, key, raw)
        if not isinstance(found, Anomaly) and not await tx.ledger.pinned(
                PaymentRequest, place, key):
            found = Anomaly(place.collection, key, (place.writer,), "unpinned")
        if isinstance(found, Anomaly):
            if len(anomalies) < MAX_ANOMALY_DETAILS:
                anomalies.append(found.to_json())
            continue
        out.append(await _view(tx, payer, payee, found))
    last = (rows[req.page_size - 1][0].removeprefix("payreq/")
            if len(rows) > req.page_size else None)
    return {"requests": out, "next": last, "anomaly_records": anomalies}
