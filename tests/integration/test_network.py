"""Issue 2 on the real network: healthy nodes, the CLI, idempotent up, restarts keep data."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from consortium.chaincodes import registry, registry_argument
from harness import TestNetwork, consortium_variant
from harness.network import DEFAULT_CONFIG

DTOKEN = [sys.executable, "-m", "dtoken.cli"]


def dtoken(*args: str, config: Path, state: Path) -> subprocess.CompletedProcess[str]:
    # The test chaincodes, then the run's own PYTHONPATH: the chaincode servers ``up``
    # restarts must run the code under test (a worktree's), as the ones the session started.
    path = [str(Path(__file__).parents[1] / "chaincodes")]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return subprocess.run(
        [*DTOKEN, "network", "--config", str(config), "--state-dir", str(state), *args],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
    )  # fmt: skip


def test_every_node_is_healthy_and_status_json_lists_what_the_sdk_needs(
    network: TestNetwork,
) -> None:
    status = dtoken("status", "--json", config=network.consortium.source, state=network.state_dir)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["state_dir"] == str(network.state_dir)
    assert data["channel"] == network.consortium.channel
    assert data["chaincode"] == network.consortium.chaincode.name
    kinds = {o["name"]: o["kind"] for o in data["orgs"]}
    assert kinds == {"ordering": "orderer", "hkbank": "bank", "usbank": "bank",
                     "cnbank": "bank", "regulator": "regulator"}  # fmt: skip
    for org in data["orgs"]:
        assert Path(org["admin"]["cert"]).is_file()
        assert Path(org["admin"]["key"]).is_file()
        assert Path(org["admin"]["msp_dir"]).is_dir()
        for peer in org["peers"]:
            assert peer["healthy"], peer
            assert peer["chaincode_server"]["running"], peer
            assert Path(peer["tls_ca_cert"]).is_file()
        if org["kind"] != "orderer":
            profile = json.loads(Path(org["connection_profile"]).read_text())
            assert profile["msp_id"] == network.consortium.org(org["name"]).msp_id
            assert profile["gateway"]["endpoint"] == org["peers"][0]["endpoint"]
            assert Path(profile["gateway"]["tls_ca_cert"]).is_file()
            assert profile["channel"] == data["channel"]
    assert len(data["orderers"]) == 3
    for orderer in data["orderers"]:
        assert orderer["healthy"], orderer
        assert orderer["admin_endpoint"] != orderer["endpoint"]
    table = dtoken("status", config=network.consortium.source, state=network.state_dir)
    assert table.returncode == 0
    assert "DOWN" not in table.stdout
    assert "peer0.hkbank" in table.stdout


def test_up_on_a_healthy_network_changes_nothing(network: TestNetwork) -> None:
    bank = network.bank(0)
    height = network.ledger_height(bank)
    pids = {n.name: n.pid() for n in network.nodes()}
    again = dtoken("up", config=network.consortium.source, state=network.state_dir)
    assert again.returncode == 0, again.stderr
    assert {n.name: n.pid() for n in network.nodes()} == pids
    assert network.ledger_height(bank) == height


def test_up_restarts_a_node_that_died(network: TestNetwork) -> None:
    peer = network.node(network.consortium.banks[1].peers[0].name)
    network.kill(peer)
    assert not peer.healthy()
    result = dtoken("up", config=network.consortium.source, state=network.state_dir)
    assert result.returncode == 0, result.stderr
    assert peer.healthy()


def test_a_config_with_a_mistake_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    banks = yaml.safe_load(DEFAULT_CONFIG.read_text())["banks"]
    banks[1]["currencies"] = ["USD", "EUR"]
    bad = consortium_variant(tmp_path / "bad.yaml", name="badnet", base_port=7900, banks=banks)
    state = tmp_path / "state"
    result = dtoken("up", config=bad, state=state)
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "banks[1].currencies" in result.stderr
    assert "'EUR'" in result.stderr
    assert not state.exists()


def test_a_bank_issues_a_client_identity_with_roles_from_the_cli(network: TestNetwork) -> None:
    result = dtoken(
        "identity", "issue", "--org", "usbank", "--name", "treasury-bot",
        "--attr", "operator=true", "--attr", "minter=true",
        config=network.consortium.source, state=network.state_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    assert issued["msp_id"] == network.consortium.org("usbank").msp_id
    profile = network.profile(network.consortium.org("usbank"))
    listed = profile["identities"]["treasury-bot"]
    assert listed["cert"] == issued["cert"]
    assert listed["attributes"]["minter"] == "true"
    assert listed["attributes"]["operator"] == "true"
    assert listed["attributes"]["hf.EnrollmentID"] == "treasury-bot"
    refused = dtoken(
        "identity", "issue", "--org", "usbank", "--name", "x", "--attr", "minter",
        config=network.consortium.source, state=network.state_dir,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "NAME=VALUE" in refused.stderr


def _transient(request: dict[str, object]) -> str:
    raw = json.dumps(request).encode()
    return json.dumps({"request": base64.b64encode(raw).decode()})


def _as(network: TestNetwork, org_name: str, identity: str) -> dict[str, str]:
    """Environment for the peer CLI acting as one of the org's identities."""
    profile = network.profile(network.consortium.org(org_name))
    return {"CORE_PEER_MSPCONFIGPATH": profile["identities"][identity]["msp_dir"]}


