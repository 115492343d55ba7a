"""Tallies: the sums behind obligations, netting and the regulator's conservation audit.

Owns: :class:`Tally` (sums keyed by tuples of strings, carried in a scan's cursor between
pages), counting a transfer with its decision and refund into it (:func:`tally_transfer`),
and the reports built from a tally: what two banks owe each other
(:func:`obligations_report`) and whether every currency is conserved (:func:`audit_report`).

Must not: touch the ledger, read a clock or draw randomness (as :mod:`deposit_token.rules`,
whose transfer classification it uses).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dtoken_wire.requests import LedgerPosition

from .errors import InvalidArgument
from .records import Decision, Outcome, Refund, Transfer
from .rules import Effect, classify, decision_matches

__all__ = [
    "PairObligation",
    "Tally",
    "audit_report",
    "obligations_report",
    "tally_transfer",
]


class Tally:
    """Sums keyed by tuples of strings: the accumulator of paginated scans.

    Serializes to a JSON object (``"a/b/c": n``) so that a scan's state can travel in its
    cursor from one page to the next.
    """

    __slots__ = ("_sums",)

    def __init__(self, sums: Mapping[tuple[str, ...], int] | None = None) -> None:
        self._sums: dict[tuple[str, ...], int] = dict(sums or {})

    def add(self, key: tuple[str, ...], amount: int) -> None:
        """Add ``amount`` (may be 0, to make the key appear) under ``key``."""
        self._sums[key] = self._sums.get(key, 0) + amount

    def put(self, key: tuple[str, ...], amount: int) -> None:
        """Set the value under ``key`` (a latest-wins figure, such as a cap)."""
        self._sums[key] = amount

    def has(self, *key: str) -> bool:
        """Whether ``key`` was ever added or put."""
        return key in self._sums

    def get(self, *key: str) -> int:
        """The sum under ``key`` (0 if none)."""
        return self._sums.get(key, 0)

    def items(self) -> Iterable[tuple[tuple[str, ...], int]]:
        """Every (key, sum), sorted by key."""
        return sorted(self._sums.items())

    def keys_with(self, first: str) -> list[tuple[str, ...]]:
        """Keys whose first part is ``first``, sorted."""
        return sorted(k for k in self._sums if k and k[0] == first)

    def to_json(self) -> dict[str, int]:
        return {"/".join(k): v for k, v in sorted(self._sums.items())}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Tally:
        """Inverse of :meth:`to_json`; raises ``INVALID_ARGUMENT`` on a malformed cursor."""
        sums: dict[tuple[str, ...], int] = {}
        for k, v in data.items():
            if type(v) is not int or not k or len(k) > 128:
                raise InvalidArgument("cursor.tally is malformed")
            sums[tuple(k.split("/"))] = v
        return cls(sums)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tally) and self._sums == other._sums

    __hash__ = None  # type: ignore[assignment]


# Tally key shapes (first part names the family):
#   ("balance", bank, cur)                         sum of account balances
#   ("accounts", bank, cur)                        number of accounts
#   ("supply", bank, cur, kind, counterparty|"-")  sum of supply record amounts
#   ("xfer", payer, payee, cur, "initiated")       sum of transfer amounts
#   ("xfer", payer, payee, cur, effect)            sum by Effect
#   ("accepts", payer, payee, cur)                 sum of accept records (raw)
#   ("refunds", payer, payee, cur)                 sum of refund records (raw)
#   ("settled", debtor, creditor, cur)             sum of settlement confirmations
#   ("cap", debtor, creditor, cur)                 the creditor's cap in force (latest wins)
#   ("fxout", payer, payee, cur)                   converted transfers that count as accepted:
#                                                  the payer currency leaving token supply
#   ("fxin", payer, payee, cur)                    the same transfers' payee amounts, in the
#                                                  payee currency: entering token supply
#   ("escrowed", bank, cur)                        escrows within the bank still held
#   ("escrow", payer, payee, cur, state)           cross-bank escrows by EscrowState
#   ("anomaly", writers, collection, what)         count of records that count for nobody
#                                                  (deposit_token.placement.Anomaly)


def tally_transfer(
    tally: Tally,
    transfer: Transfer,
    decision: Decision | None,
    refund: Refund | None,
    order: Mapping[str, LedgerPosition] | None,
    hashes: tuple[str | None, str | None] = (None, None),
) -> Effect:
    """Count one transfer, with its decision and refund, into ``tally`` (``order`` and
    ``hashes``: see :func:`~deposit_token.rules.classify`).

    The records must already be bound to where they live and the decision must describe the
    transfer (:mod:`deposit_token.placement`; the scans note the others as anomalies).
    """
    if decision is not None and not decision_matches(transfer, decision):
        raise ValueError("a decision that does not describe its transfer is never counted")
    p, q, c = transfer.payer_bank, transfer.payee_bank, transfer.currency
    tally.add(("xfer", p, q, c, "initiated"), transfer.amount)
    effect = classify(decision, refund, order, hashes)
    tally.add(("xfer", p, q, c, effect.value), transfer.amount)
    if decision is not None and decision.outcome is Outcome.ACCEPTED:
        # what the payee bank's ``in`` records must hold: in the currency it credited
        tally.add(("accepts", p, q, transfer.credit_currency), transfer.credit_amount)
    if transfer.quote_id and effect is Effect.ACCEPTED:
        # converted: the obligation stays in the payer currency (``xfer`` above), the payer
        # currency leaves the token supply, the payee currency enters it
        tally.add(("fxout", p, q, c), transfer.amount)
        tally.add(("fxin", p, q, transfer.payee_currency), transfer.payee_amount)
    if refund is not None:
        tally.add(("refunds", p, q, c), refund.amount)
    return effect


@dataclass(frozen=True)
class PairObligation:
    """What ``debtor`` owes ``creditor`` in ``currency``: accepted less settled; and the
    creditor's exposure cap on the debtor (``None``: none set)."""

    debtor: str
    creditor: str
    currency: str
    accepted: int
    settled: int
    disputed: int
    cap: int | None = None

    @property
    def owed(self) -> int:
        """Accepted less settled (negative if the debtor prepaid)."""
        return self.accepted - self.settled

    @property
    def headroom(self) -> int | None:
        """What the creditor may still accept from the debtor under its cap: the cap less
        what is owed and what is disputed (a disputed transfer was credited by the
        creditor; counting it is the cautious side), never below 0; ``None`` without a cap."""
        if self.cap is None:
            return None
        return max(0, self.cap - self.owed - self.disputed)

    @property
    def over_cap(self) -> bool:
        """Whether what is owed (disputed included) exceeds the cap."""
        return self.cap is not None and self.owed + self.disputed > self.cap

    def to_json(self) -> dict[str, object]:
        return {
            "debtor": self.debtor,
            "creditor": self.creditor,
            "currency": self.currency,
            "accepted": self.accepted,
            "settled": self.settled,
            "disputed": self.disputed,
            "owed": self.owed,
            "cap": self.cap,
            "headroom": self.headroom,
        }


