"""Issue 8 item 4: ``dtoken dashboard`` on the real network, checked in headless Chromium.

Each dashboard runs as ``dtoken --bank ORG dashboard --port 0``, its own process. The test
puts data on the ledger (a deposit at Harbour Bank, a payment waiting at Liberty Trust, an
account only Liberty Trust may see), then checks:

* the JSON API: what hkbank's page shows, and that it holds nothing of usbank's private
  account; usbank's and the regulator's pages likewise;
* live updates: the server-sent events bring a new deposit (a block with no chaincode event)
  and a new payment (a ``TransferPending`` chaincode event) without a reload;
* Chromium (Debian's ``chromium``, headless): the page's DOM, rendered by its script, holds
  the account ids and balances the API returns, and the screenshot is 1280x900, not blank,
  with the page's header and table ink where they belong. The PNG is decoded with ``zlib``.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from dtoken.sync import SyncBank, SyncRegulator
from harness import TestNetwork

RUN = secrets.token_hex(3)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (scripts/test installs it when run as root)",
)


# --------------------------------------------------------------------------- helpers


class Server:
    """One ``dtoken dashboard`` process."""

    def __init__(self, network: TestNetwork, org: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dtoken.cli", "--state-dir", str(network.state_dir),
             "--bank", org, "dashboard", "--port", "0", "--refresh", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, args=(lines,), daemon=True)
        self._pump_thread.start()
        try:
            first = lines.get(timeout=120)
        except queue.Empty:
            self.stop()
            raise AssertionError("the dashboard printed no URL") from None
        found = re.search(r"http://127\.0\.0\.1:\d+/", first)
        assert found, first
        self.url = found.group(0)

    def _pump(self, lines: queue.Queue[str]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            lines.put(line)
        lines.put("(exited) " + (self.process.stderr.read() if self.process.stderr else ""))

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "api/state", timeout=30) as answer:
            return dict(json.load(answer))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._pump_thread.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return int(self.process.returncode)


@pytest.fixture
def start(network: TestNetwork) -> Iterator[Callable[[str], Server]]:
    servers: list[Server] = []

    def run(org: str) -> Server:
        servers.append(Server(network, org))
        return servers[-1]

    yield run
    for server in servers:
        server.stop()


class EventReader:
    """The ``state`` messages of ``/api/events``, read by a thread."""

    def __init__(self, url: str) -> None:
        found = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(found.hostname, found.port, timeout=120)
        self.connection.request("GET", "/api/events")
        self.answer = self.connection.getresponse()
        self.states: queue.Queue[dict[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event, data = "", ""
        try:
            for raw in self.answer:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif not line and event == "state":
                    self.states.put(json.loads(data))
                    event, data = "", ""
        except (OSError, ValueError, http.client.HTTPException):
            return

    def wait_for(self, what: str, probe: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                state = self.states.get(timeout=5)
            except queue.Empty:
                continue
            if probe(state):
                return state
        raise AssertionError(f"no server-sent state with {what}")

    def close(self) -> None:
        """End the stream under the reader (EOF), then close: closing the response itself
        while the thread reads it races inside http.client."""
        if self.connection.sock is not None:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(30)
        self.connection.close()


def account(state: dict[str, Any], account_id: str) -> dict[str, Any] | None:
    return next((a for a in state["accounts"] if a["account_id"] == account_id), None)


def balance(state: dict[str, Any], account_id: str) -> str | None:
    found = account(state, account_id)
    return found["balance"]["text"] if found else None


# --------------------------------------------------------------------------- data


#: An owner reference is free text for the contract: the page must show it, never run it.
ODD_OWNER = f'DASH-ODD-{RUN}</script><b id="injected">x</b>'


@dataclass
class Ledger:
    hk_account: str
    hk_odd: str
    us_payee: str
    us_private: str
    transfer_id: str


@pytest.fixture(scope="module")
def ledger(network: TestNetwork) -> Ledger:
    with (
        SyncBank.connect(network.profile_path("hkbank"), identity="minter") as hk,
        SyncBank.connect(network.profile_path("usbank"), identity="minter") as us,
        SyncRegulator.connect(network.profile_path("regulator")) as reg,
    ):
        hk_account = hk.open_account(
            "USD", f"DASH-SHOP-{RUN}", reference=f"dash-{RUN}-open-shop"
        ).account_id
        hk.mint(hk_account, hk.money("1,234.56 USD"), reference=f"dash-{RUN}-dep-1")
        odd = hk.open_account("HKD", ODD_OWNER, reference=f"dash-{RUN}-open-odd").account_id
        payee = us.open_account(
            "USD", f"DASH-SELLER-{RUN}", reference=f"dash-{RUN}-open-seller"
        ).account_id
        private = us.open_account(
            "USD", f"DASH-PRIVATE-{RUN}", reference=f"dash-{RUN}-open-private"
        ).account_id
        us.mint(private, us.money("777.77 USD"), reference=f"dash-{RUN}-dep-2")
        sent = hk.transfer(
            hk_account,
            "usbank",
            payee,
            hk.money("10.00 USD"),
            reference=f"dash-{RUN}-pay-1",
            remittance=f"INV-DASH-{RUN}-1",
        )
        assert sent.transfer_id is not None
        held = reg.freeze("hkbank", odd, held_amount=0, frozen=True, reason="screening",
                          reference=f"dash-{RUN}-hold")
        hk.wait_for_commit(held.tx_id)
        return Ledger(hk_account, odd, payee, private, sent.transfer_id)


# --------------------------------------------------------------------------- PNG


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit, non-interlaced RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), (depth, interlace)
    channels = {2: 3, 6: 4}[color]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for x in range(stride):
            left = row[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                row[x] = (row[x] + left) & 0xFF
            elif kind == 2:
                row[x] = (row[x] + up) & 0xFF
            elif kind == 3:
                row[x] = (row[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[x] = (row[x] + pred) & 0xFF
        previous = row
        rgb = (
            bytes(row)
            if channels == 3
            else bytes(b for i in range(0, stride, 4) for b in row[i : i + 3])
        )
        rows.append(rgb)
    return width, height, rows


def pixel(rows: list[bytes], x: int, y: int) -> tuple[int, int, int]:
    r, g, b = rows[y][3 * x : 3 * x + 3]
    return r, g, b


def ink(rows: list[bytes], top: int, bottom: int) -> float:
    """The share of dark pixels (text) between rows ``top`` and ``bottom``."""
    dark = total = 0
    for y in range(top, bottom):
        row = rows[y]
        for x in range(0, len(row), 3 * 4):  # every 4th pixel
            total += 1
            dark += sum(row[x : x + 3]) < 3 * 140
    return dark / total


class TableText(HTMLParser):
    """The text of the element with ``id`` in a DOM dump."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id:
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)

    @classmethod
    def of(cls, dom: str, element_id: str) -> str:
        parser = cls(element_id)
        parser.feed(dom)
        return " ".join(parser.parts)


