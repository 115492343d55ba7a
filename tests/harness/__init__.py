"""The integration harness: real Fabric networks for tests.

``TestNetwork`` wraps ``consortium.network.Network`` with what tests need:
bring a network up from the default consortium or a variant (its own ports
and state folder), find nodes, kill (SIGKILL) or stop them, restart them,
wait for them to catch up, read their logs, and run Fabric's own ``peer``
CLI as an organization's admin.
"""

from harness.network import TestNetwork, consortium_variant

__all__ = ["TestNetwork", "consortium_variant"]