def test_fabric_peer_cli_invokes_and_queries_the_python_chaincode(network: TestNetwork) -> None:
    """Fabric's own CLI, as identities listed by status --json, against our chaincode."""
    c = network.consortium
    hk = c.org("hkbank")
    status = json.loads(
        dtoken("status", "--json", config=c.source, state=network.state_dir).stdout
    )
    admin = next(o for o in status["orgs"] if o["name"] == "hkbank")["admin"]
    query = network.peer_cli(
        hk,
        ["chaincode", "query", "-C", c.channel, "-n", network.namespace("hkbank"),
         "-c", '{"Args":["get_registry"]}'],
        env={"CORE_PEER_MSPCONFIGPATH": admin["msp_dir"]},
    )  # fmt: skip
    registry = json.loads(query.stdout)
    assert {b["msp_id"] for b in registry["banks"]} == {b.msp_id for b in c.banks}

    account = {"reference": "cli-open-1", "currency": "HKD", "owner_ref": "cust-cli-1",
               "account_id": "acct-cli-000000000000001"}  # fmt: skip
    network.peer_cli(
        hk,
        ["chaincode", "invoke", *network.orderer_args(), "-C", c.channel,
         "-n", network.namespace("hkbank"),
         "-c", '{"Args":["open_account"]}', "--transient", _transient(account),
         *network.peer_targets([hk]), "--waitForEvent"],
        env=_as(network, "hkbank", "operator"),
    )  # fmt: skip
    shown = _get_account(network, "acct-cli-000000000000001")
    assert shown["balance"] == 0
    assert shown["currency"] == "HKD"
    # Another bank's peer is not a member of hkbank's collection: refused (its own
    # namespace's chaincode, the only one its peer runs under the layout).
    refused = network.peer_cli(
        c.org("usbank"),
        ["chaincode", "query", "-C", c.channel, "-n", network.namespace("usbank"),
         "-c", '{"Args":["get_account"]}',
         "--transient", _transient({"account_id": "acct-cli-000000000000001", "bank": "hkbank"})],
        env=_as(network, "usbank", "operator"), check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "NOT_AUTHORIZED" in refused.stderr or "WRONG_ENDORSER" in refused.stderr


def test_init_network_is_refused_to_all_but_an_admin_with_the_agreed_registry(
    network: TestNetwork,
) -> None:
    """The network came up through init_network with the pinned argument (every server has the
    pin: get_registry answers above); afterwards, a bank's client identity is refused, an admin
    with another registry is refused by the hash check, and the agreed one is already done."""
    c = network.consortium
    hk = c.org("hkbank")
    status = json.loads(dtoken("status", "--json", config=c.source, state=network.state_dir).stdout)
    admin = next(o for o in status["orgs"] if o["name"] == "hkbank")["admin"]
    agreed = registry_argument(c)
    rogue = json.dumps({**registry(c), "regulator_msp_id": None})

    # Under the layout each organization initialises its own namespace, endorsed by its peer.
    namespace = network.namespace("hkbank")
    endorsers = list(c.banks) if network.layout == "single" else [hk]

    def attempt(argument: str, env: dict[str, str]) -> str:
        ctor = json.dumps({"Args": ["init_network", argument]})
        out = network.peer_cli(
            hk,
            ["chaincode", "invoke", *network.orderer_args(), "-C", c.channel,
             "-n", namespace, "-c", ctor, *network.peer_targets(endorsers),
             "--waitForEvent"],
            env=env, check=False,
        )  # fmt: skip
        assert out.returncode != 0, out.stdout
        return out.stderr

    as_admin = {"CORE_PEER_MSPCONFIGPATH": admin["msp_dir"]}
    # A client with every role but no admin NodeOU (read from its real certificate).
    assert "NOT_AUTHORIZED: init_network needs an administrator" in attempt(
        agreed, _as(network, "hkbank", "operator"))
    # The bank's admin, with a registry its operator did not pin (no regulator).
    refused = attempt(rogue, as_admin)
    assert "NOT_AUTHORIZED: the registry is not the one" in refused
    assert hashlib.sha256(rogue.encode()).hexdigest() not in refused
    # The agreed registry, by an admin: it ran already (the bootstrap's own call).
    assert "ALREADY_INITIALIZED" in attempt(agreed, as_admin)
    query = network.peer_cli(
        hk, ["chaincode", "query", "-C", c.channel, "-n", namespace,
             "-c", '{"Args":["get_registry"]}'], env=as_admin,
    )  # fmt: skip
    assert json.loads(query.stdout)["regulator_msp_id"] == registry(c)["regulator_msp_id"]


def _get_account(network: TestNetwork, account_id: str) -> dict[str, object]:
    c = network.consortium
    out = network.peer_cli(
        c.org("hkbank"),
        ["chaincode", "query", "-C", c.channel, "-n", network.namespace("hkbank"),
         "-c", '{"Args":["get_account"]}', "--transient", _transient({"account_id": account_id})],
        env=_as(network, "hkbank", "operator"),
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def test_down_then_up_brings_the_same_ledger_back(network: TestNetwork) -> None:
    c = network.consortium
    hk = c.org("hkbank")
    account = {"reference": "restart-1", "currency": "USD", "owner_ref": "cust-restart",
               "account_id": "acct-restart-00000000001"}  # fmt: skip
    network.peer_cli(
        hk,
        ["chaincode", "invoke", *network.orderer_args(), "-C", c.channel,
         "-n", network.namespace("hkbank"),
         "-c", '{"Args":["open_account"]}', "--transient", _transient(account),
         *network.peer_targets([hk]), "--waitForEvent"],
        env=_as(network, "hkbank", "operator"),
    )  # fmt: skip
    height = network.ledger_height(hk)
    stopped = network.down()
    assert len(stopped) == len(network.nodes())
    assert all(n.pid() is None for n in network.nodes())
    result = dtoken("up", config=c.source, state=network.state_dir)
    assert result.returncode == 0, result.stderr
    assert all(n.healthy() for n in network.nodes())
    assert network.ledger_height(hk) == height
    assert _get_account(network, "acct-restart-00000000001")["currency"] == "USD"
