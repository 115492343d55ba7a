"""``Bank`` and ``Regulator``: typed, async clients of the deposit-token contract.

Built from a connection profile (``<state>/profiles/<org>.json``) and one of the
organization's identities; they talk to the organization's own peer through the Fabric
Gateway (:mod:`fabgateway`). Every private input goes in the transient map (``"request"``),
never in an argument; every write names its endorsing organization itself: the bank alone
for its writes (the collection policies of what it writes need no one else), the regulator
alone for holds. Reads run on the organization's own peer.

Every write goes through :class:`~dtoken.submitter.Submitter`: money movements take a
``reference`` from which the transaction ids are derived, so a retry (in this process or the
next) can never apply twice. Accept, reject and refund derive their reference from the
transfer; a settlement from its RTGS reference.

Escrow and payment requests are :class:`dtoken.conditional.ConditionalPayments`, a mixin
``Bank`` inherits (the seam this file's size asked for).

One file of ~850 lines on purpose: ``Bank`` and ``Regulator`` are the SDK's two public
classes, sharing ``Member``, each method one contract transaction (the verb table in
docs/sdk.md), and their blocking twins with typed declarations are generated from this module
(:mod:`dtoken.sync`). Split by theme, one class would be scattered over modules; the seam for
the next split is the netting reads (obligations, proven positions, audit) as a mixin.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import fabgateway
import grpc
from dtoken_wire import requests as w
from dtoken_wire.enums import AccountStatus, Direction, Rounding
from dtoken_wire.keys import pair_collection

from dtoken.coalescer import Coalescer
from dtoken.conditional import ConditionalPayments
from dtoken.errors import (
    ExposureCapExceeded,
    InsufficientFunds,
    LimitExceeded,
    NetworkFault,
    NotFound,
    ProfileError,
    UsageError,
)
from dtoken.models import (
    Account,
    AccountSummary,
    Anomaly,
    AuditReport,
    HistoryEntry,
    Obligation,
    Obligations,
    OpenedAccount,
    Payee,
    Payment,
    Payout,
    ProvenPosition,
    Quote,
    ReferenceInfo,
    Supply,
    Transfer,
    TransferStatus,
    format_timestamp,
)
from dtoken.money import Money
from dtoken.profile import Profile
from dtoken.submitter import Receipt, RetryPolicy, Submitter

__all__ = ["Bank", "Member", "Regulator", "connect"]

PAGE_SIZE = 1000

#: The paginated requests (each has ``page_size`` and ``cursor``).
_Paged = (w.ListAccountsRequest | w.SupplyRequest | w.PendingRequest | w.ObligationsRequest
          | w.AuditRequest)



def _counted(page: dict[str, Any], extra: Sequence[Anomaly]) -> dict[str, int]:
    """A page's anomaly counts with the SDK's own findings added."""
    counts = {str(k): int(v) for k, v in dict(page.get("anomalies", {})).items()}
    for anomaly in extra:
        counts[anomaly.tally_key] = counts.get(anomaly.tally_key, 0) + 1
    return counts

class Member:
    """What banks and the regulator share: the connection, the submitter and the reads."""

    KIND = ""
    DEFAULT_IDENTITY = "operator"

    def __init__(
        self,
        profile: Profile,
        channel: grpc.aio.Channel,
        *,
        identity: str | None = None,
        policy: RetryPolicy | None = None,
        owns_channel: bool = False,
    ) -> None:
        self.profile = profile
        self.identity_name = identity or self.DEFAULT_IDENTITY
        ident, signer, self._secret = self._credentials(profile, self.identity_name)
        self._channel = channel
        self._owns_channel = owns_channel
        gateway = fabgateway.connect(channel, ident, signer)
        self._network = gateway.get_network(profile.channel)
        self._contract = self._network.get_contract(profile.chaincode)
        # own organization's peer: the endorsing_organizations would otherwise be planned
        self._ledger_queries = self._network.get_ledger_queries(
            endorsing_organizations=[profile.msp_id])
        self.submitter = Submitter(
            self._contract,
            self._network,
            self._secret,
            policy=policy,
            lookup_reference=self._reference_tx_id,
        )
        self._currency_cache: dict[tuple[str, str], str] = {}

    @classmethod
    def connect(
        cls,
        profile: Profile | str | Path,
        *,
        identity: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> Self:
        """Open a TLS channel to the organization's Gateway peer (call from async code).

        ``identity`` is a name in the profile's ``identities`` (default ``operator``; the
        regulator's default is ``auditor``). Close with ``await member.close()`` or use
        ``async with``.
        """
        loaded = profile if isinstance(profile, Profile) else Profile.load(profile)
        cls._credentials(loaded, identity or cls.DEFAULT_IDENTITY)  # fail before connecting
        try:
            ca = loaded.gateway_tls_ca.read_bytes()
        except OSError as error:
            raise ProfileError(f"{loaded.path}: gateway.tls_ca_cert: {error}") from error
        channel = fabgateway.tls_channel(loaded.gateway_endpoint, ca, loaded.gateway_server_name)
        return cls(loaded, channel, identity=identity, policy=policy, owns_channel=True)

    @classmethod
    def _credentials(
        cls, profile: Profile, identity: str
    ) -> tuple[fabgateway.Identity, fabgateway.Signer, bytes]:
        if cls.KIND and profile.kind != cls.KIND:
            raise ProfileError(
                f"{profile.path}: {profile.org} is a {profile.kind}, not a {cls.KIND}"
            )
        files = profile.identity(identity)
        try:
            ident = fabgateway.identity_from_pem_file(profile.msp_id, files.cert)
            signer = fabgateway.signer_from_pem_file(files.key)
        except (OSError, ValueError) as error:
            raise ProfileError(f"{profile.path}: identity {identity}: {error}") from error
        return ident, signer, profile.client_secret()

    async def close(self) -> None:
        """Close the gRPC channel if this object opened it."""
        if self._owns_channel:
            await self._channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- identity and helpers -------------------------------------------------------------

    @property
    def name(self) -> str:
        """The organization's name (``hkbank``)."""
        return self.profile.org

    @property
    def msp_id(self) -> str:
        return self.profile.msp_id

    @property
    def network(self) -> fabgateway.Network:
        """The channel, for chaincode events (the listener) and commit statuses."""
        return self._network

    @property
    def currencies(self) -> Mapping[str, int]:
        """Currency code -> decimals, for every currency of the network."""
        return self.profile.currencies

    def money(self, amount: str | int, currency: str | None = None) -> Money:
        """``Money`` from ``"1,250.00 USD"`` (or minor units with ``currency``)."""
        if isinstance(amount, str):
            return Money.parse(amount, self.currencies, currency=currency)
        if currency is None:
            raise UsageError("minor units need a currency")
        return Money.of(amount, currency, self.currencies)

    def _derived_id(self, purpose: str, *parts: str) -> str:
        """An opaque id from the client secret, the same on every retry: 160 bits in 32
        lowercase base32 characters (``[a-z2-7]``: never a leading ``-`` that a command line
        would take for an option)."""
        message = "\0".join(("dtoken", purpose, *parts)).encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()[:20]
        return base64.b32encode(digest).decode().lower()

    async def _evaluate(self, name: str, request: w.Request | None) -> Any:
        return await self.submitter.evaluate(
            name, None if request is None else request.to_json(),
            target_organizations=[self.msp_id],
        )

    async def _write(self, name: str, request: w.Request, reference: str | None) -> Receipt:
        return await self.submitter.submit(
            name,
            request.to_json(),
            reference=reference or f"auto-{secrets.token_hex(16)}",
            endorsing_organizations=[self.msp_id],
        )

    async def _pages(self, name: str, request: _Paged) -> list[dict[str, Any]]:
        """Every page of a paginated read (``done``/``cursor``)."""
        pages: list[dict[str, Any]] = []
        cursor: Mapping[str, object] | None = None
        while True:
            page = await self._evaluate(
                name, dataclasses.replace(request, page_size=PAGE_SIZE, cursor=cursor or None)
            )
            pages.append(page)
            if page.get("done", True):
                return pages
            found = page.get("cursor")
            cursor = found if isinstance(found, Mapping) else None

    async def wait_for_commit(self, tx_id: str, *, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        """Wait until this organization's peer has committed ``tx_id``; its block number.

        Another organization's write (the payer's transfer, the regulator's hold) is visible
        on this peer only once this peer has committed its block: call this with the other
        side's ``Receipt.tx_id`` before reading what it wrote. Raises
        :class:`~dtoken.errors.NetworkFault` if it is not committed within ``timeout``.
        """
        try:
            status = await self._network.new_commit(tx_id).get_status(timeout=timeout)
        except fabgateway.CommitStatusError as error:
            raise NetworkFault(f"transaction {tx_id} not committed here: {error.code.name}") \
                from error
        return status.block_number

    async def _reference_tx_id(self, reference: str) -> str | None:
        found = await self.lookup_reference(reference)
        return found.tx_id if found else None

    async def lookup_reference(self, reference: str) -> ReferenceInfo | None:
        """What ``reference`` did at this bank, or ``None`` if it was never applied."""
        try:
            data = await self._evaluate("get_reference", w.ReferenceRequest(reference))
        except NotFound:
            return None
        return ReferenceInfo(
            kind=str(data["kind"]),
            tx_id=str(data["tx_id"]),
            at=str(data.get("at", "")),
            ids=tuple(str(i) for i in data.get("ids", [])),
        )

    # --- reads shared by banks and the regulator (``bank`` None: the caller's own) ---------

    async def _account(self, account_id: str, bank: str | None) -> Account:
        request = w.AccountRef(account_id, bank)
        account = Account.from_json(await self._evaluate("get_account", request), self.currencies)
        self._currency_cache[(account.bank, account_id)] = account.currency
        return account

    async def _minor(self, amount: int | Money, account_id: str) -> int:
        if isinstance(amount, Money):
            currency = await self._currency_of(account_id)
            if amount.currency != currency:
                raise UsageError(f"the amount is in {amount.currency}, the account in {currency}")
            return _positive(amount.minor)
        return _positive(amount)

    async def _currency_of(self, account_id: str, bank: str | None = None) -> str:
        key = (bank or self.name, account_id)
        if key not in self._currency_cache:
            await self._account(account_id, bank)
        return self._currency_cache[key]

    async def _accounts(self, bank: str | None, currency: str | None) -> list[AccountSummary]:
        out: list[AccountSummary] = []
        for page in await self._pages("list_accounts", w.ListAccountsRequest(bank, currency)):
            out += [AccountSummary.from_json(a, self.currencies) for a in page["accounts"]]
        return out

    async def _history(
        self, account_id: str, bank: str | None, from_seq: int, limit: int | None
    ) -> list[HistoryEntry]:
        currency = await self._currency_of(account_id, bank)
        entries: list[HistoryEntry] = []
        seq: int | None = from_seq
        while seq is not None and (limit is None or len(entries) < limit):
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(entries))
            request = w.HistoryRequest(account_id, bank, from_seq=seq, page_size=size)
            page = await self._evaluate("get_history", request)
            entries += [HistoryEntry.from_json(r, currency, self.currencies)
                        for r in page["records"]]
            seq = page.get("next_seq")
        # a page holds whole records, and one record may hold more events than asked for
        return entries if limit is None else entries[:limit]

    async def _supply(self, currency: str, bank: str | None) -> Supply:
        last = (await self._pages("get_supply", w.SupplyRequest(currency, bank)))[-1]
        return Supply(
            bank=str(last["bank"]),
            currency=currency,
            supply=Money.of(int(last["supply"]), currency, self.currencies),
            by_kind={
                str(k): Money.of(int(v), currency, self.currencies)
                for k, v in dict(last.get("by_kind", {})).items()
            },
        )

    async def record_position(
        self, collection: str, key: str, value_hash: str, claimed_tx_id: str
    ) -> ProvenPosition | None:
        """Where, in ledger order, the record stored under ``key`` in ``collection`` with
        exactly these bytes (``value_hash``: SHA-256 hex of them) was first written by a VALID
        transaction: the order that decides between an accept and a refund of one transfer
        (DESIGN §4, "Order is proven, not claimed").

        ``claimed_tx_id`` is the transaction the record's writer says wrote it. It is checked,
        never believed: the peer's ledger (``qscc GetBlockByTxID``) must hold it, VALID, with
        this key hash and value hash in its hashed write set (a pinned record's key is written
        once, so it is then the first valid writer; a made-up id answers at once). When the
        claim does not verify, the blocks are read from the start until the first valid
        writer is found (``claimed`` is then False: an anomaly the caller reports). None if
        no valid transaction wrote those bytes.
        """
        try:
            wanted = bytes.fromhex(value_hash)
        except ValueError:
            return None
        try:
            # under the namespace layout a pair collection lives in its pair namespace
            chaincode = self.profile.namespace_of(collection)
        except UsageError:
            return None  # a collection no namespace of this profile holds: not proven
        try:
            block = await self._ledger_queries.get_block_by_tx_id(claimed_tx_id, timeout=10.0)
            found = fabgateway.valid_writer_of_hash(block, chaincode, collection, key, wanted)
            if found is not None and found.transaction_id == claimed_tx_id:
                return ProvenPosition(found.block_number, found.tx_index,
                                      found.transaction_id, claimed=True)
        except (ValueError, fabgateway.NotInLedgerError):
            pass
        except fabgateway.GatewayError as error:
            raise NetworkFault(f"ledger query for a claimed position: {error}") from error
        try:
            last = (await self._ledger_queries.get_chain_info(timeout=10.0)).height - 1
            if last < 0:
                return None
            async with self._network.block_events(start_block=0) as stream:
                found = await fabgateway.first_valid_writer_of_hash_async(
                    fabgateway.decoded_blocks(stream), chaincode, collection, key, wanted,
                    last_block=last)
        except fabgateway.GatewayError as error:
            raise NetworkFault(f"reading blocks for a record's position: {error}") from error
        if found is None:
            return None
        return ProvenPosition(found.block_number, found.tx_index, found.transaction_id,
                              claimed=False)

    async def _decided_by_ledger_order(
        self, name: str, request: w.ObligationsRequest | w.AuditRequest
    ) -> tuple[dict[str, Any], tuple[Anomaly, ...]]:
        """The last page of a netting read; if it reports disputes (a transfer both accepted
        and refunded), read again with the proven ledger positions of the records in dispute.

        A record whose writer claims a transaction that did not write it is an anomaly naming
        that writer; its true position still decides."""
        last = (await self._pages(name, request))[-1]
        order, unverified = await self._proven_order(last.get("disputes") or ())
        if order:
            last = (await self._pages(
                name, dataclasses.replace(request, ledger_order=order)))[-1]
        return last, unverified

    async def _proven_order(
        self, disputes: Sequence[Mapping[str, Any]]
    ) -> tuple[dict[str, tuple[int, int]], tuple[Anomaly, ...]]:
        """The proven ledger positions of both records of each dispute (a transfer both
        accepted and refunded; an escrow both claimed and refunded on a statement), keyed by
        the hash of their stored bytes, and an ``unverified_position`` anomaly for each record
        whose writer claims a transaction that did not write it."""
        order: dict[str, tuple[int, int]] = {}
        unverified: list[Anomaly] = []
        for dispute in disputes:
            for side in (dispute["accept"], dispute["refund"]):
                collection, key = str(side["collection"]), str(side["key"])
                proven = await self.record_position(
                    collection, key, str(side["value_hash"] or ""), str(side["claimed_tx_id"]))
                if proven is None or not proven.claimed:
                    unverified.append(Anomaly(collection, key, (str(side["writer"]),),
                                              "unverified_position"))
                if proven is not None:
                    order[str(side["value_hash"])] = (proven.block_number, proven.tx_index)
        return order, tuple(unverified)

    async def _obligations(self, bank_a: str, bank_b: str) -> Obligations:
        last, unverified = await self._decided_by_ledger_order(
            "get_obligations", w.ObligationsRequest(bank_a, bank_b)
        )
        return Obligations(
            banks=(bank_a, bank_b),
            obligations=tuple(Obligation.from_json(o, self.currencies)
                              for o in last.get("obligations", [])),
            net={str(c): Money.of(int(v), str(c), self.currencies)
                 for c, v in dict(last.get("net", {})).items()},
            anomalies=_counted(last, unverified),
            disputes=tuple(last.get("disputes") or ()),
            anomaly_records=Anomaly.many(last) + unverified,
        )

    async def get_transfer(self, transfer_id: str, payer_bank: str, payee_bank: str) -> Transfer:
        """One cross-bank transfer with its decision, refund and status."""
        data = await self._evaluate(
            "get_transfer",
            w.TransferLookup(transfer_id, payer_bank, payee_bank),
        )
        state = data.get("lock_state")
        return Transfer.from_json(
            data["transfer"], data["status"], self.currencies, data.get("decision"),
            data.get("refund"), str(state) if state is not None else None,
        )

    async def _pending(
        self, direction: str, bank: str | None, counterparty: str | None,
        since: datetime | None = None, until: datetime | None = None,
    ) -> list[Transfer]:
        try:
            way = Direction(direction)
        except ValueError:
            raise UsageError("a direction is 'incoming' or 'outgoing'") from None
        if until is not None and (since is None or until < since):
            raise UsageError("until needs since, and may not be before it")
        request = w.PendingRequest(
            way, bank, counterparty, since=None if since is None else format_timestamp(since),
            until=None if until is None else format_timestamp(until),
        )
        out: list[Transfer] = []
        for page in await self._pages("get_pending", request):
            out += [Transfer.from_json(t["transfer"], t["status"], self.currencies)
                    for t in page["transfers"]]
        return out


