"""Test harness: a three-bank network (plus a regulator) over ``fabshim.testing.MemoryLedger``.

Every submitted transaction run through :meth:`Net.submit` is checked on the way:

* it is simulated twice, as two peers of the same organization would (same transaction id,
  timestamp and transient data, separate stubs): both write sets and events must be
  byte-identical (deterministic write sets, issue item 13);
* every private write lands in a collection whose endorsement policy the serving
  organization satisfies on its own (``acct-X`` and ``pair-X-*`` by X, ``holds-*`` by the
  regulator; public keys only by ``init_network``, endorsed by every bank, and
  ``admit_bank``): the policy table
  of ``docs/token-model.md``;
* a refused transaction wrote nothing, and its message starts with a stable code;
* what reaches the block (return value, event, error message) carries no private value of
  the request;
* no key read or written (their SHA-256 is in the block) carries an account id of the
  request: accounts, histories and holds are keyed by a tag under the bank's account key.

With ``layout=True`` (the default is :data:`DEFAULT_LAYOUT`, which the package's conftest
sets for each run of the suite) the servers run under the namespace layout: each
transaction's top level is its organization's namespace (``dtoken-<org>``), and every
collection of another namespace is reached through the storage chaincode
(:mod:`deposit_token.storage`) by chaincode-to-chaincode calls, registered under every
namespace of the layout. The collections all stay in one ``MemoryLedger`` (their names are
unique across namespaces), so tests inspect them as before; each collection's endorsement
policy is modelled there, so a write no endorser may make is refused at commit.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from deposit_token.config import ServerSettings
from deposit_token.errors import CODES, DepositTokenError
from deposit_token.keys import BANK_NAME_RE, AccountKeys, Deriver
from deposit_token.operations import ROLES, Caller
from deposit_token.service import TRANSACTIONS, Service
from deposit_token.storage import PairStorageChaincode
from dtoken_wire.namespaces import bank_namespace, pair_namespaces_of
from fabshim import Response, Stub
from fabshim.statebased import n_out_of_policy
from fabshim.testing import MemoryLedger, MemoryStub

BANKS: dict[str, tuple[str, list[str]]] = {
    "hkbank": ("HarbourBankMSP", ["HKD", "USD"]),
    "usbank": ("LibertyBankMSP", ["USD"]),
    "cnbank": ("DragonBankMSP", ["CNH", "USD"]),
}
REGULATOR = "RegulatorMSP"
CURRENCIES = {"USD": 2, "HKD": 2, "CNH": 2}
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
#: The transactions that take a JSON argument (not a transient request) and write public state.
PUBLIC_WRITERS = ("init_network", "admit_bank")


def init_payload(regulator: bool = True) -> str:
    return json.dumps({
        "banks": [{"name": n, "msp_id": m, "currencies": c} for n, (m, c) in BANKS.items()],
        "regulator_msp_id": REGULATOR if regulator else None,
        "currencies": CURRENCIES,
    })


def registry_pin(argument: str) -> str:
    """What each operator pins (``DTOKEN_REGISTRY_SHA256``): the SHA-256 of the argument."""
    return hashlib.sha256(argument.encode("utf-8")).hexdigest()


def msp_of(org: str) -> str:
    """MSP id of a bank name, or of ``"regulator"``."""
    return REGULATOR if org == "regulator" else BANKS[org][0]


def policy_org(collection: str) -> str:
    """The one organization whose peer satisfies the collection's endorsement policy."""
    kind, _, rest = collection.partition("-")
    if kind == "acct":
        return msp_of(rest)
    if kind == "pair":
        a, _, b = rest.partition("-")
        assert BANK_NAME_RE.fullmatch(a)
        assert BANK_NAME_RE.fullmatch(b)
        return msp_of(a)
    if kind == "holds":
        return REGULATOR
    raise AssertionError(f"unknown collection {collection}")