def obligations_report(tally: Tally, bank_a: str, bank_b: str) -> dict[str, object]:
    """Obligations between two banks, both ways, and their net per currency.

    ``net[cur]`` > 0 means ``bank_a`` owes ``bank_b`` that much net of what ``bank_b`` owes.
    """
    currencies = sorted(
        {k[3] for k in tally.keys_with("xfer")} | {k[3] for k in tally.keys_with("settled")}
        | {k[3] for k in tally.keys_with("cap")}
    )
    pairs: list[PairObligation] = []
    for debtor, creditor in ((bank_a, bank_b), (bank_b, bank_a)):
        for c in currencies:
            ob = PairObligation(
                debtor,
                creditor,
                c,
                accepted=tally.get("xfer", debtor, creditor, c, Effect.ACCEPTED.value),
                settled=tally.get("settled", debtor, creditor, c),
                disputed=tally.get("xfer", debtor, creditor, c, Effect.DISPUTED.value),
                cap=_cap(tally, debtor, creditor, c),
            )
            if ob.accepted or ob.settled or ob.disputed or ob.cap is not None:
                pairs.append(ob)
    net: dict[str, int] = {}
    for ob in pairs:
        sign = 1 if ob.debtor == bank_a else -1
        net[ob.currency] = net.get(ob.currency, 0) + sign * ob.owed
    anomalies = {
        "/".join(k[1:]): v for k, v in tally.items() if k[0] == "anomaly"
    }
    return {
        "banks": [bank_a, bank_b],
        "obligations": [ob.to_json() for ob in pairs],
        "net": net,
        "anomalies": anomalies,
    }