def chromium(url: str, tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
         *args, url],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


# --------------------------------------------------------------------------- tests


def test_a_bank_sees_its_own_data_and_none_of_another_banks_customers(
    network: TestNetwork, ledger: Ledger, start: Callable[[str], Server]
) -> None:
    hk = start("hkbank")
    state = hk.state()
    assert (state["me"]["org"], state["me"]["kind"], state["me"]["identity"]) == (
        "hkbank",
        "bank",
        "operator",
    )
    assert balance(state, ledger.hk_account) == "1,224.56 USD"
    found = account(state, ledger.hk_account)
    assert found is not None
    assert found["owner_ref"] == f"DASH-SHOP-{RUN}"
    assert found["hold"] is None
    frozen = account(state, ledger.hk_odd)
    assert frozen is not None
    assert (frozen["status"], frozen["hold"]["frozen"]) == ("active", True)  # the regulator's
    assert {s["currency"] for s in state["supply"]} == {"HKD", "USD", "CNH"}
    assert ledger.transfer_id in {t["transfer_id"] for t in state["outgoing"]}
    assert {tuple(o["banks"]) for o in state["obligations"]} == {
        ("hkbank", "usbank"),
        ("hkbank", "cnbank"),
    }
    assert state["blocks"]
    assert state["height"] > state["blocks"][0]["number"]
    assert state["errors"] == []
    text = json.dumps(state)
    assert ledger.us_private not in text  # usbank's customer: not hkbank's to see
    assert "777.77" not in text
    assert f"DASH-PRIVATE-{RUN}" not in text

    us = start("usbank")
    seen = us.state()
    assert balance(seen, ledger.us_private) == "777.77 USD"
    assert ledger.transfer_id in {t["transfer_id"] for t in seen["incoming"]}
    assert ledger.hk_account not in json.dumps(seen)  # the payer's account is hkbank's only
    assert {s["currency"] for s in seen["supply"]} == {"USD"}

    reg = start("regulator")
    overall = reg.state()
    assert overall["me"]["kind"] == "regulator"
    assert balance(overall, ledger.us_private) == "777.77 USD"
    assert balance(overall, ledger.hk_account) == "1,224.56 USD"
    assert {s["bank"] for s in overall["supply"]} == {"hkbank", "usbank", "cnbank"}
    assert ledger.transfer_id in {t["transfer_id"] for t in overall["incoming"]}


