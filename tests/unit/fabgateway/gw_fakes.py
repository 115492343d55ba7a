"""An in-process fake of a Fabric peer's Gateway and Deliver services, for fabgateway's tests.

It checks what a real peer checks of the client's messages (signatures over the exact bytes,
low-S ECDSA, tx id = SHA-256(nonce || creator), header fields) and answers with real protobuf
structures: ProposalResponsePayload/ChaincodeAction results inside a prepared transaction
envelope, google.rpc.Status details carrying gateway.ErrorDetail, chaincode events per block.

Everything it verifies it verifies independently of fabgateway's code: its own hashing, its own
wire encoding of google.rpc.Status.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.msp import identities_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    events_pb2,
    events_pb2_grpc,
    peer_pb2_grpc,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from unit.fabgateway import block_builder

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PEER_ADDRESS = "peer0.org1.example.com:7051"
PEER_MSP = "Org1MSP"
VALID = transaction_pb2.TxValidationCode.Value("VALID")


# --- identities -----------------------------------------------------------------------------


def make_certificate(private_key: Any, common_name: str = "client") -> bytes:
    """A self-signed PEM certificate for ``private_key``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    algorithm = None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private_key, algorithm)
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def verify_signature(creator: bytes, message: bytes, signature: bytes) -> str | None:
    """None if ``signature`` is the creator's valid signature of ``message``, else why not."""
    identity = identities_pb2.SerializedIdentity()
    identity.ParseFromString(creator)
    try:
        public_key = x509.load_pem_x509_certificate(identity.id_bytes).public_key()
    except ValueError as error:
        return f"creator certificate does not parse: {error}"
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            _, s = decode_dss_signature(signature)
            if isinstance(public_key.curve, ec.SECP256R1) and s > P256_ORDER // 2:
                return "ECDSA signature is not low-S"
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, message)
        else:
            return f"unsupported key {type(public_key).__name__}"
    except Exception as error:  # cryptography raises InvalidSignature
        return f"signature does not verify: {type(error).__name__}"
    return None


# --- google.rpc.Status, encoded by hand (independent of fabgateway's decoder) --------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire_type)
    if wire_type == 0:
        assert isinstance(payload, int)
        return key + _varint(payload)
    assert isinstance(payload, bytes)
    return key + _varint(len(payload)) + payload


def encode_status(code: int, message: str, details: list[tuple[str, bytes]]) -> bytes:
    """google.rpc.Status{code=1, message=2, details=3 (Any{type_url=1, value=2})}."""
    out = _field(1, 0, code) + _field(2, 2, message.encode())
    for type_url, value in details:
        out += _field(3, 2, _field(1, 2, type_url.encode()) + _field(2, 2, value))
    return out


def error_detail_any(address: str, msp_id: str, message: str) -> tuple[str, bytes]:
    detail = gateway_pb2.ErrorDetail(address=address, msp_id=msp_id, message=message)
    return "type.googleapis.com/gateway.ErrorDetail", detail.SerializeToString()


async def abort_with_details(
    context: Any, code: grpc.StatusCode, message: str, details: list[tuple[str, str, str]]
) -> None:
    status = encode_status(
        code.value[0], message, [error_detail_any(*detail) for detail in details]
    )
    await context.abort(code, message, trailing_metadata=(("grpc-status-details-bin", status),))


# --- the fake peer ------------------------------------------------------------------------


