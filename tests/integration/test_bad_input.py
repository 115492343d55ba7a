"""Bad input from a client on the real network (issue 6, item 4).

* Contract arguments and transient data through the real Gateway: malformed JSON, JSON that
  is not an object, invalid UTF-8, a missing request, wrong types, missing and unknown
  fields, out-of-range amounts, oversized strings and messages, deep nesting, unknown
  functions and contracts, too many arguments. Each is refused on evaluate and on endorse
  with a stable code; the chaincode server keeps running (same pid); the ledger height does
  not change; the account the requests name keeps its balance and history.
* Malformed and oversized gRPC messages: bytes that are not a protobuf message to the
  peer's Gateway and to an orderer, a proposal with a forged signature, a message larger
  than the peer accepts (100 MiB), and garbage on a chaincode server's stream as its peer.
  Each gets an error status, and the node keeps serving.

Runs on the shared session network with fresh references and accounts.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fabgateway
import grpc
import pytest
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import proposal_pb2
from harness import TestNetwork
from harness.payments import Client, Refused

TAG = uuid.uuid4().hex[:10]
ACCOUNT = f"acct-bad-{TAG}".ljust(22, "_")
OTHER = f"acct-bad2-{TAG}".ljust(22, "_")
BALANCE = 5_000


@pytest.fixture(scope="module")
def bank(network: TestNetwork) -> Iterator[dict[str, Client]]:
    """hkbank's operator and minter, with two USD accounts; the first holds BALANCE."""
    clients = {"operator": Client(network, "hkbank"), "minter": Client(network, "hkbank", "minter")}
    op, minter = clients["operator"], clients["minter"]
    for i, account_id in enumerate((ACCOUNT, OTHER)):
        op.try_submit(
            "open_account",
            {
                "reference": f"bad-open-{i}-{TAG}",
                "currency": "USD",
                "owner_ref": f"bad-owner-{i}",
                "account_id": account_id,
            },
        )
    minter.try_submit("mint", {"reference": f"bad-mint-{TAG}", "account_id": ACCOUNT,
                               "amount": BALANCE})  # fmt: skip
    yield clients
    for c in clients.values():
        c.close()


def _ok_mint(**override: Any) -> dict[str, Any]:
    return {"reference": f"bad-ref-{uuid.uuid4().hex[:8]}", "account_id": ACCOUNT,
            "amount": 10, **override}  # fmt: skip


def _without(request: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k != field}


def _transfer(**override: Any) -> dict[str, Any]:
    return {"reference": f"bad-ref-{uuid.uuid4().hex[:8]}", "from_account": ACCOUNT,
            "to_account": OTHER, "amount": 10, **override}  # fmt: skip


def _nested(depth: int) -> bytes:
    return b'{"reference":' + b"[" * depth + b"]" * depth + b"}"


