"""A peer's Prometheus metrics, as its operations endpoint serves them.

Owns: parsing the text exposition format, and the counters the project reads from a peer:
gossip membership (``Network`` waits on it), chaincode shim requests and endorsed proposals
(the shim's round-trip measurements in ``tests/`` and ``bench/``). Fetching is
``Network.peer_metrics``: the endpoint wants the organization's TLS client certificate.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["PeerCounts", "Sample", "parse", "peer_counts"]

_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    """One line of the exposition: a metric name, its labels and its value."""

    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> Iterator[Sample]:
    """Every sample of a ``/metrics`` text (comments and malformed lines are skipped)."""
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found is None:
            continue
        try:
            value = float(found.group(3))
        except ValueError:
            continue
        yield Sample(found.group(1), dict(_LABEL.findall(found.group(2) or "")), value)


@dataclass(frozen=True)
class PeerCounts:
    """What one peer counted: shim requests per (deployment, request type), and proposals per
    chaincode name. Subtract two readings to get what happened in between."""

    requests: Counter[tuple[str, str]]
    proposals: Counter[str]

    def __sub__(self, before: PeerCounts) -> PeerCounts:
        return PeerCounts(self.requests - before.requests, self.proposals - before.proposals)

    def of(self, deployment: str) -> Counter[str]:
        """The shim requests of one deployment, by request type."""
        return Counter({t: n for (d, t), n in self.requests.items() if d == deployment})


def peer_counts(samples: Iterable[Sample]) -> PeerCounts:
    """Shim requests (the chaincode's requests within a transaction on a channel) and
    proposals, from a peer's samples."""
    requests: Counter[tuple[str, str]] = Counter()
    proposals: Counter[str] = Counter()
    for s in samples:
        if s.name == "chaincode_shim_requests_received" and s.labels.get("channel"):
            # the chaincode label is the package id, "<name>_<org>_<version>:<hash>"
            deployment = s.labels["chaincode"].split(":")[0].rsplit("_", 2)[0]
            requests[(deployment, s.labels["type"])] += int(s.value)
        elif s.name == "endorser_proposal_duration_count":
            proposals[s.labels["chaincode"]] += int(s.value)
    return PeerCounts(requests, proposals)
