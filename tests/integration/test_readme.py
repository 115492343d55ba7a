"""Issue 8 item 2: every command in README.md works as written.

The test extracts every fenced ``bash`` block after the first one (the first holds
``scripts/demo`` and ``scripts/test``, which take minutes and are what runs this) and runs
them, in order, in one ``bash`` (``set -euo pipefail``), from the repository's root, as a
reader pastes them into one terminal. They run against a network of this module's own (the
README's blocks stop and restart it, and bring a second network up and purge it), on
``DTOKEN_TEST_BASE_PORT + 900``: ``DTOKEN_CONFIG`` and ``DTOKEN_STATE_DIR`` point every
``dtoken`` command at it, ``TMPDIR`` keeps the files the blocks write inside the test's folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import TestNetwork, consortium_variant
from harness.network import REPO_ROOT

README = REPO_ROOT / "README.md"
BASE_PORT = int(os.environ.get("DTOKEN_TEST_BASE_PORT", "7400")) + 900
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def bash_blocks() -> list[str]:
    return [body for lang, body in _FENCE.findall(README.read_text()) if lang == "bash"]


def test_the_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    first = _FENCE.search(text)
    assert first is not None
    assert text[: first.start()].strip().startswith("# ")  # only the title before it
    commands = [line.split("#")[0].strip() for line in first.group(2).splitlines()]
    assert commands == ["scripts/demo", "scripts/test"]


def test_every_relative_link_of_the_readme_exists() -> None:
    for target in _LINK.findall(README.read_text()):
        if "://" not in target:
            assert (REPO_ROOT / target).exists(), target


@pytest.fixture(scope="module")
def readme_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNetwork]:
    root = tmp_path_factory.mktemp("readme")
    config = consortium_variant(root / "consortium.yaml", name="readme", base_port=BASE_PORT)
    net = TestNetwork(config, root / "state", lambda m: print(m, file=sys.stderr, flush=True))
    try:
        net.up()
        yield net
    finally:
        net.down(purge=True)


def test_every_bash_block_after_the_first_runs_as_written(
    readme_network: TestNetwork, tmp_path: Path
) -> None:
    blocks = bash_blocks()[1:]
    assert len(blocks) >= 4, "the tour, the SDK, operating the network, adding a bank"
    script = ["set -euo pipefail"]
    for n, block in enumerate(blocks, start=1):
        script += [f"echo '### README block {n}'", block]
    env = {
        **os.environ,
        "DTOKEN_CONFIG": str(readme_network.consortium.source),
        "DTOKEN_STATE_DIR": str(readme_network.state_dir),
        "TMPDIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    try:
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)], cwd=REPO_ROOT, env=env,
            capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
    finally:
        four = tmp_path / "fourbanks"  # the "Adding a bank" network, if a block stopped early
        if four.exists() and (tmp_path / "fourbanks.yaml").exists():
            TestNetwork(tmp_path / "fourbanks.yaml", four, lambda m: None).down(purge=True)
    out = done.stdout
    last = out.rsplit("### README block ", 1)[-1].split("\n", 1)[0] if "###" in out else "?"
    assert done.returncode == 0, (
        f"README block {last} failed (exit {done.returncode}):\n"
        f"{out[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    )
    assert out.count("### README block ") == len(blocks)
    # What the tour says each step shows.
    assert "accepted " in out  # usbank's listener decided the payment
    assert out.count("120.00 USD") >= 3  # the seller's balance, before and after the restart
    assert "2,380.00 USD" in out  # the shop's
    assert "refused: not cnbank's to see" in out
    assert "refused: frozen by the regulator" in out
    assert "audit: OK" in out
    assert "audit ok: True" in out  # the SDK's part
    assert "shop: 6,000.00 CNH · makers: 1,500.00 CNH, 2,500.00 CNH" in out
    assert "opened account" in out  # sgbank's, on the four-bank network
    assert "sgbank SGD supply 0.00 SGD" in out
    assert not (tmp_path / "fourbanks").exists()  # purged
    assert readme_network.unhealthy() == []  # down and up again: the network is back
