"""The deposit-token contract's exceptions: the wire package's refusal classes.

Every refusal is a class of :mod:`dtoken_wire.errors`, one per stable code; the contract raises
them and the bank SDK maps a refusal message back to the same class, so there is one class per
code in the whole project and nothing to keep equal. This module re-exports them under the
names the contract's modules import, with :data:`DepositTokenError` as the contract's name for
their root (:class:`dtoken_wire.errors.ContractError`). The tree is in that module's docstring.

Messages name fields and rules, never values: error messages are written into blocks that
every member of the channel holds, so an amount, an account id, an owner reference or a
client reference must never appear in one.
"""

from __future__ import annotations

# The module is the wire package's refusal tree under the contract's import path; listing the
# names again would be the copy this module exists to avoid.
from dtoken_wire.errors import *  # noqa: F403
from dtoken_wire.errors import ContractError
from dtoken_wire.errors import __all__ as _WIRE_NAMES

__all__ = [*_WIRE_NAMES, "DepositTokenError"]

#: Root of every exception the contract raises on purpose (``str(exc)`` is
#: ``"<CODE>: <detail>"``).
DepositTokenError = ContractError
