"""Property and fuzz tests of the ``dtoken`` command line (issue 6, item 4), no network.

* Any argv built from the CLI's own words, options and hostile values: the parser either
  parses it or exits with code 2 (argparse), never a traceback.
* The bank commands, run for real (``dtoken.cli.main``) against a real connection profile
  whose peer is not listening: every run ends with a documented exit code (0, 2 bad usage,
  3 network fault, 4 refused), with a one-line message, and no exception escapes.
* ``network status`` on a fuzzed consortium file: exit 2, naming the file; nothing starts.

Commands that start or serve something (``network up``, ``watch``, ``dashboard``,
``network generate``) are left out: they are exercised by their own tests.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml
from consortium import config as config_mod
from consortium import identities
from consortium.network import Network
from dtoken import cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DEFAULT_CONFIG = Path(__file__).parents[2] / "config" / "consortium.yaml"
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HOSTILE = ["", "-", "--", "-1", "0", "1e309", "NaN", "1,2,3 USD", "99999999999999999999999 USD",
           "1.005 USD", "\x00", "é" * 3, "A" * 300, "../../etc/passwd", "--json", "hkbank",
           "usbank", "regulator", "nobody", "USD", "XXX", "acct-" + "x" * 20, "BANK:ACCT:1",
           "::", "k=v", "=", "1250.00", "-5.00 USD"]  # fmt: skip
BANK_COMMANDS = [
    ["account", "open"], ["account", "list"], ["account", "show"], ["mint"], ["burn"],
    ["transfer"], ["payout"], ["accept"], ["reject"], ["refund"], ["balance"], ["history"],
    ["supply"], ["obligations"], ["settle"], ["incoming"], ["outgoing"], ["freeze"], ["audit"],
    ["identity", "issue"], ["status"],
]  # fmt: skip
OPTIONS = ["--currency", "--owner", "--reference", "--single-limit", "--daily-limit",
           "--to-bank", "--remittance", "--originator", "--ttl", "--pay", "--from-bank",
           "--reason", "--limit", "--of-bank", "--with", "--debtor", "--rtgs-reference",
           "--unfreeze", "--close", "--hold", "--release", "--name", "--role", "--json",
           "--identity", "--bank"]  # fmt: skip
words = st.sampled_from(HOSTILE + OPTIONS) | st.text(max_size=12)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder with real crypto and profiles, for a network that is not running
    (its ports are ones nothing listens on)."""
    root = tmp_path_factory.mktemp("cli")
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["base_port"] = 61000
    cfg = root / "consortium.yaml"
    cfg.write_text(yaml.safe_dump(data))
    net = Network(config_mod.load(cfg), root / "state", progress=lambda _m: None)
    identities.ensure_crypto(net.consortium, net.layout)
    net.profiles.write_all()
    return root


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


@SETTINGS
@given(argv=st.lists(words, max_size=8))
def test_any_argv_parses_or_exits_2(argv: list[str]) -> None:
    parser = cli.build_parser()
    code = 0
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else -1
    assert code in (0, 2), code


@SETTINGS
@given(command=st.sampled_from(BANK_COMMANDS), rest=st.lists(words, max_size=6),
       bank=st.sampled_from(["hkbank", "usbank", "regulator"]))  # fmt: skip
def test_bank_commands_end_with_a_documented_exit_code(
    state: Path, command: list[str], rest: list[str], bank: str
) -> None:
    argv = ["--state-dir", str(state / "state"), "--bank", bank, *command, *rest]
    code, err = _run(argv)
    assert code in (cli.EXIT_OK, cli.EXIT_USAGE, cli.EXIT_FAULT, cli.EXIT_CONTRACT), (code, err)
    assert "Traceback" not in err
    if code == cli.EXIT_FAULT:
        assert err.strip(), "a network fault without a message"


@SETTINGS
@given(text=st.text(max_size=200))
def test_network_status_on_a_fuzzed_consortium_file_exits_2_naming_it(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    root = tmp_path_factory.mktemp("status")
    cfg = root / "consortium.yaml"
    cfg.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, err = _run(["network", "--config", str(cfg), "--state-dir", str(root / "s"), "status"])
    assert code == cli.EXIT_USAGE, (code, err)
    assert str(cfg) in err
    assert "Traceback" not in err
    assert not (root / "s").exists()


ACCOUNT = "acct-" + "x" * 20


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["mint", ACCOUNT, "1,2,3 USD", "--reference", "r1"], cli.EXIT_USAGE),
        (["mint", ACCOUNT, "-5.00 USD", "--reference", "r1"], cli.EXIT_USAGE),
        (["mint", ACCOUNT, "1.005 USD", "--reference", "r1"], cli.EXIT_USAGE),
        (["mint", ACCOUNT, "1e309 USD", "--reference", "r1"], cli.EXIT_USAGE),
        (["transfer", ACCOUNT, ACCOUNT, "NaN", "--reference", "r2"], cli.EXIT_USAGE),
        # These two are checked after the account's currency is read (the peer is down here).
        (["transfer", ACCOUNT, ACCOUNT, "5.00 USD", "--reference", "R" * 300],
         (cli.EXIT_USAGE, cli.EXIT_FAULT)),
        (["payout", ACCOUNT, "--pay", "::", "--reference", "r3"],
         (cli.EXIT_USAGE, cli.EXIT_FAULT)),
        (["transfer", ACCOUNT, ACCOUNT, "5.00 USD", "--reference", "r4", "--originator", "="],
         cli.EXIT_USAGE),
        (["--identity", "nobody", "audit"], cli.EXIT_USAGE),
        (["balance", ACCOUNT], cli.EXIT_FAULT),  # a well-formed read: the peer is down
    ],
)  # fmt: skip
def test_hostile_values_are_refused_before_anything_is_sent(
    state: Path, argv: list[str], code: int | tuple[int, ...]
) -> None:
    got, err = _run(["--state-dir", str(state / "state"), "--bank", "hkbank", *argv])
    assert got in (code if isinstance(code, tuple) else (code,)), err
    assert "Traceback" not in err
    assert err.strip(), "no message"
    assert len(err.strip().splitlines()) <= 3, err
