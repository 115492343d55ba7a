"""The ``dtoken`` command line: the operator's entry point.

``dtoken network ...`` manages the Fabric network (``consortium.cli``); the
bank commands (accounts, mint, transfer, ...) are added by the bank SDK.
Exit codes: 0 done, 2 bad usage or configuration, 3 network fault,
4 refused by the contract.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from consortium.cli import add_network_commands

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtoken", description="Deposit-token network: operate the network and a bank."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_network_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
