"""The dashboard's web server (Starlette on uvicorn) against a fake peer, over real sockets.

A Bank (or the Regulator) on ``SdkPeer`` with the reads the view makes; the dashboard serves on
127.0.0.1 with a free port and the tests ask it with ``http.client`` (in a thread): what it
binds, the Host check, the security headers on every answer, GET/HEAD only, the page's escaping,
the script's ``textContent``-only rule, live updates by server-sent events, what a bank's page
reads against the regulator's, and the graceful stop.
"""

from __future__ import annotations

import asyncio
import http.client
import importlib
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
import pytest
from dtoken.bank import Bank, Member, Regulator
from dtoken.dashboard import HOST, Dashboard
from dtoken.dashboard.server import SECURITY_HEADERS
from dtoken.profile import Profile
from unit.dtoken.conftest import FAST, write_profile
from unit.dtoken.sdk_fakes import SdkPeer
from unit.fabgateway.gw_fakes import Invocation, Result, Server

ledger_pb2: Any = importlib.import_module("fabric_protos.common.ledger_pb2")
identities_pb2: Any = importlib.import_module("fabric_protos.msp.identities_pb2")

#: An owner reference is free text: the page must carry it as data, never as markup.
ODD_OWNER = 'CIF-9</script><b id="injected">x</b>'
Reads = list[tuple[str, str, dict[str, Any]]]  # (MSP id of the caller, function, request)


def contract_reads(peer: SdkPeer) -> Reads:
    """The reads ``ledger_view`` makes, answered as the contract's shapes; each one recorded."""
    seen: Reads = []

    def read(name: str, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        def handle(invocation: Invocation) -> Result:
            request = peer.request(invocation)
            creator = identities_pb2.SerializedIdentity.FromString(invocation.creator)
            seen.append((str(creator.mspid), name, request))
            return Result(payload=json.dumps({**answer(request), "done": True}).encode())

        peer.function(name)(handle)

    def account(request: dict[str, Any]) -> dict[str, Any]:
        bank = request.get("bank", "hkbank")
        return {"accounts": [{
            "account_id": f"acct-{bank}-1", "currency": "USD", "status": "active",
            "owner_ref": ODD_OWNER if bank == "hkbank" else f"CIF-{bank}",
            "balance": 123456, "opened_at": "2026-01-02T03:04:05Z", "hold": None}]}

    read("list_accounts", account)
    read("get_supply", lambda r: {"bank": r.get("bank", "hkbank"), "supply": 123456,
                                  "by_kind": {"mint": 123456}})
    read("get_pending", lambda r: {"transfers": []})
    read("get_obligations", lambda r: {"obligations": [{
        "debtor": "usbank", "creditor": "hkbank", "currency": "USD", "accepted": 5000,
        "settled": 1000, "disputed": 0, "owed": 4000, "cap": 10000, "headroom": 6000}],
        "net": {"USD": -4000}})
    def escrows(r: dict[str, Any]) -> dict[str, Any]:
        if (r["payer_bank"], r["payee_bank"]) != ("hkbank", "usbank"):
            return {"escrows": [], "next": None}
        return {"next": None, "escrows": [{"state": "held", "anomalies": [],
                                           "release": None, "claim": None, "refund": None,
                                           "parties": [{"role": "attester",
                                                        "name": "marketplace",
                                                        "key_sha256": "a" * 64,
                                                        "here": "mismatch"}],
                                           "escrow": {
            "escrow_id": "esc-hk-us-1", "payer_bank": "hkbank", "payee_bank": "usbank",
            "payee_account": "acct-usbank-1", "amount": 120000, "currency": "USD",
            "created_at": "2026-01-02T03:04:05.000000Z",
            "deadline": "2026-01-16T03:04:05.000000Z", "on_deadline": "refund",
            "attester": "marketplace", "arbiter": "", "remittance": "order 1"}}]}

    def requests(r: dict[str, Any]) -> dict[str, Any]:
        if (r["payer_bank"], r["payee_bank"]) != ("hkbank", "usbank"):
            return {"requests": [], "next": None}
        return {"next": None, "requests": [{
            "status": "pending", "payment_status": None, "decline": None, "anomalies": [],
            "request": {"request_id": "req-us-hk-1", "payer_bank": "hkbank",
                        "payee_bank": "usbank", "payer_account": "acct-hkbank-1",
                        "payee_account": "acct-usbank-1", "amount": 45000, "currency": "USD",
                        "invoice_ref": "INV-77", "due": "2026-02-01T00:00:00.000000Z"}}]}

    read("list_escrows", escrows)
    read("list_payment_requests", requests)
    peer.function("GetChainInfo")(lambda invocation: Result(
        payload=ledger_pb2.BlockchainInfo(height=len(peer.blocks)).SerializeToString()))
    return seen


@pytest.fixture
def reads(peer: SdkPeer) -> Reads:
    return contract_reads(peer)


@pytest.fixture
async def dash(bank: Bank, reads: Reads) -> AsyncIterator[Dashboard]:
    async with Dashboard(bank, port=0, refresh_interval=60, reconnect_delay=0.05) as running:
        yield running


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: str) -> None:
        self.status, self.headers, self.body = status, headers, body


