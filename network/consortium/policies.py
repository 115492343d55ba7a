"""Fabric's signature policy language compiled to a ``common.SignaturePolicyEnvelope``.

``OR('A.peer')``, ``AND('A.peer', 'B.peer')``, ``OutOf(2, 'A.peer', 'B.peer', 'C.peer')``,
nested at will; a principal is ``'<MSP id>.<role>'`` with role ``member``, ``admin``,
``client``, ``peer`` or ``orderer`` (single or double quotes); gate names in Fabric's three
spellings (``AND``/``And``/``and`` ...). The envelope is the one Fabric's ``policydsl.FromString``
(what ``peer lifecycle chaincode --signature-policy`` and ``configtxgen`` use) makes for the
same text, byte for byte: version 0, one principal per occurrence (never deduplicated), and
principals numbered as Fabric numbers them, each gate's nested gates first, then its own
principals, left to right.

Stricter than Fabric where Fabric accepts nonsense: ``OutOf(t, ...)`` needs 1 ≤ t ≤ the
number of its arguments (Fabric accepts 0, and n + 1, which nobody can satisfy).

Must not: know organizations or the consortium (callers write the text), or read files.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from consortium.errors import PolicyError

__all__ = ["ROLES", "any_member", "majority_of_peers", "signature_policy_envelope"]

# hyperledger-fabric-protos has no stubs: typed as Any, used through this module only.
_policies: Any = importlib.import_module("fabric_protos.common.policies_pb2")
_principal: Any = importlib.import_module("fabric_protos.msp.msp_principal_pb2")

#: The roles a principal may name, and their ``msp.MSPRole.MSPRoleType`` numbers.
ROLES: dict[str, int] = {"member": 0, "admin": 1, "client": 2, "peer": 3, "orderer": 4}
_GATES = {"and": "and", "or": "or", "outof": "outof"}
_GATE_SPELLINGS = {"AND", "And", "and", "OR", "Or", "or", "OUTOF", "OutOf", "outof"}
_PRINCIPAL = re.compile(r"^([A-Za-z0-9.-]+)\.(admin|member|client|peer|orderer)$")
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)|(?P<int>[0-9]+)"
                    r"|'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<punct>[(),]))")


@dataclass(frozen=True)
class _Gate:
    n: int
    args: tuple[_Gate | tuple[str, int], ...]  # a nested gate, or (MSP id, role number)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None:
                self.fail(f"unexpected character {text[pos:].lstrip()[:1]!r}", pos)
            kind = m.lastgroup or ""
            value = m.group(kind)
            self.tokens.append(("str" if kind in ("sq", "dq") else kind, value, m.start(kind)))
            pos = m.end()
        self.i = 0

    def fail(self, problem: str, pos: int | None = None) -> NoReturn:
        where = f" at character {pos + 1}" if pos is not None else ""
        raise PolicyError(f"signature policy {self.text!r}: {problem}{where}")

    def next(self, expected: str) -> tuple[str, str, int]:
        if self.i >= len(self.tokens):
            self.fail(f"ends early, {expected} expected")
        token = self.tokens[self.i]
        self.i += 1
        return token

    def gate(self) -> _Gate:
        kind, value, pos = self.next("AND, OR or OutOf")
        if kind == "name" and _PRINCIPAL.match(value):
            self.fail(f"a principal is written in quotes ('{value}'), not {value}", pos)
        if kind != "name" or value not in _GATE_SPELLINGS:
            self.fail(f"{value!r} is not a gate (AND, OR or OutOf)", pos)
        name = _GATES[value.lower()]
        kind, value, pos = self.next("'('")
        if (kind, value) != ("punct", "("):
            self.fail(f"'(' expected after {name.upper()}, not {value!r}", pos)
        threshold: int | None = None
        gate_pos = pos
        if name == "outof":
            kind, value, pos = self.next("a number")
            if kind != "int":
                self.fail(f"OutOf needs a number first, not {value!r}", pos)
            threshold = int(value)
            self.comma_or_close(pos, need_comma=True)
        args: list[_Gate | tuple[str, int]] = []
        while True:
            kind, value, pos = self.next("a principal or a gate")
            if kind == "str":
                m = _PRINCIPAL.match(value)
                if m is None:
                    self.fail(f"{value!r} is not a principal '<MSP id>.<role>' (role one of "
                              f"{', '.join(ROLES)})", pos)
                args.append((m.group(1), ROLES[m.group(2)]))
            elif kind == "name":
                self.i -= 1
                args.append(self.gate())
            else:
                self.fail(f"a principal or a gate expected, not {value!r}", pos)
            if self.comma_or_close(pos, need_comma=False) == ")":
                break
        if threshold is None:
            threshold = len(args) if name == "and" else 1
        if not 1 <= threshold <= len(args):
            self.fail(f"OutOf({threshold}, ...) over {len(args)} argument(s): the number must "
                      f"be between 1 and {len(args)}", gate_pos)
        return _Gate(threshold, tuple(args))

    def comma_or_close(self, pos: int, *, need_comma: bool) -> str:
        kind, value, at = self.next("',' or ')'")
        if kind != "punct" or value == "(" or (need_comma and value != ","):
            self.fail(f"{'a comma' if need_comma else 'a comma or )'} expected, not {value!r}",
                      at)
        return value


def _compile(gate: _Gate, identities: list[Any]) -> Any:
    # Fabric's evaluator runs a gate's nested gates (its arguments) before the gate itself,
    # which then numbers its own principals: nested principals get the lower numbers.
    nested = [_compile(a, identities) if isinstance(a, _Gate) else None for a in gate.args]
    rules = []
    for arg, compiled in zip(gate.args, nested, strict=True):
        if isinstance(arg, _Gate):
            rules.append(compiled)
            continue
        msp_id, role = arg
        principal = _principal.MSPRole(msp_identifier=msp_id, role=role)
        identities.append(_principal.MSPPrincipal(
            principal_classification=_principal.MSPPrincipal.ROLE,
            principal=principal.SerializeToString()))
        rules.append(_policies.SignaturePolicy(signed_by=len(identities) - 1))
    return _policies.SignaturePolicy(
        n_out_of=_policies.SignaturePolicy.NOutOf(n=gate.n, rules=rules))


def signature_policy_envelope(text: str) -> Any:
    """The ``common.SignaturePolicyEnvelope`` of ``text`` (a proto message);
    :class:`PolicyError` naming the text and the problem if it is not a policy."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(f"signature policy {text!r}: empty (e.g. OR('Org1MSP.peer'))")
    parser = _Parser(text)
    gate = parser.gate()
    if parser.i != len(parser.tokens):
        _, value, pos = parser.tokens[parser.i]
        parser.fail(f"unexpected {value!r} after the policy", pos)
    identities: list[Any] = []
    rule = _compile(gate, identities)
    return _policies.SignaturePolicyEnvelope(version=0, rule=rule, identities=identities)


