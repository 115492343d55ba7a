"""Security checks on the real network (issue 6, item 5), with real connections.

* Every port a node listens on speaks TLS only: a plain-text gRPC call and a plain-text HTTP
  request are refused on each, a TLS handshake against the organization's TLS CA succeeds;
  mutual-TLS ports (chaincode servers, the orderers' admin endpoint) refuse a client without a
  certificate or with one from an unknown CA.
* A client certificate from an unknown CA (a CA of the same name made in the test), and an
  expired certificate of the organization's own CA, are refused by the Gateway; nothing is
  written.
* No private key, organization secret or private payload appears in any node's log.

Runs on the shared session network (``network``), with fresh references.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fabgateway
import grpc
import pytest
from consortium import crypto
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from harness import TestNetwork
from harness.faults import find_in_logs
from harness.payments import Client, Refused

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@dataclass(frozen=True)
class Port:
    what: str
    host: str
    port: int
    ca: Path | None  # the TLS CA that signed the server's certificate (None: the peer's own)
    http: bool  # HTTPS (operations, channel participation) rather than gRPC
    client: tuple[Path, Path] | None = None  # (cert, key) when client certificates are required


def _ports(network: TestNetwork) -> list[Port]:
    c = network.consortium
    n = network.network
    out: list[Port] = []
    oca = n.tlsca(c.orderer_org.name)
    admin = n.org_crypto(c.orderer_org).user("Admin")
    for o in c.ordering.orderers:
        out += [
            Port(f"{o.name} gRPC (broadcast, deliver, cluster)", o.host, o.port, oca, False),
            Port(f"{o.name} channel participation admin", o.host, o.admin_port, oca, True,
                 (admin.tls_cert, admin.tls_key)),
            Port(f"{o.name} operations", o.host, o.operations_port, oca, True),
        ]  # fmt: skip
    for p in c.peers:
        ca = n.tlsca(p.org)
        out += [
            Port(f"{p.name} gRPC (endorser, gateway, deliver, gossip)", p.host, p.port, ca, False),
            # Signed by a CA the peer makes for itself at start (for chaincodes it launches).
            Port(f"{p.name} chaincode listener", p.host, p.chaincode_listen_port, None, False),
            Port(f"{p.name} operations", p.host, p.operations_port, ca, True),
        ]
    for node in network.nodes("chaincode"):
        host, port = node.endpoint.rsplit(":", 1)
        client_dir = n.crypto_dir / node.org / "servers" / "chaincode-client"
        out.append(Port(f"{node.name} chaincode server", host, int(port), node.tls_ca, False,
                        (client_dir / "server.crt", client_dir / "server.key")))  # fmt: skip
    return out


def _plain_http(port: Port) -> bytes:
    with socket.create_connection((port.host, port.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        sock.settimeout(5)
        data = b""
        try:
            while len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return data


def _plain_grpc(port: Port) -> grpc.StatusCode:
    with grpc.insecure_channel(f"{port.host}:{port.port}") as channel:
        call = channel.unary_unary("/gateway.Gateway/Evaluate")
        try:
            call(b"", timeout=5)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _tls(port: Port, client: tuple[Path, Path] | None) -> bytes:
    """Open a TLS session verified against the port's CA and speak first; the first bytes
    the server answers (raises ssl.SSLError / OSError if it refuses the session). Without a
    CA to verify against, the server's certificate (DER) once the handshake completed."""
    if port.ca is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=str(port.ca))
    ctx.set_alpn_protocols(["http/1.1"] if port.http else ["h2"])
    if client:
        ctx.load_cert_chain(str(client[0]), str(client[1]))
    with (
        socket.create_connection((port.host, port.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        if port.ca is None:
            return tls.getpeercert(binary_form=True) or b""
        hello = (
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            if port.http
            else H2_PREFACE
        )
        tls.sendall(hello)
        tls.settimeout(5)
        data = tls.recv(4096)
        if not data:
            raise ConnectionResetError("the server closed the session")
        return data


@pytest.fixture(scope="module")
def ports(network: TestNetwork) -> list[Port]:
    found = _ports(network)
    assert len(found) >= 3 * 3 + 4 * 4  # 3 orderers, 4 peers and their chaincode servers
    return found


def test_every_port_refuses_plain_text_and_speaks_tls(ports: list[Port]) -> None:
    problems = []
    for port in ports:
        answer = _plain_http(port)
        if b"200 OK" in answer or b'"status"' in answer:
            problems.append(f"{port.what} ({port.port}): answered plain HTTP: {answer[:80]!r}")
        code = _plain_grpc(port)
        if code is not grpc.StatusCode.UNAVAILABLE:
            problems.append(f"{port.what} ({port.port}): plain-text gRPC got {code.name}")
        try:
            reply = _tls(port, port.client)
        except (ssl.SSLError, OSError) as exc:
            problems.append(f"{port.what} ({port.port}): TLS session refused: {exc!r}")
            continue
        if port.http and not reply.startswith(b"HTTP/1.1 "):
            problems.append(f"{port.what} ({port.port}): no HTTP over TLS: {reply[:40]!r}")
        if port.ca is None:
            if not reply:
                problems.append(f"{port.what} ({port.port}): no server certificate")
        elif not port.http and reply[3:4] != b"\x04":  # an HTTP/2 SETTINGS frame
            problems.append(f"{port.what} ({port.port}): no HTTP/2 over TLS: {reply[:20]!r}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def stranger(network: TestNetwork, tmp_path_factory: pytest.TempPathFactory) -> crypto.OrgCrypto:
    """An organization with hkbank's name, domain and users, from a CA made here."""
    hk = network.consortium.org("hkbank")
    return crypto.generate_org(
        tmp_path_factory.mktemp("stranger"), org_name=hk.name, domain=hk.domain,
        nodes={}, node_ou="peer", clients={"operator": {"operator": "true"}},
    )  # fmt: skip


def test_mutual_tls_ports_refuse_no_client_certificate_or_an_unknown_ca(
    ports: list[Port], stranger: crypto.OrgCrypto
) -> None:
    mutual = [p for p in ports if p.client is not None]
    assert any("chaincode server" in p.what for p in mutual)
    assert any("admin" in p.what for p in mutual)
    foreign = stranger.user("operator")
    problems = []
    for port in mutual:
        for label, client in (
            ("no", None),
            ("an unknown CA's", (foreign.tls_cert, foreign.tls_key)),
        ):
            try:
                reply = _tls(port, client)
            except (ssl.SSLError, OSError):
                continue  # refused, as it must be
            if not port.http or b"HTTP/1.1 2" in reply:
                problems.append(f"{port.what}: accepted {label} client certificate: {reply[:40]!r}")
    assert not problems, "\n".join(problems)


def _open_request(tag: str) -> dict[str, object]:
    return {"reference": f"sec-{tag}", "currency": "USD", "owner_ref": f"owner-{tag}",
            "account_id": f"acct-sec-{tag}".ljust(22, "_")}  # fmt: skip


def _refused_by_gateway(network: TestNetwork, msp_dir: Path, needle: str) -> None:
    hk = network.consortium.org("hkbank")
    height = network.ledger_height(hk)
    tag = uuid.uuid4().hex[:12]
    with Client(network, "hkbank", msp_dir=msp_dir) as client:
        with pytest.raises(fabgateway.EvaluateError, match=needle):
            client.evaluate("get_registry")
        with pytest.raises(fabgateway.EndorseError, match=needle):
            client.try_submit("open_account", _open_request(tag))
    assert network.ledger_height(hk) == height
    with Client(network, "hkbank") as operator, pytest.raises(Refused) as missing:
        operator.evaluate("get_reference", {"reference": f"sec-{tag}"})
    assert missing.value.code == "NOT_FOUND"


def test_a_client_certificate_from_an_unknown_ca_is_refused(
    network: TestNetwork, stranger: crypto.OrgCrypto
) -> None:
    msp = stranger.user("operator").msp_dir
    # Same MSP id, same names and attributes: only the CA differs.
    assert (msp / "signcerts" / "cert.pem").read_bytes() != (
        Path(network.profile(network.consortium.org("hkbank"))["identities"]["operator"]["cert"])
    ).read_bytes()
    _refused_by_gateway(network, msp, "creator org unknown|access denied")


def test_an_expired_client_certificate_is_refused(network: TestNetwork) -> None:
    hk = network.consortium.org("hkbank")
    now = dt.datetime.now(dt.UTC)
    files = network.network.org_crypto(hk).issue_user(
        f"expired-{uuid.uuid4().hex[:8]}", attributes={"operator": "true"},
        not_after=now - dt.timedelta(minutes=1),
    )  # fmt: skip
    _refused_by_gateway(network, files.msp_dir, "expired")


# --------------------------------------------------------------------------- logs


def _key_needles(state_dir: Path) -> Iterator[str | bytes]:
    """What a leaked key or secret would look like in a log: the PEM lines, hex and base64
    that hold a private scalar; the organizations' chaincode secrets in hex and base64."""
    for path in sorted((state_dir / "crypto").rglob("*")):
        if not path.is_file() or not (path.suffix == ".key" or path.name.endswith("_sk")):
            continue
        pem = path.read_bytes()
        body = [line for line in pem.decode().splitlines() if not line.startswith("-----")]
        yield from body[:2]  # the lines holding the private scalar (the rest: the public key)
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        yield format(key.private_numbers().private_value, "064x")
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
        yield base64.b64encode(der).decode()[48:96]  # past the PKCS#8 header every key shares
        yield base64.b64encode(key.private_numbers().private_value.to_bytes(32, "big")).decode()
    for path in sorted((state_dir / "secrets").glob("*.key")):
        raw = path.read_bytes()
        yield raw.hex()
        yield base64.b64encode(raw).decode()[:40]


def test_no_private_key_secret_or_private_payload_in_any_log(network: TestNetwork) -> None:
    tag = uuid.uuid4().hex[:10]
    owner = f"OwnerSecret-{tag}"
    originator = f"Originator Secret {tag}"
    remittance = f"Invoice secret {tag}"
    amount = 7_391_524_786
    payer, payee = f"acct-logs-payer-{tag}", f"acct-logs-payee-{tag}"
    transfer_id = f"xfer-logs-{tag}".ljust(22, "_")
    with (
        Client(network, "hkbank") as hk,
        Client(network, "hkbank", "minter") as minter,
        Client(network, "usbank") as us,
    ):
        hk.try_submit("open_account", {"reference": f"logs-open-1-{tag}", "currency": "USD",
                                       "owner_ref": owner, "account_id": payer})  # fmt: skip
        us.try_submit("open_account", {"reference": f"logs-open-2-{tag}", "currency": "USD",
                                       "owner_ref": owner + "-b", "account_id": payee})  # fmt: skip
        minter.try_submit("mint", {"reference": f"logs-mint-{tag}", "account_id": payer,
                                   "amount": amount})  # fmt: skip
        hk.try_submit("initiate_transfer", {
            "reference": f"logs-pay-{tag}", "payer_account": payer, "payee_bank": "usbank",
            "payee_account": payee, "amount": amount - 1, "transfer_id": transfer_id,
            "originator": {"name": originator}, "remittance": remittance})  # fmt: skip
        # (usbank's peer commits the block a moment after hkbank's: read until it has it)
        us.read_until("get_transfer", {"transfer_id": transfer_id, "payer_bank": "hkbank",
                                       "payee_bank": "usbank"})  # fmt: skip
        # Refusals must not echo the values either.
        for bad in (
            {"reference": f"logs-bad-1-{tag}", "payer_account": payer, "payee_bank": "usbank",
             "payee_account": payee, "amount": amount * 1000, "originator": {"name": originator}},
            {"reference": f"logs-bad-2-{tag}", "payer_account": payer, "payee_bank": owner,
             "payee_account": payee, "amount": 5},
            {"reference": f"logs-bad-3-{tag}", "payer_account": payer, "payee_bank": "usbank",
             "payee_account": payee, "amount": 5, "remittance": remittance * 200},
        ):  # fmt: skip
            with pytest.raises(Refused) as refused:
                hk.try_submit("initiate_transfer", bad)
            for secret in (owner, originator, remittance, str(amount * 1000)):
                assert secret not in refused.value.message
    # The scan reads the logs: what every peer logs is found.
    assert find_in_logs(network, ["Committed block"])
    payloads = [owner, originator, remittance, str(amount), str(amount - 1), payer, transfer_id]
    leaks = find_in_logs(network, ["PRIVATE KEY", *payloads])
    leaks += find_in_logs(network, list(_key_needles(network.state_dir)))
    assert not leaks, "found in logs:\n" + "\n".join(leaks)