def _cap(tally: Tally, debtor: str, creditor: str, currency: str) -> int | None:
    return (tally.get("cap", debtor, creditor, currency)
            if tally.has("cap", debtor, creditor, currency) else None)


def _supply_signs(tally: Tally) -> list[tuple[tuple[str, ...], int]]:
    signs = {"mint": 1, "burn": -1, "internal": 0, "out": -1, "in": 1, "refund": 1}
    return [(k, signs[k[3]]) for k in tally.keys_with("supply") if len(k) == 5]


def audit_report(tally: Tally, banks: Sequence[str]) -> dict[str, object]:
    """The regulator's checks over a complete tally (DESIGN §5 "Conservation", §7).

    * per bank and currency: the accounts' balances, plus what is held in escrows within the
      bank (``escrowed``), equal the bank's supply records;
    * per pair and currency: the payer's ``out`` supply records equal its transfers, its
      ``refund`` records its refunds, and the payee's ``in`` records its accepts;
    * per currency: supply of every bank plus what is in flight equals minted less burned,
      less what converted transfers took out of the currency (``converted_out``: their payer
      amounts), plus what they brought in (``converted_in``: their payee amounts) (a transfer
      both accepted and refunded shows here as ``excess``);
    * per pair and currency: obligations, accepted less settled;
    * every exposure cap in force (``caps``), and those exceeded (``over_cap``: listed, not a
      failure; see :func:`_caps_report`).
    """
    failures: list[str] = []
    currencies = sorted(
        {k[2] for k, _ in tally.items() if k[0] in ("balance", "accounts", "supply")}
        | {k[3] for k, _ in tally.items()
           if k[0] in ("xfer", "settled", "accepts", "refunds", "cap", "fxout", "fxin")}
    )
    per_bank: list[dict[str, object]] = []
    for b in banks:
        for c in currencies:
            deltas = {
                kind: sum(
                    v for k, v in tally.items() if k[:4] == ("supply", b, c, kind)
                )
                for kind in ("mint", "burn", "internal", "out", "in", "refund")
            }
            supply = (
                deltas["mint"] - deltas["burn"] - deltas["out"] + deltas["in"] + deltas["refund"]
            )
            escrowed = tally.get("escrowed", b, c)
            balance = tally.get("balance", b, c) + escrowed
            if not (supply or balance or any(deltas.values()) or tally.get("accounts", b, c)):
                continue
            ok = supply == balance
            if not ok:
                failures.append(f"balances of {b} in {c} differ from its supply records")
            per_bank.append(
                {"bank": b, "currency": c, "supply": supply, "balances": balance - escrowed,
                 "escrowed": escrowed,
                 "accounts": tally.get("accounts", b, c), "minted": deltas["mint"],
                 "burned": deltas["burn"], "ok": ok}
            )
    per_pair: list[dict[str, object]] = []
    for p in banks:
        for q in banks:
            if p == q:
                continue
            for c in currencies:
                initiated = tally.get("xfer", p, q, c, "initiated")
                out = tally.get("supply", p, c, "out", q)
                refunded_books = tally.get("supply", p, c, "refund", q)
                credited_books = tally.get("supply", q, c, "in", p)
                accepts = tally.get("accepts", p, q, c)
                refunds = tally.get("refunds", p, q, c)
                settled = tally.get("settled", p, q, c)
                if not (initiated or out or refunded_books or credited_books or settled):
                    continue
                checks = {
                    "out_matches_transfers": out == initiated,
                    "refunds_match": refunded_books == refunds,
                    "credits_match_accepts": credited_books == accepts,
                }
                for name, passed in checks.items():
                    if not passed:
                        failures.append(f"{p}->{q} {c}: {name} fails")
                effects = {e.value: tally.get("xfer", p, q, c, e.value) for e in Effect}
                if effects[Effect.DISPUTED.value]:
                    failures.append(f"{p}->{q} {c}: transfers both accepted and refunded")
                per_pair.append(
                    {"payer": p, "payee": q, "currency": c, "initiated": initiated,
                     **effects, "settled": settled,
                     "in_escrow": sum(tally.get("escrow", p, q, c, s)
                                      for s in ("held", "due", "released")),
                     "owed": effects[Effect.ACCEPTED.value] - settled,
                     "cap": _cap(tally, p, q, c), **checks}
                )
    per_currency: list[dict[str, object]] = []
    for c in currencies:
        supply = sum(
            tally.get("supply", b, c, kind, cp) * sign
            for (_, b, cur, kind, cp), sign in _supply_signs(tally)
            if cur == c
        )
        in_flight = sum(
            tally.get("xfer", p, q, c, Effect.IN_FLIGHT.value)
            for p in banks for q in banks if p != q
        )
        minted = sum(tally.get("supply", b, c, "mint", "-") for b in banks)
        burned = sum(tally.get("supply", b, c, "burn", "-") for b in banks)
        converted_out = sum(v for k, v in tally.items() if k[0] == "fxout" and k[3] == c)
        converted_in = sum(v for k, v in tally.items() if k[0] == "fxin" and k[3] == c)
        excess = supply + in_flight - (minted - burned - converted_out + converted_in)
        if excess:
            failures.append(f"{c}: supply plus in-flight differs from minted less burned")
        per_currency.append(
            {"currency": c, "supply": supply, "in_flight": in_flight, "minted": minted,
             "burned": burned, "converted_out": converted_out, "converted_in": converted_in,
             "excess": excess, "ok": excess == 0}
        )
    anomalies = {"/".join(k[1:]): v for k, v in tally.items() if k[0] == "anomaly"}
    if anomalies:
        failures.append("inconsistent records found (see anomalies)")
    caps = _caps_report(tally)
    return {
        "ok": not failures,
        "failures": failures,
        "banks": per_bank,
        "pairs": per_pair,
        "currencies": per_currency,
        "anomalies": anomalies,
        "caps": [c.to_json() for c in caps],
        "over_cap": [c.to_json() for c in caps if c.over_cap],
    }


def _caps_report(tally: Tally) -> list[PairObligation]:
    """Every cap in force, with what its debtor owes. A pair over its cap is listed, not
    failed: a cap is the creditor's own limit, enforced by the creditor when it accepts
    (a creditor may accept beyond it on purpose, or lower it below what is owed)."""
    out: list[PairObligation] = []
    for _, debtor, creditor, c in tally.keys_with("cap"):
        out.append(PairObligation(
            debtor, creditor, c,
            accepted=tally.get("xfer", debtor, creditor, c, Effect.ACCEPTED.value),
            settled=tally.get("settled", debtor, creditor, c),
            disputed=tally.get("xfer", debtor, creditor, c, Effect.DISPUTED.value),
            cap=tally.get("cap", debtor, creditor, c)))
    return out