def majority_of_peers(msp_ids: Sequence[str]) -> str:
    """``OutOf(k, 'A.peer', 'B.peer', ...)`` over ``msp_ids`` with ``k`` a strict majority
    (``len // 2 + 1``): what the ``ImplicitMeta`` rule ``MAJORITY Endorsement`` means when
    each organization's ``Endorsement`` policy is ``OR('<msp>.peer')``, as one signature
    policy. Fabric evaluates an ``ImplicitMeta`` rule by running each organization's
    sub-policy over the whole signature set, verifying every signature again each time (N x
    k signature checks per transaction on every peer); one ``OutOf`` verifies each signature
    once. :class:`PolicyError` for an empty list or a repeated MSP id."""
    if not msp_ids:
        raise PolicyError("a majority of peers needs at least one MSP id")
    if len(set(msp_ids)) != len(msp_ids):
        raise PolicyError(f"a majority of peers over repeated MSP ids: {list(msp_ids)}")
    principals = ", ".join(f"'{m}.peer'" for m in msp_ids)
    return f"OutOf({len(msp_ids) // 2 + 1}, {principals})"


def any_member(msp_ids: Sequence[str]) -> str:
    """``OR('A.member', 'B.member', ...)``: what the ``ImplicitMeta`` rules ``ANY Readers``
    and ``ANY Writers`` mean when each organization's ``Readers`` and ``Writers`` are
    ``OR('<msp>.member')``, as one signature policy. Fabric checks a proposal's creator
    against the channel's ``Writers`` (the ``peer/Propose`` ACL, and the orderer's
    ``Broadcast``) and every gossip message of the channel against its ``Readers``; the
    ``ImplicitMeta`` rule tries the organizations one by one, verifying the signature again for
    each, up to N times; one ``OR`` verifies it once. :class:`PolicyError` for an empty list
    or a repeated MSP id."""
    if not msp_ids:
        raise PolicyError("any member needs at least one MSP id")
    if len(set(msp_ids)) != len(msp_ids):
        raise PolicyError(f"any member over repeated MSP ids: {list(msp_ids)}")
    return "OR(" + ", ".join(f"'{m}.member'" for m in msp_ids) + ")"
