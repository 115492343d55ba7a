"""``python -m fabshim serve MODULE:ATTR``: run a chaincode server.

``ATTR`` names an object with ``init`` and ``invoke`` coroutines (the ``Chaincode``
protocol) or a zero-argument callable returning one. Configuration comes from the
environment (see ``fabshim.config``); flags win over it. Exits 0 after SIGTERM or SIGINT
and a graceful stop, 2 on a usage or configuration error, 1 when serving fails.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import TypeGuard

from .config import ServerConfig
from .errors import ConfigError, ShimError
from .interfaces import Chaincode
from .server import ChaincodeServer

logger = logging.getLogger("fabshim.cli")


def load_chaincode(target: str) -> Chaincode:
    """Import ``MODULE:ATTR`` and return the chaincode it names (calling a factory)."""
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ConfigError(f"{target!r} is not MODULE:ATTR")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ConfigError(f"{target!r}: no attribute {part!r}") from exc
    if _is_chaincode(obj):
        return obj
    if callable(obj):
        try:
            made: object = obj()
        except Exception as exc:
            raise ConfigError(f"{target!r}() raised {type(exc).__name__}: {exc}") from exc
        if _is_chaincode(made):
            return made
        raise ConfigError(f"{target!r}() returned {type(made).__name__}, not a chaincode")
    raise ConfigError(f"{target!r} is neither a chaincode (init/invoke) nor a factory")


def _is_chaincode(obj: object) -> TypeGuard[Chaincode]:
    if isinstance(obj, type):
        return False
    init = getattr(obj, "init", None)
    invoke = getattr(obj, "invoke", None)
    return callable(init) and callable(invoke)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fabshim", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a chaincode server the peer dials")
    serve.add_argument("target", metavar="MODULE:ATTR", help="the chaincode or its factory")
    serve.add_argument("--id", dest="chaincode_id", help="package id (CHAINCODE_ID)")
    serve.add_argument("--address", help="host:port to listen on (CHAINCODE_SERVER_ADDRESS)")
    serve.add_argument("--tls-cert", help="server certificate PEM (CHAINCODE_TLS_CERT)")
    serve.add_argument("--tls-key", help="server key PEM (CHAINCODE_TLS_KEY)")
    serve.add_argument(
        "--client-ca-cert",
        help="require client certificates signed by this CA (CHAINCODE_CLIENT_CA_CERT)",
    )
    serve.add_argument(
        "--tls-disabled",
        action="store_true",
        default=None,
        help="serve without TLS (CHAINCODE_TLS_DISABLED=true)",
    )
    serve.add_argument(
        "--no-write-batch",
        dest="write_batching",
        action="store_const",
        const=False,
        default=None,
        help="never batch writes, even when the peer offers it (CHAINCODE_WRITE_BATCH=false)",
    )
    serve.add_argument("--grace", type=float, default=5.0, help="seconds to finish on stop")
    serve.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fabshim``; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        config = ServerConfig.load(
            chaincode_id=args.chaincode_id,
            address=args.address,
            tls_disabled=args.tls_disabled,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            client_ca_cert=args.client_ca_cert,
            write_batching=args.write_batching,
        )
        chaincode = load_chaincode(args.target)
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        return 2
    server = ChaincodeServer(chaincode, config, grace=args.grace)
    try:
        asyncio.run(server.serve())
    except ShimError as exc:
        logger.error("chaincode server failed: %s", exc)
        return 1
    return 0
