"""The consortium file: the default loads, and every kind of mistake is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from consortium import config
from consortium.config import OrgKind
from consortium.errors import ConfigError

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"


def default_data() -> dict[str, Any]:
    return dict(yaml.safe_load(DEFAULT.read_text()))


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "consortium.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_default_consortium_has_three_banks_regulator_and_three_orderers() -> None:
    c = config.load(DEFAULT)
    assert [b.name for b in c.banks] == ["hkbank", "usbank", "cnbank"]
    assert {b.jurisdiction for b in c.banks} == {"HK", "US", "CN"}
    assert c.regulator is not None
    assert c.regulator.kind is OrgKind.REGULATOR
    assert len(c.ordering.orderers) == 3
    assert all(b.currencies for b in c.banks)


def test_ports_are_derived_from_base_port_and_never_collide() -> None:
    c = config.load(DEFAULT)
    ports: list[int] = []
    for o in c.ordering.orderers:
        ports += [o.port, o.admin_port, o.operations_port]
    for p in c.peers:
        ports += [p.port, p.chaincode_listen_port, p.operations_port, p.chaincode_server_port]
    assert len(ports) == len(set(ports))
    assert min(ports) == c.base_port
    assert c.ordering.orderers[0].port == c.base_port


def test_two_peers_per_bank(tmp_path: Path) -> None:
    data = default_data()
    data["banks"][0]["peers"] = 2
    c = config.load(write(tmp_path, data))
    assert [p.name for p in c.banks[0].peers] == [
        "peer0.hkbank.dtoken.example",
        "peer1.hkbank.dtoken.example",
    ]


def test_regulator_can_be_turned_off(tmp_path: Path) -> None:
    data = default_data()
    data["regulator"]["enabled"] = False
    c = config.load(write(tmp_path, data))
    assert c.regulator is None
    assert [o.kind for o in c.application_orgs] == [OrgKind.BANK] * 3


def test_adding_a_bank_is_adding_a_block(tmp_path: Path) -> None:
    data = default_data()
    data["banks"].append(
        {"name": "sgbank", "msp_id": "LionCityMSP", "jurisdiction": "SG", "currencies": ["USD"]}
    )
    c = config.load(write(tmp_path, data))
    assert c.banks[-1].name == "sgbank"
    assert c.banks[-1].peers[0].port > c.banks[-2].peers[0].port


SGBANK = {"name": "sgbank", "msp_id": "LionCityMSP", "jurisdiction": "SG", "currencies": ["USD"]}


def test_a_joined_bank_moves_no_running_node_port(tmp_path: Path) -> None:
    before = config.load(DEFAULT)
    data = default_data()
    data["joined_banks"] = [SGBANK]
    after = config.load(write(tmp_path, data))
    assert [b.name for b in after.banks] == ["hkbank", "usbank", "cnbank", "sgbank"]
    assert [b.name for b in after.joined_banks] == ["sgbank"]
    assert after.founding_banks == before.banks
    assert after.regulator == before.regulator  # its ports did not move
    new_ports = {after.banks[-1].peers[0].port}
    old_ports = {p.port for p in before.peers}
    assert max(old_ports) < min(new_ports)
    assert after.application_orgs[-1].name == "regulator"  # the channel's org order is kept


def test_a_joined_bank_is_checked_like_any_bank(tmp_path: Path) -> None:
    data = default_data()
    data["joined_banks"] = [{**SGBANK, "msp_id": data["banks"][0]["msp_id"]}]
    with pytest.raises(ConfigError, match="used twice"):
        config.load(write(tmp_path, data))
    data["joined_banks"] = [{**SGBANK, "currencies": ["EUR"]}]
    with pytest.raises(ConfigError, match=r"joined_banks\[0\]\.currencies"):
        config.load(write(tmp_path, data))


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (lambda d: d.pop("channel"), "channel", "is required"),
        (lambda d: d.update(base_port="7100"), "base_port", "must be int"),
        (lambda d: d.update(base_port=80), "base_port", "out of range"),
        (lambda d: d["banks"][1].update(name="US Bank"), "banks[1].name", "does not match"),
        (lambda d: d["banks"][0].update(currencies=["EUR"]), "banks[0].currencies", "'EUR'"),
        (
            lambda d: d["banks"][2].update(msp_id=d["banks"][0]["msp_id"]),
            "cnbank.msp_id",
            "used twice",
        ),
        (lambda d: d["banks"][0].update(peers=0), "banks[0].peers", "out of range"),
        (lambda d: d["banks"][0].update(colour="blue"), "banks[0].colour", "unknown field"),
        (lambda d: d["ordering"].update(orderers=True), "ordering.orderers", "integer"),
        (lambda d: d["currencies"].update(USD=2.5), "currencies.USD", "decimals"),
        (lambda d: d.update(banks=[]), "banks", "at least one bank"),
        (lambda d: d["banks"][0].update(host="not a host!"), "banks[0].host", "neither"),
    ],
)
def test_mistakes_are_named_with_file_field_and_problem(
    tmp_path: Path, mutate: Any, field: str, problem: str
) -> None:
    data = default_data()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message
    assert problem in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        config.load(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(write(tmp_path, "banks: [unclosed"))
    with pytest.raises(ConfigError, match="mapping at the top level"):
        config.load(write(tmp_path, "- just\n- a list\n"))