#: ``Net(layout=None)`` runs under the namespace layout when this is true.
DEFAULT_LAYOUT = False


def namespace_of(org: str) -> str:
    """The namespace an organization's transactions start in, under the layout."""
    return bank_namespace("dtoken", org)


def all_writes(stub: MemoryStub) -> dict[tuple[str, str], bytes | None]:
    """A transaction's writes, with those of the chaincodes it called."""
    out = dict(stub.writes)
    for child in stub._all_children():
        out.update(child.writes)
    return out


def all_reads(stub: MemoryStub) -> set[tuple[str, str]]:
    return set(stub._reads).union(*(set(c._reads) for c in stub._all_children()))


class _ServedStorage:
    """The storage chaincode as the serving organization runs it (through the net's
    ``stub_wrapper``, so a dishonest server's storage is as dishonest as its contract)."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.inner = PairStorageChaincode()

    async def init(self, stub: Stub) -> Response:
        return await self.inner.init(stub)

    async def invoke(self, stub: Stub) -> Response:
        org = self.net.serving
        wrapped = self.net.stub_wrapper(org, stub) if self.net.stub_wrapper and org else stub
        return await self.inner.invoke(wrapped)


def secret_of(msp: str) -> bytes:
    return (msp.encode() * 8)[:32]


def account_keys(org: str) -> AccountKeys:
    """A bank's account keys, as its server derives them (and shares with the regulator)."""
    return Deriver(secret_of(msp_of(org))).account_keys()


def private_strings(request: Mapping[str, Any] | None) -> tuple[set[str], set[int]]:
    """String and integer values of a request (recursively), the things no block may show."""
    strings: set[str] = set()
    ints: set[int] = set()

    def walk(v: object, key: str = "") -> None:
        if isinstance(v, Mapping):
            for k, x in v.items():
                walk(x, k)
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, bool):
            pass
        elif isinstance(v, int):
            if key not in ("ttl_seconds", "page_size", "from_seq"):
                ints.add(v)
        elif isinstance(v, str) and key not in (
            "payee_bank", "payer_bank", "bank", "debtor_bank", "currency", "status",
            "direction", "counterparty", "bank_a", "bank_b",
        ):
            strings.add(v)

    walk(request or {})
    return strings, ints


def account_ids(request: Mapping[str, Any] | None) -> set[str]:
    """The account ids a request names (any field whose name says ``account``)."""
    found: set[str] = set()

    def walk(v: object, key: str = "") -> None:
        if isinstance(v, Mapping):
            for k, x in v.items():
                walk(x, k)
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, str) and "account" in key:
            found.add(v)

    walk(request or {})
    return found


def assert_keys_unlinkable(stub: MemoryStub, request: Mapping[str, Any] | None) -> None:
    """No key the transaction read or wrote names an account id of the request."""
    touched = {key for _c, key in all_writes(stub)} | {key for _c, key in all_reads(stub)}
    for account in account_ids(request):
        for key in touched:
            assert account not in key, "a key in the block would name an account id"


def assert_no_private(text: str, request: Mapping[str, Any] | None) -> None:
    strings, ints = private_strings(request)
    # Values too short to be told from ordinary words and numbers are not checked here; the
    # privacy tests use distinctive values throughout.
    for s in strings:
        if len(s) >= 4:
            assert s not in text, f"a private value appears in {text!r}"
    for n in ints:
        if n < 1000:
            continue
        assert not re.search(rf"(?<![0-9a-f]){n}(?![0-9a-f])", text), (
            f"an amount appears in {text!r}"
        )


