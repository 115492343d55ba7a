"""Issue 12: every distribution builds a wheel that passes ``twine check``, and a bank that
installs only the SDK's wheel can pay across banks.

The wheels are built (``python -m build --wheel``) from a copy of each distribution's folder,
so no build artefact lands in the tree. The SDK's wheel is installed into a fresh venv with
the fabgateway and dtoken-wire wheels as its only project dependencies (the rest comes from
the package index, or pip's cache); nothing of the network tooling or the chaincode is
importable there, nor PyYAML. Its ``dtoken`` command, pointed at the session network's
profiles folder with ``--profiles``, then opens accounts at two banks, mints, pays across
banks, accepts the payment as the payee bank and reads both balances.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from harness import TestNetwork
from harness.network import REPO_ROOT
from packaging.requirements import Requirement

#: distribution -> (its folder, the top-level packages its wheel holds)
DISTRIBUTIONS: dict[str, tuple[str, set[str]]] = {
    "dtoken-wire": ("chaincode-client/wire", {"dtoken_wire"}),
    "fabgateway": ("chaincode-client/gateway", {"fabgateway"}),
    "dtoken": ("chaincode-client/sdk", {"dtoken"}),
    "fabshim": ("chaincode/shim", {"fabshim"}),
    "dtoken-chaincode": ("chaincode/server", {"fabcontract", "deposit_token"}),
    "dtoken-network": ("network", {"consortium"}),
}
#: what the bank installs: the SDK and its project dependencies, nothing else of the project
BANK_WHEELS = ("dtoken", "fabgateway", "dtoken-wire")
NOT_FOR_BANKS = ("consortium", "fabshim", "fabcontract", "deposit_token", "yaml")
RUN = secrets.token_hex(3)


def _run(argv: list[str | Path], timeout: float = 300, **kwargs: Any) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, check=False, **kwargs)
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every distribution's wheel, built from a clean copy of its folder."""
    root = tmp_path_factory.mktemp("wheels")
    out = root / "dist"
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name, (folder, _) in DISTRIBUTIONS.items():
        top = REPO_ROOT / folder

        def ignore(where: str, names: list[str], top: Path = top) -> set[str]:
            outputs = {"build", "dist"} & set(names) if Path(where) == top else set()
            return set(junk(where, names)) | outputs  # a local build's leftovers stay out

        source = root / "src" / name
        shutil.copytree(top, source, ignore=ignore)
        # --no-isolation: the build backend of the dev tools (setuptools), no download
        _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out,
              source])
    found: dict[str, Path] = {}
    for wheel in out.glob("*.whl"):
        found[wheel.name.split("-")[0].replace("_", "-")] = wheel
    assert set(found) == set(DISTRIBUTIONS)
    return found


def _wheel_metadata(wheel: Path) -> tuple[set[str], list[str], str]:
    """(top-level names, Requires-Dist lines, the METADATA text) of a wheel."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(meta_name).decode()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    return tops, requires, metadata


def test_every_wheel_holds_its_packages_and_passes_twine_check(wheels: dict[str, Path]) -> None:
    _run([sys.executable, "-m", "twine", "check", "--strict", *wheels.values()])
    for name, wheel in wheels.items():
        tops, _, metadata = _wheel_metadata(wheel)
        assert tops == DISTRIBUTIONS[name][1], (name, tops)
        assert "License-Expression: Apache-2.0" in metadata
        assert "Description-Content-Type: text/markdown" in metadata
        with zipfile.ZipFile(wheel) as z:
            for package in tops:
                assert f"{package}/py.typed" in z.namelist(), (name, package)
    requirement = {name: [Requirement(r).name for r in _wheel_metadata(w)[1]]
                   for name, w in wheels.items()}
    assert requirement["dtoken-wire"] == []
    assert set(requirement["dtoken"]) & set(DISTRIBUTIONS) == {"fabgateway", "dtoken-wire"}
    assert "PyYAML" not in requirement["dtoken"]
    assert set(requirement["fabgateway"]) & set(DISTRIBUTIONS) == set()
    assert set(requirement["fabshim"]) & set(DISTRIBUTIONS) == set()
    assert set(requirement["dtoken-chaincode"]) & set(DISTRIBUTIONS) == {"fabshim", "dtoken-wire"}
    with zipfile.ZipFile(wheels["dtoken"]) as z:  # the dashboard's page is package data
        assert any(n.startswith("dtoken/dashboard/static/") for n in z.namelist())
    with zipfile.ZipFile(wheels["dtoken-network"]) as z:  # so are the builder and the pin
        names = set(z.namelist())
        assert {"consortium/ccaas_builder/bin/build", "consortium/fabric_build/go.mod",
                "consortium/fabric_build/go.sum"} <= names
        entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        assert "[dtoken.commands]\nnetwork = consortium.commands:plugin" in entry_points


@pytest.fixture(scope="module")
def bank_venv(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the SDK's wheel and its two project dependencies' wheels only."""
    venv = tmp_path_factory.mktemp("bank") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    # This venv's pip installs into the new one (--python): no pip of its own to bootstrap.
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
          "--disable-pip-version-check", *(wheels[name] for name in BANK_WHEELS)], timeout=600)
    return venv


