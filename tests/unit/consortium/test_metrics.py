"""Parsing a peer's /metrics and the counters read from it."""

# ruff: noqa: E501

from __future__ import annotations

from collections import Counter

from consortium import metrics

# Verbatim lines of a Fabric 3.1 peer's /metrics (long lines: the exposition format).
TEXT = """\
# HELP chaincode_shim_requests_received The number of chaincode shim requests received.
# TYPE chaincode_shim_requests_received counter
chaincode_shim_requests_received{channel="dtoken",chaincode="dtoken_hkbank_1.0:ab12",success="true",type="GET_STATE"} 7
chaincode_shim_requests_received{channel="dtoken",chaincode="dtoken_hkbank_1.0:ab12",success="true",type="PUT_STATE"} 3
chaincode_shim_requests_received{channel="",chaincode="dtoken_hkbank_1.0:ab12",success="true",type="REGISTER"} 1
endorser_proposal_duration_count{chaincode="dtoken",channel="dtoken",success="true"} 4
gossip_membership_total_peers_known{channel="dtoken"} 3
go_goroutines 212
not a sample line
"""


def test_samples_are_parsed_with_and_without_labels() -> None:
    samples = list(metrics.parse(TEXT))
    names = [s.name for s in samples]
    assert names[-2:] == ["gossip_membership_total_peers_known", "go_goroutines"]
    assert samples[-1].labels == {}
    assert samples[-1].value == 212
    assert samples[0].labels["type"] == "GET_STATE"


def test_peer_counts_keep_channel_requests_by_deployment_and_subtract() -> None:
    after = metrics.peer_counts(metrics.parse(TEXT))
    assert after.of("dtoken") == Counter({"GET_STATE": 7, "PUT_STATE": 3})  # REGISTER: no channel
    assert after.proposals == Counter({"dtoken": 4})
    before = metrics.peer_counts(metrics.parse(TEXT.replace("} 7", "} 5")))
    assert (after - before).of("dtoken") == Counter({"GET_STATE": 2})