@dataclass
class Submitted:
    """A simulated, not yet committed, transaction (for races)."""

    stub: MemoryStub
    result: dict[str, object]
    net: Net

    @property
    def writes(self) -> dict[tuple[str, str], bytes | None]:
        """Every write of the transaction, in whatever namespace (:func:`all_writes`)."""
        return all_writes(self.stub)

    @property
    def reads(self) -> set[tuple[str, str]]:
        """Every key the transaction read, in whatever namespace."""
        return all_reads(self.stub)

    def commit(self) -> int:
        self.stub.commit()
        # what the SDK finds in the blocks: the first valid writer of each stored value
        for value in all_writes(self.stub).values():
            if value:
                digest = hashlib.sha256(value).hexdigest()
                self.net.order.setdefault(digest, (self.net.ledger.height, 0))
        return self.net.ledger.height


@dataclass
class Net:
    regulator: bool = True
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    now: datetime = T0
    order: dict[str, tuple[int, int]] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    blocks: list[str] = field(default_factory=list)  # block-visible texts, for privacy checks
    stub_wrapper: Any = None  # a callable (org, stub) -> stub, to model a dishonest server
    #: The ``init_network`` argument every operator agreed to (pinned in every server's
    #: settings); by default :func:`init_payload`.
    agreed: str | None = None
    #: The namespace layout (``None``: :data:`DEFAULT_LAYOUT`).
    layout: bool | None = None
    serving: str | None = None  # the organization whose server runs the current transaction

    def __post_init__(self) -> None:
        if self.agreed is None:
            self.agreed = init_payload(self.regulator)
        if self.layout is None:
            self.layout = DEFAULT_LAYOUT
        orgs = [*BANKS, *(["regulator"] if self.regulator else [])]
        for org in orgs:
            msp = msp_of(org)
            self.services[org] = Service(ServerSettings(msp, secret_of(msp),
                                                        registry_pin(self.agreed),
                                                        layout=self.layout))
        if self.layout:
            storage = _ServedStorage(self)
            names = [namespace_of(o) for o in orgs]
            for bank in BANKS:
                names += [ns.name for ns in pair_namespaces_of("dtoken", list(BANKS), bank)]
            for name in names:
                self.ledger.register_chaincode(name, storage, self.ledger)
            policies = self.ledger.collection_policies
            for bank in BANKS:
                policies[f"acct-{bank}"] = n_out_of_policy(1, [msp_of(bank)])
                policies[f"holds-{bank}"] = n_out_of_policy(1, [REGULATOR])
                for other in BANKS:
                    if other != bank:
                        policies[f"pair-{bank}-{other}"] = n_out_of_policy(1, [msp_of(bank)])

    # ------------------------------------------------------------------ identities

    @staticmethod
    def caller(org: str, *roles: str) -> Caller:
        return Caller(msp_of(org), frozenset(roles or ROLES))

    @staticmethod
    def admin(org: str) -> Caller:
        """The organization's administrator (NodeOU ``admin``, no role attribute), as the
        bootstrap invokes ``init_network``."""
        return Caller(msp_of(org), frozenset(), admin=True)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    # ------------------------------------------------------------------ running

    def _stub(self, request: Mapping[str, Any] | None, tx_id: str, when: datetime,
              org: str | None = None, *, serving: str | None = None) -> MemoryStub:
        """A stub for one transaction; with ``org``, endorsed by that organization's peer alone
        (so the commit refuses a change of a key pinned to more banks). Under the layout it
        starts in the namespace of ``org`` (or ``serving``)."""
        transient = {"request": json.dumps(request).encode()} if request is not None else None
        endorsers = None if org is None else [msp_of(org)]
        where = org or serving
        name = namespace_of(where) if self.layout and where else "chaincode"
        return self.ledger.stub(transient=transient, tx_id=tx_id, timestamp=when,
                                endorsers=endorsers, chaincode_name=name)

    async def _execute(
        self, org: str, name: str, stub: MemoryStub, caller: Caller, argument: str | None
    ) -> dict[str, object]:
        service = self.services[org]
        wrapped = self.stub_wrapper(org, stub) if self.stub_wrapper else stub
        self.serving = org
        try:
            if name == "init_network":
                assert argument is not None
                return await service.init_network(wrapped, caller, argument)
            if name == "admit_bank":
                assert argument is not None
                return await service.admit_bank(wrapped, caller, argument)
            return await service.execute(wrapped, caller, name)
        finally:
            self.serving = None

    async def prepare(
        self,
        org: str,
        name: str,
        request: Mapping[str, Any] | None = None,
        *,
        caller: Caller | None = None,
        argument: str | None = None,
        when: datetime | None = None,
    ) -> Submitted:
        """Simulate a submit on ``org``'s server with every check; do not commit."""
        caller = caller or (self.admin(org) if name in PUBLIC_WRITERS else self.caller(org))
        when = when or self.now
        tx_id = self.ledger.new_tx_id()
        stub = self._stub(request, tx_id, when, org)
        try:
            result = await self._execute(org, name, stub, caller, argument)
        except DepositTokenError as exc:
            message = str(exc)
            assert message.split(":", 1)[0] in CODES, message
            assert all_writes(stub) == {}, "a refused transaction wrote something"
            assert stub.event is None
            assert_no_private(message, request)
            self.blocks.append(message)
            raise
        # A second peer of the same organization computes the same write set.
        twin = self._stub(request, tx_id, when, serving=org)
        twin_result = await self._execute(org, name, twin, caller, argument)
        assert all_writes(twin) == all_writes(stub), "write sets differ between two endorsers"
        assert twin.event == stub.event
        assert twin_result == result
        assert_keys_unlinkable(stub, request)
        server_msp = msp_of(org)
        for collection, _key in all_writes(stub):
            if collection == "":
                assert name in PUBLIC_WRITERS, "only init_network and admit_bank write public state"
            else:
                assert policy_org(collection) == server_msp, (
                    f"{name} on {org} writes {collection}, which {org} cannot endorse"
                )
        block_text = json.dumps(result, sort_keys=True)
        if stub.event is not None:
            block_text += stub.event[0] + stub.event[1].decode()
        assert_no_private(block_text, request)
        self.blocks.append(block_text)
        return Submitted(stub, result, self)

    async def submit(
        self,
        org: str,
        name: str,
        request: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> dict[str, object]:
        """Simulate on ``org``'s server and commit."""
        assert name in PUBLIC_WRITERS or not TRANSACTIONS[name].evaluate
        sub = await self.prepare(org, name, request, **kw)
        sub.commit()
        return sub.result

    async def evaluate(
        self,
        org: str,
        name: str,
        request: Mapping[str, Any] | None = None,
        *,
        caller: Caller | None = None,
        when: datetime | None = None,
    ) -> dict[str, Any]:
        """Run a read on ``org``'s server; it must write nothing."""
        assert TRANSACTIONS[name].evaluate
        stub = self._stub(request, self.ledger.new_tx_id(), when or self.now, serving=org)
        result = await self._execute(org, name, stub, caller or self.caller(org), None)
        assert all_writes(stub) == {}
        return result

    async def init(self) -> None:
        """``init_network``: simulated on every bank's server, identical write sets, one
        commit (the chaincode-level policy: every bank endorses)."""
        payload = self.agreed
        assert payload is not None
        subs = []
        for bank in BANKS:
            stub = self._stub(None, "init-network-tx", self.now, serving=bank)
            await self.services[bank].init_network(stub, self.admin("hkbank"), payload)
            subs.append(stub)
        assert all(s.writes == subs[0].writes for s in subs)
        subs[0].commit()

    # ------------------------------------------------------------------ shortcuts

    async def open(self, bank: str, currency: str, account_id: str, **extra: Any) -> str:
        await self.submit(bank, "open_account", {
            "reference": f"open-{account_id}", "account_id": account_id,
            "currency": currency, "owner_ref": f"CIF-{account_id[:6]}", **extra,
        })
        return account_id

    async def mint(self, bank: str, account_id: str, amount: int, ref: str) -> None:
        await self.submit(bank, "mint", {"reference": ref, "account_id": account_id,
                                         "amount": amount}, caller=self.caller(bank, "minter"))

    async def balance(self, bank: str, account_id: str) -> int:
        acc = await self.evaluate(bank, "get_account", {"account_id": account_id})
        return int(acc["balance"])

    async def initiate(
        self, payer_bank: str, payer: str, payee_bank: str, payee: str, amount: int, ref: str,
        **extra: Any,
    ) -> str:
        """Initiate and return the transfer id (found through ``get_reference``)."""
        await self.submit(payer_bank, "initiate_transfer", {
            "reference": ref, "payer_account": payer, "payee_bank": payee_bank,
            "payee_account": payee, "amount": amount,
            "originator": {"name": "Kowloon Exporters Ltd", "account": "HK-001-234"}, **extra,
        })
        got = await self.evaluate(payer_bank, "get_reference", {"reference": ref})
        ids = got["ids"]
        assert isinstance(ids, list)
        assert len(ids) == 1
        return str(ids[0])

    async def marketplace(
        self, tag: str, n: int, funds: int, payer_bank: str = "hkbank",
        payee_bank: str = "usbank",
    ) -> tuple[str, list[str], list[str]]:
        """The issue-14 shape: one payer account at ``payer_bank`` funded with ``funds``, ``n``
        exporter accounts at ``payee_bank`` and ``n`` transfer ids (all tagged ``tag``)."""
        (payer,) = ids(f"{tag}pay", 1)
        await self.open(payer_bank, "USD", payer)
        await self.mint(payer_bank, payer, funds, f"{tag}-dep")
        payees = list(ids(f"{tag}exp", n))
        for p in payees:
            await self.open(payee_bank, "USD", p)
        return payer, payees, list(ids(f"{tag}tid", n))

    async def audit(self, page_size: int = 7, order: bool = True) -> dict[str, Any]:
        """Run the regulator's audit to the end, page by page."""
        cursor = None
        for _ in range(10_000):
            req: dict[str, Any] = {"page_size": page_size, "cursor": cursor}
            if order:
                req["ledger_order"] = {k: list(v) for k, v in self.order.items()}
            page = await self.evaluate("regulator", "audit", req)
            if page["done"]:
                return page
            cursor = page["cursor"]
        raise AssertionError("the audit never finished")

    async def obligations(self, a: str, b: str, page_size: int = 5,
                          order: bool = True, org: str | None = None) -> dict[str, Any]:
        cursor = None
        for _ in range(10_000):
            req: dict[str, Any] = {"bank_a": a, "bank_b": b, "page_size": page_size,
                                   "cursor": cursor}
            if order:
                req["ledger_order"] = {k: list(v) for k, v in self.order.items()}
            page = await self.evaluate(org or a, "get_obligations", req)
            if page["done"]:
                return page
            cursor = page["cursor"]
        raise AssertionError("obligations never finished")


async def pending_payment(
    ttl_seconds: int | None = None, *, funds: int = 1_000, amount: int = 400,
) -> tuple[Net, str, str, str]:
    """A fresh network where hkbank's customer (funded ``funds``) paid usbank's customer
    ``amount``, still pending: the network, the payer, the payee and the transfer id."""
    net = Net()
    await net.init()
    (payer,) = ids("hkpay", 1)
    (payee,) = ids("usrcv", 1)
    await net.open("hkbank", "USD", payer)
    await net.mint("hkbank", payer, funds, "dep-1")
    await net.open("usbank", "USD", payee)
    extra = {} if ttl_seconds is None else {"ttl_seconds": ttl_seconds}
    tid = await net.initiate("hkbank", payer, "usbank", payee, amount, "inv-1", **extra)
    return net, payer, payee, tid


def ids(prefix: str, n: int) -> Sequence[str]:
    """``n`` well-formed opaque ids (22+ characters)."""
    return [f"{prefix}{i:04d}".ljust(24, "x") for i in range(n)]