def test_the_page_updates_live_from_blocks_and_chaincode_events(
    network: TestNetwork, ledger: Ledger, start: Callable[[str], Server]
) -> None:
    hk = start("hkbank")
    events = EventReader(hk.url)
    try:
        first = events.wait_for("the first state", lambda s: "me" in s)
        before = balance(first, ledger.hk_account)
        assert before is not None
        with SyncBank.connect(network.profile_path("hkbank"), identity="minter") as bank:
            bank.mint(ledger.hk_account, bank.money("100.00 USD"), reference=f"dash-{RUN}-dep-3")
            expected = (bank.money(before) + bank.money("100.00 USD")).format()
            minted = events.wait_for(
                f"balance {expected}", lambda s: balance(s, ledger.hk_account) == expected
            )
            assert minted["version"] > first["version"]
            sent = bank.transfer(
                ledger.hk_account,
                "usbank",
                ledger.us_payee,
                bank.money("5.00 USD"),
                reference=f"dash-{RUN}-pay-2",
                remittance=f"INV-DASH-{RUN}-2",
            )
        assert sent.transfer_id is not None
        pending = events.wait_for(
            "the new payment and its TransferPending event",
            lambda s: (
                sent.transfer_id in {t["transfer_id"] for t in s["outgoing"]}
                and any(e["tx_id"] == sent.receipt.tx_id for e in s["events"])
            ),
        )
        event = next(e for e in pending["events"] if e["tx_id"] == sent.receipt.tx_id)
        # banks and the transaction's time only (its header shows the time anyway)
        assert event["name"] == "TransferPending"
        assert set(event["payload"]) == {"payee_banks", "at"}
        assert event["payload"]["payee_banks"] == ["usbank"]
        assert event["block"] == sent.receipt.block_number
        assert any(b["number"] == sent.receipt.block_number for b in pending["blocks"])
    finally:
        events.close()
    assert hk.stop() == 0  # SIGTERM is a clean stop


@needs_chromium
def test_headless_chromium_renders_the_banks_data(
    network: TestNetwork, ledger: Ledger, start: Callable[[str], Server], tmp_path: Path
) -> None:
    hk = start("hkbank")
    state = hk.state()
    dom = chromium(hk.url, tmp_path, "--dump-dom")
    accounts = TableText.of(dom, "accounts")
    for item in state["accounts"][:5]:  # the newest first: this test's account among them
        assert item["account_id"] in accounts
        assert item["balance"]["text"] in accounts
    assert ledger.hk_account in accounts
    assert balance(state, ledger.hk_account) in accounts
    supply = TableText.of(dom, "supply")
    for item in state["supply"]:
        assert item["supply"]["text"] in supply
    assert ledger.transfer_id[:12] in TableText.of(dom, "outgoing")
    assert ODD_OWNER in accounts  # shown as text ...
    assert '<b id="injected">' not in dom  # ... never as markup
    assert "hkbank" in TableText.of(dom, "who")

    shot = tmp_path / "dashboard-hkbank.png"
    chromium(hk.url, tmp_path, f"--screenshot={shot}")
    width, height, rows = png_pixels(shot)
    assert (width, height) == (1280, 900)
    sample = {pixel(rows, x, y) for y in range(0, height, 20) for x in range(0, width, 20)}
    assert len(sample) > 8, "the screenshot is (nearly) blank"
    r, g, b = pixel(rows, 640, 5)  # the header bar (#0f2f52)
    assert r < 60, (r, g, b)
    assert b > max(60, r + 30), (r, g, b)
    assert ink(rows, 0, 60) > 0.02  # the header's text
    assert ink(rows, 120, 700) > 0.01  # supply and the accounts table hold text
    print(f"dashboard screenshot: {shot}")


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hexport = local.rsplit(":", 1)
                if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


def test_the_server_answers_local_get_requests_only(
    ledger: Ledger, start: Callable[[str], Server]
) -> None:
    hk = start("hkbank")
    port = int(hk.url.rstrip("/").rsplit(":", 1)[1])
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else

    def ask(method: str, path: str, host: str) -> tuple[int, http.client.HTTPResponse, str]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request(method, path, headers={"Host": host})
            answer = connection.getresponse()
            return answer.status, answer, answer.read().decode()
        finally:
            connection.close()

    local = f"127.0.0.1:{port}"
    assert ask("GET", "/api/state", "attacker.example")[0] == 421  # DNS rebinding
    assert ask("GET", "/api/state", f"localhost:{port}")[0] == 200
    assert ask("POST", "/api/state", local)[0] == 405
    assert ask("GET", "/nothing-here", local)[0] == 404
    assert ask("GET", "/healthz", local)[2] == "ok"
    status, answer, page = ask("GET", "/", local)
    assert status == 200
    assert answer.getheader("Content-Security-Policy", "").startswith("default-src 'self'")
    assert answer.getheader("Cache-Control") == "no-store"
    assert ledger.hk_odd in page  # the state is embedded for the first paint ...
    assert "</script><b" not in page  # ... and escaped inside its script element
    assert ask("GET", "/app.js", local)[0] == 200
