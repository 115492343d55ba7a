"""Every deposit-token contract test runs twice: on one namespace, and on the namespace
layout (each organization's namespace, pair collections reached through the storage
chaincode: docs/architecture.md, "Namespace layout"). Assertions are the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from unit.deposit_token import dt_harness


@pytest.fixture(autouse=True, params=[False, True], ids=["one-namespace", "layout"])
def namespace_layout(request: pytest.FixtureRequest) -> Iterator[bool]:
    if getattr(request.module, "LAYOUT_ONLY", False) and not request.param:
        pytest.skip("a test of the namespace layout itself")
    not_on_layout = getattr(request.module, "NOT_ON_LAYOUT", "")
    if not_on_layout and request.param:
        pytest.skip(not_on_layout)
    previous = dt_harness.DEFAULT_LAYOUT
    dt_harness.DEFAULT_LAYOUT = bool(request.param)
    try:
        yield bool(request.param)
    finally:
        dt_harness.DEFAULT_LAYOUT = previous