# (case id, function, extra arguments, transient "request" (bytes: sent as is; None: absent),
#  identity, expected code)
CASES: list[tuple[str, str, tuple[str, ...], Any, str, str]] = [
    ("malformed-json", "mint", (), b'{"reference": "x", "amount": ', "minter", "INVALID_ARGUMENT"),
    ("json-array", "mint", (), b"[1, 2, 3]", "minter", "INVALID_ARGUMENT"),
    ("json-number", "mint", (), b"42", "minter", "INVALID_ARGUMENT"),
    ("json-null", "mint", (), b"null", "minter", "INVALID_ARGUMENT"),
    ("invalid-utf8", "mint", (), b"\xff\xfe\x00{", "minter", "INVALID_ARGUMENT"),
    ("empty-bytes", "mint", (), b"", "minter", "INVALID_ARGUMENT"),
    ("no-request", "mint", (), None, "minter", "INVALID_ARGUMENT"),
    ("deep-nesting", "mint", (), _nested(100_000), "minter", "INVALID_ARGUMENT"),
    ("amount-string", "mint", (), _ok_mint(amount="10"), "minter", "INVALID_AMOUNT"),
    ("amount-float", "mint", (), _ok_mint(amount=10.5), "minter", "INVALID_AMOUNT"),
    ("amount-bool", "mint", (), _ok_mint(amount=True), "minter", "INVALID_AMOUNT"),
    ("amount-zero", "mint", (), _ok_mint(amount=0), "minter", "INVALID_AMOUNT"),
    ("amount-negative", "mint", (), _ok_mint(amount=-10), "minter", "INVALID_AMOUNT"),
    ("amount-2^63", "mint", (), _ok_mint(amount=2**63), "minter", "INVALID_AMOUNT"),
    ("amount-huge", "mint", (), _ok_mint(amount=10**400), "minter", "INVALID_AMOUNT"),
    ("amount-missing", "mint", (), _without(_ok_mint(), "amount"), "minter", "INVALID_ARGUMENT"),
    ("reference-missing", "mint", (), _without(_ok_mint(), "reference"), "minter",
     "INVALID_ARGUMENT"),
    ("reference-number", "mint", (), _ok_mint(reference=12345), "minter", "INVALID_ARGUMENT"),
    ("reference-10k", "mint", (), _ok_mint(reference="r" * 10_000), "minter", "INVALID_ARGUMENT"),
    ("unknown-field", "mint", (), _ok_mint(extra="x"), "minter", "INVALID_ARGUMENT"),
    ("account-short", "mint", (), _ok_mint(account_id="short"), "minter", "INVALID_ARGUMENT"),
    ("account-bad-chars", "mint", (), _ok_mint(account_id="acct/../../etc/passwd/xxxxx"),
     "minter", "INVALID_ARGUMENT"),
    ("account-unknown", "mint", (), _ok_mint(account_id="acct-nobody-" + "x" * 20), "minter",
     "NOT_FOUND"),
    ("account-object", "mint", (), _ok_mint(account_id={"$gt": ""}), "minter", "INVALID_ARGUMENT"),
    ("owner-1MiB", "open_account", (), {"reference": "big-owner", "currency": "USD",
                                         "owner_ref": "o" * (1 << 20)}, "operator",
     "INVALID_ARGUMENT"),
    ("request-5MiB", "mint", (), json.dumps({**_ok_mint(), "pad": "p" * (5 << 20)}).encode(),
     "minter", "INVALID_ARGUMENT"),
    ("transfer-to-self", "transfer", (), _transfer(to_account=ACCOUNT), "operator",
     "INVALID_ARGUMENT"),
    ("overdraft", "transfer", (), _transfer(amount=BALANCE + 1), "operator",
     "INSUFFICIENT_FUNDS"),
    ("currency-lowercase", "open_account", (), {"reference": "lc", "currency": "usd",
                                                 "owner_ref": "o"}, "operator", "INVALID_ARGUMENT"),
    ("unknown-function", "no_such_function", (), _ok_mint(), "minter", "UNKNOWN_TRANSACTION"),
    ("unknown-contract", "Nope:mint", (), _ok_mint(), "minter", "UNKNOWN_CONTRACT"),
    ("too-many-args", "mint", ("a", "b", "c"), _ok_mint(), "minter", "INVALID_ARGUMENT"),
    # a client that is not an admin, with a registry no server pinned: refused before anything
    ("init-by-client", "init_network", ("{}",), None, "minter", "NOT_AUTHORIZED"),
    ("wrong-role", "mint", (), _ok_mint(), "operator", "NOT_AUTHORIZED"),
]  # fmt: skip


def _chaincode_pid(network: TestNetwork) -> int | None:
    peer = network.consortium.org("hkbank").peers[0]
    return network.node(f"chaincode.{peer.name}").pid()


