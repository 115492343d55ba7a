"""The channel's genesis block, and every orderer and peer joined to the channel.

Each step looks first (is there a genesis block? does the orderer or peer list the
channel already?) and does only what is missing. The channel configuration itself is
rendered by :mod:`consortium.channel`; ``configtxgen`` and ``osnadmin`` run through
:class:`FabricAdmin`, peers join through our own admin client (:mod:`consortium.peer_admin`).

This module must not start nodes nor touch chaincode.
"""

from __future__ import annotations

from collections.abc import Sequence

from consortium import channel as channel_cfg
from consortium.admin import FabricAdmin, parallel, run_async
from consortium.config import Consortium, OrdererNode, PeerNode
from consortium.peer_admin import PeerAdminClient

__all__ = ["ChannelJoins"]


class ChannelJoins:
    """Genesis and channel membership of one consortium's nodes."""

    def __init__(
        self, consortium: Consortium, admin: FabricAdmin, view: Consortium | None = None
    ) -> None:
        """``view`` is the consortium as the nodes see each other (their host names in the
        channel configuration: consenters, orderer endpoints, anchor peers)."""
        self.consortium = consortium
        self.view = view or consortium
        self.admin = admin
        self.layout = admin.layout

    def ensure_genesis(self) -> None:
        """Render ``configtx.yaml`` and make the genesis block, once."""
        genesis = self.layout.genesis_block
        if genesis.exists():
            return
        c = self.consortium
        channel_cfg.write_configtx(self.view, self.layout.crypto_dir, self.layout.channel_dir)
        tmp = genesis.with_suffix(".tmp")
        self.admin.run(
            [
                self.admin.tool("configtxgen"),
                "-profile",
                channel_cfg.PROFILE,
                "-outputBlock",
                str(tmp),
                "-channelID",
                c.channel,
                "-configPath",
                str(self.layout.channel_dir),
            ],
            env={},
        )
        tmp.replace(genesis)

    def join_orderers(self) -> None:
        """``osnadmin channel join`` on every orderer that does not list the channel."""
        osnadmin = self.admin.tool("osnadmin")
        channel = self.consortium.channel

        def join(o: OrdererNode) -> None:
            admin_args = self.admin.orderer_admin_args(o)
            listing = self.admin.run([osnadmin, "channel", "list", *admin_args], env={})
            if f'"name": "{channel}"' in listing or f'"{channel}"' in listing:
                return
            self.admin.run(
                [
                    osnadmin,
                    "channel",
                    "join",
                    "--channelID",
                    channel,
                    "--config-block",
                    str(self.layout.genesis_block),
                    *admin_args,
                ],
                env={},
            )

        parallel(join, self.consortium.ordering.orderers)

    def join_peers(self, peers: Sequence[PeerNode] | None = None) -> int:
        """Join every peer (of ``peers``, default all) that does not list the channel, with
        the genesis block: every peer at once, by our own admin client
        (:mod:`consortium.peer_admin`). Returns how many joined now."""
        targets = list(self.consortium.peers if peers is None else peers)
        block = self.layout.genesis_block.read_bytes()

        async def run() -> int:
            async with PeerAdminClient(self.consortium, self.layout) as client:
                return await client.join_all(targets, self.consortium.channel, block)

        return run_async(run)
