"""A dishonest bank's chaincode server: the honest contract plus transactions that break it.

Launched for one bank as ``python -m fabshim serve dishonest_token:chaincode`` in place of its
honest server (same package id, address and environment). What the real network must show
(``tests/integration/test_contract_real.py``):

* ``forge_foreign_credit``, ``forge_counterparty_decision``, ``lift_regulator_hold`` write into
  collections whose policy this bank does not satisfy alone: the peer endorses them (it runs
  any code), the committers invalidate them (ENDORSEMENT_POLICY_FAILURE).
* ``lift_own_suspension`` writes "resumed" over the regulator's suspension of this bank, in
  a bank's ``holds-<bank>`` (its own, or another's), or deletes it: invalidated likewise
  (``tests/integration/test_add_bank.py``).
* ``accept_skipping_refund_read`` is the payee's accept without the point read of
  ``refund/<id>`` and without pinning its decision to both banks: it writes only the bank's
  own collections and commits, so a refunded transfer ends up also "accepted"; the decision
  counts for nobody (every reader requires the pin) and the audit names usbank.
* ``refund_claiming_earlier`` is the payer's refund of an accepted transfer, pinned, claiming
  an earlier transaction id: it commits (new key, the payer's own collection); the SDK proves
  from the blocks that the accept came first, and names the false claim.
* ``debit_ignoring_hold`` is a burn that never reads the regulator's hold on the account: it
  writes only the bank's own ``acct-<bank>`` and commits although the account is frozen; the
  regulator's monitor names the bank and the transaction
  (``tests/integration/test_monitor_real.py``).
* ``claim_without_preimage`` is the payee's claim of a hash-locked leg with a wrong
  preimage, pinned as an honest claim: it commits (the bank's own collections) and counts
  for nobody (``claim_without_preimage``); the payer still expires and refunds. Given the
  right ``preimage`` it is a claim that checks neither the deadline nor the lock's state: after
  the payer and the regulator expired the lock it counts for nobody (``late_claim``).
* ``rewrite_lock_alone`` is the payer's early expiry of a hash-locked leg (or a rewrite of its
  lock), endorsed by its own peer alone: the lock and the transfer are pinned to both banks,
  so the committers invalidate it (``tests/integration/test_pvp.py``).
* ``pay_with_better_rate`` is the payer bank's ``pay_with_quote`` with the transfer claiming
  twice the quote's payee amount (a better rate than the payee bank gave), pinned as an
  honest transfer: it commits (the payer's own collections); the payee bank's accept compares
  it with its own quote and refuses (``tests/integration/test_quotes.py``).
* ``rewrite_quote_alone`` is the payee bank's rewrite of a quote it gave (a smaller payee
  amount), endorsed by its own peer alone: the quote is pinned to both banks, so the
  committers invalidate it (``tests/integration/test_quotes.py``).
* ``audit_unchecked`` (on the regulator's peer) is the audit without the check of its scanned
  values against the committed hashes: only to measure what that check costs.
* ``undo_dishonest_accept`` takes that accept back (the decision, the ``in`` supply record, the
  credit), again in the bank's own collections only, so the shared test ledger conserves again.

* ``claim_escrow_unconditionally`` is the payee bank's claim of an escrow without the
  condition (no release, a statement that does not verify): pinned like an honest one, it
  commits (its own collections); it counts for nobody and is reported
  (``tests/integration/test_escrow_real.py``).
* ``refund_escrow_early`` is the payer bank's refund of an escrow before its deadline, on its
  own word: it commits; a delivery attested in time still pays the seller, the payer bank
  owes, and the refund is reported. With a ``statement`` (a ``refund`` ruling signed with an
  arbiter key the payer bank chose) it is the refund written after the seller was paid,
  skipping the read of the claim: it commits, the claim came first in ledger order and
  stands, and the refund is reported (``escrow_refund_after_claim``).
* ``rewrite_pinned`` rewrites a record the bank created in its own pair collection (an
  escrow's terms, the transfer that paid a payment request): the record was pinned to both
  banks, so the committers invalidate it.

Under the namespace layout (``DTOKEN_NAMESPACE_LAYOUT``) every raw forged write goes where the
real data lives (:meth:`DishonestTokenContract._place`): a collection of this bank's own
namespace directly, any other (a pair namespace, or another bank's own namespace, which its
peer reaches only once its organization approved that namespace with its storage package:
``harness.dishonest.runs_namespace``) through the storage chaincode, as the honest contract
reaches pair namespaces. The attack is the same; only the route differs.

Every request is JSON under transient key ``"request"``; nothing here is used in production.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from deposit_token import operations as ops
from deposit_token.contract import DepositTokenContract
from deposit_token.errors import NotFound
from deposit_token.keys import (
    acct_collection,
    decision_key,
    escrow_claim_key,
    escrow_note_key,
    escrow_refund_key,
    holds_collection,
    lock_key,
    pair_collection,
    quote_key,
    refund_key,
    supply_key,
    suspension_key,
    transfer_key,
)
from deposit_token.operations import ROLE_MINTER, ROLE_OPERATOR, Tx, conservation
from deposit_token.operations.crossbank import _payout
from deposit_token.operations.escrow import escrow_records
from deposit_token.operations.steps import read_quote, record_decision, refund_account
from deposit_token.placement import pair_pin
from deposit_token.records import (
    Decision,
    EscrowClaim,
    EscrowNote,
    EscrowRefund,
    HistoryKind,
    Outcome,
    Refund,
    RefundCause,
    SupplyKind,
    SupplyRecord,
    Suspension,
    Transfer,
    encode,
)
from deposit_token.registry import day_of
from deposit_token.routing import PairStorage
from deposit_token.rules import DebitKind, credit, debit
from dtoken_wire.namespaces import collection_namespace
from dtoken_wire.requests import PayWithQuoteRequest
from fabcontract import Context, ContractChaincode, transaction

__all__ = ["DishonestTokenContract", "chaincode"]

FORGED = b'{"forged":true}'


def _request(ctx: Context) -> dict[str, Any]:
    raw = ctx.stub.get_transient().get("request")
    return dict(json.loads(raw)) if raw else {}


class _Remote:
    """The raw private-data calls the forging transactions make, on a namespace other than
    this transaction's, through that namespace's storage chaincode (each call at once)."""

    def __init__(self, storage: PairStorage) -> None:
        self._storage = storage

    async def get_private_data(self, collection: str, key: str) -> bytes | None:
        return await self._storage.get_private_data(collection, key)

    async def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        await self._storage.write([(collection, key, value, None)])

    async def del_private_data(self, collection: str, key: str) -> None:
        await self._storage.write([(collection, key, None, None)])


class DishonestTokenContract(DepositTokenContract):
    """The honest contract and the transactions a dishonest bank could install."""

    async def _dishonest(self, ctx: Context, name: str, body: Any) -> dict[str, Any]:
        return await self._service._guarded(ctx.stub, self._caller(ctx), name, body, flush=True)

    async def _place(self, ctx: Context, collection: str) -> Any:
        """Where a raw forged call on ``collection`` goes: where its real data lives (see
        the module docstring); the stub itself on the single namespace."""
        if not self._service.settings.layout:
            return ctx.stub
        here = ctx.stub.chaincode_name
        registry = await ops.load_registry(self._service._tx(ctx.stub, self._caller(ctx)))
        namespace = collection_namespace(here.rpartition("-")[0], list(registry.joined()),
                                         collection)
        return ctx.stub if namespace == here else _Remote(PairStorage(ctx.stub, namespace))

    @transaction()
    async def forge_foreign_credit(self, ctx: Context) -> dict[str, Any]:
        """(a) Overwrite an account in another bank's collection ``acct-<bank>``."""
        req = _request(ctx)
        # It cannot know the other bank's account key: it aims at the key hash it can compute
        # (the account keys under its own account key; the write is refused either way).
        keys = self._service.settings.deriver.account_keys()
        coll = acct_collection(req["bank"])
        store = await self._place(ctx, coll)
        await store.put_private_data(coll, keys.account(req["account_id"]), FORGED)
        return {"tx_id": ctx.stub.tx_id}

    @transaction()
    async def forge_counterparty_decision(self, ctx: Context) -> dict[str, Any]:
        """(b) Write a decision into the other bank's directional collection."""
        req = _request(ctx)
        coll = pair_collection(req["asserter"], req["counterparty"])
        store = await self._place(ctx, coll)
        await store.put_private_data(coll, decision_key(req["transfer_id"]), FORGED)
        return {"tx_id": ctx.stub.tx_id}

    @transaction()
    async def lift_own_suspension(self, ctx: Context) -> dict[str, Any]:
        """Write "resumed" over the regulator's suspension of this bank in ``holds-<bank>``
        (``req["bank"]``: whose holds collection), or delete it."""
        req = _request(ctx)
        coll, key = holds_collection(req["bank"]), suspension_key(req["suspended"])
        store = await self._place(ctx, coll)
        if req.get("delete"):
            await store.del_private_data(coll, key)
        else:
            lifted = Suspension(bank=req["suspended"], suspended=False, tx_id=ctx.stub.tx_id)
            await store.put_private_data(coll, key, encode(lifted, "7" * 32))
        return {"tx_id": ctx.stub.tx_id}

    @transaction()
    async def lift_regulator_hold(self, ctx: Context) -> dict[str, Any]:
        """(c) Overwrite (or delete) the regulator's hold in ``holds-<bank>``."""
        req = _request(ctx)
        # The hold on one of its own accounts: its server computes the key the regulator used.
        keys = self._service.settings.deriver.account_keys()
        coll, key = holds_collection(req["bank"]), keys.hold(req["account_id"])
        store = await self._place(ctx, coll)
        if req.get("delete"):
            await store.del_private_data(coll, key)
        else:
            await store.put_private_data(coll, key, FORGED)
        return {"tx_id": ctx.stub.tx_id}

    @transaction()
    async def accept_skipping_refund_read(self, ctx: Context) -> dict[str, Any]:
        """(d) The payee's accept without reading ``refund/<id>`` nor its own decision: it
        overwrites a rejection it made earlier, after which the payer refunded."""
        req = _request(ctx)

        async def body(tx: Tx) -> dict[str, object]:
            registry = await ops.load_registry(tx)
            bank = ops.authorize_bank_write(tx, registry, ROLE_OPERATOR)
            payer = ops.other_bank(registry, bank, req["payer_bank"], "payer_bank")
            tid = req["transfer_id"]
            record = await tx.ledger.get(
                Transfer, pair_collection(payer.name, bank.name), transfer_key(tid)
            )
            if record is None:
                raise NotFound("no such transfer")
            back = pair_collection(bank.name, payer.name)
            payee = await ops.read_account(tx, bank, record.payee_account, "payee")
            payee = ops.record_history(
                tx,
                bank,
                credit(payee, record.amount),
                HistoryKind.PAYMENT_IN,
                record.amount,
                counterparty_bank=payer.name,
                transfer_id=tid,
            )
            ops.save_account(tx, bank, payee)
            decision = Decision(
                transfer_id=tid,
                outcome=Outcome.ACCEPTED,
                payer_bank=payer.name,
                payee_bank=bank.name,
                amount=record.amount,
                currency=record.currency,
                decided_at=tx.at,
                tx_id=tx.tx_id,
            )
            # Written past the ledger, without the pin an honest accept sets: this bank keeps
            # the power to delete its decision alone (so counterparties must not count it).
            key = decision_key(tid)
            store = await self._place(ctx, back)
            await store.put_private_data(
                back, key, encode(decision, tx.deriver.salt(tx.tx_id, back, key))
            )
            ops.record_supply(
                tx, bank, record.currency, SupplyKind.IN, record.amount, payer.name, tid
            )
            return ops.done(tx)

        return await self._dishonest(ctx, "accept_skipping_refund_read", body)

    @transaction()
    async def refund_claiming_earlier(self, ctx: Context) -> dict[str, Any]:
        """(f) The payer's refund of a transfer the payee already accepted: no read of the
        decision, no expiry check, pinned like an honest record, and claiming in its
        ``tx_id`` an earlier transaction (``claimed_tx_id``) so that ledger order would seem
        to put it first."""
        req = _request(ctx)

        async def body(tx: Tx) -> dict[str, object]:
            registry = await ops.load_registry(tx)
            bank = ops.authorize_bank_write(tx, registry, ROLE_OPERATOR)
            payee = ops.other_bank(registry, bank, req["payee_bank"], "payee_bank")
            tid = req["transfer_id"]
            record = await tx.ledger.get(
                Transfer, pair_collection(bank.name, payee.name), transfer_key(tid))
            if record is None:
                raise NotFound("no such transfer")
            payer_account = await refund_account(tx, bank, record)
            payer = await ops.read_account(tx, bank, payer_account, "payer")
            payer = ops.record_history(
                tx, bank, credit(payer, record.amount, refund=True), HistoryKind.REFUND,
                record.amount, counterparty_bank=payee.name, transfer_id=tid,
                detail=RefundCause.REJECTED.value,
            )
            ops.save_account(tx, bank, payer)
            tx.ledger.put(
                pair_collection(bank.name, payee.name), refund_key(tid),
                Refund(transfer_id=tid, payer_bank=bank.name, payee_bank=payee.name,
                       amount=record.amount, currency=record.currency,
                       cause=RefundCause.REJECTED, refunded_at=tx.at,
                       tx_id=req["claimed_tx_id"]),
                pin=pair_pin(bank, payee),
            )
            ops.record_supply(
                tx, bank, record.currency, SupplyKind.REFUND, record.amount, payee.name, tid
            )
            return ops.done(tx)

        return await self._dishonest(ctx, "refund_claiming_earlier", body)

    @transaction()
    async def debit_ignoring_hold(self, ctx: Context) -> dict[str, Any]:
        """(e) A burn of ``amount`` from ``account_id`` that skips the read of the
        regulator's hold (the honest burn reads it and refuses a frozen account). The supply
        record is written as an honest burn's, so the ledger still conserves."""
        req = _request(ctx)

        async def body(tx: Tx) -> dict[str, object]:
            registry = await ops.load_registry(tx)
            bank = ops.authorize_bank_write(tx, registry, ROLE_MINTER)
            account = await ops.read_account(tx, bank, req["account_id"])
            amount = int(req["amount"])
            account = debit(account, [amount], day=day_of(tx.now), hold=None,
                            kind=DebitKind.BURN)
            account = ops.record_history(tx, bank, account, HistoryKind.BURN, -amount)
            ops.save_account(tx, bank, account)
            ops.record_supply(tx, bank, account.currency, SupplyKind.BURN, amount)
            return ops.done(tx)

        return await self._dishonest(ctx, "debit_ignoring_hold", body)

    @transaction(evaluate=True)
    async def audit_unchecked(self, ctx: Context) -> dict[str, Any]:
        """The regulator's audit with every scanned value taken as the peer holds it, never
        compared with ``GetPrivateDataHash`` (what the audit did before that check)."""
        checked = conservation._hash_checked

        def unchecked(tx: Tx, state: Any, segment: Any, writer: str) -> Any:
            return segment

        conservation._hash_checked = unchecked
        try:
            return await self._run(ctx, "audit")
        finally:
            conservation._hash_checked = checked

    @transaction()
    async def undo_dishonest_accept(self, ctx: Context) -> dict[str, Any]:
        """Take back what ``accept_skipping_refund_read`` wrote: its decision, its ``in``
        supply record (tag 1 of that transaction) and the credit."""
        req = _request(ctx)

        async def body(tx: Tx) -> dict[str, object]:
            registry = await ops.load_registry(tx)
            bank = ops.authorize_bank_write(tx, registry, ROLE_OPERATOR)
            payer = ops.other_bank(registry, bank, req["payer_bank"], "payer_bank")
            tid = req["transfer_id"]
            back = pair_collection(bank.name, payer.name)
            decision = await tx.ledger.get(Decision, back, decision_key(tid))
            if decision is None or decision.outcome is not Outcome.ACCEPTED:
                raise NotFound("no accept to undo")
            record = await tx.ledger.get(
                Transfer, pair_collection(payer.name, bank.name), transfer_key(tid)
            )
            assert record is not None
            sup = supply_key(record.currency, tx.deriver.record_tag(decision.tx_id, "supply", 1))
            if await tx.ledger.get(SupplyRecord, acct_collection(bank.name), sup) is None:
                raise NotFound("the accept's supply record is not where it was written")
            payee = await ops.read_account(tx, bank, record.payee_account, "payee")
            ops.save_account(
                tx, bank, dataclasses.replace(payee, balance=payee.balance - record.amount)
            )
            tx.ledger.delete(back, decision_key(tid))
            tx.ledger.delete(acct_collection(bank.name), sup)
            return ops.done(tx)

        return await self._dishonest(ctx, "undo_dishonest_accept", body)

    @transaction()
    async def claim_escrow_unconditionally(self, ctx: Context) -> dict[str, Any]:
        """The payee bank credits its customer from an escrow and records a pinned claim,
        skipping the check that the condition holds (``basis`` as requested)."""
        req = _request(ctx)

        async def body(tx: Tx) -> dict[str, object]:
            registry = await ops.load_registry(tx)
            bank = ops.authorize_bank_write(tx, registry, ROLE_OPERATOR)
            payer = ops.other_bank(registry, bank, req["payer_bank"], "payer_bank")
            escrow, _, _, _ = await escrow_records(tx, payer, bank, req["escrow_id"])
            payee = await ops.read_account(tx, bank, escrow.payee_account, "payee")
            payee = ops.record_history(tx, bank, credit(payee, escrow.amount),
                                       HistoryKind.ESCROW_IN, escrow.amount,
                                       counterparty_bank=payer.name,
                                       transfer_id=escrow.escrow_id)
            ops.save_account(tx, bank, payee)
            statement = req.get("statement") or {}
            tx.ledger.put(pair_collection(bank.name, payer.name),
                          escrow_claim_key(escrow.escrow_id), EscrowClaim(
                              escrow_id=escrow.escrow_id, payer_bank=payer.name,
                              payee_bank=bank.name, amount=escrow.amount,
                              currency=escrow.currency,
                              basis="statement" if statement else "release",
                              claimed_at=tx.at, statement=statement, tx_id=tx.tx_id),
                          pin=pair_pin(bank, payer))
            ops.record_supply(tx, bank, escrow.currency, SupplyKind.IN, escrow.amount,
                              payer.name, escrow.escrow_id)
            return ops.done(tx)

        return await self._dishonest(ctx, "claim_escrow_unconditionally", body)

    @transaction()
    async def refund_escrow_early(self, ctx: Context) -> dict[str, Any]:
        """The payer bank refunds its customer from an escrow before the deadline, claiming
        the deadline passed (its own word), or on the ``statement`` requested, whatever the
        payee bank's claim."""
        req = _request(ctx)

        async def body(tx: Tx) -> dict[str, object]:
            registry = await ops.load_registry(tx)
            bank = ops.authorize_bank_write(tx, registry, ROLE_OPERATOR)
            payee = ops.other_bank(registry, bank, req["payee_bank"], "payee_bank")
            escrow, _, _, _ = await escrow_records(tx, bank, payee, req["escrow_id"])
            note = await tx.ledger.get(EscrowNote, acct_collection(bank.name),
                                       escrow_note_key(escrow.escrow_id))
            if note is None:
                raise NotFound("no such escrow")
            payer = await ops.read_account(tx, bank, note.payer_account, "payer")
            payer = ops.record_history(tx, bank, credit(payer, escrow.amount, refund=True),
                                       HistoryKind.ESCROW_REFUND, escrow.amount,
                                       counterparty_bank=payee.name,
                                       transfer_id=escrow.escrow_id, detail="deadline")
            ops.save_account(tx, bank, payer)
            statement = req.get("statement") or {}
            tx.ledger.put(pair_collection(bank.name, payee.name),
                          escrow_refund_key(escrow.escrow_id), EscrowRefund(
                              escrow_id=escrow.escrow_id, payer_bank=bank.name,
                              payee_bank=payee.name, amount=escrow.amount,
                              currency=escrow.currency,
                              cause="statement" if statement else "deadline",
                              refunded_at=tx.at, statement=statement,
                              tx_id=tx.tx_id), pin=pair_pin(bank, payee))
            ops.record_supply(tx, bank, escrow.currency, SupplyKind.REFUND, escrow.amount,
                              payee.name, escrow.escrow_id)
            return ops.done(tx)

        return await self._dishonest(ctx, "refund_escrow_early", body)

    @transaction()
    async def rewrite_pinned(self, ctx: Context) -> dict[str, Any]:
        """Overwrite ``key`` in ``pair-<this bank>-<counterparty>`` with ``value`` (JSON text,
        salted as the contract salts): a record pinned to both banks at creation."""
        req = _request(ctx)
        coll = pair_collection(req["bank"], req["counterparty"])
        store = await self._place(ctx, coll)
        await store.put_private_data(coll, req["key"], req["value"].encode())
        return {"tx_id": ctx.stub.tx_id}


    @transaction()
    async def claim_without_preimage(self, ctx: Context) -> dict[str, Any]:
        """(PvP) The payee's claim of a hash-locked leg with a preimage that does not open its
        lock: credit, ``in`` supply record and a decision pinned to both banks as an honest
        claim's, all in this bank's own collections, so it commits. Every reader hashes the
        preimage: it counts for nobody and is reported (``claim_without_preimage``). With
        ``preimage`` given (the right one), a claim past the deadline of a lock already
        expired: reported ``late_claim``."""
        req = _request(ctx)

        async def body(tx: Tx) -> dict[str, object]:
            registry = await ops.load_registry(tx)
            bank = ops.authorize_bank_write(tx, registry, ROLE_OPERATOR)
            payer = ops.other_bank(registry, bank, req["payer_bank"], "payer_bank")
            tid = req["transfer_id"]
            record = await tx.ledger.get(
                Transfer, pair_collection(payer.name, bank.name), transfer_key(tid)
            )
            if record is None:
                raise NotFound("no such transfer")
            payee = await ops.read_account(tx, bank, record.payee_account, "payee")
            payee = ops.record_history(tx, bank, credit(payee, record.amount),
                                       HistoryKind.PAYMENT_IN, record.amount,
                                       counterparty_bank=payer.name, transfer_id=tid)
            ops.save_account(tx, bank, payee)
            ops.record_supply(tx, bank, record.currency, SupplyKind.IN, record.amount,
                              payer.name, tid)
            record_decision(tx, bank, payer, record, Outcome.ACCEPTED, "",
                            str(req.get("preimage", "00" * 32)))
            return ops.done(tx)

        return await self._dishonest(ctx, "claim_without_preimage", body)

    @transaction()
    async def rewrite_lock_alone(self, ctx: Context) -> dict[str, Any]:
        """(PvP) The payer bank's server, alone, turns a hash-locked leg's ``lock/<id>``
        ``expired`` before its deadline (``what: "state"``), or rewrites the lock in the
        transfer record (``what: "transfer"``), to refund while the leg can still be claimed.
        Both keys are pinned to both banks: the committers invalidate it."""
        req = _request(ctx)
        coll = pair_collection(req["payer_bank"], req["payee_bank"])
        if req["what"] == "state":
            key = lock_key(req["transfer_id"])
            old, new = b'"state":"locked"', b'"state":"expired"'
        else:
            key = transfer_key(req["transfer_id"])
            old, new = f'"lock":"{req["lock"]}"'.encode(), b'"lock":"' + b"ab" * 32 + b'"'
        store = await self._place(ctx, coll)
        raw = await store.get_private_data(coll, key)
        if raw is None or old not in raw:
            raise NotFound("no such locked leg")
        await store.put_private_data(coll, key, raw.replace(old, new))
        return {"tx_id": ctx.stub.tx_id}

    @transaction()
    async def pay_with_better_rate(self, ctx: Context) -> dict[str, Any]:
        """(FX quotes) ``pay_with_quote`` as the honest contract runs it, except that the
        transfer claims twice the quote's ``payee_amount``: the payer's own books are kept
        (debit, ``out`` record), the claim is the lie. The payee's accept refuses it."""
        req = PayWithQuoteRequest.from_json(_request(ctx))

        async def body(tx: Tx) -> dict[str, object]:
            registry = await ops.load_registry(tx)
            bank = ops.authorize_bank_write(tx, registry, ROLE_OPERATOR)
            payee = ops.other_bank(registry, bank, req.payee_bank, "payee_bank")
            quote = await read_quote(tx, payee, bank, req.quote_id)
            if quote is None:
                raise NotFound("no such quote")
            better = dataclasses.replace(quote, payee_amount=2 * quote.payee_amount)
            return await _payout(tx, "pay_with_quote", req.reference, req.payer_account,
                                 (req.payment,), req.ttl_seconds, req.originator,
                                 cross_only=True, quote=better)

        return await self._dishonest(ctx, "pay_with_better_rate", body)

    @transaction()
    async def rewrite_quote_alone(self, ctx: Context) -> dict[str, Any]:
        """(FX quotes) The payee bank's server halves the payee amount of a quote it gave
        (``quote/<id>`` in ``pair-<payee>-<payer>``), endorsed by its own peer alone. The
        quote is pinned to both banks: the committers invalidate it."""
        req = _request(ctx)
        coll = pair_collection(req["payee_bank"], req["payer_bank"])
        key = quote_key(req["quote_id"])
        store = await self._place(ctx, coll)
        raw = await store.get_private_data(coll, key)
        old = f'"payee_amount":{req["payee_amount"]}'.encode()
        if raw is None or old not in raw:
            raise NotFound("no such quote")
        new = f'"payee_amount":{int(req["payee_amount"]) // 2}'.encode()
        await store.put_private_data(coll, key, raw.replace(old, new))
        return {"tx_id": ctx.stub.tx_id}


chaincode = ContractChaincode(DishonestTokenContract(), title="deposit-token", version="0.1.0")
