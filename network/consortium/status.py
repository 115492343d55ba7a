"""Observing the running network: the status report (``dtoken network status``), each
peer's Prometheus metrics, and the wait for gossip membership to converge.

This module reads (process tables, operations endpoints, metrics) and must not start,
stop or configure anything.
"""

from __future__ import annotations

import time
from typing import Any

from consortium import metrics, processes
from consortium.admin import parallel
from consortium.config import Consortium, OrgKind, PeerNode
from consortium.errors import NodeError
from consortium.nodes import NodeSet, chaincode_node_name

__all__ = ["NetworkMonitor"]


class NetworkMonitor:
    """Health and metrics of one consortium's nodes."""

    def __init__(self, consortium: Consortium, nodes: NodeSet) -> None:
        self.consortium = consortium
        self.nodes = nodes
        self.layout = nodes.layout

    def status(self) -> dict[str, Any]:
        """What ``dtoken network status --json`` prints."""
        c, layout = self.consortium, self.layout
        handles = {h.name: h for h in self.nodes.all()}
        health = dict(
            zip(handles, parallel(lambda h: h.healthy(), list(handles.values())), strict=True)
        )
        main = self.nodes.catalog.main()
        orgs = []
        for org in c.orgs:
            entry: dict[str, Any] = {
                "name": org.name,
                "display_name": org.display_name,
                "msp_id": org.msp_id,
                "kind": org.kind.value,
                "peers": [
                    {
                        "name": p.name,
                        "endpoint": p.endpoint,
                        "healthy": health[p.name],
                        "rss_mb": handles[p.name].rss_mb(),
                        "tls_ca_cert": str(layout.tlsca(org.name)),
                        "chaincode_server": {
                            "endpoint": p.chaincode_server_endpoint,
                            "running": health[chaincode_node_name(p, main)],
                            "rss_mb": handles[chaincode_node_name(p, main)].rss_mb(),
                        },
                    }
                    for p in org.peers
                ],
            }
            admin_dir = layout.admin_msp_dir(org.name)
            entry["admin"] = {
                "msp_dir": str(admin_dir),
                "cert": str(admin_dir / "signcerts" / "cert.pem"),
                "key": str(admin_dir / "keystore" / "priv_sk"),
            }
            if org.kind is not OrgKind.ORDERER:
                entry["connection_profile"] = str(layout.profile_path(org))
            orgs.append(entry)
        return {
            "name": c.name,
            "runtime": self.nodes.runtime.name,
            "state_dir": str(layout.state_dir),
            "config": str(c.source.resolve()),
            "channel": c.channel,
            "chaincode": c.chaincode.name,
            "orgs": orgs,
            "orderers": [
                {
                    "name": o.name,
                    "endpoint": o.endpoint,
                    "admin_endpoint": o.admin_endpoint,
                    "healthy": health[o.name],
                    "rss_mb": handles[o.name].rss_mb(),
                    "tls_ca_cert": str(layout.tlsca(c.orderer_org.name)),
                }
                for o in c.ordering.orderers
            ],
        }

    def peer_metrics(self, p: PeerNode, timeout: float = 2.0) -> list[metrics.Sample] | None:
        """``p``'s Prometheus samples (its operations endpoint, with the peer's own TLS
        client certificate); None if it does not answer."""
        tls = self.layout.org_crypto(self.consortium.org(p.org)).node(p.name)
        text = processes.fetch(
            f"https://{p.host}:{p.operations_port}/metrics",
            ca_file=tls.tls_ca, cert_file=tls.tls_cert, key_file=tls.tls_key, timeout=timeout,
        )  # fmt: skip
        return None if text is None else list(metrics.parse(text))

    def peer_counts(self, p: PeerNode) -> metrics.PeerCounts:
        """``p``'s shim-request and proposal counters; NodeError if it does not answer."""
        samples = self.peer_metrics(p, timeout=10.0)
        if samples is None:
            raise NodeError(f"{p.name}: the operations endpoint does not answer")
        return metrics.peer_counts(samples)

    def gossip_peers_known(self, p: PeerNode) -> int | None:
        """How many other peers of the channel ``p`` knows (its gossip metric)."""
        samples = self.peer_metrics(p)
        if samples is None:
            return None
        for s in samples:
            if (
                s.name == "gossip_membership_total_peers_known"
                and s.labels.get("channel") == self.consortium.channel
            ):
                return int(s.value)
        return 0

    def wait_gossip(self, timeout: float = 90.0) -> None:
        """Wait until every peer knows every other peer: until then the Gateway cannot
        find another organization's endorsers, nor push private data to it."""
        peers = self.consortium.peers
        others = len(peers) - 1
        deadline = time.monotonic() + timeout
        lagging = list(peers)
        while lagging:
            lagging = [p for p in lagging if (self.gossip_peers_known(p) or 0) < others]
            if not lagging:
                return
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in lagging)
                raise NodeError(f"gossip did not converge within {timeout:.0f} s: {names}")
            time.sleep(0.25)