def _bank_env(tmp: Path) -> dict[str, str]:
    """The environment of a bank's machine: nothing points at this repository."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DTOKEN_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HOME"] = str(tmp)
    return env


def test_the_sdk_installs_alone(bank_venv: Path, tmp_path: Path) -> None:
    python = bank_venv / "bin" / "python"
    listed = json.loads(_run([sys.executable, "-m", "pip", "--python", python, "list",
                              "--format", "json", "--disable-pip-version-check"]))
    project = {p["name"] for p in listed} & set(DISTRIBUTIONS)
    assert project == set(BANK_WHEELS)
    env = _bank_env(tmp_path)
    # dtoken.dashboard: its web server (starlette, uvicorn) comes with the wheel's dependencies
    probe = ("import importlib.util, json, dtoken, dtoken.dashboard, fabgateway, dtoken_wire; "
             f"print(json.dumps({{n: importlib.util.find_spec(n) is not None "
             f"for n in {list(NOT_FOR_BANKS)!r}}})); print(dtoken.__file__)")
    found, where = _run([python, "-c", probe], env=env, cwd=tmp_path).splitlines()
    assert json.loads(found) == dict.fromkeys(NOT_FOR_BANKS, False)
    assert Path(where.strip()).is_relative_to(bank_venv)  # the wheel's copy, not the tree's
    usage = _run([bank_venv / "bin" / "dtoken", "--help"], env=env, cwd=tmp_path)
    assert "transfer" in usage
    assert "network" not in usage.split("positional arguments:")[1].split("options:")[0]


def test_a_cross_bank_payment_with_the_sdk_wheel_alone(
    bank_venv: Path, network: TestNetwork, tmp_path: Path
) -> None:
    env = _bank_env(tmp_path)
    profiles = network.state_dir / "profiles"

    def dtoken(bank: str, *args: str) -> Any:
        out = _run([bank_venv / "bin" / "dtoken", "--profiles", profiles, "--bank", bank,
                    "--json", *args], timeout=120, env=env, cwd=tmp_path)
        return json.loads(out)

    shop = dtoken("hkbank", "account", "open", "--currency", "USD", "--owner",
                  f"WHEEL-SHOP-{RUN}")["account_id"]
    dtoken("hkbank", "mint", shop, "250.00 USD", "--reference", f"wheel-dep-{RUN}")
    seller = dtoken("usbank", "account", "open", "--currency", "USD", "--owner",
                    f"WHEEL-SELLER-{RUN}")["account_id"]
    sent = dtoken("hkbank", "transfer", shop, seller, "120.00 USD", "--to-bank", "usbank",
                  "--reference", f"wheel-pay-{RUN}", "--remittance", "INV-W1")
    assert sent["kind"] == "cross_bank", sent
    deadline = time.monotonic() + 60  # the payee's peer commits the block a moment later
    while sent["transfer_id"] not in {t["transfer_id"] for t in dtoken("usbank", "incoming")}:
        assert time.monotonic() < deadline, "usbank never saw the payment"
        time.sleep(0.5)
    dtoken("usbank", "accept", sent["transfer_id"], "--from-bank", "hkbank")
    assert dtoken("usbank", "balance", seller)["balance"]["minor"] == 12_000
    assert dtoken("hkbank", "balance", shop)["balance"]["minor"] == 13_000
