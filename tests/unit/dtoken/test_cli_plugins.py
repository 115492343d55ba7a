"""How the bank CLI finds its organization's profile, and the operator commands it mounts
through the ``dtoken.commands`` entry points (never by importing the network tooling)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from dtoken import plugins
from dtoken.cli import EXIT_USAGE, build_parser, main, profiles_dir
from dtoken.errors import UsageError
from unit.dtoken.conftest import write_profile

ENV = ("DTOKEN_PROFILES", "DTOKEN_STATE_DIR", "DTOKEN_CONFIG")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no config/consortium.yaml here: no default network


def _args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"profiles": None, "bank_state_dir": None, **given})


def test_the_profiles_folder_comes_from_flags_then_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DTOKEN_STATE_DIR", str(tmp_path / "env-state"))
    assert profiles_dir(_args()) == tmp_path / "env-state" / "profiles"
    monkeypatch.setenv("DTOKEN_PROFILES", str(tmp_path / "env-profiles"))
    assert profiles_dir(_args()) == tmp_path / "env-profiles"
    assert profiles_dir(_args(bank_state_dir=tmp_path / "s")) == tmp_path / "s" / "profiles"
    assert profiles_dir(_args(profiles=tmp_path / "p", bank_state_dir=tmp_path / "s")) == (
        tmp_path / "p"
    )


def test_without_a_network_here_the_cli_asks_for_a_profile(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The network tooling is installed (editable) but no consortium file is here: its
    plugin names no default, and the CLI says how to name a profile."""
    assert profiles_dir(_args()) is None
    assert main(["--bank", "hkbank", "balance", "A" * 22]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--profile FILE" in err
    assert "$DTOKEN_PROFILES" in err


def test_profiles_given_by_folder_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = write_profile(tmp_path / "state")  # <state>/profiles/hkbank.json
    folder = profile.parent
    for argv in (["--profiles", str(folder)], ["--state-dir", str(folder.parent)]):
        assert main([*argv, "balance", "A" * 22]) == EXIT_USAGE
        assert f"profiles in {folder}: hkbank" in capsys.readouterr().err
    monkeypatch.setenv("DTOKEN_PROFILES", str(folder))
    assert main(["--bank", "cnbank", "balance", "A" * 22]) == EXIT_USAGE
    assert f"no connection profile for 'cnbank' at {folder / 'cnbank.json'}" in (
        capsys.readouterr().err
    )


def test_the_network_tooling_is_mounted_through_its_entry_point() -> None:
    names = {p.name: p for p in plugins.plugins()}
    assert names["network"].source == "consortium.commands:plugin"
    parser = build_parser()
    assert parser.parse_args(["network", "status"]).network_command == "status"
    issue = parser.parse_args(["--bank", "usbank", "identity", "issue", "--name", "t",
                               "--role", "minter", "--json"])
    assert (issue.bank, issue.role, issue.json) == ("usbank", ["minter"], True)
    with pytest.raises(SystemExit):
        parser.parse_args(["identity", "issue", "--name", "t", "--role", "king"])


def test_without_plugins_only_the_bank_commands_exist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a bank that installed only the SDK sees."""
    monkeypatch.setattr(plugins, "plugins", lambda: ())
    with pytest.raises(SystemExit) as exited:
        main(["network", "status"])
    assert exited.value.code == EXIT_USAGE
    assert "invalid choice: 'network'" in capsys.readouterr().err
    assert build_parser().parse_args(["--bank", "x", "supply", "USD"]).command == "supply"


def test_a_broken_plugin_is_reported_and_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = EntryPoint("broken", "no_such_module_for_dtoken:plugin", plugins.GROUP)
    not_one = EntryPoint("odd", "os.path:sep", plugins.GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [broken, not_one])
    plugins.plugins.cache_clear()
    try:
        assert plugins.plugins() == ()
    finally:
        plugins.plugins.cache_clear()
    err = capsys.readouterr().err
    assert "ignoring the dtoken.commands plugin broken (no_such_module_for_dtoken:plugin)" in err
    assert "ModuleNotFoundError" in err
    assert "plugin odd (os.path:sep): it has no register(subparsers, host)" in err


def test_the_sdk_cli_module_does_not_load_the_network_tooling() -> None:
    """Importing the CLI imports no consortium module: only running it loads the plugins."""
    code = ("import sys, dtoken.cli, dtoken.demo; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'consortium'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_the_network_tooling_names_its_default_networks_profiles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With a consortium file ($DTOKEN_CONFIG, or ./config/consortium.yaml), the plugin names
    that network's profiles folder; a bad file is a usage error naming it."""
    from harness.network import DEFAULT_CONFIG

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "config").mkdir()
    shutil.copyfile(DEFAULT_CONFIG, tmp_path / "config" / "consortium.yaml")
    expected = tmp_path / "xdg" / "dtoken" / "dtoken" / "profiles"
    assert profiles_dir(_args()) == expected
    other = tmp_path / "other.yaml"
    other.write_text(DEFAULT_CONFIG.read_text().replace("name: dtoken ", "name: other "))
    monkeypatch.setenv("DTOKEN_CONFIG", str(other))
    assert profiles_dir(_args()) == tmp_path / "xdg" / "dtoken" / "other" / "profiles"
    other.write_text("banks: [")
    with pytest.raises(UsageError, match=f"network .*{other}"):
        profiles_dir(_args())


def test_identity_issue_refuses_a_profile_outside_a_state_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bank's copy of its profile is no network's state folder: nothing is written there."""
    profile = write_profile(tmp_path / "copy")  # <copy>/profiles/hkbank.json, no network.json
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["--profile", str(profile), "identity", "issue", "--name", "t1"]) == EXIT_USAGE
    assert "is not in a network's state folder" in capsys.readouterr().err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
