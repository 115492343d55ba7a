"""Parties that sign escrow statements, and a funded buyer and seller, for the escrow tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dtoken_wire.codec import format_timestamp
from dtoken_wire.conditional import Verdict, statement_message
from unit.deposit_token.dt_harness import Net, ids

HK, US, CN = "hkbank", "usbank", "cnbank"
FUNDS = 1_000_000
PRICE = 123_457


@dataclass
class Signer:
    """An attester or arbiter: a name and a P-256 key."""

    name: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def pem(self) -> str:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")

    def sign(self, escrow: dict[str, Any], verdict: str, at: datetime,
             signer: str | None = None) -> dict[str, str]:
        """A statement about ``escrow`` (its JSON as ``get_escrow`` returns it)."""
        signed_at = format_timestamp(at)
        name = signer or self.name
        message = statement_message(
            escrow_id=escrow["escrow_id"], payer_bank=escrow["payer_bank"],
            payee_bank=escrow["payee_bank"], amount=escrow["amount"],
            currency=escrow["currency"], verdict=Verdict(verdict), signer=name,
            signed_at=signed_at)
        signature = self.key.sign(message, ec.ECDSA(hashes.SHA256()))
        return {"signer": name, "verdict": verdict, "signed_at": signed_at,
                "signature": base64.b64encode(signature).decode("ascii")}


@dataclass
class Trade:
    """A buyer at ``payer_bank`` and a seller at ``payee_bank`` (USD), with a marketplace
    attester and an arbiter registered at the buyer's bank."""

    net: Net
    payer_bank: str
    payee_bank: str
    buyer: str
    seller: str
    attester: Signer
    arbiter: Signer
    n: int = 0

    async def open(self, *, amount: int = PRICE, days: float = 7, **extra: Any) -> dict[str, Any]:
        """Open an escrow; return its JSON (as ``get_escrow`` shows it)."""
        self.n += 1
        ref = f"order-{self.payer_bank}-{self.n}"
        request: dict[str, Any] = {
            "reference": ref, "payer_account": self.buyer, "payee_bank": self.payee_bank,
            "payee_account": self.seller, "amount": amount,
            "deadline": format_timestamp(self.net.now + timedelta(days=days)),
            "attester": self.attester.name, "arbiter": self.arbiter.name,
            "remittance": f"order {self.n}", **extra,
        }
        request = {k: v for k, v in request.items() if v is not None}
        await self.net.submit(self.payer_bank, "open_escrow", request)
        got = await self.net.evaluate(self.payer_bank, "get_reference", {"reference": ref})
        (eid,) = got["ids"]
        return (await self.view(str(eid)))["escrow"]  # type: ignore[no-any-return]

    async def view(self, escrow_id: str, org: str | None = None) -> dict[str, Any]:
        return await self.net.evaluate(org or self.payer_bank, "get_escrow", {
            "escrow_id": escrow_id, "payer_bank": self.payer_bank,
            "payee_bank": self.payee_bank})

    async def claim(self, escrow: dict[str, Any], statement: dict[str, str] | None = None,
                    ) -> None:
        req: dict[str, Any] = {"escrow_id": escrow["escrow_id"], "payer_bank": self.payer_bank}
        if statement is not None:
            req["statement"] = statement
        await self.net.submit(self.payee_bank, "claim_escrow", req)

    async def refund(self, escrow: dict[str, Any], statement: dict[str, str] | None = None,
                     ) -> None:
        req: dict[str, Any] = {"escrow_id": escrow["escrow_id"], "payee_bank": self.payee_bank}
        if statement is not None:
            req["statement"] = statement
        await self.net.submit(self.payer_bank, "refund_escrow", req)

    async def release(self, escrow: dict[str, Any]) -> None:
        await self.net.submit(self.payer_bank, "release_escrow", {
            "escrow_id": escrow["escrow_id"], "payee_bank": self.payee_bank})

    async def balances(self) -> tuple[int, int]:
        return (await self.net.balance(self.payer_bank, self.buyer),
                await self.net.balance(self.payee_bank, self.seller))


async def trade(payer_bank: str = HK, payee_bank: str = US, net: Net | None = None) -> Trade:
    """A network with a funded buyer, a seller and two registered parties."""
    if net is None:
        net = Net()
        await net.init()
    (buyer,) = ids(f"buy{payer_bank}", 1)
    (seller,) = ids(f"sel{payee_bank}", 1)
    await net.open(payer_bank, "USD", buyer)
    await net.mint(payer_bank, buyer, FUNDS, f"dep-{buyer}")
    await net.open(payee_bank, "USD", seller)
    attester, arbiter = Signer("marketplace"), Signer("arbiter-hk")
    for party in (attester, arbiter):
        await net.submit(payer_bank, "register_attester",
                         {"name": party.name, "public_key_pem": party.pem})
    return Trade(net, payer_bank, payee_bank, buyer, seller, attester, arbiter)
