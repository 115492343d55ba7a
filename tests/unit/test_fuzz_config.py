"""Property and fuzz tests of consortium files (issue 6, item 4), without a network.

Mutations of the default ``config/consortium.yaml`` (a value replaced by any YAML value, a
field removed, an unknown field added, anywhere in the tree), random YAML text and random
bytes: ``consortium.config`` either accepts the file or raises ``ConfigError`` naming the
file (and the field, when one is at fault). Never another exception: the CLI turns exactly
``ConfigError`` into "configuration error" and exit code 2 before anything starts.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from consortium import config
from consortium.errors import ConfigError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DEFAULT = yaml.safe_load((Path(__file__).parents[2] / "config" / "consortium.yaml").read_text())
SOURCE = Path("/fuzz/consortium.yaml")
SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

yaml_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "127.0.0.1", "::1", "host name", "a" * 300, "USD", "hkbank", "-1"])
)
yaml_value = st.recursive(
    yaml_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


PATHS = _paths(DEFAULT)[1:]
MAPPINGS = [p for p in [(), *PATHS] if isinstance(_at(DEFAULT, p), dict)]


def _refusal(load: Any, *args: Any) -> ConfigError | None:
    """Run a loader: None if it accepted, its ConfigError if it refused (anything else
    propagates and fails the test)."""
    try:
        load(*args)
    except ConfigError as exc:
        return exc
    return None


def _accepted_or_named(data: Any) -> None:
    refused = _refusal(config.parse, data, SOURCE)
    if refused is not None:
        assert str(refused).startswith(str(SOURCE)), str(refused)
        assert refused.problem


def test_the_default_file_is_valid() -> None:
    parsed = config.parse(copy.deepcopy(DEFAULT), SOURCE)
    assert len(parsed.banks) == 3


@SETTINGS
@given(path=st.sampled_from(PATHS), value=yaml_value)
def test_any_value_anywhere_is_accepted_or_refused_with_the_file_and_field(
    path: tuple[Any, ...], value: object
) -> None:
    data = copy.deepcopy(DEFAULT)
    _at(data, path[:-1])[path[-1]] = value
    _accepted_or_named(data)


@SETTINGS
@given(path=st.sampled_from(PATHS))
def test_a_field_removed_anywhere_is_accepted_or_refused(path: tuple[Any, ...]) -> None:
    data = copy.deepcopy(DEFAULT)
    del _at(data, path[:-1])[path[-1]]
    _accepted_or_named(data)


@SETTINGS
@given(path=st.sampled_from(MAPPINGS), key=st.text(min_size=1, max_size=12), value=yaml_value)
def test_an_unknown_field_is_refused_by_name(
    path: tuple[Any, ...], key: str, value: object
) -> None:
    data = copy.deepcopy(DEFAULT)
    parent = _at(data, path)
    if key in parent:
        return
    parent[key] = value
    refused = _refusal(config.parse, data, SOURCE)
    assert refused is not None, f"unknown field {key!r} under {path} was accepted"
    assert str(refused).startswith(str(SOURCE))


YAML_TRAPS = ["{", "[", ":", "a: [", "!!python/object:os.system {}", "&a [*a]", "? - - -", "\t- x"]


@SETTINGS
@given(text=st.text(max_size=400) | st.sampled_from(YAML_TRAPS))
def test_random_yaml_text_in_a_file(tmp_path_factory: Any, text: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "consortium.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    refused = _refusal(config.load, path)
    if refused is not None:
        assert str(refused).startswith(str(path)), str(refused)


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_random_bytes_in_a_file(tmp_path_factory: Any, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "consortium.yaml"
    path.write_bytes(raw)
    refused = _refusal(config.load, path)
    if refused is not None:
        assert str(refused).startswith(str(path)), str(refused)


def test_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    for path in (tmp_path / "absent.yaml", tmp_path):
        refused = _refusal(config.load, path)
        assert refused is not None, f"{path} was accepted"
        assert str(refused).startswith(str(path))
        assert "cannot be read" in refused.problem
