"""Server configuration, TLS and client authentication, and ``python -m fabshim serve``."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path

import grpc
import pytest
from fabshim import ChaincodeServer, ConfigError, Response, ServerConfig, ShimError, Stub, success
from fabshim.cli import load_chaincode
from fabshim.config import load_tls
from unit.fabshim.shim_fakepeer import FakePeer
from unit.fabshim.shim_tls import TLSSet, make_tls_set


class Echo:
    async def init(self, stub: Stub) -> Response:
        return success()

    async def invoke(self, stub: Stub) -> Response:
        return success(b"echo:" + b",".join(stub.get_args()))


@pytest.fixture(scope="module")
def tls() -> TLSSet:
    return make_tls_set()


@pytest.fixture
def tls_files(tmp_path: Path, tls: TLSSet) -> dict[str, Path]:
    cert, key = tls.server.write(tmp_path, "server")
    ca = tmp_path / "client-ca.crt"
    ca.write_bytes(tls.client_ca.cert_pem)
    return {"cert": cert, "key": key, "client_ca": ca}


# ---------------------------------------------------------------------------- configuration


def test_config_from_the_environment(tls_files: dict[str, Path]) -> None:
    env = {
        "CHAINCODE_ID": "bank:1234",
        "CHAINCODE_SERVER_ADDRESS": "0.0.0.0:9999",
        "CHAINCODE_TLS_CERT": str(tls_files["cert"]),
        "CHAINCODE_TLS_KEY": str(tls_files["key"]),
        "CHAINCODE_CLIENT_CA_CERT": str(tls_files["client_ca"]),
    }
    config = ServerConfig.load(environ=env)
    assert (config.chaincode_id, config.host, config.port) == ("bank:1234", "0.0.0.0", 9999)
    assert config.tls is not None
    assert config.tls.client_auth_required
    assert config.tls.cert_pem == tls_files["cert"].read_bytes()
    assert "PRIVATE KEY" not in repr(config)


def test_explicit_arguments_win_over_the_environment() -> None:
    env = {
        "CHAINCODE_ID": "from-env",
        "CHAINCODE_SERVER_ADDRESS": "1.2.3.4:1",
        "CHAINCODE_TLS_CERT": "/nonexistent/cert.pem",
    }
    config = ServerConfig.load(
        chaincode_id="explicit", address="127.0.0.1:7052", tls_disabled=True, environ=env
    )
    assert (config.chaincode_id, config.address, config.tls) == ("explicit", "127.0.0.1:7052", None)


@pytest.mark.parametrize(("value", "disabled"), [("true", True), ("TRUE", True), ("false", False)])
def test_tls_disabled_values(value: str, disabled: bool, tls_files: dict[str, Path]) -> None:
    env = {
        "CHAINCODE_ID": "cc",
        "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:0",
        "CHAINCODE_TLS_DISABLED": value,
        "CHAINCODE_TLS_CERT": str(tls_files["cert"]),
        "CHAINCODE_TLS_KEY": str(tls_files["key"]),
    }
    config = ServerConfig.load(environ=env)
    assert (config.tls is None) is disabled


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CHAINCODE_SERVER_ADDRESS": "127.0.0.1:1"}, "CHAINCODE_ID"),
        ({"CHAINCODE_ID": "cc"}, "CHAINCODE_SERVER_ADDRESS"),
        ({"CHAINCODE_ID": "cc", "CHAINCODE_SERVER_ADDRESS": "nocolon"}, "not host:port"),
        ({"CHAINCODE_ID": "cc", "CHAINCODE_SERVER_ADDRESS": "h:70000"}, "out of range"),
        (
            {
                "CHAINCODE_ID": "cc",
                "CHAINCODE_SERVER_ADDRESS": "h:1",
                "CHAINCODE_TLS_DISABLED": "y",
            },
            "CHAINCODE_TLS_DISABLED",
        ),
        ({"CHAINCODE_ID": "cc", "CHAINCODE_SERVER_ADDRESS": "h:1"}, "TLS is required"),
    ],
)
def test_config_errors_name_the_problem(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        ServerConfig.load(environ=env)


_PLAIN = {"CHAINCODE_ID": "cc", "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:0",
          "CHAINCODE_TLS_DISABLED": "true"}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "batching"),
    [
        (None, True),
        ("", True),
        ("true", True),
        ("1", True),
        ("YES", True),
        ("false", False),
        (" False ", False),
        ("0", False),
        ("no", False),
    ],
)
def test_write_batch_values(value: str | None, batching: bool) -> None:
    env = dict(_PLAIN)
    if value is not None:
        env["CHAINCODE_WRITE_BATCH"] = value
    assert ServerConfig.load(environ=env).write_batching is batching


@pytest.mark.parametrize("value", ["off", "nope", "2", "truee"])
def test_a_write_batch_value_that_is_neither_true_nor_false_is_an_error(value: str) -> None:
    with pytest.raises(ConfigError, match=f"CHAINCODE_WRITE_BATCH: '{value}' is neither"):
        ServerConfig.load(environ={**_PLAIN, "CHAINCODE_WRITE_BATCH": value})


def test_an_explicit_write_batch_choice_wins_over_the_environment() -> None:
    on = {**_PLAIN, "CHAINCODE_WRITE_BATCH": "true"}
    off = {**_PLAIN, "CHAINCODE_WRITE_BATCH": "false"}
    assert ServerConfig.load(write_batching=False, environ=on).write_batching is False
    assert ServerConfig.load(write_batching=True, environ=off).write_batching is True
    # Not read at all when given explicitly: a bad value does not matter then.
    bad = {**_PLAIN, "CHAINCODE_WRITE_BATCH": "bad"}
    assert ServerConfig.load(write_batching=True, environ=bad).write_batching is True


@pytest.mark.parametrize(("value", "multi"), [(None, True), ("", True), ("true", True),
                                              ("false", False), ("0", False)])
def test_multi_key_read_values(value: str | None, multi: bool) -> None:
    env = dict(_PLAIN)
    if value is not None:
        env["CHAINCODE_MULTI_KEY_READS"] = value
    assert ServerConfig.load(environ=env).multi_key_reads is multi
    assert ServerConfig.load(multi_key_reads=True, environ=env).multi_key_reads is True


def test_a_multi_key_read_value_that_is_neither_true_nor_false_is_an_error() -> None:
    with pytest.raises(ConfigError, match="CHAINCODE_MULTI_KEY_READS: 'sometimes' is neither"):
        ServerConfig.load(environ={**_PLAIN, "CHAINCODE_MULTI_KEY_READS": "sometimes"})


def test_a_missing_tls_file_is_an_error_naming_the_variable_and_path(
    tls_files: dict[str, Path],
) -> None:
    env = {
        "CHAINCODE_ID": "cc",
        "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:0",
        "CHAINCODE_TLS_CERT": str(tls_files["cert"]),
        "CHAINCODE_TLS_KEY": "/nonexistent/server.key",
    }
    with pytest.raises(ConfigError, match=r"CHAINCODE_TLS_KEY \(/nonexistent/server.key\)"):
        ServerConfig.load(environ=env)


def test_an_unreadable_or_wrong_tls_file_is_an_error(
    tmp_path: Path, tls_files: dict[str, Path], tls: TLSSet
) -> None:
    with pytest.raises(ConfigError, match=r"--tls-cert .*cannot read"):
        ServerConfig.load(
            chaincode_id="cc",
            address="127.0.0.1:0",
            tls_cert=tmp_path,  # a directory
            tls_key=tls_files["key"],
        )
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match="empty"):
        load_tls(tls_files["cert"], empty)
    other_key = tmp_path / "other.key"
    other_key.write_bytes(tls.client.key_pem)
    with pytest.raises(ConfigError, match="does not match"):
        load_tls(tls_files["cert"], other_key)
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        load_tls(tls_files["key"], tls_files["key"])
    with pytest.raises(ConfigError, match="CHAINCODE_CLIENT_CA_CERT"):
        ServerConfig.load(
            environ={
                "CHAINCODE_ID": "cc",
                "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:0",
                "CHAINCODE_TLS_CERT": str(tls_files["cert"]),
                "CHAINCODE_TLS_KEY": str(tls_files["key"]),
                "CHAINCODE_CLIENT_CA_CERT": str(tmp_path / "missing-ca.pem"),
            }
        )


# ---------------------------------------------------------------------------- TLS


async def _serve(config: ServerConfig) -> ChaincodeServer:
    server = ChaincodeServer(Echo(), config, grace=0)
    await server.start()
    return server


NAME_OVERRIDE = (("grpc.ssl_target_name_override", "localhost"),)


async def test_tls_server_without_client_auth(tls_files: dict[str, Path], tls: TLSSet) -> None:
    config = ServerConfig.load(
        chaincode_id="cc:1",
        address="127.0.0.1:0",
        tls_cert=tls_files["cert"],
        tls_key=tls_files["key"],
        environ={},
    )
    server = await _serve(config)
    peer = FakePeer()
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=tls.server_ca.cert_pem)
        await peer.connect(f"127.0.0.1:{server.port}", credentials, NAME_OVERRIDE)
        assert (await peer.execute("hi")).payload == b"echo:hi"
    finally:
        await peer.close()
        await server.stop(0)


async def test_client_auth_admits_the_peer_and_refuses_others(
    tls_files: dict[str, Path], tls: TLSSet
) -> None:
    config = ServerConfig.load(
        chaincode_id="cc:1",
        address="127.0.0.1:0",
        tls_cert=tls_files["cert"],
        tls_key=tls_files["key"],
        client_ca_cert=tls_files["client_ca"],
        environ={},
    )
    server = await _serve(config)
    try:
        good = FakePeer()
        try:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls.server_ca.cert_pem,
                private_key=tls.client.key_pem,
                certificate_chain=tls.client.cert_pem,
            )
            await good.connect(f"127.0.0.1:{server.port}", credentials, NAME_OVERRIDE)
            assert (await good.execute("ok")).payload == b"echo:ok"
        finally:
            await good.close()
        for key_pem, cert_pem in ((None, None), (tls.stranger.key_pem, tls.stranger.cert_pem)):
            intruder = FakePeer()
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls.server_ca.cert_pem,
                private_key=key_pem,
                certificate_chain=cert_pem,
            )
            try:
                with pytest.raises((grpc.aio.AioRpcError, asyncio.TimeoutError)):
                    await intruder.connect(f"127.0.0.1:{server.port}", credentials, NAME_OVERRIDE)
            finally:
                await intruder.close()
        assert not server.handlers
    finally:
        await server.stop(0)


async def test_plaintext_client_cannot_reach_a_tls_server(tls_files: dict[str, Path]) -> None:
    config = ServerConfig.load(
        chaincode_id="cc:1",
        address="127.0.0.1:0",
        tls_cert=tls_files["cert"],
        tls_key=tls_files["key"],
        environ={},
    )
    server = await _serve(config)
    peer = FakePeer()
    try:
        with pytest.raises((grpc.aio.AioRpcError, asyncio.TimeoutError)):
            await peer.connect(f"127.0.0.1:{server.port}")
    finally:
        await peer.close()
        await server.stop(0)


async def test_a_port_in_use_is_reported() -> None:
    first = await _serve(ServerConfig("cc", "127.0.0.1:0", None))
    try:
        second = ChaincodeServer(Echo(), ServerConfig("cc", f"127.0.0.1:{first.port}", None))
        with pytest.raises(ShimError, match="cannot listen"):
            await second.start()
    finally:
        await first.stop(0)


# ---------------------------------------------------------------------------- CLI

CHAINCODE_MODULE = """
from fabshim import success


