"""The tree's static checks, run by the suite so that CI refuses what a reviewer would.

``mypy --strict`` over every package, ``ruff`` over the tree, and import-linter's contracts
(layering, the SDK never importing the bootstrap or the chaincode, the wire package importing
nothing). Each check runs the tool the developer runs, from the project's root, with the
configuration in ``pyproject.toml``; a failure prints the tool's own report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages: list[str] = config["tool"]["importlinter"]["root_packages"]
    return packages


def _run(tool: str, *args: str) -> None:
    exe = BIN / tool
    if not exe.exists():
        found = shutil.which(tool)
        if found is None:
            pytest.fail(f"{tool} is not installed: it is a dev tool of pyproject.toml")
        exe = Path(found)
    done = subprocess.run(
        [str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{tool} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def test_mypy_strict_over_every_package() -> None:
    args: list[str] = []
    for package in _packages():
        args += ["-p", package]
    _run("mypy", *args)


def test_ruff_over_the_tree() -> None:
    _run("ruff", "check", ".")


def test_import_contracts() -> None:
    _run("lint-imports")