class Bank(ConditionalPayments, Member):
    """A member bank's client: accounts, money movements, cross-bank payments, settlement.

    ::

        async with Bank.connect("state/profiles/hkbank.json", identity="minter") as bank:
            acct = (await bank.open_account("USD", "CIF-1001", reference="open-1001")).account_id
            await bank.mint(acct, bank.money("1,250.00 USD"), reference="dep-77")
            await bank.transfer(acct, "usbank", payee, 5_000, reference="inv-2024-001")
    """

    KIND = "bank"

    coalesce: bool = True
    """Whether concurrent cross-bank ``transfer()`` calls from one account are gathered into
    ``coalesced_payout`` transactions (docs/sdk.md, "Coalescing"); ``False`` sends each as its
    own ``initiate_transfer`` (the one-payment-per-transaction baseline)."""

    _lane: int | None = None

    @property
    def lane(self) -> int | None:
        """Which balance lane of a payer account with lanes this client debits (docs/sdk.md,
        "Balance lanes"): give each process of an application its own (``bank.lane = 2``, or
        the ``DTOKEN_LANE`` environment variable); ``None`` derives it from the process id
        (the process id modulo the account's lane count). Ignored for an account without
        lanes."""
        return self._lane

    @lane.setter
    def lane(self, value: int | None) -> None:
        if value is not None and (type(value) is not int or not 0 <= value < w.MAX_LANES):
            raise UsageError(f"a lane is a number from 0 to {w.MAX_LANES - 1}")
        self._lane = value

    lane_cache_seconds: float = 60.0
    """How long an account's lane count is remembered (a ``set_lanes`` is seen after it)."""

    _coalescer_instance: Coalescer | None = None
    _lane_counts: dict[str, tuple[float, int]] | None = None
    _lane_reads: dict[str, asyncio.Future[tuple[float, int]]] | None = None

    @property
    def coalescer(self) -> Coalescer:
        """This bank client's :class:`~dtoken.coalescer.Coalescer` (made on first use)."""
        if self._coalescer_instance is None:
            self._coalescer_instance = Coalescer(
                self.submitter, self.msp_id, lookup=self._reference_parts,
                single=self._initiate_item, same_request=self._same_payment,
                lane_of=self._payer_lane, rebalance=self._rebalance)
        return self._coalescer_instance

    async def _payer_lane(self, account_id: str) -> tuple[int, int]:
        """``(lane this client debits, the account's lane count)`` for ``account_id``."""
        if self._lane_counts is None:
            self._lane_counts = {}
        if self._lane_reads is None:
            self._lane_reads = {}
        cached = self._lane_counts.get(account_id)
        if cached is None or time.monotonic() - cached[0] > self.lane_cache_seconds:
            # one read per account however many calls arrive at once (a burst of thousands
            # of transfer() calls must not become thousands of get_account queries)
            reading = self._lane_reads.get(account_id)
            if reading is None:
                reading = asyncio.ensure_future(self._read_lane_count(account_id))
                self._lane_reads[account_id] = reading
                reading.add_done_callback(
                    lambda _t: self._lane_reads.pop(account_id, None)  # type: ignore[union-attr]
                )
            cached = await asyncio.shield(reading)
        count = cached[1]
        if count <= 1:
            return 0, 1
        chosen = self.lane
        if chosen is None and os.environ.get("DTOKEN_LANE", "").strip():
            try:
                chosen = int(os.environ["DTOKEN_LANE"])
            except ValueError as error:
                raise UsageError("DTOKEN_LANE must be a lane number") from error
        if chosen is None:
            return os.getpid() % count, count
        if not 0 <= chosen < count:
            raise UsageError(f"lane {chosen} is not a lane of the account (it has {count})")
        return chosen, count

    async def _read_lane_count(self, account_id: str) -> tuple[float, int]:
        data = await self._evaluate("get_account", w.AccountRef(account_id))
        cached = (time.monotonic(), int(data.get("lanes", 1)))
        assert self._lane_counts is not None
        self._lane_counts[account_id] = cached
        return cached

    async def _rebalance(self, account_id: str, lane: int, amount: int) -> None:
        await self.rebalance_lanes(account_id, lane, amount)

    async def _reference_parts(self, reference: str) -> tuple[str, str, tuple[str, ...]] | None:
        found = await self.lookup_reference(reference)
        return None if found is None else (found.kind, found.tx_id, found.ids)

    async def _same_payment(self, item: w.CoalescedItem) -> bool:
        """Whether the transfer ``item``'s reference made is ``item`` (the transfer id is
        derived from the reference alone, so a reference reused for another payment finds
        the first one's transfer: it must be told ``DuplicateReference``, not a replay)."""
        found = await self.get_transfer(item.transfer_id, self.name, item.payee_bank)
        return (found.payee_account, found.amount.minor, found.remittance) == (
            item.payee_account, item.amount, item.remittance)

    async def _initiate_item(self, payer: str, item: w.CoalescedItem) -> Receipt:
        lane, count = await self._payer_lane(payer)
        request = w.InitiateRequest(
            item.reference, payer, item.payee_bank, item.payee_account, item.amount,
            item.remittance, item.transfer_id, item.ttl_seconds, dict(item.originator), lane)
        try:
            return await self._write("initiate_transfer", request, item.reference)
        except (InsufficientFunds, LimitExceeded):
            if count <= 1:
                raise
        # short on this lane: a rebalance first (its refusal says the account cannot pay)
        await self._rebalance(payer, lane, item.amount)
        return await self._write("initiate_transfer", request, item.reference)

    # --- accounts ---------------------------------------------------------------------------

    async def open_account(
        self,
        currency: str,
        owner_ref: str,
        *,
        reference: str,
        single_payment_limit: int | Money | None = None,
        daily_outflow_limit: int | Money | None = None,
    ) -> OpenedAccount:
        """Open an account (``operator``). The account id is derived from ``reference``."""
        if currency not in self.currencies:
            raise UsageError(f"{currency} is not a currency of the network")
        account_id = self._derived_id("account", reference)
        limits = w.Limits(_limit(single_payment_limit, currency),
                          _limit(daily_outflow_limit, currency))
        request = w.OpenAccountRequest(reference, currency, owner_ref, account_id, limits)
        receipt = await self._write("open_account", request, reference)
        self._currency_cache[(self.name, account_id)] = currency
        return OpenedAccount(account_id, receipt)

    async def account(self, account_id: str) -> Account:
        """An account: balance, available balance, status, limits, hold."""
        return await self._account(account_id, None)

    async def accounts(self, currency: str | None = None) -> list[AccountSummary]:
        """The bank's accounts (optionally of one currency)."""
        return await self._accounts(None, currency)

    async def balance(self, account_id: str) -> Money:
        """An account's balance."""
        return (await self.account(account_id)).balance

    async def suspensions(self) -> list[dict[str, str]]:
        """The banks the regulator has suspended, as this bank was told (``bank``, ``since``,
        ``reason``): no new payment to or from them is accepted."""
        data = await self._evaluate("get_suspensions", None)
        return [{"bank": str(x["bank"]), "since": str(x["since"]), "reason": str(x["reason"])}
                for x in data["suspended"]]

    async def history(
        self, account_id: str, *, from_seq: int = 0, limit: int | None = None
    ) -> list[HistoryEntry]:
        """An account's events from history record ``from_seq`` on, in order (every page, or
        the first ``limit`` events); a transaction's events on the account share a record
        (``HistoryEntry.seq``), each with its place in it (``HistoryEntry.item``)."""
        return await self._history(account_id, None, from_seq, limit)

    async def freeze(self, account_id: str, *, reference: str | None = None) -> Receipt:
        """Freeze an account (no debit, no credit but refunds)."""
        return await self._status(account_id, AccountStatus.FROZEN, reference)

    async def unfreeze(self, account_id: str, *, reference: str | None = None) -> Receipt:
        return await self._status(account_id, AccountStatus.ACTIVE, reference)

    async def close_account(self, account_id: str, *, reference: str | None = None) -> Receipt:
        """Close an account (its balance must be zero); final."""
        return await self._status(account_id, AccountStatus.CLOSED, reference)

    async def _status(
        self, account_id: str, status: AccountStatus, reference: str | None
    ) -> Receipt:
        return await self._write(
            "set_account_status", w.SetStatusRequest(account_id, status), reference
        )

    async def set_limits(
        self,
        account_id: str,
        *,
        single_payment: int | Money | None = None,
        daily_outflow: int | Money | None = None,
        reference: str | None = None,
    ) -> Receipt:
        """Replace an account's limits (``None``: no limit)."""
        currency = await self._currency_of(account_id)
        request = w.SetLimitsRequest(account_id, _limit(single_payment, currency),
                                     _limit(daily_outflow, currency))
        return await self._write("set_account_limits", request, reference)

    async def set_lanes(
        self, account_id: str, lanes: int, *, reference: str | None = None
    ) -> Receipt:
        """Give an account ``lanes`` balance lanes (2 to 16; only ever more), so several
        processes can pay from it at once, each debiting its own lane (docs/sdk.md, "Balance
        lanes"). The balance stays where it is; the daily limit is split over the lanes."""
        if not 1 <= lanes <= w.MAX_LANES:
            raise UsageError(f"lanes must be 1 to {w.MAX_LANES}")
        receipt = await self._write("set_lanes", w.SetLanesRequest(account_id, lanes),
                                    reference)
        if self._lane_counts is not None:
            self._lane_counts.pop(account_id, None)
        return receipt

    async def rebalance_lanes(
        self, account_id: str, lane: int, amount: int | Money, *, reference: str | None = None
    ) -> Receipt:
        """Bring lane ``lane`` of an account up to ``amount`` of balance (and of unspent
        daily limit), taken from its other lanes; the SDK does it by itself before a payment
        larger than its lane."""
        minor = await self._minor(amount, account_id)
        return await self._write("rebalance_lanes",
                                 w.RebalanceRequest(account_id, lane, minor), reference)

    # --- money ------------------------------------------------------------------------------

    async def mint(self, account_id: str, amount: int | Money, *, reference: str) -> Receipt:
        """Credit new tokens: a deposit arrived (needs the ``minter`` role)."""
        minor = await self._minor(amount, account_id)
        return await self._write("mint", w.MoveRequest(reference, account_id, minor), reference)

    async def burn(self, account_id: str, amount: int | Money, *, reference: str) -> Receipt:
        """Debit and retire tokens: a redemption (needs the ``minter`` role)."""
        minor = await self._minor(amount, account_id)
        return await self._write("burn", w.MoveRequest(reference, account_id, minor), reference)

    async def transfer(
        self,
        from_account: str,
        to_bank: str,
        to_account: str,
        amount: int | Money,
        *,
        reference: str,
        remittance: str = "",
        originator: Mapping[str, str] | None = None,
        ttl_seconds: int | None = None,
    ) -> Payment:
        """Pay ``to_account`` at ``to_bank``: one transaction within this bank, or the first
        phase of a cross-bank transfer (the payee bank then accepts or rejects it; until then
        the money is in flight). ``remittance``, ``originator`` (travel-rule data for the
        payee bank) and ``ttl_seconds`` (60 s to 30 days, default a day) concern cross-bank
        payments only.
        """
        minor = await self._minor(amount, from_account)
        if to_bank == self.name:
            request = w.TransferRequest(reference, from_account, to_account, minor)
            receipt = await self._write("transfer", request, reference)
            return Payment("internal", to_bank, None, receipt)
        self.profile.bank(to_bank)
        transfer_id = self._derived_id("transfer", reference, "0")
        item = w.CoalescedItem(reference, to_bank, to_account, minor, transfer_id, remittance,
                               _ttl(ttl_seconds), dict(originator or {}))
        if self.coalesce:
            receipt = await self.coalescer.pay(from_account, item)
        else:
            receipt = await self._initiate_item(from_account, item)
        return Payment("cross_bank", to_bank, transfer_id, receipt)

    async def batch_payout(
        self,
        from_account: str,
        payees: Sequence[Payee],
        *,
        reference: str,
        originator: Mapping[str, str] | None = None,
        ttl_seconds: int | None = None,
    ) -> Payout:
        """One debit of ``from_account``, then a payment to each payee (at most 500): payees
        at this bank are credited at once, others get a cross-bank transfer each."""
        if not payees:
            raise UsageError("a batch payout needs at least one payee")
        payments: list[w.BatchPayment] = []
        ids: list[str | None] = []
        for i, payee in enumerate(payees):
            minor = await self._minor(payee.amount, from_account)
            if payee.bank == self.name:
                ids.append(None)
            else:
                self.profile.bank(payee.bank)
                ids.append(self._derived_id("transfer", reference, str(i)))
            payments.append(w.BatchPayment(payee.bank, payee.account_id, minor,
                                           payee.remittance, ids[-1]))
        lane, _count = await self._payer_lane(from_account)
        request = w.BatchRequest(reference, from_account, tuple(payments), _ttl(ttl_seconds),
                                 dict(originator or {}), lane)
        receipt = await self._write("batch_payout", request, reference)
        return Payout(tuple(ids), receipt, tuple(payees))

    # --- cross-bank transfers ---------------------------------------------------------------

    async def incoming(
        self, counterparty: str | None = None, *, since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Transfer]:
        """Transfers waiting for this bank's decision (pending, or expired undecided).

        ``since`` (timezone-aware) reads only the transfers created at or after it, instead of
        every transfer ever sent to this bank (:class:`dtoken.listener.PendingWindow` keeps
        such a mark); ``until`` (with ``since``), only those created at or before it (a
        ``TransferPending`` event's ``at``: that transaction's transfers).
        """
        return await self._pending("incoming", None, counterparty, since, until)

    async def outgoing(
        self, counterparty: str | None = None, *, since: datetime | None = None
    ) -> list[Transfer]:
        """This bank's transfers not final yet: pending, expired or rejected (to refund).
        ``since`` as for :meth:`incoming`."""
        return await self._pending("outgoing", None, counterparty, since)

    async def accept(self, transfer_id: str, payer_bank: str, *, force: bool = False) -> Receipt:
        """Accept an incoming transfer: credit the payee (endorsed by this bank alone).

        Unless ``force``, a pending transfer is first checked against this bank's exposure cap
        on ``payer_bank`` (:meth:`set_exposure_cap`): :class:`ExposureCapExceeded` if its
        amount exceeds the headroom left (nothing is sent; the transfer stays pending).
        """
        if not force:
            await self._check_exposure(transfer_id, payer_bank)
        request = w.AcceptRequest(transfer_id, payer_bank)
        return await self._write("accept_transfer", request, f"{payer_bank}/{transfer_id}")

    async def _check_exposure(self, transfer_id: str, payer_bank: str) -> None:
        transfer = await self.get_transfer(transfer_id, payer_bank, self.name)
        if transfer.status is not TransferStatus.PENDING:
            return  # decided already (a retry), or expired: the contract answers
        room = (await self.obligations(payer_bank)).headroom(payer_bank,
                                                             transfer.amount.currency)
        if room is not None and transfer.amount.minor > room.minor:
            raise ExposureCapExceeded(transfer_id, payer_bank, transfer.amount, room)

    async def reject(self, transfer_id: str, payer_bank: str, reason: str = "") -> Receipt:
        """Reject an incoming transfer (the payer bank refunds it); ``reason`` stays private."""
        request = w.RejectRequest(transfer_id, payer_bank, reason[:256])
        return await self._write("reject_transfer", request, f"{payer_bank}/{transfer_id}")

    async def decide(
        self, payer_bank: str, decisions: Sequence[tuple[str, bool, str]]
    ) -> tuple[Receipt, dict[str, str] | None]:
        """Accept or reject many incoming transfers of ``payer_bank`` in one transaction
        (``decisions``: ``(transfer id, accept, reject reason)``, at most 500): credits are
        summed per payee account, each decision is its own record. Returns the receipt and
        each transfer's code (``OK``, or why it was skipped: ``INVALID_STATE``, ``EXPIRED``,
        ``FROZEN`` ...); the codes are ``None`` when this exact batch had been applied before
        (a replay: read the transfers to learn each one's state)."""
        if not decisions:
            raise UsageError("a batch decision needs at least one transfer")
        items = tuple(w.DecisionItem(tid, accept, "" if accept else reason[:256])
                      for tid, accept, reason in decisions)
        request = w.DecideRequest(payer_bank, items)
        digest = hashlib.sha256(
            "\0".join(f"{i.transfer_id}:{int(i.accept)}" for i in items).encode()).hexdigest()
        receipt = await self._write("decide_transfers", request,
                                    f"{payer_bank}/decide/{digest[:48]}")
        if not receipt.result:
            return receipt, None
        codes = receipt.item_codes(len(items), "transfer")
        return receipt, {i.transfer_id: c for i, c in zip(items, codes, strict=True)}

    async def refund(self, transfer_id: str, payee_bank: str) -> Receipt:
        """Refund an outgoing transfer that was rejected, or expired undecided."""
        request = w.RefundRequest(transfer_id, payee_bank)
        return await self._write("refund_transfer", request, f"{payee_bank}/{transfer_id}")

    # --- payment versus payment (hash-locked legs) -------------------------------------------

    async def lock(
        self,
        from_account: str,
        to_bank: str,
        to_account: str,
        amount: int | Money,
        *,
        lock: str,
        ttl_seconds: int,
        reference: str,
        remittance: str = "",
        originator: Mapping[str, str] | None = None,
    ) -> Payment:
        """Pay ``to_account`` at ``to_bank`` under a hash lock: the payee bank can accept
        only with the preimage of ``lock`` (:func:`dtoken.pvp.lock_of`) within
        ``ttl_seconds`` (the deadline); after it, :meth:`expire_lock` then :meth:`refund`.
        One leg of a PvP (:func:`dtoken.pvp.pvp`)."""
        minor = await self._minor(amount, from_account)
        self.profile.bank(to_bank)
        transfer_id = self._derived_id("transfer", reference, "0")
        request = w.LockRequest(reference, from_account, to_bank, to_account, minor, lock,
                                _ttl(ttl_seconds), remittance, transfer_id,
                                dict(originator or {}))
        receipt = await self._write("lock_transfer", request, reference)
        return Payment("cross_bank", to_bank, transfer_id, receipt)

    async def claim(self, transfer_id: str, payer_bank: str, preimage: str) -> Receipt:
        """Accept a hash-locked incoming transfer with the preimage of its lock (which the
        decision then reveals to the payer bank, and so to the other leg's claimer)."""
        request = w.ClaimRequest(transfer_id, payer_bank, preimage)
        return await self._write("claim_transfer", request, f"{payer_bank}/{transfer_id}")

    async def expire_lock(self, transfer_id: str, payee_bank: str) -> Receipt:
        """After its deadline, expire an outgoing hash-locked transfer's lock: endorsed by
        this bank's and the regulator's peers (the lock is pinned to the payer AND the payee
        OR the regulator; the regulator's server judges the deadline on its own clock and
        refuses once the payee claimed). The payee's peer is never asked: a dishonest payee
        would only stall the expiry (docs/token-model.md, "Payment versus payment"). Then
        :meth:`refund` pays the customer back.

        Under the namespace layout the proposal goes to the pair namespace that holds
        ``pair-<this bank>-<payee_bank>`` (both peers run the storage chaincode there, which
        serves this one transaction at the top level), not to this bank's own namespace."""
        self.profile.bank(payee_bank)
        regulator = self.profile.regulator()
        if regulator is None:
            raise UsageError(f"network {self.profile.network} has no regulator: no hash "
                             "lock can be expired (nor created) on it")
        request = w.ExpireLockRequest(transfer_id, self.name, payee_bank)
        namespace = None
        if self.profile.has_namespaces:
            namespace = self.profile.namespace_of(pair_collection(self.name, payee_bank))
        return await self.submitter.submit(
            "expire_lock", request.to_json(), reference=f"{payee_bank}/{transfer_id}/expire",
            endorsing_organizations=[self.msp_id, regulator.msp_id], chaincode=namespace)

    # --- conversion at the payee's bank (FX quotes) -----------------------------------------

    async def offer_quote(
        self,
        payer_bank: str,
        amount: Money,
        to_currency: str,
        rate: Fraction | Decimal | str | int,
        *,
        reference: str,
        ttl_seconds: int = 600,
        accept_seconds: int = 3600,
        rounding: Rounding | str = Rounding.BANK,
    ) -> Quote:
        """As the payee's bank: quote ``payer_bank`` a firm rate for one payment of exactly
        ``amount`` (in the payer bank's currency) to a customer of this bank, credited in
        ``to_currency``. ``rate`` is major units of ``to_currency`` per major unit of
        ``amount``'s currency, exact (a ``Fraction``, ``Decimal``, ``"7.1234"`` or an int;
        never a float). The payer bank may pay with it for ``ttl_seconds``; this bank honours
        it at accept until ``accept_seconds`` after that. ``rounding``: ``bank`` rounds the
        credit down to the minor unit, ``payee`` up. The quote id is derived from
        ``reference`` (a retry gives the same quote); give it to the payer bank."""
        ratio = _exact_rate(rate)
        if to_currency not in self.currencies:
            raise UsageError(f"{to_currency!r} is not a currency of the network")
        self.profile.bank(payer_bank)
        quote_id = self._derived_id("quote", reference)
        request = w.OfferQuoteRequest(
            quote_id, payer_bank, amount.currency, to_currency, _positive(amount.minor),
            ratio.numerator, ratio.denominator, ttl_seconds, accept_seconds,
            Rounding(rounding))
        await self._write("offer_quote", request, reference)
        return await self.quote(quote_id, payee_bank=self.name, payer_bank=payer_bank)

    async def quote(self, quote_id: str, *, payee_bank: str, payer_bank: str | None = None
                    ) -> Quote:
        """A quote as ``payee_bank`` wrote it to ``payer_bank`` (default: this bank), read
        from this bank's own peer (the payer bank is a member of the quote's collection)."""
        request = w.QuoteLookup(quote_id, payee_bank, payer_bank or self.name)
        answer = await self._evaluate("get_quote", request)
        return Quote.from_json(answer["quote"], self.currencies)

    async def pay_with_quote(
        self,
        from_account: str,
        to_account: str,
        quote: Quote,
        *,
        reference: str,
        remittance: str = "",
        originator: Mapping[str, str] | None = None,
        ttl_seconds: int | None = None,
    ) -> Payment:
        """Pay ``to_account`` at the quote's payee bank with ``quote`` (from :meth:`quote`):
        ``from_account`` is debited the quote's ``amount`` in its currency; the payee bank,
        when it accepts, credits ``quote.payee_amount`` in its currency; the interbank
        obligation stays in this bank's currency. Both banks' contracts refuse an expired,
        unknown, used or altered quote."""
        if quote.payer_bank != self.name:
            raise UsageError("the quote was given to another payer bank")
        transfer_id = self._derived_id("transfer", reference, "0")
        request = w.PayWithQuoteRequest(
            reference, from_account, quote.payee_bank, to_account, quote.amount.minor,
            quote.quote_id, remittance, transfer_id, _ttl(ttl_seconds), dict(originator or {}))
        receipt = await self._write("pay_with_quote", request, reference)
        return Payment("cross_bank", quote.payee_bank, transfer_id, receipt)

    # --- supply and settlement --------------------------------------------------------------

    async def supply(self, currency: str) -> Supply:
        """This bank's supply of its ``currency`` token."""
        return await self._supply(currency, None)

    async def obligations(self, other_bank: str) -> Obligations:
        """What this bank and ``other_bank`` owe each other (accepted less settled)."""
        self.profile.bank(other_bank)
        return await self._obligations(self.name, other_bank)

    async def set_exposure_cap(self, debtor_bank: str, cap: Money) -> Receipt:
        """Cap what ``debtor_bank`` may owe this bank unsettled in ``cap``'s currency (zero:
        accept nothing unsettled from it). A new record each time; the latest is in force.
        This bank enforces it when it accepts (:meth:`accept`, the listener)."""
        self.profile.bank(debtor_bank)
        if not isinstance(cap, Money):
            raise UsageError("a cap is Money (it names its currency)")
        if cap.minor < 0:
            raise UsageError("a cap may not be negative")
        return await self._write("set_exposure_cap",
                                 w.SetExposureCapRequest(debtor_bank, cap.currency, cap.minor),
                                 None)

    async def exposure_cap(self, debtor_bank: str, currency: str) -> Money | None:
        """The exposure cap this bank set on ``debtor_bank`` in ``currency`` (``None``: no
        cap): a short read, without the obligations' scan of every transfer."""
        self.profile.bank(debtor_bank)
        data = await self._evaluate("get_exposure_cap", w.CapRequest(debtor_bank, currency))
        cap = data.get("cap")
        if cap is None:
            return None
        if type(cap) is not int:
            raise NetworkFault("the contract's answer has no valid 'cap'")
        return Money.of(cap, currency, self.currencies)

    async def headroom(self, payee_bank: str, currency: str) -> Money | None:
        """What this bank may still owe ``payee_bank`` in ``currency`` under the exposure cap
        ``payee_bank`` set on it (``None``: no cap). A payment beyond it is not refused here:
        the payee bank leaves it pending until this bank settles."""
        return (await self.obligations(payee_bank)).headroom(self.name, currency)

    async def record_settlement(
        self, debtor_bank: str, amount: Money, *, rtgs_reference: str
    ) -> Receipt:
        """As creditor, confirm that ``debtor_bank``'s reserves arrived (RTGS reference)."""
        self.profile.bank(debtor_bank)
        if not isinstance(amount, Money):
            raise UsageError("a settlement amount is Money (it names its currency)")
        request = w.SettlementRequest(rtgs_reference, debtor_bank, amount.currency,
                                      _positive(amount.minor))
        return await self._write("confirm_settlement", request, rtgs_reference)


