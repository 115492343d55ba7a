"""``dtoken network up|down|status|generate|add-bank``: the operator's commands for the network.

``add-bank NAME`` adds a bank listed under ``joined_banks`` in the consortium file to the
running network (``consortium.joining``; docs/operations.md).

``generate compose|kubernetes --out DIR`` writes the same network for a container engine
(see ``consortium.containers`` and docs/deployment.md); it starts nothing.

The ``dtoken`` console script (the bank SDK's ``dtoken.cli``) mounts these under ``network``
through this distribution's ``dtoken.commands`` entry point (``consortium.commands``).
Exit codes: 0 done, 2 bad usage or a bad consortium file (nothing started),
3 a node or Fabric tool failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from consortium import config as config_mod
from consortium import containers
from consortium.errors import ConfigError, CryptoError, NetworkError
from consortium.network import Network
from consortium.runtime import RUNTIMES

__all__ = ["add_network_commands", "default_config_path", "default_state_dir", "load_network"]

EXIT_USAGE = 2
EXIT_FAULT = 3


def default_config_path() -> Path:
    """$DTOKEN_CONFIG, else ``config/consortium.yaml`` in the current directory (the
    repository's root, for its default network); ``--config`` wins over both."""
    env = os.environ.get("DTOKEN_CONFIG")
    return Path(env) if env else Path("config") / "consortium.yaml"


def default_state_dir(network_name: str) -> Path:
    """$DTOKEN_STATE_DIR, else $XDG_STATE_HOME/dtoken/<name> (~/.local/state/...)."""
    env = os.environ.get("DTOKEN_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dtoken" / network_name


def load_network(
    config_path: Path | None,
    state_dir: Path | None,
    quiet: bool = False,
    runtime: str | None = None,
) -> Network:
    """The network of a consortium file and state folder.

    Without ``--config``, a state folder (given, or ``$DTOKEN_STATE_DIR``) that a
    network was made in names its own consortium file, so commands such as
    ``status`` and ``down`` find the right network from the folder alone.
    """
    state_dir = state_dir or (
        Path(os.environ["DTOKEN_STATE_DIR"]) if os.environ.get("DTOKEN_STATE_DIR") else None
    )
    if config_path is None and state_dir is not None:
        config_path = Network.source_of(state_dir)
    path = config_path or default_config_path()
    if config_path is None and not path.exists():
        raise ConfigError(path, "", "no consortium file: give --config FILE (or $DTOKEN_CONFIG), "
                                    "or run from the folder holding config/consortium.yaml")
    consortium = config_mod.load(path)
    progress = (lambda _msg: None) if quiet else None
    return Network(
        consortium, state_dir or default_state_dir(consortium.name), progress=progress,
        runtime=runtime,
    )  # fmt: skip


def add_network_commands(sub: Any) -> None:
    """Register ``network`` and its sub-commands on an argparse subparsers object."""
    net = sub.add_parser("network", help="bring the Fabric network up, down, or report on it")
    net.add_argument("--config", type=Path, help="consortium file (default: %(default)s)")
    net.add_argument("--state-dir", type=Path, help="state folder (default: per network name)")
    cmds = net.add_subparsers(dest="network_command", required=True)
    up = cmds.add_parser("up", help="from nothing to a committed chaincode (idempotent)")
    up.add_argument(
        "--runtime", choices=RUNTIMES, default=None,
        help="where the nodes run: native processes, or a container each through the Docker "
             "Engine API ($DOCKER_HOST) (default: what the state folder was made with, else "
             "native)",
    )  # fmt: skip
    down = cmds.add_parser("down", help="stop the processes this network started")
    down.add_argument("--purge", action="store_true", help="also delete the state folder")
    status = cmds.add_parser("status", help="nodes, health and connection profiles")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    add = cmds.add_parser(
        "add-bank", help="a bank listed under joined_banks joins the running network"
    )
    add.add_argument("bank", help="the bank's name (its block under joined_banks)")
    add.add_argument("--json", action="store_true", help="print the join's report as JSON")
    add.add_argument("--from-snapshot", action="store_true",
                     help="join its peers from a founding peer's ledger snapshot, not by "
                          "replaying the chain")
    ident = cmds.add_parser("identity", help="issue a client identity for an organization")
    ident_cmds = ident.add_subparsers(dest="identity_command", required=True)
    issue = ident_cmds.add_parser("issue", help="a new certificate with roles as attributes")
    issue.add_argument("--org", required=True, help="organization name (e.g. hkbank)")
    issue.add_argument("--name", required=True, help="identity name (letters, digits, - _ .)")
    issue.add_argument(
        "--attr", action="append", default=[], metavar="NAME=VALUE",
        help="a Fabric CA attribute, e.g. minter=true (repeatable)",
    )  # fmt: skip
    issue.add_argument("--admin", action="store_true", help="an admin (OU admin) identity")
    gen = cmds.add_parser("generate", help="the same network for a container engine")
    gen_cmds = gen.add_subparsers(dest="generate_target", required=True)
    for target, what in (
        ("compose", "compose.yaml, bootstrap.sh and the chaincode image's Dockerfile"),
        ("kubernetes", "kubernetes.yaml (every manifest) and the chaincode image's Dockerfile"),
    ):
        g = gen_cmds.add_parser(target, help=what)
        g.add_argument(
            "--out", type=Path, required=True, metavar="DIR",
            help="deployment folder (created; its keys and secrets are kept on re-runs)",
        )  # fmt: skip
        g.add_argument(
            "--chaincode-image", metavar="REF",
            help="chaincode server image (default: <network>-chaincode:<chaincode version>)",
        )  # fmt: skip
    net.set_defaults(handler=run_network_command)


def run_network_command(args: argparse.Namespace) -> int:
    try:
        network = load_network(
            args.config, args.state_dir, quiet=False, runtime=getattr(args, "runtime", None)
        )
    except ConfigError as exc:
        print(f"dtoken: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.network_command == "up":
            network.up()
        elif args.network_command == "down":
            stopped = network.down(purge=args.purge)
            print(
                f"stopped {len(stopped)} processes"
                + (" and purged the state" if args.purge else "")
            )
        elif args.network_command == "identity":
            return _issue_identity(network, args)
        elif args.network_command == "add-bank":
            try:
                report = network.add_bank(args.bank, from_snapshot=args.from_snapshot)
            except ConfigError as exc:
                print(f"dtoken: configuration error: {exc}", file=sys.stderr)
                return EXIT_USAGE
            if args.json:
                print(json.dumps(report.to_json(), indent=2))
        elif args.network_command == "generate":
            try:
                return _generate(network, args)
            except ConfigError as exc:
                print(f"dtoken: configuration error: {exc}", file=sys.stderr)
                return EXIT_USAGE
        else:
            status = network.status()
            if args.json:
                print(json.dumps(status, indent=2))
            else:
                _print_status(status)
    except NetworkError as exc:
        print(f"dtoken: {exc}", file=sys.stderr)
        return EXIT_FAULT
    return 0


def _generate(network: Network, args: argparse.Namespace) -> int:
    if args.generate_target == "compose":
        path = containers.write_compose(
            network.consortium, args.out, chaincode_image=args.chaincode_image
        )
        print(f"wrote {path} and bootstrap.sh beside it")
        print(f"run: cd {path.parent} && docker compose up -d --build   (see docs/deployment.md)")
    else:
        path = containers.write_kubernetes(
            network.consortium, args.out, chaincode_image=args.chaincode_image
        )
        print(f"wrote {path}")
        print(
            f"run: build and push the image in {path.parent / 'image'}, then "
            f"kubectl apply -f {path}   (see docs/deployment.md)"
        )
    return 0


def _issue_identity(network: Network, args: argparse.Namespace) -> int:
    try:
        org = network.consortium.org(args.org)
    except KeyError as exc:
        print(f"dtoken: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    if org.kind.value == "orderer":
        print("dtoken: identities are issued for banks and the regulator", file=sys.stderr)
        return EXIT_USAGE
    attributes: dict[str, str] = {}
    for item in args.attr:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"dtoken: --attr {item!r} is not NAME=VALUE", file=sys.stderr)
            return EXIT_USAGE
        attributes[key] = value
    try:
        files = network.issue_identity(org, args.name, attributes, admin=args.admin)
    except CryptoError as exc:
        print(f"dtoken: cannot issue {args.name!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        json.dumps(
            {
                "org": org.name,
                "msp_id": org.msp_id,
                "name": args.name,
                "cert": str(files.cert),
                "key": str(files.key),
                "msp_dir": str(files.msp_dir),
                "attributes": attributes,
            },
            indent=2,
        )
    )
    return 0


def _print_status(status: dict[str, Any]) -> None:
    print(f"network {status['name']}  channel {status['channel']}  chaincode {status['chaincode']}")
    print(f"state   {status['state_dir']}  runtime {status['runtime']}")
    rows = [("NODE", "ORG", "ENDPOINT", "STATE")]
    for o in status["orderers"]:
        rows.append((o["name"], "ordering", o["endpoint"], _state(o["healthy"])))
    for org in status["orgs"]:
        for p in org["peers"]:
            rows.append((p["name"], org["name"], p["endpoint"], _state(p["healthy"])))
            cc = p["chaincode_server"]
            rows.append(("  chaincode server", org["name"], cc["endpoint"], _state(cc["running"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def _state(ok: bool) -> str:
    return "healthy" if ok else "DOWN"
