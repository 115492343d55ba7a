"""The operator's commands, mounted into the bank SDK's ``dtoken`` command as a plugin.

This distribution declares ``plugin`` in the ``dtoken.commands`` entry-point group; the SDK's
CLI finds it with ``importlib.metadata`` (see ``dtoken.plugins``) and calls
``plugin.register(subparsers, host)``. It adds:

* ``dtoken network up|down|status|generate|identity`` (:mod:`consortium.cli`);
* ``dtoken [--bank NAME | --profile FILE] identity issue --name N --role R``: a new client
  identity of the organization a bank command would act as, listed in its profile;

and names the profiles folder of the default network (``default_profiles``) for a CLI given
none. Must not: import the SDK (``dtoken``): what it needs of the CLI comes in ``host``
(its common options, how it finds the organization, the roles), typed here structurally.

Exit codes as the rest of ``dtoken``: 0 done, 2 bad usage or configuration, 3 a node or a
Fabric tool failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from consortium.cli import (
    EXIT_FAULT,
    EXIT_USAGE,
    add_network_commands,
    default_config_path,
    load_network,
)
from consortium.errors import ConfigError, CryptoError, NetworkError

__all__ = ["Host", "NetworkCommands", "plugin"]


class Host(Protocol):
    """What the ``dtoken`` CLI hands its plugins (``dtoken.plugins.CommandHost``)."""

    @property
    def common(self) -> argparse.ArgumentParser: ...
    @property
    def organization(self) -> Callable[[argparse.Namespace], tuple[str, Path]]: ...
    @property
    def roles(self) -> tuple[str, ...]: ...


class NetworkCommands:
    """The ``dtoken.commands`` plugin of the network tooling."""

    def register(self, subparsers: Any, host: Host) -> None:
        """Add ``network ...`` and ``identity issue`` to the ``dtoken`` parser."""
        add_network_commands(subparsers)
        ident = subparsers.add_parser("identity", help="client identities of this organization")
        cmds = ident.add_subparsers(dest="identity_command", required=True, metavar="ACTION")
        p = cmds.add_parser("issue", parents=[host.common],
                            help="a new client certificate with roles")
        p.add_argument("--name", required=True)
        p.add_argument("--role", action="append", default=[], choices=host.roles)
        p.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE")
        p.set_defaults(handler=lambda args: _issue(host, args))

    def default_profiles(self) -> Path | None:
        """The default network's profiles folder (``None`` without a consortium file:
        no ``$DTOKEN_CONFIG`` and no ``config/consortium.yaml`` here)."""
        if not default_config_path().exists():
            return None
        return load_network(None, None, quiet=True).state_dir / "profiles"


#: The entry point (``consortium.commands:plugin``).
plugin = NetworkCommands()


def _fail(code: int, message: str) -> int:
    label = "usage" if code == EXIT_USAGE else "network fault"
    print(f"dtoken: {label}: {message}", file=sys.stderr)
    return code


def _issue(host: Host, args: argparse.Namespace) -> int:
    org_name, profile = host.organization(args)
    state_dir = profile.resolve().parent.parent  # <state>/profiles/<org>.json
    if not (state_dir / "network.json").is_file():  # never write into a folder no network made
        return _fail(EXIT_USAGE, f"{profile} is not in a network's state folder "
                                 f"(<state>/profiles/): issue identities where the network's "
                                 f"CA keys are, with --state-dir or --profiles")
    attributes = {role: "true" for role in args.role}
    for item in args.attr:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return _fail(EXIT_USAGE, f"--attr {item!r} is not NAME=VALUE")
        attributes[key] = value
    try:
        network = load_network(None, state_dir, quiet=True)
        org = network.consortium.org(org_name)
        files = network.issue_identity(org, args.name, attributes)
    except KeyError as error:
        return _fail(EXIT_USAGE, f"configuration error: {error.args[0]}")
    except (ConfigError, CryptoError) as error:
        return _fail(EXIT_USAGE, str(error))
    except NetworkError as error:
        return _fail(EXIT_FAULT, str(error))
    issued = {"org": org.name, "msp_id": org.msp_id, "name": args.name,
              "cert": str(files.cert), "key": str(files.key),
              "msp_dir": str(files.msp_dir), "attributes": attributes}
    if getattr(args, "json", False):
        print(json.dumps(issued, indent=2))
    else:
        roles = ", ".join(args.role) or "no role"
        print(f"issued {args.name} for {org.name} ({roles}); certificate {files.cert}")
    return 0