class Regulator(Member):
    """The regulator's client: holds (freezes) on any bank's accounts, a bank's suspension,
    reads, the audit."""

    KIND = "regulator"
    DEFAULT_IDENTITY = "auditor"

    async def freeze(
        self,
        bank: str,
        account_id: str,
        *,
        held_amount: int | Money = 0,
        frozen: bool = True,
        reason: str = "",
        reference: str | None = None,
    ) -> Receipt:
        """Put a hold on an account: freeze it and/or hold an amount that may not leave."""
        self.profile.bank(bank)
        held = held_amount.minor if isinstance(held_amount, Money) else held_amount
        if type(held) is not int or held < 0:
            raise UsageError("a held amount is a non-negative int of minor units or Money")
        request = w.HoldRequest(bank, account_id, frozen, held, reason)
        return await self._write("set_hold", request, reference)

    async def release(self, bank: str, account_id: str, *, reference: str | None = None) -> Receipt:
        """Remove the hold on an account."""
        self.profile.bank(bank)
        return await self._write(
            "release_hold", w.ReleaseHoldRequest(bank, account_id), reference
        )

    async def suspend(
        self, bank: str, *, reason: str = "", reference: str | None = None
    ) -> Receipt:
        """Suspend a bank: every bank's contract refuses new payments to or from it (refunds
        and settlements of what is in flight go on) until :meth:`resume`."""
        self.profile.bank(bank)
        return await self._write("suspend_bank", w.SuspendRequest(bank, reason), reference)

    async def resume(self, bank: str, *, reference: str | None = None) -> Receipt:
        """Lift the suspension of a bank (``INVALID_STATE`` if it is not suspended)."""
        self.profile.bank(bank)
        return await self._write("resume_bank", w.ResumeRequest(bank), reference)

    async def audit(self) -> AuditReport:
        """Conservation over every bank and pair of banks (every page). A transfer both
        accepted and refunded (possible only if a bank skipped the contract's reads) counts
        by ledger order: the SDK reads the order and asks again."""
        last, unverified = await self._decided_by_ledger_order("audit", w.AuditRequest())
        report = AuditReport.from_json(last)
        if not unverified:
            return report
        return dataclasses.replace(
            report,
            ok=False,
            failures=(*report.failures, "claimed ledger positions that do not verify"),
            anomalies=_counted(last, unverified),
            anomaly_records=report.anomaly_records + unverified,
        )

    async def account(self, bank: str, account_id: str) -> Account:
        return await self._account(account_id, bank)

    async def accounts(self, bank: str, currency: str | None = None) -> list[AccountSummary]:
        return await self._accounts(bank, currency)

    async def history(
        self, bank: str, account_id: str, *, from_seq: int = 0, limit: int | None = None
    ) -> list[HistoryEntry]:
        return await self._history(account_id, bank, from_seq, limit)

    async def supply(self, bank: str, currency: str) -> Supply:
        return await self._supply(currency, bank)

    async def obligations(self, bank_a: str, bank_b: str) -> Obligations:
        return await self._obligations(bank_a, bank_b)

    async def pending(self, bank: str, direction: str = "incoming") -> list[Transfer]:
        """A bank's transfers waiting (``incoming``) or not final (``outgoing``)."""
        return await self._pending(direction, bank, None)