@pytest.mark.parametrize(
    ("function", "args", "request_", "identity", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_contract_input_is_refused_with_a_stable_code_and_changes_nothing(
    network: TestNetwork,
    bank: dict[str, Client],
    function: str,
    args: tuple[str, ...],
    request_: Any,
    identity: str,
    code: str,
) -> None:
    hk = network.consortium.org("hkbank")
    client = bank[identity]
    server_pid = _chaincode_pid(network)
    assert server_pid is not None
    height = network.ledger_height(hk)
    history = len(bank["operator"].evaluate("get_history", {"account_id": ACCOUNT})["records"])
    raw = request_ if isinstance(request_, bytes) or request_ is None else json.dumps(request_)
    transient = None if raw is None else raw.encode() if isinstance(raw, str) else raw

    with pytest.raises(Refused) as endorsed:
        client.try_submit(function, transient, *args)
    assert endorsed.value.code == code, endorsed.value.message
    if function not in ("init_network",):
        with pytest.raises(Refused) as evaluated:
            client.evaluate(function, transient, *args)
        assert evaluated.value.code == code, evaluated.value.message
    # A clear message, short, quoting no input.
    message = endorsed.value.message
    assert len(message) < 300
    for filler in ("x", "p", "o"):
        assert filler * 50 not in message

    # Nothing changed, nothing crashed.
    assert _chaincode_pid(network) == server_pid
    assert network.ledger_height(hk) == height
    account = bank["operator"].evaluate("get_account", {"account_id": ACCOUNT})
    assert account["balance"] == BALANCE
    after = bank["operator"].evaluate("get_history", {"account_id": ACCOUNT})["records"]
    assert len(after) == history
    assert not network.unhealthy()


# --------------------------------------------------------------------------- gRPC messages


def _channel(network: TestNetwork, org_name: str, *, max_send: int = 200 << 20) -> grpc.Channel:
    c = network.consortium
    org = c.org(org_name) if org_name != c.orderer_org.name else c.orderer_org
    ca = Path(network.network.tlsca(org.name)).read_bytes()
    endpoint = org.peers[0].endpoint if org.peers else c.ordering.orderers[0].endpoint
    return grpc.secure_channel(
        endpoint, grpc.ssl_channel_credentials(root_certificates=ca),
        options=[("grpc.ssl_target_name_override", "localhost"),
                 ("grpc.max_send_message_length", max_send),
                 ("grpc.max_receive_message_length", 200 << 20)],
    )  # fmt: skip


def _unary(channel: grpc.Channel, method: str, payload: bytes) -> grpc.RpcError:
    call = channel.unary_unary(method)
    with pytest.raises(grpc.RpcError) as failed:
        call(payload, timeout=60)
    return failed.value


def test_bytes_that_are_not_a_message_are_refused_by_the_peer(network: TestNetwork) -> None:
    garbage = b"\xff\xff\xff\xff\xff\x0f" + bytes(range(256)) * 4
    with _channel(network, "hkbank") as channel:
        for method in ("Evaluate", "Endorse", "Submit", "CommitStatus"):
            error = _unary(channel, f"/gateway.Gateway/{method}", garbage)
            assert error.code() is not grpc.StatusCode.OK, method
        error = _unary(channel, "/protos.Endorser/ProcessProposal", garbage)
        assert error.code() is not grpc.StatusCode.OK
    assert not network.unhealthy()


def test_a_proposal_with_a_forged_signature_is_refused(
    network: TestNetwork, bank: dict[str, Client]
) -> None:
    client = bank["operator"]
    proposal = client.contract.new_proposal(
        "get_account", transient_data={"request": json.dumps({"account_id": ACCOUNT}).encode()}
    )
    proposed = gateway_pb2.ProposedTransaction.FromString(proposal.bytes())
    # A DER signature of the right shape that is not the creator's.
    forged = b"\x30\x06\x02\x01\x01\x02\x01\x01"
    signed = proposal_pb2.SignedProposal(
        proposal_bytes=proposed.proposal.proposal_bytes, signature=forged
    )
    request = gateway_pb2.EvaluateRequest(
        transaction_id=proposal.transaction_id, channel_id=network.consortium.channel,
        proposed_transaction=signed,
    )  # fmt: skip
    with _channel(network, "hkbank") as channel:
        error = _unary(channel, "/gateway.Gateway/Evaluate", request.SerializeToString())
    assert error.code() is not grpc.StatusCode.OK
    assert "signature" in (error.details() or "").lower() or "access denied" in (
        error.details() or ""
    ), error.details()
    # The honest, signed proposal works.
    assert client.evaluate("get_account", {"account_id": ACCOUNT})["balance"] == BALANCE


def test_a_message_larger_than_the_peer_accepts_is_refused(network: TestNetwork) -> None:
    request = gateway_pb2.EvaluateRequest(
        transaction_id="big", channel_id=network.consortium.channel,
        proposed_transaction=proposal_pb2.SignedProposal(proposal_bytes=b"\0" * (101 << 20)),
    )  # fmt: skip
    with _channel(network, "hkbank") as channel:
        error = _unary(channel, "/gateway.Gateway/Evaluate", request.SerializeToString())
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert not network.unhealthy()


def test_an_orderer_refuses_an_envelope_that_is_not_one(network: TestNetwork) -> None:
    c = network.consortium
    envelopes = [
        b"\xff\xff\xff\xff\x0f",  # not a protobuf message
        common_pb2.Envelope(payload=b"garbage", signature=b"garbage").SerializeToString(),
    ]
    with _channel(network, c.orderer_org.name) as channel:
        broadcast = channel.stream_stream("/orderer.AtomicBroadcast/Broadcast")
        for envelope in envelopes:
            # Either the stream fails, or the orderer answers with a status other than SUCCESS.
            try:
                replies = list(broadcast(iter([envelope]), timeout=30))
            except grpc.RpcError as exc:
                replies, code = [], exc.code()
            else:
                code = grpc.StatusCode.OK
            statuses = [ab_pb2.BroadcastResponse.FromString(r).status for r in replies]
            if code is grpc.StatusCode.OK:
                assert statuses, "no answer"
            assert common_pb2.SUCCESS not in statuses, statuses
    assert not network.unhealthy()


def test_garbage_on_a_chaincode_servers_stream_does_not_stop_it(
    network: TestNetwork, bank: dict[str, Client]
) -> None:
    """Connect to hkbank's chaincode server as its peer would (mutual TLS with the peer's
    client certificate) and send frames that are not ChaincodeMessages."""
    n = network.network
    peer = network.consortium.org("hkbank").peers[0]
    node = network.node(f"chaincode.{peer.name}")
    pid = node.pid()
    client_dir = n.crypto_dir / "hkbank" / "servers" / "chaincode-client"
    creds = grpc.ssl_channel_credentials(
        root_certificates=Path(n.tlsca("hkbank")).read_bytes(),
        private_key=(client_dir / "server.key").read_bytes(),
        certificate_chain=(client_dir / "server.crt").read_bytes(),
    )
    frames = [b"\xff\xff\xff\xff\x0f", b"\x08\x63" + b"\x00" * 64, b"", bytes(range(256)) * 64]
    with grpc.secure_channel(
        node.endpoint, creds, options=[("grpc.ssl_target_name_override", "localhost")]
    ) as channel:
        connect = channel.stream_stream("/protos.Chaincode/Connect")
        for frame in frames:
            # The server may say REGISTER first; then it must end the stream, not die.
            with contextlib.suppress(grpc.RpcError):
                for _ in connect(iter([frame]), timeout=10):
                    pass
    assert node.pid() == pid
    # The bank's transactions still run on it.
    assert bank["operator"].evaluate("get_account", {"account_id": ACCOUNT})["balance"] == BALANCE


def test_the_gateway_reports_a_refusal_as_an_endorse_error_with_the_code(
    bank: dict[str, Client],
) -> None:
    """What an SDK relies on: the code is in ``chaincode_message``, unwrapped."""
    with pytest.raises(Refused) as refused:
        bank["minter"].try_submit("mint", json.dumps(_ok_mint(amount=-1)).encode())
    assert isinstance(refused.value.error, fabgateway.EndorseError)
    assert refused.value.error.chaincode_status == 500
    assert refused.value.message.startswith("INVALID_AMOUNT: ")