class Chaincode:
    async def init(self, stub):
        return success()

    async def invoke(self, stub):
        if stub.function == "put2":
            await stub.put_state("a", b"1")
            await stub.put_state("b", b"2")
        return success(b"cli:" + b",".join(stub.get_args()))


chaincode = Chaincode()


def factory():
    return Chaincode()


not_a_chaincode = 42
"""


@pytest.fixture
def module_dir(tmp_path: Path) -> Path:
    (tmp_path / "cli_target.py").write_text(CHAINCODE_MODULE)
    return tmp_path


def test_load_chaincode_accepts_objects_and_factories(
    module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(module_dir))
    assert type(load_chaincode("cli_target:chaincode")).__name__ == "Chaincode"
    assert type(load_chaincode("cli_target:factory")).__name__ == "Chaincode"
    for target, message in (
        ("cli_target", "MODULE:ATTR"),
        ("no_such_module_xyz:cc", "cannot import"),
        ("cli_target:missing", "no attribute"),
        ("cli_target:not_a_chaincode", "neither a chaincode"),
        ("cli_target:Chaincode.init", "raised TypeError"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_chaincode(target)


async def _start_cli(module_dir: Path, *args: str, **env: str) -> asyncio.subprocess.Process:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(module_dir),
        **env,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fabshim",
        "serve",
        *args,
        env=environment,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )


async def _listening_port(process: asyncio.subprocess.Process) -> int:
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        assert line, "the server exited before listening"
        match = re.search(r"chaincode server listening on 127\.0\.0\.1:(\d+)$", line.strip())
        if match:
            return int(match.group(1))


@pytest.mark.parametrize("target", ["cli_target:chaincode", "cli_target:factory"])
async def test_cli_serves_until_sigterm_and_exits_zero(module_dir: Path, target: str) -> None:
    process = await _start_cli(
        module_dir,
        target,
        CHAINCODE_ID="bank:cafe",
        CHAINCODE_SERVER_ADDRESS="127.0.0.1:0",
        CHAINCODE_TLS_DISABLED="true",
    )
    peer = FakePeer()
    try:
        port = await _listening_port(process)
        await peer.connect(f"127.0.0.1:{port}")
        assert peer.registered_name == "bank:cafe"
        assert (await peer.execute("x", "y")).payload == b"cli:x,y"
    finally:
        await peer.close()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
    assert code == 0


async def test_cli_flags_win_and_sigint_also_stops(module_dir: Path) -> None:
    process = await _start_cli(
        module_dir,
        "cli_target:chaincode",
        "--id",
        "from-flag",
        "--address",
        "127.0.0.1:0",
        "--tls-disabled",
        CHAINCODE_ID="from-env",
        CHAINCODE_SERVER_ADDRESS="127.0.0.1:1",
        CHAINCODE_TLS_CERT="/nonexistent",
    )
    peer = FakePeer()
    try:
        port = await _listening_port(process)
        await peer.connect(f"127.0.0.1:{port}")
        assert peer.registered_name == "from-flag"
    finally:
        await peer.close()
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 20)
    assert code == 0


async def test_cli_configuration_error_exits_two(module_dir: Path) -> None:
    process = await _start_cli(
        module_dir,
        "cli_target:chaincode",
        CHAINCODE_ID="cc",
        CHAINCODE_SERVER_ADDRESS="127.0.0.1:0",
        CHAINCODE_TLS_CERT="/nonexistent/cert.pem",
        CHAINCODE_TLS_KEY="/nonexistent/key.pem",
    )
    assert process.stderr is not None
    stderr = (await asyncio.wait_for(process.stderr.read(), 20)).decode()
    assert await process.wait() == 2
    assert "CHAINCODE_TLS_CERT (/nonexistent/cert.pem)" in stderr


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ((), {}, ["WRITE_BATCH_STATE"]),
        ((), {"CHAINCODE_WRITE_BATCH": "false"}, ["PUT_STATE", "PUT_STATE"]),
        (("--no-write-batch",), {"CHAINCODE_WRITE_BATCH": "true"}, ["PUT_STATE", "PUT_STATE"]),
    ],
)
async def test_cli_write_batching_follows_the_flag_and_the_environment(
    module_dir: Path, flags: tuple[str, ...], env: dict[str, str], expected: list[str]
) -> None:
    process = await _start_cli(
        module_dir,
        "cli_target:chaincode",
        *flags,
        CHAINCODE_ID="cc",
        CHAINCODE_SERVER_ADDRESS="127.0.0.1:0",
        CHAINCODE_TLS_DISABLED="true",
        **env,
    )
    peer = FakePeer(use_write_batch=True, max_size_write_batch=10)
    try:
        port = await _listening_port(process)
        await peer.connect(f"127.0.0.1:{port}")
        tx_id = peer.new_tx_id()
        result = await peer.execute("put2", tx_id=tx_id)
        assert result.status == 200
        assert peer.requests_of(tx_id) == expected
        assert peer.state[""] == {"a": b"1", "b": b"2"}
    finally:
        await peer.close()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
    assert code == 0


async def test_cli_bad_write_batch_value_exits_two(module_dir: Path) -> None:
    process = await _start_cli(
        module_dir,
        "cli_target:chaincode",
        CHAINCODE_ID="cc",
        CHAINCODE_SERVER_ADDRESS="127.0.0.1:0",
        CHAINCODE_TLS_DISABLED="true",
        CHAINCODE_WRITE_BATCH="sometimes",
    )
    assert process.stderr is not None
    stderr = (await asyncio.wait_for(process.stderr.read(), 20)).decode()
    assert await process.wait() == 2
    assert "CHAINCODE_WRITE_BATCH: 'sometimes' is neither true nor false" in stderr


async def test_stop_ends_a_connected_peer_stream_with_status_ok(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server closes each stream itself: the peer sees a clean end (OK), not a call
    cancelled under it (UNAVAILABLE), and nothing is logged as an error."""
    server = await _serve(ServerConfig.load(chaincode_id="cc", address="127.0.0.1:0",
                                            tls_disabled=True, environ={}))  # fmt: skip
    peer = FakePeer()
    try:
        await peer.connect(f"127.0.0.1:{server.port}")
        assert (await peer.execute("hi")).payload == b"echo:hi"
        await server.stop()
        await asyncio.wait_for(peer.stream_ended.wait(), 5)
        assert await peer._call.code() == grpc.StatusCode.OK
        assert not server.handlers
    finally:
        await peer.close()
        await server.stop(0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_cli_sigterm_with_the_peer_connected_exits_cleanly(module_dir: Path) -> None:
    process = await _start_cli(
        module_dir,
        "cli_target:chaincode",
        CHAINCODE_ID="cc",
        CHAINCODE_SERVER_ADDRESS="127.0.0.1:0",
        CHAINCODE_TLS_DISABLED="true",
    )
    peer = FakePeer()
    try:
        port = await _listening_port(process)
        await peer.connect(f"127.0.0.1:{port}")
        assert (await peer.execute("x")).payload == b"cli:x"
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        rest = (await asyncio.wait_for(process.stderr.read(), 20)).decode()
        code = await asyncio.wait_for(process.wait(), 20)
        await asyncio.wait_for(peer.stream_ended.wait(), 5)
        assert await peer._call.code() == grpc.StatusCode.OK
    finally:
        await peer.close()
    assert code == 0
    assert "stream closed by the server" in rest
    assert "ERROR" not in rest
    assert "Traceback" not in rest