def _ask(port: int, method: str, path: str, host: str | None) -> Answer:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        answer = connection.getresponse()
        headers = {k.lower(): v for k, v in answer.getheaders()}
        return Answer(answer.status, headers, answer.read().decode())
    finally:
        connection.close()


async def ask(dash: Dashboard, path: str, *, method: str = "GET",
              host: str | None = "") -> Answer:
    """One request; ``host`` "" is the dashboard's own ``127.0.0.1:<port>``."""
    return await asyncio.to_thread(_ask, dash.port, method, path,
                                   f"{HOST}:{dash.port}" if host == "" else host)


class EventStream:
    """``GET /api/events``, read line by line in a thread."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=10)
        self.connection.request("GET", "/api/events")
        self.answer = self.connection.getresponse()

    @classmethod
    async def open(cls, dash: Dashboard) -> EventStream:
        return await asyncio.to_thread(cls, dash.port)

    def _next_state(self) -> dict[str, Any] | None:
        event = data = ""
        for raw in self.answer:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif not line and event == "state":
                return dict(json.loads(data))
        return None  # the stream ended

    async def next_state(self) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._next_state)

    def close(self) -> None:
        self.connection.close()


# --------------------------------------------------------------------------- binding


async def test_it_listens_on_127_0_0_1_only(dash: Dashboard) -> None:
    assert dash.url == f"http://127.0.0.1:{dash.port}/"
    assert (await ask(dash, "/healthz")).body == "ok"
    # Linux routes all of 127/8 to lo: a server bound to 0.0.0.0 would answer on 127.0.0.2.
    with socket.socket() as other:
        other.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            other.connect(("127.0.0.2", dash.port))


async def test_a_port_in_use_is_an_os_error_at_start(bank: Bank, reads: Reads) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        dashboard = Dashboard(bank, port=taken.getsockname()[1])
        with pytest.raises(OSError, match="in use"):
            await dashboard.start()
        await dashboard.close()


# --------------------------------------------------------------------------- HTTP


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}",
                                  "127.0.0.1", "127.0.0.1:1", "localhost:1", "[::1]:{port}"])
async def test_a_request_not_named_for_this_server_gets_421(dash: Dashboard, host: str) -> None:
    answer = await ask(dash, "/api/state", host=host.format(port=dash.port))
    assert answer.status == 421  # DNS rebinding: a page elsewhere cannot read the data
    assert "acct-hkbank-1" not in answer.body
    assert answer.headers["content-security-policy"] == SECURITY_HEADERS[
        "Content-Security-Policy"]


async def test_a_request_without_host_is_refused_by_the_protocol(dash: Dashboard) -> None:
    answer = await ask(dash, "/api/state", host=None)
    assert answer.status == 400  # h11: HTTP/1.1 requires Host; the application never runs
    assert "acct-hkbank-1" not in answer.body


async def test_its_own_names_are_served(dash: Dashboard) -> None:
    for host in (f"127.0.0.1:{dash.port}", f"localhost:{dash.port}",
                 f"LocalHost:{dash.port}"):
        answer = await ask(dash, "/api/state", host=host)
        assert answer.status == 200, host
        assert json.loads(answer.body) == dash.state


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/", 200), ("GET", "/index.html", 200), ("GET", "/app.js", 200),
    ("GET", "/style.css", 200), ("GET", "/api/state", 200), ("GET", "/healthz", 200),
    ("HEAD", "/", 200), ("HEAD", "/api/events", 200), ("GET", "/nothing-here", 404),
    ("GET", "/static/app.js", 404), ("POST", "/api/state", 405), ("PUT", "/", 405),
    ("DELETE", "/api/events", 405),
])
async def test_every_answer_carries_the_security_headers(
    dash: Dashboard, method: str, path: str, status: int
) -> None:
    answer = await ask(dash, path, method=method)
    assert answer.status == status
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name.lower()] == value, name
    assert "server" not in answer.headers
    if status == 405:
        assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD"}
    if method == "HEAD":
        assert answer.body == ""


async def test_assets_have_their_types(dash: Dashboard) -> None:
    kinds = {path: (await ask(dash, path)).headers["content-type"]
             for path in ("/", "/app.js", "/style.css", "/api/state", "/healthz")}
    assert kinds == {"/": "text/html; charset=utf-8",
                     "/app.js": "text/javascript; charset=utf-8",
                     "/style.css": "text/css; charset=utf-8",
                     "/api/state": "application/json",
                     "/healthz": "text/plain; charset=utf-8"}
    answer = await ask(dash, "/app.js")
    assert answer.body == static("app.js")


# --------------------------------------------------------------------------- the page


def static(name: str) -> str:
    return resources.files("dtoken.dashboard").joinpath("static", name).read_text("utf-8")


async def test_the_page_embeds_the_state_as_inert_json(dash: Dashboard) -> None:
    page = (await ask(dash, "/")).body
    assert "<title>hkbank (HarbourBankMSP) · deposit-token dashboard</title>" in page
    found = re.search(r'<script id="initial-state" type="application/json">(.*?)</script>',
                      page, re.S)
    assert found is not None
    assert json.loads(found.group(1)) == dash.state  # the whole state, for the first paint
    assert not set("<>&") & set(found.group(1))  # escaped: nothing the HTML parser reads
    assert dash.state["accounts"][0]["owner_ref"] == ODD_OWNER  # in the data ...
    assert "</script><b" not in page  # ... never as markup in the page
    assert '<b id="injected">' not in page
    assert page.count("<script") == 2  # the data element and /app.js: no inline code


def test_the_script_writes_text_never_markup() -> None:
    script = static("app.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "DOMParser", "createContextualFragment", "srcdoc"):
        assert sink not in script, sink
    assert "textContent" in script


# --------------------------------------------------------------------------- live


async def test_server_sent_events_bring_each_new_block(dash: Dashboard, peer: SdkPeer) -> None:
    stream = await EventStream.open(dash)
    try:
        assert stream.answer.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        assert stream.answer.getheader("Cache-Control") == "no-store"
        first = await stream.next_state()
        assert first is not None
        assert first["version"] == dash.state["version"]
        block = await peer.add_event_block("dtoken", ("tx-dash-1", "TransferPending"))
        state = first
        while not (any(b["number"] == block.number for b in state["blocks"])
                   and state["events"]):
            following = await asyncio.wait_for(stream.next_state(), 10)
            assert following is not None, "the stream ended"
            assert following["version"] > state["version"]
            state = following
        assert [(t["tx_id"], t["code"]) for t in state["blocks"][0]["transactions"]] == [
            ("tx-dash-1", "VALID")]
        assert [(e["block"], e["tx_id"], e["name"]) for e in state["events"]] == [
            (block.number, "tx-dash-1", "TransferPending")]
        assert state["height"] == block.number + 1
    finally:
        stream.close()


async def test_a_page_that_goes_away_ends_its_subscription(dash: Dashboard) -> None:
    stream = await EventStream.open(dash)
    assert await stream.next_state() is not None
    assert dash.live.subscribers == 1
    stream.close()
    for _ in range(100):  # Starlette notices the disconnect and cancels the stream
        if dash.live.subscribers == 0:
            break
        await asyncio.sleep(0.05)
    assert dash.live.subscribers == 0


async def test_close_ends_the_open_streams_and_stops_listening(
    bank: Bank, reads: Reads
) -> None:
    dashboard = Dashboard(bank, port=0)
    await dashboard.start()
    stream = await EventStream.open(dashboard)
    try:
        assert await stream.next_state() is not None
        reading = asyncio.create_task(stream.next_state())
        await asyncio.sleep(0.2)
        await asyncio.wait_for(dashboard.close(), 5)  # well before the 5 s grace ends
        assert await asyncio.wait_for(reading, 5) is None  # the stream ended cleanly
    finally:
        stream.close()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect((HOST, dashboard.port))


# --------------------------------------------------------------------------- who sees what


async def test_a_banks_page_reads_only_its_own_collections(dash: Dashboard,
                                                           reads: Reads) -> None:
    assert {msp for msp, _, _ in reads} == {"HarbourBankMSP"}
    assert all("bank" not in r for _, n, r in reads if n != "get_obligations")
    pairs = {(r["bank_a"], r["bank_b"]) for _, n, r in reads if n == "get_obligations"}
    assert pairs == {("hkbank", "usbank")}
    state = dash.state
    assert state["me"]["kind"] == "bank"
    assert [a["account_id"] for a in state["accounts"]] == ["acct-hkbank-1"]
    assert [(s["bank"], s["currency"]) for s in state["supply"]] == [
        ("hkbank", "USD"), ("hkbank", "HKD")]
    (pair,) = state["obligations"]
    (row,) = pair["obligations"]  # hkbank's cap on usbank, and the headroom it leaves
    assert (row["cap"]["text"], row["headroom"]["text"]) == ("100.00 USD", "60.00 USD")


async def test_a_banks_page_shows_its_escrows_and_payment_requests(dash: Dashboard) -> None:
    state = dash.state
    (escrow,) = state["escrows"]
    assert (escrow["escrow_id"], escrow["state"], escrow["amount"]["text"]) == (
        "esc-hk-us-1", "held", "1,200.00 USD")
    # the payer bank's "marketplace" is not the key this bank registered: shown as such
    assert [(p["name"], p["here"]) for p in escrow["parties"]] == [("marketplace", "mismatch")]
    (request,) = state["requests"]
    assert (request["invoice_ref"], request["status"]) == ("INV-77", "pending")
    assert not [e for e in state["errors"] if "escrow" in e or "request" in e]
    assert "renderEscrows" in static("app.js")


async def test_the_regulators_page_reads_every_banks_collections(
    server: Server, tmp_path: Path, reads: Reads
) -> None:
    profile = Profile.load(write_profile(tmp_path / "reg", org="regulator", kind="regulator"))
    async with grpc.aio.insecure_channel(server.address) as channel:
        regulator: Member = Regulator(profile, channel, identity="auditor", policy=FAST)
        async with Dashboard(regulator, port=0) as dashboard:
            state = (await ask(dashboard, "/api/state")).body
    seen = json.loads(state)
    assert seen["me"]["kind"] == "regulator"
    assert {msp for msp, _, _ in reads} == {"RegulatorMSP"}
    asked = {(n, r.get("bank")) for _, n, r in reads if n != "get_obligations"}
    assert asked >= {("list_accounts", "hkbank"), ("list_accounts", "usbank"),
                     ("get_pending", "hkbank"), ("get_pending", "usbank")}
    assert sorted(a["account_id"] for a in seen["accounts"]) == [
        "acct-hkbank-1", "acct-usbank-1"]
    assert {(s["bank"], s["currency"]) for s in seen["supply"]} == {
        ("hkbank", "USD"), ("hkbank", "HKD"), ("usbank", "USD")}