class ChaincodeFailure(Exception):
    """Raised by a fake chaincode function: the peer answers with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Invocation:
    """What the fake decoded from one proposal."""

    transaction_id: str
    channel_id: str
    chaincode: str
    args: list[bytes]
    transient: dict[str, bytes]
    creator: bytes
    nonce: bytes
    timestamp_seconds: int
    endorsing_organizations: list[str]


@dataclass
class Result:
    payload: bytes = b""
    event: tuple[str, bytes] | None = None  # (event name, payload)


Handler = Callable[[Invocation], Awaitable[Result] | Result]


@dataclass
class Block:
    number: int
    transactions: list[tuple[str, int, Any]] = field(default_factory=list)
    # (tx id, validation code, chaincode event or None)


def decode_signed_proposal(signed: Any, request: Any = None) -> Invocation | str:
    """A signed proposal checked as a peer checks it (signature, tx id, header type, chaincode
    id; against ``request``'s transaction and channel ids when the Gateway call carries
    them): the :class:`Invocation`, or what is wrong with it."""
    proposal = proposal_pb2.Proposal()
    proposal.ParseFromString(signed.proposal_bytes)
    header = common_pb2.Header()
    header.ParseFromString(proposal.header)
    channel_header = common_pb2.ChannelHeader()
    channel_header.ParseFromString(header.channel_header)
    signature_header = common_pb2.SignatureHeader()
    signature_header.ParseFromString(header.signature_header)
    extension = proposal_pb2.ChaincodeHeaderExtension()
    extension.ParseFromString(channel_header.extension)
    payload = proposal_pb2.ChaincodeProposalPayload()
    payload.ParseFromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec()
    spec.ParseFromString(payload.input)

    why = verify_signature(signature_header.creator, signed.proposal_bytes, signed.signature)
    if why:
        return why
    expected_id = hashlib.sha256(signature_header.nonce + signature_header.creator).hexdigest()
    if channel_header.tx_id != expected_id:
        return f"tx id {channel_header.tx_id} is not sha256(nonce||creator) {expected_id}"
    if request is not None and request.transaction_id != channel_header.tx_id:
        return "request transaction_id differs from the header's tx_id"
    if channel_header.type != common_pb2.HeaderType.Value("ENDORSER_TRANSACTION"):
        return f"channel header type {channel_header.type}"
    if request is not None and request.channel_id != channel_header.channel_id:
        return "request channel_id differs from the header's"
    if channel_header.epoch != 0 or channel_header.timestamp.seconds == 0:
        return "bad epoch or missing timestamp"
    name = spec.chaincode_spec.chaincode_id.name
    if not name or extension.chaincode_id.name != name:
        return "chaincode id missing or differs between header extension and spec"
    if len(signature_header.nonce) == 0:
        return "empty nonce"
    return Invocation(
        transaction_id=channel_header.tx_id,
        channel_id=channel_header.channel_id,
        chaincode=name,
        args=list(spec.chaincode_spec.input.args),
        transient=dict(payload.TransientMap),
        creator=signature_header.creator,
        nonce=signature_header.nonce,
        timestamp_seconds=channel_header.timestamp.seconds,
        endorsing_organizations=list(
            getattr(request, "endorsing_organizations", None)
            or getattr(request, "target_organizations", [])
        ),
    )


class FakePeer(gateway_pb2_grpc.GatewayServicer, events_pb2_grpc.DeliverServicer):  # type: ignore[misc]
    """The Gateway and Deliver services of one fake peer, over an in-memory ledger."""

    def __init__(self) -> None:
        self.functions: dict[str, Handler] = {}
        self.commit_codes: dict[str, int] = {}  # tx id -> validation code to record
        self.fail: dict[str, tuple[grpc.StatusCode, str, list[tuple[str, str, str]]]] = {}
        self.problems: list[str] = []  # protocol violations seen (tests assert it stays empty)
        self.endorse_requests: list[Any] = []
        self.evaluate_requests: list[Any] = []
        self.submit_requests: list[Any] = []
        self.events_requests: list[Any] = []
        self.deliver_requests: list[Any] = []
        self.deliver_started = asyncio.Event()  # set when a deliver request was read
        self.events_started = asyncio.Event()  # set when a chaincode-events request was read
        self.invocations: dict[str, Invocation] = {}
        self.blocks: list[Block] = [Block(0)]  # block 0: the genesis block
        self.ignore_after_transaction_id = False
        # Deliver sends blocks laid out as a peer's (envelopes with each transaction's event,
        # the transactions filter): False keeps the bare blocks of tx ids older tests read.
        self.full_blocks = False
        self.commit_delay = 0.0
        self.endorse_delay = 0.0
        # Hold every endorsement until this many are in flight (or 10 s after the first one
        # arrived): a test that nothing serializes the calls, independent of how fast the
        # machine builds them.
        self.hold_until_in_flight = 0
        self._in_flight_changed = asyncio.Condition()
        self._hold_deadline: float | None = None
        self._committed: dict[str, asyncio.Event] = {}
        self._new_block = asyncio.Condition()
        self.in_flight = 0
        self.max_in_flight = 0

    # --- helpers for tests ------------------------------------------------------------

    def function(self, name: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.functions[name] = handler
            return handler

        return register

    async def add_block(self, transactions: list[tuple[str, int, Any]]) -> Block:
        async with self._new_block:
            block = Block(len(self.blocks), transactions)
            self.blocks.append(block)
            for tx_id, _, _ in transactions:
                self._committed.setdefault(tx_id, asyncio.Event()).set()
            self._new_block.notify_all()
        return block

    async def add_event_block(self, chaincode: str, *events: tuple[str, str]) -> Block:
        """A block of valid transactions, each emitting one event (tx id, event name)."""
        return await self.add_block(
            [
                (
                    tx_id,
                    VALID,
                    chaincode_event_pb2.ChaincodeEvent(
                        chaincode_id=chaincode,
                        tx_id=tx_id,
                        event_name=name,
                        payload=f"{name}-payload".encode(),
                    ),
                )
                for tx_id, name in events
            ]
        )

    def problem(self, text: str) -> None:
        self.problems.append(text)

    # --- decoding and checking ---------------------------------------------------------

    def _decode_proposal(self, request: Any, signed: Any) -> Invocation | str:
        return decode_signed_proposal(signed, request)

    async def _run(self, invocation: Invocation) -> Result:
        fn = invocation.args[0].decode() if invocation.args else ""
        handler = self.functions.get(fn)
        if handler is None:
            raise ChaincodeFailure(500, f"function {fn} not found")
        result = handler(invocation)
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        assert isinstance(result, Result)
        return result

    async def _injected(self, stage: str, context: Any) -> None:
        failure = self.fail.get(stage)
        if failure:
            await abort_with_details(context, *failure)

    # --- Gateway service ---------------------------------------------------------------

    async def Evaluate(self, request: Any, context: Any) -> Any:
        self.evaluate_requests.append(request)
        await self._injected("evaluate", context)
        decoded = self._decode_proposal(request, request.proposed_transaction)
        if isinstance(decoded, str):
            self.problem(f"evaluate: {decoded}")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, decoded)
        assert isinstance(decoded, Invocation)
        try:
            result = await self._run(decoded)
        except ChaincodeFailure as failure:
            message = f"chaincode response {failure.status}, {failure.message}"
            await abort_with_details(
                context,
                grpc.StatusCode.UNKNOWN,
                f"evaluate call to endorser returned error: {message}",
                [(PEER_ADDRESS, PEER_MSP, message)],
            )
            raise AssertionError("unreachable") from None
        response = proposal_response_pb2.Response(status=200, payload=result.payload)
        return gateway_pb2.EvaluateResponse(result=response)

    async def Endorse(self, request: Any, context: Any) -> Any:
        self.endorse_requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold_until_in_flight:
                now = asyncio.get_running_loop().time()
                if self._hold_deadline is None:
                    self._hold_deadline = now + 10
                async with self._in_flight_changed:
                    self._in_flight_changed.notify_all()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._in_flight_changed.wait_for(
                            lambda: self.max_in_flight >= self.hold_until_in_flight),
                            max(0.0, self._hold_deadline - now))
            if self.endorse_delay:
                await asyncio.sleep(self.endorse_delay)
            await self._injected("endorse", context)
            decoded = self._decode_proposal(request, request.proposed_transaction)
            if isinstance(decoded, str):
                self.problem(f"endorse: {decoded}")
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, decoded)
            assert isinstance(decoded, Invocation)
            if any(t[0] == decoded.transaction_id for b in self.blocks for t in b.transactions):
                creator = decoded.creator.hex()
                await abort_with_details(
                    context,
                    grpc.StatusCode.ABORTED,
                    "failed to endorse transaction, see attached details for more info",
                    [
                        (
                            PEER_ADDRESS,
                            PEER_MSP,
                            f"duplicate transaction found [{decoded.transaction_id}]. "
                            f"Creator [{creator}]",
                        )
                    ],
                )
            try:
                result = await self._run(decoded)
            except ChaincodeFailure as failure:
                await abort_with_details(
                    context,
                    grpc.StatusCode.ABORTED,
                    "failed to endorse transaction, see attached details for more info",
                    [
                        (
                            PEER_ADDRESS,
                            PEER_MSP,
                            f"chaincode response {failure.status}, {failure.message}",
                        )
                    ],
                )
                raise AssertionError("unreachable") from None
            self.invocations[decoded.transaction_id] = decoded
            return gateway_pb2.EndorseResponse(
                prepared_transaction=self._prepare(request.proposed_transaction, result)
            )
        finally:
            self.in_flight -= 1

    def _prepare(self, signed: Any, result: Result) -> Any:
        """The transaction envelope as a Gateway assembles it (payload unsigned)."""
        proposal = proposal_pb2.Proposal()
        proposal.ParseFromString(signed.proposal_bytes)
        header = common_pb2.Header()
        header.ParseFromString(proposal.header)
        cc_payload = proposal_pb2.ChaincodeProposalPayload()
        cc_payload.ParseFromString(proposal.payload)
        events = b""
        if result.event is not None:
            channel_header = common_pb2.ChannelHeader()
            channel_header.ParseFromString(header.channel_header)
            extension = proposal_pb2.ChaincodeHeaderExtension()
            extension.ParseFromString(channel_header.extension)
            events = chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=extension.chaincode_id.name,
                tx_id=channel_header.tx_id,
                event_name=result.event[0],
                payload=result.event[1],
            ).SerializeToString()
        action = proposal_pb2.ChaincodeAction(
            results=b"rwset",
            events=events,
            response=proposal_response_pb2.Response(status=200, payload=result.payload),
        )
        response_payload = proposal_response_pb2.ProposalResponsePayload(
            proposal_hash=hashlib.sha256(signed.proposal_bytes).digest(),
            extension=action.SerializeToString(),
        )
        endorsed = transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=response_payload.SerializeToString(),
            endorsements=[
                proposal_response_pb2.Endorsement(endorser=b"peer0", signature=b"endorsement")
            ],
        )
        action_payload = transaction_pb2.ChaincodeActionPayload(
            chaincode_proposal_payload=proposal_pb2.ChaincodeProposalPayload(
                input=cc_payload.input
            ).SerializeToString(),
            action=endorsed,
        )
        tx = transaction_pb2.Transaction(
            actions=[
                transaction_pb2.TransactionAction(
                    header=header.signature_header, payload=action_payload.SerializeToString()
                )
            ]
        )
        payload = common_pb2.Payload(header=header, data=tx.SerializeToString())
        return common_pb2.Envelope(payload=payload.SerializeToString())

    async def Submit(self, request: Any, context: Any) -> Any:
        self.submit_requests.append(request)
        await self._injected("submit", context)
        envelope = request.prepared_transaction
        payload = common_pb2.Payload()
        payload.ParseFromString(envelope.payload)
        signature_header = common_pb2.SignatureHeader()
        signature_header.ParseFromString(payload.header.signature_header)
        channel_header = common_pb2.ChannelHeader()
        channel_header.ParseFromString(payload.header.channel_header)
        why = verify_signature(signature_header.creator, envelope.payload, envelope.signature)
        if why is None and channel_header.tx_id != request.transaction_id:
            why = "request transaction_id differs from the envelope's"
        if why is None and channel_header.channel_id != request.channel_id:
            why = "request channel_id differs from the envelope's"
        if why is None and channel_header.tx_id not in self.invocations:
            why = "transaction was never endorsed"
        if why:
            self.problem(f"submit: {why}")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, why)
        tx_id = channel_header.tx_id
        code = self.commit_codes.get(tx_id, VALID)
        event = self._event_of(envelope) if code == VALID else None
        asyncio.get_running_loop().call_later(
            self.commit_delay, lambda: asyncio.ensure_future(self.add_block([(tx_id, code, event)]))
        )
        return gateway_pb2.SubmitResponse()

    @staticmethod
    def _event_of(envelope: Any) -> Any:
        payload = common_pb2.Payload()
        payload.ParseFromString(envelope.payload)
        tx = transaction_pb2.Transaction()
        tx.ParseFromString(payload.data)
        action_payload = transaction_pb2.ChaincodeActionPayload()
        action_payload.ParseFromString(tx.actions[0].payload)
        response_payload = proposal_response_pb2.ProposalResponsePayload()
        response_payload.ParseFromString(action_payload.action.proposal_response_payload)
        action = proposal_pb2.ChaincodeAction()
        action.ParseFromString(response_payload.extension)
        if not action.events:
            return None
        event = chaincode_event_pb2.ChaincodeEvent()
        event.ParseFromString(action.events)
        return event

    async def CommitStatus(self, request: Any, context: Any) -> Any:
        await self._injected("commit_status", context)
        inner = gateway_pb2.CommitStatusRequest()
        inner.ParseFromString(request.request)
        why = verify_signature(inner.identity, request.request, request.signature)
        if why:
            self.problem(f"commit status: {why}")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
        committed = self._committed.setdefault(inner.transaction_id, asyncio.Event())
        await committed.wait()
        for block in self.blocks:
            for tx_id, code, _ in block.transactions:
                if tx_id == inner.transaction_id:
                    return gateway_pb2.CommitStatusResponse(result=code, block_number=block.number)
        raise AssertionError("committed transaction not in any block")

    async def ChaincodeEvents(self, request: Any, context: Any) -> Any:
        self.events_requests.append(request)
        self.events_started.set()
        await self._injected("chaincode_events", context)
        inner = gateway_pb2.ChaincodeEventsRequest()
        inner.ParseFromString(request.request)
        why = verify_signature(inner.identity, request.request, request.signature)
        if why:
            self.problem(f"chaincode events: {why}")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
        after = "" if self.ignore_after_transaction_id else inner.after_transaction_id
        # Start block, as Fabric's gateway computes it.
        start = None
        if after:
            start = next(
                (b.number for b in self.blocks for t in b.transactions if t[0] == after), None
            )
        if start is None:
            kind = inner.start_position.WhichOneof("Type")
            start = (
                inner.start_position.specified.number if kind == "specified" else len(self.blocks)
            )
        passed = not after
        number = start
        while True:
            async with self._new_block:
                await self._new_block.wait_for(lambda n=number: n < len(self.blocks))
            block = self.blocks[number]
            matching = []
            for tx_id, code, event in block.transactions:
                if code != VALID or event is None:
                    continue
                if not passed:
                    passed = tx_id == after
                    continue
                if event.chaincode_id == inner.chaincode_id:
                    matching.append(event)
            if matching:
                yield gateway_pb2.ChaincodeEventsResponse(events=matching, block_number=number)
            number += 1

    # --- Deliver service ---------------------------------------------------------------

    async def _deliver(
        self, request_iterator: Any, context: Any, build: Callable[[Block], Any]
    ) -> Any:
        envelope = await request_iterator.__anext__()
        self.deliver_requests.append(envelope)
        self.deliver_started.set()
        payload = common_pb2.Payload()
        payload.ParseFromString(envelope.payload)
        signature_header = common_pb2.SignatureHeader()
        signature_header.ParseFromString(payload.header.signature_header)
        channel_header = common_pb2.ChannelHeader()
        channel_header.ParseFromString(payload.header.channel_header)
        why = verify_signature(signature_header.creator, envelope.payload, envelope.signature)
        if why is None and channel_header.type != common_pb2.HeaderType.Value("DELIVER_SEEK_INFO"):
            why = f"deliver header type {channel_header.type}"
        if why:
            self.problem(f"deliver: {why}")
            yield events_pb2.DeliverResponse(status=common_pb2.Status.Value("FORBIDDEN"))
            return
        if channel_header.channel_id != "mychannel":
            yield events_pb2.DeliverResponse(status=common_pb2.Status.Value("NOT_FOUND"))
            return
        seek = ab_pb2.SeekInfo()
        seek.ParseFromString(payload.data)
        kind = seek.start.WhichOneof("Type")
        number = seek.start.specified.number if kind == "specified" else len(self.blocks)
        while True:
            async with self._new_block:
                await self._new_block.wait_for(lambda n=number: n < len(self.blocks))
            yield build(self.blocks[number])
            number += 1

    async def Deliver(self, request_iterator: Any, context: Any) -> Any:
        def build(block: Block) -> Any:
            if self.full_blocks:
                return events_pb2.DeliverResponse(block=block_builder.block(block.number, [
                    block_builder.Tx(
                        tx_id, code=code,
                        chaincode=event.chaincode_id if event is not None else "cc",
                        event=None if event is None else (
                            event.chaincode_id, event.event_name, event.payload),
                    )
                    for tx_id, code, event in block.transactions
                ]))
            return events_pb2.DeliverResponse(
                block=common_pb2.Block(
                    header=common_pb2.BlockHeader(number=block.number),
                    data=common_pb2.BlockData(data=[t[0].encode() for t in block.transactions]),
                )
            )

        async for response in self._deliver(request_iterator, context, build):
            yield response

    async def DeliverFiltered(self, request_iterator: Any, context: Any) -> Any:
        def build(block: Block) -> Any:
            return events_pb2.DeliverResponse(
                filtered_block=events_pb2.FilteredBlock(
                    channel_id="mychannel",
                    number=block.number,
                    filtered_transactions=[
                        events_pb2.FilteredTransaction(txid=tx_id, tx_validation_code=code)
                        for tx_id, code, _ in block.transactions
                    ],
                )
            )

        async for response in self._deliver(request_iterator, context, build):
            yield response


# --- a peer's Endorser service ----------------------------------------------------------


@dataclass
class Answer:
    """What the fake endorser answers one proposal with."""

    status: int = 200
    message: str = ""
    payload: bytes = b""
    result: bytes | None = None  # the ProposalResponsePayload bytes (None: built honestly)
    endorse: bool = True  # include an endorsement


EndorserHandler = Callable[[Invocation, str], Awaitable[Answer] | Answer]


class FakeEndorser(peer_pb2_grpc.EndorserServicer):  # type: ignore[misc]
    """``protos.Endorser/ProcessProposal`` of fake peers: checks the signed proposal as a peer
    does and answers with a real ``ProposalResponse`` (its ``endorser`` is the name the
    metadata ``peer`` of the call gives, else ``peer0``). A ``FakePeer`` given as ``ledger``
    learns each endorsed transaction, so its ``Submit`` accepts it."""

    def __init__(self, ledger: FakePeer | None = None) -> None:
        self.ledger = ledger
        self.handler: EndorserHandler = lambda inv, peer: Answer(payload=b"ok")
        self.abort: dict[str, tuple[grpc.StatusCode, str]] = {}  # peer name -> failure
        self.calls: list[tuple[str, Invocation]] = []
        self.problems: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0

    async def ProcessProposal(self, signed: Any, context: Any) -> Any:
        metadata = dict(context.invocation_metadata() or ())
        name = str(metadata.get("peer", "peer0"))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return await self._process(signed, context, name)
        finally:
            self.in_flight -= 1

    async def _process(self, signed: Any, context: Any, name: str) -> Any:
        if name in self.abort:
            await context.abort(*self.abort[name])
        proposal = proposal_pb2.Proposal()
        proposal.ParseFromString(signed.proposal_bytes)
        decoded = decode_signed_proposal(signed)
        if isinstance(decoded, str):
            self.problems.append(f"process proposal: {decoded}")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, decoded)
        assert isinstance(decoded, Invocation)
        self.calls.append((name, decoded))
        answer = self.handler(decoded, name)
        if asyncio.iscoroutine(answer) or isinstance(answer, Awaitable):
            answer = await answer
        assert isinstance(answer, Answer)
        response = proposal_response_pb2.Response(
            status=answer.status, message=answer.message, payload=answer.payload)
        if answer.status >= 400:
            return proposal_response_pb2.ProposalResponse(version=1, response=response)
        if self.ledger is not None:
            self.ledger.invocations[decoded.transaction_id] = decoded
        cc_payload = proposal_pb2.ChaincodeProposalPayload()
        cc_payload.ParseFromString(proposal.payload)
        without_transient = proposal_pb2.ChaincodeProposalPayload(input=cc_payload.input)
        result = answer.result
        if result is None:
            action = proposal_pb2.ChaincodeAction(results=b"rwset", response=response)
            result = proposal_response_pb2.ProposalResponsePayload(
                proposal_hash=hashlib.sha256(
                    proposal.header + without_transient.SerializeToString()).digest(),
                extension=action.SerializeToString(),
            ).SerializeToString()
        endorsement = None
        if answer.endorse:
            endorsement = proposal_response_pb2.Endorsement(
                endorser=name.encode(), signature=b"signature of " + name.encode())
        return proposal_response_pb2.ProposalResponse(
            version=1, response=response, payload=result, endorsement=endorsement)


def named_peer_channel(address: str, name: str) -> grpc.aio.Channel:
    """A channel to a fake server whose every call says it is for peer ``name``."""

    class _Name(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
        async def intercept_unary_unary(self, continuation: Any, details: Any,
                                        request: Any) -> Any:
            metadata = grpc.aio.Metadata(*(details.metadata or ()), ("peer", name))
            details = grpc.aio.ClientCallDetails(
                details.method, details.timeout, metadata, details.credentials,
                details.wait_for_ready)
            return await continuation(details, request)

    return grpc.aio.insecure_channel(address, interceptors=[_Name()])


@dataclass
class Server:
    peer: FakePeer
    server: Any
    address: str


async def start_server(
    peer: FakePeer, credentials: Any = None, endorser: FakeEndorser | None = None
) -> Server:
    server = grpc.aio.server()
    gateway_pb2_grpc.add_GatewayServicer_to_server(peer, server)
    events_pb2_grpc.add_DeliverServicer_to_server(peer, server)
    if endorser is not None:
        peer_pb2_grpc.add_EndorserServicer_to_server(endorser, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return Server(peer, server, f"127.0.0.1:{port}")


@contextlib.asynccontextmanager
async def endorsing_server(peer: FakePeer, endorser: FakeEndorser) -> AsyncIterator[Server]:
    """A fake server with the Gateway, Deliver and Endorser services, stopped after; on the
    way out it checks that neither fake saw a malformed request."""
    running = await start_server(peer, endorser=endorser)
    try:
        yield running
    finally:
        await running.server.stop(0)
    assert peer.problems == []
    assert endorser.problems == []
