"""The deposit-token events a member follows, whatever the namespace layout.

On the single namespace (``namespace_layout: single``) every transaction's top level is the
``dtoken`` chaincode, and its events are the peer Gateway's ``ChaincodeEvents`` stream of that
one name. Under the namespace layout a transaction's top level is the *acting* organization's
namespace ``<cc>-<org>`` and Fabric keeps only the top level's event: a payer bank's
``TransferPending`` is in the payer's namespace, a payee bank's ``TransferDecided`` in the
payee's. So there the source is one stream of full blocks, from which
:meth:`fabgateway.Network.block_chaincode_events` takes the events of every organization's
namespace (the naming rule of :func:`dtoken_wire.namespaces.organization_of_namespace`, which
also covers a bank that joined after the stream started; pair namespaces are never a top
level). Either way the events are :class:`fabgateway.ChaincodeEvent` records in commit order,
resumed exactly from a :class:`fabgateway.Checkpointer`.

Events only wake a follower: any member's peer can put an event with any name and payload in
its own namespace, so what a follower decides must come from its own reads
(:class:`dtoken.listener.IncomingListener` reads its pending transfers; an event names banks
only).

Must not: decide anything from an event, or follow a namespace that is not an organization's
own (a pair namespace's storage chaincode sets no event).
"""

from __future__ import annotations

from collections.abc import Callable

import fabgateway
from dtoken_wire.namespaces import organization_of_namespace

from dtoken.profile import Profile

__all__ = ["STREAM_ERRORS", "EventStream", "followed_namespace", "member_events"]

EventStream = fabgateway.ChaincodeEventStream | fabgateway.BlockChaincodeEventStream
"""What :func:`member_events` returns: an async iterator of events, to close when done."""

STREAM_ERRORS = (
    fabgateway.ChaincodeEventsError,
    fabgateway.BlockEventsError,
    fabgateway.MalformedMessageError,
)
"""What reading an :data:`EventStream` raises when the stream (not the caller) fails: a
follower reconnects after any of them."""


def followed_namespace(profile: Profile) -> Callable[[str], bool]:
    """The test of a chaincode name whose events the profile's organization follows: the
    one ``dtoken`` namespace, or under the layout every organization's own namespace."""
    if not profile.has_namespaces:
        chaincode = profile.chaincode
        return lambda name: name == chaincode
    base = profile.chaincode_base
    return lambda name: organization_of_namespace(base, name) is not None


def member_events(
    network: fabgateway.Network,
    profile: Profile,
    *,
    checkpoint: fabgateway.Checkpoint | None = None,
    start_block: int | None = None,
) -> EventStream:
    """The deposit-token events for ``profile``'s organization, from ``checkpoint`` (else
    ``start_block``, else the next block): the chaincode's event stream on the single
    namespace, one block stream under the layout. Raises, when read,
    :class:`fabgateway.ChaincodeEventsError` or :class:`fabgateway.BlockEventsError` if the
    stream fails (and :class:`fabgateway.MalformedMessageError` for a block that does not
    decode)."""
    if not profile.has_namespaces:
        return network.chaincode_events(
            profile.chaincode, start_block=start_block, checkpoint=checkpoint
        )
    return network.block_chaincode_events(
        followed_namespace(profile), start_block=start_block, checkpoint=checkpoint
    )
