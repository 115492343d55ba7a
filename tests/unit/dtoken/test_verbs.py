"""The table in docs/sdk.md that maps the SDK's verbs to the contract's transactions is true:
every SDK method it names exists, every transaction it names is declared with the request
type it names, and every declared transaction is in it."""

from __future__ import annotations

import re
from pathlib import Path

from deposit_token.operations import TRANSACTIONS
from dtoken.bank import Bank, Regulator
from dtoken_wire import conditional as c
from dtoken_wire import requests as w

DOC = Path(__file__).parents[3] / "docs" / "sdk.md"
CLASSES = {"Bank": Bank, "Regulator": Regulator}


def _rows() -> list[tuple[list[str], str, str]]:
    text = DOC.read_text()
    section = text.split("## SDK methods and the contract's transactions", 1)[1].split("\n## ")[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].startswith("`"):
            continue
        methods = re.findall(r"`(\w+\.\w+)`", cells[0])
        rows.append((methods, cells[1].strip("`"), cells[2].strip("`")))
    return rows


def test_every_sdk_method_of_the_table_exists() -> None:
    for methods, _, _ in _rows():
        for qualified in methods:
            owner, name = qualified.split(".")
            assert callable(getattr(CLASSES[owner], name, None)), qualified


def test_each_transaction_of_the_table_is_declared_with_that_request() -> None:
    named = set()
    for _, transaction, request in _rows():
        spec = TRANSACTIONS[transaction]
        named.add(transaction)
        if request == "none":
            assert spec.request is None
        else:
            assert spec.request is (getattr(w, request, None) or getattr(c, request)), (
                transaction)
    assert named == set(TRANSACTIONS)