def connect(
    profile: Profile | str | Path,
    *,
    identity: str | None = None,
    policy: RetryPolicy | None = None,
) -> Bank | Regulator:
    """A :class:`Bank` or a :class:`Regulator`, as the profile's organization is."""
    loaded = profile if isinstance(profile, Profile) else Profile.load(profile)
    cls: type[Bank] | type[Regulator] = Regulator if loaded.is_regulator else Bank
    return cls.connect(loaded, identity=identity, policy=policy)


def _exact_rate(rate: Fraction | Decimal | str | int) -> Fraction:
    """A quoted rate as an exact positive ratio of integers (a float is refused: it cannot
    state a rate exactly)."""
    if isinstance(rate, float | bool):
        raise UsageError("a rate is exact: give a Fraction, a Decimal, a string or an int")
    try:
        ratio = Fraction(rate)
    except (ValueError, ZeroDivisionError, ArithmeticError):
        raise UsageError("a rate must be a positive number such as '7.1234'") from None
    if ratio <= 0:
        raise UsageError("a rate must be positive")
    if max(ratio.numerator, ratio.denominator) > w.MAX_QUOTE_RATE_TERM:
        raise UsageError("a rate's terms must be at most 10**12 (fewer decimals)")
    return ratio


def _ttl(ttl_seconds: int | None) -> int:
    return w.DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds


def _positive(minor: int) -> int:
    if type(minor) is not int or minor <= 0:
        raise UsageError("an amount is a positive int of minor units (or Money)")
    return minor


def _limit(value: int | Money | None, currency: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, Money):
        if value.currency != currency:
            raise UsageError(f"the limit is in {value.currency}, the account in {currency}")
        value = value.minor
    if type(value) is not int or value < 0:
        raise UsageError("a limit is a non-negative int of minor units (or Money)")
    return value
